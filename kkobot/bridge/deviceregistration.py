"""Registering the devices handshakes bring: recorded in the devices table, or answered and kept until it takes them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from kkobot.db.errors import describeError
from kkobot.bridge.devicestate import Key
from kkobot.bridge.devicetable import DeviceSql, registerDevice
from kkobot.logs import Logger

if TYPE_CHECKING:
    from kkobot.bridge.devices import DeviceStore

log = Logger()


class DeviceRegistrations:
    """
    A L{DeviceStore}'s registrations. One the database does not take (it is down, or
    the table refuses it) is answered from the known status, or the initial one for a
    new device, and kept in L{waiting} (and the store's file) until the database
    records it.
    """

    def __init__(self, store: DeviceStore) -> None:
        self.store = store
        # Registrations the database has not taken yet, by key: what to record.
        self.waiting: dict[Key, dict[str, Any]] = {}
        self._recording = False

    def register(
        self,
        bot: str,
        device: str,
        clientType: str | None = None,
        version: str | None = None,
        address: str | None = None,
        deviceInfo: str | None = None,
    ) -> defer.Deferred[str]:
        """See L{DeviceStore.register}."""
        store = self.store
        key = store.key(bot, device)
        info = {
            "bot": bot, "device": device, "clientType": clientType, "version": version,
            "address": address, "deviceInfo": deviceInfo,
            "seen": datetime.fromtimestamp(store.clock.seconds()).strftime("%Y-%m-%d %H:%M:%S"),
        }
        if key in self.waiting:
            # Already waiting for the database: keep the latest sighting.
            self.waiting[key] = info
            store.saveState()
            return defer.succeed(store.statuses.get(key) or store.initialStatus)
        d = self._record(key, info)
        d.addErrback(self._notRecorded, key, info)
        return d

    def _record(self, key: Key, info: dict[str, Any]) -> defer.Deferred[str]:
        d = self.store.table.runWithLockRetries(info, lambda q: self.store.database.runInteraction(
            registerDevice, q, self._values(q, info)))
        d.addCallback(self._recorded, key, info)
        return d

    def _values(self, q: DeviceSql, info: dict[str, Any]) -> dict[str, Any]:
        seen: Any = info["seen"]
        if not q.sqlite:
            seen = datetime.strptime(seen, "%Y-%m-%d %H:%M:%S")
        initial = self.store.initialStatus
        return q.clip({
            "bot": info["bot"], "device": info["device"], "clientType": info.get("clientType"),
            "version": info.get("version"), "deviceInfo": info.get("deviceInfo"),
            "address": info.get("address"), "status": initial, "firstSeen": seen,
            "lastSeen": seen, "approvedAt": seen if initial == "approved" else None,
        })

    def _recorded(self, result: tuple[str, bool], key: Key, info: dict[str, Any]) -> str:
        store = self.store
        store.table.worked(None)
        status, created = result
        # The table's shape may have been decided while this ran (keys by device alone).
        key = store.key(info["bot"], info["device"])
        if created:
            log.info(
                "[AUTH] new device {device} of {bot} from {address}: {status}",
                device=info["device"], bot=info["bot"], address=info.get("address"),
                status=status,
            )
        statuses = store.statuses
        # What this device was answered as until now (a new one: the policy).
        before = statuses.get(key) or store.initialStatus
        # A newer sighting that came meanwhile stays, to be written by the next refresh.
        waited = self.waiting.get(key) is info
        if waited:
            del self.waiting[key]
        changed = statuses.get(key) != status
        statuses[key] = status
        if changed or waited:
            store.saveState()
        if status != before:
            store.notify(key, status)
        return status

    def _notRecorded(self, failure: Any, key: Key, info: dict[str, Any]) -> str:
        store = self.store
        error = failure.value
        store.table.failedWith(error)
        key = store.key(info["bot"], info["device"])
        status = store.statuses.get(key)
        if status is None:
            status = store.statuses[key] = store.initialStatus
        first = not self.waiting
        self.waiting[key] = info
        store.saveState()
        # One error line per outage; the devices after the first at info level.
        (log.error if first else log.info)(
            "[AUTH] could not record device {device} of {bot} in {table} ({error}); it is "
            "answered as {status} and recorded when the database takes it",
            device=info["device"], bot=info["bot"], table=store.table.tableName(),
            error=describeError(error), status=status,
        )
        log.debug("[AUTH] device registration error: {error}", error=failure.getErrorMessage())
        return status

    @defer.inlineCallbacks
    def recordWaiting(self):
        """Record the registrations the database did not take, oldest first, until one fails."""
        if self._recording or not self.waiting:
            return
        self._recording = True
        try:
            for key, info in list(self.waiting.items()):
                if self.waiting.get(key) is not info:
                    continue  # recorded, or seen again, meanwhile
                try:
                    yield self._record(key, info)
                except Exception as e:
                    self.store.table.failedWith(e)
                    return
            log.info("[AUTH] every device seen while {table} was unavailable is recorded",
                     table=self.store.table.tableName())
        finally:
            self._recording = False
