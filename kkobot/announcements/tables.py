"""The announcement tables, kb_schedule and kb_schedule_logs, in the operators' shape (MySQL and SQLite)."""

from __future__ import annotations

from kkobot.db.tablemap import Field, TableSpec

SCHEDULE_TABLE = "kb_schedule"
LOG_TABLE = "kb_schedule_logs"
SCHEDULE_FALLBACK = "kkobot_schedule"
LOG_FALLBACK = "kkobot_schedule_logs"

SCHEDULE_STATUSES = ("active", "inactive", "completed", "error")
SCHEDULE_KINDS = ("once", "weekly", "daily")
OWNER_TYPES = ("distributor", "agency", "branch")
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LOG_STATUSES = ("success", "failed", "partial")

# Byte for byte the operators' definitions (../shared/operator_tables.sql), so a
# database that has none gets the tables their admin web would have created.
MYSQL_SCHEDULE = """
CREATE TABLE IF NOT EXISTS `{table}` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `title` varchar(255) NOT NULL,
  `description` text,
  `created_by_type` enum('distributor','agency','branch') NOT NULL,
  `created_by_id` varchar(50) NOT NULL,
  `created_by_mb_id` varchar(50) NOT NULL,
  `target_bot_name` varchar(30) NOT NULL,
  `target_room_id` varchar(100) NOT NULL,
  `message_text` text,
  `message_images_1` json,
  `message_images_2` json,
  `send_interval_seconds` int(5) DEFAULT 1,
  `media_wait_time_1` int(5) DEFAULT 0,
  `media_wait_time_2` int(5) DEFAULT 0,
  `schedule_type` enum('once','weekly','daily') NOT NULL,
  `schedule_date` date DEFAULT NULL,
  `schedule_time` time NOT NULL,
  `schedule_times` json DEFAULT NULL,
  `schedule_weekdays` set('monday','tuesday','wednesday','thursday','friday','saturday','sunday') DEFAULT NULL,
  `valid_from` datetime NOT NULL,
  `valid_until` datetime NOT NULL,
  `status` enum('active','inactive','completed','error') DEFAULT 'active',
  `last_sent_at` datetime DEFAULT NULL,
  `next_send_at` datetime DEFAULT NULL,
  `send_count` int(11) DEFAULT 0,
  `created_at` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `updated_at` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  KEY `idx_schedule_polling` (`status`,`next_send_at`,`valid_from`,`valid_until`),
  KEY `idx_created_by` (`created_by_type`,`created_by_id`),
  KEY `idx_target_room` (`target_room_id`,`target_bot_name`),
  KEY `idx_target_bot` (`target_bot_name`,`target_room_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='카카오봇 스케줄링 발송 설정'
"""

MYSQL_SCHEDULE_LOGS = """
CREATE TABLE IF NOT EXISTS `{table}` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `schedule_id` int(11) NOT NULL,
  `target_room_id` varchar(100) NOT NULL,
  `sent_message_text` text,
  `sent_images_1` json,
  `sent_images_2` json,
  `send_components` varchar(50),
  `status` enum('success','failed','partial') NOT NULL,
  `error_message` text,
  `api_response` json,
  `scheduled_at` datetime NOT NULL,
  `started_at` datetime NOT NULL,
  `completed_at` datetime DEFAULT NULL,
  `duration_ms` int(11),
  `created_at` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  KEY `{fk}` (`schedule_id`),
  KEY `idx_target_room_logs` (`target_room_id`),
  KEY `idx_status_time` (`status`,`scheduled_at`),
  CONSTRAINT `{fk}` FOREIGN KEY (`schedule_id`) REFERENCES `{parent}` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='카카오봇 스케줄링 발송 로그'
"""

SQLITE_SCHEDULE = """
CREATE TABLE IF NOT EXISTS {table} (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  title TEXT NOT NULL,
  description TEXT,
  created_by_type TEXT NOT NULL CHECK (created_by_type IN ('distributor','agency','branch')),
  created_by_id TEXT NOT NULL,
  created_by_mb_id TEXT NOT NULL,
  target_bot_name TEXT NOT NULL,
  target_room_id TEXT NOT NULL,
  message_text TEXT,
  message_images_1 TEXT,
  message_images_2 TEXT,
  send_interval_seconds INTEGER DEFAULT 1,
  media_wait_time_1 INTEGER DEFAULT 0,
  media_wait_time_2 INTEGER DEFAULT 0,
  schedule_type TEXT NOT NULL CHECK (schedule_type IN ('once','weekly','daily')),
  schedule_date TEXT DEFAULT NULL,
  schedule_time TEXT NOT NULL,
  schedule_times TEXT DEFAULT NULL,
  schedule_weekdays TEXT DEFAULT NULL,
  valid_from TEXT NOT NULL,
  valid_until TEXT NOT NULL,
  status TEXT DEFAULT 'active' CHECK (status IN ('active','inactive','completed','error')),
  last_sent_at TEXT DEFAULT NULL,
  next_send_at TEXT DEFAULT NULL,
  send_count INTEGER DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""

SQLITE_SCHEDULE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_{table}_polling ON {table} (status, next_send_at, valid_from, valid_until)",
    "CREATE INDEX IF NOT EXISTS idx_{table}_created_by ON {table} (created_by_type, created_by_id)",
    "CREATE INDEX IF NOT EXISTS idx_{table}_room ON {table} (target_room_id, target_bot_name)",
    "CREATE INDEX IF NOT EXISTS idx_{table}_bot ON {table} (target_bot_name, target_room_id)",
)

SQLITE_SCHEDULE_LOGS = """
CREATE TABLE IF NOT EXISTS {table} (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  schedule_id INTEGER NOT NULL REFERENCES {parent} (id) ON DELETE CASCADE,
  target_room_id TEXT NOT NULL,
  sent_message_text TEXT,
  sent_images_1 TEXT,
  sent_images_2 TEXT,
  send_components TEXT,
  status TEXT NOT NULL CHECK (status IN ('success','failed','partial')),
  error_message TEXT,
  api_response TEXT,
  scheduled_at TEXT NOT NULL,
  started_at TEXT NOT NULL,
  completed_at TEXT DEFAULT NULL,
  duration_ms INTEGER,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""

SQLITE_SCHEDULE_LOGS_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_{table}_schedule ON {table} (schedule_id)",
    "CREATE INDEX IF NOT EXISTS idx_{table}_room ON {table} (target_room_id)",
    "CREATE INDEX IF NOT EXISTS idx_{table}_status_time ON {table} (status, scheduled_at)",
)


