"""The room name an announcement is addressed with: the bridge sends to a room by its name, schedules name a room id."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer

from kkobot.db.errors import isSchemaError
from kkobot.logs import Logger

log = Logger()

# A name looked up in the database is trusted this long (rooms are rarely renamed).
CACHE_SECONDS = 600.0


def _roomsName(txn: Any, sql: Callable[[str], str], roomId: str) -> str | None:
    for statement in (
        # The operators' room table (by channel id), where there is one.
        "SELECT room_name FROM kb_rooms WHERE room_id = %s",
        # Else the latest message of the room: MAX(id) is read from the (channel_id, ...) index.
        "SELECT room_name FROM kb_chat_logs WHERE id = "
        "(SELECT MAX(id) FROM kb_chat_logs WHERE channel_id = %s AND room_name IS NOT NULL)",
    ):
        try:
            txn.execute(sql(statement), (roomId,))
        except Exception as e:
            # No such table: MySQL's is a schema error, SQLite's an OperationalError.
            if not (isSchemaError(e) or "no such table" in str(e)):
                raise
            continue
        row = txn.fetchone()
        if row and row[0]:
            return str(row[0])
    return None


class RoomNames:
    """
    (room name, channel id) for a schedule's C{target_room_id}: a channel id whose
    name is known (seen in a message, kb_rooms, kb_chat_logs) goes as both; an
    unknown id is taken to be the room's name itself (as some operators write it).
    """

    def __init__(self, database: Any, clock: Any, seen: Callable[[str, str], str | None] | None = None) -> None:
        self.database = database
        self.clock = clock
        self.seen = seen
        self._cache: dict[str, tuple[str | None, float]] = {}

    @defer.inlineCallbacks
    def resolve(self, bot: str, roomId: str):
        name = self.seen(bot, roomId) if self.seen is not None else None
        if name is None:
            name = yield self._lookUp(roomId)
        if name is None:
            return roomId, (roomId if roomId.isdigit() else None)
        return name, roomId

    @defer.inlineCallbacks
    def _lookUp(self, roomId: str):
        now = self.clock.seconds()
        cached = self._cache.get(roomId)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            name = yield self.database.runInteraction(_roomsName, self.database.sql, roomId)
        except Exception as e:
            log.warn("[DB] room name of {room} not read: {error}", room=roomId, error=str(e))
            return None
        self._cache[roomId] = (name, now + CACHE_SECONDS)
        return name
