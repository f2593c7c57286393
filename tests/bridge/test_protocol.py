"""BridgeProtocol: a bridge connection driven through StringTransport and task.Clock."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.plugin import IPlugin
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from kkobot import __version__

from kkobot.bridge import wire
from kkobot.bridge.auth import Admission
from kkobot.commands import ERROR_REPLY, CommandRegistry
from kkobot.interfaces import IChatLog, ICommand
from kkobot.bridge.protocol import BridgeFactory, BridgeProtocol
from kkobot.bridge.registry import ClientRegistry
from kkobot.commands.router import MessageRouter
from kkobot.testing import MemoryChatLog
from tests.support import (
    AUTH,
    BRIDGE_LINES,
    HELLO_290,
    HELLO_314,
    HELLO_320,
    analyze,
    captureLogs,
    line,
    logText,
)

ROOM = "테스트방"
CHANNEL = "18398338829933568"
ECHO_REPLY = {
    "event": "messageResponse",
    "data": {"room": ROOM, "text": "에코: 안녕하세요", "channel_id": CHANNEL},
}
HANDSHAKE_OK = {
    "event": "handshakeComplete",
    "data": {"success": True, "approved": True, "message": "ok", "server_version": __version__},
}

# The bridge's ping below echoes a timestamp this server never sent: it is
# answered like an unprompted ping (the test clock stands at 1795602310 s).
PING_ANSWER = {"event": "ping", "data": {"bot_name": "kkobot", "server_timestamp": 1795602310000}}


@implementer(IPlugin, ICommand)
class Slow:
    """A command whose reply comes later: `# slow x` → `느림: x` when the test fires it."""

    name = "slow"
    aliases = ()
    description = "test"
    usage = "# slow {x}"

    def __init__(self) -> None:
        self.pending: list[defer.Deferred[str]] = []

    def run(self, context: Any) -> defer.Deferred[str]:
        d: defer.Deferred[str] = defer.Deferred()
        d.addCallback(lambda _: f"느림: {context.args}")
        self.pending.append(d)
        return d


@implementer(IPlugin, ICommand)
class Broken:
    name = "broken"
    aliases = ()
    description = "test"
    usage = "# broken"

    def run(self, context: Any) -> str:
        return str(1 // 0)


class Connection:
    """One client connection: what it sent and what the server wrote back."""

    def __init__(self, proto: BridgeProtocol, transport: StringTransport) -> None:
        self.proto = proto
        self.transport = transport

    def send(self, *objs: dict[str, Any]) -> None:
        self.proto.dataReceived(b"".join(line(o) for o in objs))

    def sendRaw(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def received(self) -> list[dict[str, Any]]:
        """Server lines since the last call, each checked to be one JSON object + \\n."""
        data = self.transport.value()
        self.transport.clear()
        if not data:
            return []
        assert data.endswith(b"\n"), data
        events = []
        for raw in data.split(b"\n")[:-1]:
            event = json.loads(raw.decode("utf-8"))
            assert isinstance(event.get("data"), dict), event
            events.append(event)
        return events

    @property
    def closing(self) -> bool:
        return self.transport.disconnecting

    def lose(self) -> None:
        """The TCP connection is gone (after our close or the client's)."""
        self.proto.connectionLost(Failure(ConnectionDone()))


class ProtocolTestCase(SynchronousTestCase):
    maxLineBytes = wire.DEFAULT_MAX_LINE_BYTES

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1795602310.0)  # a realistic epoch: 2026-11-25
        self.commands = CommandRegistry()
        self.commands.load()
        self.chatlog = MemoryChatLog()
        verifyObject(IChatLog, self.chatlog)
        self.router = MessageRouter(self.commands, self.chatlog, self.clock)
        self.registry = ClientRegistry()
        self.factory = BridgeFactory(
            self.router,
            registry=self.registry,
            clock=self.clock,
            maxLineBytes=self.maxLineBytes,
            **self.factoryArgs(),
        )
        self.logs = captureLogs(self)

    def factoryArgs(self) -> dict[str, Any]:
        return {}

    def addCommand(self, command: Any) -> None:
        # The test-only command goes into the registry as a plugin would.
        self.commands._commands[command.name] = command

    def connect(self, host: str = "192.168.1.100") -> Connection:
        proto = self.factory.buildProtocol(IPv4Address("TCP", host, 41234))
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 1490),
            peerAddress=IPv4Address("TCP", host, 41234),
        )
        proto.makeConnection(transport)
        return Connection(proto, transport)

    def handshaken(self, hello: dict[str, Any] = HELLO_320, host: str = "192.168.1.100") -> Connection:
        conn = self.connect(host)
        conn.send(hello)
        self.assertEqual(conn.received(), [HANDSHAKE_OK])
        return conn

    def nowMillis(self) -> int:
        return int(self.clock.seconds() * 1000)


