"""One room's admins, disabled commands and per-command settings, as stored in kb_room_settings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Mapping


class SettingsError(ValueError):
    """A setting an operator gave that cannot be stored (one line, says why)."""


@dataclass(frozen=True)
class RoomSettings:
    """
    C{commands} maps a command name to its settings in this room: C{enabled} (false
    refuses it like C{disabled}), C{admin_only} (only admins may run it), and any other
    key a plugin reads from C{context.extra["roomSettings"]}.
    """

    admins: frozenset[str] = frozenset()
    disabled: frozenset[str] = frozenset()
    commands: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def fromRow(cls, admins: Any, disabled: Any, commands: Any) -> RoomSettings:
        """From the three JSON text columns; unreadable JSON counts as empty."""
        adminList = _loads(admins, list)
        disabledList = _loads(disabled, list)
        commandMap = _loads(commands, dict)
        return cls(
            admins=frozenset(str(a) for a in adminList if a is not None),
            disabled=frozenset(str(c).lower() for c in disabledList if c is not None),
            commands={
                str(name).lower(): dict(value)
                for name, value in commandMap.items() if isinstance(value, dict)
            },
        )

    def toRow(self) -> tuple[str, str, str]:
        return (
            json.dumps(sorted(self.admins), ensure_ascii=False),
            json.dumps(sorted(self.disabled), ensure_ascii=False),
            json.dumps({k: dict(v) for k, v in sorted(self.commands.items())}, ensure_ascii=False),
        )

    def isDisabled(self, command: str) -> bool:
        name = command.lower()
        return name in self.disabled or self.commands.get(name, {}).get("enabled") is False

    def adminOnly(self, command: str) -> bool:
        return self.commands.get(command.lower(), {}).get("admin_only") is True

    def settingsOf(self, command: str) -> dict[str, Any]:
        """A copy (a plugin may change it) of one command's settings in this room."""
        commands = self.commands
        if not commands:
            return {}
        found = commands.get(command.lower())
        return {} if found is None else dict(found)

    def changed(
        self,
        addAdmins: list[str] = (),  # type: ignore[assignment]
        removeAdmins: list[str] = (),  # type: ignore[assignment]
        disable: list[str] = (),  # type: ignore[assignment]
        enable: list[str] = (),  # type: ignore[assignment]
        values: list[str] = (),  # type: ignore[assignment]
    ) -> RoomSettings:
        """A copy with the changes of `kkobot-admin rooms set` (or the admin web) applied."""
        admins = (set(self.admins) | {a.strip() for a in addAdmins if a.strip()}) - set(removeAdmins)
        disabled = (set(self.disabled) | {c.strip().lower() for c in disable if c.strip()}) - {
            c.strip().lower() for c in enable}
        commands = {k: dict(v) for k, v in self.commands.items()}
        for item in values:
            name, key, value = parseValue(item)
            entry = commands.setdefault(name, {})
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value
            if not entry:
                del commands[name]
        return replace(self, admins=frozenset(admins), disabled=frozenset(disabled), commands=commands)


def parseValue(item: str) -> tuple[str, str, Any]:
    """C{COMMAND.KEY=JSON} (a plain word is a string; an empty value removes the key)."""
    target, eq, raw = item.partition("=")
    name, dot, key = target.strip().partition(".")
    if not eq or not dot or not name or not key:
        raise SettingsError(f"{item!r}: write COMMAND.KEY=VALUE, e.g. echo.admin_only=true")
    raw = raw.strip()
    if raw == "":
        return name.lower(), key, None
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name.lower(), key, value


def _loads(text: Any, kind: type) -> Any:
    if not text:
        return kind()
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return kind()
    return value if isinstance(value, kind) else kind()
