"""BridgeProtocol with 3.3 bridges (header + base64 raw), beside 3.2 ones: StringTransport and task.Clock."""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from kkobot import __version__

from kkobot.bridge import wire

from kkobot.bridge import wire33
from kkobot.chatlog.log import ChatRow
from kkobot.commands import Reply
from kkobot.interfaces import ICommand
from kkobot.bridge.outbound import Outbound
from kkobot.chatlog.pings import PingRow
from kkobot.bridge.wireforms import HEADER_RAW, JSON_LINES
from tests.support.lines33 import (
    AUTH_333, BRIDGE_LINES_333, ServerLine33, handshake33, line33, message33, pong33,
    readServerLines33,
)
from tests.support import HELLO_320, analyze, line, logText
from tests.bridge.test_protocol import Connection, ProtocolTestCase

ROOM = "테스트방"
CHANNEL = "18398338829933568"
HANDSHAKE_OK_33 = {"success": True, "approved": True, "message": "ok",
                   "server_version": __version__, "message_positions": [0, 0]}


@implementer(IPlugin, ICommand)
class Pictures:
    """`# pics` → two images by URL, then one inline; `# pics bad` → a payload that is not base64."""

    name = "pics"
    aliases = ()
    description = "test"
    usage = "# pics"

    def run(self, context: Any) -> list[Reply]:
        if context.args == "bad":
            return [Reply.image("not base64!"), Reply("그래도 글은 갑니다")]
        return [Reply.media("https://img.example/a.png", "https://img.example/b}.png", waitTime=3000),
                Reply.image(b"\x89PNG\r\n")]


class Connection33(Connection):
    """A connection whose server lines are read as a 3.3 bridge reads them."""

    def lines(self) -> list[ServerLine33]:
        data = self.transport.value()
        self.transport.clear()
        return readServerLines33(data)

    def sendLines(self, *raws: bytes) -> None:
        self.proto.dataReceived(b"".join(raws))


class Protocol33TestCase(ProtocolTestCase):
    def connect33(self, host: str = "192.168.1.100") -> Connection33:
        conn = self.connect(host)
        return Connection33(conn.proto, conn.transport)

    def handshaken33(self, host: str = "192.168.1.100") -> Connection33:
        conn = self.connect33(host)
        conn.sendLines(handshake33())
        [answer] = conn.lines()
        self.assertEqual((answer.event, answer.data, answer.raw), ("handshakeComplete", HANDSHAKE_OK_33, ""))
        return conn

    def replies(self, conn: Connection33) -> list[str]:
        return [(sent.data["room"], sent.data["channel_id"], sent.text) for sent in conn.lines()]


class Handshake33Tests(Protocol33TestCase):
    def test_handshakeAnsweredIn33Form(self) -> None:
        conn = self.handshaken33()
        [client] = list(self.registry)
        self.assertEqual((client.botName, client.version, client.deviceID, client.deviceInfo),
                         ("kkobot", "3.3.3", "5f3c2a1b9d8e7f60", "samsung SM-S911N (Android 14, API 34)"))
        self.assertIs(client.form, HEADER_RAW)
        self.assertIs(conn.proto.form, HEADER_RAW)

    def test_messagesBeforeTheHandshake(self) -> None:
        """A 3.3.3 bridge flushes its queue first: the first message introduces it."""
        conn = self.connect33()
        conn.sendLines(
            message33("# echo 하나", auth=AUTH_333),
            message33("줄 서 있던 잡담", auth=AUTH_333),
            message33("# echo 셋", auth=AUTH_333),
            handshake33(),
        )
        lines = conn.lines()
        self.assertEqual([sent.event for sent in lines],
                         ["handshakeComplete", "messageResponse", "messageResponse", "handshakeComplete"])
        self.assertEqual([sent.data for sent in (lines[0], lines[3])], [HANDSHAKE_OK_33] * 2)
        self.assertEqual([sent.text for sent in lines[1:3]], ["에코: 하나", "에코: 셋"])
        [client] = list(self.registry)
        self.assertEqual((client.botName, client.version, client.deviceID),
                         ("kkobot", "3.3.3", "5f3c2a1b9d8e7f60"))
        self.assertIs(client.form, HEADER_RAW)
        self.assertEqual([row.message for row in self.chatlog.rows],
                         ["# echo 하나", "에코: 하나", "줄 서 있던 잡담", "# echo 셋", "에코: 셋"])

    def test_pongBeforeTheHandshakeNeedsOne(self) -> None:
        conn = self.connect33()
        conn.sendLines(pong33(1))
        [error] = conn.lines()
        self.assertEqual((error.event, error.data["code"]), ("error", wire.HANDSHAKE_REQUIRED))
        self.assertEqual(len(self.registry), 0)

    def test_handshakeTimeoutIn33FormAfterA33Line(self) -> None:
        conn = self.connect33()
        conn.sendLines(pong33(1))
        conn.lines()
        self.clock.advance(30)
        [error] = conn.lines()
        # Not introduced yet: answered in the form of its last line.
        self.assertEqual(error.data["code"], wire.HANDSHAKE_TIMEOUT)
        self.assertEqual(error.data["message_positions"], [0, 0])
        self.assertTrue(conn.closing)


