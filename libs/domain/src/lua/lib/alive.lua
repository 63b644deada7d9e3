-- A chat is alive while its deadline is in the future. Keys also carry a TTL
-- a little beyond the deadline, so a chat nobody sweeps still disappears.
local function alive(deadlines, chatId, now)
  local d = redis.call('ZSCORE', deadlines, chatId)
  return d ~= false and d ~= nil and tonumber(d) > now
end
