"""Assembles the running server from settings: config, database, chat log, commands, port."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from twisted.application import strports
from twisted.application.internet import TimerService
from twisted.application.service import MultiService, Service
from twisted.internet import defer

from kkobot import __version__, config, logs
from kkobot.bridge.auth import MIN_WINDOW_SECONDS, HmacAuthenticator, OpenAuthenticator
from kkobot.commands import CommandRegistry
from kkobot.commands.assembly import buildCommandParts
from kkobot.db.pool import Database
from kkobot.bridge.devices import DeviceStore, applyDeviceStatus
from kkobot.events import EventFanout
from kkobot.chatlog.kindlogs import KindLogs
from kkobot.bridge.limits import ConnectionLimits, LimitedBridgeFactory
from kkobot.commands.loader import untrusted as untrustedPlugins
from kkobot.endpoints import isLoopback
from kkobot.logs import Logger
from kkobot.admin.metrics import Metrics
from kkobot.bridge.outbound import Outbound
from kkobot.bridge.protocol import BridgeFactory
from kkobot.admin.rates import MessageRates
from kkobot.bridge.registry import ClientRegistry
from kkobot.bridge.replay import ReplayFile
from kkobot.admin.web.settings import AdminConfigError, AdminSettings, adminSettings
from kkobot.announcements.setup import buildAnnouncements

log = Logger()

DEFAULT_PORT = 1490
MODES = ("test", "prod")


@dataclass
class Settings:
    """What the command line (or the environment, for the .tac) asked for."""

    port: str | None = None
    mode: str = "test"
    configDir: str = config.DEFAULT_DIR
    logLevel: str = "info"
    logDir: str | None = "logs"
    varDir: str = "var"
    dropinDir: str | None = None
    adminPort: str | None = None
    # Named on purpose (--config, KKOBOT_CONFIG): a missing config is then an error,
    # not the embedded default.
    configGiven: bool = False

    @classmethod
    def fromEnvironment(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            port=env.get("KKOBOT_PORT") or None,
            mode=env.get("KKOBOT_MODE") or "test",
            configDir=env.get("KKOBOT_CONFIG") or config.DEFAULT_DIR,
            configGiven=bool(env.get("KKOBOT_CONFIG")),
            logLevel=env.get("KKOBOT_LOG_LEVEL") or "info",
            dropinDir=env.get("KKOBOT_PLUGINS") or None,
            adminPort=env.get("KKOBOT_ADMIN_PORT") or None,
        )


class StartupError(Exception):
    """The server cannot start; the message says why and what to do."""


@dataclass
class Resolved:
    """Settings combined with the config file: everything the parts are built from."""

    settings: Settings
    cfg: dict[str, Any] | None = field(repr=False)
    endpoint: str
    db: Any
    dropinDir: str
    authRequired: bool
    notes: list[str] = field(default_factory=list)
    admin: AdminSettings | None = None

    @property
    def journalDir(self) -> str:
        """chatlog.journal_dir (default <var>/journal), one subdirectory per mode."""
        base = self.get("chatlog.journal_dir", os.path.join(self.settings.varDir, "journal"))
        return os.path.join(base, self.settings.mode)

    @property
    def devicesFile(self) -> str:
        """Every known device status, kept locally: <var>/devices/<mode>.json."""
        return os.path.join(self.settings.varDir, "devices", f"{self.settings.mode}.json")

    @property
    def replayDir(self) -> str:
        """Where accepted signatures are remembered across restarts: <var>/replay/<mode>."""
        return os.path.join(self.settings.varDir, "replay", self.settings.mode)

    def get(self, key: str, default: Any) -> Any:
        if self.cfg is None:
            return default
        return config.setting(self.cfg, key, default)


def endpointFor(port: str | None, interface: str) -> str:
    """A port number becomes a TCP endpoint on C{interface}; endpoint strings pass."""
    port = (port or str(DEFAULT_PORT)).strip()
    if port.isdigit():
        return f"tcp:{port}:interface={interface}"
    return port


def _halfConfig(directory: str) -> bool:
    """One of the two config files without the other: load() says how to repair it."""
    return any(os.path.lexists(os.path.join(directory, name))
               for name in (config.KEY_FILE, config.ENC_FILE))


def resolve(settings: Settings) -> Resolved:
    """Read the config (if any) and decide every setting; raise L{StartupError}."""
    if settings.mode not in MODES:
        raise StartupError(f"unknown mode {settings.mode!r}: use --mode test or --mode prod")
    try:
        logs.setLevel(settings.logLevel)
    except ValueError as e:
        raise StartupError(str(e))
    notes: list[str] = []
    try:
        if settings.configGiven and not config.exists(settings.configDir):
            # A mistyped --config must not quietly become the no-auth default.
            orDefault = "" if settings.mode == "prod" else (
                ", or leave out --config to run on the embedded default "
                "(loopback only, no authentication)")
            raise StartupError(
                f"no config in {settings.configDir}/ (given with --config or KKOBOT_CONFIG): "
                f"check the path, or create one with `kkobot-config --dir "
                f"{settings.configDir} init`{orDefault}"
            )
        if config.exists(settings.configDir) or _halfConfig(settings.configDir):
            cfg = config.load(settings.configDir)
            config.validate(cfg)
            db = config.db_settings(cfg, settings.mode)
            interface = config.setting(cfg, "SERVER.server_ip", "127.0.0.1") or "127.0.0.1"
            dropin = settings.dropinDir or config.setting(cfg, "plugins.dropin_dir", "plugins")
            authRequired = settings.mode == "prod" or config.setting(cfg, "auth.required", True)
            if authRequired:
                notes.extend(_checkCredentials(cfg, settings.mode))
            notes.append(f"[CONFIG] loaded {os.path.abspath(settings.configDir)}")
        elif settings.mode == "prod":
            raise StartupError(
                f"prod mode needs a config, and {settings.configDir}/ has none: create it "
                f"with `kkobot-config --dir {settings.configDir} init`, then set "
                "DBs.kkobot_prod"
            )
        else:
            cfg = None
            db = config.DBSettings(
                engine="sqlite",
                host="",
                port=0,
                user="",
                password="",
                name="kkobot_test",
                path=os.path.join(settings.varDir, "kkobot_test.sqlite3"),
            )
            interface = "127.0.0.1"
            dropin = settings.dropinDir or "plugins"
            authRequired = False
            notes.append(
                f"[CONFIG] no config in {settings.configDir}/: embedded default "
                f"(SQLite at {db.path}, loopback only, no authentication)"
            )
        admin = adminSettings(cfg, settings.adminPort)
    except config.ConfigError as e:
        raise StartupError(f"config {settings.configDir}: {e}")
    except AdminConfigError as e:
        raise StartupError(f"config {settings.configDir}: {e}")
    return Resolved(
        settings=settings,
        cfg=cfg,
        endpoint=endpointFor(settings.port, interface),
        db=db,
        dropinDir=dropin,
        authRequired=authRequired,
        notes=notes,
        admin=admin,
    )


def refuseUnsafe(resolved: Resolved) -> None:
    """
    What the server will not serve with (tools that only read the settings, such as
    kkobot-admin, do not care): no authentication beyond loopback, plugin code that
    others could have written. Raises L{StartupError}.
    """
    settings = resolved.settings
    if not resolved.authRequired and not isLoopback(resolved.endpoint):
        cli = f"kkobot-config --dir {settings.configDir}"
        turnOn = (f"`{cli} init`, then `{cli} add-bot NAME`" if resolved.cfg is None
                  else f"`{cli} set auth.required true`, and `{cli} add-bot NAME`")
        raise StartupError(
            f"refusing to listen on {resolved.endpoint} without authentication: anyone who "
            "can reach it would be answered. Listen on loopback only (interface=127.0.0.1), "
            f"or turn authentication on: {turnOn}"
        )
    problems = untrustedPlugins(os.path.abspath(resolved.dropinDir))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StartupError(f"refusing to run plugins: {problems[0]}{more}")


def _checkCredentials(cfg: dict[str, Any], mode: str) -> list[str]:
    """Fail now on a malformed bot entry; notes for what the operator should know."""
    notes = []
    if mode == "prod" and config.setting(cfg, "auth.required", True) is False:
        notes.append("[AUTH] auth.required=false is ignored in prod mode")
    bots = cfg.get("bots") or {}
    for name in bots:
        config.bot_credentials(cfg, name)
    if not bots:
        notes.append(
            "[AUTH] no bot credentials configured: every bridge will be refused; "
            "add one with `kkobot-config add-bot NAME`"
        )
    else:
        notes.append(f"[AUTH] authentication on for bot(s): {', '.join(sorted(bots))}")
    return notes


class DatabaseService(Service):
    """Owns the connection pool: closed after every part that writes has stopped."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def stopService(self) -> None:
        Service.stopService(self)
        self.database.close()


