"""Messages that are not `# commands` but still get an answer: keywords, mentions, operators' auto-replies."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from zope.interface import Interface, implementer

from kkobot.commands.cooldowns import Cooldown
from kkobot.commands.registry import Invocation
from kkobot.logs import Logger

log = Logger()

KINDS = ("keyword", "exact", "regex")
# Operators' regexes run against chat text anyone can send: only its start is searched,
# so a pattern that backtracks badly cannot hold the reactor for long.
MAX_MATCHED_CHARS = 1000
DEFAULT_TRIGGER_COOLDOWN = 30
_WHOLE = re.compile(r".*", re.S)

MYSQL_TRIGGERS = """
CREATE TABLE IF NOT EXISTS `kb_triggers` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `kind` varchar(8) NOT NULL COMMENT 'keyword (contained, any case), exact (whole message) or regex',
  `pattern` varchar(500) NOT NULL,
  `reply` text CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL COMMENT '{sender} and {room} are filled in',
  `channel_id` varchar(50) DEFAULT NULL COMMENT 'the one room it answers in; NULL: every room',
  `cooldown` int(11) NOT NULL DEFAULT 30 COMMENT 'seconds between its answers in one room',
  `created_at` datetime NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='operators'' auto-replies'
"""

SQLITE_TRIGGERS = """
CREATE TABLE IF NOT EXISTS kb_triggers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  pattern TEXT NOT NULL,
  reply TEXT NOT NULL,
  channel_id TEXT DEFAULT NULL,
  cooldown INTEGER NOT NULL DEFAULT 30,
  created_at TEXT NOT NULL
)
"""


class IFloodLimit(Interface):
    """How many trigger answers a room may get; a cluster would share it (e.g. in Redis)."""

    def allow(roomKey):
        """True (and the answer is counted) when the room is under its limit right now."""


@implementer(IFloodLimit)
class RoomFloodLimit:
    """At most C{limit} trigger answers per room in any C{window} seconds (0 turns it off)."""

    def __init__(self, clock: IReactorTime, limit: int = 5, window: float = 60.0) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self._answers: dict[str, deque[float]] = {}

    def allow(self, roomKey: str) -> bool:
        if self.limit <= 0:
            return True
        now = self.clock.seconds()
        times = self._answers.get(roomKey)
        if times is None:
            if len(self._answers) > 10_000:
                self._forgetQuiet(now)
            times = self._answers[roomKey] = deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def _forgetQuiet(self, now: float) -> None:
        for key in [k for k, t in self._answers.items() if not t or t[-1] <= now - self.window]:
            del self._answers[key]


def compileTrigger(kind: str, pattern: str) -> re.Pattern[str]:
    """The regex a trigger row stands for; ValueError for an unknown kind or a bad regex."""
    if kind == "keyword":
        return re.compile(re.escape(pattern), re.IGNORECASE)
    if kind == "exact":
        return re.compile(r"\s*" + re.escape(pattern) + r"\s*\Z", re.IGNORECASE)
    if kind == "regex":
        try:
            return re.compile(pattern, re.IGNORECASE)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}")
    raise ValueError(f"unknown trigger kind {kind!r}: use keyword, exact or regex")


@dataclass(frozen=True)
class TriggerRow:
    """One row of kb_triggers."""

    id: int
    kind: str
    pattern: str
    reply: str
    channelId: str | None
    cooldown: int
    createdAt: str = ""


class TriggerCommand:
    """An operator's auto-reply as a passive command (rooms, permissions and cooldown apply)."""

    adminOnly = False
    aliases = ()
    options = ()
    timeout = None
    usage = ""

    def __init__(self, row: TriggerRow) -> None:
        self.row = row
        self.name = f"trigger-{row.id}"
        self.description = f"자동 응답: {row.pattern}"
        self.regex = compileTrigger(row.kind, row.pattern)
        self.rooms = (row.channelId,) if row.channelId else None
        self.cooldown = Cooldown(room=row.cooldown) if row.cooldown else None

    def run(self, context: Any) -> str:
        return self.row.reply.replace("{sender}", context.sender).replace("{room}", context.room)


