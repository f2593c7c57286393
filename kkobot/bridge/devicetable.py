"""The devices table's SQL, for kkobot's own kb_bot_devices and for an operator's of another shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kkobot.db.errors import isDuplicateKey
from kkobot.db.tablemap import Field, TableMap, TableSpec

STATUSES = ("pending", "approved", "denied", "revoked", "blocked")

TABLE = "kb_bot_devices"
FALLBACK_TABLE = "kkobot_bot_devices"

MYSQL_BOT_DEVICES = """
CREATE TABLE IF NOT EXISTS `{table}` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `bot_name` varchar(64) NOT NULL COMMENT 'bot the device speaks for',
  `device_id` varchar(100) NOT NULL COMMENT 'deviceID of the handshake (or auth.deviceUUID)',
  `client_type` varchar(50) DEFAULT NULL,
  `client_version` varchar(30) DEFAULT NULL,
  `device_info` varchar(255) DEFAULT NULL,
  `address` varchar(64) DEFAULT NULL COMMENT 'last peer address',
  `status` varchar(10) NOT NULL DEFAULT 'pending' COMMENT 'pending|approved|denied|revoked|blocked',
  `first_seen` datetime NOT NULL,
  `last_seen` datetime NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_bot_device` (`bot_name`, `device_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='bridge devices and their approval'
