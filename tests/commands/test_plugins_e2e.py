"""End to end over TCP: a running server picks up a dropped-in plugin on `# reload` and SIGHUP."""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import TestCase

from kkobot import config
from kkobot.service import Settings, makeService
from tests.support.paths import DOCS

DOC = os.path.join(DOCS, "plugins.md")
ADMIN = "admin-hash"


def tutorialPlugin() -> tuple[str, str]:
    """The first ```python block of docs/plugins.md and the file name given just before it."""
    text = open(DOC, encoding="utf-8").read()
    found = re.search(r"```python\n(.*?)```", text, re.S)
    before = text[: found.start()].rstrip().splitlines()[-1]
    return re.findall(r"`([\w/]+\.py)`", before)[-1], found.group(1)


class Bridge(LineReceiver):
    """A MessengerBotR bridge, reduced to what the test needs."""

    delimiter = b"\n"

    def __init__(self) -> None:
        self.events: defer.DeferredQueue = defer.DeferredQueue()
        self.lost = defer.Deferred()
        self.closed = False

    def lineReceived(self, line: bytes) -> None:
        event = json.loads(line)
        if event["event"] == "ping":
            return
        self.events.put(event)

    def connectionLost(self, reason) -> None:
        self.closed = True
        self.lost.callback(None)

    def send(self, obj) -> None:
        self.sendLine(json.dumps(obj, ensure_ascii=False).encode("utf-8"))

    def say(self, text: str, user: str = "user1") -> None:
        self.send({"event": "analyze", "data": {
            "room": "테스트방", "text": text, "sender": "홍길동", "isGroupChat": True,
            "channelId": "18398338829933568", "logId": None, "userHash": user,
            "isMention": False, "timestamp": "2026-01-01 09:00:00", "botName": "kkobot"}})

    @defer.inlineCallbacks
    def ask(self, text: str, user: str = "user1"):
        """Say C{text} and return the reply text (one messageResponse)."""
        self.say(text, user)
        event = yield self.events.get()
        assert event["event"] == "messageResponse", event
        return event["data"]["text"]


class DropInReloadTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        root = tempfile.mkdtemp()
        self.dropin = os.path.join(root, "plugins")
        os.makedirs(self.dropin)
        cfgDir = os.path.join(root, "cfg")
        config.init(cfgDir, {
            "SERVER": {"server_ip": "127.0.0.1"},
            "DBs": {"kkobot_test": {"ENGINE": "sqlite", "PATH": os.path.join(root, "kkobot.sqlite3")}},
            "auth": {"required": False},
            "admins": [ADMIN],
        })
        self.service = makeService(Settings(
            port="tcp:0:interface=127.0.0.1", configDir=cfgDir,
            varDir=os.path.join(root, "var"), logDir=os.path.join(root, "logs"),
            dropinDir=self.dropin))
        self.service.startService()
        self.addCleanup(self.service.stopService)
        port = yield self.service.server.whenListening()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        self.bridge = yield connectProtocol(endpoint, Bridge())
        self.addCleanup(self._disconnect)
        self.bridge.send({"clientType": "MessengerBotR", "botName": "kkobot", "version": "3.2.0",
                          "deviceID": "5f3c2a1b9d8e7f60"})
        hello = yield self.bridge.events.get()
        self.assertEqual(hello["event"], "handshakeComplete")

    @defer.inlineCallbacks
    def _disconnect(self):
        if not self.bridge.closed:
            self.bridge.transport.loseConnection()
        yield self.bridge.lost
        # Let the server see the close before it stops, as a phone hanging up would.
        while self.service.factory.connections:
            yield task.deferLater(reactor, 0.01, lambda: None)

    def dropTutorialPlugin(self) -> None:
        name, source = tutorialPlugin()
        with open(os.path.join(self.dropin, os.path.basename(name)), "w", encoding="utf-8") as f:
            f.write(source)

    @defer.inlineCallbacks
    def test_reload_makes_the_dropped_in_command_answer_on_the_same_connection(self):
        helpBefore = yield self.bridge.ask("# help")
        self.assertNotIn("# hello", helpBefore)
        refused = yield self.bridge.ask("# reload")
        self.assertEqual(refused, "관리자만 사용할 수 있는 명령입니다.")
        self.dropTutorialPlugin()
        report = yield self.bridge.ask("# reload", user=ADMIN)
        self.assertIn("추가: kkobot_hello", report)
        answer = yield self.bridge.ask("# hello 철수")
        self.assertEqual(answer, "안녕하세요, 철수님!")
        helpAfter = yield self.bridge.ask("# help")
        self.assertIn("# hello — 이름을 불러 인사합니다.", helpAfter.splitlines())
        self.assertFalse(self.bridge.closed)
        self.assertEqual(len(self.service.factory.connections), 1)

    @defer.inlineCallbacks
    def test_sighup_reloads_without_dropping_the_connection(self):
        self.dropTutorialPlugin()
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(50):
            yield task.deferLater(reactor, 0.05, lambda: None)
            if self.service.commands.lookup("hello") is not None:
                break
        answer = yield self.bridge.ask("# 안녕 --times=2 영희")
        self.assertEqual(answer, "안녕하세요, 영희님!")
        second = yield self.bridge.events.get()
        self.assertEqual(second["data"]["text"], "안녕하세요, 영희님!")
        self.assertFalse(self.bridge.closed)

    @defer.inlineCallbacks
    def test_ping_command_reports_the_measured_round_trip(self):
        client = next(iter(self.service.registry))
        client.lastRttMillis = 12
        client.lastPingAt = reactor.seconds()
        answer = yield self.bridge.ask("# ping")
        self.assertTrue(answer.startswith("퐁! kkobot 왕복 시간 12ms"), answer)
