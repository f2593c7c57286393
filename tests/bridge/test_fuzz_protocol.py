"""Property-based fuzzing of one bridge connection: hostile lines in any split, service goes on."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from kkobot.bridge import wire

from kkobot.bridge import wire33
from kkobot.chatlog.log import ChatRow
from kkobot.commands import CommandRegistry
from kkobot.interfaces import IChatLog
from kkobot.bridge.protocol import BridgeFactory, BridgeProtocol
from kkobot.commands.router import MessageRouter
from tests.support.fuzzing import FUZZ, WRONG, jsonLine, jsonValues, positions33, rawParts33
from tests.support.lines33 import handshake33, line33, message33, pong33, readServerLines33
from tests.support import HELLO_320, analyze, line

# Small, so over-long lines are cheap to generate, yet above the 10,000-deep nesting line.
LIMIT = 16384

_commands: CommandRegistry | None = None


def commands() -> CommandRegistry:
    global _commands
    if _commands is None:
        _commands = CommandRegistry()
        _commands.load()
    return _commands


@implementer(IChatLog)
class RowSink:
    """Keeps rows in memory, refusing any a database could not store (not valid UTF-8)."""

    def __init__(self) -> None:
        self.rows: list[ChatRow] = []

    def log(self, row: ChatRow) -> None:
        for value in row.values():
            if isinstance(value, str):
                value.encode("utf-8")
        self.rows.append(row)

    def flush(self) -> None:
        pass


class Connection:
    """One BridgeProtocol on a StringTransport, fed bytes, its output read back as events."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.rows = RowSink()
        router = MessageRouter(commands(), self.rows, self.clock)
        self.factory = BridgeFactory(router, clock=self.clock, maxLineBytes=LIMIT)
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        self.proto: BridgeProtocol = self.factory.buildProtocol(self.transport.getPeer())
        self.proto.makeConnection(self.transport)

    def feed(self, chunk: bytes) -> None:
        self.proto.dataReceived(chunk)

    def events(self) -> list[dict[str, Any]]:
        out = self.transport.value()
        assert out == b"" or out.endswith(b"\n")
        return [json.loads(x) for x in out.splitlines()]

    def close(self) -> None:
        self.proto.connectionLost(None)


def isBad(raw: bytes) -> bool:
    """A line the decoder refuses (blank lines are skipped silently, so they are not bad)."""
    if b"\n" in raw or not raw.strip():
        return False
    try:
        wire.decode(raw)
    except wire.WireError:
        return True
    return False


def wrongField(event: str, name: str, value: Any) -> bytes:
    base = {"analyze": analyze("# echo x")["data"], "ping": {"server_timestamp": 1}}[event]
    return jsonLine({"event": event, "data": dict(base, **{name: value})}).rstrip(b"\n")


BAD_LINES = st.one_of(
    st.binary(min_size=1, max_size=120),
    jsonValues.map(lambda v: jsonLine(v).rstrip(b"\n")),
    st.builds(
        wrongField,
        st.just("analyze"),
        st.sampled_from(["room", "text", "sender", "isGroupChat", "auth", "logId"]),
        st.sampled_from(WRONG["list"] + WRONG["object"] + [1.5]),
    ),
    st.builds(
        wrongField,
        st.just("ping"),
        st.sampled_from(["server_timestamp", "monitoring", "is_manual"]),
        st.sampled_from(WRONG["list"] + ["x", 1.5]),
    ),
    st.sampled_from(
        [
            b"[" * 10_000,
            b'{"a":' * 2_000 + b"1" + b"}" * 2_000,
            b"9" * 5_000,
            b"\xed\xa0\x80",  # a surrogate encoded as UTF-8: not valid UTF-8
            b'{"event":"ping","data":{"bot_name":"a\x00b"}}',
            b'{"event":"nope","data":{}}',
            b'{"event":"analyze","data":null}',
        ]
    ),
).filter(isBad)

