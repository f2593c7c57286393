"""Shared test helpers: scratch MySQL databases, bridge lines, signing."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from typing import Any

from twisted.trial.unittest import SkipTest

from kkobot.config import DBSettings

MYSQL_HOST = os.environ.get("KKOBOT_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("KKOBOT_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("KKOBOT_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("KKOBOT_TEST_MYSQL_PASSWORD", "")
# CI sets this: there a missing MySQL is a failure, not a skip.
REQUIRE_MYSQL = os.environ.get("KKOBOT_REQUIRE_MYSQL") == "1"

# The operators' table definition, byte for byte as they run it.
KB_CHAT_LOGS_SQL = os.path.join(os.path.dirname(__file__), "data", "kb_chat_logs.sql")


def mysqlConnect(database: str | None = None):
    """A blocking PyMySQL connection for test setup and assertions (never in the server)."""
    import pymysql

    return pymysql.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        password=MYSQL_PASSWORD,
        database=database,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=3,
    )


def requireMysql() -> None:
    """Skip (on a laptop) or fail (in CI) when the MySQL server is unreachable."""
    try:
        mysqlConnect().close()
    except Exception as e:
        reason = f"MySQL at {MYSQL_HOST}:{MYSQL_PORT} is unreachable ({e})"
        if REQUIRE_MYSQL:
            raise AssertionError(reason + "; KKOBOT_REQUIRE_MYSQL=1 makes this a failure")
        raise SkipTest(reason)


class ScratchMysql:
    """A fresh database for one test, dropped by L{drop}."""

    def __init__(self, create: bool = True) -> None:
        requireMysql()
        self.name = f"kkobot_t_{uuid.uuid4().hex[:12]}"
        if create:
            self.execute(None, f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4")

    def settings(self) -> DBSettings:
        return DBSettings(
            engine="mysql",
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user=MYSQL_USER,
            password=MYSQL_PASSWORD,
            name=self.name,
        )

    def execute(self, database: str | None, statement: str, *args: Any) -> None:
        conn = mysqlConnect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args or None)
        finally:
            conn.close()

    def query(self, statement: str, *args: Any) -> list[tuple]:
        conn = mysqlConnect(self.name)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args or None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def createOperatorTable(self) -> None:
        """kb_chat_logs exactly as operators have it (tests/support/data/kb_chat_logs.sql)."""
        with open(KB_CHAT_LOGS_SQL, encoding="utf-8") as f:
            ddl = "\n".join(
                line for line in f.read().splitlines() if not line.startswith("--")
            )
        self.execute(self.name, ddl.strip().rstrip(";"))

    def drop(self) -> None:
        self.execute(None, f"DROP DATABASE IF EXISTS `{self.name}`")


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def sign(secret: str, salt: str, auth: dict[str, Any]) -> str:
    """The bridge's signature (PROTOCOL.md, Auth), computed independently of kkobot."""
    fields = [
        auth.get("clientType", ""),
        auth.get("botName", ""),
        auth.get("deviceUUID", ""),
        auth.get("macAddress", ""),
        auth.get("ipAddress", ""),
        str(auth.get("timestamp", "")),
        salt,
    ]
    message = "|".join(str(f) for f in fields)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


HELLO_320 = {
    "clientType": "MessengerBotR",
    "botName": "kkobot",
    "version": "3.2.0",
    "deviceID": "5f3c2a1b9d8e7f60",
    "deviceIP": "127.0.0.1",
    "deviceInfo": "samsung SM-S911N (Android 14, API 34)",
}
# The auth object of a 3.2.0 bridge (an unchecked signature).
AUTH = {
    "clientType": "MessengerBotR", "botName": "kkobot", "deviceUUID": "5f3c2a1b9d8e7f60",
    "deviceID": "5f3c2a1b9d8e7f60", "macAddress": "02:00:00:00:00:00",
    "ipAddress": "127.0.0.1", "timestamp": 1795602310517, "version": "3.2.0",
    "signature": "0" * 64,
}
# The three lines of PROTOCOL.md ("Lines exactly as a 3.2.0 bridge sends them"),
# byte for byte; only the signatures are shortened.
BRIDGE_LINES = (
    '{"clientType":"MessengerBotR","botName":"kkobot","version":"3.2.0","deviceID":"5f3c2a1b9d8e7f60","deviceIP":"127.0.0.1","deviceInfo":"samsung SM-S911N (Android 14, API 34)"}\n'
    '{"event":"analyze","data":{"room":"테스트방","text":"# echo 안녕하세요","sender":"홍길동","isGroupChat":true,"channelId":"18398338829933568","logId":"3371984461207437313","userHash":"a1b2c3","isMention":false,"timestamp":"2026-11-25 19:25:10","botName":"kkobot","clientType":"MessengerBotR","auth":{"clientType":"MessengerBotR","botName":"kkobot","deviceUUID":"5f3c2a1b9d8e7f60","deviceID":"5f3c2a1b9d8e7f60","macAddress":"02:00:00:00:00:00","ipAddress":"127.0.0.1","timestamp":1795602310517,"version":"3.2.0","signature":"00"}}}\n'
    '{"event":"ping","data":{"bot_name":"kkobot","server_timestamp":1795602311302,"monitoring":{"total_memory":6028,"memory_usage":8,"memory_percent":0.1,"message_queue_size":0,"active_rooms":1},"auth":{"clientType":"MessengerBotR","botName":"kkobot","deviceUUID":"5f3c2a1b9d8e7f60","deviceID":"5f3c2a1b9d8e7f60","macAddress":"02:00:00:00:00:00","ipAddress":"127.0.0.1","timestamp":1795602311310,"version":"3.2.0","signature":"00"}}}\n'
).encode("utf-8")

