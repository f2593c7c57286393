"""kb_schedule and kb_schedule_logs: created in the operators' shape where missing, used as they are where they exist."""

from __future__ import annotations

import re
from datetime import datetime, time

from twisted.trial.unittest import TestCase

from kkobot.announcements.tables import LOG_TABLE, SCHEDULE_TABLE
from tests.announcements.rig import Rig
from tests.db.test_tableshape import operatorStatements
from tests.support import ScratchMysql

TABLES = (SCHEDULE_TABLE, LOG_TABLE)


def created(scratch: ScratchMysql) -> dict[str, str]:
    return {t: re.sub(r" AUTO_INCREMENT=\d+", "", scratch.query(f"SHOW CREATE TABLE `{t}`")[0][1])
            for t in TABLES}


class Shapes(TestCase):
    timeout = 60

    async def test_mariadb_tables_kkobot_creates_are_the_operators_own(self) -> None:
        operators = ScratchMysql()
        self.addCleanup(operators.drop)
        for statement in operatorStatements():
            if "kb_schedule" in statement:
                operators.execute(operators.name, statement)
        rig = Rig(self, "mysql", datetime(2026, 12, 7, 9))
        await rig.db.ensureSchema()
        self.assertEqual(created(rig.scratch), created(operators))
        self.assertTrue(all(rig.db.tables[t].ownShape for t in TABLES))

    async def test_sqlite_tables_have_the_same_columns(self) -> None:
        mysql = Rig(self, "mysql", datetime(2026, 12, 7, 9))
        sqlite = Rig(self, "sqlite", datetime(2026, 12, 7, 9))
        await mysql.db.ensureSchema()
        await sqlite.db.ensureSchema()
        for table in TABLES:
            mine = [r[1] for r in sqlite.query(f"PRAGMA table_info({table})")]
            theirs = [r[0] for r in mysql.query(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", table)]
            self.assertEqual(mine, theirs)
            self.assertTrue(sqlite.db.tables[table].ownShape)

    async def test_an_older_log_table_without_some_columns_still_takes_the_sends(self) -> None:
        rig = Rig(self, "mysql", datetime(2026, 12, 7, 9))
        for statement in operatorStatements():
            if "kb_schedule" in statement:
                rig.scratch.execute(rig.scratch.name, statement)
        rig.scratch.execute(rig.scratch.name, "ALTER TABLE kb_schedule_logs DROP COLUMN api_response, "
                            "DROP COLUMN send_components, DROP COLUMN duration_ms")
        before = created(rig.scratch)
        await rig.add(at=(time(9, 1),))
        await rig.pollAt(rig.runner(), datetime(2026, 12, 7, 9, 1))
        self.assertEqual(rig.query("SELECT status, scheduled_at FROM kb_schedule_logs"),
                         [("success", datetime(2026, 12, 7, 9, 1))])
        self.assertEqual(created(rig.scratch), before)
        self.assertEqual(len(rig.bridge.lines), 1)
