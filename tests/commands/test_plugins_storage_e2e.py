"""End to end over TCP, on SQLite and on MariaDB: the example plugins, 50 bots on one counter, reload, restart."""

from __future__ import annotations

import json
import os
import shutil

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import TestCase

from kkobot import config
from kkobot.service import Settings, makeService
from tests.support import ScratchMysql, forgetDropins, tempDir
from tests.support.paths import EXAMPLES

ADMIN = "admin-hash"

COUNTER = '''
from kkobot.command import command


@command("세기", "전체 카운터를 하나 올립니다.")
async def count(context):
    return str(await context.store.incr("n", scope="global"))


@command("값", "전체 카운터 값.")
async def value(context):
    return str(await context.store.get("n", 0, scope="global"))
'''


class Bridge(LineReceiver):
    """A MessengerBotR bridge: says things as some user in some room, reads the replies."""

    delimiter = b"\n"

    def __init__(self, user: str = "user1", room: str = "테스트방", sender: str = "홍길동") -> None:
        self.user, self.room, self.sender = user, room, sender
        self.events: defer.DeferredQueue = defer.DeferredQueue()
        self.lost = defer.Deferred()
        self.closed = False

    def lineReceived(self, line: bytes) -> None:
        event = json.loads(line)
        if event["event"] != "ping":
            self.events.put(event)

    def connectionLost(self, reason) -> None:
        self.closed = True
        self.lost.callback(None)

    def send(self, obj) -> None:
        self.sendLine(json.dumps(obj, ensure_ascii=False).encode("utf-8"))

    def say(self, text: str, user: str | None = None, sender: str | None = None) -> None:
        self.send({"event": "analyze", "data": {
            "room": self.room, "text": text, "sender": sender or self.sender, "isGroupChat": True,
            "channelId": f"ch-{self.room}", "logId": None, "userHash": user or self.user,
            "isMention": False, "timestamp": "2026-01-01 09:00:00", "botName": "kkobot"}})

    @defer.inlineCallbacks
    def reply(self):
        event = yield self.events.get()
        assert event["event"] == "messageResponse", event
        return event["data"]["text"]

    @defer.inlineCallbacks
    def ask(self, text: str, user: str | None = None, sender: str | None = None):
        self.say(text, user, sender)
        return (yield self.reply())


