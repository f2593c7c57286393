"""Open bridge connections brought in line with a device's new status: told, or closed."""

from __future__ import annotations

from typing import Any, Callable

from kkobot import __version__
from kkobot.bridge.devicestate import Key
from kkobot.logs import Logger

log = Logger()


def applyDeviceStatus(
    factory: Any, bot: str, device: str, status: str,
    keyOf: Callable[[str, str | None], Key] | None = None,
) -> None:
    """
    Bring open connections of one device in line with its new status.

    C{keyOf} names a connection's device the way the store does (L{DeviceStore.key}),
    so a clipped id, or a table with one row per device, still finds it.
    Approved or pending: the client learns it from a fresh C{handshakeComplete}
    (3.2.x clients log it). Denied, revoked, blocked: the connection is closed.
    """
    for proto in list(factory.connections):
        client = proto.client
        if client is None or not client.verified:
            continue  # it has proved nothing yet, so it is told nothing (security.md)
        if keyOf is not None:
            if keyOf(client.botName, client.deviceID) != (bot, device):
                continue
        elif client.botName != bot or client.deviceID != device:
            continue
        if status in ("denied", "revoked", "blocked"):
            log.warn(
                "[AUTH] closing {bot} ({device}) from {address}: device is now {status}",
                bot=client.botName, device=client.deviceID, address=proto.address,
                status=status,
            )
            proto.sendEvent("handshakeComplete", {
                "success": False, "approved": False,
                "message": f"device {client.deviceID} is {status} on this server",
                "server_version": __version__,
            })
            proto.disconnect()
            continue
        approved = status == "approved"
        if client.approved != approved:
            client.approved = approved
            factory.registry.changed(client)
            log.info("[AUTH] {bot} ({device}) is now {status}", bot=client.botName,
                     device=client.deviceID, status=status)
            proto.sendEvent("handshakeComplete", {
                "success": True, "approved": approved,
                "message": "ok" if approved else f"device {client.deviceID} is {status}",
                "server_version": __version__,
            })
