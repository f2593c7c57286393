"""One journaled log per kind of row (chat, ping), so a table that refuses rows holds back only its own."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from kkobot.chatlog.log import ChatLog
from kkobot.chatlog.rows import ChatRow
from kkobot.chatlog.setaside import rejectedPath
from kkobot.events import NO_EVENTS, IServerEvents
from kkobot.interfaces import IChatLog
from kkobot.chatlog.journal import Journal
from kkobot.chatlog.pings import PingRow

Report = Callable[[], "dict[str, Any]"]


@implementer(IChatLog)
class KindLogs(MultiService):
    """
    A L{ChatLog} per kind of row, each with its own journal, batches, retries and
    kb_chatlog_batches records, behind the one C{IChatLog} the router and the
    protocol use. Rows of a kind whose table refuses them (a missing column, a NOT
    NULL column without default) wait in that kind's journal while the other kinds
    keep flowing; exactly-once holds per journal as it always did.

    The chat journal is the directory the single chat log always used (rows of
    every kind an older version journaled there are written from it as before);
    other kinds journal in a subdirectory named after the kind. Every kind sets
    refused rows aside in the one C{rejected.jsonl}.
    """

    def __init__(self, logs: Iterable[ChatLog]) -> None:
        MultiService.__init__(self)
        self.logs = list(logs)
        self._byKind = {log.kind: log for log in self.logs}
        self._logOf = {log.kind: log.log for log in self.logs}
        self._gates = [log.gate for log in self.logs]
        self.chat = self._byKind[ChatRow.KIND]
        for log in self.logs:
            log.setServiceParent(self)
        self._extraReports: list[Report] = []

    @classmethod
    def build(
        cls,
        database: Any,
        clock: IReactorTime,
        journalDir: str,
        segmentBytes: int = 8 * 1024 * 1024,
        events: IServerEvents = NO_EVENTS,
        **options: Any,
    ) -> KindLogs:
        """The chat log in C{journalDir}, the ping log in C{journalDir}/ping."""
        rejected = rejectedPath(journalDir)
        chat = ChatLog(database, clock, Journal(journalDir, segmentBytes=segmentBytes),
                       events=events, rejectedFile=rejected, **options)
        ping = ChatLog(
            database, clock,
            Journal(os.path.join(journalDir, PingRow.KIND), segmentBytes=segmentBytes),
            events=events, kind=PingRow.KIND, rejectedFile=rejected, backlogPauses=False,
            **options,
        )
        return cls([chat, ping])

    # -- IChatLog

    def log(self, row: Any) -> None:
        self._logOf[row.KIND](row)

    def flush(self) -> defer.Deferred[bool]:
        """Fires True once every kind has written what was logged so far."""
        d = defer.gatherResults([log.flush() for log in self.logs])
        d.addCallback(all)
        return d

    # -- the journal barrier (the protocol's gate)

    @property
    def journalPending(self) -> bool:
        # Asked for every line a connection writes: the journals' queues, read directly.
        for gate in self._gates:
            if gate.journal.lines:
                return True
        return False

    def afterJournaled(self, release: Callable[[], None]) -> None:
        """C{release()} once the rows logged so far, of every kind, are in their journals."""
        pending = None
        for gate in self._gates:
            if gate.journal.lines:
                if pending is not None:
                    self._afterEach(release)
                    return
                pending = gate
        if pending is None:
            release()
        else:
            # One kind's rows wait (a message and its reply are both chat rows): its
            # gate releases the line itself.
            pending.afterJournaled(release)

    def _afterEach(self, release: Callable[[], None]) -> None:
        waiting = [gate for gate in self._gates if gate.journal.lines]
        left = [len(waiting)]

        def one() -> None:
            left[0] -= 1
            if left[0] == 0:
                release()

        for gate in waiting:
            gate.afterJournaled(one)

    def flushJournal(self) -> None:
        for log in self.logs:
            log.flushJournal()

    def setPressureValve(
        self, pause: Callable[[str], None], resume: Callable[[str], None]
    ) -> None:
        """Each kind pauses for reasons of its own, so one kind's resume cannot undo another's pause."""
        for log in self.logs:
            if log.kind == ChatRow.KIND:
                log.setPressureValve(pause, resume)
            else:
                suffix = f":{log.kind}"
                log.setPressureValve(
                    lambda reason, s=suffix: pause(reason + s),
                    lambda reason, s=suffix: resume(reason + s),
                )

    # -- what /readyz, the status page and /metrics read

    @property
    def ready(self) -> bool:
        return all(log.ready for log in self.logs)

    @property
    def databaseUp(self) -> bool:
        """The chat rows' table takes rows (the other kinds: L{tables})."""
        return self.chat.databaseUp

    @property
    def journalFull(self) -> bool:
        return any(log.journalFull for log in self.logs)

    @property
    def pending(self) -> int:
        return sum(log.pending for log in self.logs)

    @property
    def backlog(self) -> int:
        return sum(log.backlog for log in self.logs)

    @property
    def rowsWritten(self) -> int:
        return sum(log.rowsWritten for log in self.logs)

    @property
    def pingRowsWritten(self) -> int:
        return sum(log.pingRowsWritten for log in self.logs)

    @property
    def rowsRejected(self) -> int:
        return sum(log.rowsRejected for log in self.logs)

    @property
    def batchFailures(self) -> int:
        return sum(log.batchFailures for log in self.logs)

    @property
    def rejectedPath(self) -> str:
        return self.chat.rejectedPath

    def addReport(self, report: Report) -> None:
        """Another table kkobot writes (the devices) for L{tables}."""
        self._extraReports.append(report)

    def tables(self) -> list[dict[str, Any]]:
        """Each kind's table: its state (ok, unavailable, refused, starting), error, rows waiting."""
        return [log.report() for log in self.logs] + [report() for report in self._extraReports]
