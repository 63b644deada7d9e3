-- Puts a new chat's visitor in the queue, once.
-- → 'queued' (newly queued) | state ('waiting' | 'claimed' | 'active') | 'expired' | 'mismatch'
local chat_key = KEYS[1]
local queue_key = KEYS[2]
local queue_seq_key = KEYS[3]
local deadlines_key = KEYS[4]
local chat_id = ARGV[1]
local user_id = ARGV[2]
local ttl_ms = tonumber(ARGV[3])
local grace_ms = tonumber(ARGV[4])
local queue_channel = ARGV[5]
-- The 'joined' queue event, built by TypeScript around the two values only this script knows: order, since.
local joined_before_order = ARGV[6]
local joined_before_since = ARGV[7]
local joined_after_since = ARGV[8]
--!include lib/now.lua
--!include lib/alive.lua

if not alive(deadlines_key, chat_id, now) then return 'expired' end
local f = redis.call('HMGET', chat_key, 'userId', 'state')
if f[1] ~= user_id then return 'mismatch' end
if f[2] ~= 'new' then return f[2] end
local seq = redis.call('INCR', queue_seq_key)
redis.call('ZADD', queue_key, seq, chat_id)
redis.call('HSET', chat_key, 'state', 'waiting', 'queuedAt', now)
redis.call('ZADD', deadlines_key, now + ttl_ms, chat_id)
redis.call('PEXPIRE', chat_key, ttl_ms + grace_ms)
redis.call('PUBLISH', queue_channel, joined_before_order .. seq .. joined_before_since .. now .. joined_after_since)
return 'queued'
