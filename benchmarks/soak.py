"""Soak: N bridges with pings and mixed traffic for a while; samples server RSS, fds and DB pool."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import loadgen, signing, targets  # noqa: E402

BOT = "bench"
SECRET = "soak-secret"
SALT = "soak-salt"


@dataclass
class Counters:
    """What the clients did and saw; `window_*` is reset at each sample."""

    analyze: int = 0
    echoes: int = 0
    chats: int = 0
    client_pings: int = 0
    bad_lines: int = 0
    replies: int = 0
    ping_answers: int = 0
    server_pings: int = 0
    errors_expected: int = 0
    errors_unexpected: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    acked: set[str] = field(default_factory=set)
    window_latencies: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)


def mysql(settings: dict[str, Any], database: str | None = None):
    import pymysql

    return pymysql.connect(
        host=settings["host"], port=settings["port"], user=settings["user"],
        password=settings["password"], database=database, autocommit=True, charset="utf8mb4",
    )


def makeConfig(directory: str, db: dict[str, Any], pingInterval: float) -> None:
    """A config like a deployment's: MariaDB, auth required, devices auto-approved."""
    cli = str(targets.REPO / ".venv" / "bin" / "kkobot-config")
    run = lambda *a: subprocess.run([cli, "--dir", directory, *a], check=True, capture_output=True)  # noqa: E731
    run("init")
    run("set", "SERVER.server_ip", "127.0.0.1")
    for key, value in [("HOST", db["host"]), ("PORT", str(db["port"])), ("USER", db["user"]),
                       ("PASSWORD", db["password"]), ("NAME", db["name"])]:
        run("set", f"DBs.kkobot_test.{key}", value)
    run("set", "auth.auto_approve", "true")
    run("set", "server.ping_interval", str(pingInterval))
    run("add-bot", BOT, "--secret", SECRET, "--salt", SALT)


class Bridge:
    """One soak connection: a mix of echoes, plain chat, client pings and the odd bad line."""

    def __init__(self, index: int, args: argparse.Namespace, counters: Counters, runId: str):
        self.index = index
        self.args = args
        self.c = counters
        self.runId = runId
        self.device = loadgen.device_id("50a0", index)
        self.room = f"soak-room-{index}"
        self.channel = str(8_000_000_000_000_000 + index)
        self.pending: dict[str, float] = {}
        self.seq = 0
        self.lastPingAnswer = 0.0

    async def run(self, until: float) -> None:
        rng = random.Random(self.index)
        while time.monotonic() < until:
            try:
                reader, writer = await loadgen.open_bridge(
                    self.args.host, self.args.port, BOT, self.device,
                    local_ip=loadgen.source_address(self.args.host, self.index, 40), timeout=30,
                )
            except (OSError, loadgen.HandshakeError, TimeoutError) as exc:
                self.c.connect_failures += 1
                self._sample(f"conn {self.index}: connect failed: {exc!r}")
                await asyncio.sleep(1 + rng.random())
                continue
            readTask = asyncio.create_task(self.read(reader, writer))
            try:
                await self.talk(writer, rng, until)
            finally:
                writer.close()
                readTask.cancel()
                await asyncio.gather(readTask, return_exceptions=True)
            if time.monotonic() < until:
                self.c.reconnects += 1

    async def talk(self, writer: asyncio.StreamWriter, rng: random.Random, until: float) -> None:
        """Send until the end, or until this connection decides to drop and reconnect."""
        while time.monotonic() < until:
            await asyncio.sleep(rng.expovariate(1 / self.args.interval))
            if writer.is_closing():
                return
            roll = rng.random()
            now = loadgen.now_ms()
            self.seq += 1
            if roll < self.args.churn:
                return  # a phone dropping off the network, coming back later
            if roll < 0.60:
                tag = f"{self.runId}:{self.index}:{self.seq}"
                self.pending["에코: " + tag] = time.perf_counter()
                line = self.analyze("# echo " + tag, now)
                self.c.echoes += 1
                self.c.analyze += 1
            elif roll < 0.85:
                line = self.analyze(f"soak chat {self.runId} {self.index} {self.seq} ㅋㅋ 안녕", now)
                self.c.chats += 1
                self.c.analyze += 1
            elif roll < 0.97:
                line = signing.ping(BOT, self.device, SECRET, SALT, None, now)
                self.c.client_pings += 1
            else:
                line = '{"event":"analyze","data":[]}\n'
                self.c.bad_lines += 1
            writer.write(line.encode("utf-8"))
            await writer.drain()

    def analyze(self, text: str, now: int) -> str:
        return signing.analyze(
            BOT, self.device, SECRET, SALT, self.room, text, now,
            channel_id=self.channel, log_id=str(now * 1000 + self.index % 1000),
            user_hash=f"soak{self.index}",
        )

    async def read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                return
            msg = json.loads(raw)
            event, data = msg.get("event"), msg.get("data") or {}
            if event == "messageResponse":
                sent = self.pending.pop(data.get("text"), None)
                if sent is not None:
                    self.c.replies += 1
                    self.c.acked.add(data["text"][len("에코: "):])
                    self.c.window_latencies.append(time.perf_counter() - sent)
            elif event == "ping":
                stamp = data.get("server_timestamp")
                # Our own unprompted pings come back with a stamp we did not get before.
                self.c.server_pings += 1
                now = time.monotonic()
                if now - self.lastPingAnswer > 1:
                    self.lastPingAnswer = now
                    writer.write(signing.ping(BOT, self.device, SECRET, SALT, stamp,
                                              loadgen.now_ms()).encode("utf-8"))
            elif event == "error":
                if data.get("code") == "BAD_EVENT":
                    self.c.errors_expected += 1
                else:
                    self.c.errors_unexpected += 1
                    self._sample(f"conn {self.index}: {data}")

    def _sample(self, text: str) -> None:
        if len(self.c.samples) < 10:
            self.c.samples.append(text[:300])


