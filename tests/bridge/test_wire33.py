"""The 3.3 line (JSON header + base64 raw): decoding, encoding, and telling the forms apart."""

from __future__ import annotations

import base64
import json

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from kkobot.bridge import wire

from kkobot.bridge import wire33
from kkobot.commands import Reply
from kkobot.bridge.wireforms import HEADER_RAW, JSON_LINES, IWireFormat, formOfLine
from tests.support.lines33 import (
    AUTH_333, BRIDGE_LINES_333, HELLO_333, ServerLine33, handshake33, line33, message33, pong33,
)
from tests.support import BRIDGE_LINES, HELLO_290, HELLO_314, HELLO_320, analyze, line


def decode(raw: bytes) -> wire.Event:
    return wire33.decode(raw.rstrip(b"\n"))


class BridgeLinesTests(SynchronousTestCase):
    def test_linesOfA333Bridge(self) -> None:
        hello, message, pong = [decode(raw) for raw in BRIDGE_LINES_333.split(b"\n")[:-1]]
        self.assertEqual(hello, wire.Hello(
            botName="kkobot", version="3.3.3", clientType="MessengerBotR",
            deviceID="5f3c2a1b9d8e7f60", deviceIP="127.0.0.1",
            deviceInfo="samsung SM-S911N (Android 14, API 34)"))
        self.assertEqual(message, wire.ChatMessage(
            room="테스트방", text="# echo 안녕하세요", sender="홍길동", isGroupChat=True,
            isMention=False, channelId="18398338829933568", logId="3371984461207437313",
            userHash="a1b2c3",
            # 19:43:33 UTC is 04:43:33 the next day on a phone in Seoul.
            timestamp="2026-12-03 04:43:33",
            botName="kkobot", clientType="MessengerBotR", auth=message.auth))
        self.assertEqual(message.auth["version"], "3.3.3")
        self.assertIsInstance(pong, wire.Pong)
        self.assertEqual((pong.server_timestamp, pong.bot_name), (1796240613869, "kkobot"))
        self.assertEqual(pong.monitoring["total_memory"], 6028)

    def test_crlfTolerated(self) -> None:
        self.assertEqual(wire33.decode(message33("hi").rstrip(b"\n") + b"\r").text, "hi")

    def test_textAsSent(self) -> None:
        for text in ["# echo 😀 이모지 👍🏽", "첫 줄\n둘째 줄\r\n셋째", "", " ", "{}}", "a" * 65_000,
                     "\x00\u2028\ufeff"]:
            self.assertEqual(decode(message33(text)).text, text)

    def test_idsAsNumbersAreText(self) -> None:
        message = decode(message33("x", channelId=18398338829933568, log_id=7, is_mention=1))
        self.assertEqual((message.channelId, message.logId, message.isMention),
                         ("18398338829933568", "7", True))

    def test_unknownFieldsIgnored(self) -> None:
        self.assertEqual(decode(message33("x", battery=99, extra={"a": 1})).text, "x")
        self.assertEqual(decode(handshake33(capabilities=["media"])).botName, "kkobot")

    def test_332AnswersPingWithPing(self) -> None:
        ping = decode(pong33(1796240613869, event="ping"))
        self.assertIs(type(ping), wire.Ping)
        self.assertEqual(ping.server_timestamp, 1796240613869)

    def test_bareHandshakeOfA33Version(self) -> None:
        hello = decode(line({"botName": "kkobot", "version": "3.3.0"}))
        self.assertEqual((hello.botName, hello.version), ("kkobot", "3.3.0"))


