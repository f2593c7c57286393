"""Rows MySQL refuses for good are set aside (rejected.jsonl); the rest is written once, the server keeps answering."""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

import pymysql
from twisted.internet import defer, reactor
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.template import flattenString, tags

from kkobot.chatlog.log import ChatLog, _inThread
from kkobot.chatlog.setaside import REJECTED_FILE, appendRejected
from kkobot.db.pool import Database
from kkobot.db.errors import isRowError
from kkobot.chatlog.journal import Journal
from kkobot.admin.metrics import Metrics
from kkobot.admin.web.health import readiness
from kkobot.admin.web.status import chatlogTiles
from tests.support.adminhelpers import metricValue
from tests.support import analyze, captureLogs, line, logText
from tests.support import waitUntil
from tests.chatlog.test_journal_chatlog import LISTENING, ChatLogTestBase, ServerPathTests, reply, row

POISON = "poison-3f9a"
# A trigger is how an operator (or a stricter schema) refuses one specific row.
TRIGGER = (
    "CREATE TRIGGER refuse_poison BEFORE INSERT ON kb_chat_logs FOR EACH ROW "
    f"IF NEW.message LIKE '%{POISON}%' THEN "
    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the operator'; END IF"
)


def texts(n: int, poison: set[int]) -> list[str]:
    return [POISON if i in poison else f"m{i}" for i in range(n)]


class RejectedRowTests(ChatLogTestBase):
    def rejected(self) -> list[dict[str, Any]]:
        path = os.path.join(self.journalDir, REJECTED_FILE)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def logAll(self, chatlog: ChatLog, names: list[str]) -> None:
        for text in names:
            chatlog.log(reply(text))

    async def test_refusedRowsAreSetAsideAndEveryOtherRowIsWrittenOnce(self) -> None:
        self.scratch.execute(self.scratch.name, TRIGGER)
        events = captureLogs(self)
        metrics = Metrics()
        chatlog = self.makeChatLog(batchSize=20, flushInterval=0.01, events=metrics)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        names = texts(70, poison={17, 18, 45})
        self.logAll(chatlog, names)
        self.assertTrue(await chatlog.flush())
        self.assertEqual(self.messages(), [t for t in names if t != POISON])
        self.assertEqual(chatlog.rowsRejected, 3)
        self.assertEqual(metricValue(metrics.render(), "kkobot_chatlog_rows_rejected_total"), 3)
        self.assertEqual(readiness(LISTENING, chatlog)["rejected_rows"], 3)
        tiles = await flattenString(None, tags.div(*chatlogTiles(chatlog)))
        self.assertIn("<b>3</b>DB가 거부한 행", tiles.decode("utf-8"))
        self.assertEqual((chatlog.backlog, chatlog.committed), (0, 70))
        lines = self.rejected()
        self.assertEqual([r["seq"] for r in lines], [18, 19, 46])
        first = lines[0]
        self.assertEqual(first["table"], "kb_chat_logs")
        self.assertEqual(first["row"]["message"], POISON)
        self.assertEqual(first["row"]["sender"], "kkobot")
        self.assertEqual(first["error"]["code"], 1644)
        self.assertEqual(first["error"]["message"], "refused by the operator")
        self.assertEqual(first["journal_id"], chatlog.journal.journalId)
        # Every seq is accounted for: the refused ones by a record with no rows.
        batches = self.scratch.query(
            "SELECT first_seq, last_seq, row_count FROM kb_chatlog_batches ORDER BY first_seq"
        )
        covered = [s for first, last, _ in batches for s in range(first, last + 1)]
        self.assertEqual(covered, list(range(1, 71)))
        self.assertIn((18, 18, 0), batches)
        self.assertEqual(sum(n for _, _, n in batches), 67)
        errors = logText([e for e in events if e["log_level"] >= LogLevel.warn])
        self.assertIn("[DB]", errors)
        self.assertIn("error 1644", errors)
        self.assertIn("3 row(s) set aside since start", errors)
        self.assertNotIn(POISON, errors, "chat text in a log line above debug")
        # A restart replays nothing: no duplicate rows, no second rejected line.
        await chatlog.stopService()
        again = self.makeChatLog(batchSize=20, flushInterval=0.01)
        await waitUntil(lambda: again.ready and again.backlog == 0, "the second start")
        self.assertEqual(self.count(), 67)
        self.assertEqual(len(self.rejected()), 3)

    async def test_valueTooLongForANarrowerColumnIsSetAside(self) -> None:
        # Strict mode (MariaDB's default) refuses instead of truncating: error 1406.
        self.scratch.execute(
            self.scratch.name, "ALTER TABLE kb_chat_logs MODIFY sender varchar(8) DEFAULT NULL"
        )
        chatlog = self.makeChatLog(batchSize=50, flushInterval=0.01)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        for i in range(10):
            chatlog.log(reply(f"m{i}", botName="kkobot" if i != 6 else "a-much-longer-bot"))
        self.assertTrue(await chatlog.flush())
        self.assertEqual(self.messages(), [f"m{i}" for i in range(10) if i != 6])
        (refused,) = self.rejected()
        self.assertEqual((refused["seq"], refused["error"]["code"]), (7, 1406))
        self.assertEqual(refused["row"]["message"], "m6")

    async def test_crashBetweenSettingAsideAndItsRecordRepeatsTheLineNeverARow(self) -> None:
        self.scratch.execute(self.scratch.name, TRIGGER)
        hung: list[defer.Deferred[None]] = []

        def dieAfterTheFileLine(func: Any, *args: Any) -> defer.Deferred:
            if func is appendRejected:
                func(*args)
                d: defer.Deferred[None] = defer.Deferred()
                hung.append(d)  # the process "dies" here: the record is never written
                return d
            return _inThread(func, *args)

        database = Database(self.scratch.settings())
        self.addCleanup(database.close)
        first = ChatLog(database, reactor, Journal(self.journalDir), batchSize=10,
                        flushInterval=0.01, inThread=dieAfterTheFileLine)
        first.startService()
        await waitUntil(lambda: first.ready, "the chat log to be ready")
        names = texts(30, poison={13})
        self.logAll(first, names)
        await waitUntil(lambda: hung, "the refused row's line")
        # Rows before the refused one were committed in halves of the split batch.
        self.assertEqual(first.committed, 13)
        first.journal.close()
        second = self.makeChatLog(batchSize=10, flushInterval=0.01)
        await waitUntil(lambda: second.ready and second.backlog == 0, "the replay")
        self.assertEqual(self.messages(), [t for t in names if t != POISON])
        self.assertEqual([r["seq"] for r in self.rejected()], [14, 14])

    async def test_serverKeepsAnsweringAndIsNeverPausedByARefusedRow(self) -> None:
        self.scratch.execute(self.scratch.name, TRIGGER)
        chatlog = self.makeChatLog(
            batchSize=5, maxBufferRows=10, maxJournalBytes=16 * 1024, segmentBytes=2048,
            flushInterval=0.01,
        )
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        paths = ServerPathTests("connect")
        paths.addCleanup = self.addCleanup  # type: ignore[method-assign]
        factory = paths.server(chatlog)
        proto, transport = paths.connect(factory)
        expected = []
        for i in range(200):
            text = POISON if i == 50 else str(i)
            proto.dataReceived(line(analyze(f"# echo {text}")))
            if text != POISON:
                expected += [f"# echo {text}", f"에코: {text}"]
            self.assertEqual(transport.producerState, "producing", f"paused at {i}")
            # A bridge's pace: the database keeps up, so only a stuck queue can pause.
            await waitUntil(lambda: chatlog.backlog <= 10, f"the backlog after message {i}")
        self.assertEqual(transport.value().count(b'"messageResponse"'), 200)
        self.assertTrue(await chatlog.flush())
        self.assertEqual(self.messages(), expected)
        self.assertEqual(chatlog.rowsRejected, 2)  # the message and its echo
        self.assertFalse(chatlog.paused)
        # Past the refused rows the journal is trimmed like any other.
        await waitUntil(lambda: len(chatlog.journal.segments) == 1, "trimming")


