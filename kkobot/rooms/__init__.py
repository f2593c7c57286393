"""Rooms the bots are in: kb_rooms approval, and room admins and command settings from the database."""

from kkobot.rooms.interfaces import IRoomDirectory
from kkobot.rooms.settings import RoomSettings
from kkobot.rooms.store import RoomStore

__all__ = ["IRoomDirectory", "RoomSettings", "RoomStore"]
