"""Where rows go: an existing table's columns, kkobot's own shape where none exists, kkobot_<name> where it cannot."""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import TestCase

from kkobot.chatlog import log as chatlog
from kkobot.config import DBSettings
from kkobot.db.pool import Database
from kkobot.bridge.devices import DeviceStore
from kkobot.chatlog.pings import PING_TABLE
from kkobot.db.shape import readUniqueKeys
from tests.support import ScratchMysql, captureLogs, logText, tempDir
from tests.db.test_tableshape import operatorStatements


async def decide(settings: DBSettings, testcase: TestCase) -> Database:
    db = Database(settings)
    testcase.addCleanup(db.close)
    chatlog.addSchema(db)
    DeviceStore.addSchema(db)
    await db.ensureSchema()
    return db


class MysqlTestBase(TestCase):
    def setUp(self) -> None:
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)

    def sql(self, statement: str) -> None:
        self.scratch.execute(self.scratch.name, statement)

    def definition(self, table: str) -> str:
        return re.sub(r" AUTO_INCREMENT=\d+", "",
                      self.scratch.query(f"SHOW CREATE TABLE `{table}`")[0][1])

    def tables(self) -> list[str]:
        return sorted(t for (t,) in self.scratch.query("SHOW TABLES"))


class OperatorTables(MysqlTestBase):
    async def test_the_earlier_servers_tables_are_used_as_they_are(self) -> None:
        for statement in operatorStatements():
            self.sql(statement)
        before = {t: self.definition(t) for t in ("kb_ping_monitor", "kb_bot_devices")}
        db = await decide(self.scratch.settings(), self)
        ping = db.tables["kb_ping_monitor"]
        self.assertEqual((ping.table, ping.fallbackReason, ping.identity),
                         ("kb_ping_monitor", None, False))
        self.assertEqual(ping.insertColumns,
                         ("bot_name", "device_id", "response_time_ms", "ping_time", "status"))
        row = ("kkobot", None, "uuid", "203.0.113.7", "3.2.0", 1.0, 2.0, 3.0, 4, 5, 17,
               "2026-11-25 19:25:11", "2026-11-25 19:25:12")
        # device_id is NOT NULL there: an unknown device is ''; ping_time is when we got it.
        self.assertEqual(ping.project(row), ("kkobot", "", 17, "2026-11-25 19:25:12", "success"))
        devices = db.tables["kb_bot_devices"]
        self.assertEqual(devices.key, ("device",))
        self.assertEqual(
            {f: devices.column(f) for f in ("address", "version", "firstSeen", "lastSeen",
                                            "approvedAt", "deviceInfo")},
            {"address": "ip_address", "version": "client_version", "firstSeen": "created_at",
             "lastSeen": "updated_at", "approvedAt": "approved_at", "deviceInfo": None})
        self.assertEqual((devices.widths["bot"], devices.widths["address"],
                          devices.widths["version"]), (30, 45, 20))
        self.assertEqual({t: self.definition(t) for t in before}, before)
        self.assertNotIn("kkobot_ping_monitor", self.tables())
        # Decided again (every retry after a schema error does): nothing is logged twice.
        events = captureLogs(self)
        await db.ensureSchema()
        self.assertNotIn("[DB]", logText(events))

    async def test_no_table_gets_kkobots_shape_written_as_it_is(self) -> None:
        events = captureLogs(self)
        db = await decide(self.scratch.settings(), self)
        self.assertNotIn("existing table's columns", logText(events))
        ping = db.tables["kb_ping_monitor"]
        self.assertTrue(ping.identity)
        self.assertEqual(db.tables["kb_bot_devices"].key, ("bot", "device"))
        self.assertEqual(self.tables(), ["kb_bot_devices", "kb_chat_logs", "kb_chatlog_batches",
                                         "kb_ping_monitor"])


