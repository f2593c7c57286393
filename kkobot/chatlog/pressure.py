"""Backpressure: pausing reading from clients while the journal backs up or the disk refuses rows."""

from __future__ import annotations

from typing import Callable

from kkobot.chatlog.buffer import RowBuffer
from kkobot.chatlog.journal import Journal
from kkobot.logs import Logger

log = Logger()

Valve = Callable[[str], None]


class Pressure:
    """
    Whether one log holds back reading from clients, and the valve that does it
    (the server's pauseAll/resumeAll, given a reason).

    The journal past C{maxJournalBytes} with rows spilled out of memory pauses until
    it is back under half of that, unless C{backlogPauses} is False (a table that
    refuses rows must not hold back the others; the disk is the bound).
    """

    def __init__(
        self,
        what: str,
        journal: Journal,
        buffer: RowBuffer,
        backlog: Callable[[], int],
        maxJournalBytes: int,
        backlogPauses: bool,
    ) -> None:
        self.what = what
        self.journal = journal
        self.buffer = buffer
        self.backlog = backlog
        self.maxJournalBytes = maxJournalBytes
        self.backlogPauses = backlogPauses
        self.paused = False
        self._valve: tuple[Valve, Valve] | None = None

    def setValve(self, pause: Valve, resume: Valve) -> None:
        self._valve = (pause, resume)

    def pause(self, reason: str) -> None:
        if self._valve is not None:
            self._valve[0](reason)

    def resume(self, reason: str) -> None:
        if self._valve is not None:
            self._valve[1](reason)

    def check(self) -> None:
        """Pause or resume after the journal or the buffer changed."""
        spilled = self.buffer.spilledFrom is not None
        full = spilled and self.journal.totalBytes >= self.maxJournalBytes
        if not self.backlogPauses:
            if full and not self.paused:
                self.paused = True
                log.warn(
                    "[DB] {what} log backlog: {rows} row(s), journal {size} bytes; still "
                    "journaling (a table that refuses rows never pauses the others)",
                    what=self.what, rows=self.backlog(), size=self.journal.totalBytes,
                )
            elif self.paused and not full:
                self.paused = False
            return
        if full and not self.paused:
            self.paused = True
            log.warn(
                "[DB] chat log backlog: {rows} row(s), journal {size} bytes; pausing "
                "reading from clients until the database catches up",
                rows=self.backlog(),
                size=self.journal.totalBytes,
            )
            self.pause("chatlog")
        elif self.paused and (
            not spilled or self.journal.totalBytes <= self.maxJournalBytes // 2
        ):
            self.paused = False
            log.info("[DB] chat log backlog down to {rows} row(s); reading again",
                     rows=self.backlog())
            self.resume("chatlog")
