"""Rooms in memory: statuses and settings re-read every few seconds, new rooms recorded in the background."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from kkobot.logs import Logger
from kkobot.rooms import sql as roomsql
from kkobot.rooms.interfaces import IRoomDirectory
from kkobot.rooms.settings import RoomSettings
from kkobot.rooms.table import ROOM_TABLE, addSchema

log = Logger()

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
EMPTY = RoomSettings()


@implementer(IRoomDirectory)
class RoomStore(Service):
    """
    kb_rooms and kb_room_settings, read whole every C{refreshInterval} seconds by a
    L{task.LoopingCall}, so `kkobot-admin rooms ...` and the admin web reach a running
    server within seconds. Messages are checked against memory only; a room never
    seen is recorded by one background interaction (C{pending} with C{approval} on,
    else C{approved}), and its messages wait for nothing.
    """

    def __init__(self, database: Any, clock: IReactorTime, approval: bool = False,
                 refreshInterval: float = 2.0) -> None:
        self.database = database
        addSchema(database)  # idempotent: the tables are checked at the next schema check
        self.clock = clock
        self.approval = approval
        self.refreshInterval = refreshInterval
        self._statuses: dict[str, str] = {}
        self._settings: dict[str, RoomSettings] = {}
        self._recording: set[str] = set()
        self._sql: roomsql.RoomSql | None = None
        self._loop: task.LoopingCall | None = None
        self._failing = False
        self.loaded = False
        self._waiting: list[defer.Deferred[None]] = []
        self._seenEarly: dict[str, tuple[str, str]] = {}

    @staticmethod
    def addSchema(database: Any) -> None:
        addSchema(database)

    # -- service

    def startService(self) -> None:
        Service.startService(self)
        self._loop = task.LoopingCall(self.refresh)
        self._loop.clock = self.clock
        self._loop.start(self.refreshInterval, now=True)

    def stopService(self) -> None:
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        self._loaded()  # nobody waits for a read that will not come

    # -- the hot path: memory only

    def seen(self, botName: str, roomId: str | None, roomName: str) -> None:
        if not roomId or roomId in self._statuses or roomId in self._recording:
            return
        if not self.loaded:
            # The first read may know it: decided once it has answered.
            self._seenEarly.setdefault(roomId, (botName, roomName))
            return
        self._recording.add(roomId)
        status = "pending" if self.approval else "approved"
        d = self._record(botName, roomId, roomName, status)
        d.addCallbacks(self._recorded, self._notRecorded, callbackArgs=(roomId,),
                       errbackArgs=(roomId,))

    def answers(self, roomId: str | None) -> bool | defer.Deferred[bool]:
        if not self.approval:
            return True
        if not self.loaded:
            return self.whenLoaded().addCallback(
                lambda _: self._statuses.get(roomId or "") == "approved")
        return self._statuses.get(roomId or "") == "approved"

    def whenLoaded(self) -> defer.Deferred[None]:
        """Fires after the first read (whatever its outcome)."""
        if self.loaded:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        return d

    def status(self, roomId: str) -> str | None:
        return self._statuses.get(roomId)

    def isAdmin(self, roomId: str | None, userHash: str | None) -> bool:
        if not roomId or not userHash:
            return False
        return userHash in self._settings.get(roomId, EMPTY).admins

    def settingsOf(self, roomId: str | None) -> RoomSettings:
        return self._settings.get(roomId or "", EMPTY)

    # -- the database

    def _statements(self) -> roomsql.RoomSql | None:
        mapping = self.database.tables.get(ROOM_TABLE.name)
        if mapping is None:
            return None
        if self._sql is None or self._sql.mapping is not mapping:
            self._sql = roomsql.RoomSql(mapping, self.database.sql)
        return self._sql

    @defer.inlineCallbacks
    def run(self, work: Callable[..., Any], *args: Any):
        """C{work(txn, statements, *args)} in a pool thread, the schema checked first when needed."""
        q = self._statements()
        if q is None or not self.database.schemaReady:
            yield self.database.ensureSchema()
            q = self._statements()
            if q is None:
                error = self.database.tableErrors.get(ROOM_TABLE.name)
                raise error if error is not None else RuntimeError("no rooms table")
        result = yield self.database.runInteraction(work, q, *args)
        return result

    def now(self) -> str:
        return datetime.fromtimestamp(self.clock.seconds()).strftime(TIME_FORMAT)

    def _record(self, botName: str, roomId: str, roomName: str, status: str) -> defer.Deferred:
        now = self.now()
        values = {"room": roomId, "name": roomName or roomId, "bot": botName, "status": status,
                  "approvedAt": now if status == "approved" else None, "reason": None,
                  "createdAt": now, "updatedAt": None}
        return self.run(roomsql.recordRoom, values)

    def _recorded(self, result: tuple[str, bool], roomId: str) -> None:
        self._recording.discard(roomId)
        status, new = result
        self._statuses[roomId] = status
        if new:
            log.info("[MSG] new room {room} recorded as {status}", room=roomId, status=status)

    def _notRecorded(self, failure: Any, roomId: str) -> None:
        self._recording.discard(roomId)  # the next message tries again
        log.warn("[DB] cannot record room {room}: {error}", room=roomId,
                 error=failure.getErrorMessage())

    def refresh(self) -> defer.Deferred[None]:
        """Re-read both tables; never fails (the loop must keep running)."""
        d = self.run(roomsql.readAll)
        d.addCallbacks(self._read, self._readFailed)
        d.addBoth(lambda _: self._loaded())
        return d

    def _read(self, result: tuple[dict[str, str], dict[str, RoomSettings]]) -> None:
        statuses, settings = result
        if self._failing:
            self._failing = False
            log.info("[DB] kb_rooms readable again")
        # Rooms being recorded right now keep their place until the insert answers.
        for roomId in self._recording:
            if roomId in self._statuses and roomId not in statuses:
                statuses[roomId] = self._statuses[roomId]
        self._statuses = statuses
        self._settings = settings

    def _readFailed(self, failure: Any) -> None:
        if not self._failing:
            self._failing = True
            log.error("[DB] cannot read kb_rooms (keeping the last statuses): {error}",
                      error=failure.getErrorMessage())

    def _loaded(self) -> None:
        self.loaded = True
        early, self._seenEarly = self._seenEarly, {}
        if self.running:
            for roomId, (botName, roomName) in early.items():
                self.seen(botName, roomId, roomName)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    # -- changes (kkobot-admin rooms, the admin web)

    def list(self, status: str | None = None, bot: str | None = None, roomId: str | None = None,
             limit: int = 1000) -> defer.Deferred[list[roomsql.Room]]:
        return self.run(roomsql.listRooms, status, bot, roomId, limit)

    def setStatus(self, roomId: str, status: str, reason: str | None = None) -> defer.Deferred[bool]:
        d = self.run(roomsql.setRoomStatus, roomId, status, self.now(), reason)

        def changed(found: bool) -> bool:
            if found:
                self._statuses[roomId] = status
            return found

        return d.addCallback(changed)

    def readSettings(self, roomId: str) -> defer.Deferred[RoomSettings]:
        return self.run(roomsql.readSettings, roomId)

    def changeSettings(self, roomId: str,
                       change: Callable[[RoomSettings], RoomSettings]) -> defer.Deferred[RoomSettings]:
        d = self.run(roomsql.changeSettings, roomId, change, self.now())

        def changed(new: RoomSettings) -> RoomSettings:
            self._settings[roomId] = new
            return new

        return d.addCallback(changed)
