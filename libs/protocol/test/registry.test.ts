/**
 * The frame registry: the tables, encoders and typed parses derived from it
 * agree with each other (every client encoder's output parses with the
 * socket's parser; v1 tables refuse v2-only fields and keep seed 004's
 * required ones), and frameTypeOf reads what every encoder writes.
 */
import t from 'tap'
import {
  ChatClientFrames,
  ChatClientFramesV2,
  FRAME_TYPES,
  Frames,
  QueueClientFramesV2,
  REGISTRY,
  compileFrameParser,
  encode,
  encodeClientV2,
  encodeV2,
  entriesOf,
  frameTypeOf,
  parseChatServerFrame,
  parseQueueServerFrame,
} from '@switchboard/protocol'

const CHAT_ID = 'd2464b5386044daf9e36ffd414260f67'
const USER_ID = '9d6d2db0cdb84d8ba67105670d94d641'

t.test('message keys are unique; one entry per type, socket and direction', async (t) => {
  t.equal(new Set(REGISTRY.map((e) => e.key)).size, REGISTRY.length, 'keys are unique')
  const seen = new Set<string>()
  const dup: string[] = []
  for (const e of REGISTRY) {
    for (const s of e.sockets) {
      const id = `${s} ${e.direction} ${e.type}`
      if (seen.has(id)) dup.push(id)
      seen.add(id)
    }
  }
  t.same(dup, [], 'no type twice on one socket and direction')
})

t.test('FRAME_TYPES and the client tables are the registry', async (t) => {
  t.same(FRAME_TYPES.chat.client, Object.keys(ChatClientFramesV2))
  t.same(FRAME_TYPES.queue.client, Object.keys(QueueClientFramesV2))
  t.same(Object.keys(ChatClientFrames), entriesOf('chat', 'client', 1).map((e) => e.type))
  t.ok(FRAME_TYPES.chat.server.includes('ChatUnassigned') && FRAME_TYPES.queue.server.includes('ChatUnassigned'), 'ChatUnassigned on both sockets')
})

t.test('v1 views: no v2 fields, and requiredV1 fields are required', async (t) => {
  t.notOk('lastSeq' in ChatClientFrames.Join.properties, 'v1 Join has no lastSeq')
  t.ok('lastSeq' in ChatClientFramesV2.Join.properties, 'v2 Join has lastSeq')
  t.ok(ChatClientFrames.ChatMessage.required?.includes('supportId'), 'v1 ChatMessage requires supportId')
  t.notOk((ChatClientFramesV2.ChatMessage.required as readonly string[] | undefined)?.includes('supportId'), 'v2 ChatMessage does not')
  t.notOk('clientMessageId' in ChatClientFrames.ChatMessage.properties, 'v1 ChatMessage has no clientMessageId')
})

t.test('every encodeClientV2 frame parses with the v2 parser of its socket', async (t) => {
  const chat = compileFrameParser(ChatClientFramesV2)
  const queue = compileFrameParser(QueueClientFramesV2)
  const frames = [
    encodeClientV2.join({ userId: USER_ID, username: 'Nika', from: 'User', lastSeq: 3 }),
    encodeClientV2.chatMessage({ userId: USER_ID, content: 'Hi', from: 'User', clientMessageId: 'c-1' }),
    encodeClientV2.loadMore({ beforeSeq: 3 }),
    encodeClientV2.typing({ state: 'start' }),
    encodeClientV2.received({ seq: 1 }),
    encodeClientV2.read({ seq: 1 }),
    encodeClientV2.endChat({}),
  ]
  for (const text of frames) t.equal(chat.parse(text).type, frameTypeOf(text), text)
  for (const text of [encodeClientV2.setStatus({ status: 'away' }), encodeClientV2.transferChat({ chatId: CHAT_ID, toAgentId: null })]) {
    t.equal(queue.parse(text).type, frameTypeOf(text), text)
  }
})

t.test('frameTypeOf reads the type every encoder writes first, without parsing', async (t) => {
  const texts = [
    encode.userJoined({ username: 'N', userId: USER_ID, chatId: CHAT_ID }),
    encode.chatMessageFromStored('{"userId":"u","seq":1}'),
    encode.error('X', 'm'),
    encodeV2.typing(CHAT_ID, 'User', 'stop'),
    encodeV2.chatUnassigned(CHAT_ID, null),
    encodeV2.userJoinedQueued({ username: 'N', userId: USER_ID, chatId: CHAT_ID, since: 's', order: 1 }),
  ]
  for (const text of texts) t.equal(frameTypeOf(text), (JSON.parse(text) as { type: string }).type, text)
  t.equal(frameTypeOf(encode.visitor({ username: 'N', userId: USER_ID, chatId: CHAT_ID })), undefined, 'a bare queue entry has none')
  t.equal(frameTypeOf('ping'), undefined, 'ping has none')
  t.equal(frameTypeOf('{"type":'), undefined, 'a cut frame has none')
})

t.test('typed parses keep to their socket', async (t) => {
  const removeUser = encode.removeUser(USER_ID)
  const expired = encode.chatExpired(CHAT_ID)
  t.equal(parseChatServerFrame(removeUser), null, 'RemoveUser is not a /chat frame')
  t.same(parseQueueServerFrame(removeUser), { type: 'RemoveUser', args: { userId: USER_ID } })
  t.same(parseChatServerFrame(expired), { type: 'ChatExpired', args: { chatId: CHAT_ID } })
  t.equal(parseQueueServerFrame(expired), null, 'ChatExpired is not a /users frame')
  const bare = encodeV2.queuedVisitor({ username: 'N', userId: USER_ID, chatId: CHAT_ID, since: 's', order: 2 })
  t.same(parseQueueServerFrame(bare), { type: 'Visitor', args: JSON.parse(bare) }, 'the bare entry keeps its v2 fields')
  t.equal(parseChatServerFrame('not json'), null)
  t.equal(Frames.ChatMessageDelivered.type, 'ChatMessage')
})
