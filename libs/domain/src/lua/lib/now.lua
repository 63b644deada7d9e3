-- Milliseconds since the epoch, from the Redis clock: every instance agrees on when a chat expires.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The same instant to the microsecond, as text: orders events of one millisecond.
local function precise() return string.format('%d.%03d', now, tonumber(t[2]) % 1000) end
