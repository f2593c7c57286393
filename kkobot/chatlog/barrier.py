"""The journal barrier: rows are in the journal before what answers them leaves; one fsync for many."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from kkobot.chatlog.journal import Journal
from kkobot.chatlog.pressure import Pressure
from kkobot.logs import Logger

log = Logger()


class JournalGate:
    """
    Writes the rows queued in the L{Journal}: every row of a reactor turn with one
    C{os.write} (a C{callLater(0)}), releasing what waited for them
    (L{afterJournaled}), so an answered row survives a SIGKILL. A full disk holds
    the answers and pauses reading until the journal takes rows again. L{sync}
    is the group commit: one fsync, in a thread, for everything written since the
    last one.
    """

    def __init__(
        self,
        journal: Journal,
        clock: IReactorTime,
        pressure: Pressure,
        inThread: Callable[..., defer.Deferred],
        isRunning: Callable[[], bool],
        onDirty: Callable[[], None],
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.pressure = pressure
        self._inThread = inThread
        self._isRunning = isRunning
        # Called when rows were written (or segments trimmed) after the fsync under way began.
        self._onDirty = onDirty
        self.retryInterval = 1.0
        self.full = False
        self.syncing: defer.Deferred[None] | None = None
        # The turn's write (callLater(0)) or, with a full disk, the next try; None
        # when neither is scheduled (L{rowQueued} then schedules the write).
        self.call: IDelayedCall | None = None
        self._waiting: list[Callable[[], None]] = []

    def rowQueued(self) -> None:
        """A row was queued: every row of this reactor turn goes out in one write."""
        if self.call is None:
            # Before any reply that waits in afterJournaled() does.
            self.call = self.clock.callLater(0, self.flush)

    @property
    def pending(self) -> bool:
        """True while logged rows are not yet written to the journal."""
        return bool(self.journal.lines)

    def afterJournaled(self, release: Callable[[], None]) -> None:
        """
        Call C{release()} once every row logged so far is in the journal (now, if it
        is; later, if the disk is full, after the journal takes them again).
        """
        if self.journal.lines:
            self._waiting.append(release)
        else:
            release()

    def flush(self) -> None:
        """Write the rows logged so far to the journal, then release what waited on them."""
        call, self.call = self.call, None
        if call is not None and call.active():
            call.cancel()
        try:
            self.journal.flush()
        except OSError as e:
            self._blocked(e)
            return
        if self.full:
            self.full = False
            log.info("[DB] journal {dir} takes rows again; reading from clients again",
                     dir=self.journal.directory)
            self.pressure.resume("journal")
        waiting, self._waiting = self._waiting, []
        for release in waiting:
            release()

    def _blocked(self, error: OSError) -> None:
        # A full disk: the rows stay queued (and in the buffer, on their way to the
        # database), nothing that answers them is sent, and reading pauses: neither
        # an answer whose rows a crash could lose, nor a dropped row. Committed
        # segments are trimmed as batches land, which frees the space again.
        if not self.full:
            self.full = True
            log.error(
                "[DB] cannot write the journal {dir} ({error}); holding replies and "
                "pausing reading from clients until it takes rows again",
                dir=self.journal.directory,
                error=error,
            )
            self.pressure.pause("journal")
        if self.journal.trimmed:
            # Segments the database has taken: deleting them is what frees the space.
            self.sync()
        if self._isRunning():
            self.call = self.clock.callLater(self.retryInterval, self.flush)

    def sync(self) -> None:
        """fsync what was written since the last fsync, in a thread (one at a time)."""
        journal = self.journal
        if self.syncing is not None or not (journal.dirty or journal.queued or journal.trimmed):
            return
        targets = self.journal.syncTargets()
        d = self._inThread(self.journal.syncFds, targets)
        d.addErrback(
            lambda f: log.failure("[DB] fsync of journal {dir} failed", f,
                                  dir=self.journal.directory)
        )
        d.addBoth(self._synced, targets[0])
        if self.syncing is None and not d.called:
            self.syncing = d

    def _synced(self, _: Any, fds: list[int]) -> None:
        self.syncing = None
        self.journal.synced(fds)
        if self.journal.dirty or self.journal.trimmed:
            self._onDirty()

    def close(self, written: bool, committed: int, backlog: int, what: str, database: str) -> None:
        """
        The last write, fsync and close at shutdown: an empty journal when every row
        is C{written} to the database, else the C{backlog} rows stay for the next start.
        """
        journal = self.journal
        if written:
            # Everything is in the database: leave an empty journal for the next start.
            try:
                journal.rotate()
            except OSError:
                pass  # rows a full disk would not take are in the database already
            journal.trim(committed)
        else:
            log.error(
                "[SHUTDOWN] {count} {what} row(s) not written ({db} is not available); they "
                "stay in the journal {dir} and are written at the next start",
                count=backlog, what=what, db=database, dir=journal.directory,
            )
        self.flush()
        if journal.queued and not written:
            log.error(
                "[SHUTDOWN] the journal {dir} cannot take the last rows (disk full) and "
                "{db} is not available: they are lost",
                dir=journal.directory, db=database,
            )
        journal.syncFds(journal.syncTargets())
        journal.close()
