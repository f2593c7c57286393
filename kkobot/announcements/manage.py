"""Operators' changes to schedules (list, add, pause, resume, remove) and their send log, on a Database."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any, Sequence

from kkobot.announcements import tables
from kkobot.announcements.rules import Recurrence, RuleError, recurrence
from kkobot.announcements.sql import ScheduleSql, jsonText, timeText
from kkobot.announcements.store import ScheduleStore

# Who an operator's row names as its creator when kkobot-admin adds it.
CREATOR_TYPE = "branch"
CREATOR = "kkobot-admin"
# A schedule added without --until stays valid this long.
FOREVER = datetime(2099, 12, 31, 23, 59, 59)


class ScheduleInputError(ValueError):
    """A schedule that cannot be added as given; the text says why."""


async def _statements(db: Any) -> ScheduleSql:
    tables.addSchema(db)
    await db.ensureSchema()
    return await ScheduleStore(db).statements()


def _select(txn: Any, statement: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
    txn.execute(statement, tuple(args))
    return list(txn.fetchall())


async def listSchedules(db: Any, status: str | None = None) -> list[dict[str, Any]]:
    """Every schedule (or those of one status), by id."""
    q = await _statements(db)
    sc = q.schedules.column
    statement, args = q.selectSchedules, []
    if status is not None:
        statement += f" WHERE {sc('status')} = %s"
        args.append(status)
    rows = await db.runInteraction(_select, q.sql(statement + f" ORDER BY {sc('id')}"), args)
    return [q.scheduleRow(r) for r in rows]


async def getSchedule(db: Any, scheduleId: int) -> dict[str, Any] | None:
    """One schedule by id, or None."""
    q = await _statements(db)
    sc = q.schedules.column
    rows = await db.runInteraction(_select, q.sql(q.selectSchedules + f" WHERE {sc('id')} = %s"), [scheduleId])
    return q.scheduleRow(rows[0]) if rows else None


async def sendLog(db: Any, scheduleId: int | None = None, limit: int = 20,
                  before: int | None = None) -> list[dict[str, Any]]:
    """The newest sends (of one schedule, or of all) with ids below C{before}, newest first."""
    q = await _statements(db)
    lc = q.logs.column
    statement, args, where = q.selectLogs, [], []
    if scheduleId is not None:
        where.append(f"{lc('schedule_id')} = %s")
        args.append(scheduleId)
    if before is not None:
        where.append(f"{lc('id')} < %s")
        args.append(before)
    if where:
        statement += " WHERE " + " AND ".join(where)
    statement += f" ORDER BY {lc('id')} DESC LIMIT {int(limit)}"
    rows = await db.runInteraction(_select, q.sql(statement), args)
    return [q.logRow(r) for r in rows]


def scheduleValues(
    *,
    bot: str,
    room: str,
    kind: str,
    times: Sequence[time],
    now: datetime,
    text: str | None = None,
    images1: Sequence[str] = (),
    images2: Sequence[str] = (),
    wait1: int = 0,
    wait2: int = 0,
    interval: int = 1,
    weekdays: Sequence[str] = (),
    date: Any = None,
    validFrom: datetime | None = None,
    validUntil: datetime | None = None,
    title: str | None = None,
) -> tuple[dict[str, Any], Recurrence]:
    """The column values of a new kb_schedule row, checked by the same rules the runner uses."""
    if not text and not images1 and not images2:
        raise ScheduleInputError("give --text or images: an announcement needs something to send")
    if not times:
        raise ScheduleInputError("give at least one --at HH:MM")
    ordered = sorted(set(times))
    values: dict[str, Any] = {
        "title": title or (text or "images")[:60],
        "description": None,
        "created_by_type": CREATOR_TYPE,
        "created_by_id": CREATOR,
        "created_by_mb_id": CREATOR,
        "target_bot_name": bot,
        "target_room_id": room,
        "message_text": text,
        "message_images_1": json.dumps(list(images1)) if images1 else None,
        "message_images_2": json.dumps(list(images2)) if images2 else None,
        "send_interval_seconds": interval,
        "media_wait_time_1": wait1,
        "media_wait_time_2": wait2,
        "schedule_type": kind,
        "schedule_date": date.isoformat() if date is not None else None,
        "schedule_time": ordered[0].strftime("%H:%M:%S"),
        "schedule_times": json.dumps([t.strftime("%H:%M:%S") for t in ordered]) if len(ordered) > 1 else None,
        "schedule_weekdays": ",".join(weekdays) or None,
        "valid_from": timeText(validFrom or now),
        "valid_until": timeText(validUntil or FOREVER),
        "status": "active",
        "send_count": 0,
        "created_at": timeText(now),
        "updated_at": timeText(now),
    }
    try:
        rule = recurrence(values)
    except RuleError as e:
        raise ScheduleInputError(str(e))
    if rule.validUntil < rule.validFrom:
        raise ScheduleInputError("--until is before --from")
    nextSlot = rule.nextAfter(max(now, rule.validFrom) - _SECOND)
    if nextSlot is None:
        raise ScheduleInputError("this schedule would never send: no time left in its validity window")
    values["next_send_at"] = timeText(nextSlot)
    return values, rule


async def lastSends(db: Any) -> dict[int, dict[str, Any]]:
    """The newest send of every schedule that has one, by schedule id."""
    q = await _statements(db)
    lc = q.logs.column
    statement = q.sql(q.selectLogs + f" WHERE {lc('id')} IN (SELECT MAX({lc('id')}) FROM {q.l} "
                      f"GROUP BY {lc('schedule_id')})")
    rows = await db.runInteraction(_select, statement, [])
    return {int(r["schedule_id"]): r for r in map(q.logRow, rows)}


# What an edit may change: the creator, creation time and the counters stay.
_KEPT = frozenset({"created_by_type", "created_by_id", "created_by_mb_id", "created_at", "send_count", "status"})


async def updateSchedule(db: Any, scheduleId: int, values: dict[str, Any]) -> bool:
    """Change a schedule to the values of L{scheduleValues}; False when there is no such schedule."""
    q = await _statements(db)
    sc = q.schedules.column
    names = [n for n in values if sc(n) and n not in _KEPT]
    statement = q.sql(f"UPDATE {q.s} SET {', '.join(f'{sc(n)} = %s' for n in names)} WHERE {sc('id')} = %s")
    row = tuple(jsonText(values[n]) if n.startswith(("message_images", "schedule_times")) else values[n]
                for n in names)
    return bool(await db.runInteraction(_change, [(statement, (*row, scheduleId))], q, scheduleId))


async def addSchedule(db: Any, values: dict[str, Any]) -> int:
    """Insert a row of L{scheduleValues}; its id."""
    q = await _statements(db)
    sc = q.schedules.column
    names = [n for n in values if sc(n)]
    statement = q.sql(
        f"INSERT INTO {q.s} ({', '.join(sc(n) for n in names)}) VALUES ({', '.join(['%s'] * len(names))})"
    )
    row = tuple(jsonText(values[n]) if n.startswith(("message_images", "schedule_times")) else values[n]
                for n in names)
    return await db.runInteraction(_insert, statement, row)


def _insert(txn: Any, statement: str, row: tuple[Any, ...]) -> int:
    txn.execute(statement, row)
    return int(txn.lastrowid)


async def setStatus(db: Any, scheduleId: int, status: str, now: datetime) -> bool:
    """Pause (inactive) or resume (active) a schedule; False when there is no such schedule."""
    q = await _statements(db)
    sc = q.schedules.column
    assignments = [f"{sc('status')} = %s"]
    args: list[Any] = [status]
    if sc("updated_at"):
        assignments.append(f"{sc('updated_at')} = %s")
        args.append(timeText(now))
    statement = q.sql(f"UPDATE {q.s} SET {', '.join(assignments)} WHERE {sc('id')} = %s")
    return bool(await db.runInteraction(_change, [(statement, (*args, scheduleId))], q, scheduleId))


async def removeSchedule(db: Any, scheduleId: int) -> bool:
    """Delete a schedule and its send log (MySQL's foreign key cascades; SQLite's may be off)."""
    q = await _statements(db)
    sc, lc = q.schedules.column, q.logs.column
    return bool(await db.runInteraction(_change, [
        (q.sql(f"DELETE FROM {q.l} WHERE {lc('schedule_id')} = %s"), (scheduleId,)),
        (q.sql(f"DELETE FROM {q.s} WHERE {sc('id')} = %s"), (scheduleId,)),
    ], q, scheduleId))


def _change(txn: Any, statements: Sequence[tuple[str, tuple[Any, ...]]], q: ScheduleSql, scheduleId: int) -> bool:
    sc = q.schedules.column
    txn.execute(q.sql(f"SELECT {sc('id')} FROM {q.s} WHERE {sc('id')} = %s"), (scheduleId,))
    if txn.fetchone() is None:
        return False
    for statement, args in statements:
        txn.execute(statement, args)
    return True


_SECOND = datetime(2000, 1, 1, 0, 0, 1) - datetime(2000, 1, 1)