class Chat33Tests(Protocol33TestCase):
    def test_exactBridgeLinesOneByteAtATime(self) -> None:
        conn = self.connect33()
        for i in range(len(BRIDGE_LINES_333)):
            conn.sendRaw(BRIDGE_LINES_333[i:i + 1])
        handshake, reply = conn.lines()  # the pong answers no ping of ours: no ping back
        self.assertEqual(handshake.data, HANDSHAKE_OK_33)
        self.assertEqual(reply.event, "messageResponse")
        self.assertEqual(reply.data, {"room": ROOM, "channel_id": CHANNEL, "message_type": "text",
                                      "content_encoding": "base64", "message_positions": [0, 32]})
        self.assertEqual(reply.text, "에코: 안녕하세요")
        message, answer, ping = self.chatlog.rows
        self.assertEqual(message, ChatRow(
            channel_id=CHANNEL, user_hash="a1b2c3", room_name=ROOM, sender="홍길동",
            message="# echo 안녕하세요", directive="# echo", message_type="command",
            is_meaningful=1, bot_name="kkobot", is_mention=0, is_group_chat=1,
            log_id="3371984461207437313", client_timestamp="2026-12-03 04:43:33",
            server_timestamp=message.server_timestamp, is_bot=0, is_our_bot_response=0,
            is_scheduled=0))
        self.assertEqual(answer.message, "에코: 안녕하세요")
        self.assertIsInstance(ping, PingRow)
        [client] = list(self.registry)
        self.assertEqual(client.monitoring["active_rooms"], 1)

    def test_emojiAndLines(self) -> None:
        conn = self.handshaken33()
        conn.sendLines(message33("# echo 😀 이모지 👍🏽"), message33("# echo 첫 줄\n둘째 줄"))
        self.assertEqual(self.replies(conn), [(ROOM, CHANNEL, "에코: 😀 이모지 👍🏽"),
                                              (ROOM, CHANNEL, "에코: 첫 줄\n둘째 줄")])
        self.assertEqual([row.message for row in self.chatlog.rows][::2],
                         ["# echo 😀 이모지 👍🏽", "# echo 첫 줄\n둘째 줄"])

    def test_usageAndSilence(self) -> None:
        conn = self.handshaken33()
        conn.sendLines(message33("# echo"), message33("그냥 대화"), message33("", channelId=None))
        self.assertEqual(self.replies(conn), [(ROOM, CHANNEL, "사용법: # echo {내용}")])
        self.assertEqual([row.message for row in self.chatlog.rows],
                         ["# echo", "사용법: # echo {내용}", "그냥 대화", ""])

    def test_mediaReply(self) -> None:
        self.addCommand(Pictures())
        conn = self.handshaken33()
        conn.sendLines(message33("# pics"))
        urls, inline = conn.lines()
        self.assertEqual(urls.data, {"room": ROOM, "channel_id": CHANNEL, "message_type": "image",
                                     "media_wait_time": 3000, "message_positions": [0, 25, 53]})
        self.assertEqual(urls.pieces, ["https://img.example/a.png", "https://img.example/b%7D.png"])
        self.assertEqual(inline.data["message_type"], "image")
        self.assertEqual([base64.b64decode(p) for p in inline.pieces], [b"\x89PNG\r\n"])

    def test_replyTheFormCannotCarryIsLoggedAndTheRestSent(self) -> None:
        self.addCommand(Pictures())
        conn = self.handshaken33()
        conn.sendLines(message33("# pics bad"), message33("# echo 다음"))
        self.assertEqual([sent.text for sent in conn.lines()], ["그래도 글은 갑니다", "에코: 다음"])
        self.assertIn("[MSG] a reply to 테스트방 was not sent", logText(self.logs))
        self.assertFalse(conn.closing)

    def test_analyzeOnA33ConnectionIsUnknown(self) -> None:
        conn = self.handshaken33()
        conn.send(analyze("# echo 3.2 모양"))
        [error] = conn.lines()
        self.assertEqual(error.data["code"], wire.UNKNOWN_EVENT)


