"""Plugin files: scan the folders, import new files, re-run changed ones, forget removed ones."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from twisted.plugin import IPlugin

from kkobot.files import trustProblem
from kkobot.logs import Logger

log = Logger()


@dataclass(frozen=True)
class PluginFailure:
    """A plugin file that could not be imported."""

    module: str
    path: str
    error: str
    # Not run at all: someone other than the server's user could have changed it.
    refused: bool = False

    @property
    def summary(self) -> str:
        """The last line of the traceback, e.g. C{SyntaxError: invalid syntax (x.py, line 3)}."""
        lines = [line for line in self.error.splitlines() if line.strip()]
        return lines[-1].strip() if lines else "import failed"


@dataclass
class LoadedFile:
    """One imported plugin file and what it provides."""

    module: ModuleType
    path: str
    digest: str
    plugins: list[Any]


@dataclass
class ScanReport:
    """What one scan changed."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    # The module each changed or removed file had before (its deactivate() hook runs).
    previous: dict[str, ModuleType] = field(default_factory=dict)


def _isPluginFile(filename: str) -> bool:
    stem, ext = os.path.splitext(filename)
    return ext == ".py" and not stem.startswith("_") and stem.isidentifier()


def folderProblem(directory: str) -> str | None:
    """Why a plugin folder must not be trusted (group/others may write it, a stranger owns it)."""
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        return None
    return trustProblem(directory, st, "plugin folder")


def untrusted(directory: str) -> list[str]:
    """Every reason not to run a drop-in folder's plugins: the folder's, then its files'."""
    problem = folderProblem(directory)
    if problem is not None:
        return [problem]
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    problems = []
    for filename in filter(_isPluginFile, names):
        path = os.path.join(directory, filename)
        try:
            problem = trustProblem(path, os.stat(path), "plugin file")
        except OSError:
            continue
        if problem is not None:
            problems.append(problem)
    return problems


class Untrusted(Exception):
    """A plugin file someone other than the server's user could have written."""


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class PluginLoader:
    """
    Keeps the plugin files of some folders imported, as modules of one package.

    Change is detected by content hash, not mtime: twisted.plugin's dropin.cache and
    Python's bytecode cache both key on mtime (whole seconds for .pyc), so a file
    rewritten within the same second would keep its old code.

    A file is executed into a fresh module object that replaces the old one only if
    it ran cleanly. (C{importlib.reload} re-runs new code inside the old module, so a
    file that fails half-way would leave a half-old, half-new module behind.)
    """

    def __init__(
        self, packageName: str, directories: list[str], checked: tuple[str, ...] = ()
    ) -> None:
        self.packageName = packageName
        self.directories = directories
        # Folders (the drop-in folder) whose plugins run only if no one but the
        # server's user (or root) can change them, as the config key is checked.
        self.checked = {os.path.abspath(d) for d in checked}
        self.files: dict[str, LoadedFile] = {}

    def _discover(self, skip: frozenset[str] | set[str] = frozenset()) -> dict[str, str]:
        """Module name → file path; the first folder wins a clash of basenames."""
        found: dict[str, str] = {}
        for directory in self.directories:
            if directory in skip:
                continue
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                continue
            for filename in names:
                if not _isPluginFile(filename):
                    continue
                stem = filename[:-3]
                name = f"{self.packageName}.{stem}"
                path = os.path.join(directory, filename)
                if name in found:
                    log.warn(
                        "[STARTUP] plugin {path} is shadowed by {other} (same file name)",
                        path=path,
                        other=found[name],
                    )
                    continue
                found[name] = path
        return found

    def _execute(self, name: str, path: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        with open(path, "rb") as f:
            if os.path.dirname(path) in self.checked:
                # The file as opened, so it cannot be swapped between check and read.
                problem = trustProblem(path, os.fstat(f.fileno()), "plugin file")
                if problem is not None:
                    raise Untrusted(problem)
            source = f.read()
        # Compiled here, so no stale .pyc can stand in for the new source.
        code = compile(source, path, "exec", dont_inherit=True)
        exec(code, module.__dict__)
        return module

    def scan(self) -> ScanReport:
        """Bring the loaded modules in line with the files on disk."""
        importlib.invalidate_caches()
        package = importlib.import_module(self.packageName)
        report = ScanReport()
        refused = set()
        for directory in self.directories:
            problem = folderProblem(directory) if directory in self.checked else None
            if problem is not None:
                refused.add(directory)
                report.failures.append(PluginFailure("", directory, problem, refused=True))
        onDisk = self._discover(refused)
        # A refused folder's plugins already running keep running (they were trusted
        # when loaded); nothing new from it runs.
        kept = {n for n, f in self.files.items() if os.path.dirname(f.path) in refused}
        for name in [n for n in self.files if n not in onDisk and n not in kept]:
            report.previous[name] = self.files.pop(name).module
            if sys.modules.get(name) is not None:
                sys.modules.pop(name, None)
            if hasattr(package, name.rsplit(".", 1)[1]):
                delattr(package, name.rsplit(".", 1)[1])
            report.removed.append(name)
        for name, path in onDisk.items():
            loaded = self.files.get(name)
            try:
                digest = _digest(path)
            except OSError:
                continue
            if loaded is not None and loaded.path == path and loaded.digest == digest:
                continue
            try:
                module = self._execute(name, path)
            except Untrusted as e:
                report.failures.append(PluginFailure(name, path, str(e), refused=True))
                continue
            except BaseException:
                report.failures.append(
                    PluginFailure(name, path, traceback.format_exc(limit=-3).strip())
                )
                continue
            sys.modules[name] = module
            setattr(package, name.rsplit(".", 1)[1], module)
            if loaded is not None:
                report.previous[name] = loaded.module
            self.files[name] = LoadedFile(module, path, digest, _pluginsOf(module))
            (report.added if loaded is None else report.changed).append(name)
        return report

    def plugins(self) -> list[Any]:
        """Every plugin object of every loaded file, in file order."""
        return [plugin for loaded in self.files.values() for plugin in loaded.plugins]


def _pluginsOf(module: ModuleType) -> list[Any]:
    """Module-level objects that provide IPlugin, as twisted.plugin would find them."""
    return [value for value in vars(module).values() if IPlugin.providedBy(value)]
