/**
 * Keeps docs/asyncapi.yaml in step with libs/protocol: the frame types per
 * socket and direction (FRAME_TYPES and the client-frame tables), the fields
 * of every client frame (the TypeBox schemas), the fields of every server
 * frame (what the encoders actually produce), the error codes (the Errors
 * table) and the document's own references.
 *
 * Conventions of the document (see its header): `x-frame-type` on every
 * message, `x-text-frame` on the heartbeat text frames, `x-bare-frame` on the
 * bare queue entry, `x-protocol: v2` on v2-only messages, operations and fields.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
// `yaml` comes with tap (tap-yaml); it is not a direct dependency of this repository.
import { parse } from 'yaml'
import type { Static, TSchema } from '@sinclair/typebox'
import {
  ChatClientFrames,
  ChatClientFramesV2,
  Errors,
  FRAME_TYPES,
  MAX_NAME_LENGTH,
  PING,
  PONGS,
  QueueClientFrames,
  QueueClientFramesV2,
  SUBPROTOCOL_V2,
  compileFrameParser,
  encode,
  encodeClient,
  encodeV2,
} from '@switchboard/protocol'

const DOC_PATH = fileURLToPath(new URL('../../../docs/asyncapi.yaml', import.meta.url))

type Obj = Record<string, unknown>
type Version = 1 | 2
type Direction = 'client' | 'server'
/** FRAME_TYPES' name for a socket → the document's channel key. */
const CHANNELS = { chat: 'chat', queue: 'users' } as const
type Socket = keyof typeof CHANNELS
type ChannelKey = (typeof CHANNELS)[Socket]

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const sorted = (values: Iterable<string>): string[] => [...new Set(values)].sort()

/** What is only in `code` and what is only in `doc`; both empty when they agree. */
function diff(code: Iterable<string>, doc: Iterable<string>): { onlyInCode: string[]; onlyInDoc: string[] } {
  const c = new Set(code)
  const d = new Set(doc)
  return { onlyInCode: sorted([...c].filter((x) => !d.has(x))), onlyInDoc: sorted([...d].filter((x) => !c.has(x))) }
}
const AGREE = { onlyInCode: [], onlyInDoc: [] }

// ---------------------------------------------------------------- the document

const doc: unknown = parse(readFileSync(DOC_PATH, 'utf8'))
const root: Obj = isObj(doc) ? doc : {}
const sub = (o: unknown, key: string): Obj => (isObj(o) && isObj(o[key]) ? o[key] : {})

/** Resolves a local JSON pointer (`#/a/b`), or undefined. */
function pointer(ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined
  let node: unknown = root
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~')
    if (!isObj(node) || !Object.hasOwn(node, key)) return undefined
    node = node[key]
  }
  return node
}

/** Follows `$ref`s until a node that is not a reference (undefined if one does not resolve). */
function deref(node: unknown): unknown {
  const seen = new Set<string>()
  while (isObj(node) && typeof node.$ref === 'string') {
    if (seen.has(node.$ref)) return undefined
    seen.add(node.$ref)
    node = pointer(node.$ref)
  }
  return node
}
const derefObj = (node: unknown): Obj => {
  const d = deref(node)
  return isObj(d) ? d : {}
}

/** One message as an operation uses it. */
interface Msg {
  channel: ChannelKey
  direction: Direction
  key: string
  ref: string
  frameType: string
  text: boolean
  v2: boolean
  operation: string
  operationV2: boolean
  message: Obj
}