class Ping33Tests(Protocol33TestCase):
    def test_pongGivesTheRoundTrip(self) -> None:
        conn = self.handshaken33()
        self.clock.advance(30)
        [ping] = conn.lines()
        self.assertEqual((ping.event, ping.data),
                         ("ping", {"bot_name": "kkobot", "server_timestamp": self.nowMillis(),
                                   "message_positions": [0, 0]}))
        self.clock.advance(0.25)
        conn.sendLines(pong33(ping.data["server_timestamp"], auth=AUTH_333))
        self.assertEqual(conn.lines(), [])
        [client] = list(self.registry)
        self.assertEqual(client.lastRttMillis, 250)
        self.assertEqual(client.monitoring["total_memory"], 6028)
        [row] = self.chatlog.rows
        self.assertIsInstance(row, PingRow)
        self.assertEqual(row.values()[10], 250)  # rtt_ms
        self.assertEqual(row.values()[4], "3.3.3")  # client_version

    def test_pongToAForgottenPingIsNotAnswered(self) -> None:
        conn = self.handshaken33()
        self.clock.advance(10)
        conn.sendLines(pong33(12345))
        self.assertEqual(conn.lines(), [])
        [client] = list(self.registry)
        self.assertIsNone(client.lastRttMillis)
        self.assertEqual(client.lastPingAt, self.clock.seconds())

    def test_332AnswersWithPing(self) -> None:
        conn = self.handshaken33()
        self.clock.advance(30)
        [ping] = conn.lines()
        self.clock.advance(0.1)
        conn.sendLines(pong33(ping.data["server_timestamp"], event="ping"))
        self.assertEqual(conn.lines(), [])
        self.assertEqual(list(self.registry)[0].lastRttMillis, 100)

    def test_unpromptedPingIsAnsweredIn33Form(self) -> None:
        conn = self.handshaken33()
        self.clock.advance(10)
        conn.sendLines(pong33(None, event="ping"))
        [ping] = conn.lines()
        self.assertEqual(ping.data["message_positions"], [0, 0])

    def test_idleTimeoutIn33Form(self) -> None:
        conn = self.handshaken33()
        self.clock.advance(90)
        lines = conn.lines()
        self.assertEqual(lines[-1].data["code"], wire.IDLE_TIMEOUT)
        self.assertEqual(lines[-1].data["timestamp"], wire33.isoTime(self.nowMillis()))
        self.assertTrue(conn.closing)


class BadLine33Tests(Protocol33TestCase):
    def bad(self) -> dict[str, bytes]:
        good = message33("# echo x").rstrip(b"\n")
        header, raw = good[: good.rindex(b"}") + 1], good[good.rindex(b"}") + 1:]
        data = json.loads(header)["data"]

        def withData(raw: bytes = raw, **changes: Any) -> bytes:
            return line33("message", dict(data, **changes), raw)

        return {
            "not base64": withData(b"%%%%%%%%%%%%", message_positions=[0, 12]),
            "positions not ints": withData(message_positions=[0, "12"]),
            "positions not ascending": withData(message_positions=[0, 12, 8, 12]),
            "positions beyond raw": withData(message_positions=[0, 99]),
            "positions wrong count": withData(message_positions=[0, 4, 12]),
            "brace in raw": withData(raw[:4] + b"}" + raw[4:], message_positions=[0, len(raw) + 1]),
            "header not an object": b'["message"]}' + raw + b"\n",
            "invalid utf-8": withData(base64.b64encode(b"\xff\xfe"), message_positions=[0, 4]),
            "content encoding": withData(content_encoding="utf-8"),
        }

    def test_eachBadLineGetsAnErrorIn33FormAndTheConnectionGoesOn(self) -> None:
        conn = self.handshaken33()
        bad = self.bad()
        for kind, raw in bad.items():
            conn.sendLines(raw)
            [error] = conn.lines()
            self.assertEqual(error.event, "error", kind)
            self.assertIn(error.data["code"], {wire.BAD_FIELD, wire33.BAD_CONTENT, wire.BAD_JSON,
                                               wire.BAD_ENCODING}, kind)
            self.assertEqual(error.data["message_positions"], [0, 0])
            self.assertFalse(conn.closing, kind)
        self.assertEqual(self.chatlog.rows, [])
        conn.sendLines(message33("# echo 괜찮아요"))
        self.assertEqual([sent.text for sent in conn.lines()], ["에코: 괜찮아요"])
        log = logText(self.logs)
        self.assertIn("[MSG] bad line from 192.168.1.100: BAD_CONTENT the raw content is not base64", log)
        self.assertIn("[MSG] bad line from 192.168.1.100: BAD_CONTENT the raw content must not contain '}'", log)

    def test_aBad33FirstLineIsAnsweredIn33Form(self) -> None:
        conn = self.connect33()
        conn.sendLines(self.bad()["not base64"])
        [error] = conn.lines()
        self.assertEqual(error.data["code"], wire33.BAD_CONTENT)
        self.assertEqual(error.data["message_positions"], [0, 0])
        # It introduced nothing: a 3.2 bridge may still take this connection.
        conn.send(HELLO_320)
        self.assertEqual(conn.received()[0]["data"]["success"], True)
        self.assertIs(conn.proto.form, JSON_LINES)

    def test_badLinesOfOneConnectionDoNotReachAnother(self) -> None:
        noisy, calm = self.handshaken33(), self.handshaken33("192.168.1.101")
        for raw in self.bad().values():
            noisy.sendLines(raw)
        calm.sendLines(message33("# echo 조용히"))
        self.assertEqual([sent.text for sent in calm.lines()], ["에코: 조용히"])


