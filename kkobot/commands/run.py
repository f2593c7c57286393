"""Running one command call: sync or async results, timeouts, failures answered in Korean."""

from __future__ import annotations

import inspect
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
        result = _call(command, context)
        if isinstance(result, Failure):
            return _failed(result, command, context, timeout)
        if not isinstance(result, defer.Deferred):
            return normalizeReplies(result)
    except BaseException:
        return _failed(Failure(), command, context, timeout)
    if clock is not None and timeout and not result.called:
        result.addTimeout(timeout, clock)
    result.addCallback(normalizeReplies)
    result.addErrback(_failed, command, context, timeout)
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
    if inspect.iscoroutine(result):
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
