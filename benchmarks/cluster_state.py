"""What a shared-state check costs over a real Redis: cooldown, replay guard, ban count, slot claim."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, task  # noqa: E402

from benchmarks.cluster_routing import LOOPBACK, PrivateRedis, deletePrefix, percentile  # noqa: E402
from kkobot.bridge.auth import ReplayGuard  # noqa: E402
from kkobot.cluster.node import ClusterNode  # noqa: E402
from kkobot.cluster.settings import ClusterSettings, RedisAddress  # noqa: E402
from kkobot.commands.cooldowns import Cooldown  # noqa: E402


async def timed(label: str, count: int, call: Any) -> dict[str, Any]:
    """C{count} calls one after another (a dispatcher waits for each), timed one by one."""
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return {
        "check": label,
        "calls": count,
        "per_s": round(count / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
    }


async def main(reactor: Any, args: argparse.Namespace) -> None:
    private = None
    if args.redis:
        address = RedisAddress.parse(args.redis)
        if address.host not in LOOPBACK:
            raise SystemExit("benchmarks talk to loopback addresses only")
    else:
        private = PrivateRedis()
        address = RedisAddress("127.0.0.1", private.port)
    settings = ClusterSettings(redis=address, instance="A", keyPrefix=f"kkobot-bench:{uuid.uuid4().hex[:8]}",
                               heartbeatInterval=60, instanceTimeout=300)
    node = ClusterNode(settings, lambda message: False, reactor=reactor)
    node.startService()
    try:
        await node.link.whenUp()
        cooldowns = node.cooldownStore()
        replay = node.replayCheck(ReplayGuard(reactor, 300), 300)
        bans = node.addressBans(maxFailures=10**9, failureWindow=60, banSeconds=60)
        n = args.calls
        rows = [
            await timed("cooldown acquire (allowed)", n, lambda i: cooldowns.acquire(
                "echo", Cooldown(user=30), SimpleNamespace(userHash=f"u{i}", sender="", room="r", channelId="1"))),
            await timed("cooldown acquire (refused)", n, lambda i: cooldowns.acquire(
                "echo", Cooldown(user=30), SimpleNamespace(userHash="u0", sender="", room="r", channelId="1"))),
            await timed("replay firstUse (new signature)", n, lambda i: replay.firstUse(
                f"{i:064x}", 1, reactor.seconds())),
            await timed("auth failure counted", n, lambda i: bans.failed(f"10.0.{i % 250}.1")),
            await timed("slot claim", n, lambda i: node.slots.claim("job", float(i))),
        ]
    finally:
        if private is None and node.link.up:
            await deletePrefix(node.link, settings.keyPrefix)
        await node.stopService()
        if private is not None:
            private.stop()
    print(f"redis {address.display()} ({'private' if private else 'given'}), one call at a time")
    print("| check | calls | calls/s | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['check']} | {r['calls']} | {r['per_s']} | {r['p50_ms']} | {r['p99_ms']} |")


def run(reactor: Any, options: argparse.Namespace) -> defer.Deferred[None]:
    watchdog = reactor.callLater(options.timeout, lambda: (
        sys.stderr.write("cluster_state: no result in time; stopping\n"), reactor.stop()))
    d = defer.Deferred.fromCoroutine(main(reactor, options))
    return d.addBoth(lambda result: (watchdog.active() and watchdog.cancel(), result)[1])


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--redis", help="redis:// URL on loopback (default: a private redis-server)")
    p.add_argument("--timeout", type=float, default=300)
    task.react(run, (p.parse_args(),))
