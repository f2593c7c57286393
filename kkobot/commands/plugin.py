"""What a plugin file is: its name, its declared config (secrets marked), its lifecycle hooks."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterator

from kkobot.config import MASK, is_secret_key
from kkobot.logs import Logger

log = Logger()

# Sections of `plugins.*` that are settings of the plugin system, not a plugin's.
RESERVED_NAMES = frozenset({"dropin_dir"})


@dataclass(frozen=True)
class Secret:
    """
    A config value that must never be shown or logged (an API key, a password).

    C{kkobot-config show} and C{repr(context.config)} mask it; C{context.config[key]}
    is the real value (C{default} when the operator set none).
    """

    default: str | None = None
    help: str = ""


@dataclass(frozen=True)
class Plugin:
    """
    An optional module-level declaration of a plugin file:

        plugin = Plugin("weather", config={"api_key": Secret(), "units": "metric"})

    C{name} (default: the file name without C{kkobot_}) keys the plugin's stored
    values and its config section C{plugins.<name>}; C{config} holds each key's
    default (or a L{Secret}); C{httpConcurrency} bounds its HTTP requests in flight.
    """

    name: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    httpConcurrency: int | None = None
    description: str = ""


@dataclass(eq=False)
class PluginInfo:
    """One plugin as the server sees it: its name, declaration, module and hooks."""

    name: str
    declaration: Plugin
    module: ModuleType | None = None

    @property
    def activate(self) -> Callable[[Any], Any] | None:
        hook = getattr(self.module, "activate", None)
        return hook if callable(hook) else None

    @property
    def deactivate(self) -> Callable[[], Any] | None:
        hook = getattr(self.module, "deactivate", None)
        return hook if callable(hook) else None

    @property
    def secretKeys(self) -> frozenset[str]:
        return frozenset(k for k, v in self.declaration.config.items() if isinstance(v, Secret))


def nameFromModule(moduleName: str) -> str:
    """C{kkobot.plugins.kkobot_attendance} → C{attendance}."""
    stem = moduleName.rsplit(".", 1)[-1]
    return stem[len("kkobot_"):] if stem.startswith("kkobot_") and len(stem) > 7 else stem


def describeModule(module: ModuleType) -> PluginInfo:
    """The L{PluginInfo} of a loaded plugin module (its C{Plugin} declaration, if any)."""
    declared = next((v for v in vars(module).values() if isinstance(v, Plugin)), None)
    declaration = declared or Plugin()
    name = declaration.name or nameFromModule(module.__name__)
    return PluginInfo(name, declaration, module)


def moduleNameOf(obj: Any) -> str:
    """The module a command object was written in (its function's, for C{@command})."""
    function = getattr(obj, "function", None)
    if function is not None and getattr(function, "__module__", None):
        return function.__module__
    return type(obj).__module__


def describeObject(obj: Any) -> PluginInfo:
    """The L{PluginInfo} of a command registered directly (tests, embedding)."""
    moduleName = moduleNameOf(obj)
    module = sys.modules.get(moduleName)
    if module is not None:
        return describeModule(module)
    return PluginInfo(nameFromModule(moduleName), Plugin(), None)


class PluginConfig(Mapping):
    """
    C{context.config}: the plugin's C{plugins.<name>} section over its declared
    defaults. Read-only; its repr masks secrets, so logging it leaks nothing.
    """

    def __init__(self, name: str, values: Mapping[str, Any], secrets: frozenset[str] = frozenset()):
        self.name = name
        self._values = dict(values)
        self._secrets = frozenset(k for k in self._values if k in secrets or is_secret_key(k))

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def masked(self) -> dict[str, Any]:
        return {k: (MASK if k in self._secrets and v not in (None, "") else v)
                for k, v in self._values.items()}

    def __repr__(self) -> str:
        return f"<PluginConfig plugins.{self.name} {self.masked()!r}>"

    __str__ = __repr__


def _typeName(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def resolveConfig(info: PluginInfo, section: Any) -> PluginConfig:
    """
    The plugin's config: each declared key's configured value (when it has the
    default's type; else the default, with a warning), then undeclared keys as set.
    """
    configured = section if isinstance(section, Mapping) else {}
    if section is not None and not isinstance(section, Mapping):
        log.warn("[CONFIG] plugins.{name} must be an object; using the plugin's defaults",
                 name=info.name)
    values: dict[str, Any] = {}
    for key, declared in info.declaration.config.items():
        default = declared.default if isinstance(declared, Secret) else declared
        value = configured.get(key)
        if value is None:
            values[key] = default
            continue
        expected = str if isinstance(declared, Secret) else type(default) if default is not None else None
        if expected is not None and not _sameType(value, expected):
            log.warn(
                "[CONFIG] plugins.{name}.{key} must be {kind}; using the plugin's default",
                name=info.name, key=key, kind=_typeName(default if default is not None else ""),
            )
            values[key] = default
            continue
        values[key] = value
    for key, value in configured.items():
        values.setdefault(key, value)
    return PluginConfig(info.name, values, info.secretKeys)


def _sameType(value: Any, expected: type) -> bool:
    if expected is bool or isinstance(value, bool):
        return isinstance(value, bool) and expected is bool
    if expected in (int, float):
        return isinstance(value, (int, float))
    return isinstance(value, expected)


class PluginConfigs:
    """Every plugin's config, from the config's C{plugins} section (replaced on reload)."""

    def __init__(self, section: Mapping[str, Any] | None = None) -> None:
        self.section = dict(section or {})
        self._cache: dict[str, tuple[Plugin, PluginConfig]] = {}

    def replace(self, section: Mapping[str, Any] | None) -> None:
        self.section = dict(section or {})
        self._cache.clear()

    def forPlugin(self, info: PluginInfo) -> PluginConfig:
        # One entry per plugin name, rebuilt when a reload brings another declaration.
        found = self._cache.get(info.name)
        if found is None or found[0] != info.declaration:
            found = self._cache[info.name] = (
                info.declaration, resolveConfig(info, self.section.get(info.name)))
        return found[1]


def declaredConfigs(modules: list[ModuleType]) -> dict[str, PluginInfo]:
    """The plugins among C{modules} that declare config, by plugin name."""
    found = {}
    for module in modules:
        info = describeModule(module)
        if info.declaration.config:
            found[info.name] = info
    return found


def loadedPluginModules(dropinDir: str | None) -> tuple[list[ModuleType], list[str]]:
    """
    Import kkobot's own plugin files and those of C{dropinDir} (as the server would,
    without starting anything); the modules, and one line per file that failed.
    """
    import os

    from kkobot.commands.registry import CommandRegistry

    registry = CommandRegistry(dropinDir if dropinDir and os.path.isdir(dropinDir) else None)
    report = registry.loader.scan()
    return registry.modules(), [f"{f.path}: {f.summary}" for f in report.failures]


def withDeclaredDefaults(data: dict[str, Any], modules: list[ModuleType]) -> dict[str, Any]:
    """
    A copy of the config with each plugin's declared defaults filled in under
    C{plugins.<name>} (configured values win) and its declared secrets masked:
    what the plugins will see, as `kkobot-config show` prints it.
    """
    import copy

    out = copy.deepcopy(data)
    declared = declaredConfigs(modules)
    if not declared:
        return out
    section = out.get("plugins")
    if not isinstance(section, dict):
        section = out["plugins"] = {}
    for name, info in sorted(declared.items()):
        configured = section.get(name) if isinstance(section.get(name), dict) else {}
        merged: dict[str, Any] = {}
        for key, value in info.declaration.config.items():
            if isinstance(value, Secret):
                value = value.default
            merged[key] = configured.get(key, value)
            if key in info.secretKeys and merged[key] not in (None, ""):
                merged[key] = MASK
        for key, value in configured.items():
            merged.setdefault(key, value)
        section[name] = merged
    return out


def isDeclaredSecret(key: str, data: dict[str, Any]) -> bool:
    """Whether a dotted key C{plugins.<name>.<leaf>} is a L{Secret} some plugin declares."""
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != "plugins":
        return False
    from kkobot.config import setting

    modules, _ = loadedPluginModules(setting(data, "plugins.dropin_dir"))
    info = declaredConfigs(modules).get(parts[1])
    return info is not None and parts[2] in info.secretKeys
