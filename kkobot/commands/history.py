"""A room's chat log as plugins read it (`context.history`): who talked most since when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from zope.interface import Interface, implementer

from kkobot.chatlog.log import CLIENT_TIME_FORMAT

# Replies and scheduled messages carry `bot:<name>` as their user_hash (ChatRow.forReply).
BOT_USER_PREFIX = "bot:"


@dataclass(frozen=True)
class Talker:
    """One sender's message count in a period, with the name they used last."""

    userHash: str
    sender: str
    count: int


class IChatHistory(Interface):
    """Read access to kb_chat_logs for plugins (never blocks; Deferreds)."""

    def topTalkers(channelId, since, until, limit):
        """
        The senders of the most messages in a room between two epoch times, most first,
        bot replies left out: a Deferred list of L{Talker}.
        """


def _text(seconds: float) -> str:
    # The rows' server_timestamp is the server's local time (ChatRow, router._nowText).
    return datetime.fromtimestamp(seconds).strftime(CLIENT_TIME_FORMAT)


@implementer(IChatHistory)
class SqlChatHistory:
    """
    L{IChatHistory} on kb_chat_logs. The count reads only the index
    C{idx_channel_user_time (channel_id, user_hash, server_timestamp)}; each top
    sender's name is then one index lookup.
    """

    COUNT = (
        "SELECT user_hash, COUNT(*) AS n FROM kb_chat_logs "
        "WHERE channel_id = %s AND server_timestamp >= %s AND server_timestamp < %s "
        "AND user_hash NOT LIKE 'bot:%%' "
        "GROUP BY user_hash ORDER BY n DESC, user_hash LIMIT %s"
    )
    NAME = (
        "SELECT sender FROM kb_chat_logs WHERE channel_id = %s AND user_hash = %s "
        "AND server_timestamp >= %s AND server_timestamp < %s "
        "ORDER BY server_timestamp DESC LIMIT 1"
    )

    def __init__(self, database: Any) -> None:
        self.database = database

    def topTalkers(self, channelId: str, since: float, until: float, limit: int = 10) -> defer.Deferred[list[Talker]]:
        count = self.database.sql(self.COUNT)
        name = self.database.sql(self.NAME)
        if self.database.engine == "sqlite":
            count = count.replace("'bot:%%'", "'bot:%'")
        start, end = _text(since), _text(until)

        def interaction(txn: Any) -> list[Talker]:
            txn.execute(count, (channelId, start, end, int(limit)))
            rows = list(txn.fetchall())
            talkers = []
            for userHash, n in rows:
                txn.execute(name, (channelId, userHash, start, end))
                found = txn.fetchone()
                talkers.append(Talker(userHash, (found[0] if found else None) or userHash, int(n)))
            return talkers

        return self.database.runInteraction(interaction)


@implementer(IChatHistory)
class MemoryChatHistory:
    """L{IChatHistory} over an in-memory chat log's C{rows} (L{kkobot.testing.MemoryChatLog})."""

    def __init__(self, chatlog: Any) -> None:
        self.chatlog = chatlog

    def topTalkers(self, channelId: str, since: float, until: float, limit: int = 10) -> defer.Deferred[list[Talker]]:
        start, end = _text(since), _text(until)
        counts: dict[str, int] = {}
        names: dict[str, tuple[str, str]] = {}
        for row in self.chatlog.rows:
            if getattr(row, "KIND", "chat") != "chat" or row.channel_id != channelId:
                continue
            if row.user_hash.startswith(BOT_USER_PREFIX) or not (start <= row.server_timestamp < end):
                continue
            counts[row.user_hash] = counts.get(row.user_hash, 0) + 1
            if row.user_hash not in names or row.server_timestamp >= names[row.user_hash][0]:
                names[row.user_hash] = (row.server_timestamp, row.sender or row.user_hash)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return defer.succeed([Talker(user, names[user][1], n) for user, n in ranked])


class RoomHistory:
    """C{context.history}: the chat log of the room a command was used in."""

    def __init__(self, history: IChatHistory, channelId: str, clock: IReactorTime) -> None:
        self.history = history
        self.channelId = channelId
        self.clock = clock

    def topTalkers(self, since: float, until: float | None = None, limit: int = 10) -> defer.Deferred[list[Talker]]:
        """Who sent the most messages here from C{since} (epoch seconds) until now (or C{until})."""
        end = self.clock.seconds() + 1 if until is None else until
        return self.history.topTalkers(self.channelId, since, end, limit)
