-- Renews this instance's lease on an agent's presence (their first socket
-- here, every renewal, and their last socket closing: from then the lease
-- runs out unless another instance holds one). An agent coming online
-- starts with status 'online'; one still within the lease keeps theirs.
-- The agent's record lives `forget_ms` past the lease: an id that never
-- comes back does not stay in Redis for ever.
-- → 1 if the agent came online now, 0 otherwise
local agent_sessions_key = KEYS[1]
local agent_key = KEYS[2]
local agents_online_key = KEYS[3]
local agent_id = ARGV[1]
local instance_id = ARGV[2]
local lease_ms = tonumber(ARGV[3])
local name = ARGV[4]
local anonymous = ARGV[5]        -- '1' | ''
local agent_channel = ARGV[6]
local forget_ms = tonumber(ARGV[7])
--!include lib/now.lua
--!include lib/agents-changed.lua

local prev = redis.call('ZSCORE', agents_online_key, agent_id)
local was_online = prev and tonumber(prev) > now
redis.call('ZADD', agent_sessions_key, now + lease_ms, instance_id)
redis.call('ZREMRANGEBYSCORE', agent_sessions_key, '-inf', now)
local top = redis.call('ZRANGE', agent_sessions_key, -1, -1, 'WITHSCORES')
redis.call('ZADD', agents_online_key, top[2], agent_id)
redis.call('PEXPIRE', agent_sessions_key, lease_ms + 60000)
local old_name = redis.call('HGET', agent_key, 'name')
if old_name ~= name then redis.call('HSET', agent_key, 'name', name, 'anonymous', anonymous) end
if not was_online then redis.call('HSET', agent_key, 'status', 'online') end
-- From the lease with the latest end, so a renewal by one instance does not shorten another's.
redis.call('PEXPIRE', agent_key, tonumber(top[2]) - now + forget_ms)
if was_online then
  if old_name ~= name then agentsChanged(agent_channel, {agent_id}) end
  return 0
end
agentsChanged(agent_channel, {agent_id})
return 1
