-- Warns the participants of a chat with an agent that it expires soon, once
-- per deadline (activity moves the deadline, and may earn a new warning).
-- Publishes data (`expiring:<secondsLeft>|<chatId>`): TypeScript builds the frame (openEnvelope).
-- → 1 if warned now
local deadlines_key = KEYS[1]
local chat_key = KEYS[2]
local chat_id = ARGV[1]
local warn_ms = tonumber(ARGV[2])
local chat_channel = ARGV[3]
--!include lib/now.lua

local d = redis.call('ZSCORE', deadlines_key, chat_id)
if not d then return 0 end
d = tonumber(d)
if d <= now or d - now > warn_ms then return 0 end
local f = redis.call('HMGET', chat_key, 'supportId', 'warnedFor', 'state')
if not f[1] or f[3] == 'ended' or f[2] == tostring(d) then return 0 end
redis.call('HSET', chat_key, 'warnedFor', tostring(d))
redis.call('PUBLISH', chat_channel, 'expiring:' .. math.ceil((d - now) / 1000) .. '|' .. chat_id)
return 1