def poolSize(db: dict[str, Any] | None) -> int | None:
    """Connections the server holds to its database, as MariaDB sees them."""
    if db is None:
        return None
    conn = mysql(db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s",
                        (db["name"],))
            return int(cur.fetchone()[0])
    finally:
        conn.close()


async def sampler(pid: int, db: dict[str, Any] | None, counters: Counters, args: argparse.Namespace,
                  rows: list[dict[str, Any]], until: float, started: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        lat = sorted(counters.window_latencies)
        counters.window_latencies = []
        row = {
            "t_s": round(time.monotonic() - started, 1),
            "rss_mib": round(targets.status_bytes(pid, "VmRSS") / 2**20, 2),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": targets.status_bytes(pid, "Threads") // 1024,
            "db_pool": await loop.run_in_executor(None, poolSize, db),
            "messages": counters.analyze,
            "replies": counters.replies,
            "server_pings": counters.server_pings,
            "reconnects": counters.reconnects,
            "errors_unexpected": counters.errors_unexpected,
            "p50_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2) if lat else None,
        }
        rows.append(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr, flush=True)
        if time.monotonic() >= until:
            return
        await asyncio.sleep(min(args.sample, max(0.0, until - time.monotonic())))


def slopePerHour(rows: list[dict[str, Any]], key: str) -> float:
    xs = [r["t_s"] for r in rows]
    ys = [r[key] for r in rows]
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 3600


def summary(rows: list[dict[str, Any]], counters: Counters, dbCheck: dict[str, Any]) -> dict[str, Any]:
    # The first tenth is warm-up (pools, caches, connections being opened).
    steady = rows[max(1, len(rows) // 10):] or rows
    out: dict[str, Any] = {"samples": len(rows)}
    for key in ("rss_mib", "fds", "threads", "db_pool"):
        values = [r[key] for r in steady if r[key] is not None]
        if values:
            out[key] = {"first": values[0], "last": values[-1], "min": min(values),
                        "max": max(values)}
            if key == "rss_mib":
                out[key]["slope_mib_per_hour"] = round(slopePerHour(steady, key), 2)
                # Caches bounded by time (the replay guard keeps signatures for its
                # window) fill during the first minutes; the second half shows a leak.
                out[key]["slope_last_half_mib_per_hour"] = round(
                    slopePerHour(rows[len(rows) // 2:], key), 2)
    out["traffic"] = {k: getattr(counters, k) for k in (
        "analyze", "echoes", "chats", "client_pings", "bad_lines", "replies", "server_pings",
        "errors_expected", "errors_unexpected", "reconnects", "connect_failures")}
    out["db"] = dbCheck
    out["error_samples"] = counters.samples
    return out


def checkRows(db: dict[str, Any] | None, runId: str, counters: Counters) -> dict[str, Any]:
    """Every acknowledged echo is in kb_chat_logs exactly once."""
    if db is None:
        return {}
    conn = mysql(db, db["name"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT message, COUNT(*) FROM kb_chat_logs WHERE message LIKE %s "
                        "GROUP BY message", (f"# echo {runId}:%",))
            found = {m[len("# echo "):]: n for m, n in cur.fetchall()}
            cur.execute("SELECT COUNT(*) FROM kb_chat_logs WHERE message LIKE %s",
                        (f"soak chat {runId} %",))
            chats = cur.fetchone()[0]
    finally:
        conn.close()
    return {
        "acked_echoes": len(counters.acked),
        "acked_found_once": sum(1 for t in counters.acked if found.get(t) == 1),
        "acked_missing": sum(1 for t in counters.acked if t not in found),
        "duplicated": sum(1 for n in found.values() if n > 1),
        "echo_rows": sum(found.values()),
        "chats_sent": counters.chats,
        "chat_rows": chats,
    }


async def soak(args: argparse.Namespace, pid: int, db: dict[str, Any] | None) -> dict[str, Any]:
    counters = Counters()
    runId = loadgen.new_run_id().replace("bench", "soak")
    started = time.monotonic()
    until = started + args.duration
    rows: list[dict[str, Any]] = []
    bridges = [Bridge(i, args, counters, runId) for i in range(args.conns)]
    tasks = [asyncio.create_task(b.run(until)) for b in bridges]
    sampleTask = asyncio.create_task(sampler(pid, db, counters, args, rows, until, started))
    try:
        async with asyncio.timeout(args.duration + 120):
            await asyncio.gather(*tasks)
            await sampleTask
    except TimeoutError:
        counters.samples.append("overall timeout")
    for t in tasks + [sampleTask]:
        t.cancel()
    # Give the chat log a moment to write the last batch before counting rows.
    await asyncio.sleep(2)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return summary(rows, counters, checkRows(db, runId, counters))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--conns", type=int, default=200)
    p.add_argument("--duration", type=float, default=600, help="seconds (bounded by +120 s)")
    p.add_argument("--interval", type=float, default=2.0, help="mean seconds between a conn's events")
    p.add_argument("--churn", type=float, default=0.005, help="chance per event to reconnect")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--ping-interval", type=float, default=5.0, help="server ping interval")
    p.add_argument("--csv", default="soak.csv")
    p.add_argument("--json", default=None, help="also write the summary here")
    p.add_argument("--db", choices=["mysql", "sqlite"], default="mysql")
    p.add_argument("--mysql-host", default="127.0.0.1")
    p.add_argument("--mysql-port", type=int, default=3306)
    p.add_argument("--mysql-user", default="root")
    p.add_argument("--mysql-password", default="")
    p.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    loadgen.check_loopback(args.host)
    loadgen.raise_nofile(args.conns * 2 + 256)
    workdir = tempfile.mkdtemp(prefix="kkobot-soak-")
    db = None
    cmd = "{twistd} -n --pidfile= kkobot --port tcp:{port}:interface=127.0.0.1"
    if args.db == "mysql":
        db = dict(host=args.mysql_host, port=args.mysql_port, user=args.mysql_user,
                  password=args.mysql_password, name=f"kkobot_soak_{int(time.time())}")
        makeConfig(os.path.join(workdir, "cfg"), db, args.ping_interval)
        cmd += " --config " + os.path.join(workdir, "cfg")
    target = targets.kkobot_target(cmd, cwd=workdir)
    try:
        target.start()
        args.port = target.port
        print(f"soak: {args.conns} conns for {args.duration:.0f}s against pid {target.pid} "
              f"port {target.port} ({args.db})", file=sys.stderr)
        report = asyncio.run(soak(args, target.pid, db))
    finally:
        target.stop()
        if db is not None:
            conn = mysql(db)
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{db['name']}`")
            conn.close()
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(report, indent=1, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    db_ok = not report["db"] or (report["db"]["acked_missing"] == 0
                                 and report["db"]["duplicated"] == 0)
    return 0 if db_ok and report["traffic"]["errors_unexpected"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
