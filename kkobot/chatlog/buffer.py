"""Rows waiting for a batch: in memory up to a bound, past it read back from the journal."""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from twisted.internet import defer

from kkobot.chatlog.journal import Cursor, Entry, Journal

# Entry's own __new__ is a Python call that only binds its four fields again.
_newTuple = tuple.__new__


class RowBuffer:
    """
    The rows not yet handed to a batch, in journal order.

    At most C{maxRows} wait in memory; from the first row that does not fit, rows
    are in the journal only ("spilled") until L{read} brings them back.
    """

    def __init__(
        self, journal: Journal, maxRows: int, inThread: Callable[..., defer.Deferred]
    ) -> None:
        self.journal = journal
        self.maxRows = maxRows
        self._inThread = inThread
        self.entries: deque[Entry] = deque()
        # Rows with seq >= spilledFrom are in the journal only (not in entries).
        self.spilledFrom: int | None = None
        self.reading = False
        self._cursor = Cursor(0, 0)

    @property
    def pending(self) -> int:
        """Rows waiting (in memory, or only in the journal)."""
        spilled = 0 if self.spilledFrom is None else self.journal.nextSeq - self.spilledFrom
        return len(self.entries) + spilled

    @property
    def empty(self) -> bool:
        """No row waits, in memory or in the journal."""
        return not self.entries and self.spilledFrom is None

    def replayJournal(self) -> None:
        """Rows of an earlier run: every row of the journal is read back from it."""
        self.spilledFrom = self.journal.segments[0]
        self._cursor = self.journal.start()

    def add(self, seq: int, kind: str, values: tuple[Any, ...], payload: bytes) -> bool:
        """One logged row; True when it is the first that does not fit in memory."""
        if len(self.entries) < self.maxRows:
            self.entries.append(_newTuple(Entry, (seq, kind, values, payload[1:-1])))
            return False
        self.spilledFrom = seq
        return True

    def take(self, count: int) -> list[Entry]:
        """The next C{count} rows, for a batch."""
        entries = self.entries
        if count >= len(entries):
            # Usually the whole buffer (a timed batch): one copy, not a pop per row.
            batch = list(entries)
            entries.clear()
            return batch
        popleft = entries.popleft
        return [popleft() for _ in range(count)]

    def putBack(self, batch: list[Entry]) -> None:
        """Rows of a batch that did not go through: first in line again, in order."""
        self.entries.extendleft(reversed(batch))

    def dropCommitted(self, committed: int) -> None:
        """Forget the rows the database has already."""
        while self.entries and self.entries[0].seq <= committed:
            self.entries.popleft()

    def needsReading(self, batchSize: int) -> bool:
        """Spilled rows should be read back: fewer than a batch in memory, no read running."""
        return (
            self.spilledFrom is not None and not self.reading and len(self.entries) < batchSize
        )

    def read(self, committed: int, batchSize: int) -> defer.Deferred[Any]:
        """Read spilled rows back (in a thread); fire with what L{readDone} takes."""
        assert self.spilledFrom is not None
        self.reading = True
        fromSeq = max(self.spilledFrom, committed + 1)
        limit = max(batchSize, self.maxRows - len(self.entries))
        journal = self.journal
        return self._inThread(journal.read, self._cursor, fromSeq, limit, journal.snapshot())

    def readDone(
        self, result: tuple[list[Entry], Cursor, bool], nextSeq: int, committed: int
    ) -> None:
        """The rows read back (those the database does not have) join the buffer."""
        entries, cursor, complete = result
        self.reading = False
        self._cursor = cursor
        if self.entries and entries:
            # Rows logged while the read ran are journal-only (we were spilled), so
            # the buffer cannot hold anything newer than what was read.
            assert self.entries[-1].seq < entries[0].seq
        self.entries.extend(e for e in entries if e.seq > committed)
        after = nextSeq if complete else entries[-1].seq + 1
        self.spilledFrom = None if after >= self.journal.nextSeq else after
