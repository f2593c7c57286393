"""The commands loaded right now, and which one a message (`# name args`) invokes."""

from __future__ import annotations

import importlib
import os
import re
from typing import Any, Callable, NamedTuple

from kkobot.commands.loader import PluginFailure, PluginLoader, ScanReport, _pluginsOf
from kkobot.commands.plugin import PluginInfo, describeModule, describeObject
from kkobot.interfaces import ICommand, IJob
from kkobot.logs import Logger

log = Logger()

PREFIX = "#"


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
    # split() skips the blanks after the prefix and between name and arguments itself.
    parts = stripped[len(PREFIX):].split(None, 1)
    if not parts:
        return None
    return parts[0].lower(), (parts[1].rstrip() if len(parts) > 1 else "")


def directiveFor(name: str) -> str:
    """The `directive` column value for a command, e.g. C{"# echo"}."""
    return f"{PREFIX} {name}"


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
        self._extraModules: list[Any] = []
        self._plugins: dict[int, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        # Bumped by every change of the command set (trigger tables rebuild on it).
        self.generation = 0
        # Called with the ScanReport after every load/reload (the scheduler listens).
        self.listeners: list[Callable[[ScanReport], None]] = []

    def add(self, *plugins: Any) -> None:
        """Register plugin objects directly (tests, embedding); they survive reloads."""
        self._extra.extend(plugins)
        self._rebuild()

    def addModule(self, module: Any) -> None:
        """Register a plugin module's objects directly; its activate() hook runs on load."""
        self._extraModules.append(module)
        self.add(*_pluginsOf(module))

    def modules(self) -> list[Any]:
        """Every plugin module in use (added ones first), for lifecycle hooks."""
        return [*self._extraModules, *(loaded.module for loaded in self.loader.files.values())]

    def pluginOf(self, command: Any) -> PluginInfo:
        """The plugin (file) a command belongs to: its name keys its store and config."""
        info = self._plugins.get(id(command))
        if info is None:
            info = self._plugins[id(command)] = describeObject(command)
        return info

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
        infos: dict[int, PluginInfo] = {}
        for module in self._extraModules:
            info = describeModule(module)
            for plugin in _pluginsOf(module):
                infos[id(plugin)] = info
        for loaded in self.loader.files.values():
            info = describeModule(loaded.module)
            for plugin in loaded.plugins:
                infos[id(plugin)] = info
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
        self._plugins = infos
        self.generation += 1

    def lookup(self, name: str) -> Any:
        return self._commands.get(name.lower())

    def match(self, text: str) -> Invocation | None:
        """The command a message invokes: a C{# name} trigger first, else a passive pattern."""
        parsed = parseInvocation(text)
        if parsed is not None:
            # lookup(), inline: parseInvocation has lower-cased the name already.
            command = self._commands.get(parsed[0])
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
