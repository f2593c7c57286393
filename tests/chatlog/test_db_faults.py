"""Database faults under load: MariaDB killed and restarted, a table lock, a full journal disk."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from benchmarks import loadgen, targets
from tests.support import mariadb
from tests.support.mariadb import privateMariaDB
from tests.support import pollUntil, startServerProcess, writeMysqlConfig

NEEDS_JOURNAL = (
    "needs the chat-log journal (kkobot/chatlog/journal.py, from the durable-chat-log work): "
    "without it rows that meet a database outage are dropped"
)

# Figures of a run, for docs/reliability.md (written to $KKOBOT_FIGURES_DB when set).
FIGURES: dict[str, Any] = {}


class Load:
    """loadgen in a thread; records which echoes were acknowledged (answered)."""

    def __init__(
        self, port: int, conns: int, messages: int, window: int = 2, timeout: float = 90
    ) -> None:
        self.started = threading.Event()
        self.conns: list[Any] = []
        self.cfg = loadgen.LoadConfig(
            port=port, conns=conns, messages=messages, window=window, timeout=timeout,
            on_start=self.started.set, per_source=0, on_connections=self.conns.extend,
        )
        self.report: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.report = loadgen.run(self.cfg)

    def start(self) -> Load:
        self._thread.start()
        if not self.started.wait(30):
            raise AssertionError("the load never started")
        return self

    def join(self) -> dict[str, Any]:
        self._thread.join(120)
        assert self.report is not None, "the load did not finish"
        return self.report

    def acked(self) -> set[str]:
        """Message texts whose reply came back: the server took responsibility for them."""
        # copy() is one C call: the load's thread cannot add to the set while it runs.
        return {"# echo " + t[len("에코: "):] for c in self.conns for t in c.answered.copy()}


class DatabaseFaultTests(SynchronousTestCase):
    def setUp(self) -> None:
        if importlib.util.find_spec("kkobot.chatlog.journal") is None:
            raise SkipTest(NEEDS_JOURNAL)
        self.db = privateMariaDB()
        self.name = f"kkobot_f_{uuid.uuid4().hex[:10]}"
        self.workdir = tempfile.mkdtemp(prefix="kkobot-faults-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.journalDir = os.path.join(self.workdir, "journal")
        self.cfgdir = os.path.join(self.workdir, "cfg")
        self.servers: list[targets.ProcessTarget] = []
        self.addCleanup(self.cleanup)

    def cleanup(self) -> None:
        for server in self.servers:
            if server.proc is not None and server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(10)
        if not self.db.running:
            self.db.start()
        conn = self.db.connect()
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        conn.close()

    def configure(self, **chatlog: Any) -> None:
        writeMysqlConfig(self.cfgdir, "127.0.0.1", self.db.port, self.name, self.journalDir,
                         **chatlog)

    def start(self, waitReady: bool = True) -> targets.ProcessTarget:
        return startServerProcess(self.workdir, self.cfgdir, self.servers, waitReady)


    def stored(self, runId: str) -> dict[str, int]:
        """Message text -> how many rows hold it, for one load run."""
        try:
            rows = self.db.query(
                self.name,
                "SELECT message, COUNT(*) FROM kb_chat_logs WHERE message LIKE %s GROUP BY message",
                f"# echo {runId}:%",
            )
        except Exception:
            return {}
        return {m: n for m, n in rows}

    def waitProgress(self, load: Load, rows: int = 300) -> None:
        """Until the load is visibly mid-flight: the fault must land while messages flow."""
        pollUntil(lambda: len(self.stored(load.cfg.run_id)) >= rows, f"{rows} rows of the load")

    def answeredMeanwhile(self, load: Load, count: int = 200) -> None:
        """Hold the fault until C{count} more echoes are answered: replies must go on."""
        before = len(load.acked())
        pollUntil(lambda: len(load.acked()) >= before + count, f"{count} replies during the fault")

    def assertExactlyOnce(self, load: Load, what: str, timeout: float = 90.0) -> dict[str, int]:
        """Every acknowledged message ends up in kb_chat_logs exactly once."""
        acked = load.acked()
        runId = load.cfg.run_id
        self.assertGreater(len(acked), 0)
        pollUntil(lambda: acked <= set(self.stored(runId)), f"{len(acked)} acked rows ({what})",
                timeout)
        stored = self.stored(runId)
        duplicated = {m: n for m, n in stored.items() if n > 1}
        self.assertEqual(duplicated, {})
        figures = {"sent": load.cfg.conns * load.cfg.messages, "acked": len(acked),
                   "acked_found_once": sum(1 for m in acked if stored.get(m) == 1),
                   "rows_for_run": sum(stored.values()), "duplicated": len(duplicated)}
        self.assertEqual(figures["acked_found_once"], len(acked))
        FIGURES[what] = figures
        return figures

    def restartedUnderLoad(self, how: signal.Signals, what: str) -> dict[str, int]:
        """mariadbd stopped mid-load, back after 200 more replies: nothing lost or doubled."""
        self.configure()
        server = self.start()
        # Long enough that the load still runs after a clean stop of mariadbd (which
        # takes a second or two) and 200 more replies: rows reach the table in batches
        # a moment after their replies, so 300 stored rows may mean most replies sent.
        load = Load(server.port, conns=10, messages=1500).start()
        self.waitProgress(load)
        self.db.stop(how)
        self.answeredMeanwhile(load)
        self.db.start()
        report = load.join()
        self.assertEqual(report["errors"], 0, report["error_detail"])
        return self.assertExactlyOnce(load, what)

    def test_mariadbKilledAndRestartedUnderLoad(self) -> None:
        figures = self.restartedUnderLoad(signal.SIGKILL, "mariadb_sigkill_restart")
        figures["faults"] = "mariadbd SIGKILL, down while 200 more replies went out, restarted"

    def test_mariadbStoppedCleanlyUnderLoad(self) -> None:
        self.restartedUnderLoad(signal.SIGTERM, "mariadb_sigterm_restart")

    def test_tableLockedUnderLoad(self) -> None:
        """LOCK TABLES kb_chat_logs WRITE held for 200 replies: writes wait, clients are still answered."""
        self.configure()
        server = self.start()
        locker = self.db.connect(self.name)
        self.addCleanup(locker.close)
        load = Load(server.port, conns=10, messages=300).start()
        self.waitProgress(load)
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES kb_chat_logs WRITE")
            self.answeredMeanwhile(load)
            cur.execute("UNLOCK TABLES")
        report = load.join()
        self.assertEqual(report["errors"], 0, report["error_detail"])
        figures = self.assertExactlyOnce(load, "table_lock")
        figures["p99_ms"] = report["latency_ms"]["p99"]

    def test_serverKilledWhileTheDatabaseIsDown(self) -> None:
        """
        MariaDB down, messages answered (held in memory and the journal), then the server is
        SIGKILLed: after both come back, the journal replays every acknowledged row once.
        """
        self.configure()
        server = self.start()
        self.db.stop(signal.SIGTERM)
        load = Load(server.port, conns=5, messages=100).start()
        report = load.join()
        self.assertEqual(report["errors"], 0, report["error_detail"])
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        self.db.start()
        self.start()
        self.assertExactlyOnce(load, "server_sigkill_while_db_down")

    def test_serverStoppedWhileTheDatabaseIsDown(self) -> None:
        """
        SIGTERM with MariaDB down and rows only in memory and the journal: the server still
        exits promptly (it cannot flush), and the restarted server writes every row once.
        """
        self.configure()
        server = self.start()
        self.db.stop(signal.SIGTERM)
        load = Load(server.port, conns=5, messages=100).start()
        report = load.join()
        self.assertEqual(report["errors"], 0, report["error_detail"])
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        status = server.proc.wait(30)
        stopping = time.monotonic() - started
        self.assertIn(status, (0, -signal.SIGTERM, 128 + signal.SIGTERM))
        self.db.start()
        self.start()
        figures = self.assertExactlyOnce(load, "server_sigterm_while_db_down")
        figures["stop_seconds"] = round(stopping, 2)

    def fillJournalDisk(self) -> tuple[targets.ProcessTarget, Load, dict[str, Any]]:
        """A 256 KiB journal disk, MariaDB down, load until the server cannot journal."""
        if os.geteuid() != 0:
            raise SkipTest("mounting a small tmpfs needs root")
        os.makedirs(self.journalDir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", self.journalDir],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.journalDir], check=False)
        self.configure(journal_segment_bytes=64 * 1024)
        server = self.start()
        self.db.stop(signal.SIGTERM)
        # Held answers hold loadgen's window, so it ends on its (short) deadline.
        load = Load(server.port, conns=5, messages=400, timeout=8).start()
        first = load.join()
        self.assertIsNone(server.proc.poll(), "the server died on a full disk")
        # Nothing is answered that the journal does not hold, and nothing is refused:
        # reading pauses until the journal takes rows again.
        self.assertGreater(first["error_detail"]["missing"], 0, "the full disk held nothing back")
        self.assertEqual(first["error_detail"]["server_error_events"], 0)
        return server, load, first

    def test_journalDiskFull(self) -> None:
        """
        The journal's disk fills while MariaDB is down: the server holds its answers and
        stops reading, stays up, stores every message it answered exactly once when the
        database returns (whose commits let the journal trim and take rows again), and
        serves normally afterwards.
        """
        server, load, first = self.fillJournalDisk()
        self.db.start()
        figures = self.assertExactlyOnce(load, "journal_disk_full", timeout=120)
        figures.update(held=first["error_detail"]["missing"], tmpfs="256 KiB")
        # Once the database has taken the backlog, the journal has room again.
        after = Load(server.port, conns=2, messages=50).start().join()
        self.assertEqual(after["errors"], 0, after["error_detail"])

    def test_journalDiskFullThenServerKilled(self) -> None:
        """
        The same full disk, then SIGKILL before MariaDB returns: what was answered must
        come back from the journal alone (a row cut short by the full disk must not have
        been answered).
        """
        server, load, first = self.fillJournalDisk()
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        self.db.start()
        self.start()
        figures = self.assertExactlyOnce(load, "journal_disk_full_then_sigkill", timeout=120)
        figures.update(held=first["error_detail"]["missing"], tmpfs="256 KiB")


def tearDownModule() -> None:
    mariadb.shutdown()


def _writeFigures() -> None:
    with open(os.environ["KKOBOT_FIGURES_DB"], "w") as f:
        json.dump(FIGURES, f, indent=1, default=str)


if os.environ.get("KKOBOT_FIGURES_DB"):
    import atexit

    atexit.register(_writeFigures)
