"""`kkobot-admin rooms list|show|approve|deny|set`: room approval and per-room settings."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kkobot.rooms.settings import SettingsError
from kkobot.rooms.store import RoomStore
from kkobot.rooms.table import STATUSES

# The status each action sets.
ACTIONS = {"approve": "approved", "deny": "denied", "revoke": "revoked", "block": "blocked"}


class RoomsCommandError(Exception):
    """A one-line problem for stderr."""


def addParsers(sub: Any, parserClass: Any) -> None:
    rooms = sub.add_parser("rooms", help="rooms the bots are in (kb_rooms): list, approve, deny, set")
    rooms.add_argument("--var", default="var", help="the server's --var directory (default var)")
    steps = rooms.add_subparsers(dest="action", required=True, parser_class=parserClass)
    ls = steps.add_parser("list", help="rooms, newest first")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--bot")
    show = steps.add_parser("show", help="one room and its settings")
    show.add_argument("room", help="the room's channel_id")
    for action, status in ACTIONS.items():
        a = steps.add_parser(action, help=f"mark a room {status}")
        a.add_argument("room", help="the room's channel_id")
        if action != "approve":
            a.add_argument("--reason", help="why (kept in rejection_reason)")
    s = steps.add_parser("set", help="room admins, disabled commands and command settings")
    s.add_argument("room", help="the room's channel_id")
    s.add_argument("--add-admin", action="append", default=[], metavar="USERHASH")
    s.add_argument("--remove-admin", action="append", default=[], metavar="USERHASH")
    s.add_argument("--disable", action="append", default=[], metavar="COMMAND")
    s.add_argument("--enable", action="append", default=[], metavar="COMMAND")
    s.add_argument("--setting", action="append", default=[], metavar="COMMAND.KEY=JSON",
                   help="e.g. echo.admin_only=true; an empty value removes the key")


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    rows = [header, *rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def describeSettings(settings: Any) -> str:
    return "\n".join([
        "admins: " + (", ".join(sorted(settings.admins)) or "-"),
        "disabled commands: " + (", ".join(sorted(settings.disabled)) or "-"),
        "command settings: " + (json.dumps(settings.commands, ensure_ascii=False, sort_keys=True)
                                if settings.commands else "-"),
    ])


async def runRooms(args: argparse.Namespace, db: Any, reactor: Any) -> str:
    RoomStore.addSchema(db)
    await db.ensureSchema()
    store = RoomStore(db, reactor)
    if args.action == "list":
        rooms = await store.list(status=args.status, bot=args.bot)
        if not rooms:
            return "no rooms" + (f" with status {args.status}" if args.status else "") + (
                " (a room appears after its first message)")
        return _table(("ROOM", "NAME", "BOT", "STATUS", "FIRST SEEN"),
                      [(r.roomId, r.name, r.bot, r.status, r.createdAt or "-") for r in rooms])
    found = await store.list(roomId=args.room, limit=1)
    if not found:
        raise RoomsCommandError(f"no room {args.room}: see `kkobot-admin rooms list` "
                                "(a room appears after its first message)")
    room = found[0]
    if args.action == "show":
        settings = await store.readSettings(args.room)
        return (f"{room.roomId}  {room.name}  bot {room.bot}  {room.status}\n"
                + describeSettings(settings))
    if args.action == "set":
        try:
            new = await store.changeSettings(args.room, lambda s: s.changed(
                args.add_admin, args.remove_admin, args.disable, args.enable, args.setting))
        except SettingsError as e:
            raise RoomsCommandError(str(e))
        return (f"{args.room}: settings saved (a running server applies them within seconds)\n"
                + describeSettings(new))
    status = ACTIONS[args.action]
    await store.setStatus(args.room, status, getattr(args, "reason", None))
    return f"{args.room} ({room.name}): {status} (a running server applies it within seconds)"
