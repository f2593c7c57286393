"""The hook contract parts report server events through (metrics, message rates), and its no-op default."""

from __future__ import annotations

from typing import Iterable

from zope.interface import Interface, implementer

from kkobot.logs import Logger

log = Logger()


class IServerEvents(Interface):
    """
    Called by the protocol, router, outbound sender and chat log as things happen.

    Every method must return quickly and never raise into the caller: they run on
    the reactor thread, in the middle of handling a line.
    """

    def messageIn(botName, room, channelId, command):
        """A chat message arrived (C{command} is the directive, or None)."""

    def messageOut(botName, room, channelId, command):
        """The bot sent one message (C{command} is the directive, 'outbound' for the API)."""

    def commandTimed(command, seconds):
        """A command finished after C{seconds}."""

    def messageAnswered(botName, room, channelId, command, seconds, replies):
        """
        A chat message arrived and its command answered at once with C{replies}
        message(s): what L{messageIn}, L{commandTimed} (when C{seconds} is not None)
        and C{replies} times L{messageOut} report, in one call (the common case).
        """

    def errorSent(code):
        """An C{error} event with C{code} went to a client."""

    def authFailed(botName):
        """An event's or handshake's authentication failed."""

    def rowsWritten(count, seconds):
        """C{count} chat rows reached the database in one batch taking C{seconds}."""

    def rowsSpooled(count):
        """C{count} chat rows went to the local spool (the database was unavailable)."""

    def rowsReplayed(count):
        """C{count} spooled rows were written to the database."""

    def rowsRejected(count):
        """C{count} rows the database refused for good were set aside (rejected.jsonl)."""


@implementer(IServerEvents)
class NoEvents:
    """Ignores everything: the default where nobody is watching (and in unit tests)."""

    def messageIn(self, botName: str, room: str, channelId: str | None, command: str | None) -> None:
        pass

    def messageOut(self, botName: str, room: str, channelId: str | None, command: str | None) -> None:
        pass

    def commandTimed(self, command: str, seconds: float) -> None:
        pass

    def messageAnswered(self, botName: str, room: str, channelId: str | None, command: str | None,
                        seconds: float | None, replies: int) -> None:
        # Sinks that count only the single events get them from here.
        self.messageIn(botName, room, channelId, command)
        if seconds is not None and command is not None:
            self.commandTimed(command, seconds)
        for _ in range(replies):
            self.messageOut(botName, room, channelId, command)

    def errorSent(self, code: str) -> None:
        pass

    def authFailed(self, botName: str | None) -> None:
        pass

    def rowsWritten(self, count: int, seconds: float) -> None:
        pass

    def rowsSpooled(self, count: int) -> None:
        pass

    def rowsReplayed(self, count: int) -> None:
        pass

    def rowsRejected(self, count: int) -> None:
        pass


NO_EVENTS = NoEvents()


# A hook whose inherited version passes the event on to these.
_COMBINED = {"messageAnswered": ("messageIn", "commandTimed", "messageOut")}


def _quiet(sink: object, name: str) -> bool:
    """Whether C{sink}'s C{name} hook is the one it inherits from L{NoEvents} (does nothing)."""
    inherited = getattr(getattr(sink, name), "__func__", None) is getattr(NoEvents, name)
    return inherited and all(_quiet(sink, part) for part in _COMBINED.get(name, ()))


def _guarded(name: str, methods: list, parameters: Iterable[str]):
    """
    One function calling each of C{methods} with the hook's C{parameters}, each in its
    own try: fixed parameters rather than C{*args} and one call statement per method
    rather than a loop, since these run several times per message.
    """
    params = ", ".join(parameters)
    body = "".join(
        f"    try:\n        m{i}({params})\n    except Exception:\n        failed()\n"
        for i in range(len(methods))
    ) or "    pass\n"
    scope: dict[str, object] = {f"m{i}": method for i, method in enumerate(methods)}

    def failed() -> None:
        # A broken observer must not break the line being handled.
        log.failure("[SERVER] event hook {name} failed", name=name)

    scope["failed"] = failed
    exec(f"def {name}({params}):\n{body}", scope)
    return scope[name]


@implementer(IServerEvents)
class EventFanout:
    """Passes every event to several sinks; one failing sink does not stop the others."""

    def __init__(self, sinks: Iterable[IServerEvents]) -> None:
        self.sinks = list(sinks)
        # One fan-out per hook, made once: these run several times per message.
        # Sinks that do not override a hook (it is NoEvents' no-op) are left out.
        for name in IServerEvents:
            methods = [getattr(sink, name) for sink in self.sinks if not _quiet(sink, name)]
            parameters = IServerEvents[name].getSignatureInfo()["positional"]
            setattr(self, name, _guarded(name, methods, parameters))
