-- Which ChatServer instances hold sockets of a chat (listen on its channel):
-- a field per instance and their count, in the chat's own hash (so they live
-- and expire with it). A message whose sender's instance is the only holder
-- is not published (append-message.lua).
-- → 1, or 0 when the chat is gone
local chat_key = KEYS[1]
local holder = ARGV[1]       -- the instance's id
local action = ARGV[2]       -- 'hold' | 'release'

if redis.call('EXISTS', chat_key) == 0 then return 0 end
local field = 'holder:' .. holder
if action == 'hold' then
  if redis.call('HSETNX', chat_key, field, 1) == 1 then redis.call('HINCRBY', chat_key, 'holders', 1) end
elseif redis.call('HDEL', chat_key, field) == 1 then
  redis.call('HINCRBY', chat_key, 'holders', -1)
end
return 1
