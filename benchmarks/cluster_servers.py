"""1, 2 and 3 server processes (twistd) on one MariaDB and a private Redis: aggregate echo throughput, admin API → phone latency."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import loadgen  # noqa: E402
from tests.cluster.deployment import BOT, SALT, SECRET, Deployment, Phone  # noqa: E402


class Cleanups:
    """What the deployment rig registers to undo, run in reverse at the end."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def addCleanup(self, f: Callable[..., Any], *args: Any) -> None:
        self.calls.append((f, args))

    def run(self) -> None:
        for f, args in reversed(self.calls):
            try:
                f(*args)
            except Exception as e:  # noqa: BLE001 - best effort teardown
                sys.stderr.write(f"cleanup {f.__name__}: {e}\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def throughput(d: Deployment, names: str, conns: int, messages: int, window: int) -> dict[str, Any]:
    """Echo load on every instance at once; replies per second over the slowest instance's run."""
    reports: list[dict[str, Any]] = []

    def one(name: str, index: int) -> None:
        reports.append(loadgen.run(loadgen.LoadConfig(
            port=d.port(name), conns=conns, messages=messages, window=window, timeout=300,
            secret=SECRET, salt=SALT, bot=BOT, device_prefix=f"b{index}0",
        )))

    threads = [threading.Thread(target=one, args=(n, i)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    replies = sum(r["replies"] for r in reports)
    seconds = max(r["seconds"] for r in reports)
    return {"replies": replies, "errors": sum(r["errors"] for r in reports),
            "msg_s": round(replies / seconds, 1) if seconds else None,
            "p50_ms": max(r["latency_ms"]["p50"] for r in reports),
            "p99_ms": max(r["latency_ms"]["p99"] for r in reports)}


def routing(d: Deployment, sender: str, holder: str, count: int) -> dict[str, Any]:
    """POST /api/messages on C{sender}, one at a time, until the phone on C{holder} has it."""
    phone = Phone(f"route-{holder}")
    phone.connect(d.port(holder))
    try:
        while holder not in {n for n, devs in d.holders(sender).items() if phone.device in devs}:
            time.sleep(0.05)
        latencies = []
        for i in range(count):
            started = time.perf_counter()
            code, _ = d.api(sender, "POST", "/api/messages", {"bot": BOT, "room": "벤치방", "text": f"r{i}"})
            if code != 202:
                raise RuntimeError(f"/api/messages answered {code}")
            phone.waitReplies(i + 1)
            latencies.append((time.perf_counter() - started) * 1000)
        return {"route": f"API on {sender} → phone on {holder}", "messages": count,
                "p50_ms": round(statistics.median(latencies), 2),
                "p99_ms": round(percentile(latencies, 0.99), 2)}
    finally:
        phone.close()


def run(instances: int, a: argparse.Namespace) -> dict[str, Any]:
    cleanups = Cleanups()
    try:
        d = Deployment(cleanups)
        names = "ABC"[:instances]
        for name in names:
            d.start(name)
        load = throughput(d, names, a.conns, a.messages, a.window)
        route = routing(d, names[0], names[-1], a.routed)
        return {"instances": instances, "conns_per_instance": a.conns, "window": a.window, **load,
                "route": route["route"], "route_p50_ms": route["p50_ms"],
                "route_p99_ms": route["p99_ms"]}
    finally:
        cleanups.run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--instances", default="1,2,3")
    p.add_argument("--conns", type=int, default=10, help="connections per instance")
    p.add_argument("--messages", type=int, default=200, help="messages per connection")
    p.add_argument("--window", type=int, default=4)
    p.add_argument("--routed", type=int, default=200, help="messages timed API → phone")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    loadgen.raise_nofile(4096)
    rows = [run(int(n), a) for n in a.instances.split(",")]
    if a.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
        print("| instances | conns | W | replies | errors | msg/s | echo p50 ms | echo p99 ms "
              "| route | route p50 ms | route p99 ms |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r['instances']} | {r['conns_per_instance']} × {r['instances']} | {r['window']} "
                  f"| {r['replies']} | {r['errors']} | {r['msg_s']} | {r['p50_ms']} | {r['p99_ms']} "
                  f"| {r['route']} | {r['route_p50_ms']} | {r['route_p99_ms']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
