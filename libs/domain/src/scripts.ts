import type { Redis } from 'ioredis'
import { LUA_AGENT_KEYS } from './keys.js'

/*
 * Lua scripts: each read-check-write runs atomically in Redis, and the
 * PUBLISH that announces a change runs in the same script, so the order in
 * which participants see events is the order in which Redis stored them,
 * whichever instance wrote them. Time comes from Redis (TIME), so every
 * instance agrees on when a chat expires.
 */

// Milliseconds since the epoch, from the Redis clock.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The same instant to the microsecond, as text: orders events of one millisecond.
local function precise() return string.format('%d.%03d', now, tonumber(t[2]) % 1000) end
`

// A chat is alive while its deadline is in the future. Keys also carry a TTL
// a little beyond the deadline, so a chat nobody sweeps still disappears.
const ALIVE = `
local function alive(deadlines, chatId, now)
  local d = redis.call('ZSCORE', deadlines, chatId)
  return d ~= false and d ~= nil and tonumber(d) > now
end
`

// Every key of a chat lives as long as the chat: whatever moves the deadline
// renews them all, or one left behind (the history, the clientMessageIds, the
// receipts) vanishes under a chat that is still alive.
const RENEW = `
local function renewChatKeys(ms, chat, messages, clientIds, receipts)
  for _, key in ipairs({chat, messages, clientIds, receipts}) do redis.call('PEXPIRE', key, ms) end
end
`

// Seats: an agent's chats. An away agent takes no new visitor, and no agent more than maxChats (0: no limit).
const SEATS = `${LUA_AGENT_KEYS}
local function seatRefusal(id, maxChats)
  if redis.call('HGET', agentKey(id), 'status') == 'away' then return 'away' end
  if maxChats > 0 and redis.call('SCARD', agentChats(id)) >= maxChats then return 'capacity' end
  return nil
end
-- Records a claim for the wait estimate; keeps the last 100.
local function recordClaim(claims, chatId, now)
  redis.call('ZADD', claims, now, chatId)
  redis.call('ZREMRANGEBYRANK', claims, 0, -101)
end
local function agentsChanged(channel, ids)
  if #ids > 0 then redis.call('PUBLISH', channel, cjson.encode({changed = ids})) end
end
-- Who holds a chat: the agent who joined it, else the one who claimed it.
local function ownerOf(chat)
  local o = redis.call('HMGET', chat, 'agentId', 'claimedBy')
  return o[1] or o[2]
end
-- Frees the owner's seat, if any, and says so.
local function releaseSeat(chat, chatId, channel)
  local owner = ownerOf(chat)
  if owner then
    redis.call('SREM', agentChats(owner), chatId)
    agentsChanged(channel, {owner})
  end
end
`

const scriptSources = {
  /**
   * KEYS: chat, queue, queueSeq, deadlines
   * ARGV: chatId, userId, ttlMs, graceMs, queueChannel, visitorJson
   * → 'queued' (newly queued) | state ('waiting' | 'claimed' | 'active') | 'expired' | 'mismatch'
   */
  sbEnqueue: {
    keys: 4,
    lua: `${NOW}${ALIVE}
if not alive(KEYS[4], ARGV[1], now) then return 'expired' end
local f = redis.call('HMGET', KEYS[1], 'userId', 'state')
if f[1] ~= ARGV[2] then return 'mismatch' end
if f[2] ~= 'new' then return f[2] end
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'waiting', 'queuedAt', now)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]))
redis.call('PUBLISH', ARGV[5], '{"kind":"joined","order":' .. seq .. ',"since":' .. now .. ',"visitor":' .. ARGV[6] .. '}')
return 'queued'
`,
  },
  /**
   * KEYS: chat, queue, deadlines, claims
   * ARGV: chatId, userId, queueChannel, agentId ('' when agents are anonymous), maxChats, agentChannel
   * → 'ok' | 'same' (this agent holds it already) | 'notfound' | 'notqueued' | 'claimed' | 'away' | 'capacity'
   */
  sbClaim: {
    keys: 4,
    lua: `${NOW}${ALIVE}${SEATS}
