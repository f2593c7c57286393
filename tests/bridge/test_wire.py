"""kkobot.bridge.wire: every line a bridge can send, and every line the server writes."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from kkobot.bridge import wire
from tests.support import HELLO_290, HELLO_314, HELLO_320, analyze, line

PING_320 = {
    "event": "ping",
    "data": {
        "bot_name": "kkobot",
        "server_timestamp": 1795602311302,
        "monitoring": {
            "total_memory": 6028,
            "memory_usage": 8,
            "memory_percent": 0.1,
            "message_queue_size": 0,
            "active_rooms": 1,
        },
    },
}


def raw(obj: object) -> bytes:
    """One line without the trailing newline, as LineReceiver hands it over."""
    return line(obj)[:-1]  # type: ignore[arg-type]


class DecodeErrorsTests(SynchronousTestCase):
    def assertCode(self, data: bytes, code: str) -> wire.WireError:
        with self.assertRaises(wire.WireError) as cm:
            wire.decode(data)
        self.assertEqual(cm.exception.code, code, cm.exception.message)
        self.assertTrue(cm.exception.message)
        return cm.exception

    def test_invalidUtf8(self) -> None:
        e = self.assertCode(b'{"event":"analyze","data":{"room":"\xff\xfe"}}', wire.BAD_ENCODING)
        self.assertIn("UTF-8", e.message)

    def test_truncatedMultibyteSequence(self) -> None:
        # The first two bytes of a three-byte Hangul syllable.
        self.assertCode("안".encode()[:2], wire.BAD_ENCODING)

    def test_badJson(self) -> None:
        for text in [b"{", b"not json", b'{"event":"ping",}', b"{'event':'ping'}", b"\xef\xbb\xbf{}"]:
            self.assertCode(text, wire.BAD_JSON)

    def test_nonObject(self) -> None:
        for text in [b"[]", b'"handshake"', b"42", b"null", b"true", b'[{"event":"ping"}]']:
            e = self.assertCode(text, wire.BAD_JSON)
            self.assertIn("object", e.message)

    def test_deepNestingIsBadJsonNotRecursionError(self) -> None:
        for deep in [b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000]:
            self.assertCode(deep, wire.BAD_JSON)
        # Unbalanced, as a hostile client would send it.
        self.assertCode(b"[" * 100_000, wire.BAD_JSON)

    def test_bracketsInsideStringsAreNotNesting(self) -> None:
        text = "[[[[{{{{" * 100 + " ㅋㅋ"
        message = wire.decode(raw(analyze(text)))
        assert isinstance(message, wire.ChatMessage)
        self.assertEqual(message.text, text)

    def test_hugeNumberLiteral(self) -> None:
        self.assertCode(
            b'{"event":"ping","data":{"server_timestamp":' + b"9" * 100_000 + b"}}",
            wire.BAD_JSON,
        )
        # A float too large for a double becomes inf: not a timestamp.
        self.assertCode(b'{"event":"ping","data":{"server_timestamp":1e999}}', wire.BAD_FIELD)

    def test_missingEvent(self) -> None:
        e = self.assertCode(b'{"data":{"room":"r","text":"t"}}', wire.BAD_EVENT)
        self.assertIn("event", e.message)

    def test_nonStringEvent(self) -> None:
        for name in [1, True, ["analyze"], {"name": "analyze"}]:
            self.assertCode(raw({"event": name, "data": {}}), wire.BAD_EVENT)

    def test_nullOrMissingData(self) -> None:
        for event in ["analyze", "ping", "handshake"]:
            self.assertCode(raw({"event": event, "data": None}), wire.BAD_EVENT)
            self.assertCode(raw({"event": event}), wire.BAD_EVENT)
            self.assertCode(raw({"event": event, "data": "x"}), wire.BAD_EVENT)
            self.assertCode(raw({"event": event, "data": [1]}), wire.BAD_EVENT)

    def test_unknownEvent(self) -> None:
        e = self.assertCode(raw({"event": "subscribe", "data": {}}), wire.UNKNOWN_EVENT)
        self.assertIn("subscribe", e.message)

    def test_unknownEventNameIsShortenedInTheMessage(self) -> None:
        e = self.assertCode(raw({"event": "x" * 10_000, "data": {}}), wire.UNKNOWN_EVENT)
        self.assertLess(len(e.message), 200)

    def _wrongTypes(self, event: str | None, good: dict, fields: dict[str, list]) -> None:
        for name, values in fields.items():
            for value in values:
                data = dict(good, **{name: value})
                obj = data if event is None else {"event": event, "data": data}
                with self.subTest(event=event, field=name, value=value):
                    e = self.assertCode(raw(obj), wire.BAD_FIELD)
                    self.assertIn(name, e.message)

    def test_handshakeFieldTypes(self) -> None:
        strings = {
            name: [1.5, [], {}, True]
            for name in ["botName", "version", "clientType", "deviceID", "deviceIP", "deviceInfo"]
        }
        self._wrongTypes(None, HELLO_320, strings)
        self._wrongTypes("handshake", HELLO_320, strings)

    def test_analyzeFieldTypes(self) -> None:
        strings = ["room", "text", "sender", "channelId", "logId", "userHash", "timestamp",
                   "botName", "clientType"]
        fields: dict[str, list] = {name: [1.5, [], {}, False] for name in strings}
        fields.update({name: ["yes", 2, [], {}] for name in ["isGroupChat", "isMention"]})
        fields["auth"] = ["signed", [], 1]
        self._wrongTypes("analyze", analyze("# echo 안녕하세요")["data"], fields)

    def test_pingFieldTypes(self) -> None:
        fields: dict[str, list] = {
            "server_timestamp": ["soon", True, [], {}, 1.5, "²", "-1"],
            "bot_name": [1.5, [], {}],
            "monitoring": ["ok", [], 1],
            "client_status": ["ok", [], 1],
            "is_manual": ["maybe", 5, []],
            "auth": ["signed", [], 1],
        }
        self._wrongTypes("ping", PING_320["data"], fields)

    def test_missingRequiredFields(self) -> None:
        for name in ["botName", "version"]:
            bare = {k: v for k, v in HELLO_320.items() if k != name}
            e = self.assertCode(raw(bare), wire.BAD_FIELD)
            self.assertIn(name, e.message)
            e = self.assertCode(raw({"event": "handshake", "data": bare}), wire.BAD_FIELD)
            self.assertIn(name, e.message)
        for name in ["room", "text"]:
            data = {k: v for k, v in analyze("hi")["data"].items() if k != name}
            e = self.assertCode(raw({"event": "analyze", "data": data}), wire.BAD_FIELD)
            self.assertIn(name, e.message)
            e = self.assertCode(
                raw({"event": "analyze", "data": dict(data, **{name: None})}), wire.BAD_FIELD
            )


class DecodeAcceptsTests(SynchronousTestCase):
    def test_threeHandshakeGenerations(self) -> None:
        hello = wire.decode(raw(HELLO_320))
        self.assertEqual(
            hello,
            wire.Hello(
                botName="kkobot",
                version="3.2.0",
                clientType="MessengerBotR",
                deviceID="5f3c2a1b9d8e7f60",
                deviceIP="127.0.0.1",
                deviceInfo="samsung SM-S911N (Android 14, API 34)",
            ),
        )
        self.assertEqual(
            wire.decode(raw(HELLO_314)),
            wire.Hello(botName="kkobot", version="3.1.4", deviceID="5f3c2a1b9d8e7f60"),
        )
        hello = wire.decode(raw(HELLO_290))
        self.assertEqual(hello, wire.Hello(botName="kkobot", version="2.9.0c"))
        self.assertEqual(hello.clientType, "MessengerBotR")

    def test_wrappedHandshake(self) -> None:
        self.assertEqual(
            wire.decode(raw({"event": "handshake", "data": HELLO_320})),
            wire.decode(raw(HELLO_320)),
        )

    def test_crlfTolerated(self) -> None:
        self.assertEqual(wire.decode(raw(HELLO_320) + b"\r"), wire.decode(raw(HELLO_320)))
        message = wire.decode(raw(analyze("# echo 안녕하세요")) + b"\r")
        assert isinstance(message, wire.ChatMessage)
        self.assertEqual(message.text, "# echo 안녕하세요")

    def test_analyzeAsThe320BridgeSendsIt(self) -> None:
        message = wire.decode(raw(analyze("# echo 안녕하세요", auth={"botName": "kkobot"})))
        assert isinstance(message, wire.ChatMessage)
        self.assertEqual(message.room, "테스트방")
        self.assertEqual(message.text, "# echo 안녕하세요")
        self.assertEqual(message.sender, "홍길동")
        self.assertIs(message.isGroupChat, True)
        self.assertIs(message.isMention, False)
        self.assertEqual(message.channelId, "18398338829933568")
        self.assertEqual(message.logId, "3371984461207437313")
        self.assertEqual(message.userHash, "a1b2c3")
        self.assertEqual(message.timestamp, "2026-11-25 19:25:10")
        self.assertEqual(message.auth, {"botName": "kkobot"})

    def test_legacyResponsePathNulls(self) -> None:
        # The bridge's legacy response() path: null ids, extra packageName/threadId.
        obj = analyze("hello", channelId=None, userHash=None, logId=None,
                      packageName="com.kakao.talk", threadId=None)
        message = wire.decode(raw(obj))
        assert isinstance(message, wire.ChatMessage)
        self.assertIsNone(message.channelId)
        self.assertIsNone(message.userHash)
        self.assertIsNone(message.logId)

    def test_unknownExtraFieldsIgnored(self) -> None:
        message = wire.decode(
            raw(dict(analyze("hi", futureField={"x": [1, 2]}), version=7, extra=None))
        )
        assert isinstance(message, wire.ChatMessage)
        self.assertEqual(message.text, "hi")
        hello = wire.decode(raw(dict(HELLO_320, capabilities=["media"], build=321)))
        self.assertEqual(hello, wire.decode(raw(HELLO_320)))
        ping = wire.decode(raw({"event": "ping", "data": dict(PING_320["data"], battery=99)}))
        assert isinstance(ping, wire.Ping)
        self.assertEqual(ping.server_timestamp, 1795602311302)

    def test_numericIdsAcceptedAsStrings(self) -> None:
        message = wire.decode(
            raw(analyze("hi", channelId=18398338829933568, userHash=12345,
                        logId=3371984461207437313))
        )
        assert isinstance(message, wire.ChatMessage)
        self.assertEqual(message.channelId, "18398338829933568")
        self.assertEqual(message.userHash, "12345")
        self.assertEqual(message.logId, "3371984461207437313")

    def test_loosebooleans(self) -> None:
        for value, expected in [(1, True), (0, False), ("true", True), ("FALSE", False),
                                (None, False)]:
            message = wire.decode(raw(analyze("hi", isGroupChat=value)))
            assert isinstance(message, wire.ChatMessage)
            self.assertIs(message.isGroupChat, expected)

    def test_pingForms(self) -> None:
        ping = wire.decode(raw(PING_320))
        assert isinstance(ping, wire.Ping)
        self.assertEqual(ping.bot_name, "kkobot")
        self.assertEqual(ping.monitoring["active_rooms"], 1)
        old = wire.decode(raw({"event": "ping", "data": {
            "bot_name": "kkobot", "client_status": {"cpu": None, "ram": None, "temp": None},
            "is_manual": True}}))
        assert isinstance(old, wire.Ping)
        self.assertIsNone(old.server_timestamp)
        self.assertEqual(old.client_status, {"cpu": None, "ram": None, "temp": None})
        self.assertIs(old.is_manual, True)
        # Timestamps that arrive as a string or a whole float still count.
        for stamp in ["1795602311302", 1795602311302.0]:
            p = wire.decode(raw({"event": "ping", "data": {"server_timestamp": stamp}}))
            assert isinstance(p, wire.Ping)
            self.assertEqual(p.server_timestamp, 1795602311302)

    def test_loneSurrogateBecomesReplacementCharacter(self) -> None:
        # A bridge that truncates in UTF-16 can cut an emoji in half; JSON then
        # carries a lone surrogate escape. Such text cannot be written as UTF-8,
        # neither to the client nor to the database, so it must not get past decode.
        message = wire.decode(b'{"event":"analyze","data":{"room":"\\ud83d","text":"# echo ab\\ud83d"}}')
        assert isinstance(message, wire.ChatMessage)
        self.assertEqual(message.text, "# echo ab\ufffd")
        self.assertEqual(message.room, "\ufffd")
        message.text.encode("utf-8")
        # A proper pair is one character.
        message = wire.decode(b'{"event":"analyze","data":{"room":"r","text":"\\ud83d\\ude00"}}')
        assert isinstance(message, wire.ChatMessage)
        self.assertEqual(message.text, "\U0001F600")


class EncodeTests(SynchronousTestCase):
    def test_oneLineEvenWithNewlinesInText(self) -> None:
        data = wire.encode("messageResponse", {"room": "방\n이름", "text": "첫 줄\n둘째 줄\r\n셋째"})
        self.assertTrue(data.endswith(b"\n"))
        self.assertEqual(data.count(b"\n"), 1)
        self.assertNotIn(b"\r", data)
        self.assertEqual(
            json.loads(data),
            {"event": "messageResponse", "data": {"room": "방\n이름", "text": "첫 줄\n둘째 줄\r\n셋째"}},
        )

    def test_rawUtf8Compact(self) -> None:
        data = wire.encode("messageResponse", {"room": "테스트방", "text": "에코: 안녕하세요 😀",
                                               "channel_id": "1"})
        self.assertEqual(
            data,
            '{"event":"messageResponse","data":{"room":"테스트방","text":"에코: 안녕하세요 😀",'
            '"channel_id":"1"}}\n'.encode("utf-8"),
        )
        self.assertNotIn(b"\\u", data)

    def test_errorLine(self) -> None:
        data = wire.errorLine(wire.BAD_JSON, "not valid JSON", 1737354645000)
        self.assertEqual(
            json.loads(data),
            {"event": "error", "data": {"code": "BAD_JSON", "message": "not valid JSON",
                                        "timestamp": 1737354645000}},
        )
        self.assertEqual(data.count(b"\n"), 1)
