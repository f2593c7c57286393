"""Outage benchmark: a private MariaDB stopped for N seconds in the middle of a 50-connection run."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import loadgen, targets  # noqa: E402
from benchmarks.mysqlbench import MysqlBench  # noqa: E402


class _Load:
    """loadgen in a thread; its reply counter can be read while it runs."""

    def __init__(self, cfg: loadgen.LoadConfig) -> None:
        self.cfg = cfg
        self.conns: list[Any] = []
        self.report: dict[str, Any] | None = None
        self.ended_at: float | None = None
        cfg.on_connections = self.conns.extend
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.report = loadgen.run(self.cfg)
        finally:
            self.ended_at = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def replies(self) -> int:
        return self.conns[0].totals.ok if self.conns else 0

    def join(self, timeout: float) -> dict[str, Any]:
        self._thread.join(timeout)
        if self.report is None:
            raise RuntimeError("the load did not finish")
        return self.report


def run(a: argparse.Namespace) -> dict[str, Any]:
    """One run: start MariaDB and kkobot, load, stop MariaDB mid-run, restart it, count rows."""
    # Imported here: a private mariadbd (own datadir and port); the shared server on
    # 3306 is never touched.
    from tests.support.mariadb import PrivateMariaDB

    db = PrivateMariaDB()
    db.start()
    bench = MysqlBench("127.0.0.1", db.port)
    server: Any = None
    try:
        bench.create()
        server = targets.make_target("kkobot", server_cmd=bench.server_cmd(), server_cwd=None,
                                     pid=None, port=None, startup_timeout=30)
        server.start()
        loadgen.raise_nofile(a.conns + 256)
        started = threading.Event()
        cfg = loadgen.LoadConfig(port=server.port, conns=a.conns, messages=a.messages,
                                 window=a.window, timeout=a.timeout, on_start=started.set,
                                 per_source=40)
        load = _Load(cfg)
        load.start()
        if not started.wait(60):
            raise RuntimeError("the load never started")
        t0 = time.monotonic()
        time.sleep(a.cut_after)
        replies_at_stop = load.replies()
        stop_began = time.monotonic()
        db.stop(signal.SIGTERM)
        stopped_at = time.monotonic()
        time.sleep(a.outage)
        replies_at_restart = load.replies()
        db.start()
        restarted_at = time.monotonic()
        # Caught up: every row answered before the restart is in MariaDB (the backlog
        # journaled during the outage has been written, while the load goes on).
        backlog = 2 * replies_at_restart
        while (bench.count(cfg.run_id) < backlog
               and time.monotonic() < restarted_at + a.recovery_timeout):
            time.sleep(0.05)
        caught_up_at = time.monotonic()
        report = load.join(a.timeout + 60)
        expected = 2 * report["replies"]
        found = bench.count(cfg.run_id)
        deadline = time.monotonic() + a.recovery_timeout
        while found < expected and time.monotonic() < deadline:
            time.sleep(0.05)
            found = bench.count(cfg.run_id)
        rows_at = time.monotonic()
        load_end = load.ended_at or rows_at
        return {
            "conns": a.conns, "window": a.window, "messages": a.conns * a.messages,
            "replies": report["replies"], "errors": report["errors"],
            "error_detail": report["error_detail"],
            "p50_ms": report["latency_ms"]["p50"], "p99_ms": report["latency_ms"]["p99"],
            "max_ms": report["latency_ms"]["max"], "msg_s": report["throughput_msg_s"],
            "load_seconds": report["seconds"],
            "mariadb_stop_at_s": round(stop_began - t0, 2),
            "mariadb_stop_took_s": round(stopped_at - stop_began, 2),
            "mariadb_down_s": round(restarted_at - stopped_at, 2),
            "replies_while_down": replies_at_restart - replies_at_stop,
            "load_outlasted_outage": load_end > restarted_at,
            "rows_expected": expected, "rows_found": found,
            "duplicates": bench.duplicates(),
            "backlog_rows_at_restart": backlog - 2 * replies_at_stop,
            # From MariaDB answering again to every row of the outage in place.
            "recovery_s": round(caught_up_at - restarted_at, 2),
            "rows_after_load_end_s": round(rows_at - load_end, 2),
        }
    finally:
        if server is not None:
            server.stop()
        if not db.running:
            db.start()
        bench.drop()
        db.destroy()


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every reply arrived and every row is there exactly once."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--messages", type=int, default=1500, help="per connection")
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--cut-after", type=float, default=3.0, help="seconds of load before the stop")
    p.add_argument("--outage", type=float, default=10.0, help="seconds MariaDB stays down")
    p.add_argument("--timeout", type=float, default=300.0, help="bound on the load, seconds")
    p.add_argument("--recovery-timeout", type=float, default=120.0)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    result = run(a)
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")
    ok = (result["errors"] == 0 and result["replies"] == result["messages"]
          and result["rows_found"] == result["rows_expected"] and result["duplicates"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
