"""Auth-failure bans per address: counted in one process or across the deployment (IAddressBans)."""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.cluster.interfaces import IAddressBans
from kkobot.cluster.keys import LUA_PRELUDE, Keys
from kkobot.cluster.link import isUnavailable
from kkobot.cluster.presence import millis
from kkobot.logs import Logger

log = Logger()

# ARGV: P address now window(ms) maxFailures ban(ms) member. The ban's end (ms) or 0.
FAILED = LUA_PRELUDE + """
local address, now = ARGV[2], tonumber(ARGV[3])
local fk = key('authfail', address)
redis.call('ZADD', fk, now, ARGV[7])
redis.call('ZREMRANGEBYSCORE', fk, '-inf', now - tonumber(ARGV[4]))
redis.call('PEXPIRE', fk, tonumber(ARGV[4]))
if redis.call('ZCARD', fk) < tonumber(ARGV[5]) then return 0 end
redis.call('DEL', fk)
local banned = now + tonumber(ARGV[6])
redis.call('ZADD', key('bans'), banned, address)
return tostring(banned)
"""


@implementer(IAddressBans)
class LocalBans:
    """
    C{maxFailures} auth failures within C{failureWindow} seconds ban an address for
    C{banSeconds} (the rule of L{kkobot.bridge.limits.ConnectionLimits}), in this process.
    """

    def __init__(
        self,
        clock: IReactorTime,
        maxFailures: int = 10,
        failureWindow: float = 60.0,
        banSeconds: float = 300.0,
    ) -> None:
        self.clock = clock
        self.maxFailures = maxFailures
        self.failureWindow = failureWindow
        self.banSeconds = banSeconds
        self._failures: dict[str, deque[float]] = {}
        self._bannedUntil: dict[str, float] = {}

    def refusal(self, address: str) -> str | None:
        now = self.clock.seconds()
        until = self._bannedUntil.get(address)
        if until is None:
            return None
        if until > now:
            return f"too many auth failures from {address}: refused for {until - now:.0f} more s"
        del self._bannedUntil[address]
        return None

    def failed(self, address: str) -> defer.Deferred[bool]:
        now = self.clock.seconds()
        times = self._failures.setdefault(address, deque())
        times.append(now)
        while times and times[0] <= now - self.failureWindow:
            times.popleft()
        if len(times) < self.maxFailures:
            return defer.succeed(False)
        del self._failures[address]
        self.ban(address, now + self.banSeconds)
        return defer.succeed(True)

    def ban(self, address: str, until: float) -> None:
        """Refuse C{address} until C{until} (a ban decided here or by another instance)."""
        if until > self._bannedUntil.get(address, 0):
            self._bannedUntil[address] = until

    def forget(self) -> None:
        now = self.clock.seconds()
        for address in [a for a, t in self._failures.items() if not t or t[-1] <= now - self.failureWindow]:
            del self._failures[address]
        for address in [a for a, until in self._bannedUntil.items() if until <= now]:
            del self._bannedUntil[address]


@implementer(IAddressBans)
class RedisBans:
    """
    Failures are counted in Redis, so an address failing on several instances is
    banned as fast as on one. L{refusal} stays synchronous: it reads C{local}, a
    mirror of the deployment's bans that each failure's answer and L{refresh}
    (every heartbeat) keep current. While Redis is down, C{local} counts alone.
    """

    def __init__(self, link: Any, keys: Keys, instance: str, clock: IReactorTime, local: LocalBans) -> None:
        self.link = link
        self.keys = keys
        self.instance = instance
        self.clock = clock
        self.local = local
        self._members = itertools.count()

    def refusal(self, address: str) -> str | None:
        return self.local.refusal(address)

    def failed(self, address: str) -> defer.Deferred[bool]:
        if not self.link.up:
            return self.local.failed(address)
        local = self.local
        d = self.link.eval(FAILED, (), (
            self.keys.prefix, address, millis(self.clock.seconds()),
            millis(local.failureWindow), local.maxFailures, millis(local.banSeconds),
            f"{self.instance}:{next(self._members)}",
        ))

        def counted(until: Any) -> bool:
            if not int(until):
                return False
            local.ban(address, int(until) / 1000.0)
            return True

        def failed(failure: Failure) -> Any:
            return local.failed(address) if isUnavailable(failure) else failure

        return d.addCallbacks(counted, failed)

    def refresh(self) -> defer.Deferred[None]:
        """Copy the deployment's current bans into the local mirror."""
        if not self.link.up:
            return defer.succeed(None)
        now = millis(self.clock.seconds())
        self.link.execute("ZREMRANGEBYSCORE", self.keys.bans, "-inf", now).addErrback(lambda f: None)
        d = self.link.execute("ZRANGEBYSCORE", self.keys.bans, f"({now}", "+inf", "WITHSCORES")

        def mirror(flat: list[str]) -> None:
            for address, until in zip(flat[::2], flat[1::2]):
                self.local.ban(address, int(float(until)) / 1000.0)

        return d.addCallbacks(mirror, lambda f: None if isUnavailable(f) else f)

    def forget(self) -> None:
        self.local.forget()
