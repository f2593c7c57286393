"""When an announcement is due: the recurrence of a kb_schedule row, as pure functions of wall-clock time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable

KINDS = ("once", "daily", "weekly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class RuleError(ValueError):
    """A schedule row whose timing cannot be understood; the text says which column."""


@dataclass(frozen=True)
class Recurrence:
    """
    The timing of one schedule, in naive local wall-clock time (the schedules' time
    zone): C{kind} once / daily / weekly, the times of day, the date of a once
    schedule, the weekdays (0 = Monday) of a weekly one, and the validity window.
    """

    kind: str
    times: tuple[time, ...]
    validFrom: datetime
    validUntil: datetime
    date: date | None = None
    weekdays: frozenset[int] = frozenset()

    def _days(self, first: date, last: date) -> Iterable[date]:
        """The days in [first, last] on which this rule fires."""
        if self.kind == "once":
            day = self.date or self.validFrom.date()
            if first <= day <= last:
                yield day
            return
        day = first
        while day <= last:
            if self.kind == "daily" or day.weekday() in self.weekdays:
                yield day
            day += timedelta(days=1)

    def slotsBetween(self, start: datetime, end: datetime) -> list[datetime]:
        """Every slot s with C{start} <= s <= C{end} inside the validity window, in order."""
        start = max(start, self.validFrom)
        end = min(end, self.validUntil)
        if start > end:
            return []
        slots = []
        for day in self._days(start.date(), end.date()):
            for at in self.times:
                slot = datetime.combine(day, at)
                if start <= slot <= end:
                    slots.append(slot)
        return slots

    def nextAfter(self, after: datetime) -> datetime | None:
        """The first slot strictly after C{after}, or None when the rule has no more."""
        start = max(after + timedelta(microseconds=1), self.validFrom)
        if start > self.validUntil:
            return None
        # Every rule with any slot has one within eight days of any day.
        end = min(self.validUntil, datetime.combine(start.date() + timedelta(days=8), time.max))
        if self.kind == "once":
            end = self.validUntil
        slots = self.slotsBetween(start, end)
        return slots[0] if slots else None

    def due(self, now: datetime, lateness: float, notBefore: datetime | None = None) -> list[datetime]:
        """
        The slots to send at C{now}: due (not in the future), at most C{lateness}
        seconds late, and not before C{notBefore} (the schedule's creation: a new
        schedule does not send a slot that passed before it existed).
        """
        start = now - timedelta(seconds=lateness)
        if notBefore is not None:
            start = max(start, notBefore)
        return self.slotsBetween(start, now)

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """The next C{count} slots after C{after} (fewer when the rule ends): a schedule's preview."""
        slots: list[datetime] = []
        while len(slots) < count:
            slot = self.nextAfter(slots[-1] if slots else after)
            if slot is None:
                break
            slots.append(slot)
        return slots

    def isFinished(self, after: datetime) -> bool:
        """True when no slot is left after C{after}."""
        return self.nextAfter(after) is None


def parseTime(value: Any, column: str) -> time:
    """A TIME column (PyMySQL gives a timedelta, SQLite text) or "HH:MM[:SS]" as a time of day."""
    if isinstance(value, time):
        return value.replace(microsecond=0)
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        if not 0 <= seconds < 86400:
            raise RuleError(f"{column} {value} is not a time of day")
        return time(seconds // 3600, seconds // 60 % 60, seconds % 60)
    if isinstance(value, str):
        parts = value.strip().split(":")
        if 2 <= len(parts) <= 3 and all(p.strip().isdigit() for p in parts):
            numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
            if numbers[0] < 24 and numbers[1] < 60 and numbers[2] < 60:
                return time(*numbers)
    raise RuleError(f"{column} {value!r} is not HH:MM or HH:MM:SS")


def parseTimes(scheduleTime: Any, scheduleTimes: Any) -> tuple[time, ...]:
    """
    The times of day: the JSON list C{schedule_times} when it has any (several
    sends a day), else C{schedule_time}. Sorted, without repeats.
    """
    listed = scheduleTimes
    if isinstance(listed, (bytes, str)):
        text = listed.decode() if isinstance(listed, bytes) else listed
        try:
            listed = json.loads(text) if text.strip() else None
        except ValueError:
            raise RuleError(f"schedule_times {text!r} is not JSON")
    if listed:
        if not isinstance(listed, list):
            raise RuleError("schedule_times must be a JSON list of \"HH:MM\"")
        times = {parseTime(item, "schedule_times") for item in listed}
    else:
        if scheduleTime is None:
            raise RuleError("schedule_time is empty")
        times = {parseTime(scheduleTime, "schedule_time")}
    return tuple(sorted(times))


def parseWeekdays(value: Any) -> frozenset[int]:
    """A SET column ("monday,friday"), or a list of names: the weekday numbers (0 = Monday)."""
    if value is None:
        return frozenset()
    names = value.split(",") if isinstance(value, str) else list(value)
    days = set()
    for name in names:
        name = str(name).strip().lower()
        if not name:
            continue
        if name not in WEEKDAYS:
            raise RuleError(f"schedule_weekdays has {name!r}, not one of {', '.join(WEEKDAYS)}")
        days.add(WEEKDAYS.index(name))
    return frozenset(days)


def parseDateTime(value: Any, column: str) -> datetime:
    """A DATETIME column (PyMySQL: datetime; SQLite: text) as a naive datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip()).replace(tzinfo=None, microsecond=0)
        except ValueError:
            pass
    raise RuleError(f"{column} {value!r} is not a date and time")


def parseDate(value: Any, column: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise RuleError(f"{column} {value!r} is not a date")


def recurrence(row: dict[str, Any]) -> Recurrence:
    """The L{Recurrence} of a kb_schedule row (by column name); L{RuleError} when it makes no sense."""
    kind = str(row.get("schedule_type") or "").lower()
    if kind not in KINDS:
        raise RuleError(f"schedule_type {row.get('schedule_type')!r} is not once, daily or weekly")
    validFrom = parseDateTime(row.get("valid_from"), "valid_from")
    validUntil = parseDateTime(row.get("valid_until"), "valid_until")
    weekdays = parseWeekdays(row.get("schedule_weekdays"))
    if kind == "weekly" and not weekdays:
        raise RuleError("a weekly schedule needs schedule_weekdays")
    return Recurrence(
        kind=kind,
        times=parseTimes(row.get("schedule_time"), row.get("schedule_times")),
        validFrom=validFrom,
        validUntil=validUntil,
        date=parseDate(row.get("schedule_date"), "schedule_date"),
        weekdays=weekdays,
    )


def describe(rule: Recurrence) -> str:
    """One line for `kkobot-admin schedules list`."""
    times = ",".join(t.strftime("%H:%M" if not t.second else "%H:%M:%S") for t in rule.times)
    if rule.kind == "once":
        return f"once {(rule.date or rule.validFrom.date()).isoformat()} {times}"
    if rule.kind == "daily":
        return f"daily {times}"
    days = ",".join(WEEKDAYS[d][:3] for d in sorted(rule.weekdays))
    return f"weekly {days} {times}"