/** Operations whose channel or messages are not what AsyncAPI 3 asks for. */
const operationProblems: string[] = []
const msgs: Msg[] = []
for (const [opId, opNode] of Object.entries(sub(root, 'operations'))) {
  const op = isObj(opNode) ? opNode : {}
  const action = op.action
  if (action !== 'send' && action !== 'receive') {
    operationProblems.push(`${opId}: action ${JSON.stringify(action)} is neither send nor receive`)
    continue
  }
  const channelRef = isObj(op.channel) && typeof op.channel.$ref === 'string' ? op.channel.$ref : ''
  const channel = channelRef.match(/^#\/channels\/([^/]+)$/)?.[1]
  if (channel === undefined || !isObj(pointer(channelRef))) {
    operationProblems.push(`${opId}: channel ${JSON.stringify(op.channel)} is not a reference to a channel`)
    continue
  }
  if (channel !== 'chat' && channel !== 'users') {
    operationProblems.push(`${opId}: unknown channel ${channel}`)
    continue
  }
  const list = Array.isArray(op.messages) ? op.messages : []
  if (list.length === 0) operationProblems.push(`${opId}: lists no messages`)
  for (const item of list) {
    const ref = isObj(item) && typeof item.$ref === 'string' ? item.$ref : ''
    const key = ref.startsWith(`${channelRef}/messages/`) ? ref.slice(`${channelRef}/messages/`.length) : undefined
    const message = deref(item)
    if (key === undefined || !isObj(message)) {
      operationProblems.push(`${opId}: ${JSON.stringify(item)} is not a reference to a message of ${channelRef}`)
      continue
    }
    msgs.push({
      channel,
      // The document describes the servers: they receive what clients send.
      direction: action === 'receive' ? 'client' : 'server',
      key,
      ref,
      frameType: typeof message['x-frame-type'] === 'string' ? message['x-frame-type'] : '',
      text: message['x-text-frame'] === true,
      v2: message['x-protocol'] === 'v2',
      operation: opId,
      operationV2: op['x-protocol'] === 'v2',
      message,
    })
  }
}

const framesOf = (channel: ChannelKey, direction: Direction, filter: (m: Msg) => boolean = () => true): Msg[] =>
  msgs.filter((m) => m.channel === channel && m.direction === direction && !m.text && filter(m))
const typesOf = (channel: ChannelKey, direction: Direction, filter?: (m: Msg) => boolean): string[] =>
  sorted(framesOf(channel, direction, filter).map((m) => m.frameType))
/** The one message of a channel and direction with this frame type (both versions share it). */
const messageFor = (channel: ChannelKey, direction: Direction, frameType: string): Msg | undefined =>
  framesOf(channel, direction).find((m) => m.frameType === frameType)

// ---------------------------------------------------------------- schemas, per protocol version

const isV2Schema = (s: unknown): boolean => isObj(s) && s['x-protocol'] === 'v2'

/** The properties a socket of `version` sees: v1 does not see fields marked `x-protocol: v2`. */
function viewProperties(schema: Obj, version: Version): Record<string, unknown> {
  const props = isObj(schema.properties) ? schema.properties : {}
  return Object.fromEntries(Object.entries(props).filter(([, s]) => version === 2 || !isV2Schema(deref(s))))
}
function viewRequired(schema: Obj, version: Version): string[] {
  const props = viewProperties(schema, version)
  const required = Array.isArray(schema.required) ? (schema.required as string[]) : []
  // A field v2 made optional stays required of v1 frames (x-required-v1: ChatMessage.supportId).
  const v1Only = version === 1 && Array.isArray(schema['x-required-v1']) ? (schema['x-required-v1'] as string[]) : []
  // A v2 field may be required of v2 frames (ChatHistory.fromSeq); a v1 frame does not have it.
  return [...required.filter((name) => version === 2 || Object.hasOwn(props, name)), ...v1Only]
}

function typeMatches(type: unknown, value: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string'
    case 'boolean':
      return typeof value === 'boolean'
    case 'null':
      return value === null
    case 'integer':
      return Number.isInteger(value)
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
    case 'array':
      return Array.isArray(value)
    case 'object':
      return isObj(value)
    default:
      return false
  }
}

const codePoints = (s: string): number => [...s].length
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

/**
 * Validates `value` against the document's schema as a socket of `version`
 * sees it (the subset of JSON Schema the document uses). Fields the schema
 * does not list are errors: the document must name every field the code
 * sends. `seen` counts the objects met at each path (`objects $.args`) and
 * the times each documented field was present (`$.args.seq`), for the
 * coverage and `required` checks.
 */
