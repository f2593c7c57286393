"""Property-based fuzzing of the wire decoder: any input is an event or a WireError, never more."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse

from hypothesis import assume, example, given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kkobot.bridge import wire, wirejson

from kkobot.bridge import wire33
from kkobot.commands import Reply
from kkobot.bridge.wireforms import HEADER_RAW, JSON_LINES, formOfLine
from tests.support.fuzzing import (
    FUZZ, WRONG, allWrongValues, jsonLine, jsonValues, positions33, rawParts33, storable,
)
from tests.support.lines33 import ServerLine33, line33, message33
from tests.support import HELLO_320, analyze

# The rule wirejson._hasLongNumber implements: a number token (after ':' ',' '[' and
# blanks, a sign) of 19 digits or more, which orjson could read differently.
LONG_NUMBER_RULE = re.compile(rb"[:,\[][ \t\r\n]*-?[0-9]{19}")
PING = {"event": "ping", "data": {"bot_name": "kkobot", "server_timestamp": 1737354645000}}


def decodeOrError(line: bytes) -> wire.Event | wire.WireError:
    """The decoder's contract: an event or a WireError; anything else fails the test."""
    try:
        event = wire.decode(line)
    except wire.WireError as e:
        # The error goes back to the client, so it must be encodable.
        wire.errorLine(e.code, e.message, 0)
        return e
    return event


class ArbitraryInputTests(SynchronousTestCase):
    @FUZZ
    @given(st.binary(max_size=300))
    @example(b"\x00")
    @example(b"\xff\xfe")
    @example(b"\r")
    @example(b'{"event":"ping","data":{"server_timestamp":"\xc2\xb2"}}')
    def test_arbitraryBytes(self, line: bytes) -> None:
        result = decodeOrError(line)
        if not isinstance(result, wire.WireError):
            self.assertTrue(storable(result))

    @FUZZ
    @given(jsonValues)
    def test_anyJsonValue(self, value: object) -> None:
        result = decodeOrError(jsonLine(value))
        if not isinstance(result, wire.WireError):
            self.assertIsInstance(value, dict)
            self.assertTrue(storable(result))

    @FUZZ
    @given(st.sampled_from(["handshake", "analyze", "ping", "x"]), jsonValues)
    def test_anyData(self, event: str, data: object) -> None:
        """Events with arbitrary `data`: a typed event or a WireError, never a crash."""
        result = decodeOrError(jsonLine({"event": event, "data": data}))
        if not isinstance(result, wire.WireError):
            self.assertTrue(storable(result))

    @FUZZ
    @given(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b))
    def test_invalidUtf8InsideAGoodLine(self, junk: bytes) -> None:
        good = json.dumps(analyze("# echo x"), ensure_ascii=False).encode()
        line = good.replace(b"# echo x", b"# echo " + junk.replace(b'"', b"").replace(b"\\", b""))
        result = decodeOrError(line)
        if isinstance(result, wire.WireError):
            self.assertIn(result.code, {wire.BAD_ENCODING, wire.BAD_JSON})


class LoneSurrogateTests(SynchronousTestCase):
    """An escaped lone surrogate (a UTF-16 string cut in half) must not poison anything."""

    @FUZZ
    @given(st.text(alphabet=st.characters(min_codepoint=0xD000, max_codepoint=0xE000)), st.text())
    def test_anyFieldStorable(self, room: str, sender: str) -> None:
        result = decodeOrError(jsonLine(analyze(sender + room, room=room, sender=sender)))
        assert not isinstance(result, wire.WireError), result
        self.assertTrue(storable(result))

    def test_textKeptWithReplacement(self) -> None:
        line = jsonLine(analyze("# echo 안녕\ud83d"))
        event = wire.decode(line)
        assert isinstance(event, wire.ChatMessage)
        self.assertEqual(event.text, "# echo 안녕\ufffd")

    def test_validPairStillDecodes(self) -> None:
        event = wire.decode(jsonLine(analyze("# echo \U0001f600")))
        assert isinstance(event, wire.ChatMessage)
        self.assertEqual(event.text, "# echo \U0001f600")

    def test_surrogateInEventName(self) -> None:
        e = decodeOrError(jsonLine({"event": "\udc00", "data": {}}))
        assert isinstance(e, wire.WireError)
        self.assertEqual(e.code, wire.UNKNOWN_EVENT)