if not alive(KEYS[3], ARGV[1], now) then return 'notfound' end
local f = redis.call('HMGET', KEYS[1], 'userId', 'state', 'claimedBy', 'agentId')
local agentId = ARGV[4]
if f[1] ~= ARGV[2] then return 'notfound' end
if f[2] == 'new' then return 'notqueued' end
if agentId ~= '' and f[2] ~= 'ended' and (f[3] == agentId or f[4] == agentId) then return 'same' end
if f[2] ~= 'waiting' then return 'claimed' end
if agentId ~= '' then
  local refused = seatRefusal(agentId, tonumber(ARGV[5]))
  if refused then return refused end
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'claimed', 'claimedAt', now)
recordClaim(KEYS[4], ARGV[1], now)
redis.call('PUBLISH', ARGV[3], '{"kind":"removed","chatId":"' .. ARGV[1] .. '","userId":"' .. ARGV[2] .. '"}')
if agentId ~= '' then
  redis.call('HSET', KEYS[1], 'claimedBy', agentId, 'assignedAt', precise())
  redis.call('SADD', agentChats(agentId), ARGV[1])
  agentsChanged(ARGV[6], {agentId})
end
return 'ok'
`,
  },
  /**
   * KEYS: chat, queue, deadlines, claims, messages, clientIds, receipts
   * ARGV: chatId, userId, supportId, supportUserName, ttlMs, graceMs, chatChannel, envelope, queueChannel,
   *       agentId ('' when agents are anonymous), maxChats, agentChannel
   * → 'ok' | 'expired' | 'mismatch' | 'ended' | 'claimed' | 'same' (this agent has the chat already) | 'away' | 'capacity'
   */
  sbJoinSupport: {
    keys: 7,
    lua: `${NOW}${ALIVE}${RENEW}${SEATS}
if not alive(KEYS[3], ARGV[1], now) then return 'expired' end
local f = redis.call('HMGET', KEYS[1], 'userId', 'supportId', 'state', 'claimedBy', 'agentId')
local agentId = ARGV[10]
if f[1] ~= ARGV[2] then return 'mismatch' end
if f[3] == 'ended' then return 'ended' end
if f[2] then
  if agentId ~= '' and f[5] == agentId then return 'same' end
  return 'claimed'
end
-- A visitor claimed by one agent is not joined by another.
if agentId ~= '' and f[3] == 'claimed' and f[4] and f[4] ~= agentId then return 'claimed' end
-- Joining a visitor this agent did not claim takes a seat, as a claim would.
local takesSeat = agentId ~= '' and not (f[3] == 'claimed' and f[4] == agentId)
if takesSeat then
  local refused = seatRefusal(agentId, tonumber(ARGV[11]))
  if refused then return refused end
end
local wasQueued = redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'active', 'supportId', ARGV[3], 'supportUserName', ARGV[4], 'supportJoinedAt', now)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[1])
-- A chat put back in the queue has a conversation already: it lives on with the chat.
renewChatKeys(tonumber(ARGV[5]) + tonumber(ARGV[6]), KEYS[1], KEYS[5], KEYS[6], KEYS[7])
if wasQueued == 1 then
  recordClaim(KEYS[4], ARGV[1], now)
  redis.call('PUBLISH', ARGV[9], '{"kind":"removed","chatId":"' .. ARGV[1] .. '","userId":"' .. ARGV[2] .. '"}')
end
redis.call('PUBLISH', ARGV[7], ARGV[8])
if agentId ~= '' then
  redis.call('HSET', KEYS[1], 'agentId', agentId, 'claimedBy', agentId)
  if takesSeat then
    redis.call('HSET', KEYS[1], 'assignedAt', precise())
    redis.call('SADD', agentChats(agentId), ARGV[1])
    agentsChanged(ARGV[12], {agentId})
  end
