"""`kkobot-admin rejected`: rows MySQL refused, re-inserted exactly once after the cause is fixed."""

from __future__ import annotations

import os
from datetime import datetime

from twisted.trial.unittest import TestCase

from kkobot.admin import cli as admincli

from kkobot.chatlog import rejected
from kkobot.chatlog.log import ChatLog
from kkobot.chatlog.rows import ChatRow
from kkobot.chatlog.setaside import REJECTED_FILE, appendRejected, rejectedLine
from kkobot.config import DBSettings
from kkobot.db.pool import Database
from kkobot.chatlog.journal import Entry, Journal
from tests.support import tempDir, waitUntil
from tests.chatlog.test_journal_chatlog import ChatLogTestBase, reply
from tests.chatlog.test_rejected_rows import TRIGGER, texts


def args(*words: str) -> object:
    return admincli.parser().parse_args(["rejected", *words])


class ImportTests(ChatLogTestBase):
    async def setAside(self, names: list[str]) -> ChatLog:
        self.scratch.execute(self.scratch.name, TRIGGER)
        chatlog = self.makeChatLog(batchSize=10, flushInterval=0.01)
        await waitUntil(lambda: chatlog.ready, "the chat log to be ready")
        for text in names:
            chatlog.log(reply(text))
        self.assertTrue(await chatlog.flush())
        self.flushLoggedErrors()
        return chatlog

    def database(self) -> Database:
        db = Database(self.scratch.settings())
        self.addCleanup(db.close)
        return db

    async def test_importAfterTheFixInsertsEachRefusedRowOnce(self) -> None:
        names = texts(30, poison={5, 20})
        chatlog = await self.setAside(names)
        path = chatlog.rejectedPath
        db = self.database()
        self.assertEqual(self.count(), 28)

        listed = await admincli.runRejected(args("list"), db, path)
        self.assertIn("2 row(s)", listed)
        self.assertIn("2 kb_chat_logs row(s): error 1644 refused by the operator", listed)

        # Not fixed yet: nothing is written, the rows wait in the moved file.
        with self.assertRaises(admincli.AdminError) as refused:
            await admincli.runRejected(args("import"), db, path)
        self.assertIn("still refuses kb_chat_logs row seq 6", str(refused.exception))
        self.assertIn("nothing was imported", str(refused.exception))
        self.assertEqual(self.count(), 28)
        importing = path + rejected.IMPORTING_SUFFIX
        self.assertTrue(os.path.exists(importing))
        self.assertFalse(os.path.exists(path))

        self.scratch.execute(self.scratch.name, "DROP TRIGGER refuse_poison")
        done = await admincli.runRejected(args("import"), db, path)
        self.assertIn("2 row(s) inserted", done)
        self.assertEqual(sorted(self.messages()), sorted(names))
        self.assertFalse(os.path.exists(importing))
        archives = [n for n in os.listdir(self.journalDir) if n.startswith("rejected-imported-")]
        self.assertEqual(len(archives), 1)

        # Again, and the archive itself: nothing twice.
        self.assertIn("nothing to import", await admincli.runRejected(args("import"), db, path))
        again = await admincli.runRejected(
            args("--file", os.path.join(self.journalDir, archives[0]), "import"), db, path)
        self.assertIn("0 row(s) inserted, 2 already imported", again)
        self.assertEqual(self.count(), 30)

        # The server's own watermark is untouched: a restart replays nothing.
        await chatlog.stopService()
        restarted = self.makeChatLog(batchSize=10, flushInterval=0.01)
        await waitUntil(lambda: restarted.ready, "the restarted chat log to be ready")
        self.assertEqual(restarted.committed, 30)
        self.assertTrue(await restarted.flush())
        self.assertEqual(self.count(), 30)

    async def test_aLineRepeatedByACrashIsInsertedOnce(self) -> None:
        # A crash between the rejected line and its record repeats the line at the
        # next start (docs/durability.md): both copies name the same journal seq.
        path = os.path.join(self.journalDir, REJECTED_FILE)
        line = rejectedLine("0" * 32, Entry(7, ChatRow.KIND, reply("twice").values()),
                            RuntimeError("x"), datetime(2026, 11, 25, 19, 0, 0))
        appendRejected(path, line)
        appendRejected(path, line)
        db = self.database()
        done = await admincli.runRejected(args("import"), db, path)
        self.assertIn("1 row(s) inserted", done)
        self.assertIn("1 already imported", done)
        self.assertEqual(self.messages(), ["twice"])

    async def test_aDamagedFileWritesNothing(self) -> None:
        path = os.path.join(self.journalDir, REJECTED_FILE)
        good = rejectedLine("0" * 32, Entry(1, ChatRow.KIND, reply("ok").values()),
                            RuntimeError("x"), datetime(2026, 11, 25, 19, 0, 0))
        appendRejected(path, good)
        # A line naming a column the table does not have decides no SQL.
        appendRejected(path, good.replace(b'"message"', b'"message`; DROP TABLE x; --"'))
        db = self.database()
        with self.assertRaises(admincli.AdminError) as damaged:
            await admincli.runRejected(args("import"), db, path)
        self.assertIn("line 2", str(damaged.exception))
        self.assertEqual(self.count(), 0)


