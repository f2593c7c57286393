"""Schedule slots: a job's firing at one slot time happens on one instance of the deployment."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.cluster.interfaces import ISlotClaims
from kkobot.cluster.keys import Keys
from kkobot.cluster.link import isUnavailable
from kkobot.cluster.presence import millis

# A claimed slot is remembered this long: past any clock skew or retry.
SLOT_TTL_SECONDS = 24 * 3600.0


@implementer(ISlotClaims)
class SlotClaims:
    """
    C{SET slot owner NX PX ttl GET}: the first instance to ask fires the slot.

    While Redis is down, the instance whose name sorts first among those alive at
    the last heartbeat fires: with a stable membership that is still one firing per
    slot; an instance that died during the outage takes its slots with it until
    Redis is back. With C{link=None} (one process) every claim succeeds.
    """

    def __init__(self, link: Any, keys: Keys, instance: str, incarnation: str, presence: Any) -> None:
        self.link = link
        self.keys = keys
        self.instance = instance
        self.incarnation = incarnation
        self.presence = presence

    def _leader(self) -> bool:
        return min(self.presence.liveInstances() or [self.instance]) == self.instance

    def claim(self, jobKey: str, slotTime: float) -> defer.Deferred[bool]:
        if self.link is None:
            return defer.succeed(True)
        if not self.link.up:
            return defer.succeed(self._leader())
        d = self.link.execute(
            "SET", self.keys.slot(jobKey, millis(slotTime)), self.incarnation,
            "NX", "PX", millis(SLOT_TTL_SECONDS), "GET",
        )

        def decided(previous: str | None) -> bool:
            return previous is None or previous == self.incarnation

        def failed(failure: Failure) -> Any:
            return self._leader() if isUnavailable(failure) else failure

        return d.addCallbacks(decided, failed)
