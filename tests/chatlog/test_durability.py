"""The real server (twistd) against a scratch MariaDB: SIGKILL under load, SIGKILL mid-replay, SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from benchmarks import loadgen, targets
from kkobot import config
from tests.support import (
    MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, ScratchMysql, pollUntil,
    startServerProcess, writeMysqlConfig,
)


class ServerProcessTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        self.scratch.createOperatorTable()
        self.workdir = tempfile.mkdtemp(prefix="kkobot-durability-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.cfgdir = os.path.join(self.workdir, "cfg")
        self.journalDir = os.path.join(self.workdir, "journal")
        writeMysqlConfig(self.cfgdir, MYSQL_HOST, MYSQL_PORT, self.scratch.name,
                         self.journalDir, user=MYSQL_USER, password=MYSQL_PASSWORD)
        self.servers: list[targets.ProcessTarget] = []
        self.addCleanup(self.stopAll)

    def setChatlog(self, **values: Any) -> None:
        data = config.load(self.cfgdir)
        data["chatlog"].update(values)
        config.save(self.cfgdir, data)

    def start(self) -> targets.ProcessTarget:
        return startServerProcess(self.workdir, self.cfgdir, self.servers)

    def stopAll(self) -> None:
        for server in self.servers:
            if server.proc is not None and server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(10)

    def kill9(self, server: targets.ProcessTarget) -> None:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)

    def load(self, server: targets.ProcessTarget, conns: int, messages: int, window: int) -> str:
        report = loadgen.run(loadgen.LoadConfig(
            port=server.port, conns=conns, messages=messages, window=window, timeout=60,
        ))
        self.assertEqual(report["errors"], 0, report["error_detail"])
        self.assertEqual(report["replies"], conns * messages)
        return report["run_id"]

    def counts(self, runId: str) -> tuple[int, int, int]:
        """(messages, replies, duplicated texts) of one load run in kb_chat_logs."""
        (messages, distinct), = self.scratch.query(
            "SELECT COUNT(*), COUNT(DISTINCT message) FROM kb_chat_logs WHERE message LIKE %s",
            f"# echo {runId}:%",
        )
        (replies, distinctReplies), = self.scratch.query(
            "SELECT COUNT(*), COUNT(DISTINCT message, channel_id) FROM kb_chat_logs "
            "WHERE message LIKE %s AND is_our_bot_response = 1",
            f"에코: {runId}:%",
        )
        return messages, replies, (messages - distinct) + (replies - distinctReplies)

    def waitStored(self, runId: str, n: int) -> None:
        pollUntil(lambda: self.counts(runId)[:2] == (n, n), f"{n} messages and {n} replies")
        self.assertEqual(self.counts(runId), (n, n, 0))

    def test_killDashNineAfterAnswersLosesNothing(self) -> None:
        # Nothing reaches MySQL on its own during the run: everything answered is
        # only in the journal when the server dies.
        self.setChatlog(batch_size=100_000, flush_interval=3600)
        server = self.start()
        runId = self.load(server, conns=10, messages=50, window=4)
        self.kill9(server)
        self.assertEqual(self.counts(runId), (0, 0, 0))
        self.setChatlog(batch_size=200, flush_interval=0.05)
        restarted = self.start()
        self.waitStored(runId, 500)
        restarted.stop()
        self.assertIn(restarted.proc.returncode, (0, -signal.SIGTERM, 143))

    def test_killDashNineUnderLoadThenRestart(self) -> None:
        server = self.start()
        first = self.load(server, conns=20, messages=50, window=4)
        second = self.load(server, conns=5, messages=40, window=8)
        self.kill9(server)
        self.start()
        self.waitStored(first, 1000)
        self.waitStored(second, 200)

    def test_killDashNineDuringReplayThenRestart(self) -> None:
        self.setChatlog(batch_size=100_000, flush_interval=3600)
        server = self.start()
        runId = self.load(server, conns=20, messages=100, window=8)
        self.kill9(server)
        # Small batches make the replay long enough to be killed in the middle of it.
        self.setChatlog(batch_size=5, flush_interval=0.05)
        replaying = self.start()
        stored = pollUntil(lambda: sum(self.counts(runId)[:2]), "the replay to start")
        self.kill9(replaying)
        stored = sum(self.counts(runId)[:2])
        self.assertLess(stored, 4000, "replay finished before the kill: nothing was tested")
        self.setChatlog(batch_size=200)
        self.start()
        self.waitStored(runId, 2000)

    def test_sigtermWritesEverythingBeforeExit(self) -> None:
        self.setChatlog(batch_size=100_000, flush_interval=3600)
        server = self.start()
        runId = self.load(server, conns=10, messages=30, window=4)
        self.assertEqual(self.counts(runId), (0, 0, 0))
        server.stop()
        self.assertIn(server.proc.returncode, (0, -signal.SIGTERM, 143))
        self.assertEqual(self.counts(runId), (300, 300, 0))
        # ...and the journal it leaves holds no row to replay.
        segments = [n for n in os.listdir(os.path.join(self.journalDir, "test")) if n.endswith(".jnl")]
        self.assertEqual(len(segments), 1)
        self.assertEqual(os.path.getsize(os.path.join(self.journalDir, "test", segments[0])), 0)