class WrongShapeTests(SynchronousTestCase):
    def assertCode(self, line: bytes, code: str) -> None:
        result = decodeOrError(line)
        assert isinstance(result, wire.WireError), f"{line[:80]!r} decoded to {result!r}"
        self.assertEqual(result.code, code)

    def test_notAnObject(self) -> None:
        for value in [[], [1], 1, "s", None, True, 1.5]:
            self.assertCode(jsonLine(value), wire.BAD_JSON)

    def test_dataNotAnObject(self) -> None:
        for event in ["analyze", "ping", "handshake"]:
            for data in [None, [], "x", 1, True]:
                self.assertCode(jsonLine({"event": event, "data": data}), wire.BAD_EVENT)

    def test_eventNotAString(self) -> None:
        for name in [1, [], {}, True]:
            self.assertCode(jsonLine({"event": name, "data": {}}), wire.BAD_EVENT)

    def test_deepNesting(self) -> None:
        """10,000 levels: refused before the parser recurses, and quickly."""
        for opener, closer in [("[", "]"), ("{\"a\":", "}")]:
            deep = opener * 10_000 + "1" + closer * 10_000
            started = time.perf_counter()
            self.assertCode(deep.encode(), wire.BAD_JSON)
            inside = json.dumps({"event": "ping", "data": {"x": json.loads("[" * 60 + "]" * 60)}})
            self.assertIsInstance(wire.decode(inside.encode()), wire.Ping)
            # Generous: a quadratic scan would take seconds here.
            self.assertLess(time.perf_counter() - started, 2.0)

    def test_bracketsCostNoMoreThanLetters(self) -> None:
        """
        A 1 MB text of brackets must not cost many times a 1 MB text of letters: a
        character-by-character nesting scan made it 14x, a cheap way to stall the reactor
        for every other client.
        """

        def cost(text: str) -> float:
            line = jsonLine(analyze(text))
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                decodeOrError(line)
                best = min(best, time.perf_counter() - started)
            return best

        letters = cost("a" * 1_000_000)
        for hostile in ["[" * 1_000_000, "[]" * 500_000, "{" * 1_000_000]:
            self.assertLess(cost(hostile), 4 * letters + 0.005, hostile[:4])
        lists = jsonLine({"event": "ping", "data": {"x": [[]] * 200_000}})
        started = time.perf_counter()
        self.assertIsInstance(decodeOrError(lists), wire.Ping)
        self.assertLess(time.perf_counter() - started, 2.0)

    def test_bracketsInsideStringsAreNotNesting(self) -> None:
        event = wire.decode(jsonLine(analyze("# echo " + "[{" * 5000)))
        self.assertIsInstance(event, wire.ChatMessage)

    def test_hugeNumbers(self) -> None:
        self.assertCode(b"1" * 5000, wire.BAD_JSON)
        self.assertCode(
            b'{"event":"ping","data":{"server_timestamp":' + b"9" * 5000 + b"}}", wire.BAD_JSON
        )
        self.assertCode(b'{"event":"ping","data":{"server_timestamp":1e999}}', wire.BAD_FIELD)
        self.assertCode(b'{"event":"ping","data":{"server_timestamp":-1e999}}', wire.BAD_FIELD)
        self.assertCode(b'{"event":"ping","data":{"server_timestamp":NaN}}', wire.BAD_FIELD)
        # A huge id number is text to us: clipped when stored, never an overflow.
        event = wire.decode(jsonLine(analyze("x", logId=10**300)))
        assert isinstance(event, wire.ChatMessage)
        self.assertEqual(event.logId, str(10**300))
        # Just past 64 bits, after blanks or a sign, in an array: still exact.
        for spacing in (b"", b" ", b"\t", b"\r\n "):
            line = (b'{"event":"analyze","data":{"room":"r","text":"t","logId":'
                    + spacing + str(2**64).encode() + b"}}")
            event = wire.decode(line)
            assert isinstance(event, wire.ChatMessage)
            self.assertEqual(event.logId, str(2**64))
        ping = wire.decode(b'{"event":"ping","data":{"monitoring":{"q":[1, -' +
                           str(2**64).encode() + b"]}}}")
        assert isinstance(ping, wire.Ping)
        self.assertEqual(ping.monitoring, {"q": [1, -(2**64)]})

    @FUZZ
    @given(st.lists(st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: str(n).encode()),
        st.sampled_from([b":", b",", b"[", b" ", b"\t", b"-", b'"', b"x", b"9" * 19, b"\n"]),
    ), max_size=12).map(b"".join))
    @example(b'{"logId":"1234567890123456789","n": -' + str(2**64).encode() + b"}")
    def test_longNumberCheckCoversTheRule(self, line: bytes) -> None:
        """Every line the rule sends to json's exact path, the fast check sends there too."""
        if LONG_NUMBER_RULE.search(line):
            self.assertTrue(wirejson._hasLongNumber(line))

    @FUZZ
    @given(st.dictionaries(
        st.sampled_from(["room", "text", "sender", "isGroupChat", "isMention", "channelId",
                         "logId", "userHash", "timestamp", "botName", "clientType", "auth",
                         "other"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                  st.sampled_from(["true", "false", "", "1"]),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                  st.lists(st.integers(), max_size=2)),
    ))
    def test_analyzeFastPathAnswersLikeTheCheckedOne(self, data: dict) -> None:
        """The shortcut for well-typed analyze data never answers differently."""
        def outcome(parse):
            try:
                return parse(data)
            except wire.WireError as e:
                return (e.code, e.message)

        self.assertEqual(outcome(wire.parseChatMessage), outcome(wire._checkedChatMessage))

    @FUZZ
    @given(st.text(max_size=6), st.one_of(st.none(), st.text(max_size=6)), st.text(max_size=20))
    @example("r\udc00", "1", "x")
    @example("r", "1", "a\ud800b")
    def test_textReplyEncodedAsEncodeDoes(self, room: str, channelId: str | None, text: str) -> None:
        """The text reply made from cached parts is the line encode() makes, or fails as it does."""
        def outcome(build):
            try:
                return build()
            except ValueError as e:
                return type(e)

        expected = outcome(lambda: wire.encode(
            "messageResponse", {"room": room, "text": text, "channel_id": channelId}))
        for _ in range(2):
            self.assertEqual(outcome(lambda: wire.encodeText(room, channelId, text)), expected)

    @FUZZ
    @given(st.lists(st.sampled_from([b"\\", b'"', b"[", b"{", b"]", b"}", b"u", b"a"]),
                    max_size=200).map(b"".join))
    def test_structureSkipsOnlyReplacementsThatChangeNothing(self, line: bytes) -> None:
        """Escapes are stripped only where a backslash escapes a quote or a backslash: same brackets."""
        stripped = line.replace(b"\\\\", b"").replace(b'\\"', b"")
        parts = stripped.split(b'"')
        expected = None if len(parts) % 2 == 0 else b"".join(parts[::2]).translate(
            wirejson._OPENERS_AS_ONE, wirejson._NOT_BRACKETS)
        self.assertEqual(wirejson._structure(line), expected)

    def test_longNumberCheckKeepsStringIdsFast(self) -> None:
        self.assertFalse(wirejson._hasLongNumber(jsonLine(analyze("x", logId="3371984461207437313"))))
        self.assertFalse(wirejson._hasLongNumber(b'{"a":"' + b"7" * 60 + b'","b":1}'))
        self.assertTrue(wirejson._hasLongNumber(b'{"a":"' + b"7" * 60 + b'","b":' + b"7" * 19 + b"}"))

    def test_duplicateKeysLastWins(self) -> None:
        line = (
            b'{"event":"ping","event":"analyze","data":{"room":"a","text":"b"},'
            b'"data":{"room":"r","text":"t"}}'
        )
        event = wire.decode(line)
        assert isinstance(event, wire.ChatMessage)
        self.assertEqual((event.room, event.text), ("r", "t"))

    def test_nulAndControlBytes(self) -> None:
        self.assertCode(b'{"event":"ping","data":{"bot_name":"a\x00b"}}', wire.BAD_JSON)
        escaped = wire.decode(b'{"event":"ping","data":{"bot_name":"a\\u0000b"}}')
        assert isinstance(escaped, wire.Ping)
        self.assertEqual(escaped.bot_name, "a\x00b")
        self.assertCode(b"\x00" * 10, wire.BAD_JSON)

    def test_loneCarriageReturns(self) -> None:
        self.assertIsInstance(wire.decode(jsonLine(PING).rstrip(b"\n") + b"\r"), wire.Ping)
        self.assertCode(b'{"event":\r"ping"\r,"data":{}}\rx', wire.BAD_JSON)


# Every field of every event, and the JSON types it accepts (see docs/protocol.md).
STRING_OR_ID = {"string", "null", "number"}
FIELDS = {
    "handshake": (
        HELLO_320,
        {
            "botName": {"string", "number"},
            "version": {"string", "number"},
            "clientType": STRING_OR_ID,
            "deviceID": STRING_OR_ID,
            "deviceIP": STRING_OR_ID,
            "deviceInfo": STRING_OR_ID,
        },
    ),
    "analyze": (
        analyze("# echo x")["data"],
        {
            "room": {"string", "number"},
            "text": {"string", "number"},
            "sender": STRING_OR_ID,
            "channelId": STRING_OR_ID,
            "logId": STRING_OR_ID,
            "userHash": STRING_OR_ID,
            "timestamp": STRING_OR_ID,
            "botName": STRING_OR_ID,
            "clientType": STRING_OR_ID,
            "isGroupChat": {"bool", "null"},
            "isMention": {"bool", "null"},
            "auth": {"object", "null"},
        },
    ),
    "ping": (
        PING["data"],
        {
            "server_timestamp": {"number", "null"},
            "bot_name": STRING_OR_ID,
            "monitoring": {"object", "null"},
            "client_status": {"object", "null"},
            "is_manual": {"bool", "null"},
            "auth": {"object", "null"},
        },
    ),
}
REQUIRED = {"handshake": {"botName", "version"}, "analyze": {"room", "text"}, "ping": set()}


def accepted(event: str, name: str, types: set[str], kind: str, value: object) -> bool:
    """What docs/protocol.md promises for one field holding one value."""
    if value is None:
        return name not in REQUIRED[event]
    if kind == "bool":
        return "bool" in types
    if kind == "number":
        if "bool" in types:  # 0 and 1 are booleans too
            return value in (0, 1) and isinstance(value, int)
        if name == "server_timestamp":
            return float(value).is_integer()  # type: ignore[arg-type]
        return "number" in types and isinstance(value, int)  # ids are integers, not floats
    if kind == "string":
        if "bool" in types:
            return value in ("true", "false")
        return "string" in types
    return kind in types


class WrongTypeTests(SynchronousTestCase):
    def test_everyFieldOfEveryEvent(self) -> None:
        """Each field with each JSON type: accepted where documented, else BAD_FIELD."""
        tried = 0
        for event, (good, accepts) in FIELDS.items():
            for name, types in accepts.items():
                for kind, values in WRONG.items():
                    for value in values:
                        line = jsonLine({"event": event, "data": dict(good, **{name: value})})
                        result = decodeOrError(line)
                        tried += 1
                        if accepted(event, name, types, kind, value):
                            self.assertFalse(isinstance(result, wire.WireError), line)
                        else:
                            assert isinstance(result, wire.WireError), line
                            self.assertEqual(result.code, wire.BAD_FIELD, line)
        self.assertGreater(tried, 300)

    def test_allWrongValuesForTheEventName(self) -> None:
        for value in allWrongValues():
            result = decodeOrError(jsonLine({"event": value, "data": {}}))
            self.assertIsInstance(result, wire.WireError)


# -- the 3.3 form: a JSON header, then base64 raw content cut at message_positions

def decode33OrError(line: bytes) -> wire.Event | wire.WireError:
    """The 3.3 decoder's contract: an event or a WireError, and the error encodable in 3.3 form."""
    try:
        event = wire33.decode(line)
    except wire.WireError as e:
        readServerLine33(HEADER_RAW.encodeError(e.code, e.message, 0))
        return e
    return event


def readServerLine33(raw: bytes) -> ServerLine33:
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1, raw
    return ServerLine33(raw[:-1])


GOOD_33 = message33("# echo x").rstrip(b"\n")
GOOD_HEADER_33 = json.loads(GOOD_33[: GOOD_33.rindex(b"}") + 1])["data"]

class Arbitrary33InputTests(SynchronousTestCase):
    @FUZZ
    @given(st.binary(max_size=300))
    @example(b"}")
    @example(b"{}}")
    @example(b"{}\xff")
    @example(b'{"event":"message","data":{"room":"r","message_positions":[0,4]}}\xed\xa0\x80}')
    def test_arbitraryBytes(self, line: bytes) -> None:
        result = decode33OrError(line)
        if not isinstance(result, wire.WireError):
            self.assertTrue(storable(result))
        self.assertIn(formOfLine(line), (HEADER_RAW, JSON_LINES))

    @FUZZ
    @given(jsonValues, st.binary(max_size=40).filter(lambda b: b"\n" not in b))
    def test_anyHeaderAnyRaw(self, header: object, raw: bytes) -> None:
        result = decode33OrError(jsonLine(header).rstrip(b"\n") + raw)
        if not isinstance(result, wire.WireError):
            self.assertTrue(storable(result))

    @FUZZ
    @given(st.sampled_from(["handshake", "message", "pong", "ping", "analyze"]), jsonValues,
           st.binary(max_size=40).filter(lambda b: b"\n" not in b))
    def test_anyData(self, event: str, data: object, raw: bytes) -> None:
        result = decode33OrError(jsonLine({"event": event, "data": data}).rstrip(b"\n") + raw)
        if not isinstance(result, wire.WireError):
            self.assertTrue(storable(result))

    @FUZZ
    @given(positions33, rawParts33)
    @example([0, 4], b"/w==")  # invalid UTF-8 once decoded
    @example([0, 4], b"QU}D")
    @example([0, 2, 4], b"QUJD")
    def test_anyPositionsAnyRaw(self, positions: object, raw: bytes) -> None:
        """A message is decoded only when its positions cut RAW exactly once and RAW is UTF-8 in base64."""
        line = jsonLine({"event": "message", "data": dict(GOOD_HEADER_33, message_positions=positions)})
        result = decode33OrError(line.rstrip(b"\n") + raw)
        fits = positions == [0, len(raw)] and all(type(p) is int for p in positions)
        try:
            text = base64.b64decode(raw, validate=True).decode("utf-8") if fits else None
        except (ValueError, UnicodeDecodeError):
            text = None
        if text is None or (raw and len(raw) % 4):
            assert isinstance(result, wire.WireError), (positions, raw)
            self.assertIn(result.code, {wire.BAD_FIELD, wire33.BAD_CONTENT, wire.BAD_ENCODING,
                                        wire.BAD_JSON})
        else:
            assert isinstance(result, wire.ChatMessage), result
            self.assertEqual(result.text, text)


class RoundTrip33Tests(SynchronousTestCase):
    @FUZZ
    @given(st.text(max_size=200))
    @example("}")
    @example("첫 줄\r\n둘째 줄 😀")
    def test_clientTextArrivesExactly(self, text: str) -> None:
        # A Java string with a lone surrogate cannot be UTF-8; the bridge never sends one.
        assume(storable(wire.Hello(text, text)))
        event = wire33.decode(message33(text).rstrip(b"\n"))
        assert isinstance(event, wire.ChatMessage)
        self.assertEqual(event.text, text)

    @FUZZ
    @given(st.text(max_size=200), st.text(max_size=20), st.one_of(st.none(), st.text(max_size=20)))
    def test_serverTextReadByA33Bridge(self, text: str, room: str, channelId: str | None) -> None:
        """What the bridge reads (lastIndexOf('}'), positions, base64) is what was sent."""
        if not storable(wire.Hello(room, text, room, channelId)):
            return
        raw = HEADER_RAW.encodeReply(room, channelId, Reply(text))
        sent = readServerLine33(raw)
        self.assertEqual((sent.data["room"], sent.data["channel_id"], sent.text), (room, channelId, text))

    @FUZZ
    @given(st.lists(st.text(max_size=40), min_size=1, max_size=3), st.booleans())
    @example(["|", ""], False)  # a URL ending in "|" before the "|||" separator
    def test_mediaUrlsStayWithinTheRawPart(self, paths: list[str], secure: bool) -> None:
        urls = [("https://" if secure else "http://") + "img.example/" + p for p in paths]
        if not all(storable(wire.Hello(u, u)) for u in urls):
            return
        sent = readServerLine33(HEADER_RAW.encodeReply("r", None, Reply.media(*urls)))
        self.assertEqual(len(sent.pieces), len(urls))
        for url, piece in zip(urls, sent.pieces):
            self.assertTrue(piece.isascii() and "}" not in piece and not any(c.isspace() for c in piece))
            self.assertEqual(urllib.parse.unquote(piece), url)


# Every field of `message` and the JSON types it accepts (docs/protocol.md).
FIELDS_33 = {
    "room": {"string", "number"},
    "sender": STRING_OR_ID,
    "channel_id": STRING_OR_ID,
    "log_id": STRING_OR_ID,
    "user_hash": STRING_OR_ID,
    "bot_name": STRING_OR_ID,
    "client_type": STRING_OR_ID,
    "timestamp": STRING_OR_ID,
    "is_group_chat": {"bool", "null"},
    "is_mention": {"bool", "null"},
    "auth": {"object", "null"},
    "timezone": {"string", "null"},
}
MESSAGE_TEXT = base64.b64encode("# echo x".encode())


def accepted33(name: str, types: set[str], kind: str, value: object) -> bool:
    """What docs/protocol.md promises for one field of `message` holding one value."""
    if value is None:
        return name != "room"
    if kind == "bool":
        return "bool" in types
    if kind == "number":
        if "bool" in types:  # 0 and 1 are booleans too
            return value in (0, 1) and isinstance(value, int)
        return "number" in types and isinstance(value, int)  # ids are integers, not floats
    if kind == "string":
        return value in ("true", "false") if "bool" in types else "string" in types
    return kind in types


class Wrong33TypeTests(SynchronousTestCase):
    def test_everyFieldOfMessage(self) -> None:
        tried = 0
        for name, types in FIELDS_33.items():
            for kind, values in WRONG.items():
                for value in values:
                    data = dict(GOOD_HEADER_33, **{name: value})
                    result = decode33OrError(line33("message", data, MESSAGE_TEXT).rstrip(b"\n"))
                    tried += 1
                    ok = accepted33(name, types, kind, value)
                    if ok:
                        self.assertFalse(isinstance(result, wire.WireError), (name, value))
                    else:
                        assert isinstance(result, wire.WireError), (name, value)
                        self.assertEqual(result.code, wire.BAD_FIELD, (name, value))
        self.assertGreater(tried, 200)

    @FUZZ
    @given(st.dictionaries(
        st.sampled_from(list(FIELDS_33) + ["other"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                  st.sampled_from(["true", "false", "", "1", "2026-12-02T19:43:33.221Z", "UTC"]),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                  st.lists(st.integers(), max_size=2)),
    ))
    def test_messageFastPathAnswersLikeTheCheckedOne(self, fields: dict) -> None:
        """The shortcut for well-typed message data never answers differently."""
        data = dict(fields, message_positions=[0, len(MESSAGE_TEXT)])

        def outcome(parse):
            try:
                return parse()
            except wire.WireError as e:
                return (e.code, e.message)

        self.assertEqual(outcome(lambda: wire33.parseMessage(data, MESSAGE_TEXT)),
                         outcome(lambda: wire33._checkedMessage(data, "# echo x")))
