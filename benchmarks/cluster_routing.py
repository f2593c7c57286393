"""Outbound routing between two in-process instances over a real Redis: latency, throughput, commands per message."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, task  # noqa: E402

from kkobot.cluster.node import ClusterNode  # noqa: E402
from kkobot.cluster.settings import ClusterSettings, RedisAddress  # noqa: E402
from kkobot.bridge.registry import ClientInfo  # noqa: E402

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A throw-away redis-server, so INFO commandstats counts this run's commands only."""

    def __init__(self) -> None:
        self.port = freePort()
        self.dir = tempfile.mkdtemp(prefix="kkobot-bench-redis-")
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("redis-server did not start")
                time.sleep(0.02)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


async def deletePrefix(link: Any, prefix: str) -> None:
    """A Redis that is not ours keeps nothing of the run (SCAN, never KEYS)."""
    cursor = "0"
    while True:
        cursor, found = await link.execute("SCAN", cursor, "MATCH", prefix + ":*", "COUNT", 500)
        if found:
            await link.execute("DEL", *found)
        if cursor == "0":
            return


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def commandStats(link: Any) -> dict[str, int]:
    text = await link.execute("INFO", "commandstats")
    stats = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line[len("cmdstat_"):].partition(":")
            stats[name] = int(rest.split(",")[0].split("=")[1])
    return stats


def requests(nodes: dict[str, ClusterNode]) -> int:
    return sum(n.link.requests + n.readerLink.requests for n in nodes.values())


async def scenario(nodes: dict[str, ClusterNode], arrivals: dict[str, Any], bot: str, count: int,
                   window: int) -> dict[str, Any]:
    """C{count} messages from A to C{bot}, C{window} in flight; timed send -> deliver."""
    sender, link = nodes["A"], nodes["A"].link
    sentAt: dict[str, float] = {}
    latencies: list[float] = []
    allDone: defer.Deferred[None] = defer.Deferred()
    outstanding = defer.DeferredSemaphore(window)

    def arrived(messageId: str) -> None:
        latencies.append(time.perf_counter() - sentAt.pop(messageId))
        outstanding.release()
        if len(latencies) == count and not allDone.called:
            allDone.callback(None)

    arrivals["callback"] = arrived
    before = await commandStats(link)
    sentBefore = requests(nodes)
    started = time.perf_counter()
    for i in range(count):
        await outstanding.acquire()
        messageId = uuid.uuid4().hex
        sentAt[messageId] = time.perf_counter()
        sender.router.send(bot, "방", f"bench {i}", messageId=messageId)
    await allDone
    elapsed = time.perf_counter() - started
    roundTrips = requests(nodes) - sentBefore
    after = await commandStats(link)
    # INFO itself is one command of the delta.
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta["info"] = delta.get("info", 1) - 1
    commands = {k: v for k, v in delta.items() if v > 0}
    return {
        "messages": count,
        "window": window,
        "msg_per_s": round(count / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "max_ms": round(max(latencies) * 1000, 3),
        "requests_per_msg": round(roundTrips / count, 2),
        "redis_commands_per_msg": round(sum(commands.values()) / count, 2),
        "by_command": {k: round(v / count, 2) for k, v in sorted(commands.items())},
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
    arrivals: dict[str, Any] = {}
    phones: dict[str, set[str]] = {"A": set(), "B": set()}

    def deliverOn(name: str):
        def deliver(message: Any) -> bool:
            if message.botName not in phones[name]:
                return False
            arrivals["callback"](message.id)
            return True

        return deliver

    prefix = f"kkobot-bench:{uuid.uuid4().hex[:8]}"
    nodes = {}
    for name in ("A", "B"):
        # A long heartbeat keeps the counts to the messages' own commands.
        settings = ClusterSettings(redis=address, instance=name, keyPrefix=prefix,
                                   heartbeatInterval=60, instanceTimeout=300)
        nodes[name] = ClusterNode(settings, deliverOn(name), reactor=reactor)
        nodes[name].startService()
        await nodes[name].link.whenUp()
        await nodes[name].presence.register()
    for name, bot in (("A", "botA"), ("B", "botB")):
        phones[name].add(bot)
        await nodes[name].clientAdded(ClientInfo(
            botName=bot, version="3.3.0", clientType="MessengerBotR", deviceID=bot,
            address="127.0.0.1", connectedSince=reactor.seconds()))
    results = []
    try:
        await scenario(nodes, arrivals, "botB", 200, 1)  # warm-up
        for window in args.windows:
            for label, bot in (("A -> phone on B", "botB"), ("A -> phone on A", "botA")):
                report = await scenario(nodes, arrivals, bot, args.messages, window)
                report["route"] = label
                results.append(report)
    finally:
        if private is None:
            await deletePrefix(nodes["A"].link, prefix)
        for node in nodes.values():
            await node.stopService()
        if private is not None:
            private.stop()
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    print(f"redis {address.display()} ({'private' if private else 'given'}), "
          f"{os.cpu_count()} cores, both instances in one process")
    print("| route | W | msgs | msg/s | p50 ms | p99 ms | max ms | requests/msg | Redis cmds/msg (in scripts too) | by command |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        by = ", ".join(f"{k} {v}" for k, v in r["by_command"].items())
        print(f"| {r['route']} | {r['window']} | {r['messages']} | {r['msg_per_s']} | {r['p50_ms']} "
              f"| {r['p99_ms']} | {r['max_ms']} | {r['requests_per_msg']} | {r['redis_commands_per_msg']} | {by} |")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int, default=3000)
    p.add_argument("--windows", default="1,16",
                   type=lambda s: [int(w) for w in s.split(",")],
                   help="messages in flight, comma-separated (default 1,16)")
    p.add_argument("--redis", help="redis:// URL on loopback (default: a private redis-server)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    return p.parse_args(argv)


def run(reactor: Any, options: argparse.Namespace) -> defer.Deferred[None]:
    def overdue() -> None:
        sys.stderr.write(f"cluster_routing: no result within {options.timeout} s; stopping\n")
        os._exit(3)

    watchdog = reactor.callLater(options.timeout, overdue)
    d = defer.Deferred.fromCoroutine(main(reactor, options))
    return d.addBoth(lambda result: (watchdog.cancel(), result)[1])


if __name__ == "__main__":
    options = parse()
    task.react(run, (options,))
