"""The Lua scripts that make each multi-key step atomic in Redis (presence and outbound routing)."""

from __future__ import annotations

from kkobot.cluster.keys import GROUP, LUA_PRELUDE

# Where a message goes next. A message hash (key('msg', id)) holds state (queued /
# delivered / undelivered), bot, payload, deadline, seq (send order), target, by,
# at, reason.
_ROUTING = LUA_PRELUDE + """
local GROUP = '""" + GROUP + """'
local function push(name, id)
  redis.call('XADD', key('inbox', name), '*', 'id', id)
  redis.call('HSET', key('msg', id), 'target', name)
end
local function park(id, bot, deadline)
  redis.call('ZADD', key('waiting'), deadline, id)
  -- in the order the messages were sent (seq), whoever parks them and when
  redis.call('ZADD', key('waiting', bot), redis.call('HGET', key('msg', id), 'seq'), id)
  redis.call('SADD', key('waitingbots'), bot)
  redis.call('HSET', key('msg', id), 'target', '')
end
local function unpark(id, bot)
  redis.call('ZREM', key('waiting'), id)
  redis.call('ZREM', key('waiting', bot), id)
  if redis.call('ZCARD', key('waiting', bot)) == 0 then
    redis.call('SREM', key('waitingbots'), bot)
  end
end
local function adopt(bot, name)
  local ids = redis.call('ZRANGE', key('waiting', bot), 0, -1)
  for _, id in ipairs(ids) do
    redis.call('ZREM', key('waiting'), id)
    push(name, id)
  end
  redis.call('DEL', key('waiting', bot))
  redis.call('SREM', key('waitingbots'), bot)
  return #ids
end
local function undeliver(id, bot, now)
  redis.call('HSET', key('msg', id), 'state', 'undelivered', 'at', now, 'reason',
    'bot ' .. bot .. ' was not connected to any instance before the deadline')
end
local function route(id, now, timeout, exclude)
  local mk = key('msg', id)
  local bot = redis.call('HGET', mk, 'bot')
  local deadline = tonumber(redis.call('HGET', mk, 'deadline'))
  local h = holder(bot, now, timeout, exclude)
  if h then
    push(h, id)
    return {'routed', 'queued', h}
  end
  if now >= deadline then
    undeliver(id, bot, now)
    return {'undelivered', 'undelivered', '', redis.call('HGET', mk, 'reason')}
  end
  park(id, bot, deadline)
  return {'waiting', 'queued', ''}
end
"""

# ARGV: P id bot payload now timeout deadline me retention(ms) by
SEND = _ROUTING + """
local id, bot, payload, me = ARGV[2], ARGV[3], ARGV[4], ARGV[8]
local now, timeout, deadline = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local mk = key('msg', id)
local state = redis.call('HGET', mk, 'state')
if state then
  return {'duplicate', state, redis.call('HGET', mk, 'target') or ''}
end
redis.call('HSET', mk, 'state', 'queued', 'bot', bot, 'payload', payload, 'deadline', deadline,
           'seq', redis.call('INCR', key('seq')))
redis.call('PEXPIRE', mk, tonumber(ARGV[9]))
if holder(bot, now, timeout, false) == me then
  redis.call('HSET', mk, 'state', 'delivered', 'by', ARGV[10], 'at', now, 'target', me)
  return {'delivered', 'delivered', me}
end
return route(id, now, timeout, false)
"""

# The receiving instance takes one inbox entry: delivered only if no instance
# delivered that id before. 'mine': this very process recorded it delivered
# already (a reply lost with the connection); it knows whether it wrote it. The
# entry is acknowledged after the write. `by` names the process (instance#boot),
# so a restarted instance never takes its previous life's deliveries for its own.
# ARGV: P id by now
TAKE = LUA_PRELUDE + """
local id, by = ARGV[2], ARGV[3]
local mk = key('msg', id)
local state = redis.call('HGET', mk, 'state')
if not state then return {'gone'} end
if state == 'queued' then
  redis.call('HSET', mk, 'state', 'delivered', 'by', by, 'at', tonumber(ARGV[4]))
  return {'take', redis.call('HGET', mk, 'payload')}
end
if state == 'delivered' and redis.call('HGET', mk, 'by') == by then
  return {'mine', redis.call('HGET', mk, 'payload')}
end
return {'duplicate', state}
"""

# Entries written (or found duplicate) leave the inbox: acknowledged and deleted, so
# the stream holds only what is still to do. KEYS: the inbox. ARGV: entry ids.
ACK = """
redis.call('XACK', KEYS[1], '""" + GROUP + """', unpack(ARGV))
return redis.call('XDEL', KEYS[1], unpack(ARGV))
"""

# The local write failed after all (the phone left): route it again, not here.
# ARGV: P id by now timeout me
REQUEUE = _ROUTING + """
local id = ARGV[2]
local mk = key('msg', id)
if redis.call('HGET', mk, 'state') ~= 'delivered' or redis.call('HGET', mk, 'by') ~= ARGV[3] then
  return {'skip', redis.call('HGET', mk, 'state') or 'gone', ''}
end
redis.call('HSET', mk, 'state', 'queued')
redis.call('HDEL', mk, 'by', 'at')
return route(id, tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6])
"""

# An entry of a dead (or leaving) instance's inbox, routed to whoever holds the bot
# now. ARGV: P id dead now timeout stream entry
FORWARD = _ROUTING + """
local id = ARGV[2]
redis.call('XACK', ARGV[6], GROUP, ARGV[7])
redis.call('XDEL', ARGV[6], ARGV[7])
local state = redis.call('HGET', key('msg', id), 'state')
if state ~= 'queued' then return {'skip', state or 'gone', ''} end
return route(id, tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[3])
"""

