"""The chat log service: kb_chat_logs (and kb_ping_monitor) rows, journaled, then written in batches."""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from kkobot.chatlog.barrier import JournalGate
from kkobot.chatlog.buffer import RowBuffer
from kkobot.chatlog.flushing import Flusher
from kkobot.chatlog.journal import Journal, encodeValues
from kkobot.chatlog.pressure import Pressure
from kkobot.chatlog.progress import Progress
from kkobot.chatlog.retry import RetryPolicy
from kkobot.chatlog.rows import CLIENT_TIME_FORMAT, ChatRow
from kkobot.chatlog.setaside import SetAside, appendRejected, rejectedPath
from kkobot.chatlog.sqlwriter import WHAT, BatchWriter, addSchema, writerFor
from kkobot.chatlog.startup import Startup
from kkobot.db.errors import describeError, isSchemaError
from kkobot.events import NO_EVENTS, IServerEvents
from kkobot.interfaces import IChatLog
from kkobot.logs import Logger

log = Logger()

# Names other modules import from here; the rows, the SQL and the set-aside file
# have modules of their own.
__all__ = [
    "ChatLog", "ChatRow", "CLIENT_TIME_FORMAT", "rejectedPath", "appendRejected",
    "addSchema", "writerFor",
]


def _inThread(func: Callable[..., Any], *args: Any) -> defer.Deferred:
    from twisted.internet import threads

    return threads.deferToThread(func, *args)


