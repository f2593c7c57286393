"""A server-side bridge connection on a StringTransport, with HMAC auth and a task.Clock."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from kkobot.bridge.auth import HmacAuthenticator
from kkobot.commands import CommandRegistry
from kkobot.bridge.limits import ConnectionLimits, LimitedBridgeFactory
from kkobot.commands.permissions import Permissions
from kkobot.commands.router import MessageRouter
from kkobot.testing import MemoryChatLog
from tests.support import HELLO_320, line, sign

# 2026-11-25 19:25:10 +09:00, the day of PROTOCOL.md's sample lines.
NOW = 1795602310.0
SECRET = "s3cr3t-Vn3xQ-test-only"
SALT = "9f2c1e0b7a6d5c4b"
DEVICE = "5f3c2a1b9d8e7f60"


def signedAuth(
    stampMillis: int | None = None,
    secret: str = SECRET,
    salt: str = SALT,
    drop: tuple[str, ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    """`auth` as a 3.2.0 bridge sends it, signed with the test-only signer."""
    auth: dict[str, Any] = {
        "clientType": "MessengerBotR",
        "botName": "kkobot",
        "deviceUUID": DEVICE,
        "deviceID": DEVICE,
        "macAddress": "02:00:00:00:00:00",
        "ipAddress": "127.0.0.1",
        "timestamp": int(NOW * 1000) + 517 if stampMillis is None else stampMillis,
        "version": "3.2.0",
    }
    auth.update(fields)
    for name in drop:
        auth.pop(name, None)
    auth["signature"] = sign(secret, salt, auth)
    return auth


def signedPing(**auth: Any) -> dict[str, Any]:
    """A 3.2.0 bridge's answer to a server ping, signed."""
    return {"event": "ping", "data": {"bot_name": "kkobot", "server_timestamp": 1,
                                      "auth": signedAuth(**auth)}}


class MemoryDevices:
    """The two calls the authenticator makes of a DeviceStore, kept in a dict."""

    def __init__(self, autoApprove: bool = True, statuses: dict | None = None) -> None:
        self.autoApprove = autoApprove
        self.statuses: dict[tuple[str, str], str] = dict(statuses or {})
        self.registered: list[tuple[str, str]] = []

    def status(self, bot: str, device: str | None) -> str | None:
        return self.statuses.get((bot, device)) if device else None

    def lookup(self, bot: str, device: str) -> defer.Deferred[str | None]:
        return defer.succeed(self.status(bot, device))

    def register(self, bot: str, device: str, **info: Any) -> defer.Deferred[str]:
        self.registered.append((bot, device))
        status = self.statuses.setdefault(
            (bot, device), "approved" if self.autoApprove else "pending"
        )
        return defer.succeed(status)


class Connection:
    def __init__(self, proto: Any, transport: StringTransport) -> None:
        self.proto = proto
        self.transport = transport
        self._read = 0

    def send(self, obj: dict[str, Any]) -> None:
        self.proto.dataReceived(line(obj))

    def received(self) -> list[dict[str, Any]]:
        """Every event received since the last call."""
        data = self.transport.value()
        fresh, self._read = data[self._read:], len(data)
        return [json.loads(x) for x in fresh.splitlines() if x.strip()]

    def replies(self, events: list[dict[str, Any]]) -> list[str]:
        return [e["data"]["text"] for e in events if e["event"] == "messageResponse"]

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting


def errors(events: list[dict[str, Any]], code: str | None = None) -> list[dict[str, Any]]:
    return [
        e["data"] for e in events
        if e["event"] == "error" and (code is None or e["data"]["code"] == code)
    ]


class Rig:
    """A factory with real auth, limits, router and echo command; fake time and sockets."""

    def __init__(
        self,
        credentials: dict[str, tuple[str, str]] | None = None,
        devices: MemoryDevices | None = None,
        limits: dict[str, Any] | None = None,
        commands: Any = None,
        permissions: Permissions | None = None,
    ) -> None:
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.chatlog = MemoryChatLog()
        if commands is None:
            commands = CommandRegistry(None)
            commands.load()
        self.router = MessageRouter(commands, self.chatlog, self.clock, permissions)
        self.credentials = {"kkobot": (SECRET, SALT)} if credentials is None else credentials
        self.devices = devices or MemoryDevices()
        self.auth = HmacAuthenticator(self.credentials.get, self.devices, self.clock)
        self.limits = ConnectionLimits(self.clock, **(limits or {}))
        self.factory = LimitedBridgeFactory(
            self.router, self.limits, authenticator=self.auth, clock=self.clock
        )
        self.open: list[Connection] = []

    def connect(self, address: str = "203.0.113.7", hello: dict | None = None) -> Connection:
        peer = IPv4Address("TCP", address, 40000 + len(self.open))
        proto = self.factory.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        proto.makeConnection(transport)
        conn = Connection(proto, transport)
        self.open.append(conn)
        if hello is not None:
            conn.send(hello)
        return conn

    def verified(self, address: str = "203.0.113.7", hello: dict | None = None,
                 **auth: Any) -> Connection:
        """A connection that handshook and proved itself with a signed ping; output read."""
        conn = self.connect(address, hello=hello or HELLO_320)
        conn.send(signedPing(**auth))
        conn.received()
        return conn

    def close(self) -> None:
        """Lose every connection and let pending timers run out."""
        for conn in self.open:
            if not conn.proto._gone:
                conn.proto.connectionLost(None)
        self.clock.advance(3600)
