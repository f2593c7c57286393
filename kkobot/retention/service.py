"""The retention service: now and then, each table's old rows deleted batch by batch, pausing between batches."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from kkobot.logs import Logger
from kkobot.retention.batches import deleteBatch, firstId
from kkobot.retention.targets import Target, targets

log = Logger()

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class RetentionService(Service):
    """
    Every C{interval} seconds (the first time C{firstDelay} after start), deletes
    rows past their table's retention in batches of C{batchSize} rows by primary key,
    each batch its own short transaction, with C{pause} seconds between batches so the
    chat log's writes (and, on SQLite, its one connection) are never held up for long.
    """

    def __init__(self, database: Any, clock: IReactorTime, get: Callable[[str, Any], Any],
                 interval: float = 3600.0, batchSize: int = 1000, pause: float = 0.2,
                 firstDelay: float = 60.0) -> None:
        self.database = database
        self.clock = clock
        self.get = get
        self.interval = interval
        self.batchSize = max(1, int(batchSize))
        self.pause = pause
        self.firstDelay = firstDelay
        self.deleted: dict[str, int] = {}
        self._loop: task.LoopingCall | None = None
        self._first: Any = None
        self._sweeping: defer.Deferred[None] | None = None
        self._stopped = False

    @classmethod
    def fromSettings(cls, database: Any, clock: IReactorTime,
                     get: Callable[[str, Any], Any]) -> RetentionService:
        return cls(database, clock, get, interval=get("retention.interval", 3600.0),
                   batchSize=get("retention.batch_size", 1000),
                   pause=get("retention.batch_pause", 0.2))

    def startService(self) -> None:
        Service.startService(self)
        if self.interval > 0:
            self._first = self.clock.callLater(self.firstDelay, self._startLoop)

    def _startLoop(self) -> None:
        self._first = None
        self._loop = task.LoopingCall(self.sweep)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stopService(self) -> defer.Deferred[None] | None:
        Service.stopService(self)
        self._stopped = True
        if self._first is not None and self._first.active():
            self._first.cancel()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        # The batch in flight ends (it is short); no new one starts.
        return self._sweeping

    def sweep(self) -> defer.Deferred[None]:
        """One pass over every table switched on; never fails (the loop must keep running)."""
        if self._sweeping is not None:
            return self._sweeping
        d = defer.ensureDeferred(self._sweep())
        d.addErrback(lambda f: log.error("[DB] retention pass failed: {error}",
                                         error=f.getErrorMessage()))
        self._sweeping = d

        def done(_: Any) -> None:
            self._sweeping = None

        d.addBoth(done)
        return d

    async def _sweep(self) -> None:
        if not self.database.schemaReady:
            await self.database.ensureSchema()
        for target in targets(self.database, self.get):
            if self._stopped:
                return
            await self.trim(target)

    async def trim(self, target: Target) -> int:
        """Delete C{target}'s old rows; the number deleted."""
        cutoff = datetime.fromtimestamp(self.clock.seconds() - target.days * 86400).strftime(TIME_FORMAT)
        started = time.monotonic()
        low = await self.database.runInteraction(firstId, self.database.engine, target)
        total = 0
        while low is not None and not self._stopped:
            deleted, low = await self.database.runInteraction(
                deleteBatch, self.database.sql, target, low, cutoff, self.batchSize)
            total += deleted
            if low is not None and self.pause > 0:
                await task.deferLater(self.clock, self.pause, lambda: None)
        self.deleted[target.table] = self.deleted.get(target.table, 0) + total
        if total:
            log.info(
                "[DB] retention: {count} row(s) of {table} older than {days:g} day(s) deleted "
                "in {seconds:.1f} s",
                count=total, table=target.table, days=target.days,
                seconds=time.monotonic() - started,
            )
        return total
