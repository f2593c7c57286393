"""Server memory per idle connection: open K handshaken connections, compare the server's RSS."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import loadgen, signing, targets  # noqa: E402
from benchmarks.targets import Target, TargetError  # noqa: E402


async def _keep_alive(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bot: str, device: str,
    secret: str, salt: str, stats: dict[str, int],
) -> None:
    # An idle bridge still answers server pings; a server that drops silent clients
    # would otherwise shrink the count under us on long holds.
    last = 0.0
    try:
        while line := await reader.readline():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("event") == "ping":
                now = time.monotonic()
                if now - last >= loadgen.PING_ANSWER_INTERVAL_S:
                    last = now
                    data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
                    writer.write(signing.ping(bot, device, secret, salt,
                                              data.get("server_timestamp"), loadgen.now_ms()).encode())
    except (ConnectionError, ValueError):
        pass
    stats["closed_by_server"] += 1


async def measure(
    target: Target,
    conns: int,
    *,
    bot: str = "bench",
    secret: str = "bench-secret",
    salt: str = "bench-salt",
    per_source: int = 40,
    concurrency: int = 32,
    timeout: float = 300.0,
    hold: float = 0.0,
    device_prefix: str = "1d1e",
) -> dict[str, Any]:
    """Open `conns` idle connections to a started target and return the memory report."""
    assert target.pid is not None and target.port is not None
    pid, port = target.pid, target.port
    stats = {"closed_by_server": 0}
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    tasks: list[asyncio.Task[None]] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        device = loadgen.device_id(device_prefix, i)
        async with gate:
            try:
                r, w = await loadgen.open_bridge(
                    "127.0.0.1", port, bot, device,
                    local_ip=loadgen.source_address("127.0.0.1", i, per_source), timeout=30.0,
                )
            except (OSError, loadgen.HandshakeError, TimeoutError) as exc:
                failures.append(f"conn {i}: {exc!r}")
                return
        opened.append((r, w))
        tasks.append(asyncio.create_task(_keep_alive(r, w, bot, device, secret, salt, stats)))

    report: dict[str, Any] = {"target": target.name, "requested": conns}
    try:
        async with asyncio.timeout(timeout):
            # One connection first so lazily built per-server state (imports, pools,
            # buffers) is in the baseline rather than charged to the K idle ones.
            await one(conns)
            if not opened:
                report.update(timed_out=False, idle_connections=0, failed=1,
                              failure_samples=failures, closed_by_server=0)
                return report
            report["rss_before_bytes"] = targets.status_bytes(pid, "VmRSS")
            t0 = time.monotonic()
            await asyncio.gather(*(one(i) for i in range(conns)))
            report["open_seconds"] = round(time.monotonic() - t0, 2)
            if hold > 0:
                await asyncio.sleep(hold)
            report["rss_after_bytes"] = targets.status_bytes(pid, "VmRSS")
            report["peak_rss_bytes"] = targets.status_bytes(pid, "VmHWM")
        report["timed_out"] = False
    except TimeoutError:
        report["timed_out"] = True
    idle = len(opened) - 1 - stats["closed_by_server"]  # minus the baseline connection
    report["idle_connections"] = max(0, idle)
    report["failed"] = len(failures)
    report["failure_samples"] = failures[:5]
    report["closed_by_server"] = stats["closed_by_server"]
    if "rss_after_bytes" in report and idle > 0:
        delta = report["rss_after_bytes"] - report["rss_before_bytes"]
        report["bytes_per_connection"] = round(delta / idle)
    for _, w in opened:
        w.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line; exit 0 when every connection was opened and held, else 1 (2: no server)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--target", choices=["bare", "kkobot", "external"], default="bare")
    p.add_argument("--server-cmd", default=targets.DEFAULT_KKOBOT_CMD,
                   help="kkobot command, a format string with {port}")
    p.add_argument("--server-cwd", default=None)
    p.add_argument("--pid", type=int, help="external target: server pid")
    p.add_argument("--port", type=int, help="external target: server port")
    p.add_argument("--conns", type=int, default=5000)
    p.add_argument("--per-source", type=int, default=40, help="conns per 127.0.0.x source (0: one)")
    p.add_argument("--concurrency", type=int, default=32, help="handshakes in flight")
    p.add_argument("--hold", type=float, default=0.0, help="seconds to wait before reading RSS")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--bot", default="bench")
    p.add_argument("--secret", default=os.environ.get("KKOBOT_BENCH_SECRET", "bench-secret"))
    p.add_argument("--salt", default=os.environ.get("KKOBOT_BENCH_SALT", "bench-salt"))
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)

    # Each idle connection is one fd here; the server's own limit is raised by the driver
    # for servers it starts (an external server needs `ulimit -n` set by whoever runs it).
    limit = loadgen.raise_nofile(a.conns + 256)
    if limit < a.conns + 16:
        print(f"open-file limit {limit} is too low for {a.conns} connections; raise `ulimit -Hn`",
              file=sys.stderr)
        return 2
    try:
        target = targets.make_target(a.target, server_cmd=a.server_cmd, server_cwd=a.server_cwd,
                                     pid=a.pid, port=a.port, nofile=a.conns + 1024)
        target.start()
    except TargetError as exc:
        print(f"target {a.target} failed to start: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(measure(
            target, a.conns, bot=a.bot, secret=a.secret, salt=a.salt, per_source=a.per_source,
            concurrency=a.concurrency, timeout=a.timeout, hold=a.hold,
        ))
    finally:
        target.stop()
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        mib = 2**20
        print(f"target: {target.describe()}")
        print(f"idle connections held: {report['idle_connections']} of {a.conns}"
              f" (failed {report['failed']}, closed by server {report['closed_by_server']})")
        if "bytes_per_connection" in report:
            print(f"server RSS before: {report['rss_before_bytes'] / mib:.1f} MiB,"
                  f" after: {report['rss_after_bytes'] / mib:.1f} MiB"
                  f" (opened in {report['open_seconds']} s)")
            print(f"bytes per idle connection: {report['bytes_per_connection']}"
                  f" ({report['bytes_per_connection'] / 1024:.1f} KiB)")
        for s in report["failure_samples"]:
            print("  " + s)
    good = (not report["timed_out"] and report["failed"] == 0
            and report["idle_connections"] == a.conns)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
