"""Connection limits: total and per address, and refusing addresses that keep failing auth."""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.interfaces import IReactorTime

from kkobot.logs import Logger
from kkobot.bridge.protocol import BridgeFactory, BridgeProtocol

log = Logger()

# Several phones often share one home router, so per-address limits stay generous.
DEFAULT_MAX_CONNECTIONS = 5000
DEFAULT_MAX_PER_ADDRESS = 100
DEFAULT_MAX_FAILURES = 10
DEFAULT_FAILURE_WINDOW = 60.0
DEFAULT_BAN_SECONDS = 300.0


class ConnectionLimits:
    """
    The bookkeeping behind the limits, independent of sockets.

    An address with C{maxFailures} auth failures within C{failureWindow} seconds is
    refused for C{banSeconds}.
    """

    def __init__(
        self,
        clock: IReactorTime,
        maxConnections: int = DEFAULT_MAX_CONNECTIONS,
        maxPerAddress: int = DEFAULT_MAX_PER_ADDRESS,
        maxFailures: int = DEFAULT_MAX_FAILURES,
        failureWindow: float = DEFAULT_FAILURE_WINDOW,
        banSeconds: float = DEFAULT_BAN_SECONDS,
    ) -> None:
        self.clock = clock
        self.maxConnections = maxConnections
        self.maxPerAddress = maxPerAddress
        self.maxFailures = maxFailures
        self.failureWindow = failureWindow
        self.banSeconds = banSeconds
        self._failures: dict[str, deque[float]] = {}
        self._bannedUntil: dict[str, float] = {}

    def refusal(self, address: str, total: int, fromAddress: int) -> str | None:
        """Why a new connection is refused, given the connections already open."""
        now = self.clock.seconds()
        until = self._bannedUntil.get(address)
        if until is not None:
            if until > now:
                return (
                    f"too many auth failures from {address}: refused for "
                    f"{until - now:.0f} more s"
                )
            del self._bannedUntil[address]
        if total >= self.maxConnections:
            return f"the server is full ({self.maxConnections} connections)"
        if fromAddress >= self.maxPerAddress:
            return f"too many connections from {address} (limit {self.maxPerAddress})"
        return None

    def failed(self, address: str) -> bool:
        """Count one auth failure; True when the address is now refused."""
        now = self.clock.seconds()
        times = self._failures.setdefault(address, deque())
        times.append(now)
        while times and times[0] <= now - self.failureWindow:
            times.popleft()
        if len(times) < self.maxFailures:
            return False
        del self._failures[address]
        self._bannedUntil[address] = now + self.banSeconds
        return True

    def forget(self) -> None:
        """Drop bookkeeping that has expired (keeps memory bounded under scans)."""
        now = self.clock.seconds()
        for address in [a for a, t in self._failures.items() if not t or t[-1] <= now - self.failureWindow]:
            del self._failures[address]
        for address in [a for a, until in self._bannedUntil.items() if until <= now]:
            del self._bannedUntil[address]


class LimitedBridgeFactory(BridgeFactory):
    """A L{BridgeFactory} that applies L{ConnectionLimits}."""

    def __init__(self, handler: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        BridgeFactory.__init__(self, handler, **kwargs)
        self.limits = limits
        self._forgetCountdown = 0

    def admitConnection(self, proto: BridgeProtocol) -> str | None:
        # Counting on demand costs one pass over the open connections; a per-address
        # counter would need a hook in connectionLost.
        address = proto.address
        fromAddress = sum(1 for p in self.connections if p.address == address)
        self._forgetCountdown -= 1
        if self._forgetCountdown <= 0:
            self._forgetCountdown = 1000
            self.limits.forget()
        return self.limits.refusal(address, len(self.connections), fromAddress)

    def authFailed(self, proto: BridgeProtocol) -> bool:
        if not self.limits.failed(proto.address):
            return False
        log.warn(
            "[AUTH] {address}: {count} auth failures within {window:.0f} s; dropping the "
            "connection and refusing the address for {ban:.0f} s",
            address=proto.address,
            count=self.limits.maxFailures,
            window=self.limits.failureWindow,
            ban=self.limits.banSeconds,
        )
        return True