def _parent(logTable: str) -> str:
    return SCHEDULE_TABLE if logTable == LOG_TABLE else SCHEDULE_FALLBACK


def _foreignKey(logTable: str) -> str:
    # Constraint names are per database: the fallback table needs its own.
    return "fk_schedule_logs_schedule" if logTable == LOG_TABLE else f"fk_{logTable}_schedule"


def _sqlite(ddl: str, indexes: tuple[str, ...], table: str) -> list[str]:
    return [s.replace("{table}", table).replace("{parent}", _parent(table)) for s in (ddl, *indexes)]


def _text(name: str, width: int | None = None, required: bool = False, **kw: object) -> Field:
    return Field(name, (name,), required=required, width=width, **kw)  # type: ignore[arg-type]


# Every column, each under its own name: where an operator's table lacks an optional
# one, kkobot does without it; where it lacks a required one, kkobot's own table is used.
SCHEDULE_SPEC = TableSpec(
    name=SCHEDULE_TABLE,
    fallback=SCHEDULE_FALLBACK,
    what="schedules",
    fields=(
        Field("id", ("id",), kind="number", required=True),
        _text("title", 255, required=True, nullable=False),
        _text("description"),
        _text("created_by_type", 20, values=OWNER_TYPES),
        _text("created_by_id", 50),
        _text("created_by_mb_id", 50),
        _text("target_bot_name", 30, required=True, nullable=False),
        _text("target_room_id", 100, required=True, nullable=False),
        _text("message_text"),
        Field("message_images_1", ("message_images_1",), kind="json"),
        Field("message_images_2", ("message_images_2",), kind="json"),
        Field("send_interval_seconds", ("send_interval_seconds",), kind="number"),
        Field("media_wait_time_1", ("media_wait_time_1",), kind="number"),
        Field("media_wait_time_2", ("media_wait_time_2",), kind="number"),
        _text("schedule_type", 10, required=True, values=SCHEDULE_KINDS, nullable=False),
        Field("schedule_date", ("schedule_date",), kind="date"),
        Field("schedule_time", ("schedule_time",), kind="clock", required=True),
        Field("schedule_times", ("schedule_times",), kind="json"),
        _text("schedule_weekdays", 80, values=WEEKDAY_NAMES),
        Field("valid_from", ("valid_from",), kind="time", required=True),
        Field("valid_until", ("valid_until",), kind="time", required=True),
        _text("status", 10, required=True, values=SCHEDULE_STATUSES),
        Field("last_sent_at", ("last_sent_at",), kind="time"),
        Field("next_send_at", ("next_send_at",), kind="time"),
        Field("send_count", ("send_count",), kind="number"),
        Field("created_at", ("created_at",), kind="time"),
        Field("updated_at", ("updated_at",), kind="time"),
    ),
    mysql=lambda table: MYSQL_SCHEDULE.replace("{table}", table),
    sqlite=lambda table: _sqlite(SQLITE_SCHEDULE, SQLITE_SCHEDULE_INDEXES, table),
)

LOG_SPEC = TableSpec(
    name=LOG_TABLE,
    fallback=LOG_FALLBACK,
    what="schedule sends",
    fields=(
        Field("id", ("id",), kind="number", required=True),
        Field("schedule_id", ("schedule_id",), kind="number", required=True),
        _text("target_room_id", 100, required=True, nullable=False),
        _text("sent_message_text"),
        Field("sent_images_1", ("sent_images_1",), kind="json"),
        Field("sent_images_2", ("sent_images_2",), kind="json"),
        _text("send_components", 50),
        _text("status", 10, required=True, values=LOG_STATUSES, nullable=False),
        _text("error_message"),
        Field("api_response", ("api_response",), kind="json"),
        Field("scheduled_at", ("scheduled_at",), kind="time", required=True),
        Field("started_at", ("started_at",), kind="time", required=True),
        Field("completed_at", ("completed_at",), kind="time", required=True),
        Field("duration_ms", ("duration_ms",), kind="number"),
        Field("created_at", ("created_at",), kind="time"),
    ),
    mysql=lambda table: MYSQL_SCHEDULE_LOGS.replace("{table}", table).replace(
        "{parent}", _parent(table)).replace("{fk}", _foreignKey(table)),
    sqlite=lambda table: _sqlite(SQLITE_SCHEDULE_LOGS, SQLITE_SCHEDULE_LOGS_INDEXES, table),
)


def addSchema(database: object) -> None:
    """Have C{database}'s schema check create (or map) both tables; the schedules first (the foreign key)."""
    database.addTable(SCHEDULE_SPEC)  # type: ignore[attr-defined]
    database.addTable(LOG_SPEC)  # type: ignore[attr-defined]
