"""kb_bot_devices: which phones may speak for which bot, with an in-memory status cache."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from kkobot import __version__
from kkobot.logs import Logger

log = Logger()

STATUSES = ("pending", "approved", "denied", "revoked", "blocked")

MYSQL_BOT_DEVICES = """
CREATE TABLE IF NOT EXISTS `kb_bot_devices` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `bot_name` varchar(64) NOT NULL COMMENT 'bot the device speaks for',
  `device_id` varchar(100) NOT NULL COMMENT 'deviceID of the handshake (or auth.deviceUUID)',
  `client_type` varchar(50) DEFAULT NULL,
  `client_version` varchar(30) DEFAULT NULL,
  `device_info` varchar(255) DEFAULT NULL,
  `address` varchar(64) DEFAULT NULL COMMENT 'last peer address',
  `status` varchar(10) NOT NULL DEFAULT 'pending' COMMENT 'pending|approved|denied|revoked|blocked',
  `first_seen` datetime NOT NULL,
  `last_seen` datetime NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_bot_device` (`bot_name`, `device_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='bridge devices and their approval'
"""

SQLITE_BOT_DEVICES = """
CREATE TABLE IF NOT EXISTS kb_bot_devices (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  bot_name TEXT NOT NULL,
  device_id TEXT NOT NULL,
  client_type TEXT DEFAULT NULL,
  client_version TEXT DEFAULT NULL,
  device_info TEXT DEFAULT NULL,
  address TEXT DEFAULT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  UNIQUE (bot_name, device_id)
)
"""

_INSERT = (
    "INSERT INTO kb_bot_devices (bot_name, device_id, client_type, client_version, "
    "device_info, address, status, first_seen, last_seen) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_UPDATE_SEEN = (
    "UPDATE kb_bot_devices SET client_type = %s, client_version = %s, device_info = %s, "
    "address = %s, last_seen = %s WHERE bot_name = %s AND device_id = %s"
)
_SELECT_STATUS = "SELECT status FROM kb_bot_devices WHERE bot_name = %s AND device_id = %s"

WIDTHS = {"bot_name": 64, "device_id": 100, "client_type": 50, "client_version": 30,
          "device_info": 255, "address": 64}


@dataclass(frozen=True)
class Device:
    """One row of kb_bot_devices."""

    bot: str
    device: str
    clientType: str | None
    version: str | None
    deviceInfo: str | None
    address: str | None
    status: str
    firstSeen: Any
    lastSeen: Any


def _clip(value: str | None, column: str) -> str | None:
    return None if value is None else value[: WIDTHS[column]]


class DeviceStore(Service):
    """
    The devices table plus a cache of every device's status.

    Handshakes register devices (one round trip); per-event checks read the cache,
    which a L{task.LoopingCall} refreshes from the database every C{refreshInterval}
    seconds, so `kkobot-admin devices ...` reaches a running server within seconds.
    Listeners (C{onChange}) hear about each status that changed.
    """

    def __init__(
        self,
        database: Any,
        clock: IReactorTime,
        autoApprove: bool = False,
        refreshInterval: float = 2.0,
    ) -> None:
        self.database = database
        self.clock = clock
        self.autoApprove = autoApprove
        self.refreshInterval = refreshInterval
        self._cache: dict[tuple[str, str], str] = {}
        self._listeners: list[Callable[[str, str, str], None]] = []
        self._loop: task.LoopingCall | None = None
        self._refreshFailing = False

    @staticmethod
    def addSchema(database: Any) -> None:
        database.addSchema(MYSQL_BOT_DEVICES, SQLITE_BOT_DEVICES)

    # -- service

    def startService(self) -> None:
        Service.startService(self)
        self._loop = task.LoopingCall(self.refresh)
        self._loop.clock = self.clock
        self._loop.start(self.refreshInterval, now=True)

    def stopService(self) -> None:
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    # -- cache

    def onChange(self, listener: Callable[[str, str, str], None]) -> None:
        """Call C{listener(bot, device, status)} when a refresh finds a changed status."""
        self._listeners.append(listener)

    def status(self, bot: str, device: str | None) -> str | None:
        """The cached status, or None for a device not seen yet."""
        if device is None:
            return None
        return self._cache.get((bot, device))

    def lookup(self, bot: str, device: str) -> defer.Deferred[str | None]:
        """The status from the cache, else from the database (None: never seen)."""
        cached = self.status(bot, device)
        if cached is not None:
            return defer.succeed(cached)
        d = self._withSchema(self.database.runQuery, _SELECT_STATUS, (bot, device))

        def found(rows: list[tuple[str]]) -> str | None:
            if not rows:
                return None
            self._cache[(bot, device)] = rows[0][0]
            return rows[0][0]

        d.addCallback(found)
        return d

    def _withSchema(self, call: Callable[..., defer.Deferred], *args: Any) -> defer.Deferred:
        """C{call(*args)}; when it fails, create missing tables and try once more."""
        # A handshake can arrive while the chat log is still creating the tables.
        d = call(*args)

        def retry(failure: Any) -> defer.Deferred:
            again = self.database.ensureSchema()
            again.addCallback(lambda _: call(*args))
            return again

        d.addErrback(retry)
        return d

    def refresh(self) -> defer.Deferred[None]:
        """Reload every status; never fails (the loop must keep running)."""
        if not self.database.schemaReady:
            # The chat log's start creates the tables; until then there is nothing to read.
            return defer.succeed(None)
        d = self.database.runQuery("SELECT bot_name, device_id, status FROM kb_bot_devices")
        d.addCallbacks(self._refreshed, self._refreshFailed)
        return d

    def _refreshed(self, rows: list[tuple[str, str, str]]) -> None:
        if self._refreshFailing:
            log.info("[AUTH] device list readable again")
            self._refreshFailing = False
        fresh = {(bot, device): status for bot, device, status in rows}
        changed = [
            (key, status) for key, status in fresh.items() if self._cache.get(key) != status
        ]
        # A row deleted by hand keeps its last status: forgetting it would let a
        # revoked device register again as pending.
        self._cache.update(fresh)
        for (bot, device), status in changed:
            for listener in self._listeners:
                try:
                    listener(bot, device, status)
                except Exception:
                    log.failure("[AUTH] device status listener failed")

    def _refreshFailed(self, failure: Any) -> None:
        if not self._refreshFailing:
            log.error(
                "[AUTH] cannot read kb_bot_devices ({error}); using the cached statuses",
                error=failure.getErrorMessage(),
            )
            self._refreshFailing = True

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
        """Record a device seen now; fires with its status (new ones: pending or approved)."""
        now = datetime.fromtimestamp(self.clock.seconds()).replace(microsecond=0)
        values = dict(
            bot=_clip(bot, "bot_name"),
            device=_clip(device, "device_id"),
            clientType=_clip(clientType, "client_type"),
            version=_clip(version, "client_version"),
            deviceInfo=_clip(deviceInfo, "device_info"),
            address=_clip(address, "address"),
            now=now if self.database.engine != "sqlite" else now.isoformat(" "),
            initial="approved" if self.autoApprove else "pending",
        )
        d = self._withSchema(self.database.runInteraction, self._register, values)
        d.addCallback(self._registered, bot, device)
        return d

    def _register(self, txn: Any, v: dict[str, Any]) -> str:
        sql = self.database.sql
        txn.execute(
            sql(_UPDATE_SEEN),
            (v["clientType"], v["version"], v["deviceInfo"], v["address"], v["now"],
             v["bot"], v["device"]),
        )
        txn.execute(sql(_SELECT_STATUS), (v["bot"], v["device"]))
        row = txn.fetchone()
        if row is not None:
            return row[0]
        try:
            txn.execute(
                sql(_INSERT),
                (v["bot"], v["device"], v["clientType"], v["version"], v["deviceInfo"],
                 v["address"], v["initial"], v["now"], v["now"]),
            )
        except Exception as e:
            # Two handshakes of a new device at once: the other one inserted it.
            if "uplicate" not in str(e) and "UNIQUE" not in str(e):
                raise
            txn.execute(sql(_SELECT_STATUS), (v["bot"], v["device"]))
            return txn.fetchone()[0]
        log.info(
            "[AUTH] new device {device} of {bot} from {address}: {status}",
            device=v["device"],
            bot=v["bot"],
            address=v["address"],
            status=v["initial"],
        )
        return v["initial"]

    def _registered(self, status: str, bot: str, device: str) -> str:
        self._cache[(bot, device)] = status
        return status

    # -- administration (kkobot-admin)

    def list(self, status: str | None = None, bot: str | None = None) -> defer.Deferred[list[Device]]:
        sql = (
            "SELECT bot_name, device_id, client_type, client_version, device_info, address, "
            "status, first_seen, last_seen FROM kb_bot_devices"
        )
        where, args = [], []
        if status is not None:
            where.append("status = %s")
            args.append(status)
        if bot is not None:
            where.append("bot_name = %s")
            args.append(bot)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY bot_name, last_seen DESC"
        d = self.database.runQuery(sql, tuple(args))
        d.addCallback(lambda rows: [Device(*row) for row in rows])
        return d

    def setStatus(self, bot: str, device: str, status: str) -> defer.Deferred[int]:
        """Set one device's status; fires with the number of rows changed (0: unknown)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")

        def update(txn: Any) -> int:
            sql = self.database.sql
            txn.execute(sql(_SELECT_STATUS), (bot, device))
            if txn.fetchone() is None:
                return 0
            txn.execute(
                sql("UPDATE kb_bot_devices SET status = %s WHERE bot_name = %s AND device_id = %s"),
                (status, bot, device),
            )
            return 1

        return self.database.runInteraction(update)


