"""Command plugins: the registry of what is loaded, parsing `# name args`, running one call."""

from __future__ import annotations

import base64
import importlib
import inspect
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.interfaces import ICommand, ICommandContext, IJob
from kkobot.loader import PluginFailure, PluginLoader, ScanReport
from kkobot.logs import Logger

__all__ = [
    "PREFIX", "ERROR_REPLY", "TIMEOUT_REPLY", "DEFAULT_TIMEOUT", "Reply", "CommandContext",
    "Invocation", "matchCommand", "parseInvocation", "directiveFor", "normalizeReplies", "PluginFailure",
    "CommandRegistry", "runCommand", "runCommandNow",
]

log = Logger()

PREFIX = "#"

# Short Korean replies users see when something goes wrong on our side.
ERROR_REPLY = "명령을 처리하는 중 오류가 발생했습니다. 잠시 후 다시 시도해 주세요."
TIMEOUT_REPLY = "명령 처리 시간이 초과되었습니다. 잠시 후 다시 시도해 주세요."

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Reply:
    """One chat message the bot sends back (text, or media per PROTOCOL.md)."""

    text: str
    mediaWaitTime: int | None = None

    @classmethod
    def media(cls, *urls: str, waitTime: int | None = None) -> Reply:
        """Images by URL: C{MEDIA_URL:url1|||url2}; C{waitTime} in ms."""
        return cls("MEDIA_URL:" + "|||".join(urls), waitTime)

    @classmethod
    def image(cls, *payloads: bytes | str, waitTime: int | None = None) -> Reply:
        """Images inline: C{IMAGE_BASE64:...}; bytes are base64-encoded here."""
        encoded = [
            base64.b64encode(p).decode("ascii") if isinstance(p, bytes) else p for p in payloads
        ]
        return cls("IMAGE_BASE64:" + "|||".join(encoded), waitTime)

    @property
    def isMedia(self) -> bool:
        return self.text.startswith(("MEDIA_URL:", "IMAGE_BASE64:"))


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
    options: dict[str, Any] = field(default_factory=dict)
    rest: str | None = None
    match: re.Match[str] | None = None
    isAdmin: bool = False
    client: Any = None
    clients: Any = None
    commands: Any = None
    # Set by the dispatcher: how send() and canUse() reach the server.
    outbound: Any = field(default=None, repr=False)
    usable: Callable[[Any], bool] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.rest is None:
            self.rest = self.args

    def send(
        self,
        text: str | Reply,
        room: str | None = None,
        channelId: str | None = None,
        mediaWaitTime: int | None = None,
    ) -> bool:
        if self.outbound is None:
            return False
        if isinstance(text, Reply):
            text, mediaWaitTime = text.text, text.mediaWaitTime
        if room is None:
            room = self.room
            channelId = self.channelId if channelId is None else channelId
        return self.outbound.send(
            self.botName, room, text, channelId, self.isGroupChat, mediaWaitTime=mediaWaitTime
        )

    def canUse(self, command: Any) -> bool:
        return True if self.usable is None else self.usable(command)


class Invocation(NamedTuple):
    """A message matched to a command."""

    command: Any
    trigger: str
    args: str
    match: re.Match[str] | None = None


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


def matchCommand(registry: Any, text: str) -> Invocation | None:
    """C{registry.match(text)}; a registry that only has C{lookup(name)} works too."""
    if hasattr(registry, "match"):
        return registry.match(text)
    parsed = parseInvocation(text)
    command = registry.lookup(parsed[0]) if parsed else None
    return Invocation(command, parsed[0], parsed[1]) if command is not None else None


def _pattern(command: Any) -> re.Pattern[str] | None:
    pattern = getattr(command, "pattern", None)
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    return re.compile(pattern, re.IGNORECASE)


