"""Who is connected right now: one ClientInfo per verified bridge connection."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from kkobot.bridge.wireforms import JSON_LINES, IWireFormat

_ids = itertools.count(1)


@dataclass(eq=False)
class ClientInfo:
    """A connected bridge, as the admin page and outbound messages need to know it."""

    botName: str
    version: str
    clientType: str
    deviceID: str | None
    address: str
    connectedSince: float
    deviceInfo: str | None = None
    approved: bool = True
    # False until one of the connection's events is correctly signed (auth on): until
    # then it is not in the registry, so nothing is sent to it and nobody counts it.
    verified: bool = True
    # The device's status as the authenticator last read it (None: not checked).
    deviceStatus: str | None = None
    connectionId: int = field(default_factory=lambda: next(_ids))
    lastRttMillis: float | None = None
    lastPingAt: float | None = None
    monitoring: Mapping[str, Any] | None = None
    # Delivers one server line to this client's connection (set by the protocol).
    send: Callable[[bytes], None] | None = field(default=None, repr=False)
    # The form its lines are written in (JSON lines, or 3.3 header + raw): what
    # outbound messages are encoded with.
    form: IWireFormat = field(default=JSON_LINES, repr=False)

    def asDict(self) -> dict[str, Any]:
        return {
            "connection_id": self.connectionId,
            "bot_name": self.botName,
            "device_id": self.deviceID,
            "client_type": self.clientType,
            "version": self.version,
            "address": self.address,
            "connected_since": self.connectedSince,
            "device_info": self.deviceInfo,
            "approved": self.approved,
            "last_rtt_ms": self.lastRttMillis,
            "last_ping_at": self.lastPingAt,
            "monitoring": dict(self.monitoring) if self.monitoring else None,
        }


class ClientRegistry:
    """The set of verified clients; lookups by bot name for outbound messages."""

    def __init__(self) -> None:
        self._clients: dict[int, ClientInfo] = {}
        # Told of each change: objects with clientAdded / clientChanged / clientRemoved
        # (client) (the cluster's presence, the outbound queue).
        self.listeners: list[Any] = []

    def add(self, client: ClientInfo) -> None:
        if not client.verified:
            raise ValueError(f"connection {client.connectionId} is not verified yet")
        self._clients[client.connectionId] = client
        for listener in list(self.listeners):
            listener.clientAdded(client)

    def changed(self, client: ClientInfo) -> None:
        """C{client}'s approval changed (the device was approved, or stepped back)."""
        if client.connectionId in self._clients:
            for listener in list(self.listeners):
                listener.clientChanged(client)

    def remove(self, client: ClientInfo) -> None:
        if self._clients.pop(client.connectionId, None) is not None:
            for listener in list(self.listeners):
                listener.clientRemoved(client)

    def __iter__(self) -> Iterator[ClientInfo]:
        return iter(list(self._clients.values()))

    def __len__(self) -> int:
        return len(self._clients)

    def forBot(self, botName: str) -> list[ClientInfo]:
        """Connections of one bot, most recently connected first."""
        found = [c for c in self._clients.values() if c.botName == botName]
        found.sort(key=lambda c: c.connectedSince, reverse=True)
        return found
