"""The runner's database work: active schedules, the slots already logged, claiming a slot, recording a send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twisted.internet import defer

from kkobot.announcements.rules import RuleError, parseDateTime
from kkobot.announcements.sql import ScheduleSql, jsonText, statementsFor, timeText
from kkobot.db.errors import isLockConflict

FINISH_TRIES = 3
# What an unfinished send row says while it is in flight, and after a stop cut it short.
IN_FLIGHT = "sending"
INTERRUPTED = "interrupted: the server stopped while sending; not sent again"


@dataclass(frozen=True)
class Claim:
    """One slot of one schedule about to be sent: what the claim row records."""

    scheduleId: int
    roomId: str
    slot: datetime
    started: datetime
    text: str | None
    images1: Any
    images2: Any
    # The schedule's next slot after this one (None: this is its last).
    nextSlot: datetime | None


@dataclass(frozen=True)
class Outcome:
    """How a send ended, for its kb_schedule_logs row."""

    status: str  # success | failed | partial
    error: str | None
    components: str | None
    response: Any
    completed: datetime
    durationMs: int


class TablesNotReady(Exception):
    """The schema check has not decided the announcement tables (yet)."""


class ScheduleStore:
    """The announcement tables of one L{kkobot.db.pool.Database}, for the runner."""

    def __init__(self, database: Any) -> None:
        self.database = database

    @defer.inlineCallbacks
    def statements(self):
        """The L{ScheduleSql}, running the schema check first when it has not decided the tables."""
        q = statementsFor(self.database)
        if q is None:
            yield self.database.ensureSchema()
            q = statementsFor(self.database)
        if q is None:
            from kkobot.announcements.tables import SCHEDULE_TABLE

            error = self.database.tableErrors.get(SCHEDULE_TABLE)
            raise TablesNotReady(str(error) if error else "the schedule tables are not decided")
        return q

    @defer.inlineCallbacks
    def current(self, windowStart: datetime):
        """Active and paused schedules valid after C{windowStart}, as dicts by column."""
        q = yield self.statements()
        rows = yield self.database.runInteraction(_current, q, timeText(windowStart))
        return rows

    @defer.inlineCallbacks
    def logged(self, since: datetime):
        """The (schedule id, slot) pairs that have a send row from C{since} on."""
        q = yield self.statements()
        rows = yield self.database.runInteraction(_logged, q, timeText(since))
        return rows

    @defer.inlineCallbacks
    def claim(self, claim: Claim, finalStatus: str | None):
        """The new send row's id when this caller is the one to send the slot, else None."""
        q = yield self.statements()
        logId = yield self.database.runInteraction(_claim, q, claim, finalStatus)
        return logId

    @defer.inlineCallbacks
    def finish(self, scheduleId: int, logId: int, outcome: Outcome):
        """Complete the send row; tried again after a lock conflict (which rolled it back)."""
        q = yield self.statements()
        for attempt in range(FINISH_TRIES):
            try:
                yield self.database.runInteraction(_finish, q, scheduleId, logId, outcome)
                return
            except Exception as e:
                if attempt + 1 == FINISH_TRIES or not isLockConflict(e):
                    raise

    @defer.inlineCallbacks
    def closeInterrupted(self, before: datetime, now: datetime):
        """Mark sends left unfinished by a stopped server (started before C{before}) as failed."""
        q = yield self.statements()
        if q.interrupted is None:
            return 0
        count = yield self.database.runInteraction(
            _interrupted, q, timeText(before), timeText(now))
        return count


def _current(txn: Any, q: ScheduleSql, windowStart: str) -> list[dict[str, Any]]:
    txn.execute(q.current, (windowStart,))
    return [q.scheduleRow(row) for row in txn.fetchall()]


def _logged(txn: Any, q: ScheduleSql, since: str) -> set[tuple[int, datetime]]:
    txn.execute(q.recent, (since,))
    found = set()
    for scheduleId, at in txn.fetchall():
        try:
            found.add((int(scheduleId), parseDateTime(at, "scheduled_at")))
        except RuleError:
            continue
    return found


def _claim(txn: Any, q: ScheduleSql, c: Claim, finalStatus: str | None) -> int | None:
    """
    Runs in a pool thread, in one transaction: the schedule's row is locked first,
    so of several instances (or a restarted one) only the first to get here finds no
    send row for the slot and writes one; the others find it and send nothing.
    """
    if q.sqlite:
        txn.execute(q.touch, (c.scheduleId,))
    else:
        txn.execute(q.isolation)
    txn.execute(q.lockSchedule, (c.scheduleId,))
    row = txn.fetchone()
    if row is None or row[0] != "active":
        return None  # removed or paused since it was read
    slot = timeText(c.slot)
    txn.execute(q.findLog, (c.scheduleId, slot))
    if txn.fetchone() is not None:
        return None
    values = {
        "schedule_id": c.scheduleId,
        "target_room_id": c.roomId,
        "sent_message_text": c.text,
        "sent_images_1": jsonText(c.images1),
        "sent_images_2": jsonText(c.images2),
        "status": "partial",
        "error_message": IN_FLIGHT,
        "scheduled_at": slot,
        "started_at": timeText(c.started),
    }
    txn.execute(q.insertClaim, tuple(values[f] for f in q.claimFields))
    logId = txn.lastrowid
    assignments = {"next_send_at": timeText(c.nextSlot)}
    if finalStatus is not None:
        assignments["status"] = finalStatus
    statement = q.setScheduleSql(list(assignments))
    if statement is not None:
        present = [k for k in assignments if q.schedules.column(k)]
        txn.execute(statement, tuple(assignments[k] for k in present) + (c.scheduleId,))
    return int(logId)


def _finish(txn: Any, q: ScheduleSql, scheduleId: int, logId: int, o: Outcome) -> None:
    values = {
        "status": o.status,
        "error_message": o.error,
        "api_response": jsonText(o.response),
        "send_components": (o.components or "")[:50] or None,
        "completed_at": timeText(o.completed),
        "duration_ms": o.durationMs,
    }
    txn.execute(q.finish, tuple(values[f] for f in q.finishFields) + (logId,))
    if o.status == "failed":
        return
    sc = q.schedules.column
    if sc("last_sent_at") and sc("send_count"):
        txn.execute(q.sql(
            f"UPDATE {q.s} SET {sc('last_sent_at')} = %s, "
            f"{sc('send_count')} = COALESCE({sc('send_count')}, 0) + 1 WHERE {sc('id')} = %s"
        ), (timeText(o.completed), scheduleId))


def _interrupted(txn: Any, q: ScheduleSql, before: str, now: str) -> int:
    txn.execute(q.interrupted, (INTERRUPTED, now, before))
    return int(txn.rowcount or 0)
