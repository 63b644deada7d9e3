-- Expires one chat whose deadline has passed. Only one caller wins, so each
-- expiry is announced once however many instances sweep.
-- → 1 if this call expired the chat, 0 otherwise, 'retry' (the chat's owner is not the one the caller read)
local deadlines_key = KEYS[1]
local chat_key = KEYS[2]
local messages_key = KEYS[3]
local queue_key = KEYS[4]
local client_ids_key = KEYS[5]
local receipts_key = KEYS[6]
local owner_chats_key = KEYS[7]  -- the seats of the owner the caller read (unused for none)
local chat_id = ARGV[1]
local chat_channel = ARGV[2]
local expired_envelope = ARGV[3]
local queue_channel = ARGV[4]
local agent_channel = ARGV[5]
local owner = ARGV[6]            -- '' for none
local removed_event = ARGV[7]    -- the 'removed' queue event
--!include lib/now.lua
--!include lib/owner.lua
--!include lib/agents-changed.lua

local d = redis.call('ZSCORE', deadlines_key, chat_id)
if not d or tonumber(d) > now then return 0 end
if ownerOf(chat_key) ~= owner then return 'retry' end
redis.call('ZREM', deadlines_key, chat_id)
local user_id = redis.call('HGET', chat_key, 'userId')
local queued = redis.call('ZREM', queue_key, chat_id)
if owner ~= '' then
  redis.call('SREM', owner_chats_key, chat_id)
  agentsChanged(agent_channel, {owner})
end
redis.call('DEL', chat_key, messages_key, client_ids_key, receipts_key)
redis.call('PUBLISH', chat_channel, expired_envelope)
if queued == 1 and user_id then redis.call('PUBLISH', queue_channel, removed_event) end
return 1
