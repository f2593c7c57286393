"""The server's part in a deployment: its ClusterNode, fed by the connection registry, and the shared stores."""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service

from kkobot import __version__
from kkobot.cluster.node import ClusterNode
from kkobot.logs import Logger

log = Logger()


def _logFailure(failure: Any, what: str) -> None:
    log.failure("[SERVER] {what} failed", failure, what=what)


class PresenceFeed(Service):
    """
    Tells the node of every connection the registry gains, loses or sees approved
    (or stepped back): presence is written to Redis, and messages waiting for the
    bot go out.
    """

    def __init__(self, node: ClusterNode, registry: Any, clock: Any) -> None:
        self.node = node
        self.registry = registry
        self.clock = clock
        # Connections added and not gone yet (a removal may come before _added runs).
        self._present: set[int] = set()
        registry.listeners.append(self)

    def clientAdded(self, client: Any) -> None:
        self._present.add(client.connectionId)
        # After the protocol's own step (it answers the handshake right after adding
        # the client): messages waiting for the bot come after that answer.
        self.clock.callLater(0, self._added, client)

    def _added(self, client: Any) -> None:
        if client.connectionId not in self._present:
            return  # gone already
        self.node.clientAdded(client).addErrback(_logFailure, "recording a connection")

    def clientChanged(self, client: Any) -> None:
        self.node.clientChanged(client).addErrback(_logFailure, "recording an approval")

    def clientRemoved(self, client: Any) -> None:
        self._present.discard(client.connectionId)
        self.node.clientRemoved(client).addErrback(_logFailure, "recording a disconnection")


class _EveryUseFirst:
    """The shared replay check's local step: this process's guard already answered."""

    def firstUse(self, sig: str, connectionId: int, stampSeconds: float) -> bool:
        return True


def buildNode(resolved: Any, outbound: Any, reactor: Any) -> ClusterNode:
    """The node (one process or a deployment), with the outbound queue kept under var/."""
    settings = resolved.cluster
    node = ClusterNode(
        settings,
        outbound.deliver,
        reactor=reactor,
        info={"version": __version__, "endpoint": resolved.endpoint},
        outboxDir=resolved.outboxDir,
        maxQueued=resolved.get("outbound.max_queued", 10_000),
    )
    node.router.waitSeconds = resolved.get("outbound.wait_seconds", settings.outboundWait)
    outbound.router = node.router
    return node


def shareState(node: ClusterNode, authenticator: Any, dispatcher: Any, scheduler: Any) -> None:
    """With a Redis: replay guard, cooldowns and schedule slots become the deployment's."""
    if not node.settings.enabled:
        return
    if hasattr(authenticator, "sharedReplays"):
        authenticator.sharedReplays = node.replayCheck(_EveryUseFirst(), authenticator.window)
    dispatcher.cooldownStore = node.cooldownStore()
    scheduler.slots = node.slots


def closeAddress(factory: Any, address: str) -> None:
    """Drop every connection from C{address} (banned by the deployment)."""
    for proto in list(factory.connections):
        if proto.address == address:
            proto.disconnect()
