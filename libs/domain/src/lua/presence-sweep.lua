-- Takes agents whose every lease ran out offline, and says so once, however
-- many instances sweep. The caller read which agents' leases ran out and
-- passes their keys; one renewed since (or taken by another sweep) is left alone.
-- KEYS: agentsOnline, then for each agent in ARGV: its sessions, record and seats.
-- → how many went offline
local agents_online_key = KEYS[1]
local agent_channel = ARGV[1]
-- ARGV[2 …]: the agent ids, in the order of their keys.
--!include lib/now.lua
--!include lib/agents-changed.lua

local gone = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local sessions_key = KEYS[3 * (i - 2) + 2]
  local agent_key = KEYS[3 * (i - 2) + 3]
  local agent_chats_key = KEYS[3 * (i - 2) + 4]
  local lease = redis.call('ZSCORE', agents_online_key, id)
  if lease and tonumber(lease) <= now then
    redis.call('ZREMRANGEBYSCORE', sessions_key, '-inf', now)
    local top = redis.call('ZRANGE', sessions_key, -1, -1, 'WITHSCORES')
    if top[2] then
      redis.call('ZADD', agents_online_key, top[2], id)
    else
      redis.call('ZREM', agents_online_key, id)
      redis.call('DEL', sessions_key)
      -- An anonymous agent is one socket: nothing of it outlives it.
      if redis.call('HGET', agent_key, 'anonymous') == '1' then redis.call('DEL', agent_key, agent_chats_key) end
      table.insert(gone, id)
    end
  end
end
agentsChanged(agent_channel, gone)
return #gone