class Fallbacks(MysqlTestBase):
    async def check(self, ddl: str, table: str, reason: str) -> Database:
        self.sql(ddl)
        before = self.definition(table)
        events = captureLogs(self)
        db = await decide(self.scratch.settings(), self)
        decided = db.tables[table]
        self.assertEqual(decided.table, "kkobot_" + table[3:])
        self.assertEqual(decided.fallbackReason, reason)
        self.assertEqual(self.definition(table), before)
        self.assertIn(f"[DB] {table} exists but cannot take", logText(events))
        self.assertIn(f"writing them to kkobot_{table[3:]} instead", logText(events))
        return db

    async def test_a_not_null_column_without_default(self) -> None:
        await self.check(
            "CREATE TABLE kb_ping_monitor (id int AUTO_INCREMENT PRIMARY KEY, bot_name varchar(30) "
            "NOT NULL, ping_time datetime NOT NULL, probe_host varchar(64) NOT NULL)",
            "kb_ping_monitor", "column(s) probe_host NOT NULL without a default")

    async def test_a_missing_key_column(self) -> None:
        await self.check(
            "CREATE TABLE kb_bot_devices (id int AUTO_INCREMENT PRIMARY KEY, device_id "
            "varchar(100) NOT NULL UNIQUE, status varchar(10) NOT NULL DEFAULT 'pending')",
            "kb_bot_devices", "no column for bot (bot_name)")

    async def test_devices_without_a_unique_key(self) -> None:
        await self.check(
            "CREATE TABLE kb_bot_devices (id int AUTO_INCREMENT PRIMARY KEY, bot_name varchar(30) "
            "NOT NULL, device_id varchar(100) NOT NULL, status varchar(10) NOT NULL DEFAULT 'pending')",
            "kb_bot_devices", "no unique key on (bot_name, device_id) or (device_id)")

    async def test_a_status_enum_without_blocked(self) -> None:
        await self.check(
            "CREATE TABLE kb_bot_devices (id int AUTO_INCREMENT PRIMARY KEY, bot_name varchar(30) "
            "NOT NULL, device_id varchar(100) NOT NULL UNIQUE, status enum('pending','approved') "
            "NOT NULL DEFAULT 'pending')",
            "kb_bot_devices", "status (enum('pending','approved')) does not accept denied, revoked, blocked")

    async def test_a_text_column_where_a_number_goes_is_left_out(self) -> None:
        self.sql("CREATE TABLE kb_ping_monitor (id int AUTO_INCREMENT PRIMARY KEY, bot_name "
                 "varchar(30) NOT NULL, rtt_ms varchar(10), server_time datetime NOT NULL)")
        db = await decide(self.scratch.settings(), self)
        self.assertEqual(db.tables["kb_ping_monitor"].insertColumns, ("bot_name", "server_time"))

    async def test_nowhere_to_go_is_an_error_for_that_table_only(self) -> None:
        self.sql("CREATE TABLE kb_ping_monitor (bot_name varchar(30) NOT NULL, x int NOT NULL)")
        self.sql("CREATE TABLE kkobot_ping_monitor (y int NOT NULL)")
        events = captureLogs(self)
        db = await decide(self.scratch.settings(), self)
        self.assertNotIn("kb_ping_monitor", db.tables)
        self.assertIn("kb_bot_devices", db.tables)
        self.assertIn("and neither can kkobot_ping_monitor", str(db.tableErrors["kb_ping_monitor"]))
        self.assertIn("[DB] kb_ping_monitor: cannot decide where its rows go", logText(events))
        with self.assertRaises(Exception):
            chatlog.writerFor(db, "ping")


class Sqlite(TestCase):
    async def test_own_shapes_and_unique_keys(self) -> None:
        settings = DBSettings("sqlite", "", 0, "", "", "t",
                              path=os.path.join(tempDir(self), "t.sqlite3"))
        db = await decide(settings, self)
        self.assertTrue(db.tables["kb_ping_monitor"].identity)
        self.assertEqual(db.tables["kb_bot_devices"].key, ("bot", "device"))
        keys = await db.runInteraction(readUniqueKeys, "sqlite", "kb_bot_devices")
        self.assertIn(("bot_name", "device_id"), keys)
        self.assertIn(("id",), keys)

    async def test_fallback_on_sqlite(self) -> None:
        settings = DBSettings("sqlite", "", 0, "", "", "t",
                              path=os.path.join(tempDir(self), "t.sqlite3"))
        db = Database(settings)
        self.addCleanup(db.close)
        await db.runOperation("CREATE TABLE kb_ping_monitor (bot_name TEXT NOT NULL, "
                              "server_time TEXT NOT NULL, extra TEXT NOT NULL)")
        db = await decide(settings, self)
        self.assertEqual(db.tables["kb_ping_monitor"].table, PING_TABLE.fallback)
