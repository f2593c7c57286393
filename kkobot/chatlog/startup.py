"""Before a chat log's first batch: the tables are checked and the database says which journaled rows it has."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from kkobot.logs import Logger

if TYPE_CHECKING:
    from kkobot.chatlog.log import ChatLog

log = Logger()


class Startup:
    """
    Checks the schema (creating or mapping the tables) and reads the last seq of
    the journal that kb_chatlog_batches records; until both answer, rows wait in
    the journal and the pair is tried again every C{retryInterval}.
    """

    def __init__(self, service: ChatLog) -> None:
        self.service = service
        # The check under way: a stop waits for it to decide about the pending rows.
        self.preparing: defer.Deferred[None] | None = None

    def prepare(self) -> None:
        service = self.service
        service.retries.due()
        d = service.database.ensureSchema()
        d.addCallback(lambda _: service.writer.committed(service.journal.journalId))
        d.addCallbacks(self._prepared, self._notPrepared)
        self.preparing = d
        d.addBoth(self._preparedOrNot)

    def _preparedOrNot(self, _: Any) -> None:
        self.preparing = None

    def _prepared(self, committed: int) -> None:
        service = self.service
        if not service.running:
            return
        service.flusher.prepared(committed)
        log.info(
            "[DB] {what} log ready at {db}; journal {dir}", what=service.what,
            db=service.database.describe(), dir=service.journal.directory,
        )
        service.flusher.kick()

    def _notPrepared(self, failure: Any) -> None:
        service = self.service
        retries = service.retries
        retries.lastError = failure.value
        log.error(
            "[DB] {db} is not available ({error}); rows are journaled in {dir} and "
            "written when it answers; retrying in {delay}s",
            db=service.database.describe(),
            error=failure.getErrorMessage(),
            dir=service.journal.directory,
            delay=retries.retryInterval,
        )
        if service.running:
            retries.schedule(retries.retryInterval, self.prepare)
