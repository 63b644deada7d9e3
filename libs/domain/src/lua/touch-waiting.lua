-- Keeps a chat that no agent has joined yet alive while its visitor is
-- connected: all of it, since a chat put back in the queue has a
-- conversation to keep for the next agent.
-- → 1 if extended, 0 otherwise
local chat_key = KEYS[1]
local deadlines_key = KEYS[2]
local messages_key = KEYS[3]
local client_ids_key = KEYS[4]
local receipts_key = KEYS[5]
local chat_id = ARGV[1]
local ttl_ms = tonumber(ARGV[2])
local grace_ms = tonumber(ARGV[3])
--!include lib/now.lua
--!include lib/alive.lua
--!include lib/renew.lua

if not alive(deadlines_key, chat_id, now) then return 0 end
local f = redis.call('HMGET', chat_key, 'supportId', 'state')
if f[1] or f[2] == 'ended' then return 0 end
redis.call('ZADD', deadlines_key, now + ttl_ms, chat_id)
renewChatKeys(ttl_ms + grace_ms, chat_key, messages_key, client_ids_key, receipts_key)
return 1
