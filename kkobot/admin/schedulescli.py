"""`kkobot-admin schedules list|add|pause|resume|remove|log`: operators' announcements in kb_schedule."""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from kkobot.announcements import manage
from kkobot.announcements.rules import RuleError, WEEKDAYS, describe, parseTime, recurrence
from kkobot.announcements.setup import SETTINGS

AREA = "schedules"
_SHORT_DAYS = {name[:3]: name for name in WEEKDAYS}


class ScheduleCommandError(Exception):
    """A one-line problem for stderr."""


def addParsers(sub: Any, parserClass: Any) -> None:
    """The C{schedules} subcommand of kkobot-admin."""
    p = sub.add_parser(AREA, help="announcements (kb_schedule): list, add, pause, resume, remove, log")
    p.add_argument("--var", default="var", help="the server's --var directory (default var)")
    steps = p.add_subparsers(dest="action", required=True, parser_class=parserClass)
    ls = steps.add_parser("list", help="every schedule with its timing, state and sends")
    ls.add_argument("--status", choices=("active", "inactive", "completed", "error"))
    add = steps.add_parser("add", help="a new announcement (text and/or up to two image groups)")
    add.add_argument("--bot", required=True, help="the bot that sends it")
    add.add_argument("--room", required=True, help="the room's channel id (or its name)")
    add.add_argument("--text", help="the message text")
    add.add_argument("--images-1", nargs="+", default=[], metavar="URL",
                     help="first image group: http(s) URLs or base64")
    add.add_argument("--images-2", nargs="+", default=[], metavar="URL", help="second image group")
    add.add_argument("--wait-1", type=int, default=0, help="media_wait_time of group 1 (ms)")
    add.add_argument("--wait-2", type=int, default=0, help="media_wait_time of group 2 (ms)")
    add.add_argument("--interval", type=int, default=1,
                     help="seconds between the text and each image group (default 1)")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--once", metavar="YYYY-MM-DD", help="send on this day only")
    when.add_argument("--daily", action="store_true", help="send every day")
    when.add_argument("--weekly", metavar="DAYS", help="send on these weekdays: mon,wed,fri")
    add.add_argument("--at", action="append", required=True, metavar="HH:MM",
                     help="time of day (repeat for several times a day)")
    add.add_argument("--from", dest="validFrom", metavar="'YYYY-MM-DD HH:MM'",
                     help="valid from (default now)")
    add.add_argument("--until", dest="validUntil", metavar="'YYYY-MM-DD HH:MM'",
                     help="valid until (default: no end)")
    add.add_argument("--title", help="a title for the list (default: the text's start)")
    for action, helpText in (("pause", "stop sending it (kept, resumable)"),
                             ("resume", "send it again from its next time (missed times are not caught up)"),
                             ("remove", "delete it and its send log")):
        step = steps.add_parser(action, help=helpText)
        step.add_argument("id", type=int)
    log = steps.add_parser("log", help="the newest sends (of one schedule, or of all)")
    log.add_argument("id", type=int, nargs="?")
    log.add_argument("--limit", type=int, default=20)


def _now(timezone: str) -> datetime:
    return datetime.now(ZoneInfo(timezone)).replace(tzinfo=None, microsecond=0)