# Waiting messages: handed to an instance that holds their bot now, or reported
# undelivered past their deadline. ARGV: P now timeout limit
PUMP = _ROUTING + """
local now, timeout = tonumber(ARGV[2]), tonumber(ARGV[3])
for _, bot in ipairs(redis.call('SMEMBERS', key('waitingbots'))) do
  local h = holder(bot, now, timeout, false)
  if h then adopt(bot, h) end
end
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', key('waiting'), '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))) do
  local mk = key('msg', id)
  local bot = redis.call('HGET', mk, 'bot')
  if bot then unpark(id, bot) else redis.call('ZREM', key('waiting'), id) end
  if bot and redis.call('HGET', mk, 'state') == 'queued' then
    undeliver(id, bot, now)
    table.insert(out, redis.call('HGET', mk, 'payload'))
    table.insert(out, redis.call('HGET', mk, 'reason'))
  end
end
return out
"""

# -- presence

# Everything this instance holds, written anew (start, and each time Redis returns).
# ARGV: P me now gc infoJSON connsJSON botsJSON
REGISTER = _ROUTING + """
local me, now, gc = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local info, conns, bots = cjson.decode(ARGV[5]), cjson.decode(ARGV[6]), cjson.decode(ARGV[7])
local ik, ck, bk = key('instance', me), key('conns', me), key('bots', me)
redis.call('DEL', ik, ck, bk)
redis.call('HSET', ik, 'heartbeat', now)
for k, v in pairs(info) do redis.call('HSET', ik, k, tostring(v)) end
for id, json in pairs(conns) do redis.call('HSET', ck, id, json) end
for bot, since in pairs(bots) do redis.call('HSET', bk, bot, since) end
redis.call('ZADD', key('instances'), now, me)
redis.call('PEXPIRE', ik, gc)
redis.call('PEXPIRE', ck, gc)
redis.call('PEXPIRE', bk, gc)
local adopted = 0
for bot, _ in pairs(bots) do adopted = adopted + adopt(bot, me) end
return adopted
"""

# One connection added, changed or removed (empty JSON), and its bot's newest
# approved connection here (empty: none). -1 asks for a full REGISTER (this
# instance was taken for dead and swept). ARGV: P me gc connId connJSON bot since
HOLD = _ROUTING + """
local me, gc = ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', key('instance', me)) == 0 then return -1 end
local ck, bk = key('conns', me), key('bots', me)
if ARGV[5] == '' then redis.call('HDEL', ck, ARGV[4]) else redis.call('HSET', ck, ARGV[4], ARGV[5]) end
if ARGV[7] == '' then redis.call('HDEL', bk, ARGV[6]) else redis.call('HSET', bk, ARGV[6], ARGV[7]) end
redis.call('PEXPIRE', ck, gc)
redis.call('PEXPIRE', bk, gc)
if ARGV[7] ~= '' then return adopt(ARGV[6], me) end
return 0
"""

# {live names, dead names}, or 0 when this instance must REGISTER again.
# ARGV: P me now timeout gc inboxGc
HEARTBEAT = LUA_PRELUDE + """
local me, now, timeout, gc = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ik = key('instance', me)
if redis.call('EXISTS', ik) == 0 then return 0 end
redis.call('ZADD', key('instances'), now, me)
redis.call('HSET', ik, 'heartbeat', now)
redis.call('PEXPIRE', ik, gc)
redis.call('PEXPIRE', key('conns', me), gc)
redis.call('PEXPIRE', key('bots', me), gc)
redis.call('PEXPIRE', key('inbox', me), tonumber(ARGV[6]))
return {redis.call('ZRANGEBYSCORE', key('instances'), now - timeout, '+inf'),
        redis.call('ZRANGEBYSCORE', key('instances'), '-inf', '(' .. (now - timeout))}
"""

# Every instance: {name, heartbeat, alive, info pairs, connection JSONs}.
# ARGV: P now timeout
VIEW = LUA_PRELUDE + """
local now, timeout = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
local all = redis.call('ZRANGE', key('instances'), 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  local name, beat = all[i], tonumber(all[i + 1])
  local alive = beat >= now - timeout
  local conns = {}
  if alive then conns = redis.call('HVALS', key('conns', name)) end
  table.insert(out, {name, tostring(beat), alive and 1 or 0,
                     redis.call('HGETALL', key('instance', name)), conns})
end
return out
"""

# Taking over a dead instance: routing stops targeting it; its inbox is drained by
# the caller; FINISH removes it. 0 when it is alive again or another instance is
# on it. ARGV: P dead me now timeout lockMs
CLAIM_DEAD = LUA_PRELUDE + """
local dead, me, now, timeout = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local beat = redis.call('ZSCORE', key('instances'), dead)
if beat and tonumber(beat) >= now - timeout and dead ~= me then return 0 end
if not redis.call('SET', key('sweep', dead), me, 'NX', 'PX', tonumber(ARGV[6])) then return 0 end
redis.call('DEL', key('instance', dead), key('conns', dead), key('bots', dead))
return 1
"""

# ARGV: P dead
FINISH_DEAD = LUA_PRELUDE + """
local dead = ARGV[2]
if redis.call('EXISTS', key('instance', dead)) == 0 then
  redis.call('DEL', key('inbox', dead))
  redis.call('ZREM', key('instances'), dead)
end
redis.call('DEL', key('sweep', dead))
return 1
"""