function validate(schemaNode: unknown, value: unknown, path: string, version: Version, errors: string[], seen?: Map<string, number>): void {
  const schema = deref(schemaNode)
  if (!isObj(schema)) {
    errors.push(`${path}: the document has no schema here`)
    return
  }
  if (schema.type !== undefined) {
    const types = [schema.type].flat()
    if (!types.some((type) => typeMatches(type, value))) {
      errors.push(`${path}: ${JSON.stringify(value)} is not ${types.join(' | ')}`)
      return
    }
  }
  if (Object.hasOwn(schema, 'const') && value !== schema.const) errors.push(`${path}: ${JSON.stringify(value)} is not ${JSON.stringify(schema.const)}`)
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`)
  if (typeof value === 'string') {
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${path}: ${JSON.stringify(value)} does not match ${schema.pattern}`)
    if (typeof schema.minLength === 'number' && codePoints(value) < schema.minLength) errors.push(`${path}: shorter than ${schema.minLength}`)
    if (typeof schema.maxLength === 'number' && codePoints(value) > schema.maxLength) errors.push(`${path}: longer than ${schema.maxLength}`)
    if (schema.format === 'date-time' && !DATE_TIME.test(value)) errors.push(`${path}: ${JSON.stringify(value)} is not a date-time`)
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${path}: below ${schema.minimum}`)
    if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push(`${path}: above ${schema.maximum}`)
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    for (const item of value) validate(schema.items, item, `${path}[]`, version, errors, seen)
  }
  if (isObj(value) && (schema.properties !== undefined || schema.required !== undefined)) {
    const props = viewProperties(schema, version)
    seen?.set(`objects ${path}`, (seen.get(`objects ${path}`) ?? 0) + 1)
    for (const name of viewRequired(schema, version)) {
      if (!Object.hasOwn(value, name)) errors.push(`${path}.${name}: required by the document (v${version}) but missing`)
    }
    for (const [name, field] of Object.entries(value)) {
      const fieldSchema = props[name]
      if (fieldSchema === undefined) {
        const v2Only = isObj(schema.properties) && Object.hasOwn(schema.properties, name)
        errors.push(`${path}.${name}: ${v2Only ? 'marked v2-only in the document, but sent on v1' : 'not in the document'}`)
        continue
      }
      seen?.set(`${path}.${name}`, (seen.get(`${path}.${name}`) ?? 0) + 1)
      validate(fieldSchema, field, `${path}.${name}`, version, errors, seen)
    }
  }
}

/** Every object schema under a schema, by path (`$`, `$.args`, `$.args.messages[]`), as `version` sees it. */
function documentedObjects(schemaNode: unknown, path: string, version: Version, out: Map<string, Obj>): Map<string, Obj> {
  const schema = deref(schemaNode)
  if (!isObj(schema)) return out
  if (schema.properties !== undefined) out.set(path, schema)
  for (const [name, field] of Object.entries(viewProperties(schema, version))) documentedObjects(field, `${path}.${name}`, version, out)
  if (schema.items !== undefined) documentedObjects(schema.items, `${path}[]`, version, out)
  return out
}

const argsSchema = (m: Msg): Obj => derefObj(sub(derefObj(m.message.payload), 'properties').args)

// ---------------------------------------------------------------- tests

t.test('the document is AsyncAPI 3.0.0 with both servers, the agent token and both channels', async (t) => {
  t.equal(root.asyncapi, '3.0.0', 'asyncapi: 3.0.0')
  const info = sub(root, 'info')
  t.equal(info.title, 'Switchboard', 'info.title')
  t.type(info.version, 'string', 'info.version')
  const description = typeof info.description === 'string' ? info.description : ''
  for (const needle of [SUBPROTOCOL_V2, PING, PONGS.User, PONGS.Support]) {
    t.ok(description.includes(needle), `info.description mentions ${needle}`)
  }

  const servers = sub(root, 'servers')
  const schemes = sub(sub(root, 'components'), 'securitySchemes')
  const expected = { chatServer: 'localhost:9000', subscriber: 'localhost:9001' }
  for (const [name, host] of Object.entries(expected)) {
    const server = sub(servers, name)
    t.equal(server.host, host, `${name}.host`)
    t.equal(server.protocol, 'ws', `${name}.protocol`)
    const security = (Array.isArray(server.security) ? server.security : []).map(derefObj)
    t.ok(
      security.some((s) => s.type === 'httpApiKey' && s.in === 'query' && s.name === 'token'),
      `${name} accepts the agent token as ?token= (httpApiKey in query): ${JSON.stringify(server.security)}`,
    )
    t.ok(
      security.some((s) => s.type === 'http' && s.scheme === 'bearer'),
      `${name} accepts the agent token as Authorization: Bearer (http bearer): ${JSON.stringify(server.security)}`,
    )
  }
  t.ok(Object.keys(schemes).length >= 2, 'components.securitySchemes holds the agent token schemes')

  const channels = sub(root, 'channels')
  t.same(sorted(Object.keys(channels)), ['chat', 'users'], 'exactly the channels chat and users')
  const chat = sub(channels, 'chat')
  const users = sub(channels, 'users')
  t.equal(chat.address, '/chat/{chatId}', 'chat.address')
  t.equal(users.address, '/users', 'users.address')
  const inAddress = [...String(chat.address).matchAll(/\{([^}]+)\}/g)].map((m) => m[1] ?? '')
  t.same(diff(inAddress, Object.keys(sub(chat, 'parameters'))), AGREE, 'chat.parameters are exactly the address parameters (onlyInCode = only in the address)')
  const serverOf = (c: Obj) => (Array.isArray(c.servers) ? c.servers.map((s) => (isObj(s) ? s.$ref : s)) : c.servers)
  t.same(serverOf(chat), ['#/servers/chatServer'], 'chat is served by chatServer')
  t.same(serverOf(users), ['#/servers/subscriber'], 'users is served by subscriber')
})

t.test('every $ref in the document resolves', async (t) => {
  const broken: string[] = []
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) node.forEach((item, i) => walk(item, `${path}[${i}]`))
    else if (isObj(node)) {
      if (typeof node.$ref === 'string' && deref(node) === undefined) broken.push(`${path}: ${node.$ref}`)
      for (const [key, value] of Object.entries(node)) walk(value, `${path}.${key}`)
    }
  }
  walk(root, '$')
  t.same(broken, [], 'unresolved references')
})

t.test('every operation references its channel and messages of that channel; every message is used', async (t) => {
  t.same(operationProblems, [], 'operations whose channel or messages do not resolve')
  t.ok(msgs.length > 0, 'the operations list messages')

  const unused: string[] = []
  const bothWays: string[] = []
  for (const [channel, node] of Object.entries(sub(root, 'channels'))) {
    for (const key of Object.keys(sub(node, 'messages'))) {
      const uses = msgs.filter((m) => m.channel === channel && m.key === key)
      if (uses.length === 0) unused.push(`${channel}/${key}`)
      if (new Set(uses.map((m) => m.direction)).size > 1) bothWays.push(`${channel}/${key}`)
    }
  }
  t.same(unused, [], 'channel messages no operation sends or receives')
  t.same(bothWays, [], 'messages used in both directions (give each direction its own message)')

  const mixed = msgs.filter((m) => m.v2 !== m.operationV2).map((m) => `${m.operation} → ${m.key} (message ${m.v2 ? 'v2-only' : 'v1'})`)
  t.same(mixed, [], 'v2-only messages are exactly those of operations marked x-protocol: v2')
})

t.test('every message declares its frame type, consistently with its payload', async (t) => {
  const wrong: string[] = []
  const all = new Map<string, Obj>()
  for (const [key, message] of Object.entries(sub(sub(root, 'components'), 'messages'))) all.set(`components/${key}`, derefObj(message))
  for (const m of msgs) all.set(m.ref, m.message)
  for (const [where, message] of all) {
    const frameType = message['x-frame-type']
    if (typeof frameType !== 'string' || frameType === '') {
      wrong.push(`${where}: no x-frame-type`)
      continue
    }
    if (message.name !== frameType) wrong.push(`${where}: name ${JSON.stringify(message.name)} is not its frame type ${frameType}`)
    const payload = derefObj(message.payload)
    if (message['x-text-frame'] === true) {
      if (payload.type !== 'string' || payload.const !== frameType) wrong.push(`${where}: a text frame's payload is the string ${frameType}`)
      if (message.contentType !== 'text/plain') wrong.push(`${where}: a text frame is text/plain`)
    } else if (message['x-bare-frame'] === true) {
      if (Object.hasOwn(sub(payload, 'properties'), 'type')) wrong.push(`${where}: a bare frame has no type field`)
    } else {
      const props = sub(payload, 'properties')
      const typeField = derefObj(props.type)
      if (payload.type !== 'object') wrong.push(`${where}: payload is not an object`)
      if (typeField.const !== frameType) wrong.push(`${where}: payload.type.const ${JSON.stringify(typeField.const)} is not ${frameType}`)
      if (!Array.isArray(payload.required) || !payload.required.includes('type')) wrong.push(`${where}: payload does not require type`)
      if (!Object.hasOwn(props, 'args')) wrong.push(`${where}: payload has no args`)
    }
  }
  t.same(wrong, [], 'messages whose x-frame-type, name or payload disagree')

  const duplicates: string[] = []
  for (const channel of ['chat', 'users'] as const) {
    for (const direction of ['client', 'server'] as const) {
      const types = framesOf(channel, direction).map((m) => m.frameType)
      for (const type of new Set(types)) if (types.filter((x) => x === type).length > 1) duplicates.push(`${channel} ${direction}: ${type}`)
    }
  }
  t.same(duplicates, [], 'one message per frame type, channel and direction')
})

