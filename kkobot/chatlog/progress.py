"""What a chat log has written: the committed watermark, the journal trimmed behind it, counters."""

from __future__ import annotations

from operator import attrgetter

from kkobot.chatlog.journal import Entry, Journal
from kkobot.chatlog.rows import ChatRow
from kkobot.chatlog.setaside import SetAside
from kkobot.events import IServerEvents

_kindOf = attrgetter("kind")


class Progress:
    """
    Every row with seq <= C{committed} is in the database (or set aside); the
    journal keeps only what is after it. The counters are what /metrics and the
    status page read; the server events hear of each batch.
    """

    def __init__(self, journal: Journal, setAside: SetAside, events: IServerEvents) -> None:
        self.journal = journal
        self.setAside = setAside
        self.events = events
        self.committed = 0
        self.rowsWritten = 0
        self.pingRowsWritten = 0
        self.batchFailures = 0
        self.rowsRejected = 0

    def commit(self, committed: int) -> None:
        """The database has every row up to C{committed}: the journal lets them go."""
        self.committed = committed
        self.setAside.popBounds(committed)
        self.journal.trim(committed)

    def written(self, batch: list[Entry], seconds: float, replayed: bool) -> None:
        """C{batch} is in the database, C{seconds} after it left."""
        # kb_chat_logs rows only: the operators' count; ping rows are counted apart.
        chat = list(map(_kindOf, batch)).count(ChatRow.KIND)
        self.rowsWritten += chat
        self.pingRowsWritten += len(batch) - chat
        self.events.rowsWritten(chat, seconds)
        if replayed:
            self.events.rowsReplayed(chat)
        self.commit(batch[-1].seq)

    @property
    def backlog(self) -> int:
        """Rows journaled but not yet known to be in the database (in flight included)."""
        journal = self.journal
        return journal.nextSeq - 1 - self.committed if journal.segments else 0

    def spooled(self, backlog: int) -> None:
        """The database failed: the C{backlog} rows are replayed from the journal when it is back."""
        self.events.rowsSpooled(backlog)

    def setAsideDone(self, entry: Entry) -> None:
        """C{entry} is in rejected.jsonl and its seq is marked done in the database."""
        self.rowsRejected += 1
        self.events.rowsRejected(1)
        self.commit(max(self.committed, entry.seq))