class PhoneTimeTests(SynchronousTestCase):
    def stored(self, stamp: object, zone: object = "Asia/Seoul") -> str | None:
        return decode(message33("x", timestamp=stamp, timezone=zone)).timestamp

    def test_theWallClockOfTheLinesZone(self) -> None:
        self.assertEqual(self.stored("2026-12-02T19:43:33.221Z"), "2026-12-03 04:43:33")
        # Daylight saving on both sides of the year, and a zone east of UTC by 5:45.
        self.assertEqual(self.stored("2026-07-01T12:00:00.000Z", "America/New_York"),
                         "2026-07-01 08:00:00")
        self.assertEqual(self.stored("2026-01-15T12:00:00.999Z", "America/New_York"),
                         "2026-01-15 07:00:00")
        self.assertEqual(self.stored("2026-01-15T12:00:00.000Z", "Asia/Kathmandu"),
                         "2026-01-15 17:45:00")

    def test_sameSecondOtherZoneIsNotTakenFromTheLastLine(self) -> None:
        self.assertEqual(self.stored("2026-12-02T19:43:33.221Z"), "2026-12-03 04:43:33")
        self.assertEqual(self.stored("2026-12-02T19:43:33.500Z", "UTC"), "2026-12-02 19:43:33")
        self.assertEqual(self.stored("2026-12-02T19:43:33.600Z"), "2026-12-03 04:43:33")

    def test_unknownOrMissingZoneIsSeoul(self) -> None:
        for zone in [None, "", "Mars/Olympus", "../../etc/passwd", "Asia/Seoul\x00", "\udc80"]:
            self.assertEqual(self.stored("2026-12-02T19:43:33.221Z", zone), "2026-12-03 04:43:33",
                             repr(zone))

    def test_otherIsoFormsAndUnreadableTimes(self) -> None:
        self.assertEqual(self.stored("2026-12-02T19:43:33Z"), "2026-12-03 04:43:33")
        self.assertEqual(self.stored("2026-12-02T19:43:33+00:00"), "2026-12-03 04:43:33")
        self.assertEqual(self.stored("2026-12-03T04:43:33.221+09:00", "UTC"), "2026-12-02 19:43:33")
        # No zone at all: already the phone's wall clock, as 3.2 bridges send it.
        self.assertEqual(self.stored("2026-12-03 04:43:33"), "2026-12-03 04:43:33")
        for bad in ["", "yesterday", "2026-13-02T19:43:33.221Z", "2026-12-02T19:43:33.2x1Z",
                    "9999-12-31T23:59:59.999Z", 1796240613166, None]:
            self.assertIsNone(self.stored(bad), repr(bad))

    def test_aZoneThatIsNotTextIsRefused(self) -> None:
        with self.assertRaises(wire.WireError) as e:
            decode(message33("x", timezone=9))
        self.assertEqual(e.exception.code, wire.BAD_FIELD)


