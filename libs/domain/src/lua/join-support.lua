-- An agent joins a chat for the first time: a supportId, off the queue, SupportJoinedUser for both sides.
-- → 'ok' | 'expired' | 'mismatch' | 'ended' | 'claimed' | 'same' (this agent has the chat already) | 'away' | 'capacity'
local chat_key = KEYS[1]
local queue_key = KEYS[2]
local deadlines_key = KEYS[3]
local claims_key = KEYS[4]
local messages_key = KEYS[5]
local client_ids_key = KEYS[6]
local receipts_key = KEYS[7]
local agent_key = KEYS[8]        -- the joining agent's (unused when agents are anonymous)
local agent_chats_key = KEYS[9]
local chat_id = ARGV[1]
local user_id = ARGV[2]
local support_id = ARGV[3]
local support_user_name = ARGV[4]
local ttl_ms = tonumber(ARGV[5])
local grace_ms = tonumber(ARGV[6])
local chat_channel = ARGV[7]
local joined_envelope = ARGV[8]
local queue_channel = ARGV[9]
local agent_id = ARGV[10]        -- '' when agents are anonymous
local max_chats = tonumber(ARGV[11])
local agent_channel = ARGV[12]
local removed_event = ARGV[13]   -- the 'removed' queue event
--!include lib/now.lua
--!include lib/alive.lua
--!include lib/renew.lua
--!include lib/seats.lua
--!include lib/agents-changed.lua

if not alive(deadlines_key, chat_id, now) then return 'expired' end
local f = redis.call('HMGET', chat_key, 'userId', 'supportId', 'state', 'claimedBy', 'agentId')
if f[1] ~= user_id then return 'mismatch' end
if f[3] == 'ended' then return 'ended' end
if f[2] then
  if agent_id ~= '' and f[5] == agent_id then return 'same' end
  return 'claimed'
end
-- A visitor claimed by one agent is not joined by another.
if agent_id ~= '' and f[3] == 'claimed' and f[4] and f[4] ~= agent_id then return 'claimed' end
-- Joining a visitor this agent did not claim takes a seat, as a claim would.
local takes_seat = agent_id ~= '' and not (f[3] == 'claimed' and f[4] == agent_id)
if takes_seat then
  local refused = seatRefusal(agent_key, agent_chats_key, max_chats)
  if refused then return refused end
end
local was_queued = redis.call('ZREM', queue_key, chat_id)
redis.call('HSET', chat_key, 'state', 'active', 'supportId', support_id, 'supportUserName', support_user_name, 'supportJoinedAt', now)
redis.call('ZADD', deadlines_key, now + ttl_ms, chat_id)
-- A chat put back in the queue has a conversation already: it lives on with the chat.
renewChatKeys(ttl_ms + grace_ms, chat_key, messages_key, client_ids_key, receipts_key)
if was_queued == 1 then
  recordClaim(claims_key, chat_id, now)
  redis.call('PUBLISH', queue_channel, removed_event)
end
redis.call('PUBLISH', chat_channel, joined_envelope)
if agent_id ~= '' then
  redis.call('HSET', chat_key, 'agentId', agent_id, 'claimedBy', agent_id)
  if takes_seat then
    redis.call('HSET', chat_key, 'assignedAt', precise())
    redis.call('SADD', agent_chats_key, chat_id)
    agentsChanged(agent_channel, {agent_id})
  end
end
return 'ok'
