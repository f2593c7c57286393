"""kkobot-admin: manage bridge devices, and re-insert chat rows the database once refused."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn, Sequence

from twisted.internet import defer, task

from kkobot import config

from kkobot.chatlog import log as chatlog

from kkobot.chatlog import rejected
from kkobot.admin import schedulescli
from kkobot.commands import admincmds
from kkobot.db.pool import Database
from kkobot.bridge.devices import DeviceStore
from kkobot.rooms import cli as roomscli

PROG = "kkobot-admin"

# The status each action sets.
ACTIONS = {"approve": "approved", "deny": "denied", "revoke": "revoked", "block": "blocked"}


class AdminError(Exception):
    """A one-line problem for stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise AdminError(f"{message} (see {PROG} --help)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Manage bridge devices; re-insert chat rows the database once refused.")
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
    refused = sub.add_parser(
        "rejected", help="rows the database refused for good (rejected.jsonl): list, re-insert"
    )
    refused.add_argument("--var", default="var",
                         help="the server's --var directory (default var), for the journal")
    refused.add_argument("--file", help="a rejected file (default: the journal's rejected.jsonl)")
    steps = refused.add_subparsers(dest="action", required=True, parser_class=_Parser)
    steps.add_parser("list", help="rows waiting in the rejected file(s), by table and error")
    steps.add_parser(
        "import",
        help="after fixing the cause: insert the rows, each exactly once, and archive the file",
    )
    admincmds.addParsers(sub, _Parser)
    roomscli.addParsers(sub, _Parser)
    schedulescli.addParsers(sub, _Parser)
    cluster = sub.add_parser("cluster", help="the deployment: instances, their phones, last heartbeats")
    cluster.add_argument("action", nargs="?", default="status", choices=("status",),
                         help="status (the default): every instance read from Redis")
    return p


async def runCluster(args: argparse.Namespace, reactor: Any) -> str:
    """C{cluster status}: the deployment as Redis has it (cluster.redis of this config)."""
    from kkobot.cluster.admin import fetchDeployment, formatDeployment
    from kkobot.cluster.link import RedisUnavailable
    from kkobot.service import Settings, StartupError, resolve

    try:
        resolved = resolve(Settings(configDir=args.config, mode=args.mode, logDir=None))
    except StartupError as e:
        raise AdminError(str(e))
    settings = resolved.cluster
    if not settings.enabled:
        return "one process (cluster.redis is not set): see /api/clients of the server"
    try:
        views = await fetchDeployment(settings, reactor)
    except RedisUnavailable as e:
        raise AdminError(str(e))
    return f"deployment {settings.keyPrefix} on {settings.redis.display()}\n" + formatDeployment(views)


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


def rejectedSetup(args: argparse.Namespace, reactor: Any = None) -> tuple[Database, str]:
    """The server's database, and its journal's rejected file, for this config, mode and --var."""
    from kkobot.service import Settings, StartupError, resolve

    try:
        resolved = resolve(Settings(configDir=args.config, mode=args.mode, varDir=args.var,
                                    logDir=None))
    except StartupError as e:
        raise AdminError(str(e))
    return Database(resolved.db, reactor=reactor), chatlog.rejectedPath(resolved.journalDir)


async def runRejected(args: argparse.Namespace, db: Database, journalFile: str) -> str:
    """C{rejected list} / C{rejected import} (of C{--file}, else C{journalFile}); the text to print."""
    path = args.file or journalFile
    importing = path + rejected.IMPORTING_SUFFIX
    if args.action == "list":
        found = [p for p in (importing, path) if os.path.exists(p)]
        if not found:
            return f"no rejected rows: {path} does not exist"
        return "\n".join(rejected.summarize(p, _read(p)) for p in found)
    # import: the rows' tables are created as the server would (it may not have run).
    chatlog.addSchema(db)
    await db.ensureSchema()
    if args.file:
        # An explicit file (an archive, a copy) is imported where it is.
        inserted, already = await _importOrExplain(db, path)
        return f"{path}: {inserted} row(s) inserted, {already} already imported before"
    lines = []
    while True:
        taken = rejected.takeForImport(path)
        if taken is None:
            break
        inserted, already = await _importOrExplain(db, taken)
        kept = rejected.archive(taken)
        lines.append(f"{inserted} row(s) inserted into {db.describe()}, {already} already "
                     f"imported before; the file is kept as {kept}")
    return "\n".join(lines) or f"nothing to import: {path} does not exist"


def _read(path: str) -> list[rejected.RejectedRow]:
    try:
        return rejected.readRejected(path)
    except rejected.RejectedFileError as e:
        raise AdminError(str(e))


async def _importOrExplain(db: Database, path: str) -> tuple[int, int]:
    rows = _read(path)  # a damaged line is reported before anything is written
    try:
        return await rejected.importRejected(db, rows)
    except rejected.StillRefused as e:
        raise AdminError(f"{rejected.refusalText(e)}; the rows stay in {path}")


def main(argv: Sequence[str] | None = None) -> None:
    try:
        args = parser().parse_args(argv)
    except AdminError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        raise SystemExit(1)

    async def _main(reactor: Any) -> None:
        if args.area == "cluster":
            sys.stdout.write(await runCluster(args, reactor) + "\n")
            return
        timezone = None
        if args.area == schedulescli.AREA:
            db, timezone = schedulescli.setup(args, reactor)
        elif args.area in ("rejected", "rooms", *admincmds.AREAS):
            # The server's own database, config or not (the embedded SQLite default).
            db, path = rejectedSetup(args, reactor)
        else:
            db = database(args.config, args.mode, reactor)
        try:
            if args.area == "rejected":
                sys.stdout.write(await runRejected(args, db, path) + "\n")
            elif args.area == "store":
                sys.stdout.write(await admincmds.runStore(args, db) + "\n")
            elif args.area == "rooms":
                sys.stdout.write(await roomscli.runRooms(args, db, reactor) + "\n")
            elif timezone is not None:
                sys.stdout.write(await schedulescli.runSchedules(args, db, timezone) + "\n")
            elif args.area == "triggers":
                sys.stdout.write(await admincmds.runTriggers(args, db) + "\n")
            else:
                sys.stdout.write(await run(args, db, reactor) + "\n")
        finally:
            db.close()

    def failed(failure: Any) -> None:
        error = failure.value
        known = (AdminError, admincmds.AdminCommandError, roomscli.RoomsCommandError,
                 schedulescli.ScheduleCommandError)
        message = str(error) if isinstance(error, known) else (
            f"database error: {failure.getErrorMessage()}")
        sys.stderr.write(f"{PROG}: {message}\n")
        raise SystemExit(1)

    task.react(lambda reactor: defer.ensureDeferred(_main(reactor)).addErrback(failed))
