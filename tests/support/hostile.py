"""Helpers for hostile-client tests: the real service in-process, bridge clients, probes."""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any, Callable

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver

from kkobot import logs
from kkobot.service import KkobotService, Settings, makeService
from tests.support import HELLO_320, analyze, line, waitUntil


def rssBytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for row in f:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) * 1024
    raise KeyError("VmRSS")


def openFds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class BridgeClient(LineReceiver):
    """A test bridge: records every event; lets a test wait for one."""

    delimiter = b"\n"
    MAX_LENGTH = 64 * 1024 * 1024

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._waiters: list[tuple[Callable[[dict], bool], defer.Deferred]] = []
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.connected = False

    def connectionMade(self) -> None:
        self.connected = True

    def lineReceived(self, raw: bytes) -> None:
        event = json.loads(raw)
        self.events.append(event)
        for waiter in list(self._waiters):
            if waiter[0](event):
                self._waiters.remove(waiter)
                waiter[1].callback(event)

    def connectionLost(self, reason: Any = None) -> None:
        self.connected = False
        for _, d in self._waiters:
            d.errback(AssertionError(f"connection lost while waiting: {reason}"))
        self._waiters = []
        self.lost.callback(None)

    def waitFor(self, predicate: Callable[[dict], bool], timeout: float = 20.0) -> defer.Deferred:
        for event in self.events:
            if predicate(event):
                return defer.succeed(event)
        d: defer.Deferred = defer.Deferred()
        self._waiters.append((predicate, d))
        d.addTimeout(timeout, reactor)
        return d

    def errors(self) -> list[str]:
        return [e["data"]["code"] for e in self.events if e.get("event") == "error"]

    def send(self, obj: dict[str, Any]) -> None:
        self.transport.write(line(obj))

    @defer.inlineCallbacks
    def handshake(self, hello: dict[str, Any] = HELLO_320):
        self.send(hello)
        yield self.waitFor(lambda e: e.get("event") == "handshakeComplete")

    @defer.inlineCallbacks
    def echo(self, tag: str, timeout: float = 20.0):
        """One `# echo` round trip; its latency in seconds."""
        started = time.perf_counter()
        self.send(analyze("# echo " + tag))
        want = "에코: " + tag
        yield self.waitFor(
            lambda e: e.get("event") == "messageResponse" and e["data"].get("text") == want,
            timeout,
        )
        return time.perf_counter() - started


def connect(port: int, factory: Callable[[], BridgeClient] = BridgeClient) -> defer.Deferred:
    return connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), factory())


class Server:
    """The real kkobot service (embedded default: SQLite in a temp dir) on a free port."""

    def __init__(self, base: str, logLevel: str = "warn", logDir: str | None = None) -> None:
        os.makedirs(base, exist_ok=True)
        settings = Settings(
            port="tcp:0:interface=127.0.0.1",
            configDir=os.path.join(base, "cfg"),
            logLevel=logLevel,
            logDir=logDir,
            varDir=os.path.join(base, "var"),
            dropinDir=os.path.join(base, "plugins"),
        )
        self.service: KkobotService = makeService(settings)
        self.factory = self.service.factory
        self.port = 0

    @defer.inlineCallbacks
    def start(self):
        self.service.startService()
        listening = yield self.service.server.whenListening()
        self.port = listening.getHost().port
        yield waitUntil(lambda: self.service.chatlog.ready, what="the chat log")

    @defer.inlineCallbacks
    def stop(self):
        try:
            yield self.service.stopService()
            yield waitUntil(lambda: not self.factory.connections, what="connections to close")
        finally:
            logs.setLevel("info")


class LatencyProbe:
    """A well-behaved bridge doing `# echo` round trips, before and during abuse."""

    def __init__(self, client: BridgeClient) -> None:
        self.client = client
        self.baseline: list[float] = []
        self.during: list[float] = []
        self._running = False
        self._loop: defer.Deferred | None = None
        self._n = 0

    @defer.inlineCallbacks
    def measureBaseline(self, rounds: int = 30):
        for _ in range(rounds):
            self._n += 1
            self.baseline.append((yield self.client.echo(f"base-{self._n}")))

    def start(self) -> None:
        self._running = True
        self._loop = self._run()

    @defer.inlineCallbacks
    def _run(self):
        while self._running:
            self._n += 1
            self.during.append((yield self.client.echo(f"probe-{self._n}")))

    @defer.inlineCallbacks
    def stop(self):
        self._running = False
        if self._loop is not None:
            loop, self._loop = self._loop, None
            yield loop

    def check(self, testCase: Any, factor: float = 50.0) -> dict[str, float]:
        """
        Every probe was answered (a lost one fails C{stop}); the median during the abuse
        is within C{factor} of the baseline median. The hostile clients run in this same
        process and reactor, so their own work is in the figure; the floor (250 ms) keeps a
        busy 2-core machine from failing a test that has nothing wrong.
        """
        testCase.assertGreater(len(self.during), 0)
        base = statistics.median(self.baseline)
        during = statistics.median(self.during)
        testCase.assertLessEqual(during, max(base * factor, 0.25), (base, during))
        return {"baseline_ms": base * 1000, "during_ms": during * 1000, "probes": len(self.during)}
