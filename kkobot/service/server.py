"""The whole server as one service: its parts built from the resolved settings, started in order."""

from __future__ import annotations

import functools
from typing import Any

from twisted.application.internet import TimerService
from twisted.application.service import MultiService, Service
from twisted.internet import defer

from kkobot import __version__, config, logs
from kkobot.admin.metrics import Metrics
from kkobot.admin.rates import MessageRates
from kkobot.announcements.setup import buildAnnouncements
from kkobot.bridge.auth import MIN_WINDOW_SECONDS, HmacAuthenticator, OpenAuthenticator
from kkobot.bridge.devices import DeviceStore, applyDeviceStatus
from kkobot.bridge.limits import ConnectionLimits, LimitedBridgeFactory
from kkobot.bridge.outbound import Outbound
from kkobot.bridge.registry import ClientRegistry
from kkobot.bridge.replay import ReplayFile
from kkobot.chatlog.kindlogs import KindLogs
from kkobot.commands import CommandRegistry
from kkobot.commands.assembly import buildCommandParts
from kkobot.db.pool import Database
from kkobot.events import EventFanout
from kkobot.logs import Logger
from kkobot.retention import RetentionService
from kkobot.service.coordination import PresenceFeed, buildNode, closeAddress, shareState
from kkobot.service.parts import BridgeServerService, DatabaseService
from kkobot.service.settings import Resolved, Settings, refuseUnsafe, resolve
from kkobot.service.sharedlimits import SharedBanLimits

log = Logger()


