"""Command plugins: discovery through twisted.plugin, parsing `# name args`, running them."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from kkobot.logs import Logger
from twisted.plugin import getPlugins
from twisted.python.failure import Failure
from twisted.python.modules import getModule
from zope.interface import implementer

from kkobot.interfaces import ICommand, ICommandContext

log = Logger()

PREFIX = "#"

# Short Korean replies users see when something goes wrong on our side.
ERROR_REPLY = "명령을 처리하는 중 오류가 발생했습니다. 잠시 후 다시 시도해 주세요."


@dataclass(frozen=True)
class Reply:
    """One chat message the bot sends back (text, or media per PROTOCOL.md)."""

    text: str
    mediaWaitTime: int | None = None


@implementer(ICommandContext)
@dataclass
class CommandContext:
    """The message that invoked a command, as L{ICommandContext} describes it."""

    room: str
    channelId: str | None
    sender: str
    userHash: str | None
    botName: str
    isGroupChat: bool
    isMention: bool
    text: str
    command: str
    args: str
    now: float
    extra: dict[str, Any] = field(default_factory=dict)


def parseInvocation(text: str) -> tuple[str, str] | None:
    """
    Split C{"# echo 안녕하세요"} into C{("echo", "안녕하세요")}.

    The trigger word is lower-cased; C{"#echo"} works as well as C{"# echo"}.
    Returns None when the text is not shaped like a command.
    """
    stripped = text.lstrip()
    if not stripped.startswith(PREFIX):
        return None
    rest = stripped[len(PREFIX):].lstrip()
    if not rest:
        return None
    parts = rest.split(None, 1)
    name = parts[0].lower()
    args = parts[1].strip() if len(parts) > 1 else ""
    return name, args


def directiveFor(name: str) -> str:
    """The `directive` column value for a command, e.g. C{"# echo"}."""
    return f"{PREFIX} {name}"


def normalizeReplies(result: Any) -> list[Reply]:
    """A command's return value as a list of L{Reply}."""
    if result is None:
        return []
    if isinstance(result, (str, Reply)):
        result = [result]
    replies = []
    for item in result:
        if item is None:
            continue
        if isinstance(item, Reply):
            replies.append(item)
        elif isinstance(item, str):
            if item:
                replies.append(Reply(item))
        else:
            raise TypeError(f"a command returned {type(item).__name__}, not text")
    return replies


@dataclass(frozen=True)
class PluginFailure:
    """A plugin file that could not be imported."""

    module: str
    path: str
    error: str


class CommandRegistry:
    """
    The commands available right now, found with C{getPlugins(ICommand, package)}.

    The drop-in folder is one more entry on the plugin package's C{__path__}, so a
    file there is discovered exactly like a built-in one.
    """

    def __init__(self, dropinDir: str | None = None, packageName: str = "kkobot.plugins"):
        self.dropinDir = os.path.abspath(dropinDir) if dropinDir else None
        self.packageName = packageName
        self._commands: dict[str, Any] = {}
        self.failures: list[PluginFailure] = []

    def _package(self):
        package = importlib.import_module(self.packageName)
        if self.dropinDir and self.dropinDir not in package.__path__:
            package.__path__.append(self.dropinDir)
        return package

    def _importFailures(self, package) -> list[PluginFailure]:
        """Import every module of the package; report the ones that fail."""
        failures = []
        for pluginModule in getModule(package.__name__).iterModules():
            name = pluginModule.name
            if name in sys.modules:
                continue
            try:
                importlib.import_module(name)
            except BaseException:
                failures.append(
                    PluginFailure(
                        module=name,
                        path=pluginModule.filePath.path,
                        error=traceback.format_exc(limit=-3).strip(),
                    )
                )
        return failures

    def load(self) -> None:
        """Discover the commands; failed plugin files are recorded in C{failures}."""
        package = self._package()
        importlib.invalidate_caches()
        # Importing first lets us name each broken file; getPlugins itself only
        # logs an anonymous traceback and moves on.
        self.failures = self._importFailures(package)
        commands: dict[str, Any] = {}
        for command in getPlugins(ICommand, package):
            for trigger in [command.name, *getattr(command, "aliases", ())]:
                trigger = trigger.lower()
                if trigger in commands and commands[trigger] is not command:
                    log.warn(
                        "[STARTUP] command trigger {trigger!r} is defined twice; "
                        "keeping the first",
                        trigger=trigger,
                    )
                    continue
                commands[trigger] = command
        self._commands = commands
        names = sorted({c.name for c in commands.values()})
        log.info(
            "[STARTUP] loaded {count} command(s): {names}",
            count=len(names),
            names=", ".join(names) or "(none)",
        )
        for failure in self.failures:
            log.error(
                "[STARTUP] plugin file {path} failed to import, its commands are "
                "missing:\n{error}",
                path=failure.path,
                error=failure.error,
            )

    def lookup(self, name: str):
        return self._commands.get(name.lower())

    def commands(self) -> list[Any]:
        """Each command once, sorted by name."""
        unique = {id(c): c for c in self._commands.values()}
        return sorted(unique.values(), key=lambda c: c.name)


def runCommand(command: Any, context: CommandContext) -> defer.Deferred[list[Reply]]:
    """
    Run one command; always fires with replies, never errbacks.

    A command that raises is logged with its traceback and the user gets a short
    Korean error reply instead.
    """

    def call():
        result = command.run(context)
        if inspect.iscoroutine(result):
            return defer.ensureDeferred(result)
        return result

    def failed(failure: Failure) -> list[Reply]:
        log.failure(
            "[MSG] command {name!r} failed in room {room!r}",
            failure,
            name=context.command,
            room=context.room,
        )
        return [Reply(ERROR_REPLY)]

    d = defer.maybeDeferred(call)
    d.addCallback(normalizeReplies)
    d.addErrback(failed)
    return d

