"""Who sends one slot of one schedule: a claim row in kb_schedule_logs, optionally behind the cluster's slot claim."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from kkobot.announcements.store import Claim, ScheduleStore

_EPOCH = datetime(1970, 1, 1)


class ISendClaims(Interface):
    """Decides that a schedule's slot is sent once: across restarts and across instances."""

    def claim(claim, finalStatus):
        """
        A Deferred of the id of the send row now written for C{claim} (this caller
        sends it), or of None (sent or being sent already, or the schedule changed).
        C{finalStatus} is the schedule's status to set with it ("completed" after its
        last slot), or None.
        """


@implementer(ISendClaims)
class DatabaseClaims:
    """The send row itself is the claim: written before sending, in a transaction that locks the schedule."""

    def __init__(self, store: ScheduleStore) -> None:
        self.store = store

    def claim(self, claim: Claim, finalStatus: str | None) -> defer.Deferred[int | None]:
        return self.store.claim(claim, finalStatus)


def slotKey(claim: Claim) -> tuple[str, float]:
    """The cluster job key and slot time of a claim: the same on every instance, whatever its time zone."""
    return f"announcement:{claim.scheduleId}", (claim.slot - _EPOCH).total_seconds()


@implementer(ISendClaims)
class ClusterFirstClaims:
    """
    The cluster's slot claim (L{kkobot.cluster.interfaces.ISlotClaims}, one Redis
    SET NX) decides among live instances without touching the database; its winner
    then writes the claim row, which alone decides across restarts.
    """

    def __init__(self, slots: Any, inner: Any) -> None:
        self.slots = slots
        self.inner = inner

    @defer.inlineCallbacks
    def claim(self, claim: Claim, finalStatus: str | None):
        key, at = slotKey(claim)
        won = yield self.slots.claim(key, at)
        if not won:
            return None
        logId = yield self.inner.claim(claim, finalStatus)
        return logId


def claimsFor(store: ScheduleStore, slots: Any = None) -> Any:
    """The claim step: the database's, behind the cluster's slot claims when there is a cluster."""
    own = DatabaseClaims(store)
    return own if slots is None else ClusterFirstClaims(slots, own)
