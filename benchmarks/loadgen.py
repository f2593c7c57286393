"""Bounded asyncio load generator: N bridge connections (3.2.0 or 3.3.3 lines) sending `# echo` with a window of W."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import secrets as _secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import signing  # noqa: E402

READ_LIMIT = 1 << 20
# The bridge generations the generator can speak: 3.2.0 JSON lines, 3.3.3 header + raw.
FORMS = ("3.2", "3.3")
# A bridge answers every server ping; rate-limiting our answers keeps a server that
# also answers client pings from turning the pair into an endless ping-pong.
PING_ANSWER_INTERVAL_S = 5.0


class LoopbackOnly(ValueError):
    """Raised for any target that is not a loopback address."""


def check_loopback(host: str) -> None:
    """Refuse anything but 127.0.0.0/8, ::1 and localhost: this tool never leaves the machine."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise LoopbackOnly(f"refusing non-loopback host {host!r}")


def source_address(host: str, index: int, per_source: int) -> str | None:
    """Spread connections over 127.0.x.y sources so per-address limits see a few phones each."""
    try:
        ipv4_loopback = ipaddress.ip_address(host).version == 4
    except ValueError:
        ipv4_loopback = False  # "localhost" may resolve to ::1, where 127.x cannot be the source
    if per_source <= 0 or not ipv4_loopback:
        return None
    block = index // per_source
    # All of 127.0.0.0/8 routes to lo; y in 1..254 avoids .0/.255, which look like broadcast.
    return f"127.0.{(block // 254) % 256}.{block % 254 + 1}"


def new_run_id() -> str:
    """Return a run id that appears in every message text, so DB rows of one run are countable."""
    return time.strftime("bench%Y%m%d%H%M%S") + _secrets.token_hex(3)


def device_id(prefix: str, index: int) -> str:
    """Return a stable 16-hex-char deviceID, like a phone's; stable so it can be approved once."""
    return f"{prefix}{index:0{16 - len(prefix)}x}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class LoadConfig:
    """Everything one load run needs; the defaults match a local, auth-less kkobot."""

    host: str = "127.0.0.1"
    port: int = 1490
    conns: int = 1
    messages: int = 100  # per connection
    window: int = 1
    secret: str = "bench-secret"
    salt: str = "bench-salt"
    bot: str = "bench"
    timeout: float = 120.0
    device_prefix: str = "bec0"
    per_source: int = 40
    connect_concurrency: int = 32
    run_id: str = field(default_factory=new_run_id)
    form: str = "3.2"  # "3.3": every line as a 3.3.3 bridge writes it
    # Called right when the measured phase starts / ends (e.g. to sample server CPU).
    on_start: Callable[[], None] | None = None
    on_end: Callable[[], None] | None = None
    # Called with the connections before they connect, to watch their `answered`
    # sets while the run goes on (fault tests count acknowledged messages).
    on_connections: Callable[[list[Any]], None] | None = None
    # Instead of `# echo <tag>`: these command texts in turn (e.g. "# 출석"), each
    # expecting exactly one reply; replies are matched to messages in order per
    # connection (kkobot answers a room in message order), and an error reply counts.
    commands: tuple[str, ...] = ()


class HandshakeError(RuntimeError):
    """The server did not answer the handshake with a successful handshakeComplete."""