t.test('frame types per channel and direction are exactly FRAME_TYPES', async (t) => {
  for (const socket of Object.keys(CHANNELS) as Socket[]) {
    for (const direction of ['client', 'server'] as const) {
      const channel = CHANNELS[socket]
      t.same(
        diff(FRAME_TYPES[socket][direction], typesOf(channel, direction)),
        AGREE,
        `${channel} ${direction} frames: FRAME_TYPES.${socket}.${direction} (code) vs the document`,
      )
    }
  }
})

t.test('client frames per version are exactly the v1 and v2 client-frame tables of both sockets', async (t) => {
  t.same(diff(Object.keys(ChatClientFrames), typesOf('chat', 'client', (m) => !m.v2)), AGREE, 'chat v1 client frames: ChatClientFrames vs the messages not marked v2')
  t.same(diff(Object.keys(ChatClientFramesV2), typesOf('chat', 'client')), AGREE, 'chat v2 client frames: ChatClientFramesV2 vs all chat client messages')
  t.same(diff(Object.keys(QueueClientFrames), typesOf('users', 'client', (m) => !m.v2)), AGREE, 'users v1 client frames: QueueClientFrames vs the messages not marked v2')
  t.same(diff(Object.keys(QueueClientFramesV2), typesOf('users', 'client')), AGREE, 'users v2 client frames: QueueClientFramesV2 vs all users client messages')
})

t.test('the heartbeat text frames are PING and PONGS on both channels', async (t) => {
  for (const channel of ['chat', 'users'] as const) {
    const text = (direction: Direction) => msgs.filter((m) => m.channel === channel && m.direction === direction && m.text).map((m) => m.frameType)
    t.same(diff([PING], text('server')), AGREE, `${channel}: the server sends ${PING}`)
    t.same(diff(Object.values(PONGS), text('client')), AGREE, `${channel}: clients answer with ${Object.values(PONGS).join(', ')}`)
  }
})

/** The constraints of one field, the same for a TypeBox schema and for the document. */
function constraints(schemaNode: unknown, side: 'code' | 'doc'): Obj {
  const s = side === 'doc' ? derefObj(schemaNode) : isObj(schemaNode) ? schemaNode : {}
  const out: Obj = {}
  const limits = ['pattern', 'minimum', 'maximum', 'minLength', 'maxLength']
  let type = s.type
  let values: unknown[] | undefined
  if (Array.isArray(s.anyOf)) {
    const members = s.anyOf.filter(isObj)
    type = sorted(members.map((m) => String(m.type))).join('|')
    // TypeBox writes a union of literals as anyOf [{const}, …], and a nullable
    // field (`T | null`) as anyOf [T, {type: null}]: the document writes
    // `enum`, and `type: [T, 'null']` with T's limits.
    if (members.every((m) => Object.hasOwn(m, 'const'))) values = members.map((m) => m.const)
    else for (const m of members) for (const key of limits) if (m[key] !== undefined) out[key] = m[key]
  }
  if (Object.hasOwn(s, 'const')) values = [s.const]
  if (Array.isArray(s.enum)) values = s.enum
  if (type !== undefined) out.type = Array.isArray(type) ? sorted(type.map(String)).join('|') : type
  if (values !== undefined) out.values = sorted(values.map(String))
  for (const key of limits) if (s[key] !== undefined) out[key] = s[key]
  const format = side === 'doc' ? (s['x-format'] ?? s.format) : s.format
  if (format !== undefined) out.format = format
  // The code's display-name format is 1 to MAX_NAME_LENGTH code points; the document spells that out.
  if (side === 'code' && format === 'display-name') Object.assign(out, { minLength: 1, maxLength: MAX_NAME_LENGTH })
  return out
}

