"""Outbound routing: a message for a bot goes to the instance holding it, waits for it, or is reported undelivered."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.cluster import lua
from kkobot.cluster.interfaces import IOutboundRouter
from kkobot.cluster.keys import Keys
from kkobot.cluster.link import isUnavailable
from kkobot.cluster.message import DELIVERED, QUEUED, MessageStatus, RoutedMessage, SendResult, newMessageId
from kkobot.cluster.outbox import REMEMBERED as REMEMBERED_IDS, LocalOutbox
from kkobot.cluster.presence import millis
from kkobot.logs import Logger

log = Logger()

# How long a message's state stays readable by id (and its id guards against a resend).
RETENTION_SECONDS = 3600.0
# Undelivered messages reported per pump.
PUMP_LIMIT = 500


def logUndelivered(message: RoutedMessage, reason: str) -> None:
    log.warn(
        "[MSG] message {id} to {bot} | {room} undelivered: {reason}",
        id=message.id,
        bot=message.botName,
        room=message.room,
        reason=reason,
    )


@implementer(IOutboundRouter)
class OutboundRouter:
    """
    Sends through Redis when it is up (lua.SEND: one round trip), else locally.

    C{deliver} is the server's local send (L{kkobot.cluster.interfaces.IDeliver}).
    While Redis is down, a message whose bot is not connected here is held in this
    process until Redis returns (then routed) or its deadline passes (then reported
    undelivered through C{onUndelivered}). With C{link=None} the router is the
    one-process variant of the same contract.
    """

    def __init__(
        self,
        link: Any,
        keys: Keys,
        instance: str,
        deliver: Callable[[RoutedMessage], bool],
        clock: IReactorTime,
        waitSeconds: float = 60.0,
        timeout: float = 5.0,
        onUndelivered: Callable[[RoutedMessage, str], None] = logUndelivered,
    ) -> None:
        self.link = link
        self.keys = keys
        self.instance = instance
        # This process, as opposed to an earlier run under the same instance name.
        self.incarnation = f"{instance}#{uuid.uuid4().hex[:8]}"
        self.deliver = deliver
        self.clock = clock
        self.waitSeconds = waitSeconds
        self.timeout = timeout
        self.onUndelivered = onUndelivered
        self.delivered: OrderedDict[str, None] = OrderedDict()
        self.outbox = LocalOutbox(instance, clock, self._deliverHere, self._undelivered,
                                  clustered=link is not None)

    @property
    def _up(self) -> bool:
        return self.link is not None and self.link.up

    # -- sending

    def send(
        self,
        botName: str,
        room: str,
        text: str,
        channelId: str | None = None,
        isGroupChat: bool = True,
        scheduled: bool = False,
        mediaWaitTime: int | None = None,
        messageId: str | None = None,
        waitSeconds: float | None = None,
    ) -> defer.Deferred[SendResult]:
        now = self.clock.seconds()
        wait = self.waitSeconds if waitSeconds is None else waitSeconds
        message = RoutedMessage(
            id=messageId or newMessageId(), botName=botName, room=room, text=text,
            channelId=channelId, isGroupChat=isGroupChat, scheduled=scheduled,
            mediaWaitTime=mediaWaitTime, origin=self.instance, created=now, deadline=now + wait,
        )
        # What went out (or waits) while Redis was down is known here only.
        known = self.outbox.known(message.id)
        if known is not None:
            return defer.succeed(known)
        return self._route(message)

    def _route(self, message: RoutedMessage) -> defer.Deferred[SendResult]:
        if not self._up:
            return defer.succeed(self.outbox.send(message))
        d = self.link.eval(lua.SEND, (), (
            self.keys.prefix, message.id, message.botName, message.toJSON(),
            millis(self.clock.seconds()), millis(self.timeout), millis(message.deadline),
            self.instance, millis(RETENTION_SECONDS), self.incarnation,
        ))
        d.addCallback(self._sent, message)
        d.addErrback(self._fallBack, message)
        return d

    def _sent(self, reply: list[Any], message: RoutedMessage) -> Any:
        outcome, state, target = reply[0], reply[1], reply[2] or None
        if outcome == "delivered":
            if self._deliverHere(message):
                return SendResult(message.id, "delivered", DELIVERED, self.instance)
            return self.requeue(message)
        reason = reply[3] if len(reply) > 3 else None
        if outcome == "undelivered":
            self.onUndelivered(message, reason)
        elif outcome == "waiting":
            log.info("[MSG] message {id} to {bot} | {room}: no instance holds the bot; it waits "
                     "(up to {wait:.0f} s)", id=message.id, bot=message.botName, room=message.room,
                     wait=max(0.0, message.deadline - self.clock.seconds()))
        return SendResult(message.id, outcome, state, target, reason)

    def _fallBack(self, failure: Failure, message: RoutedMessage) -> SendResult:
        if not isUnavailable(failure):
            return failure  # type: ignore[return-value]
        return self.outbox.send(message)

    def _undelivered(self, message: RoutedMessage, reason: str) -> None:
        self.onUndelivered(message, reason)

    @property
    def held(self) -> Any:
        """Messages held in this process (Redis down), by id."""
        return self.outbox.held

    def _deliverHere(self, message: RoutedMessage) -> bool:
        try:
            ok = bool(self.deliver(message))
        except Exception:
            log.failure("[MSG] local delivery of message {id} failed", id=message.id)
            return False
        if ok:
            self.delivered[message.id] = None
            while len(self.delivered) > REMEMBERED_IDS:
                self.delivered.popitem(last=False)
        return ok

    def deliverTaken(self, message: RoutedMessage, mine: bool = False) -> defer.Deferred[Any]:
        """
        Deliver an inbox entry this instance took (Redis records it delivered here).
        C{mine}: Redis says this process took it before (a reply lost with the
        connection): written only if this process did not write it then.
        """
        if mine and message.id in self.delivered:
            return defer.succeed(None)
        if self._deliverHere(message):
            return defer.succeed(None)
        return self.requeue(message)

    def requeue(self, message: RoutedMessage) -> defer.Deferred[SendResult]:
        """The local write failed after Redis recorded it delivered here: route it elsewhere."""
        if not self._up:
            return defer.succeed(self.outbox.hold(message, requeue=True))
        d = self.link.eval(lua.REQUEUE, (), (
            self.keys.prefix, message.id, self.incarnation, millis(self.clock.seconds()),
            millis(self.timeout), self.instance,
        ))

        def requeued(reply: list[Any]) -> SendResult:
            outcome, state, target = reply[0], reply[1], reply[2] or None
            reason = reply[3] if len(reply) > 3 else None
            if outcome == "undelivered":
                self.onUndelivered(message, reason)
            return SendResult(message.id, outcome, state, target, reason)

        def failed(failure: Failure) -> SendResult:
            if not isUnavailable(failure):
                return failure  # type: ignore[return-value]
            return self.outbox.hold(message, requeue=True)

        return d.addCallbacks(requeued, failed)

    def botArrived(self, botName: str) -> None:
        """A connection of C{botName} is now held here: messages held for it go out."""
        self.outbox.botArrived(botName, self.delivered)

    # -- periodic work

    def pump(self) -> defer.Deferred[None]:
        """Expire held messages; when Redis is up, route them and run lua.PUMP."""
        now = self.clock.seconds()
        self.outbox.expire(self.delivered)
        if not self._up:
            return defer.succeed(None)
        flushed = [self.requeue(h.message) if h.requeue else self._route(h.message)
                   for h in self.outbox.takeAll()]
        d = defer.DeferredList(flushed, consumeErrors=True)
        d.addCallback(lambda _: self.link.eval(lua.PUMP, (), (
            self.keys.prefix, millis(now), millis(self.timeout), PUMP_LIMIT,
        )))
        d.addCallback(self._expired)
        d.addErrback(lambda f: None if isUnavailable(f) else f)
        return d

    def _expired(self, flat: list[Any]) -> None:
        for payload, reason in zip(flat[::2], flat[1::2]):
            self.onUndelivered(RoutedMessage.fromJSON(payload), reason)

    # -- state by id

    def status(self, messageId: str) -> defer.Deferred[MessageStatus | None]:
        local = self.outbox.states.get(messageId)
        # A message that went the local way while Redis was down is known here best.
        if not self._up or (local is not None and local.state != QUEUED):
            return defer.succeed(local)
        d = self.link.execute("HGETALL", self.keys.message(messageId))

        def parse(flat: list[str]) -> MessageStatus | None:
            if not flat:
                return local
            return MessageStatus.fromHash(messageId, dict(zip(flat[::2], flat[1::2])))

        return d.addCallbacks(parse, lambda f: local if isUnavailable(f) else f)