class StorageEndToEnd:
    """The same checks on each database; subclasses provide C{databaseConfig}."""

    timeout = 120

    def databaseConfig(self, root: str) -> dict:
        raise NotImplementedError

    def setUp(self):
        root = tempDir(self)
        self.root = root
        self.dropin = os.path.join(root, "plugins")
        shutil.copytree(EXAMPLES, self.dropin)
        with open(os.path.join(self.dropin, "kkobot_e2ecounter.py"), "w", encoding="utf-8") as f:
            f.write(COUNTER)
        forgetDropins(self, self.dropin)
        self.cfgDir = os.path.join(root, "cfg")
        config.init(self.cfgDir, {
            "SERVER": {"server_ip": "127.0.0.1"},
            "DBs": {"kkobot_test": self.databaseConfig(root)},
            "auth": {"required": False},
            "admins": [ADMIN],
            "plugins": {"quiz": {"seconds": 20}},
        })
        self.bridges: list[Bridge] = []
        return self.startServer()

    @defer.inlineCallbacks
    def startServer(self):
        self.service = makeService(Settings(
            port="tcp:0:interface=127.0.0.1", configDir=self.cfgDir,
            varDir=os.path.join(self.root, "var"), logDir=None, dropinDir=self.dropin))
        self.service.startService()
        self.addCleanup(self.stopServer, self.service)
        port = yield self.service.server.whenListening()
        self.port = port.getHost().port
        yield self.waitFor(lambda: self.service.chatlog.ready, "the chat log")

    @defer.inlineCallbacks
    def stopServer(self, service):
        for bridge in list(self.bridges):
            if not bridge.closed:
                bridge.transport.loseConnection()
                yield bridge.lost
        self.bridges.clear()
        while service.factory.connections:
            yield task.deferLater(reactor, 0.01, lambda: None)
        if service.running:
            yield service.stopService()

    @defer.inlineCallbacks
    def waitFor(self, predicate, what, timeout=30.0):
        deadline = reactor.seconds() + timeout
        while not predicate():
            self.assertLess(reactor.seconds(), deadline, f"timed out waiting for {what}")
            yield task.deferLater(reactor, 0.01, lambda: None)

    @defer.inlineCallbacks
    def connect(self, user="user1", room="테스트방", sender="홍길동", device=0):
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        bridge = yield connectProtocol(endpoint, Bridge(user, room, sender))
        self.bridges.append(bridge)
        bridge.send({"clientType": "MessengerBotR", "botName": "kkobot", "version": "3.2.0",
                     "deviceID": f"{device:016x}"})
        hello = yield bridge.events.get()
        self.assertEqual(hello["event"], "handshakeComplete")
        return bridge

    @defer.inlineCallbacks
    def test_fifty_bots_increment_one_counter_exactly(self):
        bridges = yield defer.gatherResults(
            [self.connect(user=f"u{i}", room=f"방{i}", device=i + 1) for i in range(50)])

        @defer.inlineCallbacks
        def run(bridge):
            seen = []
            for _ in range(20):
                seen.append(int((yield bridge.ask("# 세기"))))
            return seen

        results = yield defer.gatherResults([run(b) for b in bridges])
        allValues = sorted(v for values in results for v in values)
        self.assertEqual(allValues, list(range(1, 1001)))
        self.assertEqual((yield bridges[0].ask("# 값")), "1000")

    @defer.inlineCallbacks
    def test_examples_and_stored_values_survive_reload_and_restart(self):
        # One phone serves the bot; two people talk in its room.
        bot = yield self.connect()
        self.assertTrue((yield bot.ask("# 출석")).startswith("홍길동님 출석 완료! 오늘 1번째, 연속 1일"))
        self.assertTrue((yield bot.ask("# 출석", user="u2", sender="김영희")).startswith(
            "김영희님 출석 완료! 오늘 2번째"))
        self.assertEqual((yield bot.ask("# 세기")), "1")
        # The quiz: its question is the reply, the answer comes from the same user.
        self.assertEqual((yield bot.ask("# 퀴즈")), "[퀴즈] 대한민국의 수도는? (20초)")
        bot.say("서울", user="u2", sender="김영희")  # the same room, another user: not the answer
        bot.say("서울")
        self.assertEqual((yield bot.reply()), "정답입니다! 홍길동님 누적 1점")
        # The chat ranking reads kb_chat_logs: the rows are there once a batch is written.
        yield self.waitFor(lambda: self.service.chatlog.rowsWritten >= 10, "the chat rows")
        ranking = yield bot.ask("# 채팅순위")
        # Its own `# 채팅순위` row is still in the chat log's batch: rows are counted
        # once written (docs/plugins.md says so).
        self.assertEqual(ranking.splitlines(), ["[오늘 채팅 순위]", "1. 홍길동 — 4개", "2. 김영희 — 2개"])

        report = yield bot.ask("# reload", user=ADMIN)
        self.assertIn("플러그인을 다시 불러왔습니다", report)
        self.assertEqual((yield bot.ask("# 세기")), "2")
        self.assertEqual((yield bot.ask("# 출석")), "홍길동님은 오늘 이미 출석했습니다. (연속 1일)")

        yield self.stopServer(self.service)
        yield self.startServer()
        bot = yield self.connect()
        self.assertEqual((yield bot.ask("# 세기")), "3")
        self.assertEqual((yield bot.ask("# 출석")), "홍길동님은 오늘 이미 출석했습니다. (연속 1일)")
        self.assertEqual((yield bot.ask("# 퀴즈점수")), "홍길동님 퀴즈 점수: 1점")
        self.assertEqual((yield bot.ask("# 출석순위")),
                         "[출석 순위]\n1. 김영희 — 10점 (연속 1일, 총 1일)\n2. 홍길동 — 10점 (연속 1일, 총 1일)")


class SqliteStorageEndToEnd(StorageEndToEnd, TestCase):
    def databaseConfig(self, root):
        return {"ENGINE": "sqlite", "PATH": os.path.join(root, "kkobot.sqlite3")}


class MysqlStorageEndToEnd(StorageEndToEnd, TestCase):
    def databaseConfig(self, root):
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        s = self.scratch.settings()
        return {"HOST": s.host, "PORT": s.port, "USER": s.user, "PASSWORD": s.password, "NAME": s.name}

    @defer.inlineCallbacks
    def test_fifty_bots_increment_one_counter_exactly(self):
        yield StorageEndToEnd.test_fifty_bots_increment_one_counter_exactly(self)
        rows = self.scratch.query(
            "SELECT plugin, scope, value FROM kb_plugin_store WHERE item_key = 'n'")
        self.assertEqual(rows, [("e2ecounter", "global", "1000")])
