"""The chat log: kb_chat_logs rows written through adbapi, to SQLite and to the real MariaDB."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from kkobot.bridge import wire
from kkobot.chatlog.log import ChatLog
from kkobot.chatlog.rows import COLUMNS, ChatRow
from kkobot.commands import CommandRegistry
from kkobot.config import DBSettings
from kkobot.db.pool import Database
from kkobot.chatlog.journal import Journal
from kkobot.bridge.registry import ClientInfo
from kkobot.commands.router import MessageRouter
from tests.support import (
    ScratchMysql,
    analyze,
    captureLogs,
    line,
    logText,
    tempDir,
    waitUntil,
)

NOW = 1795602310.0  # 2026-11-25, the test clock's "now"
CLIENT = ClientInfo(
    botName="kkobot",
    version="3.2.0",
    clientType="MessengerBotR",
    deviceID="5f3c2a1b9d8e7f60",
    address="127.0.0.1",
    connectedSince=NOW,
)


def message(text: str, **kw: Any) -> wire.ChatMessage:
    """An analyze event exactly as it comes off the wire."""
    event = wire.decode(line(analyze(text, **kw)))
    assert isinstance(event, wire.ChatMessage)
    return event


def normalize(value: Any) -> Any:
    # MySQL gives datetimes back, SQLite the text they were stored as.
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


class ChatLogMixin:
    """The same behaviour against either database; subclasses say which."""

    database: Database

    def makeSettings(self) -> DBSettings:
        raise NotImplementedError

    def setUp(self) -> Any:
        self.logs = captureLogs(self)
        self.clock = Clock()
        self.clock.advance(NOW)
        self.database = Database(self.makeSettings())
        self.addCleanup(self.database.close)
        self.commands = CommandRegistry()
        self.commands.load()

    def makeChatLog(self, **kw: Any) -> ChatLog:
        chatlog = ChatLog(self.database, self.clock, Journal(tempDir(self)), **kw)
        self.router = MessageRouter(self.commands, chatlog, self.clock)
        return chatlog

    @defer.inlineCallbacks
    def started(self, **kw: Any) -> Any:
        chatlog = self.makeChatLog(**kw)
        chatlog.startService()
        self.addCleanup(lambda: chatlog.stopService() if chatlog.running else None)
        yield waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        return chatlog

    def route(self, text: str, **kw: Any) -> Any:
        return self.router.handleMessage(CLIENT, message(text, **kw))

    @defer.inlineCallbacks
    def rows(self) -> Any:
        result = yield self.database.runQuery(
            f"SELECT {', '.join(COLUMNS)} FROM kb_chat_logs ORDER BY id"
        )
        return [dict(zip(COLUMNS, map(normalize, row))) for row in result]

    @defer.inlineCallbacks
    def test_flushRightAfterTheStartWaitsForTheTableCheck(self) -> Any:
        # A flush while the first check of the tables is still under way is not a
        # database failure: it waits for the check and then writes.
        chatlog = self.makeChatLog()
        chatlog.startService()
        self.addCleanup(lambda: chatlog.stopService() if chatlog.running else None)
        self.assertFalse(chatlog.ready)
        yield self.route("# echo 바로")
        self.assertTrue((yield chatlog.flush()))
        self.assertEqual([r["message"] for r in (yield self.rows())], ["# echo 바로", "에코: 바로"])

    @defer.inlineCallbacks
    def test_columnsOfACommandAndItsReply(self) -> Any:
        chatlog = yield self.started()
        replies = yield self.route("# echo 안녕하세요")
        self.assertEqual([r.text for r in replies], ["에코: 안녕하세요"])
        yield chatlog.flush()
        received = datetime.fromtimestamp(NOW).strftime("%Y-%m-%d %H:%M:%S")
        self.assertEqual(
            (yield self.rows()),
            [
                {
                    "channel_id": "18398338829933568",
                    "user_hash": "a1b2c3",
                    "room_name": "테스트방",
                    "sender": "홍길동",
                    "message": "# echo 안녕하세요",
                    "directive": "# echo",
                    "message_type": "command",
                    "is_meaningful": 1,
                    "bot_name": "kkobot",
                    "is_mention": 0,
                    "is_group_chat": 1,
                    "log_id": "3371984461207437313",
                    "client_timestamp": "2026-11-25 19:25:10",
                    "server_timestamp": received,
                    "is_bot": 0,
                    "is_our_bot_response": 0,
                    "is_scheduled": 0,
                },
                {
                    "channel_id": "18398338829933568",
                    "user_hash": "bot:kkobot",
                    "room_name": "테스트방",
                    "sender": "kkobot",
                    "message": "에코: 안녕하세요",
                    "directive": "# echo",
                    "message_type": "bot_response",
                    "is_meaningful": 0,
                    "bot_name": "kkobot",
                    "is_mention": 0,
                    "is_group_chat": 1,
                    "log_id": None,
                    "client_timestamp": None,
                    "server_timestamp": received,
                    "is_bot": 1,
                    "is_our_bot_response": 1,
                    "is_scheduled": 0,
                },
            ],
        )
        self.assertEqual(chatlog.rowsWritten, 2)

    @defer.inlineCallbacks
    def test_normalMessages(self) -> Any:
        chatlog = yield self.started()
        yield self.route("점심 뭐 먹지", isMention=True, isGroupChat=False)
        yield self.route("ㅋㅋㅋㅋ")
        yield self.route("# 없는명령 인자")
        yield self.route("hi", channelId=None, userHash=None, logId=None, timestamp="어제")
        yield chatlog.flush()
        rows = yield self.rows()
        self.assertEqual(
            [(r["message"], r["directive"], r["message_type"], r["is_meaningful"],
              r["is_mention"], r["is_group_chat"]) for r in rows],
            [("점심 뭐 먹지", None, "normal", 1, 1, 0),
             ("ㅋㅋㅋㅋ", None, "normal", 0, 0, 1),
             ("# 없는명령 인자", None, "normal", 1, 0, 1),
             ("hi", None, "normal", 1, 0, 1)],
        )
        # The legacy path's null ids become empty strings (NOT NULL columns);
        # an unreadable phone time is no time.
        self.assertEqual((rows[3]["channel_id"], rows[3]["user_hash"], rows[3]["log_id"],
                          rows[3]["client_timestamp"]), ("", "", None, None))

    @defer.inlineCallbacks
    def test_batchBySize(self) -> Any:
        chatlog = yield self.started(batchSize=3, flushInterval=3600)
        yield self.route("하나")
        yield self.route("둘")
        self.assertEqual(chatlog.pending, 2)
        yield self.route("셋")
        # The third row made a full batch: it left without the timer.
        self.assertEqual(chatlog.pending, 0)
        for i in range(4):
            yield self.route(f"더 {i}")
        yield chatlog.flush()
        self.assertEqual([r["message"] for r in (yield self.rows())],
                         ["하나", "둘", "셋", "더 0", "더 1", "더 2", "더 3"])
        self.assertEqual(self.clock.seconds(), NOW)

    @defer.inlineCallbacks
    def test_batchByTime(self) -> Any:
        chatlog = yield self.started(batchSize=200, flushInterval=0.5)
        yield self.route("혼자 온 메시지")
        self.clock.advance(0.49)
        self.assertEqual(chatlog.pending, 1)
        self.clock.advance(0.01)
        self.assertEqual(chatlog.pending, 0)
        yield waitUntil(lambda: chatlog.rowsWritten == 1, "the timed batch")
        self.assertEqual([r["message"] for r in (yield self.rows())], ["혼자 온 메시지"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    @defer.inlineCallbacks
    def test_rowsLoggedDuringAWriteFollowIt(self) -> Any:
        chatlog = yield self.started(batchSize=2, flushInterval=3600)
        yield self.route("# echo 1")  # two rows: a batch leaves now
        yield self.route("셋째")
        yield waitUntil(lambda: chatlog.rowsWritten == 2, "the first batch")
        # The batch in flight scheduled the next one on the timer.
        self.assertEqual(chatlog.pending, 1)
        self.clock.advance(3600)
        yield waitUntil(lambda: chatlog.rowsWritten == 3, "the second batch")

    @defer.inlineCallbacks
    def test_flushOnStop(self) -> Any:
        chatlog = yield self.started(batchSize=200, flushInterval=3600)
        for i in range(5):
            yield self.route(f"# echo {i}")
        self.assertEqual(chatlog.pending, 10)
        yield chatlog.stopService()
        self.assertEqual(chatlog.pending, 0)
        self.assertEqual(len((yield self.rows())), 10)
        self.assertIn("[SHUTDOWN] writing 10 pending chat row(s)", logText(self.logs))

    @defer.inlineCallbacks
    def test_stopRightAfterStartWritesTheRows(self) -> Any:
        # A SIGTERM while the schema check is still under way: the rows answered
        # meanwhile are written before the stop completes, not left for a next start.
        chatlog = self.makeChatLog(batchSize=200, flushInterval=3600)
        chatlog.startService()
        self.assertFalse(chatlog.ready)
        yield self.route("# echo 바로 종료")
        yield chatlog.stopService()
        self.assertEqual([r["message"] for r in (yield self.rows())],
                         ["# echo 바로 종료", "에코: 바로 종료"])
        self.assertEqual(chatlog.backlog, 0)

    @defer.inlineCallbacks
    def test_overLongValues(self) -> Any:
        chatlog = yield self.started()
        room = "방" * 300
        hangul = "가" * 65_000
        emoji = "😀🎉" * 20
        yield self.route("앞 메시지")
        yield self.route(hangul, room=room, sender="보낸이" * 50, userHash="u" * 150,
                         channelId="9" * 80, logId="7" * 80)
        yield self.route(f"# echo {emoji}", room=f"이모지방 {emoji}")
        yield self.route("😀" * 20_000)
        yield self.route("뒤 메시지")
        yield chatlog.flush()
        self.assertEqual(chatlog.batchFailures, 0)
        rows = yield self.rows()
        self.assertEqual(len(rows), 6)
        self.assertEqual(rows[0]["message"], "앞 메시지")
        self.assertEqual(rows[-1]["message"], "뒤 메시지")
        long = rows[1]
        self.assertEqual(long["room_name"], "방" * 255)
        self.assertEqual(long["sender"], ("보낸이" * 50)[:100])
        self.assertEqual(long["user_hash"], "u" * 100)
        self.assertEqual(long["channel_id"], "9" * 50)
        self.assertEqual(long["log_id"], "7" * 50)
        # A TEXT column holds 65,535 bytes: as much of the text as fits, whole characters.
        self.assertEqual(long["message"], "가" * (65_535 // 3))
        self.assertEqual(rows[2]["message"], f"# echo {emoji}")
        self.assertEqual(rows[2]["room_name"], f"이모지방 {emoji}")
        self.assertEqual(rows[3]["message"], f"에코: {emoji}")
        self.assertEqual(rows[4]["message"], "😀" * (65_535 // 4))

    @defer.inlineCallbacks
    def test_failedWriteIsLoggedAndKeptUntilTheTableIsBack(self) -> Any:
        chatlog = yield self.started()
        yield self.database.runOperation("DROP TABLE kb_chat_logs")
        replies = yield self.route("# echo 사라질 뻔한 메시지")
        self.assertEqual([r.text for r in replies], ["에코: 사라질 뻔한 메시지"])
        self.assertFalse((yield chatlog.flush()))  # reports the failure, never raises
        self.assertEqual((chatlog.rowsWritten, chatlog.backlog), (0, 2))
        errors = [e for e in self.logs if e["log_level"].name == "error"]
        self.assertEqual(len(errors), 1)
        self.assertIn("[DB] could not write 2 chat row(s)", logText(errors))
        self.assertIn("kb_chat_logs", logText(errors))
        # Once the table is back, the kept rows are written first, then the new one.
        yield self.database.ensureSchema()
        yield self.route("돌아왔다")
        self.assertTrue((yield chatlog.flush()))
        self.assertEqual([r["message"] for r in (yield self.rows())],
                         ["# echo 사라질 뻔한 메시지", "에코: 사라질 뻔한 메시지", "돌아왔다"])


class SqliteChatLogTests(ChatLogMixin, TestCase):
    def makeSettings(self) -> DBSettings:
        self.path = os.path.join(tempDir(self), "var", "kkobot_test.sqlite3")
        return DBSettings(engine="sqlite", host="", port=0, user="", password="",
                          name="kkobot_test", path=self.path)

    @defer.inlineCallbacks
    def test_fileAndDirectoryCreated(self) -> Any:
        chatlog = yield self.started()
        self.assertTrue(os.path.isfile(self.path))
        self.assertEqual(self.database.describe(), f"sqlite:{self.path}")
        self.assertIn(f"[DB] chat log ready at sqlite:{self.path}", logText(self.logs))
        yield chatlog.stopService()


class MysqlChatLogTests(ChatLogMixin, TestCase):
    def makeSettings(self) -> DBSettings:
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        return self.scratch.settings()

    def columns(self) -> list[tuple]:
        return self.scratch.query(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, COLLATION_NAME "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = 'kb_chat_logs' ORDER BY ORDINAL_POSITION",
            self.scratch.name,
        )

    def indexes(self) -> list[tuple]:
        return self.scratch.query(
            "SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE FROM "
            "information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = "
            "'kb_chat_logs' ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            self.scratch.name,
        )

    @defer.inlineCallbacks
    def test_operatorTableUsedUnchanged(self) -> Any:
        self.scratch.createOperatorTable()
        self.scratch.execute(
            self.scratch.name,
            "INSERT INTO kb_chat_logs (channel_id, user_hash, message, message_type, bot_name) "
            "VALUES ('old', 'old', '예전 행', 'normal', 'LOA.i')",
        )
        before = self.columns()
        indexes = self.indexes()
        chatlog = yield self.started()
        yield self.route("# echo 안녕하세요")
        yield chatlog.flush()
        self.assertEqual(self.columns(), before)
        self.assertEqual(self.indexes(), indexes)
        self.assertEqual(
            self.scratch.query(
                "SELECT message, directive, message_type, is_our_bot_response "
                "FROM kb_chat_logs ORDER BY id"
            ),
            [("예전 행", None, "normal", 0),
             ("# echo 안녕하세요", "# echo", "command", 0),
             ("에코: 안녕하세요", "# echo", "bot_response", 1)],
        )

    @defer.inlineCallbacks
    def test_createdTableMatchesTheOperatorTable(self) -> Any:
        chatlog = yield self.started()
        ours = self.columns(), self.indexes()
        other = ScratchMysql()
        self.addCleanup(other.drop)
        other.createOperatorTable()
        self.scratch = other
        theirs = self.columns(), self.indexes()
        self.assertEqual(ours, theirs)
        yield chatlog.stopService()


class MysqlDatabaseCreationTests(TestCase):
    def setUp(self) -> None:
        self.logs = captureLogs(self)
        self.scratch = ScratchMysql(create=False)
        self.addCleanup(self.scratch.drop)

    @defer.inlineCallbacks
    def test_missingDatabaseIsCreated(self) -> Any:
        database = Database(self.scratch.settings())
        self.addCleanup(database.close)
        chatlog = ChatLog(database, Clock(), Journal(tempDir(self)))
        chatlog.startService()
        yield waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        chatlog.log(
            ChatRow.fromMessage(
                message("첫 메시지"), "kkobot", None, datetime.fromtimestamp(NOW)
            )
        )
        yield chatlog.stopService()
        self.assertEqual(self.scratch.query("SELECT message FROM kb_chat_logs"), [("첫 메시지",)])
        [(charset,)] = self.scratch.query(
            "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME = %s", self.scratch.name)
        self.assertEqual(charset, "utf8mb4")
        self.assertIn(f"[DB] creating database {self.scratch.name}", logText(self.logs))


class UnreachableDatabaseTests(TestCase):
    @defer.inlineCallbacks
    def test_serverDownIsLoggedRetriedAndNeverRaises(self) -> Any:
        logs = captureLogs(self)
        clock = Clock()
        settings = DBSettings(engine="mysql", host="127.0.0.1", port=1, user="nobody",
                              password="secret-pw", name="kkobot_test")
        database = Database(settings)
        self.addCleanup(database.close)
        chatlog = ChatLog(database, clock, Journal(tempDir(self)), retryInterval=5.0)
        chatlog.startService()
        yield waitUntil(lambda: clock.getDelayedCalls(), "the retry to be scheduled")
        self.assertFalse(chatlog.ready)
        [retry] = clock.getDelayedCalls()
        self.assertEqual(retry.getTime(), 5.0)
        chatlog.log(
            ChatRow.fromMessage(
                message("안 써질 메시지"), "kkobot", None, datetime.fromtimestamp(NOW)
            )
        )
        yield chatlog.flush()
        yield chatlog.stopService()
        self.assertEqual(clock.getDelayedCalls(), [])
        text = logText(logs)
        self.assertIn("[DB] mysql://nobody@127.0.0.1:1/kkobot_test is not available", text)
        self.assertIn("[SHUTDOWN] 1 chat row(s) not written", text)
        self.assertNotIn("secret-pw", text)
