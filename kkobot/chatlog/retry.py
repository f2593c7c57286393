"""When a batch the database did not take is tried again: at once, or after a growing delay."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from kkobot.db.errors import isSchemaError
from kkobot.db.pool import POOL_MAX, isGoneAway
from kkobot.logs import Logger

log = Logger()


class RetryPolicy:
    """
    Counts the failures in a row of one log's batches and decides the next try.

    A connection the database closed is replaced at once (each pooled connection
    may have died in the same outage); any other failure waits 0.1s, doubling up
    to C{retryInterval}. A schema error also asks for the tables to be checked
    again before the next try. At most one try is scheduled at a time.
    """

    def __init__(
        self, database: Any, clock: IReactorTime, what: str, retryInterval: float
    ) -> None:
        self.database = database
        self.clock = clock
        self.what = what
        self.retryInterval = retryInterval
        # The scheduled try; set, no batch goes before it.
        self.call: IDelayedCall | None = None
        # The next batch goes as soon as the one in flight is done.
        self.atOnce = False
        self.failures = 0
        self.lastError: BaseException | None = None
        # After a schema error the tables are checked again before the next try.
        self.recheck = False

    @property
    def failing(self) -> bool:
        """The last batch (or schema check) failed."""
        return self.failures > 0

    def schedule(self, delay: float, call: Callable[[], None]) -> None:
        self.call = self.clock.callLater(delay, call)

    def due(self) -> None:
        """The scheduled try is running."""
        self.call = None

    def cancel(self) -> None:
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None

    def reset(self) -> None:
        """The database took a batch (or a set-aside row's record)."""
        self.failures = 0
        self.lastError = None

    def recovered(self, table: Callable[[], str]) -> None:
        """A batch went through: said once, after failures (with the C{table()} it went to)."""
        if self.failures:
            log.info(
                "[DB] {db} takes {what} rows again ({table}); writing the rows journaled "
                "meanwhile", db=self.database.describe(), what=self.what, table=table(),
            )
        self.reset()

    def failed(self, error: BaseException) -> None:
        """One more failure in a row."""
        self.failures += 1
        self.lastError = error
        if isSchemaError(error):
            # A table dropped, changed or refusing every row: before the next try the
            # tables are checked again (recreated, or mapped anew; kkobot.db.tablemap).
            self.recheck = True

    def delay(self, failure: Any, count: int, pending: int) -> float | None:
        """
        Seconds until the batch of C{count} rows that just failed is tried again, or
        None for at once (on a new connection).
        """
        error = failure.value
        if self.failures <= POOL_MAX and isGoneAway(error):
            # The pool dropped the dead connection; the retry gets another one.
            log.info("[DB] connection lost ({error}); retrying on a new one",
                     error=failure.getErrorMessage())
            return None
        delay = min(self.retryInterval, 0.1 * 2 ** (self.failures - 1))
        if self.failures <= 2 or self.failures % 50 == 0:
            log.error(
                "[DB] could not write {count} {what} row(s) to {db} ({error}); {pending} "
                "row(s) stay journaled, retrying in {delay:.1f}s{others}",
                count=count,
                what=self.what,
                db=self.database.describe(),
                error=failure.getErrorMessage(),
                pending=pending,
                delay=delay,
                others=" (rows of other tables keep flowing)" if isSchemaError(error) else "",
            )
        return delay
