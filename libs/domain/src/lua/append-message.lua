-- Stores a message with the next seq (1, 2, 3 … per chat, no gaps) and
-- announces it; a clientMessageId seen before stores nothing and returns
-- the message stored then.
-- A visitor's message naming a supportId the chat had before a transfer
-- (sent while it happened) is stored under the current one.
-- → {'ok', stored} | {'ok', stored, publication} (not published: deliver it locally) | {'dup', stored}
--   | 'expired' | 'noagent' | 'mismatch' | 'ended'
local chat_key = KEYS[1]
local messages_key = KEYS[2]
local deadlines_key = KEYS[3]
local client_ids_key = KEYS[4]
local receipts_key = KEYS[5]
local chat_id = ARGV[1]
local support_id = ARGV[2]           -- the sender's idea of the chat's supportId ('' for none yet)
-- The stored message, every byte built by TypeScript around the two values only
-- this script knows: the chat's current supportId and the seq.
local stored_before_support_id = ARGV[3]
local stored_before_seq = ARGV[4]
local stored_after_seq = ARGV[5]
local client_message_id = ARGV[6]    -- '' for none
local ttl_ms = tonumber(ARGV[7])
local grace_ms = tonumber(ARGV[8])
local chat_channel = ARGV[9]
local from = ARGV[10]                -- 'User' | 'Support'
local agent_id = ARGV[11]            -- the sending agent's, '' for none
local holder = ARGV[12]              -- the sending instance's id, '' for none: always publish
local before_agent = ARGV[13]        -- '1': a v2 visitor, who may write before an agent joins
--!include lib/now.lua
--!include lib/alive.lua
--!include lib/renew.lua

if not alive(deadlines_key, chat_id, now) then return 'expired' end
local f = redis.call('HMGET', chat_key, 'supportId', 'state', 'pastSupportIds', 'agentId', 'keysTouchedAt', 'holders', 'holder:' .. holder)
if f[2] == 'ended' and not f[1] then return 'ended' end
-- A v2 visitor may write before an agent joins: the message waits in the history for the agent who joins.
if not f[1] and not (before_agent == '1' and from == 'User') then return 'noagent' end
if (f[1] or '') ~= support_id then
  -- A visitor who did not know the current agent yet: no supportId (written while waiting), or one from before a transfer.
  local past = support_id == '' or (f[3] and string.find(',' .. f[3] .. ',', ',' .. support_id .. ',', 1, true))
  if from ~= 'User' or not past then return 'mismatch' end
end
if from == 'Support' and agent_id ~= '' and f[4] and f[4] ~= agent_id then return 'mismatch' end
-- A clientMessageId belongs to its sender: the other side may use the same one.
local id_field = from .. ':' .. client_message_id
if client_message_id ~= '' then
  local seen = redis.call('HGET', client_ids_key, id_field)
  if seen then return {'dup', redis.call('LINDEX', messages_key, tonumber(seen) - 1)} end
end
-- Checked after the retry lookup: a message stored before the end still gets its Ack.
if f[2] == 'ended' then return 'ended' end
local seq = redis.call('LLEN', messages_key) + 1
local stored = stored_before_support_id .. (f[1] or '') .. stored_before_seq .. seq .. stored_after_seq
redis.call('RPUSH', messages_key, stored)
local ttl = ttl_ms + grace_ms
local sent = redis.call('HINCRBY', receipts_key, 'sent:' .. from, 1)
if client_message_id ~= '' then
  redis.call('HSET', client_ids_key, id_field, seq)
  redis.call('PEXPIRE', client_ids_key, ttl)
end
redis.call('ZADD', deadlines_key, now + ttl_ms, chat_id)
-- The keys outlive the deadline by the grace period. Their TTLs are renewed
-- when the first message creates the list and the receipts, and then once per
-- half grace period, not on every message: they keep at least half of it.
if seq == 1 or not f[5] or now - tonumber(f[5]) >= grace_ms / 2 then
  redis.call('HSET', chat_key, 'keysTouchedAt', now)
  renewChatKeys(ttl, chat_key, messages_key, client_ids_key, receipts_key)
end
-- One publication: the message for everyone, and the recipient's unread count for their v2 sockets (messageEnvelope).
local reader = from == 'User' and 'support' or 'user'
local readn = tonumber(redis.call('HGET', receipts_key, 'readn:' .. reader) or '0')
local publication = 'msg:' .. reader .. ':' .. (sent - readn) .. '|' .. stored
-- When the sending instance is the only one holding sockets of this chat, nobody else
-- would hear it: it is not published, and the instance delivers it to its sockets itself.
if holder ~= '' and f[6] == '1' and f[7] == '1' then return {'ok', stored, publication} end
redis.call('PUBLISH', chat_channel, publication)
return {'ok', stored}
