"""`kkobot-admin store ...` and `kkobot-admin triggers ...`: plugins' stored values and operators' auto-replies."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from typing import Any

from kkobot.commands.store import SCOPES, SqlStorage
from kkobot.commands.triggers import (
    DEFAULT_TRIGGER_COOLDOWN,
    KINDS,
    TriggerTable,
    addTrigger,
    listTriggers,
    removeTrigger,
)

AREAS = ("store", "triggers")


class AdminCommandError(Exception):
    """A one-line problem for stderr."""


def addParsers(sub: Any, parserClass: Any) -> None:
    """The C{store} and C{triggers} subcommands of kkobot-admin."""
    store = sub.add_parser("store", help="plugins' stored values (context.store): list, get, clear")
    store.add_argument("--var", default="var", help="the server's --var directory (default var)")
    steps = store.add_subparsers(dest="action", required=True, parser_class=parserClass)
    ls = steps.add_parser("list", help="without PLUGIN: each plugin and its number of values; "
                                       "with PLUGIN: its values")
    ls.add_argument("plugin", nargs="?")
    get = steps.add_parser("get", help="one value, as JSON")
    get.add_argument("plugin")
    get.add_argument("key")
    clear = steps.add_parser("clear", help="delete a plugin's values (all, or those matching)")
    clear.add_argument("plugin")
    clear.add_argument("--key")
    for p in (ls, get, clear):
        p.add_argument("--scope", choices=SCOPES, default=None if p is not get else "room")
        p.add_argument("--room", help="channel id (or room name without one)")
        p.add_argument("--user", help="userHash (user scope)")

    triggers = sub.add_parser("triggers", help="auto-replies (kb_triggers): list, add, remove")
    triggers.add_argument("--var", default="var", help="the server's --var directory (default var)")
    steps = triggers.add_subparsers(dest="action", required=True, parser_class=parserClass)
    steps.add_parser("list", help="every trigger")
    add = steps.add_parser("add", help="answer REPLY to messages matching PATTERN")
    add.add_argument("pattern")
    add.add_argument("reply", help="the answer; {sender} and {room} are filled in")
    add.add_argument("--kind", choices=KINDS, default="keyword",
                     help="keyword: contained, any case (default); exact: the whole message; regex")
    add.add_argument("--room", help="answer only in this room (channel id); default every room")
    add.add_argument("--cooldown", type=int, default=DEFAULT_TRIGGER_COOLDOWN,
                     help=f"seconds between its answers in one room (default {DEFAULT_TRIGGER_COOLDOWN})")
    rm = steps.add_parser("remove", help="delete a trigger by id")
    rm.add_argument("id", type=int)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    rows = [header, *rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


async def runStore(args: argparse.Namespace, db: Any) -> str:
    SqlStorage.addSchema(db)
    await db.ensureSchema()
    storage = SqlStorage(db)
    now = time.time()
    if args.action == "list":
        items = await storage.items(plugin=args.plugin, scope=args.scope, roomId=args.room,
                                    userId=args.user, now=now, limit=100_000)
        if not items:
            return "no stored values" + (f" for plugin {args.plugin}" if args.plugin else "")
        if args.plugin is None:
            counts: dict[str, int] = {}
            for item in items:
                counts[item.plugin] = counts.get(item.plugin, 0) + 1
            return _table(("PLUGIN", "VALUES"), sorted(counts.items()))
        return _table(
            ("SCOPE", "ROOM", "USER", "KEY", "VALUE", "EXPIRES", "UPDATED"),
            [(i.scope, i.roomId or "-", i.userId or "-", i.key, _short(i.value), _when(i.expiresAt),
              i.updatedAt) for i in items],
        )
    if args.action == "get":
        room = args.room or ""
        user = args.user or ""
        if args.scope in ("room", "user") and not room:
            raise AdminCommandError(f"scope {args.scope} needs --room (a channel id)")
        if args.scope == "user" and not user:
            raise AdminCommandError("scope user needs --user (a userHash)")
        if args.scope == "global":
            room = user = ""
        elif args.scope == "room":
            user = ""
        items = await storage.items(plugin=args.plugin, scope=args.scope, roomId=room, userId=user,
                                    key=args.key, now=now, limit=1)
        if not items:
            raise AdminCommandError(f"no value {args.key!r} for plugin {args.plugin} "
                                    f"(scope {args.scope}); see `kkobot-admin store list {args.plugin}`")
        return json.dumps(items[0].value, ensure_ascii=False, indent=2)
    removed = await storage.clear(args.plugin, scope=args.scope, roomId=args.room, userId=args.user,
                                  key=args.key)
    return f"{removed} value(s) of plugin {args.plugin} removed"


async def runTriggers(args: argparse.Namespace, db: Any) -> str:
    TriggerTable.addSchema(db)
    await db.ensureSchema()
    if args.action == "list":
        rows = await listTriggers(db)
        if not rows:
            return "no triggers (add one with `kkobot-admin triggers add PATTERN REPLY`)"
        return _table(("ID", "KIND", "ROOM", "COOLDOWN", "PATTERN", "REPLY"),
                      [(r.id, r.kind, r.channelId or "*", r.cooldown, r.pattern, _short(r.reply, 50))
                       for r in rows])
    if args.action == "add":
        if args.cooldown < 0:
            raise AdminCommandError("--cooldown must be 0 or more seconds")
        try:
            triggerId = await addTrigger(db, args.kind, args.pattern, args.reply, args.room,
                                         args.cooldown, time.time())
        except ValueError as e:
            raise AdminCommandError(str(e))
        return f"trigger {triggerId} added (a running server answers with it within seconds)"
    if not await removeTrigger(db, args.id):
        raise AdminCommandError(f"no trigger {args.id}; see `kkobot-admin triggers list`")
    return f"trigger {args.id} removed"