class HandshakeTests(ProtocolTestCase):
    def test_bare320(self) -> None:
        conn = self.handshaken(HELLO_320)
        [client] = list(self.registry)
        self.assertEqual(client.botName, "kkobot")
        self.assertEqual(client.version, "3.2.0")
        self.assertEqual(client.clientType, "MessengerBotR")
        self.assertEqual(client.deviceID, "5f3c2a1b9d8e7f60")
        self.assertEqual(client.deviceInfo, "samsung SM-S911N (Android 14, API 34)")
        self.assertEqual(client.address, "192.168.1.100")
        self.assertEqual(client.connectedSince, self.clock.seconds())
        self.assertIs(client.approved, True)
        self.assertFalse(conn.closing)

    def test_bare314(self) -> None:
        self.handshaken(HELLO_314)
        [client] = list(self.registry)
        self.assertEqual((client.botName, client.version, client.deviceID),
                         ("kkobot", "3.1.4", "5f3c2a1b9d8e7f60"))

    def test_bare290(self) -> None:
        conn = self.handshaken(HELLO_290)
        [client] = list(self.registry)
        self.assertEqual((client.botName, client.version), ("kkobot", "2.9.0c"))
        self.assertIsNone(client.deviceID)
        conn.send(analyze("# echo 안녕하세요", auth={"deviceUUID": "unknown"}))
        self.assertEqual(conn.received(), [ECHO_REPLY])
        self.assertIsNone(client.deviceID)
        # PROTOCOL.md: without deviceID, the device is known by auth.deviceUUID.
        conn.send(analyze("# echo 안녕하세요", auth={"deviceUUID": "0a0b0c", "botName": "kkobot"}))
        self.assertEqual(conn.received(), [ECHO_REPLY])
        self.assertEqual(client.deviceID, "0a0b0c")
        self.assertEqual(self.registry.forBot("kkobot")[0].asDict()["device_id"], "0a0b0c")

    def test_wrapped(self) -> None:
        self.handshaken({"event": "handshake", "data": HELLO_320})
        [client] = list(self.registry)
        self.assertEqual(client.deviceID, "5f3c2a1b9d8e7f60")

    def test_analyzeFirst(self) -> None:
        conn = self.connect()
        conn.send(analyze("# echo 안녕하세요", auth=AUTH))
        self.assertEqual(conn.received(), [HANDSHAKE_OK, ECHO_REPLY])
        [client] = list(self.registry)
        self.assertEqual(client.botName, "kkobot")
        self.assertEqual(client.version, "3.2.0")
        self.assertEqual(client.deviceID, "5f3c2a1b9d8e7f60")
        self.assertEqual(len(self.chatlog.rows), 2)

    def test_analyzeFirstFrom290(self) -> None:
        # 2.9.0c: no deviceID inside auth either.
        conn = self.connect()
        conn.send(analyze("# echo 안녕하세요", auth={"botName": "kkobot", "deviceUUID": "0a0b0c",
                                                "version": "2.9.0c"}))
        self.assertEqual(conn.received(), [HANDSHAKE_OK, ECHO_REPLY])
        [client] = list(self.registry)
        self.assertEqual((client.version, client.deviceID), ("2.9.0c", "0a0b0c"))

    def test_analyzeFirstWithoutAuth(self) -> None:
        conn = self.connect()
        conn.send(analyze("# echo 안녕하세요"))
        self.assertEqual(conn.received(), [HANDSHAKE_OK, ECHO_REPLY])
        [client] = list(self.registry)
        self.assertEqual(client.botName, "kkobot")

    def test_repeatedHandshakeIsAnsweredAgain(self) -> None:
        conn = self.handshaken()
        conn.send(HELLO_320)
        self.assertEqual(conn.received(), [HANDSHAKE_OK])
        self.assertEqual(len(self.registry), 1)

    def test_pingBeforeHandshake(self) -> None:
        conn = self.connect()
        conn.send({"event": "ping", "data": {"bot_name": "kkobot"}})
        [error] = conn.received()
        self.assertEqual(error["event"], "error")
        self.assertEqual(error["data"]["code"], wire.HANDSHAKE_REQUIRED)
        self.assertEqual(error["data"]["timestamp"], self.nowMillis())
        self.assertFalse(conn.closing)
        self.assertEqual(len(self.registry), 0)
        # The connection is still usable.
        conn.send(HELLO_320)
        self.assertEqual(conn.received(), [HANDSHAKE_OK])

    def test_handshakeTimeout(self) -> None:
        conn = self.connect()
        self.clock.advance(29.9)
        self.assertEqual(conn.received(), [])
        self.assertFalse(conn.closing)
        self.clock.advance(0.1)
        [error] = conn.received()
        self.assertEqual(error["data"]["code"], wire.HANDSHAKE_TIMEOUT)
        self.assertTrue(conn.closing)

    def test_badLinesDoNotExtendTheHandshakeDeadline(self) -> None:
        # A client that never says who it is must not stay connected by sending junk.
        conn = self.connect()
        for _ in range(2):
            self.clock.advance(10)
            conn.sendRaw(b"junk\n")
            conn.send({"event": "ping", "data": {}})
        conn.received()
        self.clock.advance(10)
        [error] = conn.received()
        self.assertEqual(error["data"]["code"], wire.HANDSHAKE_TIMEOUT)
        self.assertTrue(conn.closing)

    def test_handshakeStopsTheHandshakeTimer(self) -> None:
        conn = self.handshaken()
        self.clock.advance(30)
        self.assertEqual([e["event"] for e in conn.received()], ["ping"])
        self.assertFalse(conn.closing)


