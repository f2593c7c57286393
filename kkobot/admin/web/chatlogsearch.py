"""Searching kb_chat_logs by room, sender, text and time on its primary key: keyset pages, each scan bounded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

PAGE_SIZE = 50
# Ids one page request looks at, at most: a search matching little goes on page by page
# ("이전 기록 계속 검색") instead of scanning the whole table at once.
SCAN_WINDOW = 200_000
COLUMNS = ("id, server_timestamp, bot_name, room_name, channel_id, sender, user_hash, message, "
           "is_our_bot_response")


@dataclass(frozen=True)
class Query:
    room: str = ""  # channel_id
    sender: str = ""  # display name or userHash
    text: str = ""
    since: str = ""  # 'YYYY-MM-DD HH:MM:SS', inclusive
    until: str = ""  # exclusive
    before: int | None = None  # keyset: ids below this


@dataclass(frozen=True)
class Found:
    rows: list[tuple[Any, ...]]
    # Where the next page starts (its `before`), or None when this was the last one.
    nextBefore: int | None
    # True when the next page continues a scan window that found too little (not a full page).
    windowEnded: bool = False


def _firstIdFrom(txn: Any, sql: Callable[[str], str], when: str, low: int, high: int) -> int:
    """The smallest id whose server_timestamp >= C{when} (ids grow with time): a binary search of PK lookups."""
    answer = high
    statement = sql("SELECT id, server_timestamp < %s FROM kb_chat_logs WHERE id >= %s ORDER BY id LIMIT 1")
    while low < high:
        mid = (low + high) // 2
        txn.execute(statement, (when, mid))
        row = txn.fetchone()
        if row is None:
            high = mid
        elif row[1]:
            low = int(row[0]) + 1
        else:
            answer = int(row[0])
            high = mid
    return answer


def escapeLike(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def search(txn: Any, sql: Callable[[str], str], query: Query, pageSize: int = PAGE_SIZE,
           window: int = SCAN_WINDOW) -> Found:
    """Runs in a pool thread: one page of matches, newest first."""
    txn.execute("SELECT MIN(id), MAX(id) FROM kb_chat_logs")
    minId, maxId = txn.fetchone()
    if minId is None:
        return Found([], None)
    minId, maxId = int(minId), int(maxId)
    upper = maxId + 1 if query.before is None else min(int(query.before), maxId + 1)
    lower = minId
    if query.until:
        upper = min(upper, _firstIdFrom(txn, sql, query.until, minId, maxId + 1))
    if query.since:
        lower = max(lower, _firstIdFrom(txn, sql, query.since, minId, maxId + 1))
    if upper <= lower:
        return Found([], None)
    low = max(lower, upper - window)
    where, args = ["id >= %s", "id < %s"], [low, upper]
    if query.room:
        where.append("channel_id = %s")
        args.append(query.room)
    if query.sender:
        where.append("(sender = %s OR user_hash = %s)")
        args += [query.sender, query.sender]
    if query.text:
        where.append("message LIKE %s ESCAPE '!'")
        args.append(f"%{escapeLike(query.text)}%")
    if query.since:
        where.append("server_timestamp >= %s")
        args.append(query.since)
    if query.until:
        where.append("server_timestamp < %s")
        args.append(query.until)
    txn.execute(sql(f"SELECT {COLUMNS} FROM kb_chat_logs WHERE {' AND '.join(where)} "
                    f"ORDER BY id DESC LIMIT {int(pageSize) + 1}"), tuple(args))
    rows = list(txn.fetchall())
    if len(rows) > pageSize:
        return Found(rows[:pageSize], int(rows[pageSize - 1][0]))
    if low > lower:
        return Found(rows, low, windowEnded=True)
    return Found(rows, None)
