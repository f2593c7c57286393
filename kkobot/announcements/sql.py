"""The statements on the decided announcement tables: column names from their TableMaps, placeholders per engine."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable, Sequence

from kkobot.db.tablemap import TableMap

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def timeText(value: datetime | None) -> str | None:
    """A naive local datetime as both engines store and compare it."""
    return None if value is None else value.strftime(TIME_FORMAT)


def jsonText(value: Any) -> str | None:
    """A value for a JSON column (MariaDB checks json_valid): None stays NULL."""
    if value is None:
        return None
    if isinstance(value, (bytes, str)):
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        try:
            json.loads(text)
            return text
        except ValueError:
            return json.dumps(text, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


class ScheduleSql:
    """
    Where the schedules and their sends are (the two L{TableMap}s), and the SQL on
    them. Only columns the tables have are read or written: an operator's older
    table without, say, api_response still works.
    """

    def __init__(self, schedules: TableMap, logs: TableMap, sql: Callable[[str], str], engine: str) -> None:
        self.schedules = schedules
        self.logs = logs
        self.sql = sql
        self.engine = engine
        self.sqlite = engine == "sqlite"
        self.scheduleFields = tuple(f.name for f in schedules.spec.fields)
        self.logFields = tuple(f.name for f in logs.spec.fields)
        self.s = schedules.table
        self.l = logs.table
        lock = "" if self.sqlite else " FOR UPDATE"
        sc, lc = schedules.column, logs.column
        self.selectSchedules = f"SELECT {self._list(schedules, self.scheduleFields)} FROM {self.s}"
        self.selectLogs = f"SELECT {self._list(logs, self.logFields)} FROM {self.l}"
        # Paused ones too: the runner must see a schedule paused to know when it resumes.
        self.current = sql(
            self.selectSchedules
            + f" WHERE {sc('status')} IN ('active', 'inactive') AND {sc('valid_until')} >= %s"
        )
        # The index (status, scheduled_at) answers it: every status, one time range.
        self.recent = sql(
            f"SELECT {lc('schedule_id')}, {lc('scheduled_at')} FROM {self.l} "
            f"WHERE {lc('status')} IN ('success', 'failed', 'partial') AND {lc('scheduled_at')} >= %s"
        )
        # SQLite takes its write lock at the first write: this one, before the check.
        self.touch = sql(f"UPDATE {self.s} SET {sc('id')} = {sc('id')} WHERE {sc('id')} = %s")
        self.lockSchedule = sql(f"SELECT {sc('status')} FROM {self.s} WHERE {sc('id')} = %s{lock}")
        # Read committed: the check sees the row of whoever held the lock before, and
        # takes no gap locks (claims of different schedules would deadlock on them).
        self.isolation = None if self.sqlite else "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"
        self.findLog = sql(
            f"SELECT {lc('id')} FROM {self.l} WHERE {lc('schedule_id')} = %s "
            f"AND {lc('scheduled_at')} = %s LIMIT 1"
        )
        self.claimFields = tuple(
            f for f in ("schedule_id", "target_room_id", "sent_message_text", "sent_images_1",
                        "sent_images_2", "status", "error_message", "scheduled_at", "started_at")
            if lc(f)
        )
        self.insertClaim = sql(
            f"INSERT INTO {self.l} ({', '.join(lc(f) for f in self.claimFields)}) "
            f"VALUES ({', '.join(['%s'] * len(self.claimFields))})"
        )
        self.finishFields = tuple(
            f for f in ("status", "error_message", "api_response", "send_components",
                        "completed_at", "duration_ms") if lc(f)
        )
        self.finish = sql(
            f"UPDATE {self.l} SET {', '.join(f'{lc(f)} = %s' for f in self.finishFields)} "
            f"WHERE {lc('id')} = %s"
        )
        self.interrupted = sql(
            f"UPDATE {self.l} SET {lc('status')} = 'failed', {lc('error_message')} = %s, "
            f"{lc('completed_at')} = %s WHERE {lc('status')} = 'partial' "
            f"AND {lc('scheduled_at')} < %s AND {lc('completed_at')} IS NULL"
        ) if lc("error_message") else None

    @staticmethod
    def _list(mapping: TableMap, fields: Sequence[str]) -> str:
        return ", ".join(mapping.column(f) or "NULL" for f in fields)

    def setScheduleSql(self, assignments: Sequence[str]) -> str | None:
        """C{UPDATE kb_schedule SET a = %s, ... WHERE id = %s} for the columns it has (None: none)."""
        sc = self.schedules.column
        present = [a for a in assignments if sc(a)]
        if not present:
            return None
        return self.sql(
            f"UPDATE {self.s} SET {', '.join(f'{sc(a)} = %s' for a in present)} WHERE {sc('id')} = %s"
        )

    def scheduleRow(self, row: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.scheduleFields, row))

    def logRow(self, row: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.logFields, row))


def statementsFor(database: Any) -> ScheduleSql | None:
    """The statements once C{database}'s schema check has decided both tables, else None."""
    from kkobot.announcements.tables import LOG_TABLE, SCHEDULE_TABLE

    schedules = database.tables.get(SCHEDULE_TABLE)
    logs = database.tables.get(LOG_TABLE)
    if schedules is None or logs is None:
        return None
    return ScheduleSql(schedules, logs, database.sql, database.engine)