class SchemaRefusalTests(ChatLogTestBase):
    async def test_aColumnWithoutDefaultKeepsRowsJournaledNotSetAside(self) -> None:
        # An operator adds a NOT NULL column kkobot does not know: every row is
        # refused the same way. None is set aside; they wait in the journal and
        # are written once the column gets a default.
        chatlog = self.makeChatLog(batchSize=10, flushInterval=0.01, retryInterval=0.2)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        self.scratch.execute(self.scratch.name,
                             "ALTER TABLE kb_chat_logs ADD COLUMN tenant int NOT NULL")
        for i in range(25):
            chatlog.log(row(i))
        await waitUntil(lambda: chatlog.batchFailures >= 3, "refused batches")
        self.assertEqual((self.count(), chatlog.backlog, chatlog.rowsRejected), (0, 25, 0))
        self.assertFalse(os.path.exists(chatlog.rejectedPath))
        self.scratch.execute(self.scratch.name,
                             "ALTER TABLE kb_chat_logs ALTER COLUMN tenant SET DEFAULT 0")
        await waitUntil(lambda: chatlog.backlog == 0, "the rows to be written", timeout=30)
        self.assertEqual(self.messages(), [f"m{i}" for i in range(25)])
        self.flushLoggedErrors()


class ClassificationTests(SynchronousTestCase):
    def test_connectionAndLockErrorsAreRetriedNotSetAside(self) -> None:
        for error in [
            pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"),
            pymysql.err.OperationalError(2003, "Can't connect to MySQL server"),
            pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"),
            pymysql.err.OperationalError(1213, "Deadlock found"),
            pymysql.err.OperationalError(1040, "Too many connections"),
            pymysql.err.InterfaceError(0, ""),
            pymysql.err.ProgrammingError(1146, "Table 'x.kb_chat_logs' doesn't exist"),
            pymysql.err.OperationalError(1364, "Field 'tenant' doesn't have a default value"),
            sqlite3.OperationalError("database is locked"),
            OSError(28, "No space left on device"),
        ]:
            self.assertFalse(isRowError(error), error)

    def test_errorsAboutTheRowsAreSetAside(self) -> None:
        for error in [
            pymysql.err.DataError(1406, "Data too long for column 'sender' at row 3"),
            pymysql.err.DataError(1366, "Incorrect string value"),
            pymysql.err.IntegrityError(1048, "Column 'message' cannot be null"),
            pymysql.err.IntegrityError(1452, "Cannot add or update a child row"),
            pymysql.err.OperationalError(1644, "refused by the operator"),
            sqlite3.IntegrityError("NOT NULL constraint failed: kb_chat_logs.message"),
        ]:
            self.assertTrue(isRowError(error), error)