class BridgeServerService(MultiService):
    """The listening port; on stop, it also closes the open client connections."""

    def __init__(self, endpoint: str, factory: BridgeFactory, reactor: Any = None) -> None:
        MultiService.__init__(self)
        self.endpoint = endpoint
        self.factory = factory
        self.listener = strports.service(endpoint, factory, reactor=reactor)
        self.listener.setServiceParent(self)

    def startService(self) -> None:
        MultiService.startService(self)
        log.info("[SERVER] listening on {endpoint}", endpoint=self.endpoint)

    def whenListening(self) -> defer.Deferred[Any]:
        """The bound IListeningPort once listening; tests learn a port-0 number from it."""
        d: defer.Deferred[Any] = defer.Deferred()

        def seen(port: Any) -> Any:
            d.callback(port)
            return port  # the listener's own Deferred keeps it, for stopService

        # StreamServerEndpointService offers no public accessor for its port.
        self.listener._waitingForPort.addCallback(seen)
        return d

    @defer.inlineCallbacks
    def stopService(self):
        yield MultiService.stopService(self)
        log.info(
            "[SHUTDOWN] stopped listening; closing {count} client connection(s)",
            count=len(self.factory.connections),
        )
        closing = list(self.factory.connections)
        for proto in closing:
            proto.disconnect()
        # Rows logged while they close belong to this run's final flush, which
        # starts only after this; disconnect() aborts a stuck peer within seconds.
        yield defer.DeferredList([proto.closed for proto in closing])


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
            batchSize=resolved.get("chatlog.batch_size", 500),
            flushInterval=resolved.get("chatlog.flush_interval", 0.05),
            maxBufferRows=resolved.get("chatlog.max_buffer_rows", 20_000),
            maxJournalBytes=resolved.get("chatlog.max_journal_bytes", 512 * 1024 * 1024),
            events=self.events,
        )
        self.chatlog.setServiceParent(self)
        self.metrics.watchTables(self.chatlog.tables)
        from kkobot.retention import RetentionService

        # Old rows deleted in small batches (retention.*); after the chat log, which makes the tables.
        self.retention = RetentionService.fromSettings(self.database, reactor, resolved.get)
        self.retention.setServiceParent(self)
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
                lambda bot: config.bot_credentials(cfg, bot),
                self.devices,
                reactor,
                window=window,
                replays=self.replays,
            )
        self.limits = ConnectionLimits(
            reactor,
            maxConnections=resolved.get("server.max_connections", 5000),
            maxPerAddress=resolved.get("server.max_connections_per_address", 100),
            maxFailures=resolved.get("auth.max_failures", 10),
            failureWindow=resolved.get("auth.failure_window", 60),
            banSeconds=resolved.get("auth.ban_seconds", 300),
        )
        self.commands = CommandRegistry(resolved.dropinDir)
        self.outbound = Outbound(self.registry, self.chatlog, reactor, events=self.events)
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
        if self.devices is not None:
            devices = self.devices
            devices.onChange(lambda bot, device, status: applyDeviceStatus(
                self.factory, bot, device, status, keyOf=devices.key))
        self.chatlog.setPressureValve(self.factory.pauseAll, self.factory.resumeAll)
        self.server = BridgeServerService(resolved.endpoint, self.factory, reactor=reactor)
        self.server.setServiceParent(self)
        # After the port, so it stops first: sends under way finish on open connections.
        self.announcements = buildAnnouncements(
            self.database, self.outbound, reactor, resolved.get, seen=self.rates.roomName)
        if self.announcements is not None:
            self.announcements.setServiceParent(self)
        self.admin = None
        if resolved.admin is not None:
            from kkobot.admin.web.site import AdminParts, AdminService

            parts = AdminParts(
                registry=self.registry, outbound=self.outbound, metrics=self.metrics,
                rates=self.rates, factory=self.factory, chatlog=self.chatlog, clock=reactor,
                database=self.database, rooms=self.commandParts.rooms, devices=self.devices,
            )
            self.admin = AdminService(resolved.admin.endpoint, parts, resolved.admin.token, reactor,
                                      allowedHosts=resolved.admin.allowedHosts)
            self.admin.setServiceParent(self)

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
