"""The chat log: kb_chat_logs rows built from messages and written in batches."""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Any, Sequence

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from kkobot.logs import Logger
from zope.interface import implementer

from kkobot.events import NO_EVENTS, IServerEvents
from kkobot.interfaces import IChatLog

log = Logger()

# `message` is a MySQL TEXT column: at most 65,535 bytes. The widths below are the
# varchar lengths of kb_chat_logs; an over-long value in strict mode would fail the
# whole batch, so values are clipped before they leave us.
MESSAGE_MAX_BYTES = 65535
WIDTHS = {
    "channel_id": 50,
    "user_hash": 100,
    "room_name": 255,
    "sender": 100,
    "directive": 30,
    "message_type": 20,
    "bot_name": 30,
    "log_id": 50,
}

CLIENT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Laughter and crying jamo, which alone do not make a message meaningful.
_FILLER = re.compile(r"[ㅋㅎㅠㅜ]")


def clip(value: str | None, width: int) -> str | None:
    if value is None or len(value) <= width:
        return value
    return value[:width]


def clipBytes(value: str, limit: int = MESSAGE_MAX_BYTES) -> str:
    encoded = value.encode("utf-8")
    if len(encoded) <= limit:
        return value
    return encoded[:limit].decode("utf-8", "ignore")


def parseClientTime(text: str | None) -> datetime | None:
    """The phone's local `YYYY-MM-DD HH:MM:SS`, or None when absent or malformed."""
    if not text:
        return None
    try:
        return datetime.strptime(text.strip(), CLIENT_TIME_FORMAT)
    except ValueError:
        return None


def isMeaningful(text: str, isCommand: bool) -> bool:
    """A command, or text with at least two letters or digits besides laughter."""
    if isCommand:
        return True
    content = _FILLER.sub("", text)
    return sum(1 for ch in content if ch.isalnum()) >= 2


@dataclass(frozen=True)
class ChatRow:
    """One row of kb_chat_logs, in column order."""

    channel_id: str
    user_hash: str
    room_name: str | None
    sender: str | None
    message: str
    directive: str | None
    message_type: str
    is_meaningful: int
    bot_name: str
    is_mention: int
    is_group_chat: int
    log_id: str | None
    client_timestamp: datetime | None
    server_timestamp: datetime
    is_bot: int
    is_our_bot_response: int
    is_scheduled: int

    @classmethod
    def fromMessage(
        cls, message: Any, botName: str, directive: str | None, received: datetime
    ) -> ChatRow:
        """The row for a message a user sent (an `analyze` event)."""
        return cls.clipped(
            channel_id=message.channelId or "",
            user_hash=message.userHash or "",
            room_name=message.room,
            sender=message.sender,
            message=message.text,
            directive=directive,
            message_type="command" if directive else "normal",
            is_meaningful=int(isMeaningful(message.text, directive is not None)),
            bot_name=botName,
            is_mention=int(message.isMention),
            is_group_chat=int(message.isGroupChat),
            log_id=message.logId,
            client_timestamp=parseClientTime(message.timestamp),
            server_timestamp=received,
            is_bot=0,
            is_our_bot_response=0,
            is_scheduled=0,
        )

    @classmethod
    def forReply(
        cls,
        text: str,
        botName: str,
        room: str,
        channelId: str | None,
        isGroupChat: bool,
        directive: str | None,
        sent: datetime,
        scheduled: bool = False,
    ) -> ChatRow:
        """The row for a message our bot sent."""
        return cls.clipped(
            channel_id=channelId or "",
            user_hash=f"bot:{botName}",
            room_name=room,
            sender=botName,
            message=text,
            directive=directive,
            message_type="bot_response",
            is_meaningful=0,
            bot_name=botName,
            is_mention=0,
            is_group_chat=int(isGroupChat),
            log_id=None,
            client_timestamp=None,
            server_timestamp=sent,
            is_bot=1,
            is_our_bot_response=1,
            is_scheduled=int(scheduled),
        )

    @classmethod
    def clipped(cls, **values: Any) -> ChatRow:
        for name, width in WIDTHS.items():
            values[name] = clip(values[name], width)
        values["message"] = clipBytes(values["message"])
        return cls(**values)

    def values(self) -> tuple[Any, ...]:
        return astuple(self)


