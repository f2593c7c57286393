"""Which tables retention trims, by which time column, after how many days (retention.*)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kkobot.chatlog.pings import PING_TABLE


@dataclass(frozen=True)
class Target:
    """Rows of C{table} whose C{timeColumn} is older than C{days} days go, by C{idColumn} ranges."""

    key: str  # the setting: retention.<key>
    table: str
    timeColumn: str
    days: float
    idColumn: str = "id"


def targets(database: Any, get: Callable[[str, Any], Any]) -> list[Target]:
    """The targets switched on (days > 0), for the tables as the database decided them."""
    out = []
    chat = get("retention.chat_logs_days", 0)
    if chat:
        out.append(Target("chat_logs_days", "kb_chat_logs", "server_timestamp", chat))
    ping = get("retention.ping_days", 30)
    if ping:
        # The operators' kb_ping_monitor may keep the time in ping_time (see chatlog/pings.py).
        mapping = database.tables.get(PING_TABLE.name)
        if mapping is not None and mapping.column("server_time"):
            out.append(Target("ping_days", mapping.table, mapping.column("server_time"), ping))
    logs = get("retention.schedule_logs_days", 180)
    if logs:
        out.append(Target("schedule_logs_days", "kb_schedule_logs", "created_at", logs))
    return out