class KkobotService(MultiService):
    """The whole server. Children start in order and stop in reverse order."""

    def __init__(self, resolved: Resolved, reactor: Any = None) -> None:
        refuseUnsafe(resolved)
        MultiService.__init__(self)
        if reactor is None:
            from twisted.internet import reactor
        self.resolved = resolved
        self.reactor = reactor
        settings = resolved.settings
        # Not a child: it starts before and stops after everything else, so the
        # whole startup and shutdown is in the file.
        self.fileLog = logs.FileLogService(settings.logDir) if settings.logDir else None
        self.database = Database(resolved.db, reactor=reactor)
        DatabaseService(self.database).setServiceParent(self)
        self.registry = ClientRegistry()
        # Metrics and the status page's message rates watch the parts through one hook.
        self.metrics = Metrics(self.registry)
        self.rates = MessageRates(reactor)
        self.events = EventFanout([self.metrics, self.rates])
        # One journaled log per kind of row (chat, ping): a table that refuses rows
        # holds back only its own kind.
        self.chatlog = KindLogs.build(
            self.database,
            reactor,
            resolved.journalDir,
            segmentBytes=resolved.get("chatlog.journal_segment_bytes", 8 * 1024 * 1024),
            batchSize=resolved.get("chatlog.batch_size", config.DEFAULTS["chatlog.batch_size"]),
            flushInterval=resolved.get("chatlog.flush_interval",
                                       config.DEFAULTS["chatlog.flush_interval"]),
            maxBufferRows=resolved.get("chatlog.max_buffer_rows", 20_000),
            maxJournalBytes=resolved.get("chatlog.max_journal_bytes", 512 * 1024 * 1024),
            events=self.events,
        )
        self.chatlog.setServiceParent(self)
        self.metrics.watchTables(self.chatlog.tables)
        # Old rows deleted in small batches (retention.*); after the chat log, which makes the tables.
        self.retention = RetentionService.fromSettings(self.database, reactor, resolved.get)
        self.retention.setServiceParent(self)
        self.outbound = Outbound(self.registry, self.chatlog, reactor, events=self.events)
        # After the chat log (delivering a message logs its row), before the port:
        # the outbound queue, and with cluster.redis the deployment's shared state.
        self.cluster = buildNode(resolved, self.outbound, reactor)
        self.cluster.setServiceParent(self)
        PresenceFeed(self.cluster, self.registry, reactor).setServiceParent(self)
        authenticator: Any = OpenAuthenticator()
        self.devices: DeviceStore | None = None
        self.replays: ReplayFile | None = None
        if resolved.authRequired:
            DeviceStore.addSchema(self.database)
            self.devices = DeviceStore(
                self.database,
                reactor,
                autoApprove=resolved.get("auth.auto_approve", False),
                refreshInterval=resolved.get("auth.device_refresh_interval", 2.0),
                statePath=resolved.devicesFile,
            )
            self.chatlog.addReport(self.devices.report)
            # After the chat log, whose start creates the tables.
            self.devices.setServiceParent(self)
            cfg = resolved.cfg or {}
            window = resolved.get("auth.window_seconds", 300)
            # Before the port: read back at start, written out after the last client.
            self.replays = ReplayFile(
                resolved.replayDir, reactor, max(window, MIN_WINDOW_SECONDS)
            )
            self.replays.setServiceParent(self)
            authenticator = HmacAuthenticator(
                # The config is read once per process: a bot's entry is looked up once,
                # not per event (bounded: strangers choose the names they send).
                functools.lru_cache(maxsize=256)(lambda bot: config.bot_credentials(cfg, bot)),
                self.devices,
                reactor,
                window=window,
                replays=self.replays,
            )
        self.limits = self._limits(resolved, reactor)
        self.commands = CommandRegistry(resolved.dropinDir)
        # Plugins, their storage (in this database), conversations, triggers, schedules.
        parts = buildCommandParts(
            commands=self.commands, chatlog=self.chatlog, clients=self.registry,
            outbound=self.outbound, clock=reactor, cfg=resolved.cfg, get=resolved.get,
            database=self.database, events=self.events,
        )
        parts.service.setServiceParent(self)
        self.commandParts = parts
        self.permissions = parts.permissions
        self.dispatcher = parts.dispatcher
        self.router = parts.router
        self.scheduler = parts.scheduler
        shareState(self.cluster, authenticator, self.dispatcher, self.scheduler)
        summary = TimerService(resolved.get("log.summary_interval", 60), self.router.logSummary)
        summary.clock = reactor
        summary.setServiceParent(self)
        pingInterval = resolved.get("server.ping_interval", 30)
        self.factory = LimitedBridgeFactory(
            self.router,
            self.limits,
            registry=self.registry,
            authenticator=authenticator,
            clock=reactor,
            pingInterval=pingInterval,
            idleTimeout=resolved.get("server.idle_timeout", 3 * pingInterval),
            handshakeTimeout=resolved.get("server.handshake_timeout", 30),
            maxLineBytes=resolved.get("server.max_line_bytes", 1024 * 1024),
            events=self.events,
            gate=self.chatlog,
        )
        if isinstance(self.limits, SharedBanLimits):
            self.limits.closeAddress = lambda address: closeAddress(self.factory, address)
        if self.devices is not None:
            devices = self.devices
            devices.onChange(lambda bot, device, status: applyDeviceStatus(
                self.factory, bot, device, status, keyOf=devices.key))
        self.chatlog.setPressureValve(self.factory.pauseAll, self.factory.resumeAll)
        self.server = BridgeServerService(resolved.endpoint, self.factory, reactor=reactor)
        self.server.setServiceParent(self)
        # After the port, so it stops first: sends under way finish on open connections.
        self.announcements = buildAnnouncements(
            self.database, self.outbound, reactor, resolved.get, seen=self.rates.roomName,
            slots=self.cluster.slots if self.cluster.settings.enabled else None)
        if self.announcements is not None:
            self.announcements.setServiceParent(self)
        self.admin = None
        if resolved.admin is not None:
            from kkobot.admin.web.site import AdminParts, AdminService

            parts = AdminParts(
                registry=self.registry, outbound=self.outbound, metrics=self.metrics,
                rates=self.rates, factory=self.factory, chatlog=self.chatlog, clock=reactor,
                cluster=self.cluster, database=self.database, rooms=self.commandParts.rooms,
                devices=self.devices,
                scheduleTimezone=resolved.get("schedules.timezone", "Asia/Seoul"),
            )
            self.admin = AdminService(resolved.admin.endpoint, parts, resolved.admin.token, reactor,
                                      allowedHosts=resolved.admin.allowedHosts)
            self.admin.setServiceParent(self)

    def _limits(self, resolved: Resolved, reactor: Any) -> ConnectionLimits:
        limits = dict(
            maxConnections=resolved.get("server.max_connections", 5000),
            maxPerAddress=resolved.get("server.max_connections_per_address", 100),
            maxFailures=resolved.get("auth.max_failures", 10),
            failureWindow=resolved.get("auth.failure_window", 60),
            banSeconds=resolved.get("auth.ban_seconds", 300),
        )
        if not self.cluster.settings.enabled:
            return ConnectionLimits(reactor, **limits)
        bans = self.cluster.addressBans(limits["maxFailures"], limits["failureWindow"],
                                        limits["banSeconds"])
        return SharedBanLimits(reactor, bans, **limits)

    def startService(self) -> None:
        if self.fileLog is not None:
            self.fileLog.startService()
        log.info(
            "[STARTUP] kkobot {version} starting: mode {mode}, database {db}",
            version=__version__,
            mode=self.resolved.settings.mode,
            db=self.database.describe(),
        )
        for note in self.resolved.notes:
            log.info(note)
        if not self.resolved.authRequired:
            log.warn("[STARTUP] authentication is OFF: every client is answered")
        MultiService.startService(self)

    @defer.inlineCallbacks
    def stopService(self):
        log.info("[SHUTDOWN] stopping")
        Service.stopService(self)
        # One child at a time, last started first: the port closes before the chat
        # log flushes, and the pool closes only after that.
        for child in reversed(list(self)):
            try:
                yield defer.maybeDeferred(child.stopService)
            except Exception:
                log.failure("[SHUTDOWN] {child} failed to stop", child=type(child).__name__)
        log.info(
            "[SHUTDOWN] done: {written} chat row(s) written this run",
            written=self.chatlog.rowsWritten,
        )
        if self.fileLog is not None:
            self.fileLog.stopService()


def makeService(settings: Settings, reactor: Any = None) -> KkobotService:
    """Build the server; L{StartupError} when the settings or config are unusable."""
    return KkobotService(resolve(settings), reactor=reactor)
