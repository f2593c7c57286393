"""kkobot-admin: approve, deny, revoke and block bridge devices in the server's database."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn, Sequence

from twisted.internet import defer, task

from kkobot import config
from kkobot.db import Database
from kkobot.devices import DeviceStore

PROG = "kkobot-admin"

# The status each action sets.
ACTIONS = {"approve": "approved", "deny": "denied", "revoke": "revoked", "block": "blocked"}


class AdminError(Exception):
    """A one-line problem for stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise AdminError(f"{message} (see {PROG} --help)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Manage the devices bridges connect from.")
    p.add_argument("--config", default=os.environ.get("KKOBOT_CONFIG") or config.DEFAULT_DIR,
                   help="config directory (default $KKOBOT_CONFIG or .cfg)")
    p.add_argument("--mode", choices=("test", "prod"), default=os.environ.get("KKOBOT_MODE") or "test",
                   help="which database: DBs.kkobot_test or DBs.kkobot_prod (default test)")
    sub = p.add_subparsers(dest="area", required=True, parser_class=_Parser)
    devices = sub.add_parser("devices", help="list and change device approval")
    actions = devices.add_subparsers(dest="action", required=True, parser_class=_Parser)
    ls = actions.add_parser("list", help="list devices (newest first per bot)")
    ls.add_argument("--status", choices=("pending", *ACTIONS.values()))
    ls.add_argument("--bot")
    for action, status in ACTIONS.items():
        a = actions.add_parser(action, help=f"mark a device {status}")
        a.add_argument("bot")
        a.add_argument("device")
    return p


def database(configDir: str, mode: str, reactor: Any = None) -> Database:
    """The database the server uses with this config and mode."""
    if not config.exists(configDir):
        raise AdminError(
            f"no config in {configDir}/ (devices exist only when auth is on); "
            f"pass --config DIR"
        )
    try:
        cfg = config.load(configDir)
        settings = config.db_settings(cfg, mode)
    except config.ConfigError as e:
        raise AdminError(f"config {configDir}: {e}")
    return Database(settings, reactor=reactor)


def formatDevices(devices: Sequence[Any]) -> str:
    header = ("BOT", "DEVICE", "STATUS", "VERSION", "ADDRESS", "LAST SEEN", "FIRST SEEN")
    rows = [header] + [
        (d.bot, d.device, d.status, d.version or "-", d.address or "-",
         str(d.lastSeen), str(d.firstSeen))
        for d in devices
    ]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows
    )


async def run(args: argparse.Namespace, db: Database, reactor: Any) -> str:
    """Do what C{args} asks against C{db}; the text to print."""
    DeviceStore.addSchema(db)
    # The server may not have run yet: the table is created as the server would.
    await db.ensureSchema()
    store = DeviceStore(db, reactor)
    if args.action == "list":
        devices = await store.list(status=args.status, bot=args.bot)
        if not devices:
            return "no devices" + (f" with status {args.status}" if args.status else "")
        return formatDevices(devices)
    status = ACTIONS[args.action]
    changed = await store.setStatus(args.bot, args.device, status)
    if not changed:
        raise AdminError(
            f"no device {args.device} for bot {args.bot}: "
            f"see `{PROG} devices list` (a device appears after its first handshake)"
        )
    return (
        f"{args.bot} {args.device}: {status} "
        f"(a running server applies it within a few seconds)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    try:
        args = parser().parse_args(argv)
    except AdminError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        raise SystemExit(1)

    async def _main(reactor: Any) -> None:
        db = database(args.config, args.mode, reactor)
        try:
            sys.stdout.write(await run(args, db, reactor) + "\n")
        finally:
            db.close()

    def failed(failure: Any) -> None:
        error = failure.value
        message = str(error) if isinstance(error, AdminError) else (
            f"database error: {failure.getErrorMessage()}")
        sys.stderr.write(f"{PROG}: {message}\n")
        raise SystemExit(1)

    task.react(lambda reactor: defer.ensureDeferred(_main(reactor)).addErrback(failed))
