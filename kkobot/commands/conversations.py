"""Multi-step dialogs: `await context.ask(...)` waits for the same user's next message in the same room."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from kkobot.commands.reply import Reply
from kkobot.logs import Logger

log = Logger()

# What the user sees when they did not answer in time (the question then gets None).
ASK_TIMEOUT_NOTICE = "응답 시간이 지나 대화를 마칩니다."
MAX_ASK_SECONDS = 3600.0


def conversationKey(botName: str, message: Any) -> tuple[str, str, str]:
    """Who is being asked: the bot, the room (channel id, else name) and the user (hash, else name)."""
    return (botName, message.channelId or message.room, message.userHash or message.sender)


class Conversation:
    """
    One command call that asked something. Its first question is the reply to the
    message that started it (so it keeps its place among the room's replies); from
    then on the call no longer holds the room's reply order, and what it says later
    (further questions, its final answer) is sent as messages of their own.
    """

    def __init__(self, context: Any) -> None:
        self.context = context
        self.detached = False
        self.pending: list[Reply] = []
        self.outer: defer.Deferred[list[Reply]] | None = None

    def say(self, reply: Reply) -> None:
        if self.detached:
            self.context.send(reply)
            return
        self.detached = True
        if self.outer is None:
            self.pending.append(reply)
        else:
            self.outer.callback([reply])

    def attach(self, result: defer.Deferred[list[Reply]]) -> defer.Deferred[list[Reply]]:
        """The Deferred the protocol waits on in place of the command's C{result}."""
        self.outer = defer.Deferred()
        if self.detached:
            self.outer.callback(self.pending)
            self.pending = []
        result.addCallback(self._finished)
        return self.outer

    def _finished(self, replies: list[Reply]) -> None:
        if not self.detached:
            assert self.outer is not None
            self.outer.callback(replies)
            return
        for reply in replies:
            self.context.send(reply)


class _Waiter:
    def __init__(self, d: defer.Deferred[str | None], context: Any) -> None:
        self.d = d
        self.context = context
        self.call: IDelayedCall | None = None


class Conversations:
    """
    The questions waiting for an answer, by (bot, room, user). A message from that
    user in that room answers the oldest one; a `# command` is still a command.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._waiting: dict[tuple[str, str, str], list[_Waiter]] = {}

    @property
    def active(self) -> bool:
        """True while any question waits (the router checks this first, for free)."""
        return bool(self._waiting)

    def waitingFor(self, key: tuple[str, str, str]) -> int:
        return len(self._waiting.get(key, ()))

    def detachable(self, result: defer.Deferred[list[Reply]], context: Any) -> defer.Deferred[list[Reply]]:
        """Wrap a slow command's result so a question can be answered before it ends."""
        conversation = context.extra.get("conversation")
        if conversation is None:
            conversation = context.extra["conversation"] = Conversation(context)
        return conversation.attach(result)

    def ask(self, context: Any, text: str | Reply, timeout: float = 60.0) -> defer.Deferred[str | None]:
        """Say C{text}; fire with the user's next message text, or None after C{timeout} s."""
        if not (0 < timeout <= MAX_ASK_SECONDS):
            return defer.fail(ValueError(f"ask: timeout must be between 0 and {MAX_ASK_SECONDS:g} seconds"))
        key = conversationKey(context.botName, context)
        # The user's thinking time is not the command's run time (run.Deadline).
        context.extra["waiting"] = context.extra.get("waiting", 0) + 1
        deadline = context.extra.get("deadline")
        if deadline is not None:
            deadline.pause()

        def cancel(d: defer.Deferred[Any]) -> None:
            self._forget(key, waiter)
            if waiter.call is not None and waiter.call.active():
                waiter.call.cancel()

        waiter = _Waiter(defer.Deferred(cancel), context)
        waiter.call = self.clock.callLater(timeout, self._expire, key, waiter)
        self._waiting.setdefault(key, []).append(waiter)
        # Only now the question: whatever runs when it is delivered may already
        # bring the answer.
        conversation = context.extra.get("conversation")
        if conversation is None:
            conversation = context.extra["conversation"] = Conversation(context)
        conversation.say(text if isinstance(text, Reply) else Reply(text))
        return waiter.d

    def _forget(self, key: tuple[str, str, str], waiter: _Waiter) -> None:
        waiters = self._waiting.get(key)
        if waiters and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiting[key]
            extra = waiter.context.extra
            extra["waiting"] = max(0, extra.get("waiting", 0) - 1)
            deadline = extra.get("deadline")
            if deadline is not None:
                deadline.resume()

    def _expire(self, key: tuple[str, str, str], waiter: _Waiter) -> None:
        waiter.call = None
        self._forget(key, waiter)
        log.info("[MSG] a question in {room} was not answered in time", room=key[1])
        waiter.context.send(ASK_TIMEOUT_NOTICE)
        waiter.d.callback(None)

    def offer(self, botName: str, message: Any) -> bool:
        """Give C{message} to the question its sender was asked here; True when it was taken."""
        key = conversationKey(botName, message)
        waiters = self._waiting.get(key)
        if not waiters:
            return False
        waiter = waiters[0]
        self._forget(key, waiter)
        if waiter.call is not None and waiter.call.active():
            waiter.call.cancel()
        waiter.d.callback(message.text)
        return True