t.test('client frame args match the TypeBox schemas field by field, per version', async (t) => {
  /** Each table, and the v1 table whose frame types are not v2-only. */
  const tables: [ChannelKey, Version, Record<string, unknown>, Record<string, unknown>][] = [
    ['chat', 1, ChatClientFrames, ChatClientFrames],
    ['chat', 2, ChatClientFramesV2, ChatClientFrames],
    ['users', 1, QueueClientFrames, QueueClientFrames],
    ['users', 2, QueueClientFramesV2, QueueClientFrames],
  ]
  for (const [channel, version, table, v1Table] of tables) {
    for (const [type, codeSchemaNode] of Object.entries(table)) {
      const m = messageFor(channel, 'client', type)
      if (m === undefined) {
        t.fail(`${channel} v${version} ${type}: no client message in the document`)
        continue
      }
      const codeSchema = isObj(codeSchemaNode) ? codeSchemaNode : {}
      const args = argsSchema(m)
      const docProps = viewProperties(args, version)
      const codeProps = isObj(codeSchema.properties) ? codeSchema.properties : {}
      t.same(diff(Object.keys(codeProps), Object.keys(docProps)), AGREE, `${channel} v${version} ${type} (${m.key}): fields`)
      t.same(
        diff(Array.isArray(codeSchema.required) ? (codeSchema.required as string[]) : [], viewRequired(args, version)),
        AGREE,
        `${channel} v${version} ${type} (${m.key}): required fields`,
      )
      for (const [name, field] of Object.entries(codeProps)) {
        if (docProps[name] === undefined) continue
        t.same(constraints(docProps[name], 'doc'), constraints(field, 'code'), `${channel} v${version} ${type}.args.${name}: type and limits`)
      }
      if (version === 2 && !Object.hasOwn(v1Table, type)) {
        t.ok(m.v2, `${channel} ${type} is not a v1 frame, so its message is marked x-protocol: v2`)
      }
    }
  }
})

// ---------------------------------------------------------------- what the encoders send

const USER_ID = '9d6d2db0cdb84d8ba67105670d94d641'
const SUPPORT_ID = '7c270542e64a4dfbb2bc1c7793746674'
const CHAT_ID = 'd2464b5386044daf9e36ffd414260f67'
const MESSAGE_ID = '5f0c8a3e9b7d4c21a6e0f3b8d2c1a907'
const TIMESTAMP = '2026-11-25T10:49:53.123Z'
const visitor = { username: 'Nika', userId: USER_ID, chatId: CHAT_ID }
const v1Args = encode.chatMessageArgs({ userId: USER_ID, supportId: SUPPORT_ID, content: 'Hey', timestamp: TIMESTAMP, from: 'User' })
/** A stored message as libs/domain's append script builds it: the v1 args, then seq, messageId and clientMessageId. */
const storedWithClientId = `${v1Args.slice(0, -1)},"seq":3,"messageId":"${MESSAGE_ID}","clientMessageId":"c-17"}`
const storedPlain = `${v1Args.slice(0, -1)},"seq":4,"messageId":"${MESSAGE_ID}"}`

interface Sample {
  text: string
  /** The sockets that get this frame. */
  channels: ChannelKey[]
  /** A v1 frame that v2 sockets get unchanged. */
  alsoV2?: boolean
}
type Samples<E> = { [K in keyof E]: Sample[] | { notAFrame: string } }

const serverV1: Samples<typeof encode> = {
  // v2 agents get the queued forms instead (encodeV2.queuedVisitor / userJoinedQueued); the chat's UserJoined is the same for both.
  visitor: [{ text: encode.visitor(visitor), channels: ['users'] }],
  userJoined: [
    { text: encode.userJoined(visitor), channels: ['chat'], alsoV2: true },
    { text: encode.userJoined(visitor), channels: ['users'] },
  ],
  supportJoinedUser: [
    {
      text: encode.supportJoinedUser({ supportId: SUPPORT_ID, supportUserName: 'Vika', username: 'Nika', userId: USER_ID, chatId: CHAT_ID }),
      channels: ['chat'],
      alsoV2: true,
    },
  ],
  chatMessageArgs: { notAFrame: 'the args of a stored message; sent through chatMessageFromStored' },
  chatMessageFromStored: [{ text: encode.chatMessageFromStored(storedWithClientId), channels: ['chat'] }],
  chatHistoryFromStored: [{ text: encode.chatHistoryFromStored(visitor, [storedWithClientId, storedPlain]), channels: ['chat'] }],
  chatExpired: [{ text: encode.chatExpired(CHAT_ID), channels: ['chat'], alsoV2: true }],
  removeUser: [{ text: encode.removeUser(USER_ID), channels: ['users'], alsoV2: true }],
  error: [{ text: encode.error('ALREADY_CLAIMED', Errors.ALREADY_CLAIMED.message), channels: ['chat', 'users'], alsoV2: true }],
}

