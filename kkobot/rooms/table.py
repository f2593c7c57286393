"""The rooms tables: the operators' kb_rooms (mapped as it is) and kkobot's kb_room_settings."""

from __future__ import annotations

from kkobot.db.tablemap import Field, TableSpec

STATUSES = ("pending", "approved", "denied", "revoked", "blocked")

TABLE = "kb_rooms"
FALLBACK_TABLE = "kkobot_rooms"
SETTINGS_TABLE = "kb_room_settings"

# The earlier servers' admin web creates kb_rooms in this shape (shared/operator_tables.sql);
# where it does not exist kkobot creates the very same table.
MYSQL_ROOMS = """
CREATE TABLE IF NOT EXISTS `{table}` (
  `room_id` varchar(100) NOT NULL,
  `room_name` varchar(255) NOT NULL,
  `bot_name` varchar(30) NOT NULL,
  `room_concurrency` int(11) DEFAULT 1,
  `room_owners` json DEFAULT NULL,
  `owner_type` enum('distributor','agency','branch') DEFAULT NULL,
  `owner_id` varchar(50) DEFAULT NULL,
  `status` enum('pending','approved','denied','revoked','blocked') NOT NULL DEFAULT 'pending',
  `approved_at` datetime DEFAULT NULL,
  `rejection_reason` text,
  `description` text,
  `log_settings` json DEFAULT NULL,
  `created_at` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `updated_at` datetime DEFAULT NULL ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`room_id`),
  KEY `idx_bot_name` (`bot_name`),
  KEY `idx_status` (`status`),
  KEY `idx_owner` (`owner_type`,`owner_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='카카오봇 채팅방 관리'
"""

SQLITE_ROOMS = [
    """
CREATE TABLE IF NOT EXISTS {table} (
  room_id TEXT NOT NULL PRIMARY KEY,
  room_name TEXT NOT NULL,
  bot_name TEXT NOT NULL,
  room_concurrency INTEGER DEFAULT 1,
  room_owners TEXT DEFAULT NULL,
  owner_type TEXT DEFAULT NULL,
  owner_id TEXT DEFAULT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  approved_at TEXT DEFAULT NULL,
  rejection_reason TEXT,
  description TEXT,
  log_settings TEXT DEFAULT NULL,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at TEXT DEFAULT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS {prefix}_status ON {table} (status)",
]

ROOM_TABLE = TableSpec(
    name=TABLE,
    fallback=FALLBACK_TABLE,
    what="rooms",
    fields=(
        Field("room", ("room_id", "channel_id"), required=True, width=100, nullable=False),
        Field("name", ("room_name",), required=True, width=255, nullable=False),
        Field("bot", ("bot_name",), required=True, width=30, nullable=False),
        Field("status", ("status",), required=True, width=10, values=STATUSES, nullable=False),
        Field("approvedAt", ("approved_at",), kind="time"),
        Field("reason", ("rejection_reason",)),
        Field("createdAt", ("created_at",), kind="time"),
        Field("updatedAt", ("updated_at",), kind="time"),
    ),
    mysql=lambda table: MYSQL_ROOMS.replace("{table}", table),
    sqlite=lambda table: [
        s.replace("{table}", table).replace("{prefix}", f"idx_{table}") for s in SQLITE_ROOMS
    ],
    keys=(("room",),),
)

# Per-room settings kb_rooms has no column for: kkobot's own table, one row per room.
MYSQL_ROOM_SETTINGS = """
CREATE TABLE IF NOT EXISTS `kb_room_settings` (
  `room_id` varchar(100) NOT NULL COMMENT 'channel_id (kb_rooms.room_id)',
  `admins` text COMMENT 'JSON array of userHash values that are admins in the room',
  `disabled_commands` text COMMENT 'JSON array of command names refused in the room',
  `command_settings` text COMMENT 'JSON object: command name -> its settings in the room',
  `updated_at` datetime DEFAULT NULL,
  PRIMARY KEY (`room_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='per-room command settings'
"""

SQLITE_ROOM_SETTINGS = """
CREATE TABLE IF NOT EXISTS kb_room_settings (
  room_id TEXT NOT NULL PRIMARY KEY,
  admins TEXT,
  disabled_commands TEXT,
  command_settings TEXT,
  updated_at TEXT DEFAULT NULL
)
"""


def addSchema(database: object) -> None:
    """Both tables, created (or, for kb_rooms, mapped) by the database's schema check."""
    database.addTable(ROOM_TABLE)  # type: ignore[attr-defined]
    database.addSchema(MYSQL_ROOM_SETTINGS, SQLITE_ROOM_SETTINGS)  # type: ignore[attr-defined]
