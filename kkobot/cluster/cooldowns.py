"""Command cooldowns in one process or across the deployment (ICooldownStore)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.cluster.interfaces import ICooldownStore
from kkobot.cluster.keys import Keys
from kkobot.cluster.link import isUnavailable
from kkobot.cluster.presence import millis
from kkobot.commands.cooldowns import Cooldown, Cooldowns, Refusal

# KEYS: one hash per scope (until, announced). ARGV: now, then each scope's ms.
# Refused: {until of the scope that ends last, 1 if this refusal is the first
# announced for that until}. Allowed: every scope starts, and 0.
ACQUIRE = """
local now = tonumber(ARGV[1])
local best, bestKey = -1, false
for _, k in ipairs(KEYS) do
  local u = tonumber(redis.call('HGET', k, 'until') or '0')
  if u > now and u > best then best, bestKey = u, k end
end
if bestKey then
  local notify = redis.call('HGET', bestKey, 'announced') ~= tostring(best)
  redis.call('HSET', bestKey, 'announced', tostring(best))
  return {tostring(best), notify and 1 or 0}
end
for i, k in ipairs(KEYS) do
  local ms = tonumber(ARGV[i + 1])
  redis.call('DEL', k)
  redis.call('HSET', k, 'until', now + ms)
  redis.call('PEXPIRE', k, ms)
end
return 0
"""


def scopes(name: str, cooldown: Cooldown, context: Any) -> list[tuple[tuple[str, ...], float]]:
    """The (scope key, seconds) pairs of one call, as L{Cooldowns} forms them."""
    room = str(context.channelId or context.room)
    user = str(context.userHash or context.sender)
    keys: list[tuple[tuple[str, ...], float]] = []
    if cooldown.user:
        keys.append(((name, "user", room, user), cooldown.user))
    if cooldown.room:
        keys.append(((name, "room", room), cooldown.room))
    if cooldown.overall:
        keys.append(((name, "overall"), cooldown.overall))
    return keys


@implementer(ICooldownStore)
class LocalCooldownStore:
    """The in-process store: L{Cooldowns}, answered with already-fired Deferreds."""

    def __init__(self, clock: IReactorTime) -> None:
        self.cooldowns = Cooldowns(clock)

    def acquire(self, name: str, cooldown: Cooldown, context: Any) -> defer.Deferred[Refusal | None]:
        refusal = self.cooldowns.check(name, cooldown, context)
        if refusal is None:
            self.cooldowns.use(name, cooldown, context)
        return defer.succeed(refusal)


@implementer(ICooldownStore)
class RedisCooldownStore:
    """
    Cooldowns shared by every instance: one script checks and starts them
    atomically, so two instances running the same command at the same moment
    cannot both go ahead. Each call that goes ahead is also recorded in C{local},
    which answers alone while Redis is down (each instance then keeps its own).
    """

    def __init__(self, link: Any, keys: Keys, clock: IReactorTime, local: LocalCooldownStore) -> None:
        self.link = link
        self.keys = keys
        self.clock = clock
        self.local = local

    def acquire(self, name: str, cooldown: Cooldown, context: Any) -> defer.Deferred[Refusal | None]:
        if not self.link.up:
            return self.local.acquire(name, cooldown, context)
        pairs = scopes(name, cooldown, context)
        now = millis(self.clock.seconds())
        d = self.link.eval(
            ACQUIRE,
            [self.keys.cooldown(scope) for scope, _ in pairs],
            [now] + [max(1, millis(seconds)) for _, seconds in pairs],
        )

        def decided(reply: Any) -> Refusal | None:
            if reply == 0 or reply == "0":
                self.local.cooldowns.use(name, cooldown, context)
                return None
            until, notify = reply
            return Refusal((int(until) - now) / 1000.0, bool(int(notify)))

        def failed(failure: Failure) -> Any:
            if isUnavailable(failure):
                return self.local.acquire(name, cooldown, context)
            return failure

        return d.addCallbacks(decided, failed)