class DeferredAdmission:
    """An authenticator whose decision the test makes later."""

    def __init__(self) -> None:
        self.decisions: list[defer.Deferred[Admission]] = []

    def checkHello(self, hello: wire.Hello, address: str) -> defer.Deferred[Admission]:
        d: defer.Deferred[Admission] = defer.Deferred()
        self.decisions.append(d)
        return d

    def verifyEvent(self, client: Any, auth: Any) -> None:
        return None


class SlowHandshakeTests(ProtocolTestCase):
    def factoryArgs(self) -> dict[str, Any]:
        self.auth = DeferredAdmission()
        return {"authenticator": self.auth}

    def test_linesWaitForTheHandshakeDecision(self) -> None:
        conn = self.connect()
        conn.send(HELLO_320, analyze("# echo 안녕하세요"))
        self.assertEqual(conn.received(), [])
        self.assertEqual(len(self.auth.decisions), 1)
        self.auth.decisions[0].callback(Admission(True, True))
        self.assertEqual(conn.received(), [HANDSHAKE_OK, ECHO_REPLY])

    def test_refused(self) -> None:
        conn = self.connect()
        conn.send(HELLO_320, analyze("# echo 안녕하세요"))
        self.auth.decisions[0].callback(Admission(False, False, "unknown device"))
        [answer] = conn.received()
        self.assertEqual(answer["event"], "handshakeComplete")
        self.assertEqual(answer["data"]["success"], False)
        self.assertEqual(answer["data"]["message"], "unknown device")
        self.assertTrue(conn.closing)
        self.assertEqual(len(self.registry), 0)
        self.assertEqual(self.chatlog.rows, [])

    def test_pendingDeviceIsLoggedButNotAnswered(self) -> None:
        conn = self.connect()
        conn.send(HELLO_320)
        self.auth.decisions[0].callback(Admission(True, False, "pending approval"))
        [answer] = conn.received()
        self.assertEqual(answer["data"]["success"], True)
        self.assertEqual(answer["data"]["approved"], False)
        conn.send(analyze("# echo 안녕하세요"))
        self.assertEqual(conn.received(), [])
        self.assertEqual(len(self.chatlog.rows), 1)

    def test_authenticatorErrorIsAFailedHandshake(self) -> None:
        conn = self.connect()
        conn.send(HELLO_320)
        self.auth.decisions[0].errback(RuntimeError("db down"))
        [answer] = conn.received()
        self.assertEqual(answer["data"]["success"], False)
        self.assertTrue(conn.closing)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class ChatTests(ProtocolTestCase):
    def test_echo(self) -> None:
        conn = self.handshaken()
        conn.send(analyze("# echo 안녕하세요"))
        self.assertEqual(conn.received(), [ECHO_REPLY])

    def test_echoTrimsAndKeepsInnerText(self) -> None:
        conn = self.handshaken()
        conn.send(analyze("#   ECHO    여러  칸   띄움  \n둘째 줄  "))
        [reply] = conn.received()
        self.assertEqual(reply["data"]["text"], "에코: 여러  칸   띄움  \n둘째 줄")

    def test_echoUsage(self) -> None:
        conn = self.handshaken()
        for text in ["# echo", "# echo   ", "#echo"]:
            conn.send(analyze(text))
            self.assertEqual(
                conn.received(),
                [{"event": "messageResponse",
                  "data": {"room": ROOM, "text": "사용법: # echo {내용}", "channel_id": CHANNEL}}],
            )

    def test_nonCommandTextGetsNoReplyButIsLogged(self) -> None:
        conn = self.handshaken()
        for text in ["안녕하세요", "#", "# ", "#없는명령 인자", "echo 안녕"]:
            conn.send(analyze(text))
        self.assertEqual(conn.received(), [])
        self.assertEqual([r.message for r in self.chatlog.rows],
                         ["안녕하세요", "#", "# ", "#없는명령 인자", "echo 안녕"])

    def test_replyKeepsNullChannel(self) -> None:
        conn = self.handshaken()
        conn.send(analyze("# echo 안녕하세요", channelId=None))
        self.assertEqual(
            conn.received(),
            [{"event": "messageResponse",
              "data": {"room": ROOM, "text": "에코: 안녕하세요", "channel_id": None}}],
        )

    def test_rowsForMessageAndReply(self) -> None:
        conn = self.handshaken()
        conn.send(analyze("# echo 안녕하세요"))
        message, reply = self.chatlog.rows
        self.assertEqual((message.message, message.directive, message.is_our_bot_response),
                         ("# echo 안녕하세요", "# echo", 0))
        self.assertEqual((reply.message, reply.directive, reply.is_our_bot_response),
                         ("에코: 안녕하세요", "# echo", 1))

    def test_exactBridgeLinesOneByteAtATime(self) -> None:
        conn = self.connect()
        for i in range(len(BRIDGE_LINES)):
            conn.sendRaw(BRIDGE_LINES[i:i + 1])
        self.assertEqual(conn.received(), [HANDSHAKE_OK, ECHO_REPLY, PING_ANSWER])
        [client] = list(self.registry)
        self.assertEqual(client.monitoring["active_rooms"], 1)

    def test_exactBridgeLinesInOddChunks(self) -> None:
        conn = self.connect()
        for start in range(0, len(BRIDGE_LINES), 7):
            conn.sendRaw(BRIDGE_LINES[start:start + 7])
        self.assertEqual(conn.received(), [HANDSHAKE_OK, ECHO_REPLY, PING_ANSWER])

    def test_crlfLines(self) -> None:
        conn = self.connect()
        conn.sendRaw(BRIDGE_LINES.replace(b"\n", b"\r\n"))
        self.assertEqual(conn.received(), [HANDSHAKE_OK, ECHO_REPLY, PING_ANSWER])

    def test_blankLinesIgnored(self) -> None:
        conn = self.handshaken()
        conn.sendRaw(b"\n\r\n   \n")
        self.assertEqual(conn.received(), [])

    def test_badLineThenGoodLine(self) -> None:
        conn = self.handshaken()
        conn.sendRaw(b"{not json\n" + line(analyze("# echo 안녕하세요")))
        error, reply = conn.received()
        self.assertEqual(error["event"], "error")
        self.assertEqual(error["data"]["code"], wire.BAD_JSON)
        self.assertEqual(reply, ECHO_REPLY)
        self.assertFalse(conn.closing)

    def test_everyBadLineIsAnsweredAndTheConnectionServed(self) -> None:
        conn = self.handshaken()
        bad = [
            (b"\xff\xfe\n", wire.BAD_ENCODING),
            (b"[1,2]\n", wire.BAD_JSON),
            (b"[" * 10_000 + b"\n", wire.BAD_JSON),
            (b'{"data":{}}\n', wire.BAD_EVENT),
            (b'{"event":"analyze","data":null}\n', wire.BAD_EVENT),
            (b'{"event":"subscribe","data":{}}\n', wire.UNKNOWN_EVENT),
            (line(analyze("x", isGroupChat="sometimes")), wire.BAD_FIELD),
            (line({"event": "analyze", "data": {"room": ROOM}}), wire.BAD_FIELD),
            (b'{"event":"ping","data":{"server_timestamp":"\xc2\xb2"}}\n', wire.BAD_FIELD),
        ]
        for data, code in bad:
            conn.sendRaw(data)
            [error] = conn.received()
            self.assertEqual((error["event"], error["data"]["code"]), ("error", code), data[:40])
        conn.send(analyze("# echo 안녕하세요"))
        self.assertEqual(conn.received(), [ECHO_REPLY])

    def test_unknownEventIsAWarning(self) -> None:
        conn = self.handshaken()
        conn.send({"event": "subscribe", "data": {}})
        warnings = [e for e in self.logs if "subscribe" in logText([e])]
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["log_level"].name, "warn")
        self.assertEqual(logText(warnings), "[MSG] 192.168.1.100: unknown event 'subscribe'")

    def test_badLineReasonIsLogged(self) -> None:
        conn = self.handshaken()
        conn.send({"event": "analyze", "data": {"room": ROOM}})
        self.assertIn("[MSG] bad line from 192.168.1.100: BAD_FIELD missing field 'text'",
                      logText(self.logs))

    def test_oneClientsBadLinesDoNotReachAnother(self) -> None:
        good = self.handshaken(host="10.0.0.1")
        bad = self.handshaken(host="10.0.0.2")
        bad.sendRaw(b"\xff\n{}\n")
        good.send(analyze("# echo 안녕하세요"))
        self.assertEqual(good.received(), [ECHO_REPLY])
        self.assertEqual([e["event"] for e in bad.received()], ["error", "error"])

    def test_loneSurrogateInTextIsStillAnswered(self) -> None:
        conn = self.handshaken()
        conn.sendRaw(b'{"event":"analyze","data":{"room":"r","text":"# echo a\\ud83d"}}\n')
        [reply] = conn.received()
        self.assertEqual(reply["data"]["text"], "에코: a\ufffd")


