"""Outbound messages handled in this process alone: while Redis is down, or with no Redis at all."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime

from kkobot.cluster.message import DELIVERED, QUEUED, UNDELIVERED, MessageStatus, RoutedMessage, SendResult

# States remembered by id (and ids a resend is recognised by).
REMEMBERED = 100_000


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
    ) -> None:
        self.instance = instance
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
        self.held[message.id] = Held(message, requeue)
        self.record(message, QUEUED)
        return SendResult(message.id, "waiting", QUEUED, None)

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

    def botArrived(self, botName: str, alreadyWritten: Any = ()) -> None:
        """A connection of C{botName} is now held here: its held messages go out, in order."""
        for messageId, held in list(self.held.items()):
            if held.message.botName != botName or messageId in alreadyWritten:
                continue
            if self.deliverHere(held.message):
                del self.held[messageId]
                self.record(held.message, DELIVERED, deliveredBy=self.instance)

    def expire(self, alreadyWritten: Any = ()) -> None:
        """Report held messages past their deadline undelivered."""
        now = self.clock.seconds()
        for messageId, held in list(self.held.items()):
            if messageId in alreadyWritten:
                del self.held[messageId]
            elif now >= held.message.deadline:
                del self.held[messageId]
                self.hold(held.message)  # records and reports it undelivered

    def takeAll(self) -> list[Held]:
        """Every held message, handed to the router now that Redis is back."""
        held, self.held = list(self.held.values()), OrderedDict()
        return held
