"""What the command side asks about rooms (L{IRoomDirectory})."""

from __future__ import annotations

from zope.interface import Interface


class IRoomDirectory(Interface):
    """Rooms' approval and settings, answered from memory (refreshed off the hot path)."""

    def seen(botName, roomId, roomName):
        """A message of this room arrived: record the room when it is new."""

    def answers(roomId):
        """True when the bot may answer in the room; a Deferred before the first read."""

    def isAdmin(roomId, userHash):
        """True when C{userHash} is an admin of the room."""

    def settingsOf(roomId):
        """The room's L{kkobot.rooms.settings.RoomSettings}."""