COLUMNS = [f.name for f in fields(ChatRow)]
INSERT_CHAT_LOGS = (
    f"INSERT INTO kb_chat_logs ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)


def insertRows(txn: Any, statement: str, rows: Sequence[ChatRow], sqlite: bool) -> None:
    """Runs in a pool thread: one multi-row INSERT for the whole batch."""
    params = [row.values() for row in rows]
    if sqlite:
        params = [tuple(_sqliteValue(v) for v in p) for p in params]
    txn.executemany(statement, params)


def _sqliteValue(value: Any) -> Any:
    # sqlite3's implicit datetime adapter is deprecated; store the MySQL text form.
    if isinstance(value, datetime):
        return value.strftime(CLIENT_TIME_FORMAT)
    return value


@implementer(IChatLog)
class ChatLog(Service):
    """
    Collects rows and writes them in batches: by size, or after a short delay.

    Replies never wait for the database. Only one batch is in flight at a time, so
    rows reach the table in the order they were logged.
    """

    def __init__(
        self,
        database: Any,
        clock: IReactorTime,
        batchSize: int = 200,
        flushInterval: float = 0.05,
        retryInterval: float = 5.0,
        events: IServerEvents = NO_EVENTS,
    ) -> None:
        self.database = database
        self.events = events
        self.retryInterval = retryInterval
        self.ready = False
        self._retry: IDelayedCall | None = None
        self.clock = clock
        self.batchSize = batchSize
        self.flushInterval = flushInterval
        self._buffer: list[ChatRow] = []
        self._timer: IDelayedCall | None = None
        self._inFlight: defer.Deferred[None] | None = None
        self._statement = database.sql(INSERT_CHAT_LOGS)
        self.rowsWritten = 0
        self.rowsFailed = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def log(self, row: ChatRow) -> None:
        self._buffer.append(row)
        if self._inFlight is not None:
            return  # the batch in flight schedules the next one
        if len(self._buffer) >= self.batchSize:
            self._kick()
        elif self._timer is None:
            self._timer = self.clock.callLater(self.flushInterval, self._kick)

    def startService(self) -> None:
        Service.startService(self)
        self._prepare()

    def _prepare(self) -> None:
        self._retry = None
        d = self.database.ensureSchema()
        d.addCallbacks(self._prepared, self._notPrepared)

    def _prepared(self, _: Any) -> None:
        self.ready = True
        log.info("[DB] chat log ready at {db}", db=self.database.describe())
        self._kick()

    def _notPrepared(self, failure: Any) -> None:
        log.error(
            "[DB] {db} is not available ({error}); retrying in {delay}s",
            db=self.database.describe(),
            error=failure.getErrorMessage(),
            delay=self.retryInterval,
        )
        if self.running:
            self._retry = self.clock.callLater(self.retryInterval, self._prepare)

    def _kick(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        if self._inFlight is None and self._buffer and self.ready:
            self._inFlight = self._writeBatch()

    def _writeBatch(self) -> defer.Deferred[None]:
        batch = self._buffer[: self.batchSize]
        del self._buffer[: len(batch)]
        d = self.database.runInteraction(
            insertRows, self._statement, batch, self.database.engine == "sqlite"
        )
        d.addCallbacks(
            self._written, self._failed, callbackArgs=(batch, self.clock.seconds()), errbackArgs=(batch,)
        )
        d.addBoth(self._batchDone)
        return d

    def _written(self, _: Any, batch: list[ChatRow], started: float) -> None:
        self.rowsWritten += len(batch)
        self.events.rowsWritten(len(batch), self.clock.seconds() - started)
        log.debug("[DB] wrote {count} chat row(s)", count=len(batch))

    def _failed(self, failure: Any, batch: list[ChatRow]) -> None:
        self.rowsFailed += len(batch)
        log.error(
            "[DB] could not write {count} chat row(s) to {db}: {error}",
            count=len(batch),
            db=self.database.describe(),
            error=failure.getErrorMessage(),
        )

    def _batchDone(self, _: Any) -> None:
        self._inFlight = None
        if len(self._buffer) >= self.batchSize:
            self._kick()
        elif self._buffer and self._timer is None:
            self._timer = self.clock.callLater(self.flushInterval, self._kick)

    @defer.inlineCallbacks
    def flush(self):
        """Write everything logged so far (as far as the database lets us)."""
        while self._inFlight is not None or (self._buffer and self.ready):
            if self._inFlight is None:
                self._kick()
            if self._inFlight is not None:
                yield self._inFlight

    @defer.inlineCallbacks
    def stopService(self):
        Service.stopService(self)
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        pending = self.pending
        if pending:
            log.info("[SHUTDOWN] writing {count} pending chat row(s)", count=pending)
        yield self.flush()
        if self._timer is not None:
            # Rows the database never took leave a flush timer behind; stopped is stopped.
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        if self._buffer:
            log.error(
                "[SHUTDOWN] {count} chat row(s) not written: {db} is not available",
                count=len(self._buffer),
                db=self.database.describe(),
            )