const serverV2: Samples<typeof encodeV2> = {
  chatMessageFromStored: [
    { text: encodeV2.chatMessageFromStored(storedWithClientId), channels: ['chat'] },
    { text: encodeV2.chatMessageFromStored(storedPlain), channels: ['chat'] },
  ],
  chatHistory: [{ text: encodeV2.chatHistory(visitor, [storedWithClientId, storedPlain], 3, true), channels: ['chat'] }],
  chatHistoryPage: [{ text: encodeV2.chatHistoryPage([storedPlain, storedWithClientId], false), channels: ['chat'] }],
  receipt: [
    { text: encodeV2.receipt(CHAT_ID, 3, 'delivered', 'User'), channels: ['chat'] },
    { text: encodeV2.receipt(CHAT_ID, 3, 'read', 'Support'), channels: ['chat'] },
  ],
  unreadCount: [{ text: encodeV2.unreadCount(CHAT_ID, 2), channels: ['chat'] }],
  chatExpiring: [{ text: encodeV2.chatExpiring(CHAT_ID, 30), channels: ['chat'] }],
  ack: [{ text: encodeV2.ack({ clientMessageId: 'c-17', messageId: MESSAGE_ID, seq: 3, timestamp: TIMESTAMP }), channels: ['chat'] }],
  typing: [{ text: encodeV2.typing(CHAT_ID, 'Support', 'start'), channels: ['chat'] }],
  chatEnded: [
    { text: encodeV2.chatEnded(CHAT_ID, 'User', 'Solved'), channels: ['chat'] },
    { text: encodeV2.chatEnded(CHAT_ID, 'Support', null), channels: ['chat'] },
  ],
  errorFor: [{ text: encodeV2.errorFor('MESSAGE_TOO_LONG', Errors.MESSAGE_TOO_LONG.message, 'c-17'), channels: ['chat'] }],
  agentsOnline: [
    {
      text: encodeV2.agentsOnline([
        { agentId: 'agent-3', name: 'Ana', status: 'away', activeChats: 0 },
        { agentId: 'agent-7', name: 'Vika', status: 'online', activeChats: 2 },
      ]),
      channels: ['users'],
    },
    { text: encodeV2.agentsOnline([]), channels: ['users'] },
  ],
  myChats: [
    { text: encodeV2.myChats([{ chatId: CHAT_ID, userId: USER_ID, username: 'Nika', since: TIMESTAMP, unread: 2 }]), channels: ['users'] },
    { text: encodeV2.myChats([]), channels: ['users'] },
  ],
  chatAssigned: [{ text: encodeV2.chatAssigned({ chatId: CHAT_ID, userId: USER_ID, username: 'Nika', fromAgentId: 'agent-3' }), channels: ['users'] }],
  chatUnassigned: [
    { text: encodeV2.chatUnassigned(CHAT_ID, 'agent-7'), channels: ['chat', 'users'] },
    { text: encodeV2.chatUnassigned(CHAT_ID, null), channels: ['chat', 'users'] },
  ],
  queuePosition: [
    { text: encodeV2.queuePosition({ chatId: CHAT_ID, position: 2, waiting: 3, estimatedWaitSeconds: 95 }), channels: ['chat'] },
    { text: encodeV2.queuePosition({ chatId: CHAT_ID, position: 1, waiting: 1, estimatedWaitSeconds: null }), channels: ['chat'] },
  ],
  queuedVisitor: [
    { text: encodeV2.queuedVisitor({ ...visitor, since: TIMESTAMP, order: 17 }), channels: ['users'] },
    // put back in the queue by a transfer: ahead of everyone
    { text: encodeV2.queuedVisitor({ ...visitor, since: TIMESTAMP, order: -1 }), channels: ['users'] },
  ],
  userJoinedQueued: [{ text: encodeV2.userJoinedQueued({ ...visitor, since: TIMESTAMP, order: 17 }), channels: ['users'] }],
}

const clientV1: Samples<typeof encodeClient> = {
  join: [
    { text: encodeClient.join({ userId: USER_ID, username: 'Nika', from: 'User' }), channels: ['chat'] },
    { text: encodeClient.join({ userId: USER_ID, supportId: SUPPORT_ID, username: 'Nika', supportUserName: 'Vika', from: 'Support' }), channels: ['chat'] },
  ],
  chatMessage: [
    { text: encodeClient.chatMessage({ userId: USER_ID, supportId: SUPPORT_ID, supportUserName: 'Vika', content: 'Hello', from: 'Support' }), channels: ['chat'] },
  ],
  load: [{ text: encodeClient.load(), channels: ['users'] }],
  joinUser: [{ text: encodeClient.joinUser({ userId: USER_ID, chatId: CHAT_ID, username: 'Nika' }), channels: ['users'] }],
}

