"""The rooms tables' statements, run in a pool thread: record a room, read them all, change one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kkobot.db.errors import isDuplicateKey
from kkobot.db.tablemap import TableMap
from kkobot.rooms.settings import RoomSettings
from kkobot.rooms.table import SETTINGS_TABLE

LIST_FIELDS = ("room", "name", "bot", "status", "approvedAt", "reason", "createdAt")


@dataclass(frozen=True)
class Room:
    """One row of kb_rooms (None where the table has no such column)."""

    roomId: str
    name: str
    bot: str
    status: str
    approvedAt: Any
    reason: str | None
    createdAt: Any


class RoomSql:
    """The statements of one decided rooms table (a L{TableMap} of L{ROOM_TABLE})."""

    def __init__(self, mapping: TableMap, sql: Callable[[str], str]) -> None:
        self.mapping = mapping
        column = mapping.column
        table = mapping.table
        self.table = table
        room, status = column("room"), column("status")
        self.selectStatus = sql(f"SELECT {status} FROM {table} WHERE {room} = %s")
        self.selectAll = sql(f"SELECT {room}, {status} FROM {table}")
        self.insertFields = tuple(f.name for f in mapping.spec.fields if column(f.name))
        self.insert = sql(
            f"INSERT INTO {table} ({', '.join(column(f) for f in self.insertFields)}) "
            f"VALUES ({', '.join(['%s'] * len(self.insertFields))})"
        )
        sets = [f"{status} = %s"]
        self.statusArgs = ["status"]
        for name in ("approvedAt", "reason", "updatedAt"):
            if column(name):
                sets.append(f"{column(name)} = %s")
                self.statusArgs.append(name)
        self.setStatus = sql(f"UPDATE {table} SET {', '.join(sets)} WHERE {room} = %s")
        listed = ", ".join(column(f) or "NULL" for f in LIST_FIELDS)
        self.listPrefix = f"SELECT {listed} FROM {table}"
        self.order = f" ORDER BY {column('createdAt') or room} DESC, {room}"
        self.columns = {"status": status, "bot": column("bot"), "room": room}
        self.sql = sql
        self.selectSettings = sql(
            f"SELECT room_id, admins, disabled_commands, command_settings FROM {SETTINGS_TABLE}")
        self.selectOneSettings = sql(
            f"SELECT admins, disabled_commands, command_settings FROM {SETTINGS_TABLE} "
            "WHERE room_id = %s")
        self.updateSettings = sql(
            f"UPDATE {SETTINGS_TABLE} SET admins = %s, disabled_commands = %s, "
            "command_settings = %s, updated_at = %s WHERE room_id = %s")
        self.insertSettings = sql(
            f"INSERT INTO {SETTINGS_TABLE} (admins, disabled_commands, command_settings, "
            "updated_at, room_id) VALUES (%s, %s, %s, %s, %s)")

    def clip(self, values: dict[str, Any]) -> dict[str, Any]:
        widths = self.mapping.widths
        return {
            name: value[: widths[name]] if isinstance(value, str) and name in widths else value
            for name, value in values.items()
        }

    def listQuery(self, status: str | None, bot: str | None, roomId: str | None = None,
                  limit: int = 1000) -> tuple[str, tuple[Any, ...]]:
        where, args = [], []
        for key, value in (("status", status), ("bot", bot), ("room", roomId)):
            if value is not None:
                where.append(f"{self.columns[key]} = %s")
                args.append(value)
        statement = self.listPrefix + (" WHERE " + " AND ".join(where) if where else "")
        return self.sql(statement + self.order + f" LIMIT {int(limit)}"), tuple(args)


def recordRoom(txn: Any, q: RoomSql, values: dict[str, Any]) -> tuple[str, bool]:
    """A room's status, inserting it (with C{values["status"]}) when new; True when it was."""
    values = q.clip(values)
    txn.execute(q.selectStatus, (values["room"],))
    row = txn.fetchone()
    if row is not None:
        return str(row[0]), False
    try:
        txn.execute(q.insert, tuple(values.get(f) for f in q.insertFields))
    except Exception as e:
        if not isDuplicateKey(e):
            raise
        # Another instance recorded it first: its row counts.
        txn.execute(q.selectStatus, (values["room"],))
        row = txn.fetchone()
        return (str(row[0]) if row else values["status"]), False
    return values["status"], True


def readAll(txn: Any, q: RoomSql) -> tuple[dict[str, str], dict[str, RoomSettings]]:
    """Every room's status, and the settings of every room that has some."""
    txn.execute(q.selectAll)
    statuses = {str(room): str(status) for room, status in txn.fetchall()}
    txn.execute(q.selectSettings)
    settings = {str(r[0]): RoomSettings.fromRow(r[1], r[2], r[3]) for r in txn.fetchall()}
    return statuses, settings


def setRoomStatus(txn: Any, q: RoomSql, roomId: str, status: str, now: str,
                  reason: str | None = None) -> bool:
    """False when there is no such room."""
    txn.execute(q.selectStatus, (roomId,))
    if txn.fetchone() is None:
        return False
    values = {"status": status, "approvedAt": now if status == "approved" else None,
              "reason": reason, "updatedAt": now}
    txn.execute(q.setStatus, tuple(values[name] for name in q.statusArgs) + (roomId,))
    return True


def readSettings(txn: Any, q: RoomSql, roomId: str) -> RoomSettings:
    txn.execute(q.selectOneSettings, (roomId,))
    row = txn.fetchone()
    return RoomSettings.fromRow(*row) if row else RoomSettings()


def changeSettings(txn: Any, q: RoomSql, roomId: str, change: Callable[[RoomSettings], RoomSettings],
                   now: str) -> RoomSettings:
    """Read, change and write one room's settings in one transaction; the new settings."""
    txn.execute(q.selectOneSettings, (roomId,))
    row = txn.fetchone()
    new = change(RoomSettings.fromRow(*row) if row else RoomSettings())
    args = new.toRow() + (now, roomId)
    txn.execute(q.updateSettings if row else q.insertSettings, args)
    return new


def listRooms(txn: Any, q: RoomSql, status: str | None = None, bot: str | None = None,
              roomId: str | None = None, limit: int = 1000) -> list[Room]:
    statement, args = q.listQuery(status, bot, roomId, limit)
    txn.execute(statement, args)
    return [Room(str(r[0]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in txn.fetchall()]
