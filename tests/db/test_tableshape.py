"""The columns of existing tables, read from MariaDB and SQLite."""

from __future__ import annotations

import os

from twisted.trial import unittest

from kkobot.config import DBSettings
from kkobot.db.pool import Database
from kkobot.db.shape import missingRequired, shapeOf
from tests.support import ScratchMysql, tempDir
from tests.support.paths import DATA

OPERATOR_TABLES = os.path.join(DATA, "operator_tables.sql")


def operatorStatements() -> list[str]:
    with open(OPERATOR_TABLES, encoding="utf-8") as f:
        text = "\n".join(line for line in f.read().splitlines() if not line.startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


class MysqlShape(unittest.TestCase):
    def setUp(self):
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        for statement in operatorStatements():
            self.scratch.execute(self.scratch.name, statement)
        self.db = Database(self.scratch.settings())
        self.addCleanup(self.db.close)

    async def test_operator_ping_monitor(self):
        shape = await shapeOf(self.db, "kb_ping_monitor")
        self.assertIn("response_time_ms", shape)
        self.assertEqual(shape["device_id"].maxLength, 100)
        self.assertFalse(shape["device_id"].nullable)
        self.assertTrue(shape["id"].hasDefault)
        self.assertEqual(shape["status"].dataType, "enum")
        # A writer that leaves out device_id and ping_time would be refused every row.
        self.assertEqual(
            missingRequired(shape, {"bot_name", "response_time_ms"}), ["device_id", "ping_time"]
        )

    async def test_missing_table(self):
        self.assertIsNone(await shapeOf(self.db, "kb_no_such_table"))


class SqliteShape(unittest.TestCase):
    async def test_columns(self):
        db = Database(DBSettings(engine="sqlite", host="", port=0, user="", password="", name="", path=os.path.join(tempDir(self), "t.db")))
        self.addCleanup(db.close)
        await db.runOperation("CREATE TABLE t (a TEXT NOT NULL, b INTEGER DEFAULT 3, c TEXT)")
        shape = await shapeOf(db, "t")
        self.assertEqual(list(shape), ["a", "b", "c"])
        self.assertEqual(missingRequired(shape, {"c"}), ["a"])
        self.assertIsNone(await shapeOf(db, "nope"))
