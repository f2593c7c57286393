"""Benchmark driver: start a server, run load scenarios against it, report speed, CPU and memory."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import loadgen, targets  # noqa: E402
from benchmarks.rounds import run_rounds  # noqa: E402
from benchmarks.targets import Target, TargetError  # noqa: E402

# Sized so each scenario lasts about a second against bare on this machine (35k msg/s at
# 50c W=1): CPU time is sampled in 10 ms ticks.
DEFAULT_SCENARIOS = "1:1:5000,50:1:600,50:8:1000"


@dataclass(frozen=True)
class Scenario:
    """conns connections, each sending `messages` with `window` outstanding."""

    conns: int
    window: int
    messages: int

    @property
    def name(self) -> str:
        return f"{self.conns}c W={self.window}"

    @classmethod
    def parse_list(cls, spec: str) -> list["Scenario"]:
        """Parse `CONNS:WINDOW:MESSAGES_PER_CONN,...`."""
        out = []
        for part in spec.split(","):
            conns, window, messages = (int(x) for x in part.strip().split(":"))
            out.append(cls(conns, window, messages))
        return out


def run_scenario(
    target: Target, scenario: Scenario, base: loadgen.LoadConfig, form: str = "3.2"
) -> dict[str, Any]:
    """Run one scenario (in bridge lines of C{form}) against a started target; the loadgen report plus server costs."""
    assert target.pid is not None and target.port is not None
    pid = target.pid
    cpu: dict[str, float] = {}

    def on_start() -> None:
        cpu["start"] = targets.cpu_seconds(pid)
        cpu["main_start"] = targets.main_thread_cpu_seconds(pid)
        cpu["machine_start"], cpu["machine_total_start"] = targets.machine_cpu()

    def on_end() -> None:
        cpu["end"] = targets.cpu_seconds(pid)
        cpu["main_end"] = targets.main_thread_cpu_seconds(pid)
        cpu["machine_end"], cpu["machine_total_end"] = targets.machine_cpu()

    peak_was_reset = targets.reset_peak_rss(pid)
    rss_before = targets.status_bytes(pid, "VmRSS")
    cfg = loadgen.LoadConfig(
        host="127.0.0.1",
        port=target.port,
        conns=scenario.conns,
        messages=scenario.messages,
        window=scenario.window,
        secret=base.secret,
        salt=base.salt,
        bot=base.bot,
        timeout=base.timeout,
        per_source=base.per_source,
        commands=base.commands,
        on_start=on_start,
        on_end=on_end,
        form=form,
    )
    report = loadgen.run(cfg)
    report["scenario"] = scenario.name if form == "3.2" else f"{scenario.name} {form}"
    report["base_scenario"] = scenario.name
    report["target"] = target.name
    cpu_s = cpu.get("end", 0.0) - cpu.get("start", 0.0)
    report["server_cpu_s"] = round(cpu_s, 3)
    # Only the measured phase (all connections already handshaken) is charged.
    report["server_cpu_us_per_msg"] = round(cpu_s * 1e6 / report["replies"], 1) if report["replies"] else None
    # The reactor thread alone: what one core must carry (near 100 % busy, it is the
    # limit); the rest of the server's CPU is its threads (database writer, fsync).
    main_s = cpu.get("main_end", 0.0) - cpu.get("main_start", 0.0)
    report["server_main_cpu_us_per_msg"] = (
        round(main_s * 1e6 / report["replies"], 1) if report["replies"] else None)
    report["reactor_busy_pct"] = (
        round(100 * main_s / report["seconds"], 1) if report["seconds"] else None)
    # None when the phase was shorter than a clock tick (10 ms) on every core.
    total = cpu.get("machine_total_end", 0.0) - cpu.get("machine_total_start", 0.0)
    busy = cpu.get("machine_end", 0.0) - cpu.get("machine_start", 0.0)
    report["machine_busy_pct"] = round(100 * busy / total, 1) if total > 0 else None
    report["server_rss_before_bytes"] = rss_before
    report["server_rss_after_bytes"] = targets.status_bytes(pid, "VmRSS")
    report["server_peak_rss_bytes"] = targets.status_bytes(pid, "VmHWM")
    report["server_peak_rss_is_per_scenario"] = peak_was_reset
    report["server_peak_rss_mib"] = round(report["server_peak_rss_bytes"] / 2**20, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line; exit 0 if every scenario had 0 errors, 1 if any had errors, 2 on setup failure."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--target", choices=["bare", "kkobot", "external"], default="bare")
    p.add_argument(
        "--server-cmd",
        default=targets.DEFAULT_KKOBOT_CMD,
        help="kkobot command, a format string with {port} (also {python} {twistd} {repo} {workdir})",
    )
    p.add_argument("--server-cwd", default=None, help="kkobot's working dir (default: a fresh temp dir)")
    p.add_argument("--pid", type=int, help="external target: server pid to sample")
    p.add_argument("--port", type=int, help="external target: server port")
    p.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help="CONNS:WINDOW:MSGS_PER_CONN,...")
    p.add_argument("--forms", default="3.2",
                   help="bridge lines, comma-separated: 3.2 (3.2.0 JSON lines), 3.3 (3.3.3 header + "
                        "base64); with both, each scenario runs in each form in turn on one server")
    p.add_argument("--warmup", type=int, default=200, help="unreported messages first (1 conn, W=1)")
    p.add_argument("--secret", default=os.environ.get("KKOBOT_BENCH_SECRET", "bench-secret"))
    p.add_argument("--salt", default=os.environ.get("KKOBOT_BENCH_SALT", "bench-salt"))
    p.add_argument("--bot", default="bench")
    p.add_argument("--timeout", type=float, default=120.0, help="bound on each scenario, seconds")
    p.add_argument("--startup-timeout", type=float, default=30.0)
    p.add_argument("--per-source", type=int, default=40, help="conns per 127.0.0.x source (0: one source)")
    p.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr")
    p.add_argument("--mysql", action="store_true",
                   help="kkobot target: log to a scratch MariaDB database (config made with "
                        "kkobot.config) and check row counts before/after each scenario")
    p.add_argument("--mysql-host", default="127.0.0.1")
    p.add_argument("--mysql-port", type=int, default=3306)
    p.add_argument("--plugins", default=None,
                   help="kkobot target: the drop-in plugin folder (e.g. plugins/examples)")
    p.add_argument("--command", action="append", default=[],
                   help="send this command text instead of `# echo` (repeat: used in turn), "
                        "e.g. --command '# 출석' --command '# 출석순위'")
    p.add_argument("--with-bare", action="store_true",
                   help="run the same scenarios against bare_echo.py first; report kkobot/bare")
    p.add_argument("--auth", choices=["on", "off", "both"], default="on",
                   help="kkobot target: HMAC auth required, every message signed (on, the default), "
                        "off, or both (one server of each, in turn)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run bare (with --with-bare) and the kkobot server(s) in turn this many "
                        "times, a fresh server each time, and report the medians")
    p.add_argument("--no-auth", dest="auth", action="store_const", const="off",
                   help="the same as --auth off (the figure before auth was measured)")
    a = p.parse_args(argv)
    a.forms = [f.strip() for f in a.forms.split(",") if f.strip()]
    if not a.forms or any(f not in loadgen.FORMS for f in a.forms):
        p.error(f"--forms takes {' and '.join(loadgen.FORMS)}")
    if a.target == "bare" and a.forms != ["3.2"]:
        p.error("bare_echo.py speaks 3.2 lines only")
    if a.command and a.with_bare:
        p.error("--with-bare runs `# echo` only; compare --command runs with a plain kkobot run")
    if a.plugins:
        a.plugins = os.path.abspath(a.plugins)
    modes = {"on": [True], "off": [False], "both": [True, False]}[a.auth]
    if a.target != "kkobot":
        modes = [None]

    def runBare() -> list[dict[str, Any]] | None:
        return _run_target("bare", a, Scenario.parse_list(a.scenarios), None, ["3.2"], a.server_cmd)

    if a.rounds > 1:
        return run_rounds(a, modes, runBare, _runServer, _present)
    if a.with_bare and a.target != "bare":
        bare = runBare()
        if bare is None:
            return 2
    else:
        bare = None
    status, docs = 0, []
    for n, authOn in enumerate(modes):
        code, doc = _runOne(a, bare, authOn, showBare=n == 0)
        status = max(status, code)
        if doc is not None:
            docs.append(doc)
    if a.json and docs:
        # One server: its report as before; --auth both: {"runs": [auth on, auth off]}.
        print(json.dumps(docs[0] if len(docs) == 1 else {"runs": docs}, ensure_ascii=False, indent=2))
    return status


def _runOne(
    a: argparse.Namespace, bare: list[dict[str, Any]] | None, authOn: bool | None, showBare: bool
) -> tuple[int, dict[str, Any] | None]:
    """One server (kkobot with auth on or off; bare or external: None) through every scenario; exit status, JSON report."""
    ran = _runServer(a, authOn)
    if ran is None:
        return 2, None  # _run_target reported why (and printed its JSON)
    reports, authLabel, withDb = ran
    return _present(a, reports, bare, authLabel, withDb, showBare)


def _runServer(
    a: argparse.Namespace, authOn: bool | None
) -> tuple[list[dict[str, Any]], str, bool] | None:
    """Start one server, run every scenario, stop it: its reports, its auth label, whether rows were counted."""
    from benchmarks.mysqlbench import Auth, MysqlBench, SqliteBench

    db = setup = None
    serverCmd = a.server_cmd
    custom = a.server_cmd != targets.DEFAULT_KKOBOT_CMD
    creds = Auth(a.bot, a.secret, a.salt) if authOn else None
    if a.target == "kkobot" and a.mysql:
        db = setup = MysqlBench(a.mysql_host, a.mysql_port, auth=creds)
    elif a.target == "kkobot" and not custom:
        setup = SqliteBench(creds)
    if setup is not None:
        setup.create()
        serverCmd = setup.server_cmd()
        authLabel = "HMAC on, every message signed" if authOn else "off"
    elif a.target == "kkobot":
        authLabel = "as --server-cmd configures it"
    else:
        authLabel = "none checked" if a.target == "bare" else "as the server is configured"
    if a.plugins and a.target == "kkobot":
        serverCmd += f" --plugins {a.plugins}"
    try:
        reports = _run_target(a.target, a, Scenario.parse_list(a.scenarios), db, a.forms, serverCmd)
    finally:
        if setup is not None:
            setup.drop()
    if reports is None:
        return None
    for r in reports:
        r["auth"] = authLabel
    return reports, authLabel, db is not None


def _present(
    a: argparse.Namespace, reports: list[dict[str, Any]], bare: list[dict[str, Any]] | None,
    authLabel: str, withDb: bool, showBare: bool,
) -> tuple[int, dict[str, Any]]:
    """Compare with bare, print the tables and lines; exit status and JSON report."""
    scenarios = Scenario.parse_list(a.scenarios)
    # Each form's run is compared with bare's run of the same scenario (bare speaks 3.2).
    pairs = [(r, b) for r in reports for b in (bare or []) if b["base_scenario"] == r["base_scenario"]]
    if bare is not None:
        for r, b in pairs:
            r["bare_msg_s"] = b["throughput_msg_s"]
            r["ratio_vs_bare"] = round(r["throughput_msg_s"] / b["throughput_msg_s"], 2) if b["throughput_msg_s"] else None
            r["bare_server_cpu_us_per_msg"] = b["server_cpu_us_per_msg"]
            if r["server_cpu_us_per_msg"] and b["server_cpu_us_per_msg"]:
                r["cpu_ratio_vs_bare"] = round(r["server_cpu_us_per_msg"] / b["server_cpu_us_per_msg"], 2)
    table = loadgen.format_table(
        reports,
        [
            ("srv cpu us/msg", "server_cpu_us_per_msg"),
            ("reactor thread us/msg", "server_main_cpu_us_per_msg"),
            ("reactor busy %", "reactor_busy_pct"),
            ("srv peak RSS MiB", "server_peak_rss_mib"),
            ("loadgen cpu us/msg", "client_cpu_us_per_msg"),
        ]
        + [("machine busy %", "machine_busy_pct")]
        + ([("db cpu us/msg", "db_cpu_us_per_msg"), ("rows before", "rows_before"),
            ("rows after", "rows_after"), ("rows expected", "rows_expected")]
           if withDb else [])
        + ([("bare msg/s", "bare_msg_s"), ("kkobot/bare", "ratio_vs_bare"),
            ("bare srv cpu us/msg", "bare_server_cpu_us_per_msg"),
            ("srv cpu kkobot/bare", "cpu_ratio_vs_bare")] if bare else []),
    )
    out = sys.stderr if a.json else sys.stdout
    if bare is not None and showBare:
        print("bare (same run):", file=out)
        print(loadgen.format_table(bare, [("srv cpu us/msg", "server_cpu_us_per_msg"),
                                          ("loadgen cpu us/msg", "client_cpu_us_per_msg"),
                                          ("machine busy %", "machine_busy_pct")]), file=out)
    rounds = reports[0].get("rounds") if reports else None
    print(f"target: {a.target}{' + MariaDB' if withDb else ''}; auth: {authLabel}"
          + (f"; medians of {rounds} interleaved rounds" if rounds else ""), file=out)
    print(table, file=out)
    for r in reports:
        line = f"{r['scenario']} (auth {authLabel}): server CPU {r['server_cpu_us_per_msg']} us/msg"
        if r.get("ratio_vs_bare") is not None:
            line += (f"; kkobot/bare {r['ratio_vs_bare']} (msg/s), server CPU "
                     f"{r.get('cpu_ratio_vs_bare')}x bare's {r['bare_server_cpu_us_per_msg']} us/msg")
        print(line, file=out)
    if bare is not None:
        for r, b in pairs:
            line = cpu_budget(r, b)
            if line:
                print(line, file=out)
    for r in reports:
        if r["errors"]:
            print(f"{r['scenario']}: {r['error_detail']}", file=out)
            for s in r["error_samples"]:
                print("  " + s, file=out)
    rows_ok = all(r.get("rows_after") == r.get("rows_expected") for r in reports)
    complete = len(reports) == len(scenarios) * len(a.forms)
    ok = reports and rows_ok and all(r["errors"] == 0 for r in reports) and complete
    return (0 if ok else 1), {"target": a.target, "auth": authLabel, "scenarios": reports, "bare": bare}


def cpu_budget(report: dict[str, Any], bare: dict[str, Any]) -> str | None:
    """
    The machine's CPU per message in both runs, and the best kkobot/bare the cores
    allow: when the server, the load generator and the database share the cores,
    the database's own work for each message's rows is paid on top of whatever the
    bare run spends. None without the figures.
    """
    try:
        bareTotal = bare["server_cpu_us_per_msg"] + bare["client_cpu_us_per_msg"]
        db = report["db_cpu_us_per_msg"]
        total = report["server_cpu_us_per_msg"] + report["client_cpu_us_per_msg"] + db
    except (KeyError, TypeError):
        return None
    report["cpu_ceiling_vs_bare"] = round(bareTotal / (bareTotal + db), 2)
    return (
        f"{report['scenario']}: CPU per message: bare run {bareTotal:.0f} us "
        f"(server {bare['server_cpu_us_per_msg']:.0f} + loadgen {bare['client_cpu_us_per_msg']:.0f}); "
        f"kkobot run {total:.0f} us (server {report['server_cpu_us_per_msg']:.0f} + loadgen "
        f"{report['client_cpu_us_per_msg']:.0f} + MariaDB {db:.0f}). A server costing only "
        f"what bare costs would still pay MariaDB's share: kkobot/bare at most "
        f"{report['cpu_ceiling_vs_bare']:.2f} where the cores are the limit."
    )


def _run_target(
    kind: str, a: argparse.Namespace, scenarios: list[Scenario], db: Any, forms: list[str],
    serverCmd: str,
) -> list[dict[str, Any]] | None:
    """Start one target, run the warm-up and every scenario in every form, stop it; None if it cannot start."""

    loadgen.raise_nofile(max(s.conns for s in scenarios) + 256)
    base = loadgen.LoadConfig(
        secret=a.secret, salt=a.salt, bot=a.bot, timeout=a.timeout, per_source=a.per_source,
        commands=tuple(a.command),
    )
    reports: list[dict[str, Any]] = []
    try:
        target = targets.make_target(
            kind, server_cmd=serverCmd, server_cwd=a.server_cwd, pid=a.pid, port=a.port,
            startup_timeout=a.startup_timeout,
        )
        target.start()
    except TargetError as exc:
        print(f"target {kind} failed to start: {exc}", file=sys.stderr)
        if a.json:
            print(json.dumps({"target": kind, "error": str(exc), "scenarios": []}, indent=2))
        return None
    try:
        for form in forms if a.warmup > 0 else ():
            before = db.count() if db is not None else 0
            warm = run_scenario(target, Scenario(1, 1, a.warmup), base, form)
            if db is not None:
                _settle(db, before, 2 * warm["replies"])
            if warm["errors"]:
                print(f"warm-up had errors: {warm['error_detail']} {warm['error_samples']}",
                      file=sys.stderr)
        dbPid = targets.local_db_pid() if db is not None else None
        # Forms take turns within each scenario, so both see the machine in the same state.
        for sc, form in [(sc, form) for sc in scenarios for form in forms]:
            before = db.count() if db is not None else None
            dbCpu = targets.cpu_seconds(dbPid) if dbPid is not None else None
            report = run_scenario(target, sc, base, form)
            if db is not None:
                report.update(_settle(db, before, 2 * report["replies"]))
            if dbCpu is not None and report["replies"]:
                # Until the scenario's rows are in: MariaDB's work for them, whenever done.
                dbCpu = targets.cpu_seconds(dbPid) - dbCpu
                report["db_cpu_us_per_msg"] = round(dbCpu * 1e6 / report["replies"], 1)
            reports.append(report)
            alive = getattr(target, "proc", None)
            if alive is not None and alive.poll() is not None:
                print(f"server exited (status {alive.returncode}) during {sc.name}", file=sys.stderr)
                break
    finally:
        target.stop()
    if db is not None and reports:
        reports[-1]["duplicates_after_stop"] = db.duplicates()
    return reports


def _settle(db: Any, before: int, added: int, timeout: float = 30.0) -> dict[str, Any]:
    """Wait (bounded) until the server's batches reach MariaDB; rows before/after/expected."""
    import time

    expected = before + added
    deadline = time.monotonic() + timeout
    after = db.count()
    while after < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        after = db.count()
    return {"rows_before": before, "rows_after": after, "rows_expected": expected}


if __name__ == "__main__":
    sys.exit(main())
