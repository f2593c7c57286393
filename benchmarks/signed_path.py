"""A fixed signed workload pushed through the server's bridge protocol in-process, for instruction counts and profiles."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, task  # noqa: E402
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
    """Rows kept in a list (the journal and the database writer are not measured here)."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def log(self, row: Any) -> None:
        self.rows.append(row)

    def flush(self) -> defer.Deferred[None]:
        return defer.succeed(None)


def _inline(func: Any, *args: Any) -> defer.Deferred[Any]:
    # The replay memory's writes, run at once instead of in a thread.
    return defer.maybeDeferred(func, *args)


class Workload:
    """C{conns} handshaken, verified bridge connections of bot C{bench} and C{lines} signed `# echo` lines."""

    def __init__(self, conns: int, lines: int, auth: bool, form: str, replayDir: str) -> None:
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

        self.clock = task.Clock()
        self.clock.advance(START)
        self.chatlog = _ListChatLog()
        registry = ClientRegistry()
        commands = CommandRegistry(None)
        parts = buildCommandParts(
            commands=commands, chatlog=self.chatlog, clients=registry,
            outbound=Outbound(registry, self.chatlog, self.clock), clock=self.clock, cfg={},
            get=lambda key, default: default, storage=MemoryStorage(),
            history=MemoryChatHistory(self.chatlog), http=object(), permissions=Permissions({}),
            sighup=False,
        )
        parts.service.startService()
        authenticator = None
        self.replays = None
        if auth:
            devices = DeviceStore(_UnreachableDatabase(), self.clock, autoApprove=True)
            self.replays = ReplayFile(replayDir, self.clock, 300.0, run=_inline)
            self.replays.startService()
            authenticator = HmacAuthenticator(
                {BOT: (SECRET, SALT)}.get, devices, self.clock, window=300.0, replays=self.replays
            )
        self.factory = LimitedBridgeFactory(
            parts.router, ConnectionLimits(self.clock), registry=registry,
            authenticator=authenticator, clock=self.clock,
        )
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
        """Send the first C{count} lines (the clock moves 0.1 s every 100 lines); the replies received."""
        conns = self.conns
        advance = self.clock.advance
        replies = 0
        for n, (i, line) in enumerate(self.lines[:count], 1):
            proto, transport = conns[i]
            proto.dataReceived(line)
            if n % 100 == 0:
                advance(0.1)
        for proto, transport in conns:
            replies += transport.value().count(b"messageResponse")
            transport.clear()
        return replies


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int, default=20000, help="lines pushed")
    p.add_argument("--prebuild", type=int, default=None,
                   help="lines built beforehand (default: --messages); fix it to compare two runs")
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--no-auth", action="store_true", help="no HMAC auth (the open authenticator)")
    p.add_argument("--form", choices=["3.2", "3.3"], default="3.2")
    p.add_argument("--profile", metavar="FILE", help="cProfile the pushing into FILE (pstats)")
    p.add_argument("--top", type=int, default=30, help="with --profile: lines of the summary printed")
    a = p.parse_args(argv)
    prebuild = max(a.prebuild or a.messages, a.messages)
    with tempfile.TemporaryDirectory(prefix="kkobot-signed-path-") as tmp:
        w = Workload(a.conns, prebuild, not a.no_auth, a.form, os.path.join(tmp, "replay"))
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
    print(f"messages {a.messages} replies {replies} conns {a.conns} auth {'off' if a.no_auth else 'on'} "
          f"form {a.form}: {cpu * 1e6 / max(a.messages, 1):.1f} us CPU/msg")
    return 0 if replies == a.messages else 1


if __name__ == "__main__":
    sys.exit(main())
