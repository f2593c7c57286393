"""Reaching the devices table: statements for the shape it was found in, its schema checked when needed, lock conflicts retried."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet import defer, task

from kkobot.db.errors import describeError, isLockConflict, isSchemaError
from kkobot.bridge.devicetable import DEVICE_TABLE, DeviceSql, Raced, setDeviceStatus
from kkobot.logs import Logger

if TYPE_CHECKING:
    from kkobot.bridge.devices import DeviceStore

log = Logger()

# A registration that meets a deadlock or lock wait (or loses an insert race) is
# run again this many times, after 50, 100, 200, ... ms.
LOCK_RETRIES = 6
LOCK_RETRY_DELAY = 0.05


class DeviceTableAccess:
    """
    Runs a L{DeviceStore}'s work on the devices table with the statements for the
    table's shape (the store re-keys its statuses when that shape is not the one it
    knew), and remembers whether the table answered last time.
    """

    def __init__(self, store: DeviceStore) -> None:
        self.store = store
        self.sql: DeviceSql | None = None
        # The last call's error (None: it answered), for /readyz and the status page.
        self.lastError: BaseException | None = None

    def tableName(self) -> str:
        mapping = self.store.database.tables.get(DEVICE_TABLE.name)
        return mapping.table if mapping is not None else DEVICE_TABLE.name

    def statements(self) -> DeviceSql | None:
        """The statements for the table as it was found (None: not found yet)."""
        database = self.store.database
        mapping = database.tables.get(DEVICE_TABLE.name)
        if mapping is None:
            return None
        if self.sql is None or self.sql.mapping is not mapping:
            self.sql = DeviceSql(mapping, database.sql, database.engine == "sqlite")
            if self.sql.shape != self.store.shape:
                self.store.rekey(self.sql.shape)
        return self.sql

    @defer.inlineCallbacks
    def run(self, work: Callable[[DeviceSql], defer.Deferred]):
        """C{work(statements)}; the schema checked first when needed, and once more on a schema error."""
        database = self.store.database
        rechecked = False
        while True:
            q = self.statements()
            if q is None:
                yield database.ensureSchema()
                rechecked = True
                q = self.statements()
                if q is None:
                    error = database.tableErrors.get(DEVICE_TABLE.name)
                    raise error if error is not None else RuntimeError("no devices table")
            try:
                result = yield work(q)
            except Exception as e:
                # A handshake may come while the tables are being created, or after
                # the table was dropped or changed: check (and map) again, once.
                if rechecked or not (isSchemaError(e) or not database.schemaReady):
                    raise
                rechecked = True
                yield database.ensureSchema()
                continue
            return result

    @defer.inlineCallbacks
    def runWithLockRetries(self, info: dict[str, Any], work: Callable[[DeviceSql], defer.Deferred]):
        """L{run}, again after a deadlock, a lock wait or a lost insert race (registering C{info})."""
        attempt = 0
        while True:
            try:
                result = yield self.run(work)
            except Exception as e:
                if not (isLockConflict(e) or isinstance(e, Raced)) or attempt >= LOCK_RETRIES:
                    raise
                attempt += 1
                log.info(
                    "[AUTH] registering device {device} of {bot} met {what}; trying again "
                    "({n}/{max})", device=info["device"], bot=info["bot"],
                    what="a concurrent registration" if isinstance(e, Raced) else describeError(e),
                    n=attempt, max=LOCK_RETRIES,
                )
                yield task.deferLater(self.store.clock, LOCK_RETRY_DELAY * 2 ** (attempt - 1),
                                      lambda: None)
                continue
            return result

    def listRows(self, status: str | None, bot: str | None) -> defer.Deferred[list[tuple]]:
        """The rows `kkobot-admin devices list` shows, of one status or bot if given."""
        def query(q: DeviceSql) -> defer.Deferred:
            statement, args = q.listQuery(status, bot)
            return self.store.database.runQuery(statement, args)

        return self.run(query)

    def setStatus(self, bot: str, device: str, status: str) -> defer.Deferred[int]:
        """Set one device's status in the table; fires with the number of rows changed."""
        now = datetime.fromtimestamp(self.store.clock.seconds()).replace(microsecond=0)

        def update(q: DeviceSql) -> defer.Deferred:
            key = q.keyValues(dict(zip(("bot", "device"), q.shape.key(bot, device))))
            return self.store.database.runInteraction(
                setDeviceStatus, q, key, status, now.isoformat(" ") if q.sqlite else now)

        return self.run(update)

    def worked(self, result: Any) -> Any:
        """The table answered (again)."""
        if self.lastError is not None:
            log.info("[AUTH] {table} answers again", table=self.tableName())
        self.lastError = None
        return result

    def failedWith(self, error: BaseException) -> None:
        self.lastError = error

    def report(self) -> dict[str, Any]:
        """The table's state as /readyz shows it: ok, starting, unavailable or refused."""
        error = self.lastError
        if error is None:
            state = "ok" if self.sql is not None else "starting"
        else:
            state = "refused" if isSchemaError(error) else "unavailable"
        return {
            "table": self.tableName(),
            "kind": "device",
            "state": state,
            "error": describeError(error) if error is not None else None,
        }
