"""The Redis key names of one deployment, all under one prefix (docs/cluster.md lists them)."""

from __future__ import annotations

import json

# The consumer group every instance inbox is read with.
GROUP = "deliver"

# Lua that every script starts with: the prefix is ARGV[1], key names are built as in
# L{Keys}, and `holder` finds the instance holding the newest approved connection of a
# bot among the instances whose heartbeat is recent (ARGV: now and timeout, in ms).
LUA_PRELUDE = """
local P = ARGV[1]
local function key(...) return table.concat({P, ...}, ':') end
local function holder(bot, now, timeout, exclude)
  local names = redis.call('ZRANGEBYSCORE', key('instances'), now - timeout, '+inf')
  local best, bestSince = false, -1
  for _, name in ipairs(names) do
    if name ~= exclude then
      local since = redis.call('HGET', key('bots', name), bot)
      if since and tonumber(since) > bestSince then
        best, bestSince = name, tonumber(since)
      end
    end
  end
  return best
end
"""


class Keys:
    """Key names under C{prefix} (default C{kkobot:<mode>}, so test and prod can share a Redis)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def instances(self) -> str:
        """ZSET instance name -> last heartbeat (ms)."""
        return self._key("instances")

    def instance(self, name: str) -> str:
        """HASH of one instance: started, heartbeat, version, pid, host, port."""
        return self._key("instance", name)

    def conns(self, name: str) -> str:
        """HASH connection id -> JSON of the connection (what /api/clients shows)."""
        return self._key("conns", name)

    def bots(self, name: str) -> str:
        """HASH bot name -> connectedSince (ms) of its newest approved connection there."""
        return self._key("bots", name)

    def inbox(self, name: str) -> str:
        """STREAM of message ids for the instance to deliver (group L{GROUP})."""
        return self._key("inbox", name)

    def message(self, messageId: str) -> str:
        """HASH of one outbound message: state, bot, payload, deadline, outcome."""
        return self._key("msg", messageId)

    @property
    def sequence(self) -> str:
        """STRING counter: the send order of messages (waiting ones go out in it)."""
        return self._key("seq")

    @property
    def waiting(self) -> str:
        """ZSET message id -> deadline (ms): messages whose bot is connected nowhere."""
        return self._key("waiting")

    def waitingFor(self, bot: str) -> str:
        """ZSET message id -> seq: the waiting messages of one bot, in send order."""
        return self._key("waiting", bot)

    @property
    def waitingBots(self) -> str:
        """SET of bots that have waiting messages."""
        return self._key("waitingbots")

    def cooldown(self, parts: tuple[str, ...]) -> str:
        """HASH until / announced of one cooldown scope (JSON keeps the parts apart)."""
        return self._key("cd", json.dumps(list(parts), ensure_ascii=False, separators=(",", ":")))

    def signature(self, sig: str) -> str:
        """STRING 'instance/connectionId' that first used an auth signature."""
        return self._key("sig", sig)

    def failures(self, address: str) -> str:
        """ZSET of one address's recent auth failures (ms)."""
        return self._key("authfail", address)

    @property
    def bans(self) -> str:
        """ZSET address -> banned until (ms)."""
        return self._key("bans")

    def slot(self, job: str, slotMillis: int) -> str:
        """STRING naming the instance that fires one job's slot."""
        return self._key("slot", job, str(slotMillis))

    def sweep(self, name: str) -> str:
        """STRING lock held by the instance taking over a dead instance's inbox."""
        return self._key("sweep", name)