class BadLineTests(SynchronousTestCase):
    def assertCode(self, raw: bytes, code: str, words: str = "") -> None:
        with self.assertRaises(wire.WireError) as e:
            wire33.decode(raw.rstrip(b"\n"))
        self.assertEqual(e.exception.code, code, e.exception.message)
        self.assertIn(words, e.exception.message)

    def withRaw(self, raw: bytes, positions: object, **changes: object) -> bytes:
        good = json.loads(message33("x").split(b"}}")[0] + b"}}")
        data = dict(good["data"], message_positions=positions, **changes)
        return line33("message", data, raw).rstrip(b"\n")

    def test_rawNotBase64(self) -> None:
        for raw in [b"%%%%", b"SGVsbG8", b"SGVs bG8=", b"SGVsbA==SGVsbA==", b"\xed\xa0\x80\xff",
                    "한글".encode()]:
            self.assertCode(self.withRaw(raw, [0, len(raw)]), wire33.BAD_CONTENT)

    def test_invalidUtf8Text(self) -> None:
        for payload in [b"\xff", b"\xed\xa0\x80", b"ok\xc3"]:
            raw = base64.b64encode(payload)
            self.assertCode(self.withRaw(raw, [0, len(raw)]), wire.BAD_ENCODING)

    def test_positionsThatDoNotFit(self) -> None:
        raw = base64.b64encode(b"hello!")
        n = len(raw)
        for positions, words in [
            (None, "missing field 'message_positions'"), ("0,8", "list"), ([8], "list"), ([], "list"),
            ([0.0, n], "integers"), ([0, str(n)], "integers"), ([False, n], "integers"),
            ([0, float(n)], "integers"), ([0, None], "integers"),
            ([1, n], "start at 0"), ([0, n + 4], "end at"), ([0, n - 4], "end at"),
            ([0, 4, n], "1 piece"), ([0, n, 4], "ascending"), ([0, -4, n], "ascending"),
            ([0, 10**30], "end at"),
        ]:
            self.assertCode(self.withRaw(raw, positions), wire.BAD_FIELD, words)

    def test_braceInsideRaw(self) -> None:
        self.assertCode(self.withRaw(b"SGVs}bG8=", [0, 9]), wire33.BAD_CONTENT, "'}'")
        self.assertCode(message33("x").rstrip(b"\n") + b"}", wire33.BAD_CONTENT, "'}'")

    def test_headerNotAnObject(self) -> None:
        for raw in [b"[1]}", b'"}"', b"1}", b"null}QUJD", b"}", b"{}}", b"not json", b"",
                    b'["}"]x', b"{\"event\":\"message\"", b"\xff{}"]:
            with self.assertRaises(wire.WireError) as e:
                wire33.decode(raw)
            self.assertIn(e.exception.code, {wire.BAD_JSON, wire.BAD_ENCODING, wire33.BAD_CONTENT,
                                             wire.BAD_EVENT}, raw)
        self.assertCode(b"[1,2]", wire.BAD_JSON, "JSON object")
        self.assertCode(b'["}"]', wire.BAD_JSON)
        self.assertCode(b'[{"event":"pong","data":{}}]', wire.BAD_JSON)

    def test_encodingAndTypeOtherThanBase64Text(self) -> None:
        raw = base64.b64encode(b"x")
        for encoding in ["utf-8", "BASE64", "", 1, ["base64"]]:
            self.assertCode(self.withRaw(raw, [0, 4], content_encoding=encoding), wire.BAD_FIELD,
                            "content_encoding")
        for kind in ["image", "TEXT", 0]:
            self.assertCode(self.withRaw(raw, [0, 4], message_type=kind), wire.BAD_FIELD,
                            "message_type")

    def test_contentWhereThereIsNone(self) -> None:
        self.assertCode(pong33(1).rstrip(b"\n") + b"QUJD", wire.BAD_FIELD, "end at")
        self.assertCode(pong33(1, message_positions=[0, 4]).rstrip(b"\n") + b"QUJD",
                        wire33.BAD_CONTENT, "no raw content")
        self.assertCode(handshake33(message_positions=[0, 4]).rstrip(b"\n") + b"QUJD",
                        wire33.BAD_CONTENT)
        self.assertCode(line({"botName": "kkobot", "version": "3.3.0"}).rstrip(b"\n") + b"QUJD",
                        wire.BAD_FIELD)

    def test_eventsAndData(self) -> None:
        self.assertCode(line(analyze("# echo x")), wire.UNKNOWN_EVENT, "analyze")
        self.assertCode(line33("subscribe", {}), wire.UNKNOWN_EVENT)
        self.assertCode(line33("message", None, b"QUJD"), wire.BAD_EVENT)  # type: ignore[arg-type]
        self.assertCode(line33("pong", []), wire.BAD_EVENT)  # type: ignore[arg-type]
        self.assertCode(line({"data": {}}), wire.BAD_EVENT)
        self.assertCode(line({"event": 1, "data": {}}), wire.BAD_EVENT)
        self.assertCode(message33("x", room=None), wire.BAD_FIELD, "room")
        self.assertCode(message33("x", auth="signed"), wire.BAD_FIELD, "auth")
        self.assertCode(handshake33(botName=None), wire.BAD_FIELD, "botName")


