"""Which phones may speak for which bot: kb_bot_devices, with every status also kept where an outage cannot take it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from kkobot.bridge.deviceaccess import DeviceTableAccess
from kkobot.bridge.deviceconnections import applyDeviceStatus
from kkobot.bridge.deviceregistration import DeviceRegistrations
from kkobot.bridge.devicestate import Key, StateFile, encodeState
from kkobot.bridge.devicetable import DEVICE_TABLE, STATUSES, DeviceSql, KeyShape
from kkobot.logs import Logger

log = Logger()

# Kept importable under their old names.
__all__ = ["STATUSES", "Device", "DeviceStore", "applyDeviceStatus"]


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
    kept (in the file too) and recorded when the database answers
    (L{DeviceRegistrations}); deadlocks and lock waits are retried at once
    (L{DeviceTableAccess}).
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
        # How devices are keyed: the table's shape once known, the file's until then.
        self.shape = KeyShape()
        # Every known status, by L{key}.
        self.statuses: dict[Key, str] = {}
        self.table = DeviceTableAccess(self)
        self.registrations = DeviceRegistrations(self)
        self._listeners: list[Callable[[str, str, str], None]] = []
        self._loop: task.LoopingCall | None = None
        self._refreshFailing = False

    @staticmethod
    def addSchema(database: Any) -> None:
        database.addTable(DEVICE_TABLE)

    @property
    def initialStatus(self) -> str:
        """What a device never seen before is: auth.auto_approve decides."""
        return "approved" if self.autoApprove else "pending"

    @property
    def lastError(self) -> BaseException | None:
        """The devices table's last error (None: it answered)."""
        return self.table.lastError

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
        self.shape = shape
        for key, status in statuses.items():
            self.statuses.setdefault(key, status)
        for info in unrecorded:
            self.registrations.waiting[self.key(info["bot"], info["device"])] = info
        log.info(
            "[AUTH] {count} device status(es) from {path}{waiting}",
            count=len(statuses), path=self.statePath,
            waiting=f"; {len(unrecorded)} device(s) to record in the database" if unrecorded else "",
        )

    def saveState(self) -> None:
        """Write every status, and the registrations waiting, to the local file soon."""
        if self._file is not None:
            self._file.save(
                lambda: encodeState(self.shape, self.statuses, self.registrations.waiting)
            )

    # -- keys

    def key(self, bot: str, device: str | None) -> Key:
        """How a device is named in the cache, the file and the table (see L{KeyShape.key})."""
        return self.shape.key(bot, device or "")

    def rekey(self, shape: KeyShape) -> None:
        """The table turned out to differ from the one the file was written for."""
        old = self.statuses
        self.shape = shape
        self.statuses = {}
        for (bot, device), status in old.items():
            self.statuses.setdefault(shape.key(bot, device), status)
        registrations = self.registrations
        registrations.waiting = {
            shape.key(info["bot"], info["device"]): info for info in registrations.waiting.values()
        }
        self.saveState()

    # -- cache

    def onChange(self, listener: Callable[[str, str, str], None]) -> None:
        """
        Call C{listener(bot, device, status)} when a status changes; (bot, device)
        is the device's L{key} (bot "" where the table has one row per device).
        """
        self._listeners.append(listener)

    def notify(self, key: Key, status: str) -> None:
        """Tell the listeners that the device C{key} is now C{status}."""
        for listener in self._listeners:
            try:
                listener(key[0], key[1], status)
            except Exception:
                log.failure("[AUTH] device status listener failed")

    def status(self, bot: str, device: str | None) -> str | None:
        """The known status, or None for a device not seen yet."""
        if device is None:
            return None
        # KeyShape.key, inline: this is asked for every signed event.
        shape = self.shape
        return self.statuses.get(
            ("" if shape.byDevice else bot[: shape.botWidth], device[: shape.deviceWidth])
        )

    def lookup(self, bot: str, device: str) -> defer.Deferred[str | None]:
        """The status from the cache, else from the database (None: never seen); fails when it cannot tell."""
        cached = self.status(bot, device)
        if cached is not None:
            return defer.succeed(cached)
        key = self.key(bot, device)

        def query(q: DeviceSql) -> defer.Deferred:
            keyed = dict(zip(("bot", "device"), key))
            return self.database.runQuery(q.selectStatus, q.keyValues(keyed))

        d = self.table.run(query)

        def found(rows: list[tuple[str]]) -> str | None:
            self.table.worked(None)
            if not rows:
                return None
            self.statuses[key] = rows[0][0]
            self.saveState()
            return rows[0][0]

        def failed(failure: Any) -> Any:
            self.table.failedWith(failure.value)
            return failure

        d.addCallbacks(found, failed)
        return d

    def refresh(self) -> defer.Deferred[None]:
        """Reload every status, then record the registrations still waiting; never fails."""
        if not self.database.schemaReady:
            # The chat log's start creates the tables; until then there is nothing to read.
            return defer.succeed(None)
        d = self.table.run(lambda q: self.database.runQuery(q.selectAll))
        d.addCallbacks(self._refreshed, self._refreshFailed)
        d.addCallback(lambda ok: self.registrations.recordWaiting() if ok else None)
        d.addErrback(lambda f: log.failure("[AUTH] device refresh failed", f))
        return d

    def _refreshed(self, rows: list[tuple[str, str, str]]) -> bool:
        self.table.worked(None)
        if self._refreshFailing:
            log.info("[AUTH] device list readable again")
            self._refreshFailing = False
        fresh = {self.key(bot, device): status for bot, device, status in rows}
        changed = [
            (key, status) for key, status in fresh.items() if self.statuses.get(key) != status
        ]
        # A row deleted by hand keeps its last status: forgetting it would let a
        # revoked device register again as pending.
        self.statuses.update(fresh)
        if changed:
            self.saveState()
        for key, status in changed:
            self.notify(key, status)
        return True

    def _refreshFailed(self, failure: Any) -> bool:
        self.table.failedWith(failure.value)
        if not self._refreshFailing:
            log.error(
                "[AUTH] cannot read {table} ({error}); using the {count} status(es) kept "
                "locally", table=self.tableName(), error=failure.getErrorMessage(),
                count=len(self.statuses),
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
        return self.registrations.register(bot, device, clientType, version, address, deviceInfo)

    # -- what /readyz and the status page show

    def tableName(self) -> str:
        return self.table.tableName()

    def report(self) -> dict[str, Any]:
        """The devices table: state (ok, unavailable, refused), the devices waiting to be recorded."""
        return {**self.table.report(), "waiting": len(self.registrations.waiting), "rejected": 0}

    # -- administration (kkobot-admin)

    def list(self, status: str | None = None, bot: str | None = None) -> defer.Deferred[list[Device]]:
        d = self.table.listRows(status, bot)
        d.addCallback(lambda rows: [Device(*row) for row in rows])
        return d

    def setStatus(self, bot: str, device: str, status: str) -> defer.Deferred[int]:
        """Set one device's status; fires with the number of rows changed (0: unknown)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
        return self.table.setStatus(bot, device, status)
