-- Hands a chat from one agent to another online one with a free seat, or
-- (to_agent_id '') back to the head of the queue.
-- → 'ok' | 'expired' | 'ended' | 'notyours' | 'unavailable' | 'capacity'
local chat_key = KEYS[1]
local queue_key = KEYS[2]
local deadlines_key = KEYS[3]
local messages_key = KEYS[4]
local receipts_key = KEYS[5]
local client_ids_key = KEYS[6]
local agents_online_key = KEYS[7]
local from_chats_key = KEYS[8]     -- the giving agent's seats
local to_agent_key = KEYS[9]       -- the receiving agent's record and seats (unused back to the queue)
local to_chats_key = KEYS[10]
local chat_id = ARGV[1]
local from = ARGV[2]
local to = ARGV[3]                 -- '' back to the queue
local new_support_id = ARGV[4]
local to_name = ARGV[5]
local ttl = tonumber(ARGV[6])
local grace_ms = tonumber(ARGV[7])
local max_chats = tonumber(ARGV[8])
local chat_channel = ARGV[9]
local queue_channel = ARGV[10]
local agent_channel = ARGV[11]
local unassign_envelope = ARGV[12]
local visitor_envelope = ARGV[13]
local assigned_event = ARGV[14]
local unassigned_event = ARGV[15]
-- The 'joined' queue event, built by TypeScript around the two values only this script knows: order, since.
local joined_before_order = ARGV[16]
local joined_before_since = ARGV[17]
local joined_after_since = ARGV[18]
--!include lib/now.lua
--!include lib/alive.lua
--!include lib/renew.lua
--!include lib/seats.lua
--!include lib/owner.lua
--!include lib/agents-changed.lua

if not alive(deadlines_key, chat_id, now) then return 'expired' end
local f = redis.call('HMGET', chat_key, 'state', 'supportId', 'pastSupportIds')
if f[1] == 'ended' then return 'ended' end
if (f[1] ~= 'claimed' and f[1] ~= 'active') or ownerOf(chat_key) ~= from then return 'notyours' end
if to ~= '' then
  if to == from then return 'unavailable' end
  local lease = redis.call('ZSCORE', agents_online_key, to)
  if not lease or tonumber(lease) <= now or redis.call('HGET', to_agent_key, 'status') == 'away' then return 'unavailable' end
  if seatRefusal(to_agent_key, to_chats_key, max_chats) then return 'capacity' end
end
-- A visitor's message in flight with the old supportId is still stored.
if f[2] then redis.call('HSET', chat_key, 'pastSupportIds', f[3] and (f[3] .. ',' .. f[2]) or f[2]) end
redis.call('SREM', from_chats_key, chat_id)
redis.call('HDEL', chat_key, 'warnedFor')
-- The old agent's sockets on the chat learn it first (and close), then the visitor.
redis.call('PUBLISH', chat_channel, unassign_envelope)
if to ~= '' then
  redis.call('SADD', to_chats_key, chat_id)
  redis.call('HSET', chat_key, 'state', 'active', 'supportId', new_support_id, 'supportUserName', to_name, 'agentId', to, 'claimedBy', to,
    'assignedAt', precise(), 'supportJoinedAt', now)
  redis.call('PUBLISH', chat_channel, visitor_envelope)
  redis.call('PUBLISH', agent_channel, assigned_event)
else
  redis.call('HDEL', chat_key, 'supportId', 'supportUserName', 'agentId', 'claimedBy', 'assignedAt', 'supportJoinedAt')
  local head = redis.call('ZRANGE', queue_key, 0, 0, 'WITHSCORES')
  local order = head[2] and (tonumber(head[2]) - 1) or 0
  redis.call('ZADD', queue_key, order, chat_id)
  redis.call('HSET', chat_key, 'state', 'waiting', 'queuedAt', now)
  redis.call('PUBLISH', chat_channel, visitor_envelope)
  redis.call('PUBLISH', queue_channel, joined_before_order .. order .. joined_before_since .. now .. joined_after_since)
end
redis.call('PUBLISH', agent_channel, unassigned_event)
-- A transfer is activity: the chat lives on from now.
redis.call('ZADD', deadlines_key, now + ttl, chat_id)
renewChatKeys(ttl + grace_ms, chat_key, messages_key, client_ids_key, receipts_key)
agentsChanged(agent_channel, to ~= '' and {from, to} or {from})
return 'ok'
