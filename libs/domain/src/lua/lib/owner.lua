-- Who holds a chat: the agent who joined it, else the one who claimed it ('' for nobody).
-- The caller read it before and passed that agent's keys: a script that finds
-- another owner now answers 'retry' (see ownerOf in TypeScript).
local function ownerOf(chat)
  local o = redis.call('HMGET', chat, 'agentId', 'claimedBy')
  return o[1] or o[2] or ''
end
