"""Pings on one bridge connection: ours on a timer, the bridge's answers (round trips, monitoring) and its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet import task

from kkobot.bridge import wire
from kkobot.logs import Logger

if TYPE_CHECKING:
    from kkobot.bridge.protocol import BridgeProtocol

log = Logger()

# Our recent ping timestamps are remembered to tell an answer from an unprompted ping.
PINGS_REMEMBERED = 4

# An unprompted ping is answered only if we have not pinged this recently, so a
# bridge that answers our ping with a ping of its own cannot start a ping-pong.
UNPROMPTED_PING_GAP = 5.0


class Pings:
    """Sends a connection's pings every interval and takes in the bridge's."""

    def __init__(self, proto: BridgeProtocol) -> None:
        self.proto = proto
        self._sent: list[int] = []
        self._lastSentAt = float("-inf")
        self._loop: task.LoopingCall | None = None

    def start(self, interval: float, now: bool) -> None:
        """Ping every C{interval} seconds from now on (C{now}: the first one at once)."""
        self._loop = task.LoopingCall(self.send)
        self._loop.clock = self.proto.factory.clock
        self._loop.start(interval, now=now)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def send(self) -> None:
        proto = self.proto
        assert proto.client is not None
        stamp = proto.out.nowMillis()
        self._sent = (self._sent + [stamp])[-PINGS_REMEMBERED:]
        self._lastSentAt = proto.factory.clock.seconds()
        proto.sendEvent("ping", {"bot_name": proto.client.botName, "server_timestamp": stamp})

    def received(self, ping: wire.Ping) -> None:
        """A verified ping (or 3.3 `pong`) from the bridge."""
        proto = self.proto
        client = proto.handshake.client
        assert client is not None
        rtt = None
        if ping.server_timestamp is not None and ping.server_timestamp in self._sent:
            rtt = proto.out.nowMillis() - ping.server_timestamp
            client.lastRttMillis = rtt
        client.lastPingAt = proto.factory.clock.seconds()
        status = ping.monitoring if ping.monitoring is not None else ping.client_status
        if status is not None:
            client.monitoring = status
        log.debug(
            "[PING] {bot} from {address} rtt={rtt}ms",
            bot=client.botName,
            address=proto.address,
            rtt=rtt,
        )
        proto.factory.handler.handlePing(client, ping, rtt)
        if (
            rtt is None
            and client.lastPingAt - self._lastSentAt >= UNPROMPTED_PING_GAP
            and not isinstance(ping, wire.Pong)
        ):
            # Older bridges ping on their own and expect a ping back (a 3.3 `pong`
            # is always an answer, if to a ping we no longer remember).
            self.send()
