"""Which phones may speak for which bot: kb_bot_devices, with every status also kept where an outage cannot take it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from kkobot import __version__
from kkobot.db.errors import describeError, isLockConflict, isSchemaError
from kkobot.bridge.devicestate import Key, StateFile, encodeState
from kkobot.bridge.devicetable import (
    DEVICE_TABLE,
    STATUSES,
    DeviceSql,
    KeyShape,
    Raced,
    registerDevice,
    setDeviceStatus,
)
from kkobot.logs import Logger

log = Logger()

# Kept importable under their old names.
__all__ = ["STATUSES", "Device", "DeviceStore", "applyDeviceStatus"]

# A registration that meets a deadlock or lock wait (or loses an insert race) is
# run again this many times, after 50, 100, 200, ... ms.
LOCK_RETRIES = 6
LOCK_RETRY_DELAY = 0.05


@dataclass(frozen=True)
class Device:
    """One row of the devices table (None where the table has no such column)."""

    bot: str
    device: str
    clientType: str | None
    version: str | None
    deviceInfo: str | None
    address: str | None
    status: str
    firstSeen: Any
    lastSeen: Any


class DeviceStore(Service):
    """
    The devices table plus every device's status, in memory and in a local file.

    Handshakes look statuses up (the cache first) and register devices; per-event
    checks read the cache, which a L{task.LoopingCall} refreshes from the database
    every C{refreshInterval} seconds, so `kkobot-admin devices ...` reaches a running
    server within seconds. Listeners (C{onChange}) hear about each status that
    changed. A registration the database does not take (it is down, or the table
    refuses it) is answered from the cache, or by C{autoApprove} for a new device,
    kept (in the file too) and recorded when the database answers; deadlocks and
    lock waits are retried at once.
    """

    def __init__(
        self,
        database: Any,
        clock: IReactorTime,
        autoApprove: bool = False,
        refreshInterval: float = 2.0,
        statePath: str | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.autoApprove = autoApprove
        self.refreshInterval = refreshInterval
        self.statePath = statePath
        self._file = StateFile(statePath) if statePath else None
        self._shape = KeyShape()
        self._sql: DeviceSql | None = None
        self._cache: dict[Key, str] = {}
        # Registrations the database has not taken yet, by key: what to record.
        self._unrecorded: dict[Key, dict[str, Any]] = {}
        self._recording = False
        self._listeners: list[Callable[[str, str, str], None]] = []
        self._loop: task.LoopingCall | None = None
        self._refreshFailing = False
        self.lastError: BaseException | None = None

    @staticmethod
    def addSchema(database: Any) -> None:
        database.addTable(DEVICE_TABLE)

    @property
    def initialStatus(self) -> str:
        """What a device never seen before is: auth.auto_approve decides."""
        return "approved" if self.autoApprove else "pending"

    # -- service

    def startService(self) -> None:
        Service.startService(self)
        self._load()
        self._loop = task.LoopingCall(self.refresh)
        self._loop.clock = self.clock
        self._loop.start(self.refreshInterval, now=True)

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return self._file.settled() if self._file is not None else defer.succeed(None)

    # -- the local file

    def _load(self) -> None:
        if self._file is None:
            return
        state = self._file.load()
        if state is None:
            return
        shape, statuses, unrecorded = state
        self._shape = shape
        for key, status in statuses.items():
            self._cache.setdefault(key, status)
        for info in unrecorded:
            self._unrecorded[self.key(info["bot"], info["device"])] = info
        log.info(
            "[AUTH] {count} device status(es) from {path}{waiting}",
            count=len(statuses), path=self.statePath,
            waiting=f"; {len(unrecorded)} device(s) to record in the database" if unrecorded else "",
        )

    def _save(self) -> None:
        if self._file is not None:
            self._file.save(lambda: encodeState(self._shape, self._cache, self._unrecorded))

    # -- the table

    def key(self, bot: str, device: str | None) -> Key:
        """How a device is named in the cache, the file and the table (see L{KeyShape.key})."""
        return self._shape.key(bot, device or "")

    def _statements(self) -> DeviceSql | None:
        mapping = self.database.tables.get(DEVICE_TABLE.name)
        if mapping is None:
            return None
        if self._sql is None or self._sql.mapping is not mapping:
            self._sql = DeviceSql(mapping, self.database.sql, self.database.engine == "sqlite")
            if self._sql.shape != self._shape:
                self._rekey(self._sql.shape)
        return self._sql

    def _rekey(self, shape: KeyShape) -> None:
        # The table decided differs from the one the file was written for.
        old = self._cache
        self._shape = shape
        self._cache = {}
        for (bot, device), status in old.items():
            self._cache.setdefault(shape.key(bot, device), status)
        self._unrecorded = {
            shape.key(info["bot"], info["device"]): info for info in self._unrecorded.values()
        }
        self._save()

    @defer.inlineCallbacks
    def _run(self, work: Callable[[DeviceSql], defer.Deferred]):
        """C{work(statements)}; the schema checked first when needed, and once more on a schema error."""
        rechecked = False
        while True:
            q = self._statements()
            if q is None:
                yield self.database.ensureSchema()
                rechecked = True
                q = self._statements()
                if q is None:
                    error = self.database.tableErrors.get(DEVICE_TABLE.name)
                    raise error if error is not None else RuntimeError("no devices table")
            try:
                result = yield work(q)
            except Exception as e:
                # A handshake may come while the tables are being created, or after
                # the table was dropped or changed: check (and map) again, once.
                if rechecked or not (isSchemaError(e) or not self.database.schemaReady):
                    raise
                rechecked = True
                yield self.database.ensureSchema()
                continue
            return result

    def _worked(self, result: Any) -> Any:
        if self.lastError is not None:
            log.info("[AUTH] {table} answers again", table=self.tableName())
        self.lastError = None
        return result

    def _failedWith(self, error: BaseException) -> None:
        self.lastError = error

    # -- cache

    def onChange(self, listener: Callable[[str, str, str], None]) -> None:
        """
        Call C{listener(bot, device, status)} when a status changes; (bot, device)
        is the device's L{key} (bot "" where the table has one row per device).
        """
        self._listeners.append(listener)

    def _notify(self, key: Key, status: str) -> None:
        for listener in self._listeners:
            try:
                listener(key[0], key[1], status)
            except Exception:
                log.failure("[AUTH] device status listener failed")

    def status(self, bot: str, device: str | None) -> str | None:
        """The known status, or None for a device not seen yet."""
        if device is None:
            return None
        return self._cache.get(self._shape.key(bot, device))

    def lookup(self, bot: str, device: str) -> defer.Deferred[str | None]:
        """The status from the cache, else from the database (None: never seen); fails when it cannot tell."""
        cached = self.status(bot, device)
        if cached is not None:
            return defer.succeed(cached)
        key = self.key(bot, device)

        def query(q: DeviceSql) -> defer.Deferred:
            keyed = dict(zip(("bot", "device"), key))
            return self.database.runQuery(q.selectStatus, q.keyValues(keyed))

        d = self._run(query)

        def found(rows: list[tuple[str]]) -> str | None:
            self._worked(None)
            if not rows:
                return None
            self._cache[key] = rows[0][0]
            self._save()
            return rows[0][0]

        def failed(failure: Any) -> Any:
            self._failedWith(failure.value)
            return failure

        d.addCallbacks(found, failed)
        return d

    def refresh(self) -> defer.Deferred[None]:
        """Reload every status, then record the registrations still waiting; never fails."""
        if not self.database.schemaReady:
            # The chat log's start creates the tables; until then there is nothing to read.
            return defer.succeed(None)
        d = self._run(lambda q: self.database.runQuery(q.selectAll))
        d.addCallbacks(self._refreshed, self._refreshFailed)
        d.addCallback(lambda ok: self._recordWaiting() if ok else None)
        d.addErrback(lambda f: log.failure("[AUTH] device refresh failed", f))
        return d

    def _refreshed(self, rows: list[tuple[str, str, str]]) -> bool:
        self._worked(None)
        if self._refreshFailing:
            log.info("[AUTH] device list readable again")
            self._refreshFailing = False
        fresh = {self.key(bot, device): status for bot, device, status in rows}
        changed = [
            (key, status) for key, status in fresh.items() if self._cache.get(key) != status
        ]
        # A row deleted by hand keeps its last status: forgetting it would let a
        # revoked device register again as pending.
        self._cache.update(fresh)
        if changed:
            self._save()
        for key, status in changed:
            self._notify(key, status)
        return True

    def _refreshFailed(self, failure: Any) -> bool:
        self._failedWith(failure.value)
        if not self._refreshFailing:
            log.error(
                "[AUTH] cannot read {table} ({error}); using the {count} status(es) kept "
                "locally", table=self.tableName(), error=failure.getErrorMessage(),
                count=len(self._cache),
            )
            self._refreshFailing = True
        return False

    # -- registration (handshakes)

    def register(
        self,
        bot: str,
        device: str,
        clientType: str | None = None,
        version: str | None = None,
        address: str | None = None,
        deviceInfo: str | None = None,
    ) -> defer.Deferred[str]:
        """
        Record a device seen now; fires with its status (new ones: pending or
        approved). Never fails: when the database does not take it, the status is
        the one known (or auto_approve's for a new device) and the device is
        recorded once the database answers.
        """
        key = self.key(bot, device)
        info = {
            "bot": bot, "device": device, "clientType": clientType, "version": version,
            "address": address, "deviceInfo": deviceInfo,
            "seen": datetime.fromtimestamp(self.clock.seconds()).strftime("%Y-%m-%d %H:%M:%S"),
        }
        if key in self._unrecorded:
            # Already waiting for the database: keep the latest sighting.
            self._unrecorded[key] = info
            self._save()
            return defer.succeed(self._cache.get(key) or self.initialStatus)
        d = self._record(key, info)
        d.addErrback(self._notRecorded, key, info)
        return d

    def _record(self, key: Key, info: dict[str, Any]) -> defer.Deferred[str]:
        d = self._withLockRetries(info, lambda q: self.database.runInteraction(
            registerDevice, q, self._values(q, info)))
        d.addCallback(self._recorded, key, info)
        return d

    @defer.inlineCallbacks
    def _withLockRetries(self, info: dict[str, Any], work: Callable[[DeviceSql], defer.Deferred]):
        attempt = 0
        while True:
            try:
                result = yield self._run(work)
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
                yield task.deferLater(self.clock, LOCK_RETRY_DELAY * 2 ** (attempt - 1),
                                      lambda: None)
                continue
            return result

    def _values(self, q: DeviceSql, info: dict[str, Any]) -> dict[str, Any]:
        seen: Any = info["seen"]
        if not q.sqlite:
            seen = datetime.strptime(seen, "%Y-%m-%d %H:%M:%S")
        initial = self.initialStatus
        return q.clip({
            "bot": info["bot"], "device": info["device"], "clientType": info.get("clientType"),
            "version": info.get("version"), "deviceInfo": info.get("deviceInfo"),
            "address": info.get("address"), "status": initial, "firstSeen": seen,
            "lastSeen": seen, "approvedAt": seen if initial == "approved" else None,
        })

    def _recorded(self, result: tuple[str, bool], key: Key, info: dict[str, Any]) -> str:
        self._worked(None)
        status, created = result
        # The table's shape may have been decided while this ran (keys by device alone).
        key = self.key(info["bot"], info["device"])
        if created:
            log.info(
                "[AUTH] new device {device} of {bot} from {address}: {status}",
                device=info["device"], bot=info["bot"], address=info.get("address"),
                status=status,
            )
        # What this device was answered as until now (a new one: the policy).
        before = self._cache.get(key) or self.initialStatus
        # A newer sighting that came meanwhile stays, to be written by the next refresh.
        waited = self._unrecorded.get(key) is info
        if waited:
            del self._unrecorded[key]
        changed = self._cache.get(key) != status
        self._cache[key] = status
        if changed or waited:
            self._save()
        if status != before:
            self._notify(key, status)
        return status

    def _notRecorded(self, failure: Any, key: Key, info: dict[str, Any]) -> str:
        error = failure.value
        self._failedWith(error)
        key = self.key(info["bot"], info["device"])
        status = self._cache.get(key)
        if status is None:
            status = self._cache[key] = self.initialStatus
        first = not self._unrecorded
        self._unrecorded[key] = info
        self._save()
        # One error line per outage; the devices after the first at info level.
        (log.error if first else log.info)(
            "[AUTH] could not record device {device} of {bot} in {table} ({error}); it is "
            "answered as {status} and recorded when the database takes it",
            device=info["device"], bot=info["bot"], table=self.tableName(),
            error=describeError(error), status=status,
        )
        log.debug("[AUTH] device registration error: {error}", error=failure.getErrorMessage())
        return status

    @defer.inlineCallbacks
    def _recordWaiting(self):
        """Record the registrations the database did not take, oldest first, until one fails."""
        if self._recording or not self._unrecorded:
            return
        self._recording = True
        try:
            for key, info in list(self._unrecorded.items()):
                if self._unrecorded.get(key) is not info:
                    continue  # recorded, or seen again, meanwhile
                try:
                    yield self._record(key, info)
                except Exception as e:
                    self._failedWith(e)
                    return
            log.info("[AUTH] every device seen while {table} was unavailable is recorded",
                     table=self.tableName())
        finally:
            self._recording = False

    # -- what /readyz and the status page show

    def tableName(self) -> str:
        mapping = self.database.tables.get(DEVICE_TABLE.name)
        return mapping.table if mapping is not None else DEVICE_TABLE.name

    def report(self) -> dict[str, Any]:
        """The devices table: state (ok, unavailable, refused), the devices waiting to be recorded."""
        error = self.lastError
        if error is None:
            state = "ok" if self._sql is not None else "starting"
        else:
            state = "refused" if isSchemaError(error) else "unavailable"
        return {
            "table": self.tableName(),
            "kind": "device",
            "state": state,
            "error": describeError(error) if error is not None else None,
            "waiting": len(self._unrecorded),
            "rejected": 0,
        }

    # -- administration (kkobot-admin)

    def list(self, status: str | None = None, bot: str | None = None) -> defer.Deferred[list[Device]]:
        def query(q: DeviceSql) -> defer.Deferred:
            statement, args = q.listQuery(status, bot)
            return self.database.runQuery(statement, args)

        d = self._run(query)
        d.addCallback(lambda rows: [Device(*row) for row in rows])
        return d

    def setStatus(self, bot: str, device: str, status: str) -> defer.Deferred[int]:
        """Set one device's status; fires with the number of rows changed (0: unknown)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
        now = datetime.fromtimestamp(self.clock.seconds()).replace(microsecond=0)

        def update(q: DeviceSql) -> defer.Deferred:
            key = q.keyValues(dict(zip(("bot", "device"), q.shape.key(bot, device))))
            return self.database.runInteraction(
                setDeviceStatus, q, key, status, now.isoformat(" ") if q.sqlite else now)

        return self._run(update)


def applyDeviceStatus(
    factory: Any, bot: str, device: str, status: str,
    keyOf: Callable[[str, str | None], Key] | None = None,
) -> None:
    """
    Bring open connections of one device in line with its new status.

    C{keyOf} names a connection's device the way the store does (L{DeviceStore.key}),
    so a clipped id, or a table with one row per device, still finds it.
    Approved or pending: the client learns it from a fresh C{handshakeComplete}
    (3.2.x clients log it). Denied, revoked, blocked: the connection is closed.
    """
    for proto in list(factory.connections):
        client = proto.client
        if client is None or not client.verified:
            continue  # it has proved nothing yet, so it is told nothing (security.md)
        if keyOf is not None:
            if keyOf(client.botName, client.deviceID) != (bot, device):
                continue
        elif client.botName != bot or client.deviceID != device:
            continue
        if status in ("denied", "revoked", "blocked"):
            log.warn(
                "[AUTH] closing {bot} ({device}) from {address}: device is now {status}",
                bot=client.botName, device=client.deviceID, address=proto.address,
                status=status,
            )
            proto.sendEvent("handshakeComplete", {
                "success": False, "approved": False,
                "message": f"device {client.deviceID} is {status} on this server",
                "server_version": __version__,
            })
            proto.disconnect()
            continue
        approved = status == "approved"
        if client.approved != approved:
            client.approved = approved
            log.info("[AUTH] {bot} ({device}) is now {status}", bot=client.botName,
                     device=client.deviceID, status=status)
            proto.sendEvent("handshakeComplete", {
                "success": True, "approved": approved,
                "message": "ok" if approved else f"device {client.deviceID} is {status}",
                "server_version": __version__,
            })