async def open_bridge(
    host: str,
    port: int,
    bot: str,
    device: str,
    *,
    local_ip: str | None = None,
    timeout: float = 30.0,
    form: str = "3.2",
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, send the handshake of a 3.2.0 (or 3.3.3) bridge and wait for a successful `handshakeComplete`."""
    check_loopback(host)
    local_addr = (local_ip, 0) if local_ip else None
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            host, port, limit=READ_LIMIT, local_addr=local_addr
        )
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            hello = signing.hello33(bot, device, now_ms()) if form == "3.3" else signing.hello(bot, device)
            writer.write(hello.encode("utf-8"))
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line:
                    raise HandshakeError("connection closed before handshakeComplete")
                try:
                    event, data = read_line(line, form)
                except ValueError as exc:
                    raise HandshakeError(f"bad JSON before handshakeComplete: {line[:200]!r}") from exc
                if event == "handshakeComplete":
                    if data.get("success") is False:
                        raise HandshakeError(f"handshake refused: {data}")
                    return reader, writer
                if event == "error":
                    raise HandshakeError(f"server error during handshake: {data}")
                # Anything else (a ping, a notice) may legitimately precede it.
        except BaseException:
            writer.close()
            raise


def read_line(line: bytes, form: str) -> tuple[Any, dict[str, Any]]:
    """(event, data) of one server line as a bridge of C{form} reads it; ValueError if it cannot."""
    if form == "3.3":
        return signing.read33(line)
    msg = json.loads(line)
    if not isinstance(msg, dict):
        raise ValueError("not an object")
    data = msg.get("data")
    return msg.get("event"), data if isinstance(data, dict) else {}


# kkobot's replies for a command that failed or timed out (kkobot.commands.reply).
COMMAND_FAILURES = ("명령을 처리하는 중 오류가 발생했습니다", "명령 처리 시간이 초과되었습니다")


def percentile(sorted_values: list[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


class _Totals:
    def __init__(self) -> None:
        self.ok = 0
        self.wrong = 0
        self.duplicate = 0
        self.unexpected = 0
        self.server_errors = 0
        self.server_pings = 0
        self.disconnects = 0
        self.latencies_ns: list[int] = []
        self.last_reply_ns = 0
        self.error_samples: list[str] = []

    def sample(self, text: str) -> None:
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:300])


class _Conn:
    """One benchmark connection: a sender honouring the window and a reply-matching reader."""

    def __init__(self, cfg: LoadConfig, index: int, totals: _Totals, owners: dict[str, int]):
        self.cfg = cfg
        self.index = index
        self.totals = totals
        self.owners = owners  # expected reply text -> connection index, for cross-talk checks
        self.device = device_id(cfg.device_prefix, index)
        self.room = f"bench-room-{index}"
        self.channel_id = str(9_000_000_000_000_000 + index)
        self.pending: dict[str, int] = {}
        self.answered: set[str] = set()
        self.window = asyncio.Semaphore(cfg.window)
        self.all_sent = False
        self.done = asyncio.Event()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_ping_answer = 0.0
        self.sender_task: asyncio.Task[None] | None = None

    def _check_done(self) -> None:
        if self.all_sent and not self.pending:
            self.done.set()

    async def send_all(self, go: asyncio.Event) -> None:
        cfg = self.cfg
        assert self.writer is not None
        await go.wait()
        # Numeric, unique per run and below 2**63, like KakaoTalk's own logIds.
        log_base = (int(cfg.run_id[-6:], 16) % 900_000 + 100_000) * 10**12 + self.index * 10**7
        for seq in range(cfg.messages):
            await self.window.acquire()
            tag = f"{cfg.run_id}:{self.index}:{seq}"
            text = cfg.commands[seq % len(cfg.commands)] if cfg.commands else "# echo " + tag
            build = signing.message33 if cfg.form == "3.3" else signing.analyze
            line = build(
                cfg.bot,
                self.device,
                cfg.secret,
                cfg.salt,
                self.room,
                text,
                now_ms(),
                channel_id=self.channel_id,
                log_id=str(log_base + seq),
                user_hash=f"bench{self.index}",
            ).encode("utf-8")
            key = ("cmd:" if cfg.commands else "에코: ") + tag
            self.owners[key] = self.index
            self.pending[key] = time.perf_counter_ns()
            self.writer.write(line)
            await self.writer.drain()
        self.all_sent = True
        self._check_done()

    async def read_all(self) -> None:
        assert self.reader is not None
        t = self.totals
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    break
                received = time.perf_counter_ns()
                try:
                    event, data = read_line(line, self.cfg.form)
                except (ValueError, AttributeError, IndexError, TypeError):
                    t.unexpected += 1
                    t.sample(f"conn {self.index}: unparsable {line[:200]!r}")
                    continue
                if event == "messageResponse":
                    self._on_reply(data, received)
                elif event == "ping":
                    t.server_pings += 1
                    self._answer_ping(data)
                elif event == "error":
                    t.server_errors += 1
                    t.sample(f"conn {self.index}: error event {data}")
                # Other events are ignored, as the bridge does.
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            t.sample(f"conn {self.index}: read failed: {exc!r}")
        if not self.done.is_set():
            t.disconnects += 1
            t.sample(f"conn {self.index}: closed by server with {len(self.pending)} pending")
            if self.sender_task is not None:
                self.sender_task.cancel()
            self.done.set()

    def _on_reply(self, data: dict[str, Any], received: int) -> None:
        t = self.totals
        text = data.get("text")
        if self.cfg.commands and self.pending:
            # In order: the oldest message still waiting is the one answered.
            failed = isinstance(text, str) and text.startswith(COMMAND_FAILURES)
            if failed:
                t.wrong += 1
                t.sample(f"conn {self.index}: error reply {text!r}")
            text = next(iter(self.pending))
            if failed:
                self.pending.pop(text)
                self.answered.add(text)
                self.window.release()
                self._check_done()
                return
        sent = self.pending.pop(text, None) if isinstance(text, str) else None
        if sent is None:
            if text in self.answered:
                t.duplicate += 1
            elif isinstance(text, str) and self.owners.get(text, self.index) != self.index:
                t.wrong += 1
                t.sample(f"conn {self.index}: reply for conn {self.owners[text]}: {text}")
            else:
                t.unexpected += 1
                t.sample(f"conn {self.index}: unexpected reply {data}")
            return
        self.answered.add(text)
        if data.get("room") != self.room or data.get("channel_id") != self.channel_id:
            t.wrong += 1
            t.sample(f"conn {self.index}: wrong room/channel in {data}")
        else:
            t.ok += 1
            t.latencies_ns.append(received - sent)
        t.last_reply_ns = received
        self.window.release()
        self._check_done()

    def _answer_ping(self, data: dict[str, Any]) -> None:
        now = time.monotonic()
        if self.writer is None or now - self.last_ping_answer < PING_ANSWER_INTERVAL_S:
            return
        self.last_ping_answer = now
        cfg = self.cfg
        answer = signing.pong33 if cfg.form == "3.3" else signing.ping
        self.writer.write(
            answer(
                cfg.bot, self.device, cfg.secret, cfg.salt, data.get("server_timestamp"), now_ms()
            ).encode("utf-8")
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_load(cfg: LoadConfig) -> dict[str, Any]:
    """Run one bounded load and return the report dict (see README for each field)."""
    check_loopback(cfg.host)
    if cfg.conns < 1 or cfg.messages < 0 or cfg.window < 1:
        raise ValueError("need conns >= 1, messages >= 0, window >= 1")
    if cfg.form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}")
    totals = _Totals()
    owners: dict[str, int] = {}
    conns = [_Conn(cfg, i, totals, owners) for i in range(cfg.conns)]
    if cfg.on_connections is not None:
        cfg.on_connections(conns)
    tasks: list[asyncio.Task[Any]] = []
    failed_connections = 0
    timed_out = False
    started_ns = ended_ns = 0
    client_cpu_start = 0.0
    go = asyncio.Event()
    gate = asyncio.Semaphore(cfg.connect_concurrency)
    deadline = asyncio.get_running_loop().time() + cfg.timeout

    async def connect(c: _Conn) -> bool:
        async with gate:
            try:
                c.reader, c.writer = await open_bridge(
                    cfg.host,
                    cfg.port,
                    cfg.bot,
                    c.device,
                    local_ip=source_address(cfg.host, c.index, cfg.per_source),
                    timeout=max(0.1, deadline - asyncio.get_running_loop().time()),
                    form=cfg.form,
                )
                return True
            except (OSError, HandshakeError, TimeoutError) as exc:
                totals.sample(f"conn {c.index}: connect/handshake failed: {exc!r}")
                return False

    try:
        async with asyncio.timeout_at(deadline):
            ok = await asyncio.gather(*(connect(c) for c in conns))
            live = [c for c, good in zip(conns, ok) if good]
            failed_connections = len(conns) - len(live)
            for c in live:
                c.sender_task = asyncio.create_task(c.send_all(go))
                tasks += [c.sender_task, asyncio.create_task(c.read_all())]
            # Every connection is ready before the clock starts: setup is not throughput.
            if cfg.on_start is not None:
                cfg.on_start()
            started_ns = time.perf_counter_ns()
            client_cpu_start = time.process_time()
            go.set()
            await asyncio.gather(*(c.done.wait() for c in live))
    except TimeoutError:
        timed_out = True
    ended_ns = time.perf_counter_ns()
    client_cpu = time.process_time() - client_cpu_start if started_ns else 0.0
    if cfg.on_end is not None:
        cfg.on_end()
    for c in conns:
        c.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    expected = cfg.conns * cfg.messages
    last = totals.last_reply_ns if totals.last_reply_ns and not timed_out else ended_ns
    seconds = max(0, (last - started_ns)) / 1e9 if started_ns else 0.0
    lat = sorted(totals.latencies_ns)
    missing = expected - totals.ok - totals.wrong
    errors = missing + totals.wrong + totals.duplicate + totals.unexpected + totals.server_errors
    ms = 1e6
    return {
        "run_id": cfg.run_id,
        "form": cfg.form,
        "db_text_like": f"# echo {cfg.run_id}:%",
        "host": cfg.host,
        "port": cfg.port,
        "conns": cfg.conns,
        "window": cfg.window,
        "messages": expected,
        "replies": totals.ok,
        "seconds": round(seconds, 4),
        "throughput_msg_s": round(totals.ok / seconds, 1) if seconds > 0 else 0.0,
        "latency_ms": {
            "p50": round(percentile(lat, 50) / ms, 3),
            "p90": round(percentile(lat, 90) / ms, 3),
            "p99": round(percentile(lat, 99) / ms, 3),
            "max": round((lat[-1] if lat else 0) / ms, 3),
        },
        "errors": errors,
        "error_detail": {
            "missing": missing,
            "wrong": totals.wrong,
            "duplicate": totals.duplicate,
            "unexpected": totals.unexpected,
            "server_error_events": totals.server_errors,
            "failed_connections": failed_connections,
            "disconnects": totals.disconnects,
            "timed_out": timed_out,
        },
        "error_samples": totals.error_samples,
        "server_pings": totals.server_pings,
        # The generator shares the machine's cores with the server: when this nears
        # 1e6/throughput, the client, not the server, is the bottleneck.
        "client_cpu_us_per_msg": round(client_cpu * 1e6 / totals.ok, 1) if totals.ok else None,
    }


def run(cfg: LoadConfig) -> dict[str, Any]:
    """Synchronous wrapper around run_load for callers without an event loop."""
    return asyncio.run(run_load(cfg))


def format_table(reports: list[dict[str, Any]], extra: list[tuple[str, str]] | None = None) -> str:
    """Render reports as a fixed-width table; `extra` adds (header, report key) columns."""
    cols = [
        ("scenario", "scenario"),
        ("msgs", "messages"),
        ("secs", "seconds"),
        ("msg/s", "throughput_msg_s"),
        ("p50 ms", "p50"),
        ("p90 ms", "p90"),
        ("p99 ms", "p99"),
        ("max ms", "max"),
        ("errors", "errors"),
    ] + (extra or [])
    rows = []
    for r in reports:
        flat = dict(r, **r.get("latency_ms", {}))
        flat.setdefault("scenario", f"{r.get('conns')}x W={r.get('window')}")
        rows.append(["" if flat.get(k) is None else str(flat.get(k)) for _, k in cols])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, (h, _) in enumerate(cols)]
    lines = ["  ".join(h.rjust(w) for (h, _), w in zip(cols, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file soft limit towards `wanted` (capped at the hard limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def main(argv: list[str] | None = None) -> int:
    """Command line: run one load, print a table (and JSON with --json); exit 1 on any error."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="loopback only")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--messages", type=int, default=100, help="per connection")
    p.add_argument("--window", type=int, default=1, help="outstanding requests per connection")
    p.add_argument("--secret", default=os.environ.get("KKOBOT_BENCH_SECRET", "bench-secret"))
    p.add_argument("--salt", default=os.environ.get("KKOBOT_BENCH_SALT", "bench-salt"))
    p.add_argument("--bot", default="bench")
    p.add_argument("--timeout", type=float, default=120.0, help="overall bound, seconds")
    p.add_argument("--per-source", type=int, default=40, help="conns per 127.0.0.x source (0: all from one)")
    p.add_argument("--form", choices=FORMS, default="3.2", help="bridge lines: 3.2.0 or 3.3.3")
    p.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr")
    p.add_argument("--command", action="append", default=[],
                   help="send this command text instead of `# echo` (repeat: used in turn)")
    a = p.parse_args(argv)
    raise_nofile(a.conns + 256)
    cfg = LoadConfig(
        host=a.host, port=a.port, conns=a.conns, messages=a.messages, window=a.window,
        secret=a.secret, salt=a.salt, bot=a.bot, timeout=a.timeout, per_source=a.per_source,
        form=a.form,
        commands=tuple(a.command),
    )
    try:
        report = run(cfg)
    except LoopbackOnly as exc:
        print(exc, file=sys.stderr)
        return 2
    table = format_table([report])
    if a.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        print(table, file=sys.stderr)
    else:
        print(table)
        print(f"run id {report['run_id']}  errors {report['error_detail']}")
        for s in report["error_samples"]:
            print("  " + s)
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
