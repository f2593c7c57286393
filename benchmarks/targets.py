"""Servers under test as small objects (start, pid, port, stop) plus /proc sampling of them."""

from __future__ import annotations

import ctypes
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BARE_ECHO = Path(__file__).resolve().parent / "bare_echo.py"
DEFAULT_KKOBOT_CMD = "{twistd} -n --pidfile= kkobot --port tcp:{port}:interface=127.0.0.1"
DEFAULT_NOFILE = 65536


class TargetError(RuntimeError):
    """The server under test could not be started (or died); the message says why."""


def server_python() -> str:
    """Prefer the project venv's interpreter: the server needs Twisted, the driver does not."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def twistd_path() -> str:
    venv = REPO / ".venv" / "bin" / "twistd"
    if venv.exists():
        return str(venv)
    return shutil.which("twistd") or str(Path(sys.executable).with_name("twistd"))


def free_port() -> int:
    """Ask the kernel for a free loopback port (a tiny race with other users is accepted)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_setup(nofile: int) -> None:
    # Runs in the child between fork and exec: idle-connection runs need thousands of fds,
    # and the server must die with the driver so no benchmark server outlives its run.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# ---- /proc sampling -------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User+system CPU time of the whole process (all threads), from /proc/<pid>/stat."""
    return _statCpu(Path(f"/proc/{pid}/stat"))


def main_thread_cpu_seconds(pid: int) -> float:
    """User+system CPU time of the process's main thread (the reactor's, in a Twisted server)."""
    return _statCpu(Path(f"/proc/{pid}/task/{pid}/stat"))


def _statCpu(path: Path) -> float:
    stat = path.read_text()
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user).
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def local_db_pid() -> int | None:
    """
    The pid of the MariaDB/MySQL server on this machine (its CPU is the database's share):
    the longest-running one, so a short-lived private server a test starts is not taken.
    """
    found: list[tuple[int, int]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            if comm not in ("mariadbd", "mysqld"):
                continue
            # Field 22 of stat (after the parenthesised name): start time in ticks.
            started = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[19])
        except (OSError, ValueError, IndexError):
            continue
        found.append((started, int(entry.name)))
    return min(found)[1] if found else None


def status_bytes(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM, ...) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, same user or root); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---- targets ---------------------------------------------------------------------------

