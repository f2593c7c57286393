"""Redis for tests: the shared server (own key prefix per test) and private servers to stop at will."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from typing import Any

from twisted.internet import defer, task
from twisted.trial.unittest import SkipTest

from kkobot.cluster.keys import Keys
from kkobot.cluster.link import RedisLink
from kkobot.cluster.settings import RedisAddress

REDIS_HOST = os.environ.get("KKOBOT_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("KKOBOT_TEST_REDIS_PORT", "6379"))
# CI sets this: there a missing Redis is a failure, not a skip.
REQUIRE_REDIS = os.environ.get("KKOBOT_REQUIRE_REDIS") == "1"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """A blocking PING for test setup (never in the server)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def requireRedis() -> RedisAddress:
    """The shared Redis; skip (on a laptop) or fail (in CI) when it is unreachable."""
    if not ping(REDIS_HOST, REDIS_PORT):
        reason = f"Redis at {REDIS_HOST}:{REDIS_PORT} is unreachable"
        if REQUIRE_REDIS:
            raise AssertionError(reason + "; KKOBOT_REQUIRE_REDIS=1 makes this a failure")
        raise SkipTest(reason)
    return RedisAddress(REDIS_HOST, REDIS_PORT)


def scratchKeys() -> Keys:
    """A key prefix no other test (or deployment) uses."""
    return Keys(f"kkobot-test:{uuid.uuid4().hex[:12]}")


@defer.inlineCallbacks
def deletePrefix(link: RedisLink, keys: Keys):
    """Delete every key under C{keys.prefix} (SCAN, never KEYS: the server is shared)."""
    cursor = "0"
    while True:
        cursor, found = yield link.execute("SCAN", cursor, "MATCH", keys.prefix + ":*", "COUNT", 500)
        if found:
            yield link.execute("DEL", *found)
        if cursor == "0":
            return


def startedLink(address: RedisAddress, **kw: Any) -> defer.Deferred[RedisLink]:
    """A link on the real reactor, once it is up."""
    link = RedisLink(address, **kw)
    link.start()
    return link.whenUp()


@defer.inlineCallbacks
def eventually(check: Any, timeout: float = 10.0, step: float = 0.01):
    """
    Wait on the real reactor until C{check()} (a bool, or a Deferred of one) is
    true: for what another connection or a server process does in its own time.
    """
    from twisted.internet import reactor

    waited = 0.0
    while not (yield defer.maybeDeferred(check)):
        if waited > timeout:
            raise AssertionError(f"not reached within {timeout} s: {check}")
        yield task.deferLater(reactor, step, lambda: None)
        waited += step


def _freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """
    A redis-server of our own on 127.0.0.1:<free port>, no persistence, for outage
    tests: stop it, start it again on the same port. Never the shared server.
    """

    def __init__(self) -> None:
        if not os.path.exists(REDIS_SERVER):
            if REQUIRE_REDIS:
                raise AssertionError("redis-server is not installed; KKOBOT_REQUIRE_REDIS=1")
            raise SkipTest("redis-server is not installed")
        self.port = _freePort()
        self.dir = tempfile.mkdtemp(prefix="kkobot-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.destroy)

    @property
    def address(self) -> RedisAddress:
        return RedisAddress("127.0.0.1", self.port)

    def start(self, timeout: float = 10.0) -> None:
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not ping("127.0.0.1", self.port, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"private redis-server did not start:\n{self.logTail()}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logTail(self, lines: int = 20) -> str:
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
