"""kb_admin_audit: who changed what in the admin web, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twisted.internet import defer

MYSQL_AUDIT = """
CREATE TABLE IF NOT EXISTS `kb_admin_audit` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `created_at` datetime NOT NULL COMMENT 'when',
  `actor` varchar(100) NOT NULL COMMENT 'who: the admin session (a hash of it) and address',
  `action` varchar(50) NOT NULL COMMENT 'what, e.g. room.approve',
  `target` varchar(200) DEFAULT NULL COMMENT 'what it was done to, e.g. a channel id',
  `detail` text COMMENT 'the values set',
  PRIMARY KEY (`id`),
  KEY `idx_audit_time` (`created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='admin web changes'
"""

SQLITE_AUDIT = [
    """
CREATE TABLE IF NOT EXISTS kb_admin_audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT DEFAULT NULL,
  detail TEXT
)
""",
    "CREATE INDEX IF NOT EXISTS idx_audit_time ON kb_admin_audit (created_at)",
]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str | None
    detail: str | None


def addSchema(database: Any) -> None:
    database.addSchema(MYSQL_AUDIT, SQLITE_AUDIT)


def record(database: Any, actor: str, action: str, target: str | None, detail: str | None,
           now: float) -> defer.Deferred[None]:
    at = datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M:%S")
    return database.runOperation(
        "INSERT INTO kb_admin_audit (created_at, actor, action, target, detail) "
        "VALUES (%s, %s, %s, %s, %s)",
        (at, actor[:100], action[:50], (target or "")[:200] or None, detail),
    )


def recent(database: Any, before: int | None = None, limit: int = 50) -> defer.Deferred[list[AuditEntry]]:
    """Newest first, C{limit} entries below id C{before} (keyset pagination)."""
    where, args = "", ()
    if before is not None:
        where, args = " WHERE id < %s", (int(before),)
    d = database.runQuery(
        "SELECT id, created_at, actor, action, target, detail FROM kb_admin_audit"
        f"{where} ORDER BY id DESC LIMIT {int(limit)}", *([args] if args else []))
    return d.addCallback(lambda rows: [AuditEntry(int(r[0]), str(r[1]), *r[2:]) for r in rows])
