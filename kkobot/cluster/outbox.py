"""Outbound messages handled in this process alone: while Redis is down, or with no Redis at all."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime

from kkobot.cluster.message import DELIVERED, QUEUED, UNDELIVERED, MessageStatus, RoutedMessage, SendResult
from kkobot.logs import Logger

log = Logger()

# States remembered by id (and ids a resend is recognised by), at most this many, for
# at most RETENTION seconds (what Redis keeps a message's state for).
REMEMBERED = 100_000
RETENTION = 3600.0


@dataclass
class Held:
    """A message waiting in this process for its bot, or for Redis to route it."""

    message: RoutedMessage
    # Redis recorded it delivered here before the local write failed: it goes back
    # through lua.REQUEUE, not lua.SEND.
    requeue: bool = False


class LocalOutbox:
    """
    Writes a message to a local connection of its bot, or holds it until the bot
    connects here, Redis is back (the router then takes the held ones), or its
    deadline passes (then it is reported undelivered). Keeps the state of each such
    message by id.
    """

    def __init__(
        self,
        instance: str,
        clock: IReactorTime,
        deliverHere: Callable[[RoutedMessage], bool],
        onUndelivered: Callable[[RoutedMessage, str], None],
        clustered: bool,
        store: Any = None,
        limit: int = 10_000,
    ) -> None:
        self.instance = instance
        # An OutboxFile (what is held survives a restart), or None (memory only).
        self.store = store
        self.limit = limit
        self.clock = clock
        self.deliverHere = deliverHere
        self.onUndelivered = onUndelivered
        self.clustered = clustered
        self.held: OrderedDict[str, Held] = OrderedDict()
        self.states: OrderedDict[str, MessageStatus] = OrderedDict()

    def known(self, messageId: str) -> SendResult | None:
        """A 'duplicate' answer when this process has seen C{messageId} before."""
        state = self.states.get(messageId)
        if state is None and messageId not in self.held:
            return None
        return SendResult(messageId, "duplicate", state.state if state else QUEUED, self.instance)

    def send(self, message: RoutedMessage) -> SendResult:
        if self.deliverHere(message):
            self.record(message, DELIVERED, deliveredBy=self.instance)
            return SendResult(message.id, "delivered", DELIVERED, self.instance)
        return self.hold(message)

    def hold(self, message: RoutedMessage, requeue: bool = False) -> SendResult:
        if self.clock.seconds() >= message.deadline:
            reason = self._reason(message)
            self.record(message, UNDELIVERED, reason=reason)
            self.onUndelivered(message, reason)
            return SendResult(message.id, "undelivered", UNDELIVERED, None, reason)
        if message.id not in self.held and len(self.held) >= self.limit:
            reason = f"the outbound queue is full ({self.limit} messages wait for absent bots)"
            self.record(message, UNDELIVERED, reason=reason)
            self.onUndelivered(message, reason)
            return SendResult(message.id, "undelivered", UNDELIVERED, None, reason)
        if message.id not in self.held:
            log.info("[MSG] message {id} to {bot} | {room} waits for its bot (up to {wait:.0f} s)",
                     id=message.id, bot=message.botName, room=message.room,
                     wait=max(0.0, message.deadline - self.clock.seconds()))
        self.held[message.id] = Held(message, requeue)
        if self.store is not None:
            self.store.held(message, requeue)
        self.record(message, QUEUED)
        return SendResult(message.id, "waiting", QUEUED, None)

    def _release(self, messageId: str, state: str | None = None, reason: str | None = None) -> None:
        self.held.pop(messageId, None)
        if self.store is not None:
            self.store.released(messageId, state, reason)

    def restore(self) -> int:
        """Hold again what the store kept from the last run; the number held."""
        if self.store is None:
            return 0
        count = 0
        for kept in self.store.load():
            message = kept.message
            if kept.state is not None:
                self.record(message, kept.state, reason=kept.reason)
            elif self.clock.seconds() >= message.deadline:
                reason = self._reason(message) + " (it expired while this instance was stopped)"
                self.store.released(message.id, UNDELIVERED, reason)
                self.record(message, UNDELIVERED, reason=reason)
                self.onUndelivered(message, reason)
            else:
                self.held[message.id] = Held(message, kept.requeue)
                self.record(message, QUEUED)
                count += 1
        return count

    def _reason(self, message: RoutedMessage) -> str:
        if not self.clustered:
            return f"bot {message.botName} was not connected before the deadline"
        return (
            f"bot {message.botName} was not connected to this instance before the deadline, "
            "and Redis was unreachable"
        )

    def record(self, message: RoutedMessage, state: str, **kw: Any) -> None:
        self.states[message.id] = MessageStatus(
            id=message.id, state=state, botName=message.botName, room=message.room,
            created=message.created, deadline=message.deadline, origin=message.origin,
            deliveredAt=self.clock.seconds() if state == DELIVERED else None, **kw,
        )
        self.states.move_to_end(message.id)
        while len(self.states) > REMEMBERED:
            self.states.popitem(last=False)
        # States are readable for RETENTION seconds (as in Redis); the oldest change first.
        cutoff = self.clock.seconds() - RETENTION
        while self.states:
            oldest = next(iter(self.states.values()))
            if oldest.id in self.held or (oldest.deliveredAt or oldest.created) > cutoff:
                break
            self.states.popitem(last=False)

    def botArrived(self, botName: str, alreadyWritten: Any = ()) -> None:
        """A connection of C{botName} is now held here: its held messages go out, in order."""
        for messageId, held in list(self.held.items()):
            if held.message.botName != botName or messageId in alreadyWritten:
                continue
            if self.deliverHere(held.message):
                self._release(messageId, DELIVERED)
                self.record(held.message, DELIVERED, deliveredBy=self.instance)

    def expire(self, alreadyWritten: Any = ()) -> None:
        """Report held messages past their deadline undelivered."""
        now = self.clock.seconds()
        for messageId, held in list(self.held.items()):
            if messageId in alreadyWritten:
                self._release(messageId, DELIVERED)
            elif now >= held.message.deadline:
                self._release(messageId, UNDELIVERED, self._reason(held.message))
                self.hold(held.message)  # records and reports it undelivered

    def takeAll(self) -> list[Held]:
        """Every held message, handed to the router now that Redis is back."""
        held = list(self.held.values())
        for entry in held:
            self._release(entry.message.id)
        return held