class EncodingTests(SynchronousTestCase):
    def test_bothFormsProvideTheInterface(self) -> None:
        verifyObject(IWireFormat, JSON_LINES)
        verifyObject(IWireFormat, HEADER_RAW)

    def test_textReply(self) -> None:
        for text in ["에코: 안녕하세요", "에코: 😀👍🏽", "첫 줄\n둘째 줄\r\n셋째", "}{}", "a" * 65_000]:
            raw = HEADER_RAW.encodeReply("테스트방", "18398338829933568", Reply(text))
            self.assertEqual(raw.count(b"\n"), 1)
            self.assertTrue(raw.endswith(b"\n"))
            sent = ServerLine33(raw[:-1])
            self.assertEqual(sent.event, "messageResponse")
            self.assertEqual(sent.text, text)
            self.assertEqual(sent.data, {
                "room": "테스트방", "channel_id": "18398338829933568", "message_type": "text",
                "content_encoding": "base64", "message_positions": [0, len(sent.raw)]})
            self.assertNotIn("}", sent.raw)

    def test_roomWithBracesAndNewlinesStaysInTheHeader(self) -> None:
        sent = ServerLine33(HEADER_RAW.encodeReply("방 }\n{", None, Reply("x"))[:-1])
        self.assertEqual((sent.data["room"], sent.data["channel_id"], sent.text), ("방 }\n{", None, "x"))

    def test_mediaByUrl(self) -> None:
        reply = Reply.media("https://img.example/a.png", "http://x/사진 1.png?q={a}",
                            "https://예시.한국/b.png", waitTime=3000)
        sent = ServerLine33(HEADER_RAW.encodeReply("테스트방", "1", reply)[:-1])
        self.assertEqual(sent.data["message_type"], "image")
        self.assertEqual(sent.data["media_wait_time"], 3000)
        self.assertNotIn("content_encoding", sent.data)
        self.assertEqual(sent.pieces, [
            "https://img.example/a.png",
            "http://x/%EC%82%AC%EC%A7%84%201.png?q={a%7D",
            "https://xn--vv4b11d.xn--3e0b707e/b.png",
        ])
        self.assertTrue(sent.raw.isascii())

    def test_mediaInline(self) -> None:
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
        wrapped = base64.encodebytes(png).decode("ascii")  # with line breaks every 76
        sent = ServerLine33(HEADER_RAW.encodeReply("테스트방", "1", Reply.image(png, b"x", wrapped))[:-1])
        self.assertEqual(sent.data["message_type"], "image")
        self.assertNotIn("media_wait_time", sent.data)
        self.assertEqual([base64.b64decode(p, validate=True) for p in sent.pieces], [png, b"x", png])

    def test_inlinePayloadThatIsNotBase64(self) -> None:
        for payload in ["not base64!", "abc}", "가나다"]:
            with self.assertRaises(ValueError):
                HEADER_RAW.encodeReply("r", None, Reply.image(payload))

    def test_jsonLinesReplyAsBefore(self) -> None:
        self.assertEqual(
            JSON_LINES.encodeReply("테스트방", "1", Reply.media("http://x/a.png", waitTime=5)),
            wire.encode("messageResponse", {"room": "테스트방", "text": "MEDIA_URL:http://x/a.png",
                                            "channel_id": "1", "media_wait_time": 5}))

    def test_eventsAndErrors(self) -> None:
        ping = ServerLine33(HEADER_RAW.encodeEvent("ping", {"bot_name": "k", "server_timestamp": 5})[:-1])
        self.assertEqual((ping.event, ping.data, ping.raw),
                         ("ping", {"bot_name": "k", "server_timestamp": 5, "message_positions": [0, 0]}, ""))
        error = ServerLine33(HEADER_RAW.encodeError("BAD_JSON", "unknown event '}'", 1796240613869)[:-1])
        self.assertEqual(error.data, {
            "code": "BAD_JSON", "message": "unknown event '}'", "timestamp": "2026-12-02T19:43:33.869Z",
            "timezone": "UTC", "message_positions": [0, 0]})
        self.assertEqual(wire33.isoTime(5), "1970-01-01T00:00:00.005Z")


class FormOfLineTests(SynchronousTestCase):
    def test_everyGeneration(self) -> None:
        jsonLines = [line(HELLO_290), line(HELLO_314), line(HELLO_320),
                     line({"event": "handshake", "data": HELLO_320}), line(analyze("# echo x")),
                     line({"event": "ping", "data": {"server_timestamp": 1}}),
                     *BRIDGE_LINES.split(b"\n")[:-1],
                     b"", b"garbage", b"{", b"[1]", b'{"botName":"k","version":3.3}',
                     line({"botName": "k", "version": "3.2.9"}), line({"botName": "k", "version": "10"})]
        for raw in jsonLines:
            self.assertIs(formOfLine(raw.rstrip(b"\n")), JSON_LINES, raw)
        headerRaw = [*BRIDGE_LINES_333.split(b"\n")[:-1], message33("x"), pong33(1),
                     pong33(1, event="ping"), line({"botName": "k", "version": "3.3.0"}),
                     line({"event": "handshake", "data": {"botName": "k", "version": "3.10.1"}}),
                     line({"event": "handshake", "data": {"botName": "k", "version": "4.0"}}),
                     line33("message", {"room": "x"}, b"broken"), b"{}QUJD\r"]
        for raw in headerRaw:
            self.assertIs(formOfLine(raw.rstrip(b"\n")), HEADER_RAW, raw)
        # The 3.3.3 handshake, byte for byte as a bridge sends it.
        self.assertIs(formOfLine(handshake33().rstrip(b"\n")), HEADER_RAW)
        self.assertEqual(HELLO_333["version"], "3.3.3")
        self.assertEqual(AUTH_333["version"], "3.3.3")
