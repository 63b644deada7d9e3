-- A ChatServer instance has (or no longer has) a waiting visitor's socket:
-- a field per instance and their count, in the chat's own hash, like the
-- holders of hold-chat.lua. When the last one goes and the visitor is still in
-- the queue (state 'waiting'), the deadline is brought forward to `leave_ms`
-- from now (never pushed back): unless a socket comes back before then
-- (a reload: touch-waiting.lua moves the deadline on again), the chat expires
-- and leaves the queue. A chat claimed or joined by an agent is left alone.
-- → 1 if the deadline was brought forward, else 0
local chat_key = KEYS[1]
local deadlines_key = KEYS[2]
local chat_id = ARGV[1]
local instance = ARGV[2]
local presence = ARGV[3]     -- 'here' | 'gone'
local leave_ms = tonumber(ARGV[4])
--!include lib/now.lua
--!include lib/alive.lua

if not alive(deadlines_key, chat_id, now) then return 0 end
local field = 'waiting:' .. instance
if presence == 'here' then
  if redis.call('HSETNX', chat_key, field, 1) == 1 then redis.call('HINCRBY', chat_key, 'waitingOn', 1) end
  return 0
end
if redis.call('HDEL', chat_key, field) == 0 then return 0 end
if redis.call('HINCRBY', chat_key, 'waitingOn', -1) > 0 then return 0 end
if redis.call('HGET', chat_key, 'state') ~= 'waiting' then return 0 end
return redis.call('ZADD', deadlines_key, 'LT', 'CH', now + leave_ms, chat_id)
