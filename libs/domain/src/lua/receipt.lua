-- Delivered / read receipts: monotonic per participant; a read also moves the
-- reader's unread count. Announced to v2 sockets only, as data publications
-- (`receipt:…`, `unread:…`) that TypeScript turns into frames (openEnvelope).
-- → 'ok' | 'stale' (not newer than before) | 'badseq' | 'expired'
local chat_key = KEYS[1]
local messages_key = KEYS[2]
local deadlines_key = KEYS[3]
local receipts_key = KEYS[4]
local chat_id = ARGV[1]
local reader = ARGV[2]       -- 'user' | 'support'
local kind = ARGV[3]         -- 'delivered' | 'read'
local seq = tonumber(ARGV[4])
local chat_channel = ARGV[5]
--!include lib/now.lua
--!include lib/alive.lua

if not alive(deadlines_key, chat_id, now) then return 'expired' end
if seq > redis.call('LLEN', messages_key) then return 'badseq' end
local other = reader == 'user' and 'support' or 'user'
local reader_name = reader == 'user' and 'User' or 'Support'
local other_name = reader == 'user' and 'Support' or 'User'
local old = tonumber(redis.call('HGET', receipts_key, kind .. ':' .. reader) or '0')
if seq <= old then return 'stale' end
redis.call('HSET', receipts_key, kind .. ':' .. reader, seq)
redis.call('PEXPIRE', receipts_key, math.max(redis.call('PTTL', chat_key), 1))
redis.call('PUBLISH', chat_channel, 'receipt:' .. other .. ':' .. seq .. ':' .. kind .. ':' .. reader_name .. '|' .. chat_id)
if kind == 'read' then
  -- Count the other side's messages between the old read mark and the new one.
  local n = 0
  local marker = '"from":"' .. other_name .. '","seq":'
  for _, m in ipairs(redis.call('LRANGE', messages_key, old, seq - 1)) do
    if string.find(m, marker, 1, true) then n = n + 1 end
  end
  -- The reader's unread count changes only if this read covered some of the other side's messages.
  if n > 0 then
    local readn = redis.call('HINCRBY', receipts_key, 'readn:' .. reader, n)
    local sent = tonumber(redis.call('HGET', receipts_key, 'sent:' .. other_name) or '0')
    redis.call('PUBLISH', chat_channel, 'unread:' .. reader .. ':' .. (sent - readn) .. '|' .. chat_id)
  end
end
return 'ok'
