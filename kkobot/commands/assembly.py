"""Wires the command parts together once, for the server, `kkobot-chat` and the test harness alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from twisted.application.service import MultiService, Service
from twisted.internet import defer, task

from kkobot.commands.dispatch import Dispatcher
from kkobot.commands.history import SqlChatHistory
from kkobot.commands.lifecycle import Lifecycle
from kkobot.commands.permissions import Permissions
from kkobot.commands.plugin import PluginConfigs
from kkobot.commands.registry import CommandRegistry
from kkobot.commands.reload import SighupReloader
from kkobot.commands.router import MessageRouter
from kkobot.commands.scheduler import Scheduler
from kkobot.commands.services import PluginServices
from kkobot.commands.store import SqlStorage
from kkobot.commands.triggers import RoomFloodLimit, TriggerMatcher, TriggerTable
from kkobot.events import NO_EVENTS
from kkobot.logs import Logger
from kkobot.rooms import RoomStore

log = Logger()

# The settings the parts read, with their defaults (documented in docs/configuration.md).
SETTINGS: dict[str, Any] = {
    "commands.timeout": 10.0,
    "commands.cooldown_exempt_admins": True,
    "schedules.timezone": "Asia/Seoul",
    "schedules.lateness": 300.0,
    "triggers.room_limit": 5,
    "triggers.room_window": 60.0,
    "triggers.refresh_interval": 2.0,
    "http.timeout": 10.0,
    "http.max_bytes": 1024 * 1024,
    "http.concurrency": 4,
    "store.purge_interval": 600.0,
    "rooms.approval": False,
    "rooms.refresh_interval": 2.0,
}


class CommandsService(Service):
    """Discovers the command plugins when the server starts."""

    def __init__(self, commands: CommandRegistry) -> None:
        self.commands = commands

    def startService(self) -> None:
        Service.startService(self)
        self.commands.load()


class StorePurger(Service):
    """Deletes expired plugin values now and then (reads already ignore them)."""

    def __init__(self, storage: Any, clock: Any, interval: float) -> None:
        self.storage = storage
        self.clock = clock
        self.interval = interval
        self._loop: task.LoopingCall | None = None

    def startService(self) -> None:
        Service.startService(self)
        if self.interval > 0:
            self._loop = task.LoopingCall(self.purge)
            self._loop.clock = self.clock
            self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def purge(self) -> defer.Deferred[None]:
        d = self.storage.purgeExpired(self.clock.seconds())
        d.addCallback(lambda n: n and log.info("[DB] {count} expired plugin value(s) deleted", count=n))
        d.addErrback(lambda f: log.warn("[DB] purging expired plugin values failed: {error}",
                                        error=f.getErrorMessage()))
        return d


class StorageCloser(Service):
    """Closes the plugin store's own connection pool (MySQL) at shutdown."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def stopService(self) -> None:
        Service.stopService(self)
        self.storage.close()


class HttpCloser(Service):
    """Closes the plugins' HTTP connections at shutdown."""

    def __init__(self, http: Any) -> None:
        self.http = http

    def stopService(self) -> Any:
        Service.stopService(self)
        return self.http.close()


@dataclass
class CommandParts:
    """Everything that answers messages; C{services} is a MultiService to start and stop."""

    commands: CommandRegistry
    permissions: Permissions
    plugins: PluginServices
    dispatcher: Dispatcher
    router: MessageRouter
    scheduler: Scheduler
    lifecycle: Lifecycle
    triggerTable: TriggerTable | None
    service: MultiService
    rooms: RoomStore | None = None


def buildCommandParts(
    *,
    commands: CommandRegistry,
    chatlog: Any,
    clients: Any,
    outbound: Any,
    clock: Any,
    cfg: dict[str, Any] | None,
    get: Callable[[str, Any], Any],
    database: Any = None,
    storage: Any = None,
    history: Any = None,
    http: Any = None,
    events: Any = NO_EVENTS,
    permissions: Permissions | None = None,
    sighup: bool = True,
) -> CommandParts:
    """
    The command side of a server. With a C{database}, plugin storage, the chat
    history and operators' triggers live in it (their tables are added to its
    schema); C{storage} / C{history} replace those (tests).
    """

    def setting(key: str) -> Any:
        return get(key, SETTINGS[key])

    service = MultiService()
    triggerTable = None
    rooms = None
    if database is not None:
        RoomStore.addSchema(database)
        rooms = RoomStore(database, clock, approval=setting("rooms.approval"),
                          refreshInterval=setting("rooms.refresh_interval"))
        if storage is None:
            SqlStorage.addSchema(database)
            storage = SqlStorage(database, ownPool=True)
            StorageCloser(storage).setServiceParent(service)
        if history is None:
            history = SqlChatHistory(database)
        TriggerTable.addSchema(database)
        triggerTable = TriggerTable(database, clock, setting("triggers.refresh_interval"))
    if http is None:
        from kkobot.commands.http import HttpPool

        http = HttpPool(clock, timeout=setting("http.timeout"), maxBytes=setting("http.max_bytes"),
                        concurrency=setting("http.concurrency"))
    section = (cfg or {}).get("plugins")
    plugins = PluginServices(
        clock,
        storage=storage,
        configs=PluginConfigs(section if isinstance(section, dict) else None),
        http=http,
        history=history,
        outbound=outbound,
    )
    if permissions is None:
        permissions = Permissions(cfg, rooms=rooms)
    elif rooms is not None and getattr(permissions, "rooms", None) is None:
        permissions.rooms = rooms
    dispatcher = Dispatcher(
        commands,
        permissions,
        clock,
        outbound=outbound,
        clients=clients,
        timeout=setting("commands.timeout"),
        exemptAdmins=setting("commands.cooldown_exempt_admins"),
        services=plugins,
        flood=RoomFloodLimit(clock, setting("triggers.room_limit"), setting("triggers.room_window")),
    )
    router = MessageRouter(
        commands,
        chatlog,
        clock,
        permissions,
        events=events,
        dispatcher=dispatcher,
        triggers=TriggerMatcher(commands, triggerTable),
        rooms=rooms,
    )
    CommandsService(commands).setServiceParent(service)
    lifecycle = Lifecycle(commands, plugins, clock)
    lifecycle.setServiceParent(service)
    if triggerTable is not None:
        triggerTable.setServiceParent(service)
    if rooms is not None:
        rooms.setServiceParent(service)
    if storage is not None and database is not None:
        StorePurger(storage, clock, setting("store.purge_interval")).setServiceParent(service)
    if hasattr(http, "close"):
        HttpCloser(http).setServiceParent(service)
    scheduler = Scheduler(
        commands,
        outbound,
        clock,
        timezone=setting("schedules.timezone"),
        lateness=setting("schedules.lateness"),
        services=plugins,
    )
    scheduler.setServiceParent(service)
    if sighup:
        SighupReloader(commands, clock).setServiceParent(service)
    return CommandParts(commands, permissions, plugins, dispatcher, router, scheduler, lifecycle,
                        triggerTable, service, rooms)