def _dateTime(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise ScheduleCommandError(f"{what} {text!r} is not 'YYYY-MM-DD HH:MM'")


def _weekdays(text: str) -> list[str]:
    days = []
    for word in text.lower().split(","):
        word = word.strip()
        name = _SHORT_DAYS.get(word[:3]) if word else None
        if name is None or not name.startswith(word):
            raise ScheduleCommandError(f"--weekly {text!r}: use mon,tue,wed,thu,fri,sat,sun")
        days.append(name)
    return [d for d in WEEKDAYS if d in days]


def _table(header: Sequence[str], rows: list[Sequence[Any]]) -> str:
    rows = [tuple(header), *[tuple("-" if v is None else v for v in r) for r in rows]]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def _short(text: Any, width: int = 40) -> str:
    text = "" if text is None else str(text).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _timing(row: dict[str, Any]) -> str:
    try:
        return describe(recurrence(row))
    except RuleError as e:
        return f"(unreadable: {e})"


async def runSchedules(args: argparse.Namespace, db: Any, timezone: str = SETTINGS["schedules.timezone"]) -> str:
    """Do what C{args} asks against C{db}; the text to print."""
    now = _now(timezone)
    if args.action == "list":
        rows = await manage.listSchedules(db, args.status)
        if not rows:
            return "no schedules" + (f" with status {args.status}" if args.status else "")
        return _table(
            ("ID", "STATUS", "BOT", "ROOM", "WHEN", "VALID UNTIL", "SENT", "NEXT", "TITLE"),
            [(r["id"], r["status"], r["target_bot_name"], r["target_room_id"], _timing(r),
              r["valid_until"], r["send_count"], r["next_send_at"], _short(r["title"], 30))
             for r in rows])
    if args.action == "log":
        rows = await manage.sendLog(db, args.id, args.limit)
        if not rows:
            return "no sends recorded" + (f" for schedule {args.id}" if args.id else "")
        return _table(
            ("LOG", "SCHEDULE", "SCHEDULED", "STARTED", "STATUS", "PARTS", "MS", "ERROR"),
            [(r["id"], r["schedule_id"], r["scheduled_at"], r["started_at"], r["status"],
              r["send_components"], r["duration_ms"], _short(r["error_message"], 60)) for r in rows])
    if args.action == "add":
        return await _add(args, db, now)
    if args.action in ("pause", "resume"):
        status = "inactive" if args.action == "pause" else "active"
        if not await manage.setStatus(db, args.id, status, now):
            raise ScheduleCommandError(f"no schedule {args.id}: see `kkobot-admin schedules list`")
        return (f"schedule {args.id}: {status} (a running server applies it within a few seconds)")
    if not await manage.removeSchedule(db, args.id):
        raise ScheduleCommandError(f"no schedule {args.id}: see `kkobot-admin schedules list`")
    return f"schedule {args.id} removed, with its send log"


async def _add(args: argparse.Namespace, db: Any, now: datetime) -> str:
    try:
        times = [parseTime(t, "--at") for t in args.at]
        kind = "once" if args.once else "daily" if args.daily else "weekly"
        day = date.fromisoformat(args.once) if args.once else None
        values, rule = manage.scheduleValues(
            bot=args.bot, room=args.room, kind=kind, times=times, now=now, text=args.text,
            images1=args.images_1, images2=args.images_2, wait1=args.wait_1, wait2=args.wait_2,
            interval=args.interval, weekdays=_weekdays(args.weekly) if args.weekly else (),
            date=day, validFrom=_dateTime(args.validFrom, "--from"),
            validUntil=_dateTime(args.validUntil, "--until"), title=args.title,
        )
    except (RuleError, manage.ScheduleInputError) as e:
        raise ScheduleCommandError(str(e))
    except ValueError as e:
        raise ScheduleCommandError(f"--once: {e}")
    scheduleId = await manage.addSchedule(db, values)
    return (f"schedule {scheduleId} added: {describe(rule)}, next {values['next_send_at']} "
            f"({json.dumps(args.bot)} → {args.room})")


def setup(args: argparse.Namespace, reactor: Any = None) -> tuple[Any, str]:
    """The server's database for this config, mode and --var (config or not), and the schedules' time zone."""
    from kkobot.db.pool import Database
    from kkobot.service import Settings, StartupError, resolve

    try:
        resolved = resolve(Settings(configDir=args.config, mode=args.mode, varDir=args.var, logDir=None))
    except StartupError as e:
        raise ScheduleCommandError(str(e))
    timezone = resolved.get("schedules.timezone", SETTINGS["schedules.timezone"])
    return Database(resolved.db, reactor=reactor), timezone