class Target:
    """A server under test. Subclasses set `pid` and `port` in start()."""

    name = "target"

    def __init__(self) -> None:
        self.pid: int | None = None
        self.port: int | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        pass

    def describe(self) -> str:
        return f"{self.name} pid {self.pid} port {self.port}"

    def __enter__(self) -> "Target":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProcessTarget(Target):
    """A server subprocess on 127.0.0.1; ready when it prints `listening on N` or accepts."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        port: int | None = None,
        cwd: str | None = None,
        ready_line: bool = False,
        startup_timeout: float = 30.0,
        nofile: int = DEFAULT_NOFILE,
        log_dir: str | None = None,
        remove_log_dir: bool | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.argv = argv
        self.port = port
        self.cwd = cwd
        self.ready_line = ready_line
        self.startup_timeout = startup_timeout
        self.nofile = nofile
        self._own_log_dir = log_dir is None if remove_log_dir is None else remove_log_dir
        self.log_dir = log_dir or tempfile.mkdtemp(prefix=f"kkobot-bench-{name}-")
        self.log_path = os.path.join(self.log_dir, "server.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.failed = False

    def start(self) -> None:
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                # Only a ready-line server keeps a pipe (it prints one line); the rest log
                # to a file so a chatty server can never block on a full pipe.
                stdout=subprocess.PIPE if self.ready_line else log,
                stderr=log,
                preexec_fn=lambda: _child_setup(self.nofile),
            )
        except OSError as exc:
            self.failed = True
            raise TargetError(f"{self.name}: cannot run {self.argv[0]!r}: {exc}") from exc
        finally:
            log.close()
        self.pid = self.proc.pid
        try:
            if self.ready_line:
                self._wait_ready_line()
            else:
                self._wait_accepting()
        except TargetError:
            self.failed = True
            self.stop()
            raise

    def _wait_ready_line(self) -> None:
        import selectors

        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(self.startup_timeout):
                raise TargetError(f"{self.name}: no `listening on` line in {self.startup_timeout}s")
        line = self.proc.stdout.readline().decode("utf-8", "replace").strip()
        if not line.startswith("listening on "):
            raise TargetError(f"{self.name}: unexpected first line {line!r}\n{self.log_tail()}")
        self.port = int(line.rsplit(" ", 1)[1])

    def _wait_accepting(self) -> None:
        assert self.proc is not None and self.port is not None
        deadline = time.monotonic() + self.startup_timeout
        # twistd prints nothing we can rely on, so poll the port until it accepts.
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TargetError(
                    f"{self.name}: exited with status {self.proc.returncode} before listening"
                    f" (log kept in {self.log_path}):\n" + self.log_tail()
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise TargetError(f"{self.name}: not accepting on port {self.port} after "
                          f"{self.startup_timeout}s\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + t for t in text[-lines:])

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        # Keep the log of a failed run for the post-mortem; drop it otherwise.
        if self._own_log_dir and not self.failed and os.path.isdir(self.log_dir):
            shutil.rmtree(self.log_dir, ignore_errors=True)


class ExternalTarget(Target):
    """A server somebody else runs: we only sample it (pid) and connect to it (port)."""

    name = "external"

    def __init__(self, pid: int, port: int) -> None:
        super().__init__()
        self.pid = pid
        self.port = port

    def start(self) -> None:
        if not Path(f"/proc/{self.pid}").exists():
            raise TargetError(f"no process {self.pid}")


def bare_target(**kw: object) -> ProcessTarget:
    """bare_echo.py on a free port chosen by itself."""
    return ProcessTarget(
        "bare", [server_python(), str(BARE_ECHO), "--port", "0"], ready_line=True, **kw  # type: ignore[arg-type]
    )


def kkobot_target(server_cmd: str = DEFAULT_KKOBOT_CMD, cwd: str | None = None, **kw: object) -> ProcessTarget:
    """kkobot under twistd; `server_cmd` may use {port} {python} {twistd} {repo} {workdir}.

    Without `cwd` it runs in a fresh temporary directory, so its default ./var SQLite and
    ./logs start empty and nothing lands in the checkout.
    """
    port = free_port()
    workdir = cwd or tempfile.mkdtemp(prefix="kkobot-bench-kkobot-")
    argv = shlex.split(
        server_cmd.format(
            port=port, python=server_python(), twistd=twistd_path(), repo=str(REPO), workdir=workdir
        )
    )
    # A scratch workdir (and the log in it) is ours to delete after a clean run.
    return ProcessTarget(
        "kkobot", argv, port=port, cwd=workdir, log_dir=workdir if cwd is None else None,
        remove_log_dir=True, **kw  # type: ignore[arg-type]
    )


def make_target(
    kind: str,
    *,
    server_cmd: str | None = None,
    server_cwd: str | None = None,
    pid: int | None = None,
    port: int | None = None,
    startup_timeout: float = 30.0,
    nofile: int = DEFAULT_NOFILE,
) -> Target:
    """Build a target by name: bare, kkobot, or external (needs pid and port)."""
    if kind == "bare":
        return bare_target(startup_timeout=startup_timeout, nofile=nofile)
    if kind == "kkobot":
        return kkobot_target(server_cmd or DEFAULT_KKOBOT_CMD, server_cwd,
                             startup_timeout=startup_timeout, nofile=nofile)
    if kind == "external":
        if pid is None or port is None:
            raise TargetError("--target external needs --pid and --port")
        return ExternalTarget(pid, port)
    raise TargetError(f"unknown target {kind!r}")
