-- Every key of a chat lives as long as the chat: whatever moves the deadline
-- renews them all, or one left behind (the history, the clientMessageIds, the
-- receipts) vanishes under a chat that is still alive.
local function renewChatKeys(ms, chat, messages, clientIds, receipts)
  for _, key in ipairs({chat, messages, clientIds, receipts}) do redis.call('PEXPIRE', key, ms) end
end
