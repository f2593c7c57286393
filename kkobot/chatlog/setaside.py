"""Rows the database refuses for good: split out of their batch, set aside in rejected.jsonl."""

from __future__ import annotations

import fcntl
import json
import os
from collections import deque
from datetime import datetime
from typing import Any, Callable, Iterable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from kkobot.chatlog.journal import Entry, Journal
from kkobot.chatlog.rows import CLIENT_TIME_FORMAT
from kkobot.chatlog.sqlwriter import COLUMNS_BY_KIND, TABLES, BatchWriter
from kkobot.db.errors import describeError, errorCode
from kkobot.logs import Logger

log = Logger()

# Rows the database refuses for good (bad values, a trigger's SIGNAL, ...): one JSON
# object per line, in the journal directory, so an operator can fix and re-insert them.
REJECTED_FILE = "rejected.jsonl"


def rejectedPath(journalDir: str) -> str:
    """Where the rows the database refused for good are kept, beside the journal."""
    return os.path.join(journalDir, REJECTED_FILE)


def rejectedLine(journalId: str, entry: Entry, error: BaseException, when: datetime) -> bytes:
    """One line of rejected.jsonl: where the row came from, its columns, and why."""
    names = COLUMNS_BY_KIND.get(entry.kind)
    columns: Any = dict(zip(names, entry.values)) if names else list(entry.values)
    record = {
        "time": when.strftime(CLIENT_TIME_FORMAT),
        "journal_id": journalId,
        "seq": entry.seq,
        "table": TABLES.get(entry.kind, entry.kind),
        "error": {"code": errorCode(error), "type": type(error).__name__,
                  "message": str(error.args[1]) if len(error.args) > 1 else str(error)},
        "row": columns,
    }
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def appendRejected(path: str, data: bytes) -> None:
    """Blocking (a worker thread): append and fsync before the row is marked done."""
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # `kkobot-admin rejected import` moves the file away, then takes this lock:
        # holding it, and with the path still naming this file, the line cannot end
        # up in a file being imported.
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class SetAside:
    """
    Finds the rows of a refused batch the database will never take, and sets each
    aside: its line in rejected.jsonl, then a batch record that marks its seq done.

    A batch refused for its rows' sake is split in halves, at once, until the
    refused rows stand alone; a row refused alone is set aside when it comes first
    in line again.
    """

    def __init__(
        self,
        writer: BatchWriter,
        clock: IReactorTime,
        journal: Journal,
        path: str,
        inThread: Callable[..., defer.Deferred],
    ) -> None:
        self.writer = writer
        self.clock = clock
        self.journal = journal
        self.path = path
        self._inThread = inThread
        # While a refused batch is being split: the last seq of each coming batch.
        self.bounds: deque[int] = deque()
        # Rows the database refused for good, by seq: the error, and whether the
        # line is in rejected.jsonl yet. Each waits (first in line) for its record.
        self.refused: dict[int, tuple[BaseException, bool]] = {}

    def isRefused(self, seq: int) -> bool:
        """The row with C{seq} was refused alone: it is set aside, not written."""
        return seq in self.refused

    def batchLength(self, entries: Iterable[Entry], count: int) -> int:
        """How many of the first C{count} rows the next batch takes while splitting."""
        if not self.bounds:
            return count
        end = self.bounds[0]
        return max(1, sum(1 for _, e in zip(range(count), entries) if e.seq <= end))

    def isolate(self, batch: list[Entry], error: BaseException, database: str) -> None:
        """Split a refused batch in halves until the refused rows stand alone."""
        if len(batch) == 1:
            self.refused[batch[0].seq] = (error, False)
            return
        if not self.bounds:
            log.warn(
                "[DB] {db} refused a batch of {count} row(s) ({error}); splitting it "
                "to find the row(s) it refuses",
                db=database, count=len(batch), error=describeError(error),
            )
        while self.bounds and self.bounds[0] <= batch[-1].seq:
            self.bounds.popleft()
        self.bounds.appendleft(batch[-1].seq)
        self.bounds.appendleft(batch[len(batch) // 2 - 1].seq)

    def popBounds(self, committed: int) -> None:
        """Forget the bounds of batches that are written."""
        while self.bounds and self.bounds[0] <= committed:
            self.bounds.popleft()

    def file(self, entry: Entry) -> defer.Deferred[None]:
        """
        The refused row goes to rejected.jsonl (appended and fsynced in a thread),
        then a batch record with row_count 0 marks its seq done in the database. A
        crash between the two repeats the line at the next start, never loses it.
        """
        error, filed = self.refused[entry.seq]
        if filed:
            d: defer.Deferred[Any] = defer.succeed(None)
        else:
            when = datetime.fromtimestamp(self.clock.seconds())
            line = rejectedLine(self.journal.journalId, entry, error, when)
            d = self._inThread(appendRejected, self.path, line)

        def filedOk(_: Any) -> defer.Deferred[None]:
            self.refused[entry.seq] = (error, True)
            return self.writer.markDone(self.journal.journalId, entry.seq)

        d.addCallback(filedOk)
        return d

    def forget(self, seq: int) -> BaseException:
        """The row with C{seq} is set aside: the error the database refused it with."""
        error, _ = self.refused.pop(seq)
        return error

    def report(self, entry: Entry, error: BaseException, database: str, total: int) -> None:
        # The error's text may quote the row (e.g. "Duplicate entry '...'"): debug only.
        log.error(
            "[DB] {db} refused 1 {table} row for good ({error}); it is in {path} "
            "(seq {seq}); {total} row(s) set aside since start",
            db=database, table=TABLES.get(entry.kind, entry.kind),
            error=describeError(error), path=self.path, seq=entry.seq, total=total,
        )
        log.debug("[DB] refused row seq {seq}: {message} {values}", seq=entry.seq,
                  message=str(error), values=entry.values)
