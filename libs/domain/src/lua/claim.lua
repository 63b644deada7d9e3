-- An agent claims a waiting visitor: of any number of concurrent claims, exactly one succeeds.
-- → 'ok' | 'same' (this agent holds it already) | 'notfound' | 'notqueued' | 'claimed' | 'away' | 'capacity'
local chat_key = KEYS[1]
local queue_key = KEYS[2]
local deadlines_key = KEYS[3]
local claims_key = KEYS[4]
local agent_key = KEYS[5]        -- the claiming agent's (unused when agents are anonymous)
local agent_chats_key = KEYS[6]
local chat_id = ARGV[1]
local user_id = ARGV[2]
local queue_channel = ARGV[3]
local agent_id = ARGV[4]         -- '' when agents are anonymous
local max_chats = tonumber(ARGV[5])
local agent_channel = ARGV[6]
local removed_event = ARGV[7]    -- the 'removed' queue event
--!include lib/now.lua
--!include lib/alive.lua
--!include lib/seats.lua
--!include lib/agents-changed.lua

if not alive(deadlines_key, chat_id, now) then return 'notfound' end
local f = redis.call('HMGET', chat_key, 'userId', 'state', 'claimedBy', 'agentId')
if f[1] ~= user_id then return 'notfound' end
if f[2] == 'new' then return 'notqueued' end
if agent_id ~= '' and f[2] ~= 'ended' and (f[3] == agent_id or f[4] == agent_id) then return 'same' end
if f[2] ~= 'waiting' then return 'claimed' end
if agent_id ~= '' then
  local refused = seatRefusal(agent_key, agent_chats_key, max_chats)
  if refused then return refused end
end
redis.call('ZREM', queue_key, chat_id)
redis.call('HSET', chat_key, 'state', 'claimed', 'claimedAt', now)
recordClaim(claims_key, chat_id, now)
redis.call('PUBLISH', queue_channel, removed_event)
if agent_id ~= '' then
  redis.call('HSET', chat_key, 'claimedBy', agent_id, 'assignedAt', precise())
  redis.call('SADD', agent_chats_key, chat_id)
  agentsChanged(agent_channel, {agent_id})
end
return 'ok'