class FileHandoverTests(TestCase):
    def setUp(self) -> None:
        self.dir = tempDir(self)
        self.path = os.path.join(self.dir, REJECTED_FILE)

    def test_setAsidesAfterTheMoveStartANewFile(self) -> None:
        appendRejected(self.path, b"first\n")
        taken = rejected.takeForImport(self.path)
        self.assertEqual(taken, self.path + rejected.IMPORTING_SUFFIX)
        appendRejected(self.path, b"second\n")
        with open(taken, "rb") as f:
            self.assertEqual(f.read(), b"first\n")
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"second\n")
        self.assertEqual(oct(os.stat(self.path).st_mode & 0o777), "0o600")

    def test_nothingToTake(self) -> None:
        self.assertIsNone(rejected.takeForImport(self.path))

    async def test_sqliteToo(self) -> None:
        settings = DBSettings(engine="sqlite", host="", port=0, user="", password="",
                              name="kkobot_test", path=os.path.join(self.dir, "db.sqlite3"))
        db = Database(settings)
        self.addCleanup(db.close)
        ChatLog(db, None, Journal(os.path.join(self.dir, "journal")))  # adds its tables
        line = rejectedLine("f" * 32, Entry(3, ChatRow.KIND, reply("sqlite").values()),
                            RuntimeError("x"), datetime(2026, 11, 25, 19, 0, 0))
        appendRejected(self.path, line)
        first = await admincli.runRejected(args("import"), db, self.path)
        self.assertIn("1 row(s) inserted", first)
        appendRejected(self.path, line)
        second = await admincli.runRejected(args("import"), db, self.path)
        self.assertIn("0 row(s) inserted", second)
        self.assertIn("1 already imported", second)
        def messages(txn: object) -> list:
            txn.execute("SELECT message FROM kb_chat_logs")
            return txn.fetchall()

        rows = await db.runInteraction(messages)
        self.assertEqual([tuple(r) for r in rows], [("sqlite",)])


class SetupTests(TestCase):
    """`kkobot-admin rejected` finds the same database and journal as the server."""

    def setUp(self) -> None:
        self.dir = tempDir(self)

    def test_embeddedDefault(self) -> None:
        cfg = os.path.join(self.dir, "no-config")
        var = os.path.join(self.dir, "v")
        db, path = admincli.rejectedSetup(
            admincli.parser().parse_args(["--config", cfg, "rejected", "--var", var, "list"]))
        self.addCleanup(db.close)
        self.assertEqual(db.engine, "sqlite")
        self.assertEqual(path, os.path.join(var, "journal", "test", REJECTED_FILE))

    def test_configuredDatabaseAndJournalDir(self) -> None:
        from kkobot import config
        from tests.service.test_service import writeConfig

        cfg = os.path.join(self.dir, "cfg")
        writeConfig(cfg, prod={"host": "127.0.0.1", "user": "kk", "db_name": "kkobot_prod"})
        data = config.load(cfg)
        data.setdefault("chatlog", {})["journal_dir"] = os.path.join(self.dir, "j")
        config.save(cfg, data)
        db, path = admincli.rejectedSetup(admincli.parser().parse_args(
            ["--config", cfg, "--mode", "prod", "rejected", "list"]))
        self.addCleanup(db.close)
        self.assertEqual(db.engine, "mysql")
        self.assertIn("kkobot_prod", db.describe())
        self.assertEqual(path, os.path.join(self.dir, "j", "prod", REJECTED_FILE))

    def test_prodWithoutConfigIsRefused(self) -> None:
        with self.assertRaises(admincli.AdminError) as refused:
            admincli.rejectedSetup(admincli.parser().parse_args(
                ["--config", os.path.join(self.dir, "none"), "--mode", "prod", "rejected", "list"]))
        self.assertIn("prod mode needs a config", str(refused.exception))


class OperatorPingTable(TestCase):
    async def test_a_refused_ping_row_goes_back_into_the_earlier_servers_table(self) -> None:
        import pymysql

        from tests.chatlog.test_operator_tables import operatorDatabase

        scratch = operatorDatabase(self)
        path = os.path.join(tempDir(self), REJECTED_FILE)
        values = ("kkobot", "5f3c2a1b9d8e7f60", "5f3c2a1b9d8e7f60", "127.0.0.1", "3.2.0",
                  6028.0, 8.0, 0.1, 0, 1, 17, "2026-11-25 19:25:11", "2026-11-25 19:25:12")
        error = pymysql.err.OperationalError(1644, "refused by the operator")
        appendRejected(path, rejectedLine("a" * 32, Entry(7, "ping", values), error,
                                          datetime(2026, 11, 25, 19, 25, 13)))
        db = Database(scratch.settings())
        self.addCleanup(db.close)
        done = await admincli.runRejected(args("--file", path, "import"), db, path)
        self.assertIn("1 row(s) inserted", done)
        rows = scratch.query("SELECT bot_name, device_id, response_time_ms, status, ping_time "
                             "FROM kb_ping_monitor")
        self.assertEqual(rows, [("kkobot", "5f3c2a1b9d8e7f60", 17, "success",
                                 datetime(2026, 11, 25, 19, 25, 12))])
        again = await admincli.runRejected(args("--file", path, "import"), db, path)
        self.assertIn("0 row(s) inserted, 1 already imported", again)
