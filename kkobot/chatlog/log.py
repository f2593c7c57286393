"""The chat log: kb_chat_logs (and kb_ping_monitor) rows, journaled, then written in batches."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from kkobot.chatlog.journal import Cursor, Entry, Journal, encodeValues
# Some names below are imported from here by other modules (until they import them from their own module).
from kkobot.chatlog.rows import CLIENT_TIME_FORMAT, COLUMNS, INSERT_CHAT_LOGS, ChatRow
from kkobot.chatlog.setaside import REJECTED_FILE, appendRejected, rejectedLine, rejectedPath
from kkobot.chatlog.sqlwriter import (
    INSERT_BATCH,
    MAPPED,
    SELECT_BATCH_END,
    SELECT_COMMITTED,
    TABLES,
    WHAT,
    AlreadyCommitted,
    RowWriter,
    addSchema,
    readCommitted,
    writeBatch,
    writerFor,
)
from kkobot.db.errors import describeError, isRowError, isSchemaError
from kkobot.db.pool import POOL_MAX, isGoneAway
from kkobot.events import NO_EVENTS, IServerEvents
from kkobot.interfaces import IChatLog
from kkobot.logs import Logger

log = Logger()

def _inThread(func: Callable[..., Any], *args: Any) -> defer.Deferred:
    from twisted.internet import threads

    return threads.deferToThread(func, *args)


@implementer(IChatLog)
class ChatLog(Service):
    """
    Journals every row, then writes rows in batches: by size, or after a short delay.

    L{log} queues the row in the L{Journal}; every row of a reactor turn is written
    with one C{os.write} (L{flushJournal}, a C{callLater(0)}), and lines that answer
    them wait for that write (L{afterJournaled}), so an answered row survives a SIGKILL. Batches go to the
    database one at a time, in journal order; a failed batch stays (in memory and in
    the journal) and is retried, so the table gets every row exactly once. At most
    C{maxBufferRows} rows wait in memory; past that they are read back from the
    journal when there is room. When the journal too grows past C{maxJournalBytes},
    the pressure valve (the server's pauseAll/resumeAll) stops reading from clients
    until it is back under half of that.
    """

    def __init__(
        self,
        database: Any,
        clock: IReactorTime,
        journal: Journal,
        batchSize: int = 500,
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
        # False: a backlog, however long, never pauses reading from clients (a table
        # that refuses rows must not hold back the others); the disk is the bound.
        self.backlogPauses = backlogPauses
        self.lastError: BaseException | None = None
        self.events = events
        self.clock = clock
        self.journal = journal
        self.batchSize = batchSize
        self.flushInterval = flushInterval
        self.retryInterval = retryInterval
        self.maxBufferRows = max(maxBufferRows, batchSize)
        self.maxJournalBytes = maxJournalBytes
        self._inThread = inThread
        self.ready = False
        self.committed = 0  # every row with seq <= committed is in the database
        self.rowsWritten = 0
        self.pingRowsWritten = 0
        self.batchFailures = 0
        self.rowsRejected = 0
        self.rejectedPath = rejectedFile or rejectedPath(journal.directory)
        # While a refused batch is being split: the last seq of each coming batch.
        self._bounds: deque[int] = deque()
        # Rows the database refused for good, by seq: the error, and whether the
        # line is in rejected.jsonl yet. Each waits (first in line) for its record.
        self._rejected: dict[int, tuple[BaseException, bool]] = {}
        self.paused = False
        self._valve: tuple[Callable[[str], None], Callable[[str], None]] | None = None
        self._buffer: deque[Entry] = deque()
        # Rows with seq >= _spilledFrom are in the journal only (not in _buffer).
        self._spilledFrom: int | None = None
        self._cursor = Cursor(0, 0)
        self._reading = False
        self._syncing: defer.Deferred[None] | None = None
        self._retryAtOnce = False
        self._replaying = False
        self._timer: IDelayedCall | None = None
        self._retry: IDelayedCall | None = None
        self._inFlight: defer.Deferred[None] | None = None
        self._failures = 0
        self._waiters: list[defer.Deferred[bool]] = []
        self._journalCall: IDelayedCall | None = None
        self._journalFull = False
        self.journalRetryInterval = 1.0
        self._afterJournal: list[Callable[[], None]] = []
        self._preparing: defer.Deferred[None] | None = None
        self._sqlite = database.engine == "sqlite"
        self._writers: dict[str, RowWriter] = {}
        # After a schema error the tables are checked again before the next try.
        self._recheck = False
        self._batchStatement = database.sql(INSERT_BATCH)
        self._endStatement = database.sql(SELECT_BATCH_END)
        addSchema(database)

    def setPressureValve(
        self, pause: Callable[[str], None], resume: Callable[[str], None]
    ) -> None:
        """What to call (with reason "chatlog") to stop and restart reading from clients."""
        self._valve = (pause, resume)

    @property
    def pending(self) -> int:
        """Rows waiting for a batch (in memory, or only in the journal); not the one in flight."""
        spilled = 0 if self._spilledFrom is None else self.journal.nextSeq - self._spilledFrom
        return len(self._buffer) + spilled

    @property
    def backlog(self) -> int:
        """Rows journaled but not yet known to be in the database (in flight included)."""
        return self.journal.nextSeq - 1 - self.committed if self.journal.segments else 0

    # -- what /readyz reports

    @property
    def databaseUp(self) -> bool:
        """The schema check and the last batch went through (False during an outage)."""
        return self.ready and self._failures == 0

    @property
    def journalFull(self) -> bool:
        """The journal refuses rows (a full disk): answers are held and reading is paused."""
        return self._journalFull

    @property
    def state(self) -> str:
        """
        ok; unavailable (the database does not answer: rows wait in the journal);
        refused (the table refuses every row, e.g. a column it lacks: rows wait in
        the journal until it is fixed, and other kinds keep flowing); starting.
        """
        if self.ready and self._failures == 0:
            return "ok"
        if self.lastError is None:
            return "starting"
        return "refused" if isSchemaError(self.lastError) else "unavailable"

    def tableName(self) -> str:
        """The table this log's rows go to (as the last schema check decided)."""
        spec = MAPPED.get(self.kind)
        if spec is None:
            return TABLES.get(self.kind, self.kind)
        mapping = self.database.tables.get(spec.name)
        return mapping.table if mapping is not None else spec.name

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
        if self._journalCall is None:
            # Every row of this reactor turn goes out in one write, before any reply
            # that waits in afterJournaled() does.
            self._journalCall = self.clock.callLater(0, self.flushJournal)
        if self._spilledFrom is None:
            if len(self._buffer) < self.maxBufferRows:
                self._buffer.append(Entry(seq, kind, values, payload[1:-1]))
            else:
                self._spilledFrom = seq
                self._checkPressure()
        elif not self.paused and self.journal.totalBytes >= self.maxJournalBytes:
            self._checkPressure()
        if (
            len(self._buffer) >= self.batchSize
            and self._inFlight is None
            and self._retry is None
            and self.ready
        ):
            self._kick()
        elif self._timer is None:
            self._timer = self.clock.callLater(self.flushInterval, self._kick)

    # -- the journal barrier: nothing answered leaves before its rows are journaled

    @property
    def journalPending(self) -> bool:
        """True while logged rows are not yet written to the journal."""
        return self.journal.queued

    def afterJournaled(self, release: Callable[[], None]) -> None:
        """
        Call C{release()} once every row logged so far is in the journal (now, if it
        is; later, if the disk is full, after the journal takes them again).
        """
        if self.journal.queued:
            self._afterJournal.append(release)
        else:
            release()

    def flushJournal(self) -> None:
        """Write the rows logged so far to the journal, then release what waited on them."""
        call, self._journalCall = self._journalCall, None
        if call is not None and call.active():
            call.cancel()
        try:
            self.journal.flush()
        except OSError as e:
            self._journalBlocked(e)
            return
        if self._journalFull:
            self._journalFull = False
            log.info("[DB] journal {dir} takes rows again; reading from clients again",
                     dir=self.journal.directory)
            if self._valve is not None:
                self._valve[1]("journal")
        waiting, self._afterJournal = self._afterJournal, []
        for release in waiting:
            release()

    def _journalBlocked(self, error: OSError) -> None:
        # A full disk: the rows stay queued (and in the buffer, on their way to the
        # database), nothing that answers them is sent, and reading pauses: neither
        # an answer whose rows a crash could lose, nor a dropped row. Committed
        # segments are trimmed as batches land, which frees the space again.
        if not self._journalFull:
            self._journalFull = True
            log.error(
                "[DB] cannot write the journal {dir} ({error}); holding replies and "
                "pausing reading from clients until it takes rows again",
                dir=self.journal.directory,
                error=error,
            )
            if self._valve is not None:
                self._valve[0]("journal")
        if self.running:
            self._journalCall = self.clock.callLater(self.journalRetryInterval, self.flushJournal)

    # -- starting

    def startService(self) -> None:
        self.journal.open()
        if self.journal.hasRows:
            # Rows of an earlier run: replayed from the journal, skipping committed ones.
            self._replaying = True
            self._spilledFrom = self.journal.segments[0]
            self._cursor = self.journal.start()
            log.info(
                "[DB] journal {dir} holds rows from before (seq {first}-{last}); "
                "replaying what the database does not have",
                dir=self.journal.directory,
                first=self.journal.segments[0],
                last=self.journal.nextSeq - 1,
            )
        Service.startService(self)
        self._prepare()

    def _prepare(self) -> None:
        self._retry = None
        d = self.database.ensureSchema()
        d.addCallback(
            lambda _: self.database.runInteraction(
                readCommitted, self.database.sql(SELECT_COMMITTED), self.journal.journalId
            )
        )
        d.addCallbacks(self._prepared, self._notPrepared)
        self._preparing = d
        d.addBoth(self._preparedOrNot)

    def _preparedOrNot(self, _: Any) -> None:
        self._preparing = None

    def _prepared(self, committed: int) -> None:
        if not self.running:
            return
        self.ready = True
        self.committed = max(self.committed, committed)
        self._dropCommitted()
        log.info(
            "[DB] {what} log ready at {db}; journal {dir}", what=self.what,
            db=self.database.describe(), dir=self.journal.directory,
        )
        self._kick()

    def _notPrepared(self, failure: Any) -> None:
        self.lastError = failure.value
        log.error(
            "[DB] {db} is not available ({error}); rows are journaled in {dir} and "
            "written when it answers; retrying in {delay}s",
            db=self.database.describe(),
            error=failure.getErrorMessage(),
            dir=self.journal.directory,
            delay=self.retryInterval,
        )
        if self.running:
            self._retry = self.clock.callLater(self.retryInterval, self._prepare)

    def _dropCommitted(self) -> None:
        while self._buffer and self._buffer[0].seq <= self.committed:
            self._buffer.popleft()
        self._popBounds()
        self.journal.trim(self.committed)

    def _popBounds(self) -> None:
        while self._bounds and self._bounds[0] <= self.committed:
            self._bounds.popleft()

    # -- batches

    def _kick(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        self._syncJournal()
        if not self.ready or self._retry is not None or self._inFlight is not None:
            return
        if (
            self._spilledFrom is not None
            and not self._reading
            and len(self._buffer) < self.batchSize
        ):
            self._refill()
        if self._buffer:
            self._inFlight = self._writeBatch()
        else:
            self._notifyIfIdle()

    def _writeBatch(self) -> defer.Deferred[None]:
        buffer = self._buffer
        if buffer[0].seq in self._rejected:
            return self._setAside(buffer.popleft())
        count = min(self.batchSize, len(buffer))
        if self._bounds:
            # Splitting a refused batch: this batch ends at the next bound.
            end = self._bounds[0]
            count = max(1, sum(1 for _, e in zip(range(count), buffer) if e.seq <= end))
        batch = [buffer.popleft() for _ in range(count)]
        rowsByKind: dict[str, list[Entry]] = {}
        for entry in batch:
            rowsByKind.setdefault(entry.kind, []).append(entry)
        key = (self.journal.journalId, batch[0].seq, batch[-1].seq, len(batch))
        try:
            writers = {kind: self._writer(kind) for kind in rowsByKind}
        except Exception as e:
            # The schema check could not decide this kind's table: the rows wait
            # and the check is repeated before the next try.
            self._recheck = True
            d = defer.fail(e)
        else:
            d = self.database.runInteraction(
                writeBatch, self._batchStatement, key, writers, rowsByKind,
                self._endStatement,
            )
        d.addCallbacks(
            self._written, self._failed, (batch, self.clock.seconds()), errbackArgs=(batch,)
        )
        d.addBoth(self._batchDone)
        return d

    def _writer(self, kind: str) -> RowWriter:
        writer = self._writers.get(kind)
        spec = MAPPED.get(kind)
        if writer is None or (spec is not None
                              and self.database.tables.get(spec.name) is not writer.mapping):
            writer = self._writers[kind] = writerFor(self.database, kind)
        return writer

    def _written(self, _: Any, batch: list[Entry], started: float) -> None:
        if self._failures:
            log.info(
                "[DB] {db} takes {what} rows again ({table}); writing the rows journaled "
                "meanwhile", db=self.database.describe(), what=self.what,
                table=self.tableName(),
            )
        self._failures = 0
        self.lastError = None
        # kb_chat_logs rows only: the operators' count; ping rows are counted apart.
        chat = sum(1 for entry in batch if entry.kind == ChatRow.KIND)
        self.rowsWritten += chat
        self.pingRowsWritten += len(batch) - chat
        self.events.rowsWritten(chat, self.clock.seconds() - started)
        if self._replaying:
            self.events.rowsReplayed(chat)
        self.committed = batch[-1].seq
        self._popBounds()
        self.journal.trim(self.committed)
        if self.paused:
            self._checkPressure()

    def _failed(self, failure: Any, batch: list[Entry]) -> None:
        if failure.check(AlreadyCommitted):
            if batch[0].seq in self._rejected:
                self._setAsideDone(None, batch[0])  # its record made it before a lost reply
                return
            last = failure.value.lastSeq
            done = batch if last is None else [e for e in batch if e.seq <= last]
            rest = batch[len(done):]
            log.info("[DB] batch at seq {seq} was already written", seq=batch[0].seq)
            if rest:
                self._buffer.extendleft(reversed(rest))
                self._retryAtOnce = True
            self._written(None, done, self.clock.seconds())
            return
        # The rows go back first in line: order and the journal are unchanged.
        self._buffer.extendleft(reversed(batch))
        self.batchFailures += 1
        error = failure.value
        if isRowError(error) and batch[0].seq not in self._rejected:
            self._isolate(batch, error)
            return
        self._failures += 1
        self.lastError = error
        if not self._replaying:
            # From here until the backlog is written, batches are replays of the journal.
            self._replaying = True
            self.events.rowsSpooled(self.backlog)
        if isSchemaError(error):
            # A table dropped, changed or refusing every row: before the next try the
            # tables are checked again (recreated, or mapped anew; kkobot.db.tablemap).
            self._recheck = True
        if self._failures <= POOL_MAX and isGoneAway(error):
            # The pool dropped the dead connection; the retry gets another one (each
            # pooled connection may have died in the same outage).
            log.info("[DB] connection lost ({error}); retrying on a new one",
                     error=failure.getErrorMessage())
            self._retryAtOnce = True
            return
        delay = min(self.retryInterval, 0.1 * 2 ** (self._failures - 1))
        if self._failures <= 2 or self._failures % 50 == 0:
            log.error(
                "[DB] could not write {count} {what} row(s) to {db} ({error}); {pending} "
                "row(s) stay journaled, retrying in {delay:.1f}s{others}",
                count=len(batch),
                what=self.what,
                db=self.database.describe(),
                error=failure.getErrorMessage(),
                pending=self.backlog,
                delay=delay,
                others=" (rows of other tables keep flowing)" if isSchemaError(error) else "",
            )
        if self.running:
            self._retry = self.clock.callLater(delay, self._retryNow)
        self._notifyIfIdle(failed=True)

    # -- rows the database refuses for good

    def _isolate(self, batch: list[Entry], error: BaseException) -> None:
        """Split a refused batch in halves, at once, until the refused rows stand alone."""
        self._retryAtOnce = True
        if len(batch) == 1:
            self._rejected[batch[0].seq] = (error, False)
            return
        if not self._bounds:
            log.warn(
                "[DB] {db} refused a batch of {count} row(s) ({error}); splitting it "
                "to find the row(s) it refuses",
                db=self.database.describe(), count=len(batch), error=describeError(error),
            )
        while self._bounds and self._bounds[0] <= batch[-1].seq:
            self._bounds.popleft()
        self._bounds.appendleft(batch[-1].seq)
        self._bounds.appendleft(batch[len(batch) // 2 - 1].seq)

    def _setAside(self, entry: Entry) -> defer.Deferred[None]:
        """
        The refused row goes to rejected.jsonl (appended and fsynced in a thread),
        then a batch record with row_count 0 marks its seq done in the database. A
        crash between the two repeats the line at the next start, never loses it.
        """
        error, filed = self._rejected[entry.seq]
        if filed:
            d: defer.Deferred[Any] = defer.succeed(None)
        else:
            when = datetime.fromtimestamp(self.clock.seconds())
            line = rejectedLine(self.journal.journalId, entry, error, when)
            d = self._inThread(appendRejected, self.rejectedPath, line)

        def filedOk(_: Any) -> defer.Deferred[None]:
            self._rejected[entry.seq] = (error, True)
            key = (self.journal.journalId, entry.seq, entry.seq, 0)
            return self.database.runInteraction(
                writeBatch, self._batchStatement, key, {}, {}, self._endStatement
            )

        d.addCallback(filedOk)
        d.addCallbacks(self._setAsideDone, self._failed, (entry,), errbackArgs=([entry],))
        d.addBoth(self._batchDone)
        return d

    def _setAsideDone(self, _: Any, entry: Entry) -> None:
        error, _ = self._rejected.pop(entry.seq)
        self._failures = 0
        self.lastError = None
        self.rowsRejected += 1
        self.events.rowsRejected(1)
        self.committed = max(self.committed, entry.seq)
        self._popBounds()
        self.journal.trim(self.committed)
        # The error's text may quote the row (e.g. "Duplicate entry '...'"): debug only.
        log.error(
            "[DB] {db} refused 1 {table} row for good ({error}); it is in {path} "
            "(seq {seq}); {total} row(s) set aside since start",
            db=self.database.describe(), table=TABLES.get(entry.kind, entry.kind),
            error=describeError(error), path=self.rejectedPath, seq=entry.seq,
            total=self.rowsRejected,
        )
        log.debug("[DB] refused row seq {seq}: {message} {values}", seq=entry.seq,
                  message=str(error), values=entry.values)
        if self.paused:
            self._checkPressure()

    def _retryNow(self) -> None:
        self._retry = None
        if self._recheck:
            self._recheck = False
            d = self.database.ensureSchema()
            d.addErrback(lambda f: None)  # the batch that follows says what fails
            d.addCallback(lambda _: self._kick() if self.running else None)
            return
        self._kick()

    def _batchDone(self, _: Any) -> None:
        self._inFlight = None
        if self._retry is not None:
            return
        if self._failures and not self._retryAtOnce:
            return  # stopping: the journal keeps the rows for the next start
        backlog = self._buffer or self._spilledFrom is not None
        if len(self._buffer) >= self.batchSize or self._retryAtOnce or (backlog and self._waiters):
            self._retryAtOnce = False
            self._kick()
        elif backlog:
            if self._timer is None:
                self._timer = self.clock.callLater(self.flushInterval, self._kick)
        else:
            self._replaying = False
            self._notifyIfIdle()

    # -- reading spilled rows back from the journal

    def _refill(self) -> None:
        assert self._spilledFrom is not None
        self._reading = True
        fromSeq = max(self._spilledFrom, self.committed + 1)
        nextSeq = self.journal.nextSeq
        limit = max(self.batchSize, self.maxBufferRows - len(self._buffer))
        d = self._inThread(
            self.journal.read, self._cursor, fromSeq, limit, self.journal.snapshot()
        )
        d.addCallbacks(self._refilled, self._readFailed, (nextSeq,))

    def _refilled(self, result: tuple[list[Entry], Cursor, bool], nextSeq: int) -> None:
        entries, cursor, complete = result
        self._reading = False
        self._cursor = cursor
        if self._buffer and entries:
            # Rows logged while the read ran are journal-only (we were spilled), so
            # the buffer cannot hold anything newer than what was read.
            assert self._buffer[-1].seq < entries[0].seq
        self._buffer.extend(e for e in entries if e.seq > self.committed)
        after = nextSeq if complete else entries[-1].seq + 1
        self._spilledFrom = None if after >= self.journal.nextSeq else after
        self._checkPressure()
        self._kick()

    def _readFailed(self, failure: Any) -> None:
        self._reading = False
        log.failure("[DB] could not read the journal {dir}", failure, dir=self.journal.directory)
        if self.running:
            self._retry = self.clock.callLater(self.retryInterval, self._retryNow)

    # -- group commit: one fsync for everything appended since the last one

    def _syncJournal(self) -> None:
        if self._syncing is not None or not (self.journal.dirty or self.journal.queued):
            return
        fds = self.journal.syncTargets()
        d = self._inThread(self.journal.syncFds, fds)
        d.addErrback(
            lambda f: log.failure("[DB] fsync of journal {dir} failed", f,
                                  dir=self.journal.directory)
        )
        d.addBoth(self._synced, fds)
        if self._syncing is None and not d.called:
            self._syncing = d

    def _synced(self, _: Any, fds: list[int]) -> None:
        self._syncing = None
        self.journal.synced(fds)
        if self.journal.dirty and self._timer is None and self.running:
            self._timer = self.clock.callLater(self.flushInterval, self._kick)

    # -- backpressure

    def _checkPressure(self) -> None:
        full = self._spilledFrom is not None and self.journal.totalBytes >= self.maxJournalBytes
        if not self.backlogPauses:
            if full and not self.paused:
                self.paused = True
                log.warn(
                    "[DB] {what} log backlog: {rows} row(s), journal {size} bytes; still "
                    "journaling (a table that refuses rows never pauses the others)",
                    what=self.what, rows=self.backlog, size=self.journal.totalBytes,
                )
            elif self.paused and not full:
                self.paused = False
            return
        if full and not self.paused:
            self.paused = True
            log.warn(
                "[DB] chat log backlog: {rows} row(s), journal {size} bytes; pausing "
                "reading from clients until the database catches up",
                rows=self.backlog,
                size=self.journal.totalBytes,
            )
            if self._valve is not None:
                self._valve[0]("chatlog")
        elif self.paused and (
            self._spilledFrom is None or self.journal.totalBytes <= self.maxJournalBytes // 2
        ):
            self.paused = False
            log.info("[DB] chat log backlog down to {rows} row(s); reading again",
                     rows=self.backlog)
            if self._valve is not None:
                self._valve[1]("chatlog")

    # -- flushing and stopping

    @property
    def drained(self) -> bool:
        return not self._buffer and self._spilledFrom is None and self._inFlight is None

    def _notifyIfIdle(self, failed: bool = False) -> None:
        if not self._waiters:
            return
        if self.drained or failed:
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(self.drained)

    def flush(self) -> defer.Deferred[bool]:
        """Write everything logged so far; fires True when done, False if the database failed."""
        if self.drained:
            return defer.succeed(True)
        if not self.ready:
            return defer.succeed(False)
        d: defer.Deferred[bool] = defer.Deferred()
        self._waiters.append(d)
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
            self._retry = None
        self._kick()
        return d

    @defer.inlineCallbacks
    def stopService(self):
        if self._preparing is not None:
            # A stop right after the start: the schema check under way (bounded by
            # the connect timeout) decides whether the pending rows can be written.
            yield self._preparing
        Service.stopService(self)
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        pending = self.backlog
        if pending:
            log.info("[SHUTDOWN] writing {count} pending {what} row(s)", count=pending,
                     what=self.what)
        while self._inFlight is not None:
            yield self._inFlight
        done = yield self.flush()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._syncing is not None:
            yield self._syncing
        if done and self.drained:
            # Everything is in the database: leave an empty journal for the next start.
            try:
                self.journal.rotate()
            except OSError:
                pass  # rows a full disk would not take are in the database already
            self.journal.trim(self.committed)
        else:
            log.error(
                "[SHUTDOWN] {count} {what} row(s) not written ({db} is not available); they "
                "stay in the journal {dir} and are written at the next start",
                count=self.backlog,
                what=self.what,
                db=self.database.describe(),
                dir=self.journal.directory,
            )
        self.flushJournal()
        if self.journal.queued and not (done and self.drained):
            log.error(
                "[SHUTDOWN] the journal {dir} cannot take the last rows (disk full) and "
                "{db} is not available: they are lost",
                dir=self.journal.directory,
                db=self.database.describe(),
            )
        self.journal.syncFds(self.journal.syncTargets())
        self.journal.close()