class InternalErrorTests(ProtocolTestCase):
    def test_serverBugOnOneLineIsReportedAndTheNextLineServed(self) -> None:
        conn = self.handshaken()
        original = self.chatlog.log
        calls = []

        def failOnce(row: Any) -> None:
            calls.append(row)
            if len(calls) == 1:
                raise RuntimeError("chat log bug")
            original(row)

        self.chatlog.log = failOnce  # type: ignore[method-assign]
        conn.send(analyze("# echo 하나"), analyze("# echo 안녕하세요"))
        error, reply = conn.received()
        self.assertEqual((error["event"], error["data"]["code"]), ("error", wire.INTERNAL_ERROR))
        self.assertEqual(reply, ECHO_REPLY)
        self.assertFalse(conn.closing)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIn("chat log bug", logText(self.logs))


class OrderingTests(ProtocolTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.slow = Slow()
        self.addCommand(self.slow)

    def test_repliesInMessageOrderPerRoom(self) -> None:
        conn = self.handshaken()
        conn.send(analyze("# slow 1"), analyze("# echo 2"), analyze("# slow 3"), analyze("# echo 4"))
        self.assertEqual(conn.received(), [])
        self.slow.pending[1].callback(None)  # the later slow one finishes first
        self.assertEqual(conn.received(), [])
        self.slow.pending[0].callback(None)
        self.assertEqual([e["data"]["text"] for e in conn.received()],
                         ["느림: 1", "에코: 2", "느림: 3", "에코: 4"])
        # The room is free again.
        conn.send(analyze("# echo 5"))
        self.assertEqual([e["data"]["text"] for e in conn.received()], ["에코: 5"])

    def test_otherRoomsDoNotWait(self) -> None:
        conn = self.handshaken()
        conn.send(analyze("# slow 1", room="A", channelId="1"),
                  analyze("# echo 2", room="B", channelId="2"),
                  analyze("# echo 3", room="A", channelId="1"))
        self.assertEqual([(e["data"]["room"], e["data"]["text"]) for e in conn.received()],
                         [("B", "에코: 2")])
        self.slow.pending[0].callback(None)
        self.assertEqual([(e["data"]["room"], e["data"]["text"]) for e in conn.received()],
                         [("A", "느림: 1"), ("A", "에코: 3")])

    def test_roomsWithoutChannelIdAreKeyedByName(self) -> None:
        conn = self.handshaken()
        conn.send(analyze("# slow 1", channelId=None), analyze("# echo 2", channelId=None))
        self.assertEqual(conn.received(), [])
        self.slow.pending[0].callback(None)
        self.assertEqual([e["data"]["text"] for e in conn.received()], ["느림: 1", "에코: 2"])

    def test_replyAfterDisconnectIsDropped(self) -> None:
        conn = self.handshaken()
        conn.send(analyze("# slow 1"))
        conn.lose()
        self.slow.pending[0].callback(None)
        self.assertEqual(conn.received(), [])
        # The reply is still in the chat log: the bot did answer.
        self.assertEqual([r.message for r in self.chatlog.rows], ["# slow 1", "느림: 1"])


class FailingCommandTests(ProtocolTestCase):
    def test_raisingCommand(self) -> None:
        self.addCommand(Broken())
        conn = self.handshaken()
        conn.send(analyze("# broken"), analyze("# echo 안녕하세요"))
        self.assertEqual(
            conn.received(),
            [{"event": "messageResponse",
              "data": {"room": ROOM, "text": ERROR_REPLY, "channel_id": CHANNEL}},
             ECHO_REPLY],
        )
        self.assertIn("오류", ERROR_REPLY)
        # The traceback went to the log (as a failure: trial would flag it otherwise).
        [failure] = self.flushLoggedErrors(ZeroDivisionError)
        text = logText(self.logs)
        self.assertIn("broken", text)
        self.assertIn("ZeroDivisionError", text)
        self.assertIn("1 // 0", text)
        self.assertFalse(conn.closing)


class PingTests(ProtocolTestCase):
    def test_pingEvery30Seconds(self) -> None:
        conn = self.handshaken()
        start = self.nowMillis()
        self.clock.advance(29.9)
        self.assertEqual(conn.received(), [])
        self.clock.advance(0.1)
        self.assertEqual(
            conn.received(),
            [{"event": "ping", "data": {"bot_name": "kkobot", "server_timestamp": start + 30_000}}],
        )
        conn.send({"event": "ping", "data": {"server_timestamp": start + 30_000}})
        self.clock.advance(30)
        [ping] = conn.received()
        self.assertEqual(ping["data"]["server_timestamp"], start + 60_000)

    def test_rttRecorded(self) -> None:
        conn = self.handshaken()
        self.clock.advance(30)
        [ping] = conn.received()
        self.clock.advance(0.25)
        conn.send({"event": "ping", "data": {
            "bot_name": "kkobot", "server_timestamp": ping["data"]["server_timestamp"],
            "monitoring": {"total_memory": 6028, "memory_usage": 8, "memory_percent": 0.1,
                           "message_queue_size": 0, "active_rooms": 1},
            "auth": AUTH}})
        # An answer to our ping is not answered again.
        self.assertEqual(conn.received(), [])
        [client] = list(self.registry)
        self.assertEqual(client.lastRttMillis, 250)
        self.assertEqual(client.lastPingAt, self.clock.seconds())
        self.assertEqual(client.monitoring["memory_percent"], 0.1)
        self.assertEqual(client.asDict()["last_rtt_ms"], 250)
        self.assertEqual(client.asDict()["monitoring"]["active_rooms"], 1)

    def test_clientStatusRecorded(self) -> None:
        conn = self.handshaken(HELLO_290)
        conn.send({"event": "ping", "data": {
            "bot_name": "kkobot", "client_status": {"cpu": None, "ram": 41.5, "temp": None},
            "is_manual": False}})
        [client] = list(self.registry)
        self.assertEqual(client.monitoring, {"cpu": None, "ram": 41.5, "temp": None})
        self.assertIsNone(client.lastRttMillis)

    def test_unpromptedPingIsAnswered(self) -> None:
        conn = self.handshaken(HELLO_290)
        self.clock.advance(3)
        conn.send({"event": "ping", "data": {"bot_name": "kkobot", "is_manual": True}})
        self.assertEqual(
            conn.received(),
            [{"event": "ping", "data": {"bot_name": "kkobot", "server_timestamp": self.nowMillis()}}],
        )

    def test_pingWithForeignTimestampIsAnswered(self) -> None:
        # A timestamp we never sent is not a round trip.
        conn = self.handshaken()
        conn.send({"event": "ping", "data": {"server_timestamp": 12345}})
        [ping] = conn.received()
        self.assertEqual(ping["event"], "ping")
        [client] = list(self.registry)
        self.assertIsNone(client.lastRttMillis)

    def test_pingAnsweredWithAPingStartsNoPingPong(self) -> None:
        # An older bridge may answer our ping with a ping of its own (no timestamp):
        # that is not answered again, or the two sides would ping each other forever.
        conn = self.handshaken(HELLO_290)
        self.clock.advance(30)
        [ours] = conn.received()
        self.assertEqual(ours["event"], "ping")
        self.clock.advance(0.05)
        conn.send({"event": "ping", "data": {"bot_name": "kkobot", "is_manual": False}})
        self.assertEqual(conn.received(), [])
        # Well after our ping, an unprompted ping is answered again.
        self.clock.advance(10)
        conn.send({"event": "ping", "data": {"bot_name": "kkobot", "is_manual": True}})
        self.assertEqual([e["event"] for e in conn.received()], ["ping"])

    def test_idleClientDroppedAfterThreeIntervals(self) -> None:
        conn = self.handshaken()
        self.clock.pump([30, 30, 29.9])
        self.assertEqual([e["event"] for e in conn.received()], ["ping", "ping"])
        self.assertFalse(conn.closing)
        self.clock.advance(0.1)
        events = conn.received()
        self.assertEqual(events[-1]["event"], "error")
        self.assertEqual(events[-1]["data"]["code"], wire.IDLE_TIMEOUT)
        self.assertTrue(conn.closing)
        conn.lose()
        self.assertEqual(len(self.registry), 0)

    def test_clientThatAnswersStaysConnected(self) -> None:
        conn = self.handshaken()
        for _ in range(20):
            self.clock.advance(30)
            [ping] = conn.received()
            conn.send({"event": "ping", "data": {"server_timestamp": ping["data"]["server_timestamp"]}})
        self.assertFalse(conn.closing)
        self.assertEqual(len(self.registry), 1)

    def test_anyLineCountsAsLife(self) -> None:
        conn = self.handshaken()
        for _ in range(5):
            self.clock.advance(80)
            conn.send(analyze("그냥 잡담"))
        self.assertFalse(conn.closing)


class ConfiguredPingTests(ProtocolTestCase):
    def factoryArgs(self) -> dict[str, Any]:
        return {"pingInterval": 5.0, "handshakeTimeout": 2.0}

    def test_interval(self) -> None:
        conn = self.handshaken()
        self.clock.advance(5)
        self.assertEqual([e["event"] for e in conn.received()], ["ping"])
        self.clock.advance(10)
        events = conn.received()
        self.assertEqual(events[-1]["data"]["code"], wire.IDLE_TIMEOUT)

    def test_handshakeTimeout(self) -> None:
        conn = self.connect()
        self.clock.advance(2)
        [error] = conn.received()
        self.assertEqual(error["data"]["code"], wire.HANDSHAKE_TIMEOUT)


class LineLengthTests(ProtocolTestCase):
    maxLineBytes = 400

    def test_overLongLineWithoutNewline(self) -> None:
        conn = self.handshaken()
        conn.sendRaw(b'{"event":"analyze","data":{"text":"' + b"a" * 200)
        self.assertEqual(conn.received(), [])
        conn.sendRaw(b"a" * 200)
        [error] = conn.received()
        self.assertEqual(error["event"], "error")
        self.assertEqual(error["data"]["code"], wire.LINE_TOO_LONG)
        self.assertIn("400", error["data"]["message"])
        self.assertTrue(conn.closing)
        # Nothing more is read from it.
        conn.send(analyze("# echo 안녕하세요"))
        self.assertEqual(conn.received(), [])

    def test_overLongCompleteLine(self) -> None:
        conn = self.handshaken()
        conn.send(analyze("# echo " + "가" * 200), analyze("# echo 안녕하세요"))
        [error] = conn.received()
        self.assertEqual(error["data"]["code"], wire.LINE_TOO_LONG)
        self.assertTrue(conn.closing)
        self.assertEqual(self.chatlog.rows, [])

    def test_lineAtTheLimitIsServed(self) -> None:
        conn = self.handshaken()
        # The limit counts the line without its "\n".
        short = len(line(analyze("# echo 안녕하세요", pad="")))
        data = line(analyze("# echo 안녕하세요", pad="x" * (401 - short)))
        self.assertEqual(len(data), 401)
        conn.sendRaw(data)
        self.assertEqual(conn.received(), [ECHO_REPLY])

    def test_beforeHandshake(self) -> None:
        conn = self.connect()
        conn.sendRaw(b"x" * 1000)
        [error] = conn.received()
        self.assertEqual(error["data"]["code"], wire.LINE_TOO_LONG)
        self.assertTrue(conn.closing)

    def test_closeIsForcedWhenThePeerDoesNotRead(self) -> None:
        conn = self.handshaken()
        conn.sendRaw(b"x" * 1000)
        self.assertFalse(conn.transport.disconnected)
        self.clock.advance(5)
        self.assertTrue(conn.transport.disconnected)  # aborted


class DefaultLineLengthTests(ProtocolTestCase):
    def test_longestChatMessageFits(self) -> None:
        # 65,000 Hangul characters (the bridge's limit) are 195,000 bytes.
        conn = self.handshaken()
        conn.send(analyze("# echo " + "가" * 64_990))
        [reply] = conn.received()
        self.assertEqual(reply["data"]["text"], "에코: " + "가" * 64_990)

    def test_defaultLimitIsOneMebibyte(self) -> None:
        conn = self.handshaken()
        conn.sendRaw(b" " * (1024 * 1024 + 2))
        [error] = conn.received()
        self.assertEqual(error["data"]["code"], wire.LINE_TOO_LONG)


class RegistryTests(ProtocolTestCase):
    def test_contentsAndRemoval(self) -> None:
        a = self.handshaken(HELLO_320, host="10.0.0.1")
        self.clock.advance(5)
        b = self.handshaken(dict(HELLO_314, botName="LOA.i"), host="10.0.0.2")
        self.assertEqual(
            sorted((c.botName, c.deviceID, c.version, c.address) for c in self.registry),
            [("LOA.i", "5f3c2a1b9d8e7f60", "3.1.4", "10.0.0.2"),
             ("kkobot", "5f3c2a1b9d8e7f60", "3.2.0", "10.0.0.1")],
        )
        self.assertEqual([c.botName for c in self.registry.forBot("LOA.i")], ["LOA.i"])
        info = self.registry.forBot("kkobot")[0].asDict()
        self.assertEqual(info["bot_name"], "kkobot")
        self.assertEqual(info["address"], "10.0.0.1")
        a.lose()
        self.assertEqual([c.botName for c in self.registry], ["LOA.i"])
        b.lose()
        self.assertEqual(len(self.registry), 0)
        self.assertEqual(self.factory.connections, set())

    def test_sendThroughRegistry(self) -> None:
        conn = self.handshaken()
        [client] = list(self.registry)
        client.send(wire.encode("messageResponse", {"room": ROOM, "text": "공지", "channel_id": None}))
        [event] = conn.received()
        self.assertEqual(event["data"]["text"], "공지")

    def test_unhandshakenConnectionIsNotRegistered(self) -> None:
        conn = self.connect()
        self.assertEqual(len(self.registry), 0)
        self.assertEqual(len(self.factory.connections), 1)
        conn.lose()
        self.assertEqual(len(self.factory.connections), 0)

    def test_nothingLeftScheduledAfterDisconnect(self) -> None:
        # Ping loop, idle timer and the forced-close timer all end with the connection.
        for close in ["client", "server"]:
            conn = self.handshaken()
            if close == "server":
                conn.sendRaw(b"x" * (wire.DEFAULT_MAX_LINE_BYTES + 2))
                self.assertTrue(conn.closing)
            conn.lose()
            self.assertEqual(self.clock.getDelayedCalls(), [], close)

    def test_timedOutConnectionLeavesNothingScheduled(self) -> None:
        conn = self.connect()
        self.clock.advance(30)
        self.assertTrue(conn.closing)
        conn.lose()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class BackpressureTests(ProtocolTestCase):
    def test_slowReaderPausesReading(self) -> None:
        conn = self.handshaken()
        self.assertIs(conn.transport.producer, conn.proto)
        conn.proto.pauseProducing()  # what the transport does when its buffer fills
        self.assertEqual(conn.transport.producerState, "paused")
        conn.send(analyze("# echo 안녕하세요"))
        self.assertEqual(conn.received(), [])
        conn.proto.resumeProducing()
        self.assertEqual(conn.received(), [ECHO_REPLY])

    def test_reasonsAreIndependent(self) -> None:
        conn = self.handshaken()
        self.factory.pauseAll("chatlog")
        conn.proto.pauseProducing()
        conn.send(analyze("# echo 안녕하세요"))
        conn.proto.resumeProducing()
        self.assertEqual(conn.received(), [])
        self.factory.resumeAll("chatlog")
        self.assertEqual(conn.received(), [ECHO_REPLY])
