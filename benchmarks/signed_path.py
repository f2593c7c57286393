"""A fixed signed workload pushed through the server's bridge protocol in-process, for instruction counts and profiles."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pymysql  # noqa: E402
from twisted.internet import defer, task  # noqa: E402
from twisted.internet.base import ReactorBase  # noqa: E402
from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

from benchmarks import signing  # noqa: E402

# 2026-11-25 19:25:10 +09:00: any fixed time does, so every run signs the same bytes.
START = 1795602310.0
SECRET = "bench-secret"
SALT = "bench-salt"
BOT = "bench"


class _UnreachableDatabase:
    """
    The devices table behind a database that does not answer: registrations are
    answered from the status cache (the store's outage path) and nothing runs in a
    thread, so the workload is the same instructions every run. Per-event checks
    read only the cache, as they do in the server.
    """

    tables: dict[str, Any] = {}
    tableErrors: dict[str, Any] = {}
    schemaReady = False
    engine = "mysql"

    def ensureSchema(self) -> defer.Deferred[None]:
        return defer.fail(ConnectionRefusedError("the benchmark has no database"))


class _ListChatLog:
    """Rows kept in a list (C{--chatlog list}: no journal, no barrier, no database writer)."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def log(self, row: Any) -> None:
        self.rows.append(row)

    def flush(self) -> defer.Deferred[None]:
        return defer.succeed(None)


def _inline(func: Any, *args: Any) -> defer.Deferred[Any]:
    # The replay memory's writes and the journal's fsyncs, run at once instead of in a thread.
    return defer.maybeDeferred(func, *args)


class _Cursor(pymysql.cursors.Cursor):
    """PyMySQL's cursor (its own argument formatting) whose statements stop short of the socket."""

    def execute(self, query: Any, args: Any = None) -> int:
        if args is not None and query.startswith("INSERT INTO kb_chatlog_batches"):
            self.connection.rowsTaken += args[3]
        return super().execute(query, args)

    def _query(self, q: Any) -> int:
        # The only reads: the journal's last committed seq (none yet) and a batch's end.
        self._rows = ((None,),) if isinstance(q, str) and q.startswith("SELECT") else None
        self.rownumber = 0
        self.rowcount = 1
        return 1


class _Connection(pymysql.connections.Connection):
    """A PyMySQL connection in its default mode (utf8mb4, backslash escapes) that is never opened."""

    def __init__(self) -> None:
        super().__init__(defer_connect=True, charset="utf8mb4")
        self.server_status = 0
        self.rowsTaken = 0


class _InProcessDatabase:
    """
    MariaDB as the chat log's writer sees it, run on the calling thread: the batch
    record and the multi-row INSERT are built as for PyMySQL (through its cursor
    and escaping) and counted instead of sent, so the batches cost the same
    instructions every run (no pool thread, no socket). The answer comes on the
    next reactor turn, as a pool thread's would.
    """

    engine = "mysql"

    def __init__(self, clock: Any) -> None:
        from kkobot.chatlog.pings import PING_TABLE
        from kkobot.db.tablemap import resolve

        self.clock = clock
        # The ping rows' table as the schema check decides it where kkobot made it
        # (its own shape; SQLite in memory only answers the question, once, at setup).
        self.tables: dict[str, Any] = {
            PING_TABLE.name: resolve(sqlite3.connect(":memory:").cursor(), "sqlite", PING_TABLE),
        }
        self.tableErrors: dict[str, Any] = {}
        self.connection = _Connection()

    def describe(self) -> str:
        return "the benchmark's in-process database"

    def sql(self, statement: str) -> str:
        return statement

    def addSchema(self, mysql: str, sqlite: Any) -> None:
        pass

    def addTable(self, spec: Any) -> None:
        pass

    def ensureSchema(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def runInteraction(self, func: Any, *args: Any, **kw: Any) -> defer.Deferred[Any]:
        done = defer.maybeDeferred(func, _Cursor(self.connection), *args, **kw)
        answer: defer.Deferred[Any] = defer.Deferred()
        self.clock.callLater(0, done.chainDeferred, answer)
        return answer


class _ReactorClock:
    """
    C{IReactorTime} with the reactor's own timer code (a heap; L{ReactorBase}'s
    methods), moved by hand like a C{task.Clock}: a C{callLater} costs what it
    costs in the server, not C{task.Clock}'s sort of every pending call.
    """

    callLater = ReactorBase.callLater
    getDelayedCalls = ReactorBase.getDelayedCalls
    runUntilCurrent = ReactorBase.runUntilCurrent
    _moveCallLaterSooner = ReactorBase._moveCallLaterSooner
    _cancelCallLater = ReactorBase._cancelCallLater
    _insertNewDelayedCalls = ReactorBase._insertNewDelayedCalls

    def __init__(self) -> None:
        self.now = 0.0
        self._pendingTimedCalls: list[Any] = []
        self._newTimedCalls: list[Any] = []
        self._cancellations = 0
        self.threadCallQueue: list[Any] = []
        self._justStopped = False

    def seconds(self) -> float:
        return self.now

    def advance(self, amount: float) -> None:
        """One reactor turn's timers, C{amount} seconds later."""
        self.now += amount
        self.runUntilCurrent()


class Workload:
    """C{conns} handshaken, verified bridge connections of bot C{bench} and C{lines} signed `# echo` lines."""

    def __init__(
        self, conns: int, lines: int, auth: bool, form: str, scratch: str, chatlog: str = "journal",
        events: bool = True,
    ) -> None:
        from kkobot.bridge.auth import HmacAuthenticator
        from kkobot.bridge.devices import DeviceStore
        from kkobot.bridge.limits import ConnectionLimits, LimitedBridgeFactory
        from kkobot.bridge.outbound import Outbound
        from kkobot.bridge.registry import ClientRegistry
        from kkobot.bridge.replay import ReplayFile
        from kkobot.commands.assembly import buildCommandParts
        from kkobot.commands.history import MemoryChatHistory
        from kkobot.commands.permissions import Permissions
        from kkobot.commands.registry import CommandRegistry
        from kkobot.commands.store import MemoryStorage
        from kkobot.events import NO_EVENTS

        sinks: Any = NO_EVENTS

        self.journaled = chatlog == "journal"
        # The list keeps task.Clock, so its figures compare with those measured before.
        self.clock: Any = _ReactorClock() if self.journaled else task.Clock()
        self.clock.advance(START)
        if events:
            from kkobot.admin.metrics import Metrics
            from kkobot.admin.rates import MessageRates
            from kkobot.events import EventFanout

            # As kkobot/service/server.py builds them: metrics and the status page's rates.
            sinks = EventFanout([Metrics(), MessageRates(self.clock)])
        self.database: _InProcessDatabase | None = None
        self.chatlog: Any
        if self.journaled:
            from kkobot.chatlog.kindlogs import KindLogs

            # As kkobot/service/server.py builds it, with the server's defaults.
            self.database = _InProcessDatabase(self.clock)
            self.chatlog = KindLogs.build(self.database, self.clock, os.path.join(scratch, "journal"),
                                          events=sinks, inThread=_inline)
            self.chatlog.startService()
        else:
            self.chatlog = _ListChatLog()
        registry = ClientRegistry()
        commands = CommandRegistry(None)
        parts = buildCommandParts(
            commands=commands, chatlog=self.chatlog, clients=registry,
            outbound=Outbound(registry, self.chatlog, self.clock), clock=self.clock, cfg={},
            get=lambda key, default: default, storage=MemoryStorage(),
            history=MemoryChatHistory(_ListChatLog()), http=object(), permissions=Permissions({}),
            sighup=False, events=sinks,
        )
        parts.service.startService()
        authenticator = None
        self.replays = None
        if auth:
            devices = DeviceStore(_UnreachableDatabase(), self.clock, autoApprove=True)
            self.replays = ReplayFile(os.path.join(scratch, "replay"), self.clock, 300.0, run=_inline)
            self.replays.startService()
            authenticator = HmacAuthenticator(
                {BOT: (SECRET, SALT)}.get, devices, self.clock, window=300.0, replays=self.replays
            )
        self.factory = LimitedBridgeFactory(
            parts.router, ConnectionLimits(self.clock), registry=registry,
            authenticator=authenticator, clock=self.clock,
            gate=self.chatlog if self.journaled else None, events=sinks,
        )
        if self.journaled:
            self.chatlog.setPressureValve(self.factory.pauseAll, self.factory.resumeAll)
        self.form = form
        self.conns = [self._connect(i) for i in range(conns)]
        self.lines = self._build(lines)

    def _device(self, i: int) -> str:
        return f"bec{i:013x}"

    def _connect(self, i: int) -> tuple[Any, StringTransport]:
        peer = IPv4Address("TCP", f"127.0.0.{1 + i // 40}", 40000 + i)
        proto = self.factory.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        proto.makeConnection(transport)
        device = self._device(i)
        stamp = int(self.clock.seconds() * 1000)
        hello = signing.hello33(BOT, device, stamp) if self.form == "3.3" else signing.hello(BOT, device)
        proto.dataReceived(hello.encode("utf-8"))
        # A signed ping proves the connection, as a bridge's answer to the server's ping does.
        answer = signing.pong33 if self.form == "3.3" else signing.ping
        proto.dataReceived(answer(BOT, device, SECRET, SALT, None, stamp).encode("utf-8"))
        assert proto.verified, transport.value()
        transport.clear()
        return proto, transport

    def _build(self, count: int) -> list[tuple[int, bytes]]:
        """Line k goes to connection k % conns, signed 1 ms after line k - 1."""
        build = signing.message33 if self.form == "3.3" else signing.analyze
        base = int(self.clock.seconds() * 1000) + 1
        out = []
        for k in range(count):
            i = k % len(self.conns)
            line = build(
                BOT, self._device(i), SECRET, SALT, f"bench-room-{i}", f"# echo w:{i}:{k}",
                base + k, channel_id=str(9_000_000_000_000_000 + i), log_id=str(10**15 + k),
                user_hash=f"bench{i}", timestamp="2026-11-25 19:25:10" if self.form == "3.2" else None,
            )
            out.append((i, line.encode("utf-8")))
        return out

    def push(self, count: int) -> int:
        """
        Send the first C{count} lines (the clock moves 0.1 s every 100 lines); the
        replies received. With the journal every line is a reactor turn of its own:
        its rows are written (the turn's callLater(0)) before its reply goes out.
        """
        conns = self.conns
        advance = self.clock.advance
        turns = self.journaled
        replies = 0
        for n, (i, line) in enumerate(self.lines[:count], 1):
            proto, transport = conns[i]
            proto.dataReceived(line)
            if n % 100 == 0:
                advance(0.1)
            elif turns:
                advance(0)
        if turns:
            # The last batch leaves, as its timer would have it, and is answered a turn later.
            advance(0.1)
            advance(0)
        for proto, transport in conns:
            replies += transport.value().count(b"messageResponse")
            transport.clear()
        return replies

    def stored(self) -> int | None:
        """Chat rows written to the database (None for the list); every row taken once."""
        if self.database is None:
            return None
        written = self.chatlog.rowsWritten
        assert self.database.connection.rowsTaken == written + self.chatlog.pingRowsWritten
        return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int, default=20000, help="lines pushed")
    p.add_argument("--prebuild", type=int, default=None,
                   help="lines built beforehand (default: --messages); fix it to compare two runs")
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--no-auth", action="store_true", help="no HMAC auth (the open authenticator)")
    p.add_argument("--form", choices=["3.2", "3.3"], default="3.2")
    p.add_argument("--chatlog", choices=["journal", "list"], default="journal",
                   help="journal: the server's chat log (journal, reply barrier, batches to an "
                        "in-process database); list: rows kept in a list, as before")
    p.add_argument("--no-events", action="store_true",
                   help="no metrics or message-rate hooks (the workload before they were counted)")
    p.add_argument("--profile", metavar="FILE", help="cProfile the pushing into FILE (pstats)")
    p.add_argument("--top", type=int, default=30, help="with --profile: lines of the summary printed")
    a = p.parse_args(argv)
    prebuild = max(a.prebuild or a.messages, a.messages)
    with tempfile.TemporaryDirectory(prefix="kkobot-signed-path-") as tmp:
        w = Workload(a.conns, prebuild, not a.no_auth, a.form, tmp, a.chatlog, not a.no_events)
        cpu0 = time.process_time()
        if a.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            replies = prof.runcall(w.push, a.messages)
            prof.dump_stats(a.profile)
            pstats.Stats(a.profile).sort_stats("tottime").print_stats(a.top)
        else:
            replies = w.push(a.messages)
        cpu = time.process_time() - cpu0
        stored = w.stored()
    print(f"messages {a.messages} replies {replies} conns {a.conns} auth {'off' if a.no_auth else 'on'} "
          f"form {a.form} chatlog {a.chatlog} events {'off' if a.no_events else 'on'}: {cpu * 1e6 / max(a.messages, 1):.1f} us CPU/msg")
    if stored is not None:
        print(f"chat rows in the database {stored} of {2 * a.messages}")
        if stored != 2 * a.messages:
            return 1
    return 0 if replies == a.messages else 1


if __name__ == "__main__":
    sys.exit(main())
