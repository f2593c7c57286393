"""Presence: this instance's heartbeat and the phones it holds, and the whole deployment as seen in Redis."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.cluster import lua
from kkobot.cluster.interfaces import IPresence
from kkobot.cluster.keys import Keys
from kkobot.cluster.link import isUnavailable
from kkobot.logs import Logger

log = Logger()

# Keys of an instance nobody sweeps (the whole deployment stopped) go after this long.
GC_FACTOR = 6
# An inbox outlives its instance long enough for another instance to drain it.
INBOX_GC_MILLIS = 24 * 3600 * 1000


def millis(seconds: float) -> int:
    return int(round(seconds * 1000))


def clientKey(client: Any) -> str:
    return str(client.connectionId)


def clientJSON(client: Any) -> str:
    data = client.asDict() if hasattr(client, "asDict") else dict(client)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass
class InstanceView:
    """One instance as /api/clients and the status page show it."""

    name: str
    heartbeat: float
    alive: bool
    info: dict[str, str] = field(default_factory=dict)
    connections: list[dict[str, Any]] = field(default_factory=list)
    local: bool = False

    def asDict(self) -> dict[str, Any]:
        return {
            "instance": self.name,
            "last_heartbeat": self.heartbeat,
            "alive": self.alive,
            "this_instance": self.local,
            "info": self.info,
            "clients": self.connections,
        }


@implementer(IPresence)
class Presence:
    """
    What this instance holds, kept in memory and mirrored into Redis.

    Every change is written at once when Redis is up; while it is down only the
    memory copy changes, and L{register} writes the whole of it when Redis is back.
    An instance is alive while its heartbeat (every C{interval}) is younger than
    C{timeout}; readers filter on that, so a killed instance's phones vanish from
    every view and from routing C{timeout} seconds after its last beat.
    """

    def __init__(
        self,
        link: Any,
        keys: Keys,
        instance: str,
        clock: IReactorTime,
        timeout: float = 5.0,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.link = link
        self.keys = keys
        self.instance = instance
        self.clock = clock
        self.timeout = timeout
        self.info = {k: str(v) for k, v in (info or {}).items()}
        self.clients: dict[str, Any] = {}
        self._live: list[str] = [instance]
        self.started = clock.seconds()

    @property
    def _gc(self) -> int:
        return millis(self.timeout * GC_FACTOR)

    def _now(self) -> int:
        return millis(self.clock.seconds())

    # -- what this instance holds

    def _botSince(self, bot: str) -> str:
        """connectedSince (ms) of the newest approved connection of C{bot} here, or ''."""
        since = [c.connectedSince for c in self.clients.values()
                 if c.botName == bot and getattr(c, "approved", True)]
        return str(millis(max(since))) if since else ""

    def add(self, client: Any) -> defer.Deferred[int]:
        self.clients[clientKey(client)] = client
        return self._hold(client, clientJSON(client))

    def update(self, client: Any) -> defer.Deferred[int]:
        if clientKey(client) not in self.clients:
            return defer.succeed(0)
        return self._hold(client, clientJSON(client))

    def remove(self, client: Any) -> defer.Deferred[int]:
        if self.clients.pop(clientKey(client), None) is None:
            return defer.succeed(0)
        return self._hold(client, "")

    def _hold(self, client: Any, data: str) -> defer.Deferred[int]:
        """Write one connection's change; a Deferred of the waiting messages handed over."""
        if self.link is None or not self.link.up:
            return defer.succeed(0)
        bot = client.botName
        d = self.link.eval(lua.HOLD, (), (
            self.keys.prefix, self.instance, self._gc, clientKey(client), data, bot,
            self._botSince(bot),
        ))

        def written(count: Any) -> Any:
            if int(count) == -1:
                return self.register()
            if int(count):
                log.info("[MSG] {count} waiting message(s) for {bot} handed to this instance",
                         count=int(count), bot=bot)
            return int(count)

        return d.addCallbacks(written, self._unavailable, errbackArgs=(0,))

    def register(self) -> defer.Deferred[int]:
        """Write everything this instance holds, replacing what Redis had for it."""
        if self.link is None or not self.link.up:
            return defer.succeed(0)
        conns = {clientKey(c): clientJSON(c) for c in self.clients.values()}
        bots = {c.botName: self._botSince(c.botName) for c in self.clients.values()}
        info = dict(self.info, started=str(millis(self.started)))
        d = self.link.eval(lua.REGISTER, (), (
            self.keys.prefix, self.instance, self._now(), self._gc, json.dumps(info),
            json.dumps(conns), json.dumps({b: s for b, s in bots.items() if s}),
        ))

        def registered(count: Any) -> int:
            log.info(
                "[SERVER] instance {instance} registered in Redis with {clients} connection(s)",
                instance=self.instance,
                clients=len(conns),
            )
            if int(count):
                log.info("[MSG] {count} waiting message(s) handed to this instance", count=int(count))
            return int(count)

        return d.addCallbacks(registered, self._unavailable, errbackArgs=(0,))

    def heartbeat(self) -> defer.Deferred[list[str]]:
        """Beat; a Deferred of the instances seen dead (to be swept)."""
        if self.link is None or not self.link.up:
            return defer.succeed([])
        d = self.link.eval(lua.HEARTBEAT, (), (
            self.keys.prefix, self.instance, self._now(), millis(self.timeout), self._gc,
            INBOX_GC_MILLIS,
        ))

        def beaten(result: Any) -> Any:
            if not result:
                # Swept while we were slow (or Redis lost its data): write it all again.
                return self.register().addCallback(lambda _: [])
            live, dead = result
            self._live = sorted(set(live) | {self.instance})
            return [name for name in dead if name != self.instance]

        return d.addCallbacks(beaten, self._unavailable, errbackArgs=([],))

    def liveInstances(self) -> list[str]:
        return list(self._live)

    def _unavailable(self, failure: Failure, default: Any) -> Any:
        if isUnavailable(failure):
            return default
        return failure

    # -- the deployment

    def localView(self) -> InstanceView:
        return InstanceView(
            name=self.instance,
            heartbeat=self.clock.seconds(),
            alive=True,
            info=dict(self.info),
            connections=[json.loads(clientJSON(c)) for c in self.clients.values()],
            local=True,
        )

    def deployment(self) -> defer.Deferred[list[InstanceView]]:
        if self.link is None or not self.link.up:
            return defer.succeed([self.localView()])
        d = readDeployment(self.link, self.keys, self.clock.seconds(), self.timeout)

        def withLocal(views: list[InstanceView]) -> list[InstanceView]:
            # This instance as it knows itself (unapproved connections included) first.
            return [self.localView()] + [v for v in views if v.name != self.instance]

        return d.addCallbacks(withLocal, self._unavailable, errbackArgs=([self.localView()],))


def readDeployment(link: Any, keys: Keys, now: float, timeout: float) -> defer.Deferred[list[InstanceView]]:
    """Every instance in Redis (lua.VIEW): for presence, and for tools that are no instance."""
    d = link.eval(lua.VIEW, (), (keys.prefix, millis(now), millis(timeout)))

    def parse(rows: list[Any]) -> list[InstanceView]:
        return [
            InstanceView(
                name=name,
                heartbeat=int(beat) / 1000.0,
                alive=bool(int(alive)),
                info=dict(zip(info[::2], info[1::2])),
                connections=[json.loads(c) for c in conns],
            )
            for name, beat, alive, info, conns in rows
        ]

    return d.addCallback(parse)