ECHO_ARGS = st.text(alphabet="abcxyz가나다라 0129!?\"\\{}[]", min_size=1, max_size=30).map(str.strip).filter(bool)

# One step of the client's stream: ("bad", raw) | ("echo", args) | ("ping", stamp).
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("bad"), BAD_LINES),
        st.tuples(st.just("echo"), ECHO_ARGS),
        st.tuples(st.just("ping"), st.integers(min_value=0, max_value=10**12)),
    ),
    max_size=10,
)


def stepLine(kind: str, value: Any, crlf: bool) -> bytes:
    if kind == "bad":
        raw = value
    elif kind == "echo":
        raw = line(analyze("# echo " + value)).rstrip(b"\n")
    else:
        raw = line({"event": "ping", "data": {"server_timestamp": value}}).rstrip(b"\n")
    return raw + (b"\r\n" if crlf else b"\n")


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    return [stream[a:b] for a, b in zip(points, points[1:])]


class MixedStreamTests(SynchronousTestCase):
    @FUZZ
    @given(STEPS, st.data())
    def test_everyBadLineAnsweredAndGoodLinesServed(self, steps: list, data: st.DataObject) -> None:
        """
        Bad lines, good commands and pings, split anywhere: each bad line gets exactly one
        `error` event, the connection stays up, every good command is answered in order,
        and the receive buffer never holds more than one line's worth.
        """
        crlfs = data.draw(st.lists(st.booleans(), min_size=len(steps), max_size=len(steps)))
        stream = line(HELLO_320) + b"".join(
            stepLine(kind, value, crlf) for (kind, value), crlf in zip(steps, crlfs)
        )
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
        conn = Connection()
        try:
            for chunk in split(stream, cuts):
                conn.feed(chunk)
                self.assertLessEqual(len(conn.proto._buffer), LIMIT + 1)
            events = conn.events()
            self.assertEqual(events[0]["event"], "handshakeComplete")
            errors = [e["data"]["code"] for e in events if e["event"] == "error"]
            self.assertEqual(len(errors), sum(1 for k, _ in steps if k == "bad"), errors)
            self.assertNotIn(wire.INTERNAL_ERROR, errors)
            replies = [e["data"]["text"] for e in events if e["event"] == "messageResponse"]
            self.assertEqual(replies, ["에코: " + v for k, v in steps if k == "echo"])
            pings = [e for e in events if e["event"] == "ping"]
            # Unprompted pings are answered at most once per UNPROMPTED_PING_GAP, and
            # this clock stands still.
            self.assertEqual(len(pings), min(1, sum(1 for k, _ in steps if k == "ping")))
            self.assertFalse(conn.transport.disconnecting)
            # Every message, and every reply, became a storable chat row (pings
            # become kb_ping_monitor rows on the same path).
            echoes = sum(1 for k, _ in steps if k == "echo")
            chatRows = [r for r in conn.rows.rows if isinstance(r, ChatRow)]
            self.assertEqual(len(chatRows), 2 * echoes)
        finally:
            conn.close()


