"""Running one command call: sync or async results, timeouts, failures answered in Korean."""

from __future__ import annotations

from types import CoroutineType
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from kkobot.commands.reply import ERROR_REPLY, TIMEOUT_REPLY, Reply, normalizeReplies
from kkobot.logs import Logger

log = Logger()

DEFAULT_TIMEOUT = 10.0


def runCommand(
    command: Any,
    context: Any,
    clock: IReactorTime | None = None,
    timeout: float | None = None,
) -> defer.Deferred[list[Reply]]:
    """
    Run one command; always fires with replies, never errbacks.

    A command that raises is logged with its traceback and the user gets a short
    Korean error reply instead. With C{clock} and C{timeout}, a call still running
    after C{timeout} seconds is cancelled and answered with L{TIMEOUT_REPLY}.
    """
    result = runCommandNow(command, context, clock, timeout)
    return result if isinstance(result, defer.Deferred) else defer.succeed(result)


def runCommandNow(
    command: Any,
    context: Any,
    clock: IReactorTime | None = None,
    timeout: float | None = None,
) -> list[Reply] | defer.Deferred[list[Reply]]:
    """
    L{runCommand}, but a command that answers at once gives its replies as a list.

    Most commands return a plain value: building a Deferred chain for each of them
    cost more CPU than the command itself. Only a Deferred or coroutine result
    gets a Deferred (with the timeout) back.
    """
    try:
        extra = getattr(context, "extra", None)
        if getattr(command, "options", ()) and not (extra and extra.get("optionsParsed")):
            result = _call(command, context)
        else:
            # _call without the options to parse, inline: this runs for every message.
            result = command.run(context)
            if type(result) is not str and isinstance(result, CoroutineType):
                result = defer.ensureDeferred(result)
        if type(result) is str:
            # What most commands return (normalizeReplies' first case, inline); isinstance
            # on Deferred goes through ABCMeta in Python.
            return [Reply(result)] if result else []
        if isinstance(result, Failure):
            return _failed(result, command, context, timeout)
        if not isinstance(result, defer.Deferred):
            return normalizeReplies(result)
    except BaseException:
        return _failed(Failure(), command, context, timeout)
    if clock is not None and timeout and not result.called:
        # A question asked before the call returned its Deferred is already waiting.
        deadline = Deadline(result, timeout, clock, pauses=extra.get("waiting", 0) if extra else 0)
        if extra is not None:
            extra["deadline"] = deadline
    result.addCallback(normalizeReplies)
    result.addErrback(_failed, command, context, timeout)
    return result


class Deadline:
    """
    A command call's timeout that stops counting while the call waits for the user
    (L{kkobot.commands.conversations}): the limit is on the bot's work, not on how
    long someone takes to answer a question.
    """

    def __init__(self, d: defer.Deferred[Any], seconds: float, clock: IReactorTime, pauses: int = 0) -> None:
        self.d = d
        self.clock = clock
        self.left = seconds
        self.expired = False
        self._pauses = pauses
        self._since = clock.seconds()
        self._call: Any = None if pauses else clock.callLater(seconds, self._expire)
        d.addBoth(self._settled)

    def pause(self) -> None:
        self._pauses += 1
        if self._pauses == 1 and self._call is not None:
            self.left -= self.clock.seconds() - self._since
            self._call.cancel()
            self._call = None

    def resume(self) -> None:
        self._pauses = max(0, self._pauses - 1)
        if self._pauses == 0 and self._call is None and not self.d.called:
            self._since = self.clock.seconds()
            self._call = self.clock.callLater(max(0.0, self.left), self._expire)

    def _expire(self) -> None:
        self._call = None
        self.expired = True
        self.d.cancel()

    def _settled(self, result: Any) -> Any:
        if self._call is not None:
            self._call.cancel()
            self._call = None
        if self.expired and isinstance(result, Failure) and result.check(defer.CancelledError):
            return Failure(defer.TimeoutError("the command did not finish in time"))
        return result


def _call(command: Any, context: Any) -> Any:
    declared = getattr(command, "options", ())
    if declared and not getattr(context, "extra", {}).get("optionsParsed"):
        # Called without the dispatcher (embedding, older tests): parse here.
        from kkobot.commands.options import OptionError, parseOptions

        try:
            context.options, context.rest = parseOptions(context.args, declared)
        except OptionError as e:
            return f"{e}\n사용법: {getattr(command, 'usage', '') or '# ' + command.name}"
    result = command.run(context)
    # inspect.iscoroutine() is this isinstance behind a Python call.
    if type(result) is not str and isinstance(result, CoroutineType):
        return defer.ensureDeferred(result)
    return result


def _failed(failure: Failure, command: Any, context: Any, timeout: float | None) -> list[Reply]:
    if failure.check(defer.TimeoutError):
        log.warn(
            "[MSG] command {name!r} timed out after {timeout}s in room {room!r}; cancelled",
            name=command.name,
            timeout=timeout,
            room=context.room,
        )
        return [Reply(TIMEOUT_REPLY)]
    log.failure(
        "[MSG] command {name!r} failed in room {room!r}",
        failure,
        name=command.name,
        room=context.room,
    )
    return [Reply(ERROR_REPLY)]