"""

SQLITE_BOT_DEVICES = """
CREATE TABLE IF NOT EXISTS {table} (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  bot_name TEXT NOT NULL,
  device_id TEXT NOT NULL,
  client_type TEXT DEFAULT NULL,
  client_version TEXT DEFAULT NULL,
  device_info TEXT DEFAULT NULL,
  address TEXT DEFAULT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  UNIQUE (bot_name, device_id)
)
"""

# The earlier servers' kb_bot_devices (tests/support/data/operator_tables.sql) has
# ip_address, created_at/updated_at, approved_at, a status enum, and one row per
# device (UNIQUE on device_id alone): there a device's status holds for every bot.
DEVICE_TABLE = TableSpec(
    name=TABLE,
    fallback=FALLBACK_TABLE,
    what="devices",
    fields=(
        Field("bot", ("bot_name",), required=True, width=64, nullable=False),
        Field("device", ("device_id",), required=True, width=100, nullable=False),
        Field("clientType", ("client_type",), width=50),
        Field("version", ("client_version",), width=30),
        Field("deviceInfo", ("device_info",), width=255),
        Field("address", ("address", "ip_address"), width=64),
        Field("status", ("status",), required=True, width=10, values=STATUSES, nullable=False),
        Field("firstSeen", ("first_seen", "created_at"), kind="time"),
        Field("lastSeen", ("last_seen", "updated_at"), kind="time"),
        Field("approvedAt", ("approved_at",), kind="time", own=False),
    ),
    mysql=lambda table: MYSQL_BOT_DEVICES.replace("{table}", table),
    sqlite=lambda table: [SQLITE_BOT_DEVICES.replace("{table}", table)],
    keys=(("bot", "device"), ("device",)),
)

# Refreshed on every handshake's registration (the device was seen again).
SEEN_FIELDS = ("clientType", "version", "deviceInfo", "address", "lastSeen")
LIST_FIELDS = ("bot", "device", "clientType", "version", "deviceInfo", "address", "status",
               "firstSeen", "lastSeen")


class Raced(Exception):
    """Another connection inserted the same device first: run the registration again."""


@dataclass(frozen=True)
class KeyShape:
    """How a device is named in the table: the widths it is clipped to, and whether the bot counts."""

    botWidth: int = 64
    deviceWidth: int = 100
    byDevice: bool = False

    @classmethod
    def of(cls, mapping: TableMap) -> KeyShape:
        return cls(
            botWidth=mapping.widths.get("bot", 64),
            deviceWidth=mapping.widths.get("device", 100),
            byDevice=mapping.key == ("device",),
        )

    def key(self, bot: str, device: str) -> tuple[str, str]:
        """
        The one name of a device in the cache, the local file and the table: both
        clipped to their columns (the database would clip them anyway); the bot is
        "" where the table keeps one row per device.
        """
        return ("" if self.byDevice else bot[: self.botWidth], device[: self.deviceWidth])


class DeviceSql:
    """The statements of one decided devices table (a L{TableMap} of L{DEVICE_TABLE})."""

    def __init__(self, mapping: TableMap, sql: Callable[[str], str], sqlite: bool) -> None:
        self.mapping = mapping
        self.sqlite = sqlite
        self.shape = KeyShape.of(mapping)
        column = mapping.column
        table = mapping.table
        self.keyFields = mapping.key
        where = " AND ".join(f"{column(f)} = %s" for f in self.keyFields)
        self.selectStatus = sql(f"SELECT {column('status')} FROM {table} WHERE {where}")
        self.selectAll = sql(
            f"SELECT {column('bot')}, {column('device')}, {column('status')} FROM {table}"
        )
        self.seenFields = tuple(f for f in SEEN_FIELDS if column(f))
        # A sighting without some detail (an older bridge's handshake) keeps the one known.
        self.updateSeen = sql(
            f"UPDATE {table} SET "
            + ", ".join(f"{column(f)} = COALESCE(%s, {column(f)})" for f in self.seenFields)
            + f" WHERE {where}"
        ) if self.seenFields else None
        self.insertFields = tuple(f.name for f in mapping.spec.fields if column(f.name))
        self.insert = sql(
            f"INSERT INTO {table} ({', '.join(column(f) for f in self.insertFields)}) "
            f"VALUES ({', '.join(['%s'] * len(self.insertFields))})"
        )
        self.setStatus = sql(f"UPDATE {table} SET {column('status')} = %s WHERE {where}")
        approved = column("approvedAt")
        self.approve = sql(
            f"UPDATE {table} SET {column('status')} = %s, {approved} = %s WHERE {where}"
        ) if approved else self.setStatus
        listed = ", ".join(column(f) or "NULL" for f in LIST_FIELDS)
        self.order = f"{column('bot')}, {column('lastSeen') or column('firstSeen') or column('device')} DESC"
        self.listPrefix = f"SELECT {listed} FROM {table}"
        self.statusColumn = column("status")
        self.botColumn = column("bot")
        self.sql = sql

    def clip(self, values: dict[str, Any]) -> dict[str, Any]:
        """C{values} by field name, text clipped to the columns."""
        widths = self.mapping.widths
        return {
            name: value[: widths[name]] if isinstance(value, str) and name in widths else value
            for name, value in values.items()
        }

    def keyValues(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(values[f] for f in self.keyFields)

    def listQuery(self, status: str | None, bot: str | None) -> tuple[str, tuple[Any, ...]]:
        where, args = [], []
        if status is not None:
            where.append(f"{self.statusColumn} = %s")
            args.append(status)
        if bot is not None:
            where.append(f"{self.botColumn} = %s")
            args.append(bot)
        statement = self.listPrefix
        if where:
            statement += " WHERE " + " AND ".join(where)
        return self.sql(statement + " ORDER BY " + self.order), tuple(args)


def registerDevice(txn: Any, q: DeviceSql, values: dict[str, Any]) -> tuple[str, bool]:
    """
    Runs in a pool thread: the device's status, recording it (new: with
    C{values["status"]}) or its being seen again; True when it was new.

    A plain read first takes no gap locks, so new devices registering at once do not
    deadlock each other; two handshakes of the same new device meet at the unique
    key, and the loser (L{Raced}) runs again and finds the row.
    """
    key = q.keyValues(values)
    txn.execute(q.selectStatus, key)
    row = txn.fetchone()
    if row is not None:
        if q.updateSeen is not None:
            txn.execute(q.updateSeen, tuple(values[f] for f in q.seenFields) + key)
        return row[0], False
    try:
        txn.execute(q.insert, tuple(values[f] for f in q.insertFields))
    except Exception as e:
        if isDuplicateKey(e):
            raise Raced() from e
        raise
    return values["status"], True


def setDeviceStatus(txn: Any, q: DeviceSql, key: tuple[Any, ...], status: str, now: Any) -> int:
    """Runs in a pool thread: 1 when the device exists (its status is set), else 0."""
    txn.execute(q.selectStatus, key)
    if txn.fetchone() is None:
        return 0
    if status == "approved" and q.approve is not q.setStatus:
        txn.execute(q.approve, (status, now) + key)
    else:
        txn.execute(q.setStatus, (status,) + key)
    return 1
