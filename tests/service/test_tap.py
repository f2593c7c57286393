"""`twistd kkobot` and `twistd -ny kkobot.tac` as an operator runs them: real processes."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from typing import Any

from twisted.application.service import IServiceMaker
from twisted.logger import textFileLogObserver
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from kkobot import logs, tap

from kkobot.logs import daemon as daemonlog
from tests.support import BRIDGE_LINES, pollUntil, tempDir
from tests.support.paths import REPO

ROOT = REPO
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
TAC = os.path.join(ROOT, "kkobot.tac")
DEADLINE = 30.0

ECHO_REPLY = {
    "event": "messageResponse",
    "data": {"room": "테스트방", "text": "에코: 안녕하세요", "channel_id": "18398338829933568"},
}


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A twistd process whose stdout is read line by line, with deadlines, no sleeps."""

    def __init__(self, testcase: SynchronousTestCase, args: list[str], cwd: str,
                 env: dict[str, str] | None = None, umask: int | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("KKOBOT_")}
        environ.update(env or {})
        self.proc = subprocess.Popen(
            [TWISTD, *args], cwd=cwd, env=environ,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=None if umask is None else (lambda: os.umask(umask)),
        )
        testcase.addCleanup(self.kill)
        self.lines: list[str] = []
        self._buffer = b""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def _read(self, timeout: float) -> bool:
        """Read what is there; False at end of output."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return True
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            return False
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        self.lines.extend(l.decode("utf-8", "replace") for l in complete)
        return True

    def waitFor(self, needle: str) -> str:
        deadline = time.monotonic() + DEADLINE
        seen = 0
        while True:
            for text in self.lines[seen:]:
                if needle in text:
                    return text
            seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                raise AssertionError(
                    f"no {needle!r} in twistd's output:\n" + "\n".join(self.lines)
                )

    def finish(self) -> int:
        """Read to the end of the output and return the exit status."""
        deadline = time.monotonic() + DEADLINE
        while self._read(max(0.0, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                raise AssertionError("twistd did not exit:\n" + "\n".join(self.lines))
        return self.proc.wait(timeout=DEADLINE)


def echoRoundTrip(port: int) -> list[dict[str, Any]]:
    """The PROTOCOL.md lines of a 3.2.0 bridge, over a plain socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(BRIDGE_LINES)
        data = b""
        while data.count(b"\n") < 3:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {data!r}"
            data += chunk
    return [json.loads(l) for l in data.decode("utf-8").splitlines()]


class TwistdTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.cwd = tempDir(self)

    def assertServed(self, server: Server, port: int) -> None:
        server.waitFor("[SERVER] listening on")
        server.waitFor("[DB] chat log ready")
        handshake, reply, ping = echoRoundTrip(port)
        self.assertEqual(handshake["event"], "handshakeComplete")
        self.assertEqual(handshake["data"]["success"], True)
        self.assertEqual(reply, ECHO_REPLY)
        self.assertEqual(ping["event"], "ping")
        server.waitFor("disconnected")
        server.proc.send_signal(signal.SIGTERM)
        status = server.finish()
        # twistd may re-raise the signal after a clean shutdown.
        self.assertIn(status, (0, -signal.SIGTERM, 128 + signal.SIGTERM),
                      "\n".join(server.lines))
        with open(os.path.join(self.cwd, "logs", "server.log"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertIn("[STARTUP] kkobot", lines[0])
        self.assertIn(f"[SERVER] listening on tcp:{port}:interface=127.0.0.1",
                      "\n".join(lines))
        shutdown = [l for l in lines if "[SHUTDOWN]" in l]
        self.assertTrue(shutdown)
        self.assertIn("[SHUTDOWN] stopping", shutdown[0])
        self.assertIn("[SHUTDOWN] done: 2 chat row(s) written this run", lines[-1])
        self.assertNotIn("Traceback", "\n".join(lines + server.lines))
        conn = sqlite3.connect(os.path.join(self.cwd, "var", "kkobot_test.sqlite3"))
        try:
            rows = conn.execute(
                "SELECT message, is_our_bot_response FROM kb_chat_logs ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
        self.assertEqual(rows, [("# echo 안녕하세요", 0), ("에코: 안녕하세요", 1)])

    def test_twistdKkobot(self) -> None:
        port = freePort()
        server = Server(self, ["-n", "kkobot", "--port", str(port)], self.cwd)
        self.assertServed(server, port)

    def test_twistdTac(self) -> None:
        port = freePort()
        server = Server(self, ["-ny", TAC], self.cwd, env={"KKOBOT_PORT": str(port)})
        self.assertServed(server, port)

    def test_filesAreTheServersOwnWhateverTheUmask(self) -> None:
        port = freePort()
        server = Server(self, ["-n", "kkobot", "--port", str(port)], self.cwd, umask=0)
        server.waitFor("[DB] chat log ready")
        echoRoundTrip(port)
        server.waitFor("disconnected")

        def mode(*parts: str) -> int:
            return stat.S_IMODE(os.stat(os.path.join(self.cwd, *parts)).st_mode)

        # While running: SQLite's -wal and -shm exist only now.
        database = os.path.join("var", "kkobot_test.sqlite3")
        modes = {name: mode(name) for name in
                 (database, database + "-wal", database + "-shm", "var",
                  os.path.join("var", "journal"), os.path.join("var", "journal", "test"),
                  "logs", os.path.join("logs", "server.log"))}
        journal = os.path.join(self.cwd, "var", "journal", "test")
        for folder, dirs, files in os.walk(journal):
            for name in dirs + files:
                modes[os.path.join(folder, name)] = mode(folder, name)
        server.proc.send_signal(signal.SIGTERM)
        server.finish()
        self.assertEqual(modes.pop("logs"), 0o750)
        self.assertEqual(modes.pop(os.path.join("logs", "server.log")), 0o640)
        # Besides the six named: the chat journal's segment and journal.id, the ping
        # log's folder (and whatever it holds by now).
        self.assertIn(os.path.join(journal, "journal.id"), modes)
        self.assertIn(os.path.join(journal, "ping"), modes)
        self.assertGreaterEqual(len(modes), 9, modes)
        for name, found in modes.items():
            expected = 0o700 if os.path.isdir(os.path.join(self.cwd, name)) else 0o600
            self.assertEqual(found, expected, name)

    def test_sighupRunsNothingOthersCouldHaveWritten(self) -> None:
        plugins = os.path.join(self.cwd, "plugins")
        os.mkdir(plugins, 0o755)
        server = Server(self, ["-n", "kkobot", "--port", str(freePort())], self.cwd)
        server.waitFor("[DB] chat log ready")
        # Someone opens the folder and drops a file of theirs in it.
        os.chmod(plugins, 0o777)
        planted = os.path.join(plugins, "kkobot_planted.py")
        with open(planted, "w", encoding="utf-8") as f:
            f.write("import pathlib\npathlib.Path(__file__ + '.ran').touch()\n")
        if os.geteuid() == 0:
            os.chown(planted, 65534, -1)
        server.proc.send_signal(signal.SIGHUP)
        line = server.waitFor("refusing to run plugins")
        self.assertIn(f"plugin folder {plugins} is writable by group or others (mode 0777)", line)
        self.assertFalse(os.path.exists(planted + ".ran"))
        server.proc.send_signal(signal.SIGTERM)
        server.finish()
        self.assertFalse(os.path.exists(planted + ".ran"))

    def test_prodWithoutConfigExitsWithOneLine(self) -> None:
        server = Server(self, ["-n", "kkobot", "--mode", "prod", "--port", str(freePort())],
                        self.cwd)
        status = server.finish()
        self.assertEqual(status, 1, "\n".join(server.lines))
        output = "\n".join(server.lines)
        self.assertIn("kkobot: prod mode needs a config", output)
        self.assertIn("kkobot-config --dir .cfg init", output)
        self.assertNotIn("Traceback", output)
        self.assertFalse(os.path.exists(os.path.join(self.cwd, "var")))

    def test_tacProdWithoutConfigExitsWithOneLine(self) -> None:
        server = Server(self, ["-ny", TAC], self.cwd,
                        env={"KKOBOT_PORT": str(freePort()), "KKOBOT_MODE": "prod"})
        status = server.finish()
        self.assertEqual(status, 1, "\n".join(server.lines))
        output = "\n".join(server.lines)
        self.assertIn("kkobot: prod mode needs a config", output)


class DaemonLogTests(SynchronousTestCase):
    """twistd's own log file, as a daemon (or with --logfile) writes it."""

    def setUp(self) -> None:
        self.cwd = tempDir(self)
        self.log = os.path.join(self.cwd, "twistd.log")

    def mode(self, path: str) -> int:
        return stat.S_IMODE(os.stat(path).st_mode)

    def daemon(self, args: list[str], env: dict[str, str] | None = None) -> int:
        """Start twistd as a daemon (from a umask 022 shell); its pid, stopped after the test."""
        pidfile = os.path.join(self.cwd, "twistd.pid")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("KKOBOT_")}
        environ.update(env or {})
        # twistd's parent returns once the daemon has started its application.
        launcher = subprocess.run(
            [TWISTD, f"--pidfile={pidfile}", *args], cwd=self.cwd, env=environ,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=DEADLINE,
            preexec_fn=lambda: os.umask(0o022),
        )
        self.assertEqual(launcher.returncode, 0, launcher.stdout.decode("utf-8", "replace"))
        with open(pidfile, encoding="ascii") as f:
            pid = int(f.read())
        self.addCleanup(self.stop, pid)
        pollUntil(lambda: "[DB] chat log ready" in self.read(self.log), "the daemon to run")
        return pid

    def stop(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

        pollUntil(gone, "the daemon to stop", timeout=DEADLINE)

    def read(self, path: str) -> str:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def test_daemonLogIsPrivateAndRotatesWithACap(self) -> None:
        pid = self.daemon(["kkobot", "--port", str(freePort())])
        self.assertEqual(self.mode(self.log), 0o640)
        self.assertIn("[STARTUP] kkobot", self.read(self.log))
        # SIGUSR1 rotates it now (as twistd's own log file did); only ten are kept.
        for _ in range(daemonlog.ROTATED_FILES + 2):
            before = os.stat(self.log).st_ino
            os.kill(pid, signal.SIGUSR1)
            pollUntil(lambda: os.path.exists(self.log) and os.stat(self.log).st_ino != before,
                      "the log to rotate")
        rotated = sorted(n for n in os.listdir(self.cwd) if n.startswith("twistd.log."))
        self.assertEqual(rotated, sorted(f"twistd.log.{i}"
                                         for i in range(1, daemonlog.ROTATED_FILES + 1)))
        for name in rotated + ["twistd.log"]:
            self.assertEqual(self.mode(os.path.join(self.cwd, name)), 0o640, name)

    def test_tacDaemonLog(self) -> None:
        # An older twistd.log at the umask's mode is tightened too.
        with open(self.log, "w") as f:
            f.write("older run\n")
        os.chmod(self.log, 0o644)
        self.daemon(["-y", TAC], env={"KKOBOT_PORT": str(freePort())})
        self.assertEqual(self.mode(self.log), 0o640)
        self.assertIn("older run", self.read(self.log))

    def test_foregroundWithLogfile(self) -> None:
        path = os.path.join(self.cwd, "elsewhere.log")
        port = freePort()
        server = Server(self, ["-n", f"--logfile={path}", "kkobot", "--port", str(port)],
                        self.cwd, umask=0)
        # The chat log is ready once the reactor runs (and handles SIGTERM).
        pollUntil(lambda: "[DB] chat log ready" in self.read(path), "the server to run")
        self.assertEqual(self.mode(path), 0o640)
        server.proc.send_signal(signal.SIGTERM)
        self.assertIn(server.finish(), (0, -signal.SIGTERM, 128 + signal.SIGTERM))
        self.assertIn("[SHUTDOWN] done", self.read(path))
        self.assertFalse(os.path.exists(self.log))


class DaemonLogChoiceTests(SynchronousTestCase):
    """Where twistd would log, so only a real log file is replaced (never stdout)."""

    def test_logFilePath(self) -> None:
        cases = [
            ({}, "twistd.log"),
            ({"nodaemon": True}, None),
            ({"debug": True}, None),
            ({"nodaemon": True, "logfile": "x.log"}, "x.log"),
            ({"logfile": "/var/log/kkobot.log"}, "/var/log/kkobot.log"),
            ({"logfile": "-", "nodaemon": True}, None),
            ({"syslog": True}, None),
            ({"logger": "mine.observer"}, None),
        ]
        for options, expected in cases:
            self.assertEqual(daemonlog.logFilePath(options), expected, options)

    def test_optionsFromArgv(self) -> None:
        read = daemonlog.optionsFromArgv
        self.assertEqual(daemonlog.logFilePath(read(["twistd", "-ny", "kkobot.tac"])), None)
        self.assertEqual(daemonlog.logFilePath(read(["twistd", "-y", "kkobot.tac"])),
                         "twistd.log")
        self.assertEqual(daemonlog.logFilePath(
            read(["twistd", "--nodaemon", "-l", "a.log", "--python=kkobot.tac"])), "a.log")
        self.assertEqual(daemonlog.logFilePath(
            read(["twistd", "--syslog", "-y", "kkobot.tac"])), None)
        self.assertIsNone(read(["twistd", "--no-such-option"]))

    def test_rotatesBySizeAndKeepsTen(self) -> None:
        root = tempDir(self)
        path = os.path.join(root, "twistd.log")
        logFile = daemonlog.openLogFile(path)
        self.addCleanup(logFile.close)
        observer = textFileLogObserver(logFile)
        chunk = "x" * (daemonlog.ROTATE_BYTES // 4)
        for _ in range(4 * (daemonlog.ROTATED_FILES + 2)):
            observer({"log_format": "{chunk}", "chunk": chunk, "log_time": 0.0})
        names = os.listdir(root)
        self.assertEqual(len(names), 1 + daemonlog.ROTATED_FILES, names)
        total = sum(os.path.getsize(os.path.join(root, n)) for n in names)
        self.assertLess(total, (daemonlog.ROTATED_FILES + 1) * daemonlog.ROTATE_BYTES * 1.1)


class RefusesToStartTests(SynchronousTestCase):
    """Settings that would answer strangers stop twistd with one line, before listening."""

    def setUp(self) -> None:
        self.cwd = tempDir(self)

    def refused(self, args: list[str], env: dict[str, str] | None = None) -> str:
        server = Server(self, args, self.cwd, env=env)
        status = server.finish()
        output = "\n".join(server.lines)
        self.assertEqual(status, 1, output)
        self.assertNotIn("Traceback", output)
        self.assertNotIn("[SERVER] listening", output)
        self.assertFalse(os.path.exists(os.path.join(self.cwd, "var")))
        return output

    def test_noConfigOnEveryInterface(self) -> None:
        port = freePort()
        output = self.refused(["-n", "kkobot", "--port", f"tcp:{port}:interface=0.0.0.0"])
        self.assertIn(f"kkobot: refusing to listen on tcp:{port}:interface=0.0.0.0 without "
                      "authentication", output)
        # Nothing took the port.
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))

    def test_mistypedConfig(self) -> None:
        output = self.refused(["-n", "kkobot", "--port", str(freePort()), "--config", "/etc/kkobto"])
        self.assertIn("kkobot: no config in /etc/kkobto/ (given with --config or KKOBOT_CONFIG)",
                      output)

    def test_tacWithAMistypedConfig(self) -> None:
        output = self.refused(["-ny", TAC], env={"KKOBOT_PORT": str(freePort()),
                                                 "KKOBOT_CONFIG": "/etc/kkobto"})
        self.assertIn("kkobot: no config in /etc/kkobto/", output)

    def test_pluginFolderOthersCanWrite(self) -> None:
        os.mkdir(os.path.join(self.cwd, "plugins"))
        os.chmod(os.path.join(self.cwd, "plugins"), 0o777)
        output = self.refused(["-n", "kkobot", "--port", str(freePort())])
        self.assertIn("kkobot: refusing to run plugins: plugin folder", output)
        self.assertIn("chmod go-w", output)

    def test_tacOnEveryInterface(self) -> None:
        output = self.refused(["-ny", TAC], env={"KKOBOT_PORT": "tcp:0:interface=0.0.0.0"})
        self.assertIn("without authentication", output)


class OptionsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.addCleanup(logs.setLevel, "info")

    def test_pluginFound(self) -> None:
        [maker] = [m for m in getPlugins(IServiceMaker) if m.tapname == "kkobot"]
        self.assertIs(maker.options, tap.Options)
        self.assertTrue(maker.description)

    def test_settings(self) -> None:
        options = tap.Options()
        options.parseOptions(["--port", "tcp:1491:interface=0.0.0.0", "--mode", "prod",
                              "--config", "/etc/kkobot", "--log-level", "debug",
                              "--plugins", "/srv/plugins", "--logs", "/var/log/kkobot",
                              "--var", "/var/lib/kkobot"])
        s = options.settings()
        self.assertEqual(
            (s.port, s.mode, s.configDir, s.logLevel, s.dropinDir, s.logDir, s.varDir),
            ("tcp:1491:interface=0.0.0.0", "prod", "/etc/kkobot", "debug", "/srv/plugins",
             "/var/log/kkobot", "/var/lib/kkobot"),
        )

    def test_defaults(self) -> None:
        options = tap.Options()
        options.parseOptions([])
        s = options.settings()
        self.assertEqual((s.port, s.mode, s.configDir, s.logLevel, s.logDir, s.varDir),
                         (None, "test", ".cfg", "info", "logs", "var"))

    def test_badMode(self) -> None:
        self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["--mode", "staging"])
