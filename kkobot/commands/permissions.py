"""Who may run which command where: room admins (by userHash) and per-room disabled commands."""

from __future__ import annotations

from typing import Any, Mapping

# Short Korean replies for refused commands (a refusal is never silent).
ADMIN_ONLY_REPLY = "관리자만 사용할 수 있는 명령입니다."
DISABLED_REPLY = "이 방에서는 사용할 수 없는 명령입니다."


class Permissions:
    """
    Permissions from the config.

    - C{admins}: userHash values that are admins in every room;
    - C{rooms.<channelId>.admins}: userHash values that are admins in that room;
    - C{rooms.<channelId>.disabled_commands}: command names refused in that room.

    Display names are spoofable, so only C{userHash} (with C{channelId}) counts.
    C{rooms} (an L{kkobot.rooms.IRoomDirectory}) adds what kb_room_settings says:
    room admins, disabled commands, and commands only admins may run there.
    """

    def __init__(self, cfg: Mapping[str, Any] | None = None, rooms: Any = None) -> None:
        cfg = cfg or {}
        self.rooms = rooms
        self.globalAdmins = frozenset(_strings(cfg.get("admins")))
        rooms = cfg.get("rooms") if isinstance(cfg.get("rooms"), dict) else {}
        self.roomAdmins = {
            str(room): frozenset(_strings(entry.get("admins")))
            for room, entry in rooms.items()
            if isinstance(entry, dict)
        }
        # (rooms.approval and rooms.refresh_interval are settings, not rooms: not dicts.)
        self.roomDisabled = {
            str(room): frozenset(n.lower() for n in _strings(entry.get("disabled_commands")))
            for room, entry in rooms.items()
            if isinstance(entry, dict)
        }

    def isAdmin(self, channelId: str | None, userHash: str | None) -> bool:
        if not userHash:
            return False
        if userHash in self.globalAdmins:
            return True
        if channelId is None:
            return False
        if userHash in self.roomAdmins.get(channelId, ()):
            return True
        return self.rooms is not None and self.rooms.isAdmin(channelId, userHash)

    def isEnabled(self, commandName: str, channelId: str | None) -> bool:
        if channelId is None:
            return True
        if commandName.lower() in self.roomDisabled.get(channelId, ()):
            return False
        return self.rooms is None or not self.rooms.settingsOf(channelId).isDisabled(commandName)

    def adminOnly(self, command: Any, channelId: str | None) -> bool:
        if getattr(command, "adminOnly", False):
            return True
        return (self.rooms is not None and channelId is not None
                and self.rooms.settingsOf(channelId).adminOnly(command.name))

    def check(self, command: Any, context: Any) -> str | None:
        """A Korean refusal for this invocation, or None when it may run."""
        # isEnabled and adminOnly in one pass: the room's settings are looked up once.
        channelId = context.channelId
        adminOnly = getattr(command, "adminOnly", False)
        if channelId is not None:
            name = command.name
            disabled = self.roomDisabled.get(channelId)
            if disabled and name.lower() in disabled:
                return DISABLED_REPLY
            rooms = self.rooms
            if rooms is not None:
                settings = rooms.settingsOf(channelId)
                # Most rooms have no settings at all: nothing to ask them.
                if settings.disabled or settings.commands:
                    if settings.isDisabled(name):
                        return DISABLED_REPLY
                    adminOnly = adminOnly or settings.adminOnly(name)
        if adminOnly and not self.isAdmin(channelId, context.userHash):
            return ADMIN_ONLY_REPLY
        return None

    def allowed(self, command: Any, context: Any) -> bool:
        return self.check(command, context) is None


def _strings(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)):
        return []
    return [str(v) for v in value if v is not None]
