"""kb_ping_monitor: one row per client ping (memory, queue, rooms, RTT), written like chat rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

KIND = "ping"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

MYSQL_PING_MONITOR = """
CREATE TABLE IF NOT EXISTS `kb_ping_monitor` (
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
CREATE TABLE IF NOT EXISTS kb_ping_monitor (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  bot_name TEXT NOT NULL,
  device_id TEXT, device_uuid TEXT, client_address TEXT, client_version TEXT,
  total_memory REAL, memory_usage REAL, memory_percent REAL,
  message_queue_size INTEGER, active_rooms INTEGER, rtt_ms INTEGER,
  ping_time TEXT, server_time TEXT NOT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS idx_ping_bot_time ON kb_ping_monitor (bot_name, server_time)",
]

COLUMNS = (
    "bot_name", "device_id", "device_uuid", "client_address", "client_version",
    "total_memory", "memory_usage", "memory_percent", "message_queue_size",
    "active_rooms", "rtt_ms", "ping_time", "server_time",
)
INSERT_PING_MONITOR = (
    f"INSERT INTO kb_ping_monitor ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(COLUMNS))})"
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
