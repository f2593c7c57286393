"""Retention on real MariaDB and SQLite: old rows go in small batches, newer rows and other tables stay."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from kkobot.chatlog import log as chatlog
from kkobot.config import DBSettings
from kkobot.db.pool import Database
from kkobot.retention import RetentionService, Target
from tests.db.test_tableshape import operatorStatements
from tests.support import ScratchMysql, tempDir

NOW = time.time()


def ago(days: float) -> str:
    return (datetime.fromtimestamp(NOW) - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


CHAT_INSERT = (
    "INSERT INTO kb_chat_logs (channel_id, user_hash, room_name, sender, message, message_type, "
    "bot_name, server_timestamp) VALUES (%s, 'u1', '방', '보낸이', %s, 'normal', 'kkobot', %s)"
)


class Settings(dict):
    def get(self, key, default=None):  # the Resolved.get signature
        return dict.get(self, key, default)


class RetentionCases:
    """Shared by both engines: C{self.db} is a Database whose schema is ready."""

    async def insertChat(self, rows):
        def work(txn):
            for text, when in rows:
                txn.execute(self.db.sql(CHAT_INSERT), ("1", text, when))
        await self.db.runInteraction(work)

    async def chatMessages(self):
        rows = await self.db.runQuery("SELECT message FROM kb_chat_logs ORDER BY id")
        return [r[0] for r in rows]

    def service(self, **settings):
        get = Settings({"retention.chat_logs_days": 0, **settings}).get
        return RetentionService(self.db, reactor, get, batchSize=100, pause=0)

    async def test_old_chat_rows_go_in_batches_and_newer_ones_stay(self):
        await self.insertChat([(f"old {i}", ago(40 + i / 1000)) for i in range(1050)])
        await self.insertChat([("recent", ago(1)), ("today", ago(0))])
        retention = self.service(**{"retention.chat_logs_days": 30})
        batches = []
        original = self.db.runInteraction

        def counting(func, *args, **kw):
            batches.append(func.__name__)
            return original(func, *args, **kw)

        self.db.runInteraction = counting
        deleted = await retention.trim(Target("chat_logs_days", "kb_chat_logs", "server_timestamp", 30))
        self.db.runInteraction = original
        self.assertEqual(deleted, 1050)
        self.assertEqual(await self.chatMessages(), ["recent", "today"])
        # 1052 rows 100 at a time: 11 short transactions, not one long one.
        self.assertEqual(batches.count("deleteBatch"), 11)

    async def test_chat_logs_are_kept_by_default(self):
        await self.insertChat([("ancient", ago(4000))])
        await self.service().sweep()
        self.assertEqual(await self.chatMessages(), ["ancient"])

    async def test_ping_rows_go_after_ping_days(self):
        table = self.db.tables["kb_ping_monitor"]
        timeColumn = table.column("server_time")

        def work(txn):
            for when in (ago(45), ago(31), ago(2)):
                txn.execute(self.db.sql(
                    f"INSERT INTO {table.table} (bot_name, device_id, {timeColumn}) "
                    "VALUES ('kkobot', 'd1', %s)"), (when,))
        await self.db.runInteraction(work)
        await self.insertChat([("ancient", ago(4000))])
        await self.service(**{"retention.ping_days": 30}).sweep()
        left = await self.db.runQuery(f"SELECT COUNT(*) FROM {table.table}")
        self.assertEqual(left[0][0], 1)
        self.assertEqual(await self.chatMessages(), ["ancient"])

    async def test_an_empty_or_missing_table_is_nothing_to_do(self):
        retention = self.service(**{"retention.chat_logs_days": 1})
        self.assertEqual(await retention.trim(
            Target("schedule_logs_days", "kb_schedule_logs_absent", "created_at", 1)), 0)
        self.assertEqual(await retention.trim(
            Target("chat_logs_days", "kb_chat_logs", "server_timestamp", 1)), 0)


class RetentionOnSqlite(RetentionCases, TestCase):
    async def setUp(self):
        path = os.path.join(tempDir(self), "kkobot.sqlite3")
        self.db = Database(DBSettings(engine="sqlite", host="", port=0, user="", password="",
                                      name="t", path=path), reactor=reactor)
        self.addCleanup(self.db.close)
        chatlog.addSchema(self.db)
        await self.db.ensureSchema()


class RetentionOnMariaDB(RetentionCases, TestCase):
    async def setUp(self):
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        # The operators' tables (kb_ping_monitor keeps its time in ping_time there).
        for statement in operatorStatements():
            self.scratch.execute(self.scratch.name, statement)
        self.db = Database(self.scratch.settings(), reactor=reactor)
        self.addCleanup(self.db.close)
        chatlog.addSchema(self.db)
        await self.db.ensureSchema()

    async def test_schedule_logs_go_after_schedule_logs_days(self):
        self.scratch.execute(self.scratch.name, (
            "INSERT INTO kb_schedule (id, title, created_by_type, created_by_id, created_by_mb_id, "
            "target_bot_name, target_room_id, schedule_type, schedule_time, valid_from, valid_until) "
            "VALUES (1, 't', 'branch', 'b', 'm', 'kkobot', '1', 'daily', '09:00', NOW(), NOW())"))
        for when in (ago(200), ago(10)):
            self.scratch.execute(self.scratch.name, (
                "INSERT INTO kb_schedule_logs (schedule_id, target_room_id, status, scheduled_at, "
                "started_at, created_at) VALUES (1, '1', 'success', %s, %s, %s)"), when, when, when)
        await self.service(**{"retention.schedule_logs_days": 180}).sweep()
        left = self.scratch.query("SELECT created_at FROM kb_schedule_logs")
        self.assertEqual(len(left), 1)


class RetentionSchedule(TestCase):
    """The first pass a minute after start, then every interval; stopping ends the passes."""

    async def test_passes_follow_the_clock(self):
        from twisted.internet import task

        path = os.path.join(tempDir(self), "kkobot.sqlite3")
        db = Database(DBSettings(engine="sqlite", host="", port=0, user="", password="",
                                 name="t", path=path), reactor=reactor)
        self.addCleanup(db.close)
        chatlog.addSchema(db)
        await db.ensureSchema()
        clock = task.Clock()
        clock.advance(NOW)
        settings = Settings({"retention.chat_logs_days": 30, "retention.interval": 600.0,
                             "retention.batch_pause": 0.0})
        retention = RetentionService.fromSettings(db, clock, settings.get)
        self.assertEqual((retention.interval, retention.batchSize, retention.pause), (600.0, 1000, 0.0))

        async def insert(text, days):
            await db.runOperation(CHAT_INSERT, ("1", text, ago(days)))

        await insert("old", 40)
        retention.startService()
        self.addCleanup(retention.stopService)
        clock.advance(59)
        self.assertIsNone(retention._sweeping)
        clock.advance(1)
        await retention._sweeping
        self.assertEqual(retention.deleted["kb_chat_logs"], 1)
        await insert("old again", 40)
        clock.advance(599)
        self.assertIsNone(retention._sweeping)
        clock.advance(1)
        await retention._sweeping
        self.assertEqual(retention.deleted["kb_chat_logs"], 2)
        retention.stopService()
        await insert("after stop", 40)
        clock.advance(600)
        self.assertIsNone(retention._sweeping)