/**
 * v2-only client frames have no encoder in libs/protocol (clients build them
 * from the exported arg types): samples of their args, typed by the TypeBox
 * schemas, one entry per v2-only frame type of each socket.
 */
type V2OnlyArgs<V2 extends Record<string, TSchema>, V1> = { [K in Exclude<keyof V2, keyof V1>]: Static<V2[K]>[] }
const chatClientV2: V2OnlyArgs<typeof ChatClientFramesV2, typeof ChatClientFrames> = {
  LoadMore: [{ beforeSeq: 12 }, { beforeSeq: 12, limit: 50 }],
  Typing: [{ state: 'start' }, { state: 'stop' }],
  Received: [{ seq: 3 }],
  Read: [{ seq: 3 }],
  EndChat: [{}, { reason: 'Solved' }],
}
const queueClientV2: V2OnlyArgs<typeof QueueClientFramesV2, typeof QueueClientFrames> = {
  SetStatus: [{ status: 'online' }, { status: 'away' }],
  TransferChat: [
    { chatId: CHAT_ID, toAgentId: 'agent-7' },
    { chatId: CHAT_ID, toAgentId: null },
  ],
}
const clientV2: { channel: ChannelKey; v1: Record<string, TSchema>; v2: Record<string, TSchema>; samples: Record<string, unknown[]> }[] = [
  { channel: 'chat', v1: ChatClientFrames, v2: ChatClientFramesV2, samples: chatClientV2 },
  { channel: 'users', v1: QueueClientFrames, v2: QueueClientFramesV2, samples: queueClientV2 },
]

/** The samples of one encoder table, and the encoders that have none (a new encoder needs a sample here). */
function samplesOf<E extends object>(encoders: E, samples: Samples<E>): { samples: Sample[]; keys: ReturnType<typeof diff> } {
  return {
    samples: Object.values(samples).flatMap((s) => (Array.isArray(s) ? (s as Sample[]) : [])),
    keys: diff(Object.keys(encoders), Object.keys(samples)),
  }
}

interface Checked {
  errors: string[]
  /** `channel/messageKey/vN` → the documented paths the samples had. */
  seen: Map<string, Map<string, number>>
  /** channel → frame types sent by v1 encoders. */
  v1Types: Map<ChannelKey, Set<string>>
}

function checkSamples(samples: Sample[], direction: Direction, version: Version, into: Checked): void {
  for (const sample of samples) {
    const frame: unknown = JSON.parse(sample.text)
    const bare = isObj(frame) && !Object.hasOwn(frame, 'type')
    const type = bare ? 'Visitor' : isObj(frame) ? String(frame.type) : ''
    for (const channel of sample.channels) {
      const m = messageFor(channel, direction, type)
      if (m === undefined) {
        into.errors.push(`${channel} ${direction} ${type}: sent by the code, no message in the document (${sample.text})`)
        continue
      }
      for (const v of sample.alsoV2 ? ([1, 2] as const) : [version]) {
        if (v === 1 && m.v2) into.errors.push(`${channel} ${m.key}: marked v2-only, but a v1 encoder sends it`)
        if (v === 1 && direction === 'server') into.v1Types.get(channel)?.add(type)
        const seen = into.seen.get(`${channel}/${m.key}/v${v}`) ?? new Map<string, number>()
        into.seen.set(`${channel}/${m.key}/v${v}`, seen)
        const errors: string[] = []
        validate(m.message.payload, frame, '$', v, errors, seen)
        into.errors.push(...errors.map((e) => `${channel} ${m.key} (v${v}) ${e} — in ${sample.text}`))
      }
    }
  }
}

t.test('every server frame the encoders produce matches its message, field for field, per version', async (t) => {
  const checked: Checked = { errors: [], seen: new Map(), v1Types: new Map([['chat', new Set()], ['users', new Set()]]) }
  const v1 = samplesOf(encode, serverV1)
  const v2 = samplesOf(encodeV2, serverV2)
  t.same(v1.keys, AGREE, 'every encode function has a sample here (onlyInCode: add one)')
  t.same(v2.keys, AGREE, 'every encodeV2 function has a sample here (onlyInCode: add one)')
  checkSamples(v1.samples, 'server', 1, checked)
  checkSamples(v2.samples, 'server', 2, checked)
  t.same(checked.errors, [], 'server frames that do not match the document')

  // Every documented field is one the code sends (no invented or stale fields), and
  // a field is required exactly when every sample has it, in each version.
  const uncovered: string[] = []
  const required: string[] = []
  for (const m of msgs.filter((m) => m.direction === 'server' && !m.text)) {
    for (const v of m.v2 ? ([2] as const) : ([1, 2] as const)) {
      const seen = checked.seen.get(`${m.channel}/${m.key}/v${v}`)
      if (seen === undefined) {
        uncovered.push(`${m.channel} ${m.key} (v${v}): no encoder sample produces it`)
        continue
      }
      for (const [path, schema] of documentedObjects(m.message.payload, '$', v, new Map())) {
        const objects = seen.get(`objects ${path}`) ?? 0
        const names = Object.keys(viewProperties(schema, v))
        for (const name of names) if (!seen.has(`${path}.${name}`)) uncovered.push(`${m.channel} ${m.key} (v${v}): ${path}.${name} is documented but never sent`)
        if (objects === 0) continue
        const always = names.filter((name) => seen.get(`${path}.${name}`) === objects)
        const d = diff(always, viewRequired(schema, v))
        if (d.onlyInCode.length > 0) required.push(`${m.channel} ${m.key} (v${v}) ${path}: always sent, not required: ${d.onlyInCode.join(', ')}`)
        if (d.onlyInDoc.length > 0) required.push(`${m.channel} ${m.key} (v${v}) ${path}: required, not always sent: ${d.onlyInDoc.join(', ')}`)
      }
    }
  }
  t.same(required, [], 'required lists of server frames vs the fields every sample has')
  t.same(uncovered, [], 'documented server fields no encoder sends')

  for (const channel of ['chat', 'users'] as const) {
    t.same(
      diff(checked.v1Types.get(channel) ?? [], typesOf(channel, 'server', (m) => !m.v2)),
      AGREE,
      `${channel}: the v1 server frames (made by encode) are exactly the messages not marked v2`,
    )
  }
})