end
return 'ok'
`,
  },
  /**
   * Stores a message with the next seq (1, 2, 3 … per chat, no gaps) and
   * announces it; a clientMessageId seen before stores nothing and returns
   * the message stored then.
   * A visitor's message naming a supportId the chat had before a transfer
   * (sent while it happened) is stored under the current one.
   * KEYS: chat, messages, deadlines, clientIds, receipts
   * ARGV: chatId, supportId, argsHead (seed-004 args up to the supportId's value), messageId,
   *       clientMessageId ('' for none), clientIdField (',"clientMessageId":…' or ''), ttlMs, graceMs,
   *       chatChannel, from ('User' | 'Support'), argsTail (after the supportId's value, without the closing brace),
   *       agentId (the sending agent's, '' for none), holder (the sending instance's id, '' for none: always publish),
   *       beforeAgent ('1': a v2 visitor, who may write before an agent joins; stored with supportId '')
   * → {'ok', stored} | {'ok', stored, publication} (not published: deliver it locally) | {'dup', stored}
   *   | 'expired' | 'noagent' | 'mismatch' | 'ended'
   */
  sbAppendMessage: {
    keys: 5,
    lua: `${NOW}${ALIVE}${RENEW}
if not alive(KEYS[3], ARGV[1], now) then return 'expired' end
local f = redis.call('HMGET', KEYS[1], 'supportId', 'state', 'pastSupportIds', 'agentId', 'keysTouchedAt', 'holders', 'holder:' .. ARGV[13])
if f[2] == 'ended' and not f[1] then return 'ended' end
-- A v2 visitor may write before an agent joins (ARGV[14] '1'): the message waits in the history for the agent who joins.
if not f[1] and not (ARGV[14] == '1' and ARGV[10] == 'User') then return 'noagent' end
if (f[1] or '') ~= ARGV[2] then
  -- A visitor who did not know the current agent yet: no supportId (written while waiting), or one from before a transfer.
  local past = ARGV[2] == '' or (f[3] and string.find(',' .. f[3] .. ',', ',' .. ARGV[2] .. ',', 1, true))
  if ARGV[10] ~= 'User' or not past then return 'mismatch' end
end
if ARGV[10] == 'Support' and ARGV[12] ~= '' and f[4] and f[4] ~= ARGV[12] then return 'mismatch' end
-- A clientMessageId belongs to its sender: the other side may use the same one.
local idField = ARGV[10] .. ':' .. ARGV[5]
if ARGV[5] ~= '' then
  local seen = redis.call('HGET', KEYS[4], idField)
  if seen then return {'dup', redis.call('LINDEX', KEYS[2], tonumber(seen) - 1)} end
end
-- Checked after the retry lookup: a message stored before the end still gets its Ack.
if f[2] == 'ended' then return 'ended' end
local seq = redis.call('LLEN', KEYS[2]) + 1
local stored = ARGV[3] .. (f[1] or '') .. ARGV[11] .. ',"seq":' .. seq .. ',"messageId":"' .. ARGV[4] .. '"' .. ARGV[6] .. '}'
redis.call('RPUSH', KEYS[2], stored)
local ttl = tonumber(ARGV[7]) + tonumber(ARGV[8])
local sent = redis.call('HINCRBY', KEYS[5], 'sent:' .. ARGV[10], 1)
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[4], idField, seq)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[1])
-- The keys outlive the deadline by the grace period. Their TTLs are renewed
-- when the first message creates the list and the receipts, and then once per
-- half grace period, not on every message: they keep at least half of it.
if seq == 1 or not f[5] or now - tonumber(f[5]) >= tonumber(ARGV[8]) / 2 then
  redis.call('HSET', KEYS[1], 'keysTouchedAt', now)
  renewChatKeys(ttl, KEYS[1], KEYS[2], KEYS[4], KEYS[5])
