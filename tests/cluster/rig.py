"""Instances and phones for cluster tests: ClusterNodes on the real Redis, phones as ClientInfos."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.trial import unittest

from kkobot.cluster.message import RoutedMessage
from kkobot.cluster.node import ClusterNode
from kkobot.cluster.settings import ClusterSettings, RedisAddress
from kkobot.bridge.registry import ClientInfo
from tests.support.redisrig import deletePrefix, requireRedis, scratchKeys, startedLink

# Anything a test waits for on the real reactor comes within this, or the test fails.
WAIT = 10.0


class Phones:
    """The phones connected to one instance: what its local send reaches."""

    def __init__(self) -> None:
        self.clients: dict[str, ClientInfo] = {}
        self.received: list[RoutedMessage] = []
        self._waiters: list[tuple[int, defer.Deferred[list[RoutedMessage]]]] = []

    def deliver(self, message: RoutedMessage) -> bool:
        if message.botName not in self.clients:
            return False
        self.received.append(message)
        for entry in list(self._waiters):
            if len(self.received) >= entry[0]:
                self._waiters.remove(entry)
                entry[1].callback(list(self.received))
        return True

    def whenReceived(self, count: int = 1) -> defer.Deferred[list[RoutedMessage]]:
        if len(self.received) >= count:
            return defer.succeed(list(self.received))
        d: defer.Deferred[list[RoutedMessage]] = defer.Deferred()
        self._waiters.append((count, d))
        return d.addTimeout(WAIT, reactor)

    def texts(self) -> list[str]:
        return [m.text for m in self.received]


class ClusterCase(unittest.TestCase):
    """Nodes named A, B, C... on one task.Clock, all under this test's own key prefix."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        self.address: RedisAddress = requireRedis()
        self.keys = scratchKeys()
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.admin = yield startedLink(self.address)
        self.addCleanup(self.admin.stop)
        self.addCleanup(deletePrefix, self.admin, self.keys)
        self.nodes: dict[str, ClusterNode] = {}
        self.phones: dict[str, Phones] = {}

    def settings(self, name: str, address: RedisAddress | None = None, **kw: Any) -> ClusterSettings:
        return ClusterSettings(
            redis=address or self.address, instance=name, keyPrefix=self.keys.prefix, **kw
        )

    @defer.inlineCallbacks
    def startNode(self, name: str, address: RedisAddress | None = None, **kw: Any):
        """A started node whose presence is registered; stopped (leaving) at cleanup."""
        phones = self.phones.setdefault(name, Phones())
        node = ClusterNode(self.settings(name, address, **kw), phones.deliver, clock=self.clock)
        self.nodes[name] = node
        node.startService()
        self.addCleanup(self.stopNode, name)
        yield node.link.whenUp()
        yield node.presence.register()
        return node

    def stopNode(self, name: str) -> defer.Deferred[Any]:
        node = self.nodes[name]
        if not node.running:
            return defer.succeed(None)
        return node.stopService()

    @defer.inlineCallbacks
    def kill(self, name: str):
        """As kill -9 does: connections close, nothing is handed on or deregistered."""
        node = self.nodes[name]
        node.running = False
        if node._loop is not None and node._loop.running:
            node._loop.stop()
        node.inbox.running = False
        yield node.readerLink.stop()
        yield node.link.stop()

    @defer.inlineCallbacks
    def settle(self):
        """Let heartbeat work still running finish (it started at an earlier clock time)."""
        for node in self.nodes.values():
            if node._ticking is not None:
                yield node._ticking

    def connect(self, name: str, bot: str, since: float | None = None) -> defer.Deferred[int]:
        """A phone of C{bot} handshakes with instance C{name}."""
        phones = self.phones[name]
        client = ClientInfo(
            botName=bot, version="3.3.0", clientType="MessengerBotR", deviceID=f"dev-{bot}",
            address="127.0.0.1", connectedSince=since if since is not None else self.clock.seconds(),
        )
        phones.clients[bot] = client
        return self.nodes[name].clientAdded(client)

    def disconnect(self, name: str, bot: str) -> defer.Deferred[int]:
        client = self.phones[name].clients.pop(bot)
        return self.nodes[name].clientRemoved(client)

    @defer.inlineCallbacks
    def tick(self, *names: str, seconds: float = 1.0):
        """Advance the shared clock and run each named node's heartbeat work."""
        yield self.settle()
        self.clock.advance(seconds)
        for name in names or list(self.nodes):
            if self.nodes[name].running:
                yield self.nodes[name].tick()
