"""A chat log's start: the tables checked, and the database asked which journaled rows it has."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.internet import defer

from kkobot.chatlog.flushing import Flusher
from kkobot.chatlog.journal import Journal
from kkobot.chatlog.retry import RetryPolicy
from kkobot.chatlog.sqlwriter import BatchWriter
from kkobot.logs import Logger

log = Logger()


class Startup:
    """
    Checks the schema (creating or mapping the tables) and reads the last seq of
    the journal that kb_chatlog_batches records; until both answer, rows wait in
    the journal and the pair is tried again every C{retryInterval}.
    """

    def __init__(
        self,
        service: IService,
        what: str,
        journal: Journal,
        writer: BatchWriter,
        retries: RetryPolicy,
        flusher: Flusher,
    ) -> None:
        self.service = service
        self.what = what
        self.journal = journal
        self.writer = writer
        self.database = writer.database
        self.retries = retries
        self.flusher = flusher
        # The check under way: a stop waits for it to decide about the pending rows.
        self.preparing: defer.Deferred[None] | None = None

    def prepare(self) -> None:
        self.retries.due()
        d = self.database.ensureSchema()
        d.addCallback(lambda _: self.writer.committed(self.journal.journalId))
        d.addCallbacks(self._prepared, self._notPrepared)
        self.preparing = d
        d.addBoth(self._preparedOrNot)

    def _preparedOrNot(self, _: Any) -> None:
        self.preparing = None

    def _prepared(self, committed: int) -> None:
        if not self.service.running:
            return
        self.flusher.prepared(committed)
        log.info(
            "[DB] {what} log ready at {db}; journal {dir}", what=self.what,
            db=self.database.describe(), dir=self.journal.directory,
        )
        self.flusher.kick()

    def _notPrepared(self, failure: Any) -> None:
        retries = self.retries
        retries.lastError = failure.value
        log.error(
            "[DB] {db} is not available ({error}); rows are journaled in {dir} and "
            "written when it answers; retrying in {delay}s",
            db=self.database.describe(),
            error=failure.getErrorMessage(),
            dir=self.journal.directory,
            delay=retries.retryInterval,
        )
        if self.service.running:
            retries.schedule(retries.retryInterval, self.prepare)