class TriggerTable(Service):
    """
    kb_triggers, re-read every C{refreshInterval} seconds, so `kkobot-admin triggers
    add|remove` reaches a running server within seconds.
    """

    def __init__(self, database: Any, clock: IReactorTime, refreshInterval: float = 2.0) -> None:
        self.database = database
        self.clock = clock
        self.refreshInterval = refreshInterval
        self.commands: list[TriggerCommand] = []
        self._rows: tuple[TriggerRow, ...] = ()
        self._loop: task.LoopingCall | None = None
        self._failing = False
        # Fires after the first read (whatever its outcome): kkobot-chat waits for it.
        self.loaded: defer.Deferred[None] = defer.Deferred()

    @staticmethod
    def addSchema(database: Any) -> None:
        database.addSchema(MYSQL_TRIGGERS, SQLITE_TRIGGERS)

    def startService(self) -> None:
        Service.startService(self)
        self._loop = task.LoopingCall(self.refresh)
        self._loop.clock = self.clock
        self._loop.start(self.refreshInterval, now=True)

    def stopService(self) -> None:
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def refresh(self) -> defer.Deferred[None]:
        """Re-read the table; never fails (the loop must keep running)."""
        if self.database.schemaReady:
            d = listTriggers(self.database)
        else:
            # At startup: the DDL is idempotent, so the first read need not wait a turn.
            d = self.database.ensureSchema()
            d.addCallback(lambda _: listTriggers(self.database))
        d.addCallbacks(self._read, self._failed)
        d.addBoth(self._firstRead)
        return d

    def _firstRead(self, _: Any) -> None:
        if not self.loaded.called:
            self.loaded.callback(None)

    def _read(self, rows: list[TriggerRow]) -> None:
        if self._failing:
            self._failing = False
            log.info("[DB] kb_triggers readable again")
        if tuple(rows) == self._rows:
            return
        self._rows = tuple(rows)
        commands = []
        for row in rows:
            try:
                commands.append(TriggerCommand(row))
            except ValueError as e:
                log.warn("[DB] trigger {id} skipped: {error}", id=row.id, error=str(e))
        self.commands = commands
        log.info("[DB] {count} auto-reply trigger(s) in use", count=len(commands))

    def _failed(self, failure: Any) -> None:
        if not self._failing:
            self._failing = True
            log.error("[DB] cannot read kb_triggers (keeping the last list): {error}",
                      error=failure.getErrorMessage())


def listTriggers(database: Any) -> defer.Deferred[list[TriggerRow]]:
    d = database.runQuery(
        "SELECT id, kind, pattern, reply, channel_id, cooldown, created_at FROM kb_triggers ORDER BY id"
    )
    d.addCallback(lambda rows: [TriggerRow(int(r[0]), r[1], r[2], r[3], r[4], int(r[5]), str(r[6]))
                                for r in rows])
    return d


def addTrigger(database: Any, kind: str, pattern: str, reply: str, channelId: str | None,
               cooldown: int, now: float) -> defer.Deferred[int]:
    """Insert one trigger (checked first); fires with its id."""
    compileTrigger(kind, pattern)
    if not reply.strip():
        raise ValueError("the reply is empty")
    created = datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M:%S")
    sql = database.sql(
        "INSERT INTO kb_triggers (kind, pattern, reply, channel_id, cooldown, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)"
    )

    def interaction(txn: Any) -> int:
        txn.execute(sql, (kind, pattern, reply, channelId, int(cooldown), created))
        return int(txn.lastrowid)

    return database.runInteraction(interaction)


def removeTrigger(database: Any, triggerId: int) -> defer.Deferred[bool]:
    sql = database.sql("DELETE FROM kb_triggers WHERE id = %s")

    def interaction(txn: Any) -> bool:
        txn.execute(sql, (int(triggerId),))
        return txn.rowcount > 0

    return database.runInteraction(interaction)


class TriggerMatcher:
    """
    Which passive answer a message gets, when it names no command. In order:
    plugins' C{pattern} commands (the registry's own match), plugins' C{keywords},
    operators' triggers (kb_triggers), and, for a message that mentions the bot,
    plugins' C{mention} commands.
    """

    def __init__(self, commands: Any, table: TriggerTable | None = None) -> None:
        self.commands = commands
        self.table = table
        self._generation = -1
        self._keywords: list[tuple[re.Pattern[str], Any]] = []
        self._mentions: list[Any] = []

    def _refresh(self) -> None:
        keywords, mentions = [], []
        for command in self.commands.commands():
            for keyword in getattr(command, "keywords", ()) or ():
                keywords.append((re.compile(re.escape(keyword), re.IGNORECASE), command))
            if getattr(command, "mention", False):
                mentions.append(command)
        self._keywords, self._mentions = keywords, mentions
        self._generation = self.commands.generation

    def match(self, message: Any) -> Invocation | None:
        if self._generation != getattr(self.commands, "generation", 0):
            self._refresh()
        text = message.text
        for regex, command in self._keywords:
            found = regex.search(text)
            if found is not None:
                return Invocation(command, command.name, text.strip(), found)
        if self.table is not None and self.table.commands:
            head = text[:MAX_MATCHED_CHARS]
            for trigger in self.table.commands:
                if trigger.row.channelId and trigger.row.channelId != message.channelId:
                    continue
                found = trigger.regex.search(head)
                if found is not None:
                    return Invocation(trigger, trigger.name, text.strip(), found)
        if message.isMention and self._mentions:
            command = self._mentions[0]
            return Invocation(command, command.name, text.strip(), _WHOLE.match(text))
        return None