class OverLongLineTests(SynchronousTestCase):
    @FUZZ
    @given(
        st.lists(ECHO_ARGS, max_size=3),
        st.integers(min_value=LIMIT + 1, max_value=4 * LIMIT),
        st.binary(min_size=1, max_size=64).filter(lambda b: b"\n" not in b),
        st.booleans(),
        st.lists(ECHO_ARGS, min_size=1, max_size=3),
        st.data(),
    )
    def test_lineTooLongClosesAfterServingEarlierLines(
        self, before: list, size: int, filler: bytes, ended: bool, after: list, data: st.DataObject
    ) -> None:
        """
        A line over the limit, in any split: the lines before it are answered, then one
        LINE_TOO_LONG, then the connection closes and nothing after it is served; the
        buffer never grows past the limit while the long line arrives.
        """
        long = (filler * (size // len(filler) + 1))[:size] + (b"\n" if ended else b"")
        stream = (
            line(HELLO_320)
            + b"".join(line(analyze("# echo " + a)) for a in before)
            + long
            + b"".join(line(analyze("# echo " + a)) for a in after)
        )
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
        conn = Connection()
        try:
            for chunk in split(stream, cuts):
                conn.feed(chunk)
                self.assertLessEqual(len(conn.proto._buffer), LIMIT + 1)
            events = conn.events()
            self.assertEqual(events[-1]["event"], "error")
            self.assertEqual(events[-1]["data"]["code"], wire.LINE_TOO_LONG)
            replies = [e["data"]["text"] for e in events if e["event"] == "messageResponse"]
            self.assertEqual(replies, ["에코: " + a for a in before])
            self.assertTrue(conn.transport.disconnecting)
            # A peer that does not take the close is aborted, not kept forever.
            conn.clock.advance(5)
            self.assertTrue(conn.transport.disconnecting)
        finally:
            conn.close()

    def test_exactlyAtTheLimitIsServed(self) -> None:
        conn = Connection()
        try:
            conn.feed(line(HELLO_320))
            base = line(analyze("# echo "))
            args = "a" * (LIMIT - len(base) + 1)
            exact = line(analyze("# echo " + args))
            self.assertEqual(len(exact), LIMIT + 1)  # LIMIT bytes plus the newline
            conn.feed(exact)
            texts = [e["data"].get("text") for e in conn.events()]
            self.assertEqual(texts[-1], "에코: " + args)
        finally:
            conn.close()


class BeforeHandshakeTests(SynchronousTestCase):
    @FUZZ
    @given(st.lists(BAD_LINES, max_size=5))
    def test_badLinesBeforeTheHandshakeDoNotBlockIt(self, bad: list) -> None:
        conn = Connection()
        try:
            conn.feed(b"".join(b + b"\n" for b in bad))
            conn.feed(line(HELLO_320) + line(analyze("# echo ok")))
            events = conn.events()
            self.assertEqual([e["event"] for e in events[: len(bad)]], ["error"] * len(bad))
            self.assertEqual(events[len(bad)]["event"], "handshakeComplete")
            self.assertEqual(events[-1]["data"]["text"], "에코: ok")
        finally:
            conn.close()


# -- 3.3 connections: the same promises for header + raw lines

def isBad33(raw: bytes) -> bool:
    """A line the 3.3 decoder refuses (blank lines are skipped silently, so they are not bad)."""
    if b"\n" in raw or not raw.strip():
        return False
    try:
        wire33.decode(raw)
    except wire.WireError:
        return True
    return False


def mutated33(text: str, raw: bytes | None, positions: Any, **changes: Any) -> bytes:
    good = message33("# echo " + text).rstrip(b"\n")
    end = good.rindex(b"}") + 1
    data = dict(json.loads(good[:end])["data"], **changes)
    if positions is not None:
        data["message_positions"] = positions
    return line33("message", data, good[end:] if raw is None else raw).rstrip(b"\n")


BAD_LINES_33 = st.one_of(
    BAD_LINES,
    st.builds(mutated33, st.just("x"), rawParts33, positions33),
    st.builds(mutated33, st.just("x"), st.none(),
              st.sampled_from([[0, 1], [0, "12"], [0, 12, 8], [1, 12], [0.0, 12], [0, 4, 12], {}])),
    st.builds(lambda raw: mutated33("x", raw, [0, len(raw)]),  # text that is not UTF-8
              st.binary(max_size=11).map(lambda b: base64.b64encode(b"\xff" + b))),
    st.builds(lambda kind: mutated33("x", None, None, content_encoding=kind),
              st.sampled_from(["utf-8", "gzip", "BASE64", 1, ["base64"]])),
    st.builds(lambda text: mutated33(text, None, None) + b"}", ECHO_ARGS),  # a '}' in RAW
    st.sampled_from([b"[1]}QUJD", b"}", b'"x"}', b"{}QUJD", line33("pong", {}, b"QUJD").rstrip(b"\n")]),
).filter(isBad33)

STEPS_33 = st.lists(
    st.one_of(
        st.tuples(st.just("bad"), BAD_LINES_33),
        st.tuples(st.just("echo"), ECHO_ARGS),
        st.tuples(st.just("pong"), st.integers(min_value=0, max_value=10**12)),
    ),
    max_size=10,
)


def stepLine33(kind: str, value: Any, crlf: bool) -> bytes:
    if kind == "bad":
        raw = value
    elif kind == "echo":
        raw = message33("# echo " + value).rstrip(b"\n")
    else:
        raw = pong33(value).rstrip(b"\n")
    return raw + (b"\r\n" if crlf else b"\n")


class MixedStream33Tests(SynchronousTestCase):
    @FUZZ
    @given(STEPS_33, st.booleans(), st.data())
    def test_everyBadLineAnsweredAndGoodLinesServed(self, steps: list, queuedFirst: bool,
                                                    data: st.DataObject) -> None:
        """
        A 3.3 bridge's stream (its handshake first, or after the queue it flushed), bad
        lines, echoes and pongs, split anywhere: each bad line gets one `error` in 3.3
        form, every echo is answered in order in 3.3 form, pongs get no answer, the
        connection stays up, and every message is a storable row.
        """
        crlfs = data.draw(st.lists(st.booleans(), min_size=len(steps), max_size=len(steps)))
        body = b"".join(stepLine33(kind, value, crlf) for (kind, value), crlf in zip(steps, crlfs))
        first = message33("# echo 먼저")
        stream = (first + body + handshake33()) if queuedFirst else (handshake33() + first + body)
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
        conn = Connection()
        try:
            for chunk in split(stream, cuts):
                conn.feed(chunk)
                self.assertLessEqual(len(conn.proto._buffer), LIMIT + 1)
            lines = readServerLines33(conn.transport.value())
            self.assertEqual(lines[0].event, "handshakeComplete")
            errors = [sent.data["code"] for sent in lines if sent.event == "error"]
            self.assertEqual(len(errors), sum(1 for k, _ in steps if k == "bad"), errors)
            self.assertNotIn(wire.INTERNAL_ERROR, errors)
            replies = [sent.text for sent in lines if sent.event == "messageResponse"]
            self.assertEqual(replies, ["에코: 먼저"] + ["에코: " + v for k, v in steps if k == "echo"])
            self.assertEqual([sent.event for sent in lines if sent.event == "ping"], [])
            self.assertFalse(conn.transport.disconnecting)
            echoes = 1 + sum(1 for k, _ in steps if k == "echo")
            chatRows = [r for r in conn.rows.rows if isinstance(r, ChatRow)]
            self.assertEqual(len(chatRows), 2 * echoes)
            self.assertEqual(len(conn.rows.rows) - len(chatRows), sum(1 for k, _ in steps if k == "pong"))
        finally:
            conn.close()


class BeforeHandshake33Tests(SynchronousTestCase):
    @FUZZ
    @given(st.lists(BAD_LINES_33, max_size=5))
    def test_badLinesBeforeTheHandshakeDoNotBlockIt(self, bad: list) -> None:
        conn = Connection()
        try:
            conn.feed(b"".join(b + b"\n" for b in bad))
            conn.feed(handshake33() + message33("# echo ok"))
            out = conn.transport.value()
            # Errors before the introduction come in the form of the line they answer;
            # 3.3 bridges read both (a JSON line is a header without a raw part).
            events = [json.loads(raw[: raw.rindex(b"}") + 1]) for raw in out.split(b"\n")[:-1]]
            self.assertEqual([e["event"] for e in events[: len(bad)]], ["error"] * len(bad))
            rest = readServerLines33(b"".join(raw + b"\n" for raw in out.split(b"\n")[len(bad):-1]))
            self.assertEqual(rest[0].event, "handshakeComplete")
            self.assertEqual(rest[-1].text, "에코: ok")
        finally:
            conn.close()
