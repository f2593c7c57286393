"""The replay guard across instances: a signature belongs to the first connection, deployment-wide."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.cluster.interfaces import IReplayCheck
from kkobot.cluster.keys import Keys
from kkobot.cluster.link import isUnavailable
from kkobot.cluster.presence import millis


@implementer(IReplayCheck)
class LocalReplayCheck:
    """One process: the synchronous guard (C{firstUse(sig, connectionId, stamp) -> bool})."""

    def __init__(self, guard: Any) -> None:
        self.guard = guard

    def firstUse(self, sig: str, connectionId: int, stampSeconds: float) -> defer.Deferred[bool]:
        return defer.succeed(self.guard.firstUse(sig, connectionId, stampSeconds))


@implementer(IReplayCheck)
class RedisReplayCheck:
    """
    The in-process guard first (it catches a replay on this instance without a
    round trip), then one C{SET sig owner NX PX ttl GET}: the owner is this process
    and connection, the entry lives as long as the signature's timestamp stays in
    the auth window. While Redis is down the in-process answer stands.
    """

    def __init__(
        self,
        link: Any,
        keys: Keys,
        incarnation: str,
        clock: IReactorTime,
        window: float,
        local: Any,
    ) -> None:
        self.link = link
        self.keys = keys
        self.incarnation = incarnation
        self.clock = clock
        self.window = window
        self.local = local

    def firstUse(self, sig: str, connectionId: int, stampSeconds: float) -> defer.Deferred[bool]:
        if not self.local.firstUse(sig, connectionId, stampSeconds):
            return defer.succeed(False)
        if not self.link.up:
            return defer.succeed(True)
        now = self.clock.seconds()
        ttl = max(1, millis(max(stampSeconds, now) + self.window - now))
        owner = f"{self.incarnation}/{connectionId}"
        d = self.link.execute("SET", self.keys.signature(sig), owner, "NX", "PX", ttl, "GET")

        def decided(previous: str | None) -> bool:
            return previous is None or previous == owner

        def failed(failure: Failure) -> Any:
            return True if isUnavailable(failure) else failure

        return d.addCallbacks(decided, failed)
