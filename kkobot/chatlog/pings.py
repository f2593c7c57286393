"""kb_ping_monitor: one row per client ping (memory, queue, rooms, RTT), written like chat rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from kkobot.db.tablemap import Constant, Field, TableSpec

KIND = "ping"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

TABLE = "kb_ping_monitor"
# Where ping rows go when an operator's kb_ping_monitor cannot take them.
FALLBACK_TABLE = "kkobot_ping_monitor"

MYSQL_PING_MONITOR = """
CREATE TABLE IF NOT EXISTS `{table}` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `bot_name` varchar(30) NOT NULL COMMENT 'bot name',
  `device_id` varchar(100) DEFAULT NULL COMMENT 'deviceID from the handshake',
  `device_uuid` varchar(100) DEFAULT NULL COMMENT 'auth.deviceUUID of the ping',
  `client_address` varchar(64) DEFAULT NULL COMMENT 'peer address',
  `client_version` varchar(30) DEFAULT NULL COMMENT 'bridge version',
  `total_memory` double DEFAULT NULL COMMENT 'MB',
  `memory_usage` double DEFAULT NULL COMMENT 'MB',
  `memory_percent` double DEFAULT NULL,
  `message_queue_size` int DEFAULT NULL,
  `active_rooms` int DEFAULT NULL,
  `rtt_ms` int DEFAULT NULL COMMENT 'round trip of our ping; NULL for an unprompted ping',
  `ping_time` datetime DEFAULT NULL COMMENT 'auth.timestamp: when the phone sent it',
  `server_time` datetime NOT NULL COMMENT 'when the server received it',
  PRIMARY KEY (`id`),
  KEY `idx_bot_time` (`bot_name`, `server_time`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='bridge ping monitoring'
"""

SQLITE_PING_MONITOR = [
    """
CREATE TABLE IF NOT EXISTS {table} (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  bot_name TEXT NOT NULL,
  device_id TEXT, device_uuid TEXT, client_address TEXT, client_version TEXT,
  total_memory REAL, memory_usage REAL, memory_percent REAL,
  message_queue_size INTEGER, active_rooms INTEGER, rtt_ms INTEGER,
  ping_time TEXT, server_time TEXT NOT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS {index} ON {table} (bot_name, server_time)",
]


def _mysql(table: str) -> str:
    return MYSQL_PING_MONITOR.replace("{table}", table)


def _sqlite(table: str) -> list[str]:
    # SQLite index names are database-wide: kb_ping_monitor keeps the name it always had.
    index = "idx_ping_bot_time" if table == TABLE else f"idx_{table}_bot_time"
    return [s.replace("{table}", table).replace("{index}", index) for s in SQLITE_PING_MONITOR]


COLUMNS = (
    "bot_name", "device_id", "device_uuid", "client_address", "client_version",
    "total_memory", "memory_usage", "memory_percent", "message_queue_size",
    "active_rooms", "rtt_ms", "ping_time", "server_time",
)
INSERT_PING_MONITOR = (
    f"INSERT INTO kb_ping_monitor ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)

# Where each value may go in a kb_ping_monitor an operator already has (the earlier
# servers' table: response_time_ms, ping_time NOT NULL, status). Without a
# server_time column, ping_time takes the time the server received the ping (always
# known; a phone's clock drifts and older bridges send none).
PING_TABLE = TableSpec(
    name=TABLE,
    fallback=FALLBACK_TABLE,
    what="ping rows",
    fields=(
        Field("bot_name", ("bot_name",), required=True, width=30, nullable=False),
        Field("device_id", ("device_id",), width=100),
        Field("device_uuid", ("device_uuid",), width=100),
        Field("client_address", ("client_address", "ip_address", "address"), width=64),
        Field("client_version", ("client_version",), width=30),
        Field("total_memory", ("total_memory",), kind="number"),
        Field("memory_usage", ("memory_usage",), kind="number"),
        Field("memory_percent", ("memory_percent",), kind="number"),
        Field("message_queue_size", ("message_queue_size",), kind="number"),
        Field("active_rooms", ("active_rooms",), kind="number"),
        Field("rtt_ms", ("rtt_ms", "response_time_ms"), kind="number"),
        Field("ping_time", ("ping_time",), kind="time", label="the phone's ping time"),
        Field("server_time", ("server_time", "ping_time"), kind="time", required=True,
              nullable=False, claimOrder=-1),
    ),
    mysql=_mysql,
    sqlite=_sqlite,
    # A ping that arrives is a success (the earlier servers' status column).
    constants=(Constant("status", "success"),),
)


# The int columns' range: a value past it would have MySQL refuse the whole row.
_INT_LIMIT = 2**31


def _number(value: Any) -> float | None:
    # Old bridges send nulls, strings or nothing; a bad value is recorded as NULL.
    # So are NaN, infinities and numbers past a double (JSON allows all of them
    # through Python's parser; MySQL stores none, and the journal writes them as null).
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    if number is None or not -_INT_LIMIT <= number < _INT_LIMIT:
        return None
    return int(number)


def _text(value: Any, width: int) -> str | None:
    if not isinstance(value, str) or value == "unknown":
        return None
    return value[:width]


def _epochMillis(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value / 1000).strftime(TIME_FORMAT)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class PingRow:
    """One kb_ping_monitor row, in column order, as JSON-safe values."""

    KIND = KIND
    row: tuple[Any, ...]

    @classmethod
    def fromPing(
        cls, client: Any, ping: Any, rttMillis: Any, received: datetime
    ) -> PingRow:
        """The row for one client ping; C{monitoring} (3.1.4+) or C{client_status}."""
        status: Mapping[str, Any] = ping.monitoring or ping.client_status or {}
        auth: Mapping[str, Any] = ping.auth or {}
        total = _number(status.get("total_memory"))
        used = _number(status.get("memory_usage", status.get("ram")))
        return cls((
            (client.botName or "")[:30],
            _text(client.deviceID, 100),
            _text(auth.get("deviceUUID"), 100),
            _text(client.address, 64),
            _text(client.version, 30),
            total,
            used,
            _number(status.get("memory_percent")),
            _integer(status.get("message_queue_size")),
            _integer(status.get("active_rooms")),
            _integer(rttMillis),
            _epochMillis(auth.get("timestamp")),
            received.strftime(TIME_FORMAT),
        ))

    def values(self) -> tuple[Any, ...]:
        return self.row
