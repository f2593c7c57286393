"""A private mariadbd for fault tests: own data dir and port, stopped and killed at will."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time

from twisted.trial.unittest import SkipTest

INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
MARIADBD = "/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd") else shutil.which("mariadbd")


def _freePort() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateMariaDB:
    """
    One mariadbd on 127.0.0.1:<free port> with a data dir of its own (never the
    machine's shared server). Grant tables are skipped: it is loopback-only and
    throw-away, and root with no password is what the tests log in as.
    """

    def __init__(self) -> None:
        if not (MARIADBD and os.path.exists(INSTALL_DB)):
            raise SkipTest("mariadbd / mariadb-install-db are not installed")
        self.base = tempfile.mkdtemp(prefix="kkobot-mariadb-")
        self.datadir = os.path.join(self.base, "data")
        self.port = _freePort()
        self.proc: subprocess.Popen[bytes] | None = None
        subprocess.run(
            [INSTALL_DB, "--no-defaults", f"--datadir={self.datadir}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db",
             "--innodb-log-file-size=8M"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        atexit.register(self.destroy)

    def start(self, timeout: float = 30.0) -> None:
        log = open(os.path.join(self.base, "mariadbd.log"), "ab")
        self.proc = subprocess.Popen(
            [MARIADBD, "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
             f"--socket={self.base}/sock", f"--pid-file={self.base}/pid", "--user=root",
             "--skip-networking=0", "--bind-address=127.0.0.1", "--skip-grant-tables",
             "--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M", "--skip-log-bin"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect().close()
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"private mariadbd did not start:\n{self.logTail()}")
                time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown; SIGKILL: a crash (InnoDB recovers on the next start)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(60)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def connect(self, database: str | None = None):
        import pymysql

        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", password="", database=database,
            charset="utf8mb4", autocommit=True, connect_timeout=2,
        )

    def query(self, database: str, statement: str, *args: object) -> list[tuple]:
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args or None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def logTail(self, lines: int = 20) -> str:
        try:
            with open(os.path.join(self.base, "mariadbd.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def destroy(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)


_instance: PrivateMariaDB | None = None


def shutdown() -> None:
    """Stop and remove the private instance (module teardown; atexit is only a fallback)."""
    global _instance
    if _instance is not None:
        _instance.destroy()
        _instance = None


def privateMariaDB() -> PrivateMariaDB:
    """The process's private instance (installed once, about 3 s), running."""
    global _instance
    if _instance is None:
        _instance = PrivateMariaDB()
    if not _instance.running:
        _instance.start()
    return _instance