@implementer(IChatLog)
class ChatLog(Service):
    """
    Journals every row, then writes rows in batches: by size, or after a short delay.

    L{log} queues the row in the L{Journal}; every row of a reactor turn is written
    with one C{os.write} and lines that answer them wait for that write
    (L{afterJournaled}; L{JournalGate}), so an answered row survives a SIGKILL.
    Batches go to the database one at a time, in journal order (L{Flusher}); a
    failed batch stays (in memory and in the journal) and is retried
    (L{RetryPolicy}), so the table gets every row exactly once; rows refused for
    good are set aside (L{SetAside}). At most C{maxBufferRows} rows wait in memory;
    past that they are read back from the journal when there is room
    (L{RowBuffer}). When the journal too grows past C{maxJournalBytes}, the
    pressure valve (the server's pauseAll/resumeAll) stops reading from clients
    until it is back under half of that (L{Pressure}).
    """

    def __init__(
        self,
        database: Any,
        clock: IReactorTime,
        journal: Journal,
        batchSize: int = 2000,
        flushInterval: float = 0.05,
        retryInterval: float = 5.0,
        maxBufferRows: int = 20_000,
        maxJournalBytes: int = 512 * 1024 * 1024,
        inThread: Callable[..., defer.Deferred] = _inThread,
        events: IServerEvents = NO_EVENTS,
        kind: str = ChatRow.KIND,
        rejectedFile: str | None = None,
        backlogPauses: bool = True,
    ) -> None:
        self.database = database
        # The kind of row this log is for (its journal may also hold rows of other
        # kinds, from before kinds had journals of their own: they are written too).
        self.kind = kind
        self.what = WHAT.get(kind, kind)
        self.clock = clock
        self.journal = journal
        self.writer = BatchWriter(database)
        self.buffer = RowBuffer(journal, max(maxBufferRows, batchSize), inThread)
        self.setAside = SetAside(self.writer, clock, journal,
                                 rejectedFile or rejectedPath(journal.directory), inThread)
        self.progress = Progress(journal, self.setAside, events)
        # False: a backlog, however long, never pauses reading from clients (a table
        # that refuses rows must not hold back the others); the disk is the bound.
        self.pressure = Pressure(self.what, journal, self.buffer, lambda: self.progress.backlog,
                                 maxJournalBytes, backlogPauses)
        self.retries = RetryPolicy(database, clock, self.what, retryInterval)
        self.gate = JournalGate(journal, clock, self.pressure, inThread,
                                lambda: self.running, lambda: self.flusher.soon())
        self.flusher = Flusher(self, kind, clock, journal, self.buffer, self.writer, self.setAside,
                               self.progress, self.retries, self.pressure, self.gate,
                               batchSize, flushInterval)
        self.startup = Startup(self, self.what, journal, self.writer, self.retries, self.flusher)

    ready = property(attrgetter("flusher.ready"))
    committed = property(attrgetter("progress.committed"),
                         doc="Every row with seq <= committed is in the database.")
    rowsWritten = property(attrgetter("progress.rowsWritten"))
    pingRowsWritten = property(attrgetter("progress.pingRowsWritten"))
    batchFailures = property(attrgetter("progress.batchFailures"))
    rowsRejected = property(attrgetter("progress.rowsRejected"))
    lastError = property(attrgetter("retries.lastError"))
    retryInterval = property(attrgetter("retries.retryInterval"))
    paused = property(attrgetter("pressure.paused"))
    rejectedPath = property(attrgetter("setAside.path"))
    journalRetryInterval = property(attrgetter("gate.retryInterval"))

    def setPressureValve(
        self, pause: Callable[[str], None], resume: Callable[[str], None]
    ) -> None:
        """What to call (with reason "chatlog") to stop and restart reading from clients."""
        self.pressure.setValve(pause, resume)

    @property
    def pending(self) -> int:
        """Rows waiting for a batch (in memory, or only in the journal); not the one in flight."""
        return self.buffer.pending

    @property
    def backlog(self) -> int:
        """Rows journaled but not yet known to be in the database (in flight included)."""
        return self.progress.backlog

    # -- what /readyz reports

    @property
    def databaseUp(self) -> bool:
        """The schema check and the last batch went through (False during an outage)."""
        return self.ready and not self.retries.failing

    @property
    def journalFull(self) -> bool:
        """The journal refuses rows (a full disk): answers are held and reading is paused."""
        return self.gate.full

    @property
    def state(self) -> str:
        """
        ok; unavailable (the database does not answer: rows wait in the journal);
        refused (the table refuses every row, e.g. a column it lacks: rows wait in
        the journal until it is fixed, and other kinds keep flowing); starting.
        """
        if self.ready and not self.retries.failing:
            return "ok"
        if self.lastError is None:
            return "starting"
        return "refused" if isSchemaError(self.lastError) else "unavailable"

    def tableName(self) -> str:
        """The table this log's rows go to (as the last schema check decided)."""
        return self.writer.tableName(self.kind)

    def report(self) -> dict[str, Any]:
        """This kind's table for /readyz, the status page and /metrics."""
        error = self.lastError if self.state != "ok" else None
        return {
            "table": self.tableName(),
            "kind": self.what,
            "state": self.state,
            "error": describeError(error) if error is not None else None,
            "waiting": self.backlog,
            "rejected": self.rowsRejected,
        }

    def tables(self) -> list[dict[str, Any]]:
        """L{report} as a list, the way L{kkobot.chatlog.kindlogs.KindLogs} gives every kind's."""
        return [self.report()]

    # -- logging: the per-message hot path

    def log(self, row: Any) -> None:
        values = row.values()
        kind = row.KIND
        payload = encodeValues(values)
        seq = self.journal.add(kind, values, payload)
        self.gate.rowQueued()
        buffer = self.buffer
        if buffer.spilledFrom is None:
            if buffer.add(seq, kind, values, payload):
                self.pressure.check()
        elif not self.pressure.paused and self.journal.totalBytes >= self.pressure.maxJournalBytes:
            self.pressure.check()
        self.flusher.rowAdded()

    # -- the journal barrier: nothing answered leaves before its rows are journaled

    @property
    def journalPending(self) -> bool:
        """True while logged rows are not yet written to the journal."""
        return self.gate.pending

    def afterJournaled(self, release: Callable[[], None]) -> None:
        """
        Call C{release()} once every row logged so far is in the journal (now, if it
        is; later, if the disk is full, after the journal takes them again).
        """
        self.gate.afterJournaled(release)

    def flushJournal(self) -> None:
        """Write the rows logged so far to the journal, then release what waited on them."""
        self.gate.flush()

    # -- starting

    def startService(self) -> None:
        self.journal.open()
        if self.journal.hasRows:
            # Rows of an earlier run: replayed from the journal, skipping committed ones.
            self.flusher.replaying = True
            self.buffer.replayJournal()
            log.info(
                "[DB] journal {dir} holds rows from before (seq {first}-{last}); "
                "replaying what the database does not have",
                dir=self.journal.directory,
                first=self.journal.segments[0],
                last=self.journal.nextSeq - 1,
            )
        Service.startService(self)
        self.startup.prepare()

    # -- flushing and stopping

    @property
    def drained(self) -> bool:
        return self.flusher.drained

    def flush(self) -> defer.Deferred[bool]:
        """Write everything logged so far; fires True when done, False if the database failed."""
        preparing = self.startup.preparing
        if preparing is None:
            return self.flusher.flush()
        # The tables are still being checked (a slow first answer is not a failure):
        # the flush starts once the check has answered, either way.
        d: defer.Deferred[bool] = defer.Deferred()

        def checked(result: Any) -> Any:
            self.flusher.flush().chainDeferred(d)
            return result

        preparing.addBoth(checked)
        return d

    @defer.inlineCallbacks
    def stopService(self):
        if self.startup.preparing is not None:
            # A stop right after the start: the schema check under way (bounded by
            # the connect timeout) decides whether the pending rows can be written.
            yield self.startup.preparing
        Service.stopService(self)
        self.retries.cancel()
        pending = self.backlog
        if pending:
            log.info("[SHUTDOWN] writing {count} pending {what} row(s)", count=pending,
                     what=self.what)
        while self.flusher.inFlight is not None:
            yield self.flusher.inFlight
        done = yield self.flush()
        self.flusher.cancelTimer()
        if self.gate.syncing is not None:
            yield self.gate.syncing
        self.gate.close(done and self.drained, self.committed, self.backlog, self.what,
                        self.database.describe())
