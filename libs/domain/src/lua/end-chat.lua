-- Ends a chat: read-only from now on, history kept until it expires. Frees the owner's seat.
-- → 'ok' | 'already' | 'expired' | 'retry' (the chat's owner is not the one the caller read: read again)
local chat_key = KEYS[1]
local queue_key = KEYS[2]
local deadlines_key = KEYS[3]
local owner_chats_key = KEYS[4]  -- the seats of the owner the caller read (unused for none)
local chat_id = ARGV[1]
local by = ARGV[2]
local reason = ARGV[3]
local chat_channel = ARGV[4]
local ended_envelope = ARGV[5]
local queue_channel = ARGV[6]
local agent_channel = ARGV[7]
local owner = ARGV[8]            -- '' for none
local removed_event = ARGV[9]    -- the 'removed' queue event
--!include lib/now.lua
--!include lib/alive.lua
--!include lib/owner.lua
--!include lib/agents-changed.lua

if not alive(deadlines_key, chat_id, now) then return 'expired' end
local state = redis.call('HGET', chat_key, 'state')
if state == 'ended' then return 'already' end
if ownerOf(chat_key) ~= owner then return 'retry' end
redis.call('HSET', chat_key, 'state', 'ended', 'endedBy', by, 'endReason', reason, 'endedAt', now)
if redis.call('ZREM', queue_key, chat_id) == 1 then redis.call('PUBLISH', queue_channel, removed_event) end
redis.call('PUBLISH', chat_channel, ended_envelope)
if owner ~= '' then
  redis.call('SREM', owner_chats_key, chat_id)
  agentsChanged(agent_channel, {owner})
end
return 'ok'
