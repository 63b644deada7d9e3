-- Tells every instance these agents' presence, status or chats changed (data: their ids).
local function agentsChanged(channel, ids)
  if #ids > 0 then redis.call('PUBLISH', channel, cjson.encode({changed = ids})) end
end