def applyDeviceStatus(factory: Any, bot: str, device: str, status: str) -> None:
    """
    Bring open connections of one device in line with its new status.

    Approved or pending: the client learns it from a fresh C{handshakeComplete}
    (3.2.x clients log it). Denied, revoked, blocked: the connection is closed.
    """
    for proto in list(factory.connections):
        client = proto.client
        if client is not None and not client.verified:
            continue  # it has proved nothing yet, so it is told nothing (security.md)
        if client is None or client.botName != bot or client.deviceID != device:
            continue
        if status in ("denied", "revoked", "blocked"):
            log.warn(
                "[AUTH] closing {bot} ({device}) from {address}: device is now {status}",
                bot=bot, device=device, address=proto.address, status=status,
            )
            proto.sendEvent("handshakeComplete", {
                "success": False, "approved": False,
                "message": f"device {device} is {status} on this server",
                "server_version": __version__,
            })
            proto.disconnect()
            continue
        approved = status == "approved"
        if client.approved != approved:
            client.approved = approved
            log.info("[AUTH] {bot} ({device}) is now {status}", bot=bot, device=device,
                     status=status)
            proto.sendEvent("handshakeComplete", {
                "success": True, "approved": approved,
                "message": "ok" if approved else f"device {device} is {status}",
                "server_version": __version__,
            })