HELLO_314 = {"botName": "kkobot", "version": "3.1.4", "deviceID": "5f3c2a1b9d8e7f60"}
HELLO_290 = {"botName": "kkobot", "version": "2.9.0c"}


def analyze(
    text: str,
    room: str = "테스트방",
    channelId: str | None = "18398338829933568",
    userHash: str | None = "a1b2c3",
    botName: str = "kkobot",
    auth: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An `analyze` event as a 3.2.0 bridge sends it."""
    data = {
        "room": room,
        "text": text,
        "sender": "홍길동",
        "isGroupChat": True,
        "channelId": channelId,
        "logId": "3371984461207437313",
        "userHash": userHash,
        "isMention": False,
        "timestamp": "2026-11-25 19:25:10",
        "botName": botName,
        "clientType": "MessengerBotR",
    }
    if auth is not None:
        data["auth"] = auth
    data.update(extra)
    return {"event": "analyze", "data": data}


def captureLogs(testcase: Any) -> list[dict[str, Any]]:
    """Every log event published while the test runs (kkobot's level gate applies)."""
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []

    def observer(event: dict[str, Any]) -> None:
        events.append(event)

    globalLogPublisher.addObserver(observer)
    testcase.addCleanup(globalLogPublisher.removeObserver, observer)
    return events


def logText(events: list[dict[str, Any]]) -> str:
    """The captured events as text, one event per line (tracebacks included)."""
    from twisted.logger import formatEvent

    out = []
    for event in events:
        text = formatEvent(event)
        failure = event.get("log_failure")
        if failure is not None:
            text += "\n" + failure.getTraceback()
        out.append(text)
    return "\n".join(out)


def forgetDropins(testcase: Any, directory: str) -> None:
    """
    After the test, take a drop-in folder off C{kkobot.plugins.__path__} again and
    forget the modules imported from it, so one test's plugins never reach another.
    """
    import sys

    import kkobot.plugins

    directory = os.path.abspath(directory)

    def forget() -> None:
        while directory in kkobot.plugins.__path__:
            kkobot.plugins.__path__.remove(directory)
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None) or ""
            if name.startswith("kkobot.plugins.") and path.startswith(directory + os.sep):
                del sys.modules[name]

    testcase.addCleanup(forget)


def tempDir(testcase: Any) -> str:
    """
    A fresh directory removed after the test. (trial's C{mktemp} is relative to the
    working directory, which under pytest is the checkout itself.)
    """
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="kkobot-test-")
    testcase.addCleanup(shutil.rmtree, path, True)
    return path


def waitUntil(predicate: Any, what: str, timeout: float = 20.0) -> Any:
    """A Deferred that fires once C{predicate()} is true (polled on the real reactor)."""
    from twisted.internet import defer, reactor, task

    @defer.inlineCallbacks
    def wait() -> Any:
        deadline = reactor.seconds() + timeout  # type: ignore[attr-defined]
        while not predicate():
            if reactor.seconds() > deadline:  # type: ignore[attr-defined]
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            yield task.deferLater(reactor, 0.005, lambda: None)

    return wait()


def writeMysqlConfig(cfgdir: str, host: str, port: int, name: str, journalDir: str,
                     user: str = "root", password: str = "", **chatlog: Any) -> None:
    """A test-mode config on one MySQL database, auth off, the journal in C{journalDir}."""
    from kkobot import config

    data = config.skeleton()
    data["DBs"]["kkobot_test"] = {
        "HOST": host, "PORT": port, "USER": user, "PASSWORD": password, "NAME": name,
    }
    data["auth"] = {"required": False, "auto_approve": True}
    data["chatlog"] = {"journal_dir": journalDir, **chatlog}
    config.init(cfgdir, data)


def startServerProcess(workdir: str, cfgdir: str, servers: list, waitReady: bool = True) -> Any:
    """
    C{twistd -n kkobot} with C{cfgdir} on a free loopback port, run from C{workdir}
    (its own log directory per run), appended to C{servers}; by default it returns
    once the chat log says it is ready.
    """
    from benchmarks import targets

    port = targets.free_port()
    argv = [
        targets.twistd_path(), "-n", "--pidfile=", "kkobot",
        "--port", f"tcp:{port}:interface=127.0.0.1", "--config", cfgdir,
        "--var", os.path.join(workdir, "var"), "--logs", "",
    ]
    server = targets.ProcessTarget(
        "kkobot", argv, port=port, cwd=workdir,
        log_dir=os.path.join(workdir, f"run{len(servers)}"), remove_log_dir=False,
    )
    os.makedirs(server.log_dir, exist_ok=True)
    servers.append(server)
    server.start()
    if waitReady:
        pollUntil(lambda: "[DB] chat log ready" in serverLog(server), "the chat log to be ready")
    return server


def serverLog(server: Any) -> str:
    """Everything a server process started by L{startServerProcess} has logged so far."""
    with open(server.log_path, errors="replace") as f:
        return f.read()


def pollUntil(predicate: Any, what: str, timeout: float = 60.0, interval: float = 0.02) -> Any:
    """
    Poll until C{predicate()} is truthy, for synchronous tests whose server and database
    are other processes (there is no reactor to wait on); fail after C{timeout} seconds.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