end
-- One publication: the message for everyone, and the recipient's unread count for their v2 sockets.
local reader = ARGV[10] == 'User' and 'support' or 'user'
local readn = tonumber(redis.call('HGET', KEYS[5], 'readn:' .. reader) or '0')
local publication = 'msg:' .. reader .. ':' .. (sent - readn) .. '|' .. stored
-- When the sending instance is the only one holding sockets of this chat, nobody else
-- would hear it: it is not published, and the instance delivers it to its sockets itself.
if ARGV[13] ~= '' and f[6] == '1' and f[7] == '1' then return {'ok', stored, publication} end
redis.call('PUBLISH', ARGV[9], publication)
return {'ok', stored}
`,
  },
  /**
   * Which ChatServer instances hold sockets of a chat (listen on its
   * channel): a field per instance and their count, in the chat's own hash
   * (so they live and expire with it). A message whose sender's instance is
   * the only holder is not published (sbAppendMessage).
   * KEYS: chat
   * ARGV: holder (instance id), 'hold' | 'release'
   * → 1, or 0 when the chat is gone
   */
  sbHoldChat: {
    keys: 1,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local field = 'holder:' .. ARGV[1]
if ARGV[2] == 'hold' then
  if redis.call('HSETNX', KEYS[1], field, 1) == 1 then redis.call('HINCRBY', KEYS[1], 'holders', 1) end
elseif redis.call('HDEL', KEYS[1], field) == 1 then
  redis.call('HINCRBY', KEYS[1], 'holders', -1)
end
return 1
`,
  },
  /**
   * Delivered / read receipts: monotonic per participant; a read also moves
   * the reader's unread count. Announced to v2 sockets only.
   * KEYS: chat, messages, deadlines, receipts
   * ARGV: chatId, reader ('user' | 'support'), kind ('delivered' | 'read'), seq, chatChannel
   * → 'ok' | 'stale' (not newer than before) | 'badseq' | 'expired'
   */
  sbReceipt: {
    keys: 4,
    lua: `${NOW}${ALIVE}
if not alive(KEYS[3], ARGV[1], now) then return 'expired' end
local seq = tonumber(ARGV[4])
if seq > redis.call('LLEN', KEYS[2]) then return 'badseq' end
local reader = ARGV[2]
local other = reader == 'user' and 'support' or 'user'
local readerName = reader == 'user' and 'User' or 'Support'
local otherName = reader == 'user' and 'Support' or 'User'
local old = tonumber(redis.call('HGET', KEYS[4], ARGV[3] .. ':' .. reader) or '0')
if seq <= old then return 'stale' end
redis.call('HSET', KEYS[4], ARGV[3] .. ':' .. reader, seq)
redis.call('PEXPIRE', KEYS[4], math.max(redis.call('PTTL', KEYS[1]), 1))
redis.call('PUBLISH', ARGV[5], other .. ':v2|{"type":"Receipt","args":{"chatId":"' .. ARGV[1] .. '","seq":' .. seq .. ',"status":"' .. ARGV[3] .. '","from":"' .. readerName .. '"}}')
if ARGV[3] == 'read' then
  -- Count the other side's messages between the old read mark and the new one.
  local n = 0
  local marker = '"from":"' .. otherName .. '","seq":'
  for _, m in ipairs(redis.call('LRANGE', KEYS[2], old, seq - 1)) do
    if string.find(m, marker, 1, true) then n = n + 1 end
  end
  -- The reader's unread count changes only if this read covered some of the other side's messages.
  if n > 0 then
    local readn = redis.call('HINCRBY', KEYS[4], 'readn:' .. reader, n)
    local sent = tonumber(redis.call('HGET', KEYS[4], 'sent:' .. otherName) or '0')
    redis.call('PUBLISH', ARGV[5], reader .. ':v2|{"type":"UnreadCount","args":{"chatId":"' .. ARGV[1] .. '","count":' .. (sent - readn) .. '}}')
  end
end
return 'ok'
`,
  },
  /**
   * Ends a chat: read-only from now on, history kept until it expires.
   * Frees the agent's seat.
   * KEYS: chat, queue, deadlines
   * ARGV: chatId, by, reason, chatChannel, endedFrame, queueChannel, agentChannel
   * → 'ok' | 'already' | 'expired'
   */
  sbEndChat: {
    keys: 3,
    lua: `${NOW}${ALIVE}${SEATS}
if not alive(KEYS[3], ARGV[1], now) then return 'expired' end
local f = redis.call('HMGET', KEYS[1], 'state', 'userId')
if f[1] == 'ended' then return 'already' end
redis.call('HSET', KEYS[1], 'state', 'ended', 'endedBy', ARGV[2], 'endReason', ARGV[3], 'endedAt', now)
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[6], '{"kind":"removed","chatId":"' .. ARGV[1] .. '","userId":"' .. f[2] .. '"}')
end
redis.call('PUBLISH', ARGV[4], 'all:v2|' .. ARGV[5])
releaseSeat(KEYS[1], ARGV[1], ARGV[7])
return 'ok'
`,
  },
  /**
   * Warns the participants of a chat with an agent that it expires soon,
   * once per deadline (activity moves the deadline, and may earn a new warning).
   * KEYS: deadlines, chat
   * ARGV: chatId, warnMs, chatChannel
   * → 1 if warned now
   */
  sbWarnExpiring: {
    keys: 2,
    lua: `${NOW}
local d = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not d then return 0 end
d = tonumber(d)
if d <= now or d - now > tonumber(ARGV[2]) then return 0 end
local f = redis.call('HMGET', KEYS[2], 'supportId', 'warnedFor', 'state')
if not f[1] or f[3] == 'ended' or f[2] == tostring(d) then return 0 end
redis.call('HSET', KEYS[2], 'warnedFor', tostring(d))
redis.call('PUBLISH', ARGV[3], 'all:v2|{"type":"ChatExpiring","args":{"chatId":"' .. ARGV[1] .. '","secondsLeft":' .. math.ceil((d - now) / 1000) .. '}}')
return 1
`,
  },
  /**
   * Keeps a chat that no agent has joined yet alive while its visitor is
   * connected: all of it, since a chat put back in the queue has a
   * conversation to keep for the next agent.
   * KEYS: chat, deadlines, messages, clientIds, receipts
   * ARGV: chatId, ttlMs, graceMs
   * → 1 if extended, 0 otherwise
   */
  sbTouchWaiting: {
    keys: 5,
    lua: `${NOW}${ALIVE}${RENEW}
if not alive(KEYS[2], ARGV[1], now) then return 0 end
local f = redis.call('HMGET', KEYS[1], 'supportId', 'state')
if f[1] or f[2] == 'ended' then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
renewChatKeys(tonumber(ARGV[2]) + tonumber(ARGV[3]), KEYS[1], KEYS[3], KEYS[4], KEYS[5])
return 1
`,
  },
  /**
   * Expires one chat whose deadline has passed. Only one caller wins, so each
   * expiry is announced once however many instances sweep.
   * KEYS: deadlines, chat, messages, queue, clientIds, receipts
   * ARGV: chatId, chatChannel, expiredEnvelope, queueChannel, agentChannel
   * → 1 if this call expired the chat, 0 otherwise
   */
  sbExpire: {
    keys: 6,
    lua: `${NOW}${SEATS}
local d = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not d or tonumber(d) > now then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
local userId = redis.call('HGET', KEYS[2], 'userId')
local queued = redis.call('ZREM', KEYS[4], ARGV[1])
releaseSeat(KEYS[2], ARGV[1], ARGV[5])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[5], KEYS[6])
redis.call('PUBLISH', ARGV[2], ARGV[3])
if queued == 1 and userId then
  redis.call('PUBLISH', ARGV[4], '{"kind":"removed","chatId":"' .. ARGV[1] .. '","userId":"' .. userId .. '"}')
end
return 1
`,
  },
  /**
   * Hands a chat from one agent to another online one with a free seat, or
   * (toAgentId '') back to the head of the queue.
   * KEYS: chat, queue, deadlines, messages, receipts, clientIds, agentsOnline
   * ARGV: chatId, fromAgentId, toAgentId, newSupportId, toName, ttlMs, graceMs, maxChats, chatChannel,
   *       queueChannel, agentChannel, unassignEnvelope, visitorEnvelope, assignedEvent, unassignedEvent, visitorJson
   * → 'ok' | 'expired' | 'ended' | 'notyours' | 'unavailable' | 'capacity'
   */
  sbTransfer: {
    keys: 7,
    lua: `${NOW}${ALIVE}${RENEW}${SEATS}
if not alive(KEYS[3], ARGV[1], now) then return 'expired' end
local f = redis.call('HMGET', KEYS[1], 'state', 'supportId', 'pastSupportIds')
if f[1] == 'ended' then return 'ended' end
local from, to = ARGV[2], ARGV[3]
if (f[1] ~= 'claimed' and f[1] ~= 'active') or ownerOf(KEYS[1]) ~= from then return 'notyours' end
local ttl = tonumber(ARGV[6])
if to ~= '' then
  if to == from then return 'unavailable' end
  local lease = redis.call('ZSCORE', KEYS[7], to)
  if not lease or tonumber(lease) <= now or redis.call('HGET', agentKey(to), 'status') == 'away' then return 'unavailable' end
  if seatRefusal(to, tonumber(ARGV[8])) then return 'capacity' end
end
-- A visitor's message in flight with the old supportId is still stored.
if f[2] then redis.call('HSET', KEYS[1], 'pastSupportIds', f[3] and (f[3] .. ',' .. f[2]) or f[2]) end
redis.call('SREM', agentChats(from), ARGV[1])
redis.call('HDEL', KEYS[1], 'warnedFor')
-- The old agent's sockets on the chat learn it first (and close), then the visitor.
redis.call('PUBLISH', ARGV[9], ARGV[12])
if to ~= '' then
  redis.call('SADD', agentChats(to), ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'active', 'supportId', ARGV[4], 'supportUserName', ARGV[5], 'agentId', to, 'claimedBy', to,
    'assignedAt', precise(), 'supportJoinedAt', now)
  redis.call('PUBLISH', ARGV[9], ARGV[13])
  redis.call('PUBLISH', ARGV[11], ARGV[14])
else
  redis.call('HDEL', KEYS[1], 'supportId', 'supportUserName', 'agentId', 'claimedBy', 'assignedAt', 'supportJoinedAt')
  local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local order = head[2] and (tonumber(head[2]) - 1) or 0
  redis.call('ZADD', KEYS[2], order, ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'waiting', 'queuedAt', now)
  redis.call('PUBLISH', ARGV[9], ARGV[13])
  redis.call('PUBLISH', ARGV[10], '{"kind":"joined","order":' .. order .. ',"since":' .. now .. ',"visitor":' .. ARGV[16] .. '}')
end
redis.call('PUBLISH', ARGV[11], ARGV[15])
-- A transfer is activity: the chat lives on from now.
redis.call('ZADD', KEYS[3], now + ttl, ARGV[1])
renewChatKeys(ttl + tonumber(ARGV[7]), KEYS[1], KEYS[4], KEYS[6], KEYS[5])
agentsChanged(ARGV[11], to ~= '' and {from, to} or {from})
return 'ok'
`,
  },
  /**
   * Renews this instance's lease on an agent's presence (their first socket
   * here, every renewal, and their last socket closing: from then the lease
   * runs out unless another instance holds one). An agent coming online
   * starts with status 'online'; one still within the lease keeps theirs.
   * The agent's record lives `forgetMs` past the lease: an id that never
   * comes back does not stay in Redis for ever.
   * KEYS: agentSessions, agent, agentsOnline
   * ARGV: agentId, instanceId, leaseMs, name, anonymous ('1' | ''), agentChannel, forgetMs
   * → 1 if the agent came online now, 0 otherwise
   */
  sbPresenceRenew: {
    keys: 3,
    lua: `${NOW}${SEATS}
local prev = redis.call('ZSCORE', KEYS[3], ARGV[1])
local wasOnline = prev and tonumber(prev) > now
local lease = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], lease, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('ZADD', KEYS[3], top[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 60000)
local name = redis.call('HGET', KEYS[2], 'name')
if name ~= ARGV[4] then redis.call('HSET', KEYS[2], 'name', ARGV[4], 'anonymous', ARGV[5]) end
if not wasOnline then redis.call('HSET', KEYS[2], 'status', 'online') end
-- From the lease with the latest end, so a renewal by one instance does not shorten another's.
redis.call('PEXPIRE', KEYS[2], tonumber(top[2]) - now + tonumber(ARGV[7]))
if wasOnline then
  if name ~= ARGV[4] then agentsChanged(ARGV[6], {ARGV[1]}) end
  return 0
end
agentsChanged(ARGV[6], {ARGV[1]})
return 1
`,
  },
  /**
   * Takes agents whose every lease ran out offline, and says so once,
   * however many instances sweep.
   * KEYS: agentsOnline
   * ARGV: agentChannel
   * → how many went offline
   */
  sbPresenceSweep: {
    keys: 1,
    lua: `${NOW}${SEATS}
local gone = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 200)) do
  redis.call('ZREMRANGEBYSCORE', agentSessions(id), '-inf', now)
  local top = redis.call('ZRANGE', agentSessions(id), -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('ZADD', KEYS[1], top[2], id)
  else
    redis.call('ZREM', KEYS[1], id)
    redis.call('DEL', agentSessions(id))
    -- An anonymous agent is one socket: nothing of it outlives it.
    if redis.call('HGET', agentKey(id), 'anonymous') == '1' then redis.call('DEL', agentKey(id), agentChats(id)) end
    table.insert(gone, id)
  end
end
agentsChanged(ARGV[1], gone)
return #gone
`,
  },
  /**
   * KEYS: agent
   * ARGV: agentId, status, agentChannel, forgetMs (the lifetime of a record this call creates)
   * → 1 if the status changed
   */
  sbSetStatus: {
    keys: 1,
    lua: `${SEATS}
if redis.call('HGET', KEYS[1], 'status') == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
-- A record the presence lease does not keep (none was there) still gets a lifetime.
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4])) end
agentsChanged(ARGV[3], {ARGV[1]})
return 1
`,
  },
  /**
   * A ChatServer instance has (or no longer has) a waiting visitor's socket:
   * a field per instance and their count, in the chat's own hash, like the
   * holders of sbHoldChat. When the last one goes and the visitor is still in
   * the queue (state 'waiting'), the deadline is brought forward to `leaveMs`
   * from now (never pushed back): unless a socket comes back before then
   * (a reload: sbTouchWaiting moves the deadline on again), the chat expires
   * and leaves the queue. A chat claimed or joined by an agent is left alone.
   * KEYS: chat, deadlines
   * ARGV: chatId, instance, 'here' | 'gone', leaveMs
   * → 1 if the deadline was brought forward, else 0
   */
  sbWaitingVisitor: {
    keys: 2,
    lua: `${NOW}${ALIVE}
if not alive(KEYS[2], ARGV[1], now) then return 0 end
local field = 'waiting:' .. ARGV[2]
if ARGV[3] == 'here' then
  if redis.call('HSETNX', KEYS[1], field, 1) == 1 then redis.call('HINCRBY', KEYS[1], 'waitingOn', 1) end
  return 0
end
if redis.call('HDEL', KEYS[1], field) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[1], 'waitingOn', -1) > 0 then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'waiting' then return 0 end
return redis.call('ZADD', KEYS[2], 'LT', 'CH', now + tonumber(ARGV[4]), ARGV[1])
`,
  },
} as const

export type ScriptName = keyof typeof scriptSources

/** Registers every script on a client (EVALSHA, with EVAL on a cache miss). */
export function defineScripts(redis: Redis): void {
  for (const [name, { keys, lua }] of Object.entries(scriptSources)) {
    redis.defineCommand(name, { numberOfKeys: keys, lua })
  }
}

/** Runs a script defined by {@link defineScripts}. */
export async function runScript<T = string>(
  redis: Redis,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<T> {
  const command = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<T>>)[name]
  if (typeof command !== 'function') throw new Error(`Redis client has no script ${name}: call defineScripts first`)
  return command.call(redis, ...keys, ...args)
}