class CommandRegistry:
    """
    The commands (and scheduled jobs) available right now.

    Plugins are module-level objects providing C{IPlugin} and L{ICommand} (or
    L{IJob}) in the files of C{kkobot.plugins} and of the drop-in folder, exactly
    what C{twisted.plugin.getPlugins(ICommand, kkobot.plugins)} finds; the drop-in
    folder is one more entry on that package's C{__path__}. L{reload} re-scans.
    """

    def __init__(self, dropinDir: str | None = None, packageName: str = "kkobot.plugins"):
        self.dropinDir = os.path.abspath(dropinDir) if dropinDir else None
        self.packageName = packageName
        package = importlib.import_module(packageName)
        # The package's own folders (taken before any drop-in folder is appended), so
        # two registries in one process never scan each other's drop-in folders.
        directories = [os.path.abspath(p) for p in getattr(package, "_builtinPath", package.__path__)]
        if not hasattr(package, "_builtinPath"):
            package._builtinPath = list(directories)
        if self.dropinDir:
            if self.dropinDir not in package.__path__:
                package.__path__.append(self.dropinDir)
            directories.append(self.dropinDir)
        self.loader = PluginLoader(
            packageName, directories, checked=(self.dropinDir,) if self.dropinDir else ())
        self._commands: dict[str, Any] = {}
        self._passive: list[tuple[re.Pattern[str], Any]] = []
        self._jobs: list[Any] = []
        self._extra: list[Any] = []
        self.failures: list[PluginFailure] = []
        # Called with the ScanReport after every load/reload (the scheduler listens).
        self.listeners: list[Callable[[ScanReport], None]] = []

    def add(self, *plugins: Any) -> None:
        """Register plugin objects directly (tests, embedding); they survive reloads."""
        self._extra.extend(plugins)
        self._rebuild()

    def load(self) -> ScanReport:
        """Scan the plugin folders; failed files are recorded in C{failures}."""
        return self.reload(startup=True)

    def reload(self, startup: bool = False) -> ScanReport:
        """
        Re-scan: new files load, removed files' commands vanish, changed files run
        their new code; a file that fails keeps its previous version running.
        """
        category = "[STARTUP]" if startup else "[RELOAD]"
        report = self.loader.scan()
        self.failures = report.failures
        self._rebuild()
        names = sorted({c.name for c in self._commands.values()} | {c.name for _, c in self._passive})
        log.info(
            "{category} loaded {count} command(s): {names}; files added {added}, changed {changed}, "
            "removed {removed}",
            category=category,
            count=len(names),
            names=", ".join(names) or "(none)",
            added=_short(report.added),
            changed=_short(report.changed),
            removed=_short(report.removed),
        )
        for failure in report.failures:
            if failure.refused:
                log.error(
                    "{category} refusing to run plugins: {error}{kept}",
                    category=category, error=failure.error,
                    kept=" (its previous version keeps running)"
                    if failure.module in self.loader.files else "",
                )
                continue
            log.error(
                "{category} plugin file {path} failed to import ({kept}):\n{error}",
                category=category,
                path=failure.path,
                kept="its previous version keeps running"
                if failure.module in self.loader.files
                else "its commands are missing",
                error=failure.error,
            )
        for listener in list(self.listeners):
            try:
                listener(report)
            except Exception:
                log.failure("{category} a reload listener failed", category=category)
        return report

    def _rebuild(self) -> None:
        commands: dict[str, Any] = {}
        passive: list[tuple[re.Pattern[str], Any]] = []
        jobs: list[Any] = []
        seen: set[int] = set()
        for plugin in [*self._extra, *self.loader.plugins()]:
            if id(plugin) in seen:
                continue
            seen.add(id(plugin))
            if IJob.providedBy(plugin):
                jobs.append(plugin)
            if not ICommand.providedBy(plugin):
                continue
            pattern = _pattern(plugin)
            if pattern is not None:
                passive.append((pattern, plugin))
                continue
            for trigger in [plugin.name, *getattr(plugin, "aliases", ())]:
                trigger = trigger.lower()
                if trigger in commands and commands[trigger] is not plugin:
                    log.warn(
                        "[STARTUP] command trigger {trigger!r} is defined twice; keeping the first",
                        trigger=trigger,
                    )
                    continue
                commands[trigger] = plugin
        self._commands, self._passive, self._jobs = commands, passive, jobs

    def lookup(self, name: str) -> Any:
        return self._commands.get(name.lower())

    def match(self, text: str) -> Invocation | None:
        """The command a message invokes: a C{# name} trigger first, else a passive pattern."""
        parsed = parseInvocation(text)
        if parsed is not None:
            command = self.lookup(parsed[0])
            if command is not None:
                return Invocation(command, parsed[0], parsed[1])
        for pattern, command in self._passive:
            found = pattern.search(text)
            if found is not None:
                return Invocation(command, command.name, text.strip(), found)
        return None

    def commands(self) -> list[Any]:
        """Each command once (passive ones included), sorted by name."""
        unique = {id(c): c for c in self._commands.values()}
        unique.update({id(c): c for _, c in self._passive})
        return sorted(unique.values(), key=lambda c: c.name)

    def jobs(self) -> list[Any]:
        return list(self._jobs)


def _short(names: list[str]) -> str:
    return ", ".join(n.rsplit(".", 1)[-1] for n in names) or "-"


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
        from kkobot.options import OptionError, parseOptions

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