t.test('every client frame encodeClient produces matches its v1 message', async (t) => {
  const checked: Checked = { errors: [], seen: new Map(), v1Types: new Map() }
  const v1 = samplesOf(encodeClient, clientV1)
  t.same(v1.keys, AGREE, 'every encodeClient function has a sample here (onlyInCode: add one)')
  checkSamples(v1.samples, 'client', 1, checked)
  t.same(checked.errors, [], 'client frames that do not match the document')
})

t.test('every v2-only client frame matches its v2 message, and the code parses it on v2 only', async (t) => {
  const checked: Checked = { errors: [], seen: new Map(), v1Types: new Map() }
  for (const { channel, v1, v2, samples } of clientV2) {
    const parseV1 = compileFrameParser(v1)
    const parseV2 = compileFrameParser(v2)
    const v2Only = Object.keys(v2).filter((type) => !Object.hasOwn(v1, type))
    t.same(diff(v2Only, Object.keys(samples)), AGREE, `${channel}: every v2-only client frame type has a sample here (onlyInCode: add one)`)
    for (const [type, list] of Object.entries(samples)) {
      for (const args of list) {
        const text = JSON.stringify({ type, args })
        t.same(parseV2.parse(text), { type, args }, `${channel} v2 parses ${text}`)
        t.throws(() => parseV1.parse(text), { name: 'ProtocolError', code: 'UNKNOWN_TYPE' }, `${channel} v1 refuses ${type}`)
        checkSamples([{ text, channels: [channel] }], 'client', 2, checked)
      }
    }
  }
  t.same(checked.errors, [], 'v2 client frames that do not match the document')
})

t.test('every example matches its message payload', async (t) => {
  const wrong: string[] = []
  let count = 0
  for (const [key, node] of Object.entries(sub(sub(root, 'components'), 'messages'))) {
    const message = derefObj(node)
    for (const example of Array.isArray(message.examples) ? message.examples : []) {
      if (!isObj(example) || !Object.hasOwn(example, 'payload')) continue
      count++
      const byVersion = ([1, 2] as const).map((v) => {
        const errors: string[] = []
        validate(message.payload, example.payload, '$', v, errors)
        return errors
      })
      if (byVersion.every((errors) => errors.length > 0)) wrong.push(`${key} ${String(example.name ?? '')}: ${byVersion.flat().join('; ')}`)
    }
  }
  t.ok(count > 0, 'the document has examples')
  t.same(wrong, [], 'examples that match neither the v1 nor the v2 payload')
})

t.test('Error.args.code lists exactly the codes of the Errors table, with their close codes and HTTP statuses', async (t) => {
  const errorMessages = msgs.filter((m) => m.frameType === 'Error')
  t.same(sorted(errorMessages.map((m) => m.channel)), ['chat', 'users'], 'both channels send Error')
  const codes = Object.keys(Errors)
  for (const m of errorMessages) {
    const code = derefObj(sub(argsSchema(m), 'properties').code)
    const values = Array.isArray(code.enum) ? code.enum.map(String) : []
    t.same(diff(codes, values), AGREE, `${m.channel} ${m.key}: args.code enum vs Errors`)
    t.same(diff(codes, Object.keys(sub(code, 'x-enum-descriptions'))), AGREE, `${m.channel} ${m.key}: every code is described (x-enum-descriptions)`)
    const closeCodes = Object.fromEntries(Object.entries(Errors).flatMap(([c, spec]) => ('closeCode' in spec ? [[c, spec.closeCode]] : [])))
    const httpStatus = Object.fromEntries(Object.entries(Errors).flatMap(([c, spec]) => ('httpStatus' in spec ? [[c, spec.httpStatus]] : [])))
    t.same(sub(code, 'x-close-codes'), closeCodes, `${m.channel} ${m.key}: x-close-codes vs Errors[code].closeCode`)
    t.same(sub(code, 'x-http-status'), httpStatus, `${m.channel} ${m.key}: x-http-status vs Errors[code].httpStatus`)
  }
})
