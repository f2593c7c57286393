"""ClusterNode: one instance's part of the deployment, as a service the server starts and stops."""

from __future__ import annotations

import os
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from kkobot.cluster.bans import LocalBans, RedisBans
from kkobot.cluster.cooldowns import LocalCooldownStore, RedisCooldownStore
from kkobot.cluster.inbox import InboxReader, drain
from kkobot.cluster.interfaces import IAddressBans, ICooldownStore, IReplayCheck
from kkobot.cluster.keys import Keys
from kkobot.cluster.link import RedisLink, isUnavailable
from kkobot.cluster.message import RoutedMessage
from kkobot.cluster.outboxfile import OutboxFile
from kkobot.cluster.presence import Presence
from kkobot.cluster.replay import LocalReplayCheck, RedisReplayCheck
from kkobot.cluster.routing import OutboundRouter, logUndelivered
from kkobot.cluster.settings import ClusterSettings
from kkobot.cluster.slots import SlotClaims
from kkobot.logs import Logger

log = Logger()


class ClusterNode(Service):
    """
    Builds and runs this instance's cluster parts: the Redis links, presence, the
    outbound router and inbox reader, and the shared-state stores it hands out.

    Every C{heartbeatInterval} (L{tick}) it beats, takes over the inboxes of
    instances that stopped beating, routes or expires waiting messages and mirrors
    the deployment's bans. When Redis returns it writes its presence again and
    routes what it held meanwhile. Without C{settings.redis} the same objects work
    in one process (no Redis, nothing shared).
    """

    def __init__(
        self,
        settings: ClusterSettings,
        deliver: Callable[[RoutedMessage], bool],
        clock: IReactorTime | None = None,
        reactor: Any = None,
        info: dict[str, Any] | None = None,
        onUndelivered: Callable[[RoutedMessage, str], None] = logUndelivered,
        outboxDir: str | None = None,
        maxQueued: int = 10_000,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.settings = settings
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.instance = settings.instance
        self.keys = Keys(settings.keyPrefix)
        self.link: RedisLink | None = None
        self.readerLink: RedisLink | None = None
        if settings.redis is not None:
            self.link = RedisLink(settings.redis, reactor, replyTimeout=settings.replyTimeout)
            self.readerLink = RedisLink(settings.redis, reactor, announce=False,
                                        replyTimeout=settings.replyTimeout)
        base = {"pid": os.getpid()}
        self.presence = Presence(self.link, self.keys, self.instance, self.clock,
                                 settings.instanceTimeout, dict(base, **(info or {})))
        self.router = OutboundRouter(self.link, self.keys, self.instance, deliver, self.clock,
                                     settings.outboundWait, settings.instanceTimeout, onUndelivered)
        self.incarnation = self.router.incarnation
        # What waits in this process (no Redis, or Redis down) survives a restart.
        self.router.outbox.limit = maxQueued
        if outboxDir is not None:
            self.router.outbox.store = OutboxFile(outboxDir, self.instance)
        self.inbox: InboxReader | None = None
        if self.link is not None:
            self.inbox = InboxReader(self.readerLink, self.link, self.keys, self.instance,
                                     self.router, self.clock, reactor)
            self.link.subscribe(self)
        self.slots = SlotClaims(self.link, self.keys, self.instance, self.incarnation, self.presence)
        self._bans: list[RedisBans] = []
        self._loop: task.LoopingCall | None = None
        self._ticking: defer.Deferred[None] | None = None

    # -- stores for the server's parts

    def cooldownStore(self) -> ICooldownStore:
        local = LocalCooldownStore(self.clock)
        if self.link is None:
            return local
        return RedisCooldownStore(self.link, self.keys, self.clock, local)

    def replayCheck(self, guard: Any, window: float) -> IReplayCheck:
        """C{guard}: the in-process replay guard (C{firstUse(sig, connectionId, stamp) -> bool})."""
        if self.link is None:
            return LocalReplayCheck(guard)
        return RedisReplayCheck(self.link, self.keys, self.incarnation, self.clock, window, guard)

    def addressBans(self, maxFailures: int, failureWindow: float, banSeconds: float) -> IAddressBans:
        local = LocalBans(self.clock, maxFailures, failureWindow, banSeconds)
        if self.link is None:
            return local
        bans = RedisBans(self.link, self.keys, self.instance, self.clock, local)
        self._bans.append(bans)
        return bans

    # -- the registry's changes

    def clientAdded(self, client: Any) -> defer.Deferred[int]:
        d = self.presence.add(client)
        if getattr(client, "approved", True):
            self.router.botArrived(client.botName)
        return d

    def clientChanged(self, client: Any) -> defer.Deferred[int]:
        d = self.presence.update(client)
        if getattr(client, "approved", True):
            self.router.botArrived(client.botName)
        return d

    def clientRemoved(self, client: Any) -> defer.Deferred[int]:
        return self.presence.remove(client)

    # -- Redis comes and goes

    def redisUp(self) -> None:
        d = self.presence.register()
        d.addCallback(lambda _: self.router.pump())
        d.addCallback(lambda _: self._refreshBans())
        d.addErrback(lambda f: log.failure("[SERVER] rejoining the cluster failed", f))

    def redisDown(self, reason: str) -> None:
        # The link has said so; every part answers locally until redisUp.
        pass

    # -- periodic work

    def tick(self) -> defer.Deferred[None]:
        """One heartbeat's work; a tick still running (slow Redis) makes the next one skip."""
        if self._ticking is not None:
            return self._ticking
        self._ticking = d = self._tick()
        d.addErrback(lambda f: None if isUnavailable(f) else log.failure(
            "[SERVER] cluster heartbeat failed", f))

        def done(_: Any) -> None:
            self._ticking = None

        d.addBoth(done)
        return d

    @defer.inlineCallbacks
    def _tick(self):
        dead = yield self.presence.heartbeat()
        for name in dead:
            yield drain(self.link, self.keys, name, self.instance, self.clock,
                        self.settings.instanceTimeout)
        yield self.router.pump()
        yield self._refreshBans()

    def _refreshBans(self) -> defer.Deferred[Any]:
        for bans in self._bans:
            bans.forget()
        return defer.DeferredList([b.refresh() for b in self._bans], consumeErrors=True)

    # -- lifecycle

    def startService(self) -> None:
        Service.startService(self)
        restored = self.router.outbox.restore()
        if restored:
            log.info("[MSG] {count} message(s) kept from the last run wait for their bots",
                     count=restored)
        if self.link is not None:
            log.info(
                "[STARTUP] cluster: instance {instance} on {redis} (keys {prefix}:*)",
                instance=self.instance,
                redis=self.settings.redis.display(),
                prefix=self.keys.prefix,
            )
            self.link.start()
            self.readerLink.start()
            self.inbox.start()
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = self.clock
        self._loop.start(self.settings.heartbeatInterval, now=False)

    @defer.inlineCallbacks
    def stopService(self):
        """Leave the deployment: stop reading, hand the inbox on, deregister, close."""
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._ticking is not None:
            yield self._ticking
        if self.router.outbox.store is not None:
            self.router.outbox.store.close()
        if self.link is None:
            return
        stopping = self.inbox.stop()
        yield self.readerLink.stop()
        yield stopping
        if self.link.up:
            try:
                moved = yield drain(self.link, self.keys, self.instance, self.instance,
                                    self.clock, self.settings.instanceTimeout)
                log.info(
                    "[SHUTDOWN] instance {instance} left the cluster; {moved} message(s) "
                    "from its inbox routed to other instances",
                    instance=self.instance,
                    moved=moved or 0,
                )
            except Exception:
                log.failure("[SHUTDOWN] leaving the cluster failed; other instances take over "
                            "after the heartbeat timeout")
        yield self.link.stop()

    # -- /readyz, the status page

    def status(self) -> dict[str, Any]:
        if self.link is None:
            mode = "single"
        else:
            mode = "cluster" if self.link.up else "local-only"
        out: dict[str, Any] = {
            "mode": mode,
            "instance": self.instance,
            "live_instances": self.presence.liveInstances(),
            "held_messages": len(self.router.held),
        }
        if self.link is not None:
            out["redis"] = self.link.status()
        return out
