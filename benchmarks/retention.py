"""Retention on a million-row kb_chat_logs: the delete rate, and a 50-bot load's p99 before and during it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import loadgen, targets  # noqa: E402
from benchmarks.mysqlbench import MysqlBench  # noqa: E402
from benchmarks.run import Scenario, run_scenario  # noqa: E402

SEED_ROWS = 1000
COLUMNS = ("channel_id, user_hash, room_name, sender, message, message_type, bot_name, "
           "is_group_chat, log_id, client_timestamp, server_timestamp")


def fill(bench: MysqlBench, rows: int, daysOld: int) -> dict[str, Any]:
    """kb_chat_logs (kkobot's DDL) with at least C{rows} rows C{daysOld} days old: one multi-row
    INSERT, then INSERT ... SELECT doubling."""
    from kkobot.db.pool import MYSQL_CHAT_LOGS

    started = time.monotonic()
    conn = bench._connect(bench.name)
    try:
        cur = conn.cursor()
        cur.execute(MYSQL_CHAT_LOGS)
        values = []
        for i in range(SEED_ROWS):
            values.append(
                f"('{1000 + i % 50}', 'u{i % 300}', '방 {i % 50}', '보낸이 {i % 300}', "
                f"'오래된 메시지 {i} 가나다라마바사 아자차카타파하', 'normal', 'bench', 1, "
                f"'{i}', NOW() - INTERVAL {daysOld} DAY, NOW() - INTERVAL {daysOld} DAY)")
        cur.execute(f"INSERT INTO kb_chat_logs ({COLUMNS}) VALUES " + ", ".join(values))
        total = SEED_ROWS
        while total < rows:
            cur.execute(f"INSERT INTO kb_chat_logs ({COLUMNS}) SELECT {COLUMNS} FROM kb_chat_logs "
                        f"LIMIT {min(total, rows - total)}")
            total += cur.rowcount
    finally:
        conn.close()
    return {"rows": total, "fill_seconds": round(time.monotonic() - started, 1)}


def deleter(bench: MysqlBench, days: int, batch: int, pause: float) -> subprocess.Popen[bytes]:
    """The server's retention code (RetentionService.trim) in a process of its own."""
    script = (
        "import json, sys, time\n"
        "from twisted.internet import defer, task\n"
        "from kkobot.config import DBSettings\n"
        "from kkobot.db.pool import Database\n"
        "from kkobot.retention import RetentionService, Target\n"
        "def main(reactor):\n"
        f"    db = Database(DBSettings(engine='mysql', host={bench.host!r}, port={bench.port}, "
        f"user={bench.user!r}, password={bench.password!r}, name={bench.name!r}), reactor=reactor)\n"
        f"    r = RetentionService(db, reactor, lambda k, d: d, batchSize={batch}, pause={pause})\n"
        "    started = time.monotonic()\n"
        f"    d = defer.ensureDeferred(r.trim(Target('chat_logs_days', 'kb_chat_logs', "
        f"'server_timestamp', {days})))\n"
        "    def done(n):\n"
        "        s = time.monotonic() - started\n"
        "        print(json.dumps({'deleted': n, 'seconds': round(s, 2), 'rows_per_s': round(n / s)}))\n"
        "        db.close()\n"
        "    return d.addCallback(done)\n"
        "task.react(main)\n"
    )
    return subprocess.Popen([targets.server_python(), "-c", script], stdout=subprocess.PIPE)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--scenario", default="50:1:200", help="CONNS:WINDOW:MSGS_PER_CONN of each load run")
    p.add_argument("--batch", type=int, default=1000, help="retention.batch_size")
    p.add_argument("--pause", type=float, default=0.2, help="retention.batch_pause")
    p.add_argument("--mysql-host", default="127.0.0.1")
    p.add_argument("--mysql-port", type=int, default=3306)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    scenario = Scenario.parse_list(a.scenario)[0]
    bench = MysqlBench(a.mysql_host, a.mysql_port)
    bench.create()
    result: dict[str, Any] = {"batch": a.batch, "pause": a.pause}
    try:
        result.update(fill(bench, a.rows, daysOld=60))
        print(f"filled kb_chat_logs: {result['rows']} rows in {result['fill_seconds']} s",
              file=sys.stderr)
        loadgen.raise_nofile(scenario.conns + 256)
        base = loadgen.LoadConfig(per_source=40)
        target = targets.make_target("kkobot", server_cmd=bench.server_cmd())
        target.start()
        try:
            run_scenario(target, Scenario(1, 1, 200), base)  # warm-up
            before = [run_scenario(target, scenario, base) for _ in range(3)]
            proc = deleter(bench, days=30, batch=a.batch, pause=a.pause)
            during = []
            while proc.poll() is None:
                during.append(run_scenario(target, scenario, base))
            out, _ = proc.communicate()
            result["delete"] = json.loads(out.decode().strip().splitlines()[-1])
            after = [run_scenario(target, scenario, base)]
        finally:
            target.stop()
        result["left_rows"] = bench.count() - 2 * sum(r["replies"] for r in before + during + after) - 400
    finally:
        bench.drop()
    for name, runs in (("before", before), ("during", during), ("after", after)):
        for r in runs:
            r["scenario"] = f"{name} {scenario.name}"
    result["before"], result["during"], result["after"] = before, during, after
    print(loadgen.format_table(before + during + after), file=sys.stderr if a.json else sys.stdout)
    d = result["delete"]
    print(f"deleted {d['deleted']} rows in {d['seconds']} s ({d['rows_per_s']} rows/s), "
          f"batch {a.batch}, pause {a.pause} s", file=sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if all(r["errors"] == 0 for r in before + during + after) else 1


if __name__ == "__main__":
    sys.exit(main())
