-- Sets an agent's status ('online' | 'away') on every device.
-- → 1 if the status changed
local agent_key = KEYS[1]
local agent_id = ARGV[1]
local status = ARGV[2]
local agent_channel = ARGV[3]
local forget_ms = tonumber(ARGV[4])  -- the lifetime of a record this call creates
--!include lib/agents-changed.lua

if redis.call('HGET', agent_key, 'status') == status then return 0 end
redis.call('HSET', agent_key, 'status', status)
-- A record the presence lease does not keep (none was there) still gets a lifetime.
if redis.call('PTTL', agent_key) < 0 then redis.call('PEXPIRE', agent_key, forget_ms) end
agentsChanged(agent_channel, {agent_id})
return 1
