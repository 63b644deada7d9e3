-- Seats: an agent's chats. An away agent takes no new visitor, and no agent
-- more than maxChats (0: no limit). The agent's keys come from the caller (KEYS).
local function seatRefusal(agent_key, agent_chats_key, maxChats)
  if redis.call('HGET', agent_key, 'status') == 'away' then return 'away' end
  if maxChats > 0 and redis.call('SCARD', agent_chats_key) >= maxChats then return 'capacity' end
  return nil
end
-- Records a claim for the wait estimate; keeps the last 100.
local function recordClaim(claims, chatId, now)
  redis.call('ZADD', claims, now, chatId)
  redis.call('ZREMRANGEBYRANK', claims, 0, -101)
end
