"""The journaled chat log against a real MariaDB: outages, replay, spill, backpressure, pings."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase
from twisted.web.template import flattenString, tags

from kkobot.chatlog.log import ChatLog
from kkobot.chatlog.rows import ChatRow
from kkobot.commands import CommandRegistry
from kkobot.config import DBSettings
from kkobot.db.pool import Database
from kkobot.chatlog import journal as journal_module
from kkobot.chatlog.journal import Journal
from kkobot.bridge.protocol import BridgeFactory
from kkobot.commands.router import MessageRouter
from kkobot.admin.web.health import readiness
from kkobot.admin.web.status import chatlogTiles
from tests.support.mysqlproxy import CuttableProxy
from tests.support import HELLO_320, MYSQL_HOST, MYSQL_PORT, ScratchMysql, analyze, line, waitUntil


# What /readyz needs of the bridge factory: a listening port.
LISTENING = SimpleNamespace(numPorts=1)


def reply(text: str, room: str = "방", botName: str = "kkobot") -> ChatRow:
    """The row of one message our bot sent, at a fixed time."""
    return ChatRow.forReply(
        text, botName=botName, room=room, channelId="c1", isGroupChat=True,
        directive=None, sent=datetime(2026, 11, 25, 19, 25, 10),
    )


def row(i: int) -> ChatRow:
    return reply(f"m{i}")


class ChatLogTestBase(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        self.scratch.createOperatorTable()
        self.journalDir = tempfile.mkdtemp(prefix="kkobot-journal-")
        self.addCleanup(shutil.rmtree, self.journalDir, True)

    def proxied(self) -> tuple[CuttableProxy, DBSettings]:
        proxy = CuttableProxy(reactor, MYSQL_HOST, MYSQL_PORT)
        proxy.start()
        self.addCleanup(proxy.stop)
        s = self.scratch.settings()
        return proxy, DBSettings(
            engine="mysql", host="127.0.0.1", port=proxy.port, user=s.user,
            password=s.password, name=s.name,
        )

    def makeChatLog(
        self, settings: DBSettings | None = None, clock: Any = reactor,
        segmentBytes: int = 1 << 20, **kw: Any,
    ) -> ChatLog:
        database = Database(settings or self.scratch.settings())
        self.addCleanup(database.close)
        chatlog = ChatLog(database, clock, Journal(self.journalDir, segmentBytes), **kw)
        chatlog.startService()
        self.addCleanup(lambda: chatlog.stopService() if chatlog.running else None)
        return chatlog

    def messages(self) -> list[str]:
        return [r[0] for r in self.scratch.query("SELECT message FROM kb_chat_logs ORDER BY id")]

    def count(self) -> int:
        return self.scratch.query("SELECT COUNT(*) FROM kb_chat_logs")[0][0]


class BatchTests(ChatLogTestBase):
    async def test_fullBatchIsWrittenWithoutWaitingForTheTimer(self) -> None:
        chatlog = self.makeChatLog(batchSize=5, flushInterval=3600)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        for i in range(12):
            chatlog.log(row(i))
        await waitUntil(lambda: self.count() == 10, "two full batches")
        # The last two wait for the timer (an hour) or a flush, not for more rows.
        self.assertEqual(chatlog.pending, 2)
        self.assertTrue(await chatlog.flush())
        self.assertEqual(self.messages(), [f"m{i}" for i in range(12)])
        batches = self.scratch.query(
            "SELECT first_seq, last_seq, row_count FROM kb_chatlog_batches ORDER BY first_seq"
        )
        self.assertEqual(batches, [(1, 5, 5), (6, 10, 5), (11, 12, 2)])

    async def test_partialBatchIsWrittenAfterTheFlushInterval(self) -> None:
        clock = task.Clock()
        chatlog = self.makeChatLog(clock=clock, batchSize=200, flushInterval=0.05)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        for i in range(3):
            chatlog.log(row(i))
        clock.advance(0.049)
        self.assertIsNone(chatlog.flusher.inFlight, "written before the flush interval")
        clock.advance(0.001)
        self.assertIsNotNone(chatlog.flusher.inFlight, "not written at the flush interval")
        await chatlog.flusher.inFlight
        self.assertEqual(self.messages(), ["m0", "m1", "m2"])

    def journalLines(self) -> list[list[str]]:
        out = []
        for name in sorted(n for n in os.listdir(self.journalDir) if n.endswith(".jnl")):
            with open(os.path.join(self.journalDir, name), encoding="utf-8") as f:
                out += [l.split("\t") for l in f.read().splitlines()]
        return out

    async def test_fullDiskHoldsAnswersAndPausesReadingUntilTheJournalTakesRows(self) -> None:
        clock = task.Clock()
        chatlog = self.makeChatLog(clock=clock, batchSize=200, flushInterval=3600)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        valve: list[tuple[str, str]] = []
        chatlog.setPressureValve(
            lambda why: valve.append(("pause", why)), lambda why: valve.append(("resume", why))
        )
        full = [True]
        realWrite = journal_module._write

        def write(fd: int, data: bytes) -> int:
            if full[0]:
                raise OSError(errno.ENOSPC, "No space left on device")
            return realWrite(fd, data)

        self.patch(journal_module, "_write", write)
        chatlog.log(row(0))
        chatlog.log(row(1))
        released: list[bool] = []
        chatlog.afterJournaled(lambda: released.append(True))
        clock.advance(0)
        # No answer may leave while its rows are in no journal; nothing is dropped.
        self.assertEqual(released, [])
        self.assertEqual(valve, [("pause", "journal")])
        self.assertEqual(self.journalLines(), [])
        # The one state in which the server is not ready: it answers no one.
        state = readiness(LISTENING, chatlog)
        self.assertEqual((state["ready"], state["journal_full"]), (False, True))
        clock.advance(chatlog.journalRetryInterval)
        self.assertEqual((released, valve), ([], [("pause", "journal")]))
        full[0] = False
        clock.advance(chatlog.journalRetryInterval)
        self.assertEqual(released, [True])
        self.assertEqual(valve, [("pause", "journal"), ("resume", "journal")])
        self.assertEqual([line[0] for line in self.journalLines()], ["1", "2"])
        self.assertEqual(readiness(LISTENING, chatlog)["ready"], True)
        self.assertTrue(await chatlog.flush())
        self.assertEqual(self.messages(), ["m0", "m1"])

    async def test_rowsOfOneTurnAreJournaledInOneWriteBeforeWaitersRun(self) -> None:
        clock = task.Clock()
        chatlog = self.makeChatLog(clock=clock, batchSize=200, flushInterval=3600)
        chatlog.log(row(0))
        chatlog.log(row(1))
        seen: list[list[list[str]]] = []
        chatlog.afterJournaled(lambda: seen.append(self.journalLines()))
        self.assertEqual(seen, [], "released before the rows were written")
        clock.advance(0)  # the end of the reactor turn
        (lines,) = seen
        self.assertEqual([(seq, kind) for seq, kind, _ in lines], [("1", "chat"), ("2", "chat")])
        self.assertEqual([json.loads(values)[4] for _, _, values in lines], ["m0", "m1"])
        # Nothing queued: a waiter runs at once.
        chatlog.afterJournaled(lambda: seen.append(self.journalLines()))
        self.assertEqual(len(seen), 2)

    async def test_replyBytesReachTheSocketOnlyAfterTheirRowsAreJournaled(self) -> None:
        clock = task.Clock()
        chatlog = self.makeChatLog(clock=clock, batchSize=200, flushInterval=3600)
        commands = CommandRegistry(None)
        commands.load()
        factory = BridgeFactory(MessageRouter(commands, chatlog, clock), clock=clock, gate=chatlog)
        journalAtWrite: list[tuple[bytes, list[str]]] = []
        test = self

        class Socket(StringTransport):
            # What the journal holds at the moment each line is handed to the socket.
            def write(self, data: bytes) -> None:
                journal = [json.loads(v)[4] for _, _, v in test.journalLines()]
                for piece in data.splitlines(keepends=True):
                    journalAtWrite.append((piece, journal))
                StringTransport.write(self, data)

            def writeSequence(self, seq: list[bytes]) -> None:
                for data in seq:
                    self.write(data)

        proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = Socket(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        proto.makeConnection(transport)
        self.addCleanup(proto.connectionLost, None)
        proto.dataReceived(line(HELLO_320))
        proto.dataReceived(line(analyze("# echo 하나")) + line(analyze("# echo 둘")))
        replies = [d for d, _ in journalAtWrite if b"messageResponse" in d]
        self.assertEqual(replies, [], "a reply was handed to the socket before its rows were journaled")
        clock.advance(0)
        answered = [(json.loads(d)["data"]["text"], j) for d, j in journalAtWrite if b"messageResponse" in d]
        self.assertEqual([text for text, _ in answered], ["에코: 하나", "에코: 둘"])
        for text, journal in answered:
            self.assertIn(text, journal)
        self.assertEqual(
            answered[0][1], ["# echo 하나", "에코: 하나", "# echo 둘", "에코: 둘"],
            "the turn's rows went to the journal together, in order",
        )


class OutageTests(ChatLogTestBase):
    async def test_outageKeepsRowsJournaledAndWritesThemOnceWhenBack(self) -> None:
        proxy, settings = self.proxied()
        chatlog = self.makeChatLog(settings, batchSize=10, flushInterval=0.01, retryInterval=0.2)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        for i in range(25):
            chatlog.log(row(i))
        self.assertTrue(await chatlog.flush())
        await proxy.cut()
        for i in range(25, 65):
            chatlog.log(row(i))
        await waitUntil(lambda: chatlog.batchFailures >= 3, "failed batches while MySQL is away")
        self.assertEqual(self.count(), 25)
        self.assertEqual(chatlog.backlog, 40)
        proxy.restore()
        await waitUntil(lambda: chatlog.backlog == 0, "the backlog to be written", timeout=30)
        self.assertEqual(self.messages(), [f"m{i}" for i in range(65)])
        # Lost connections are retried, never taken for rows the database refuses.
        self.assertEqual(chatlog.rowsRejected, 0)
        self.assertFalse(os.path.exists(chatlog.rejectedPath))
        self.flushLoggedErrors()

    async def test_readinessFollowsTheDatabaseAndTheBacklog(self) -> None:
        proxy, settings = self.proxied()
        chatlog = self.makeChatLog(settings, batchSize=10, flushInterval=0.01, retryInterval=0.2)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        state = readiness(LISTENING, chatlog)
        self.assertEqual((state["ready"], state["database"], state["spooling"]),
                         (True, "ok", False))
        await proxy.cut()
        for i in range(25):
            chatlog.log(row(i))
        await waitUntil(lambda: chatlog.batchFailures >= 2, "failed batches while MySQL is away")
        # Still ready (every message is answered and journaled), and it says why.
        state = readiness(LISTENING, chatlog)
        self.assertEqual((state["ready"], state["database"], state["spooling"]),
                         (True, "unavailable", True))
        self.assertEqual(state["backlog"]["spooled"], 25)
        # The status page says so too.
        tiles = await flattenString(None, tags.div(*chatlogTiles(chatlog)))
        self.assertIn("<b>연결 끊김</b>DB 대기 25행", tiles.decode("utf-8"))
        proxy.restore()
        await waitUntil(lambda: chatlog.backlog == 0, "the backlog to be written", timeout=30)
        state = readiness(LISTENING, chatlog)
        self.assertEqual((state["database"], state["spooling"], state["backlog"]["spooled"]),
                         ("ok", False, 0))
        self.flushLoggedErrors()

    async def test_rowsWaitingForTheDatabaseCostAboutTheirSize(self) -> None:
        # While MySQL is away every row waits in memory (up to max_buffer_rows) with
        # its journal bytes: a row must not pin more than its size (orjson's output
        # buffers are 4 KB each, so keeping them would cost 20k rows ~80 MB).
        import tracemalloc

        proxy, settings = self.proxied()
        chatlog = self.makeChatLog(settings, batchSize=10_000, flushInterval=60)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        await proxy.cut()
        rows = [row(i) for i in range(2000)]
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        before = tracemalloc.get_traced_memory()[0]
        for r in rows:
            chatlog.log(r)
        chatlog.flushJournal()
        perRow = (tracemalloc.get_traced_memory()[0] - before) / len(rows)
        self.assertEqual(chatlog.pending, 2000)
        self.assertLess(perRow, 1024)
        proxy.restore()
        self.assertTrue(await chatlog.flush())
        self.assertEqual(self.count(), 2000)
        self.flushLoggedErrors()

    async def test_restartReplaysOnlyWhatTheDatabaseLacks(self) -> None:
        proxy, settings = self.proxied()
        first = self.makeChatLog(settings, batchSize=10, flushInterval=0.01, retryInterval=0.2)
        await waitUntil(lambda: first.ready, "the chat log to be ready")
        for i in range(30):
            first.log(row(i))
        self.assertTrue(await first.flush())
        await proxy.cut()
        for i in range(30, 50):
            first.log(row(i))
        # Stopping with MySQL away: the 20 rows stay in the journal, and so do the 30
        # committed ones (their segment is still the active one).
        await first.stopService()
        self.assertEqual(self.count(), 30)
        proxy.restore()
        second = self.makeChatLog(settings, batchSize=7, flushInterval=0.01)
        await waitUntil(lambda: second.ready and second.backlog == 0, "the replay", timeout=30)
        second.log(row(50))
        self.assertTrue(await second.flush())
        self.assertEqual(self.messages(), [f"m{i}" for i in range(51)])
        self.flushLoggedErrors()

    async def test_startsWithMysqlDownAndWritesWhenItComes(self) -> None:
        proxy, settings = self.proxied()
        await proxy.cut()
        chatlog = self.makeChatLog(settings, flushInterval=0.01, retryInterval=0.2)
        for i in range(5):
            chatlog.log(row(i))
        self.assertFalse(chatlog.ready)
        proxy.restore()
        await waitUntil(lambda: chatlog.ready and chatlog.backlog == 0, "the first write", timeout=30)
        self.assertEqual(self.messages(), [f"m{i}" for i in range(5)])
        self.flushLoggedErrors()

    async def test_spilledRowsAreReadBackFromTheJournalInOrder(self) -> None:
        proxy, settings = self.proxied()
        chatlog = self.makeChatLog(
            settings, batchSize=5, maxBufferRows=10, flushInterval=0.01, retryInterval=0.2,
            segmentBytes=2048,
        )
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        await proxy.cut()
        for i in range(200):
            chatlog.log(row(i))
            if i % 10 == 9:
                chatlog.flushJournal()  # what the end of each reactor turn does
        # Memory holds at most maxBufferRows; the rest is on disk, in several segments.
        self.assertLessEqual(len(chatlog.buffer.entries), 10)
        self.assertGreater(len(chatlog.journal.segments), 3)
        proxy.restore()
        await waitUntil(lambda: chatlog.backlog == 0, "the backlog", timeout=30)
        self.assertEqual(self.messages(), [f"m{i}" for i in range(200)])
        # Written segments are deleted; only the active one is left.
        await waitUntil(lambda: len(chatlog.journal.segments) == 1, "trimming")
        self.flushLoggedErrors()


# Text the INSERT made from journal bytes must carry exactly: quotes, backslashes
# (also before quotes and letters JSON escapes), JSON/MySQL control escapes, emoji.
TRICKY = [
    "it's", 'say "hi"', "back\\slash\\", "\\'; DROP TABLE kb_chat_logs; --",
    'a\\"b', "\\n is not a newline", "tab\there\nnewline\rcr\bbs", "nul\x00 ^Z\x1a ff\x0c",
    "\\u0041 stays", "이모지 🎉👍🏽 ㅋㅋ", "%s %(x)s %%", "",
]


class ExactTextTests(ChatLogTestBase):
    """Live and replayed batches store every character as it came."""

    def tricky(self, n: int) -> list[str]:
        return [f"{i}:{TRICKY[i % len(TRICKY)]}" for i in range(n)]

    def logTexts(self, chatlog: ChatLog, texts: list[str]) -> None:
        for text in texts:
            chatlog.log(reply(text, room="방 'x'"))

    async def test_liveBatches(self) -> None:
        chatlog = self.makeChatLog(batchSize=7, flushInterval=0.01)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        texts = self.tricky(60)
        self.logTexts(chatlog, texts)
        self.assertTrue(await chatlog.flush())
        self.assertEqual(self.messages(), texts)

    async def test_batchesReplayedFromTheJournalAfterARestart(self) -> None:
        proxy, settings = self.proxied()
        chatlog = self.makeChatLog(settings, batchSize=7, flushInterval=0.01, retryInterval=0.2)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        await proxy.cut()
        texts = self.tricky(60)
        self.logTexts(chatlog, texts)
        chatlog.flushJournal()
        await chatlog.stopService()
        # The next start reads every row back from the journal files.
        proxy.restore()
        again = self.makeChatLog(settings, batchSize=7, flushInterval=0.01)
        await waitUntil(lambda: again.ready and again.backlog == 0, "the replay", timeout=30)
        self.assertEqual(self.messages(), texts)
        self.flushLoggedErrors()


class ServerPathTests(ChatLogTestBase):
    """Through the bridge protocol: backpressure on clients, ping monitor rows."""

    def connect(self, factory: BridgeFactory) -> tuple[Any, StringTransport]:
        proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        proto.makeConnection(transport)
        self.addCleanup(proto.connectionLost, None)
        proto.dataReceived(line(HELLO_320))
        return proto, transport

    def server(self, chatlog: ChatLog) -> BridgeFactory:
        commands = CommandRegistry(None)
        commands.load()
        clock = task.Clock()  # the protocol's pings and timeouts never fire here
        router = MessageRouter(commands, chatlog, reactor)
        factory = BridgeFactory(router, clock=clock)
        chatlog.setPressureValve(factory.pauseAll, factory.resumeAll)
        return factory

    async def test_backpressurePausesClientsAndNothingIsDropped(self) -> None:
        proxy, settings = self.proxied()
        chatlog = self.makeChatLog(
            settings, batchSize=5, maxBufferRows=10, maxJournalBytes=16 * 1024,
            segmentBytes=2048, flushInterval=0.01, retryInterval=0.2,
        )
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        factory = self.server(chatlog)
        proto, transport = self.connect(factory)
        await proxy.cut()
        sent = 0
        while transport.producerState == "producing" and sent < 1000:
            proto.dataReceived(line(analyze(f"# echo {sent}")))
            chatlog.flushJournal()  # what the end of each reactor turn does
            sent += 1
        self.assertEqual(transport.producerState, "paused", "never paused")
        self.assertGreater(sent, 20)
        replies = transport.value().count(b'"messageResponse"')
        self.assertEqual(replies, sent, "every message read before the pause is answered")
        # A bridge connecting during the pause is not read either.
        _, late = self.connect(factory)
        self.assertEqual(late.producerState, "paused")
        proxy.restore()
        await waitUntil(lambda: transport.producerState == "producing", "resume", timeout=30)
        self.assertTrue(await chatlog.flush())
        texts = self.messages()
        expected = []
        for i in range(sent):
            expected += [f"# echo {i}", f"에코: {i}"]
        self.assertEqual(texts, expected)
        self.flushLoggedErrors()

    async def test_pingsBecomePingMonitorRows(self) -> None:
        chatlog = self.makeChatLog(flushInterval=0.01)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        factory = self.server(chatlog)
        proto, transport = self.connect(factory)
        auth = {"deviceUUID": "5f3c2a1b9d8e7f60", "timestamp": 1795602311310}
        factory.clock.advance(30)  # our ping goes out, stamped with the clock's time
        stamp = json.loads(transport.value().splitlines()[-1])["data"]["server_timestamp"]
        factory.clock.advance(0.123)
        proto.dataReceived(line({"event": "ping", "data": {
            "bot_name": "kkobot", "server_timestamp": stamp, "auth": auth,
            "monitoring": {"total_memory": 6028, "memory_usage": 8, "memory_percent": 0.1,
                           "message_queue_size": 3, "active_rooms": 1}}}))
        proto.dataReceived(line({"event": "ping", "data": {
            "bot_name": "kkobot", "client_status": {"cpu": None, "ram": None, "temp": None},
            "is_manual": False, "auth": auth}}))
        # Numbers JSON lets through that no column holds: NULL, not an error.
        before = transport.value()
        proto.dataReceived(line({"event": "ping", "data": {
            "bot_name": "kkobot", "auth": auth,
            "monitoring": {"total_memory": float("nan"), "memory_usage": float("inf"),
                           "memory_percent": 10**400, "message_queue_size": float("-inf"),
                           "active_rooms": 2**31}}}))
        self.assertEqual(transport.value(), before)
        self.assertTrue(await chatlog.flush())
        rows = self.scratch.query(
            "SELECT bot_name, device_id, device_uuid, client_address, client_version, "
            "total_memory, memory_usage, memory_percent, message_queue_size, active_rooms, "
            "rtt_ms, ping_time FROM kb_ping_monitor ORDER BY id"
        )
        ping_time = datetime.fromtimestamp(1795602311310 / 1000).replace(microsecond=0)
        self.assertEqual(rows, [
            ("kkobot", "5f3c2a1b9d8e7f60", "5f3c2a1b9d8e7f60", "127.0.0.1", "3.2.0",
             6028.0, 8.0, 0.1, 3, 1, 123, ping_time),
            ("kkobot", "5f3c2a1b9d8e7f60", "5f3c2a1b9d8e7f60", "127.0.0.1", "3.2.0",
             None, None, None, None, None, None, ping_time),
            ("kkobot", "5f3c2a1b9d8e7f60", "5f3c2a1b9d8e7f60", "127.0.0.1", "3.2.0",
             None, None, None, None, None, None, ping_time),
        ])
