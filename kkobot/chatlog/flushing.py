"""The chat log's batches: one at a time, in journal order, each tried until the database has it."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from kkobot.chatlog.barrier import JournalGate
from kkobot.chatlog.buffer import RowBuffer
from kkobot.chatlog.journal import Cursor, Entry, Journal
from kkobot.chatlog.pressure import Pressure
from kkobot.chatlog.retry import RetryPolicy
from kkobot.chatlog.progress import Progress
from kkobot.chatlog.setaside import SetAside
from kkobot.chatlog.sqlwriter import AlreadyCommitted, BatchWriter
from kkobot.db.errors import isRowError
from kkobot.logs import Logger

log = Logger()


class Flusher:
    """
    Writes batches, by size or after C{flushInterval}, one at a time: a failed
    batch goes back first in line (it stays in the journal too) and is tried again
    as the L{RetryPolicy} says, so the table gets every row exactly once. Rows the
    database refuses for good go to L{SetAside}. L{flush} waits for what is
    logged so far.
    """

    def __init__(
        self,
        service: IService,
        kind: str,
        clock: IReactorTime,
        journal: Journal,
        buffer: RowBuffer,
        writer: BatchWriter,
        setAside: SetAside,
        progress: Progress,
        retries: RetryPolicy,
        pressure: Pressure,
        gate: JournalGate,
        batchSize: int,
        flushInterval: float,
    ) -> None:
        self.service = service
        self.kind = kind
        self.clock = clock
        self.journal = journal
        self.buffer = buffer
        self.writer = writer
        self.setAside = setAside
        self.progress = progress
        self.retries = retries
        self.pressure = pressure
        self.gate = gate
        self.batchSize = batchSize
        self.flushInterval = flushInterval
        self.ready = False
        # From a failure (or a start with rows journaled) until the backlog is
        # written, batches are replays of the journal.
        self.replaying = False
        self.inFlight: defer.Deferred[None] | None = None
        # The next batch's callLater(flushInterval), when one is scheduled.
        self.timer: IDelayedCall | None = None
        self._waiters: list[defer.Deferred[bool]] = []

    # -- when the next batch goes

    def rowAdded(self) -> None:
        """A row joined the buffer: a full batch goes now, else within C{flushInterval}."""
        if (
            len(self.buffer.entries) >= self.batchSize
            and self.inFlight is None
            and self.retries.call is None
            and self.ready
        ):
            self.kick()
        elif self.timer is None:
            self.timer = self.clock.callLater(self.flushInterval, self.kick)

    def soon(self) -> None:
        """Within C{flushInterval} (rows journaled since the last fsync began)."""
        if self.timer is None and self.service.running:
            self.timer = self.clock.callLater(self.flushInterval, self.kick)

    def cancelTimer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def prepared(self, committed: int) -> None:
        """The schema is there and the database has every row up to C{committed}."""
        self.ready = True
        committed = max(self.progress.committed, committed)
        self.buffer.dropCommitted(committed)
        self.progress.commit(committed)

    # -- batches

    def kick(self) -> None:
        self.cancelTimer()
        self.gate.sync()
        if not self.ready or self.retries.call is not None or self.inFlight is not None:
            return
        if self.buffer.needsReading(self.batchSize):
            self._refill()
        if self.buffer.entries:
            self.inFlight = self._writeBatch()
        else:
            self.notifyIfIdle()

    def _writeBatch(self) -> defer.Deferred[None]:
        entries = self.buffer.entries
        if self.setAside.isRefused(entries[0].seq):
            return self._setAside(entries.popleft())
        count = self.setAside.batchLength(entries, min(self.batchSize, len(entries)))
        batch = self.buffer.take(count)
        try:
            d = self.writer.write(self.journal.journalId, batch)
        except Exception as e:
            # The schema check could not decide this kind's table: the rows wait
            # and the check is repeated before the next try.
            self.retries.recheck = True
            d = defer.fail(e)
        d.addCallbacks(
            self._written, self._failed, (batch, self.clock.seconds()), errbackArgs=(batch,)
        )
        d.addBoth(self._batchDone)
        return d

    def _written(self, _: Any, batch: list[Entry], started: float) -> None:
        self.retries.recovered(lambda: self.writer.tableName(self.kind))
        self.progress.written(batch, self.clock.seconds() - started, self.replaying)
        if self.pressure.paused:
            self.pressure.check()

    def _failed(self, failure: Any, batch: list[Entry]) -> None:
        if failure.check(AlreadyCommitted):
            if self.setAside.isRefused(batch[0].seq):
                self._setAsideDone(None, batch[0])  # its record made it before a lost reply
                return
            last = failure.value.lastSeq
            done = batch if last is None else [e for e in batch if e.seq <= last]
            rest = batch[len(done):]
            log.info("[DB] batch at seq {seq} was already written", seq=batch[0].seq)
            if rest:
                self.buffer.putBack(rest)
                self.retries.atOnce = True
            self._written(None, done, self.clock.seconds())
            return
        # The rows go back first in line: order and the journal are unchanged.
        self.buffer.putBack(batch)
        self.progress.batchFailures += 1
        error = failure.value
        if isRowError(error) and not self.setAside.isRefused(batch[0].seq):
            self.retries.atOnce = True
            self.setAside.isolate(batch, error, self.writer.database.describe())
            return
        self.retries.failed(error)
        if not self.replaying:
            self.replaying = True
            self.progress.spooled(self.progress.backlog)
        delay = self.retries.delay(failure, len(batch), self.progress.backlog)
        if delay is None:
            self.retries.atOnce = True
            return
        if self.service.running:
            self.retries.schedule(delay, self.retryNow)
        self.notifyIfIdle(failed=True)

    def _setAside(self, entry: Entry) -> defer.Deferred[None]:
        d = self.setAside.file(entry)
        d.addCallbacks(self._setAsideDone, self._failed, (entry,), errbackArgs=([entry],))
        d.addBoth(self._batchDone)
        return d

    def _setAsideDone(self, _: Any, entry: Entry) -> None:
        error = self.setAside.forget(entry.seq)
        self.retries.reset()
        self.progress.setAsideDone(entry)
        self.setAside.report(entry, error, self.writer.database.describe(),
                             self.progress.rowsRejected)
        if self.pressure.paused:
            self.pressure.check()

    def retryNow(self) -> None:
        self.retries.due()
        if self.retries.recheck:
            self.retries.recheck = False
            d = self.writer.database.ensureSchema()
            d.addErrback(lambda f: None)  # the batch that follows says what fails
            d.addCallback(lambda _: self.kick() if self.service.running else None)
            return
        self.kick()

    def _batchDone(self, _: Any) -> None:
        self.inFlight = None
        if self.retries.call is not None:
            return
        if self.retries.failing and not self.retries.atOnce:
            return  # stopping: the journal keeps the rows for the next start
        backlog = not self.buffer.empty
        entries = self.buffer.entries
        if len(entries) >= self.batchSize or self.retries.atOnce or (backlog and self._waiters):
            self.retries.atOnce = False
            self.kick()
        elif backlog:
            if self.timer is None:
                self.timer = self.clock.callLater(self.flushInterval, self.kick)
        else:
            self.replaying = False
            self.notifyIfIdle()

    # -- reading spilled rows back from the journal

    def _refill(self) -> None:
        nextSeq = self.journal.nextSeq
        d = self.buffer.read(self.progress.committed, self.batchSize)
        d.addCallbacks(self._refilled, self._readFailed, (nextSeq,))

    def _refilled(self, result: tuple[list[Entry], Cursor, bool], nextSeq: int) -> None:
        self.buffer.readDone(result, nextSeq, self.progress.committed)
        self.pressure.check()
        self.kick()

    def _readFailed(self, failure: Any) -> None:
        self.buffer.reading = False
        log.failure("[DB] could not read the journal {dir}", failure, dir=self.journal.directory)
        if self.service.running:
            self.retries.schedule(self.retries.retryInterval, self.retryNow)

    # -- flushing

    @property
    def drained(self) -> bool:
        return self.buffer.empty and self.inFlight is None

    def notifyIfIdle(self, failed: bool = False) -> None:
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
        self.retries.cancel()
        self.kick()
        return d