class SideBySideTests(Protocol33TestCase):
    def test_32And33OnOneServerEachInItsForm(self) -> None:
        old = self.handshaken(HELLO_320)
        new = self.handshaken33("192.168.1.101")
        old.send(analyze("# echo 예전"))
        new.sendLines(message33("# echo 새것"))
        self.assertEqual(old.received(), [{"event": "messageResponse", "data": {
            "room": ROOM, "text": "에코: 예전", "channel_id": CHANNEL}}])
        self.assertEqual([sent.text for sent in new.lines()], ["에코: 새것"])
        self.clock.advance(30)
        [oldPing] = old.received()
        [newPing] = new.lines()
        self.assertNotIn("message_positions", oldPing["data"])
        self.assertEqual(newPing.data["message_positions"], [0, 0])

    def test_outboundInTheClientsForm(self) -> None:
        """Schedules, the admin API and context.send() reach a 3.3 client in 3.3 form."""
        old = self.handshaken(HELLO_320)
        new = self.handshaken33("192.168.1.101")
        [oldClient, newClient] = sorted(self.registry, key=lambda c: c.version)
        newClient.botName = "LOA.i"  # two bots, so each message has one connection to go to
        outbound = Outbound(self.registry, self.chatlog, self.clock)
        self.assertTrue(outbound.send("LOA.i", "공지방", "오늘 점검 😀\n내일 재개", channelId="77"))
        self.assertTrue(outbound.send("LOA.i", "공지방", "MEDIA_URL:https://img.example/c.png",
                                      channelId="77", mediaWaitTime=2000))
        self.assertTrue(outbound.send("kkobot", "공지방", "예전 방식", scheduled=True))
        text, media = new.lines()
        self.assertEqual((text.data["room"], text.data["channel_id"], text.text),
                         ("공지방", "77", "오늘 점검 😀\n내일 재개"))
        self.assertEqual((media.data["message_type"], media.data["media_wait_time"], media.pieces),
                         ("image", 2000, ["https://img.example/c.png"]))
        self.assertEqual(old.received(), [{"event": "messageResponse", "data": {
            "room": "공지방", "text": "예전 방식", "channel_id": None}}])
        self.assertEqual([row.message for row in self.chatlog.rows],
                         ["오늘 점검 😀\n내일 재개", "MEDIA_URL:https://img.example/c.png", "예전 방식"])

    def test_outboundReplyTheFormCannotCarryIsNeitherSentNorLogged(self) -> None:
        new = self.handshaken33()
        outbound = Outbound(self.registry, self.chatlog, self.clock)
        self.assertFalse(outbound.send("kkobot", "공지방", "IMAGE_BASE64:not base64!"))
        self.assertEqual(new.lines(), [])
        self.assertEqual(self.chatlog.rows, [])

    def test_deviceNoticeIn33Form(self) -> None:
        # devices.py tells a client its approval changed with a fresh handshakeComplete.
        new = self.handshaken33()
        new.proto.sendEvent("handshakeComplete", {"success": True, "approved": False,
                                                  "message": "pending", "server_version": __version__})
        [notice] = new.lines()
        self.assertEqual((notice.data["approved"], notice.data["message_positions"]), (False, [0, 0]))

    def test_lineTooLongOnA33Connection(self) -> None:
        new = self.handshaken33()
        new.sendRaw(b"{" + b"A" * (self.maxLineBytes + 1))
        [error] = new.lines()
        self.assertEqual((error.data["code"], error.data["message_positions"]), (wire.LINE_TOO_LONG, [0, 0]))
        self.assertTrue(new.closing)

    def test_32LinesAreStillAnswered(self) -> None:
        conn = self.connect()
        conn.sendRaw(line(HELLO_320) + line(analyze("# echo 그대로")))
        self.assertEqual([e["event"] for e in conn.received()], ["handshakeComplete", "messageResponse"])
        self.assertIs(conn.proto.form, JSON_LINES)
