import t from 'tap'
import { Errors } from '@switchboard/protocol'
import { startStack, type TestSocket } from '@switchboard/testing'

/**
 * A seeded fuzzer against a live chat (visitor and agent joined): at least
 * 10,000 frames, each predicted by an oracle written from docs/protocol.md
 * (not from the server's code), sent in batches; every answer is checked
 * against the prediction, in order. Afterwards the server is healthy, no
 * promise was left rejected, no prototype was polluted, the fuzzed chat's
 * history is exactly the messages that were echoed, and an unrelated chat's
 * history is unchanged byte for byte.
 *
 * Reproduce a run with FUZZ_SEED=<seed printed below>; FUZZ_FRAMES sets the count.
 */

const MAX_FRAME_BYTES = 65_536
const MAX_MESSAGE_LENGTH = 4000
const TARGET_FRAMES = Number(process.env.FUZZ_FRAMES || 10_000)
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) >>> 0 : (Date.now() ^ Math.floor(Math.random() * 2 ** 32)) >>> 0

type Role = 'User' | 'Support'
type Ids = { userId: string; chatId: string; supportId: string }

// ------------------------------------------------------------------ PRNG

/** mulberry32: a tiny, fast, seedable PRNG; uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

// ------------------------------------------------------------------ the oracle (from docs/protocol.md)

/** What the server must do with one frame. */
type Outcome =
  | { kind: 'silent' } // pong:user / pong:support
  | { kind: 'close'; code: number } // the connection is closed with this code
  /** An Error frame with one of `codes`, or (when `echo` is set) the ChatMessage echo with this content. */
  | { kind: 'answer'; codes: string[]; echo?: string }
  /** A Join that succeeds on a socket that has not joined: ChatHistory, after SupportJoinedUser when `supportJoined`. */
  | { kind: 'join'; as: Role; supportJoined: boolean }
  /** The doc leaves this one open (a name over 64 characters before trimming, on a socket not joined yet): not sent. */
  | { kind: 'ambiguous' }

const ID = /^[0-9a-f]{32}$/
const CONTROL = /\p{Cc}/u
const isId = (v: unknown): v is string => typeof v === 'string' && ID.test(v)
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const own = (o: Record<string, unknown>, key: string): unknown => (Object.hasOwn(o, key) ? o[key] : undefined)

/** A name: 1 to 64 characters (code points), not blank, no control characters. 'maybe' where "trimmed" makes the doc ambiguous. */
function nameState(v: unknown): 'ok' | 'bad' | 'maybe' {
  if (typeof v !== 'string' || v.trim().length === 0 || CONTROL.test(v)) return 'bad'
  if ([...v].length <= 64) return 'ok'
  return [...v.trim()].length <= 64 ? 'maybe' : 'bad'
}
const optionalName = (v: unknown) => (v === undefined ? 'ok' : nameState(v))

/** `role`: what the socket joined as, or null for a socket that has not joined. */
function predict(data: string | Buffer, binary: boolean, role: Role | null, chat: Ids): Outcome {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  if (bytes.length > MAX_FRAME_BYTES) return { kind: 'close', code: 1009 }
  if (binary) return { kind: 'answer', codes: ['BINARY_NOT_SUPPORTED'] }
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes)
  } catch {
    return { kind: 'close', code: 1007 }
  }
  if (text === 'pong:user' || text === 'pong:support') return { kind: 'silent' }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { kind: 'answer', codes: ['INVALID_JSON'] }
  }
  if (!isObject(value)) return { kind: 'answer', codes: ['INVALID_FRAME'] }
  const type = own(value, 'type')
  if (typeof type !== 'string') return { kind: 'answer', codes: ['INVALID_FRAME'] }
  if (type !== 'Join' && type !== 'ChatMessage') return { kind: 'answer', codes: ['UNKNOWN_TYPE'] }
  const args = own(value, 'args') === undefined ? {} : own(value, 'args')
  if (!isObject(args)) return { kind: 'answer', codes: ['INVALID_FRAME'] }
  const get = (k: string) => own(args, k)

  if (type === 'Join') {
    const from = get('from')
    const supportId = get('supportId')
    const states = [nameState(get('username')), optionalName(get('supportUserName'))]
    const fixedOk = isId(get('userId')) && (from === 'User' || from === 'Support') && (supportId === undefined || isId(supportId))
    if (!fixedOk || states.includes('bad')) return { kind: 'answer', codes: ['INVALID_FRAME'] }
    // A socket that has joined already: a well-formed Join is ALREADY_JOINED.
    if (role !== null) return { kind: 'answer', codes: states.includes('maybe') ? ['ALREADY_JOINED', 'INVALID_FRAME'] : ['ALREADY_JOINED'] }
    if (states.includes('maybe')) return { kind: 'ambiguous' }
    const codes = new Set<string>()
    if (get('userId') !== chat.userId) codes.add('IDENTITY_MISMATCH')
    if (supportId !== undefined && supportId !== chat.supportId) codes.add('IDENTITY_MISMATCH')
    // Without supportId an agent joins for the first time: it needs a name, and this chat has an agent already.
    if (supportId === undefined && from === 'Support') codes.add(get('supportUserName') === undefined ? 'INVALID_FRAME' : 'ALREADY_CLAIMED')
    if (codes.size > 0) return { kind: 'answer', codes: [...codes] }
    // A re-join with the supportId gets the history; a visitor without it learns it again first.
    return { kind: 'join', as: from as Role, supportJoined: supportId === undefined }
  }

  // ChatMessage
  const content = get('content')
  const shapeOk =
    isId(get('userId')) &&
    isId(get('supportId')) &&
    typeof content === 'string' &&
    content.length >= 1 &&
    (get('from') === 'User' || get('from') === 'Support')
  const sun = optionalName(get('supportUserName'))
  if (!shapeOk || sun === 'bad') return { kind: 'answer', codes: ['INVALID_FRAME'] }
  if (role === null) return { kind: 'answer', codes: sun === 'maybe' ? ['NOT_JOINED', 'INVALID_FRAME'] : ['NOT_JOINED'] }
  const codes: string[] = []
  if (get('from') !== role || get('userId') !== chat.userId || get('supportId') !== chat.supportId) codes.push('IDENTITY_MISMATCH')
  const units = (content as string).length
  const points = [...(content as string)].length
  if (units > MAX_MESSAGE_LENGTH && points > MAX_MESSAGE_LENGTH) codes.push('MESSAGE_TOO_LONG')
  if (codes.length > 0) {
    if (sun === 'maybe') codes.push('INVALID_FRAME')
    return { kind: 'answer', codes }
  }
  // Valid: stored and echoed, unless the doc's ambiguities say otherwise.
  const alternatives: string[] = []
  if (units > MAX_MESSAGE_LENGTH || points > MAX_MESSAGE_LENGTH) alternatives.push('MESSAGE_TOO_LONG')
  if (sun === 'maybe') alternatives.push('INVALID_FRAME')
  return { kind: 'answer', codes: alternatives, echo: content as string }
}

// ------------------------------------------------------------------ the generator

interface FuzzFrame {
  data: string | Buffer
  binary: boolean
  /** What kind of frame, for counts and failure messages. */
  label: string
}

const PIECES = [
  'a', 'Nika', 'Vika', ' ', '  ', '\t', '\n', '\r\n', '\u0000', '\u0007', '\u001b', '\u001f', '\u007f', '\u0085', '\u009f',
  '\u00a0', '\u200b', '\u200e', '\u202e', '\u2028', '\u2029', '\ufeff', '\ufffd', '\ud800', '\udfff', '😀', '👩‍👩‍👧', 'é',
  'e\u0301', 'Ł', '中文', 'עברית', 'ﷺ', '"', "'", '\\', '/', '<script>alert(1)</script>', '{', '}', '[', ']', ',', ':',
  '__proto__', 'constructor', 'prototype', 'null', 'undefined', 'NaN', 'pong:user', 'ping', '%00', '%s%n', '${x}', '0',
]
const KEYS = [
  'type', 'args', 'userId', 'supportId', 'content', 'from', 'username', 'supportUserName', 'chatId', 'timestamp',
  '__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '', ' ', 'Type', 'ARGS', '😀',
]
const TYPES = [
  'Join', 'ChatMessage', 'join', 'JOIN', 'chatmessage', 'ChatMessage ', ' Join', 'Join\u0000', 'Load', 'JoinUser',
  'UserJoined', 'ChatHistory', 'Error', 'ping', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '', 'Ｊｏｉｎ',
]

/** Sets an own, enumerable property, even one named __proto__ (plain assignment would set the prototype). */
function put(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
}

class Fuzzer {
  readonly rng: () => number
  constructor(
    seed: number,
    private readonly chat: Ids,
    private readonly other: Ids,
  ) {
    this.rng = mulberry32(seed)
  }

  int(n: number): number {
    return Math.floor(this.rng() * n)
  }
  chance(p: number): boolean {
    return this.rng() < p
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!
  }

  string(maxPieces = 12): string {
    const r = this.rng()
    if (r < 0.06) return ''
    if (r < 0.3) {
      let s = ''
      const n = 1 + this.int(60)
      for (let i = 0; i < n; i++) s += String.fromCharCode(32 + this.int(95))
      return s
    }
    if (r < 0.4) return this.id()
    if (r < 0.45) return this.pick(PIECES).repeat(1 + this.int(200))
    let s = ''
    const n = 1 + this.int(maxPieces)
    for (let i = 0; i < n; i++) s += this.pick(PIECES)
    return s
  }

  /** Ids: right, wrong, the other chat's, almost right. */
  id(): string {
    const right = this.pick([this.chat.userId, this.chat.supportId, this.chat.chatId])
    switch (this.int(9)) {
      case 0:
        return right
      case 1:
        return this.pick([this.other.userId, this.other.supportId, this.other.chatId])
      case 2:
        return right.toUpperCase()
      case 3:
        return right.slice(1)
      case 4:
        return `${right}0`
      case 5:
        return ` ${right}`
      case 6:
        return `${right}\n`
      case 7:
        return Array.from({ length: 32 }, () => '0123456789abcdef'[this.int(16)]).join('')
      default:
        return right.replace(/[0-9]/, 'g')
    }
  }

  number(): number {
    return this.pick([0, -0, 1, -1, 42, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308, 5e-324, 0.1, this.rng() * 1e6])
  }

  json(depth = 0): unknown {
    const r = this.rng()
    if (depth > 3 || r < 0.35) {
      const s = this.rng()
      if (s < 0.15) return null
      if (s < 0.25) return this.chance(0.5)
      if (s < 0.5) return this.number()
      return this.string()
    }
    if (r < 0.6) return Array.from({ length: this.int(5) }, () => this.json(depth + 1))
    const o: Record<string, unknown> = {}
    const n = this.int(6)
    for (let i = 0; i < n; i++) put(o, this.chance(0.7) ? this.pick(KEYS) : this.string(3), this.json(depth + 1))
    return o
  }

  /** A well-formed frame for one side of the fuzzed chat. */
  valid(role: Role): Record<string, unknown> {
    if (this.chance(0.6)) {
      const args: Record<string, unknown> = { userId: this.chat.userId, supportId: this.chat.supportId, content: this.content(), from: role }
      if (role === 'Support' && this.chance(0.3)) args.supportUserName = 'Vika'
      return { type: 'ChatMessage', args }
    }
    const args: Record<string, unknown> = { userId: this.chat.userId, username: 'Nika', from: role }
    if (this.chance(0.7)) args.supportId = this.chat.supportId
    if (role === 'Support') args.supportUserName = 'Vika'
    return { type: 'Join', args }
  }

  content(): string {
    const s = this.string()
    return s.length > 0 ? s : 'x'
  }

  mutate(frame: Record<string, unknown>): void {
    const args = isObject(frame.args) ? frame.args : undefined
    const fields = args ? Object.keys(args) : []
    const field = fields.length > 0 ? this.pick(fields) : 'content'
    switch (this.int(14)) {
      case 0: // drop a field
        if (args && this.chance(0.8)) delete args[field]
        else delete frame[this.pick(['type', 'args'])]
        return
      case 1: // rename a field
        if (args) {
          const value = args[field]
          delete args[field]
          put(args, this.pick([field.toUpperCase(), `${field} `, `${field}_`, field.slice(1), this.pick(KEYS)]), value)
        }
        return
      case 2: // retype a field
        if (args) put(args, field, this.pick([null, 0, true, [], {}, [args[field]], { value: args[field] }, this.json()]))
        return
      case 3: // wrong ids
        if (args) put(args, this.pick(['userId', 'supportId']), this.id())
        return
      case 4: // odd strings
        if (args) put(args, this.pick(['content', 'username', 'supportUserName', field]), this.string(30))
        return
      case 5: // a long content, around or over the limit
        if (args) put(args, 'content', this.pick(['x', 'é', '😀', 'ab ']).repeat(this.pick([1000, 1999, 2000, 3999, 4000, 4001, 5000, 12_000])))
        return
      case 6: // the type
        frame.type = this.chance(0.8) ? this.pick(TYPES) : this.json()
        return
      case 7: // the sender
        if (args) args.from = this.pick(['User', 'Support', 'user', 'SUPPORT', 'Admin', '', null, ['User'], 'User\u0000'])
        return
      case 8: // extra fields, which are ignored
        if (args) put(args, this.chance(0.5) ? this.pick(KEYS) : this.string(2), this.json())
        else put(frame, this.pick(KEYS), this.json())
        return
      case 9: // args of another kind
        frame.args = this.pick([null, [], [args], 'args', 0, true, { args }])
        return
      case 10: // prototype pollution attempts
        put(args ?? frame, this.pick(['__proto__', 'constructor', 'prototype']), this.pick([
          { polluted: 'yes', content: 'from the prototype', userId: this.chat.userId },
          { prototype: { polluted: 'yes' } },
          null,
        ]))
        return
      case 11: // deep nesting in a field
        if (args) {
          let nested: unknown = this.json()
          for (let i = 0, n = 10 + this.int(500); i < n; i++) nested = this.chance(0.5) ? [nested] : { a: nested }
          put(args, this.chance(0.5) ? field : 'extra', nested)
        }
        return
      case 12: // an empty string where a name or content goes
        if (args) put(args, this.pick(['content', 'username', 'supportUserName']), this.pick(['', ' ', '\t', '\u00a0', '\u200b']))
        return
      default: // a name at the length limit
        if (args) put(args, this.pick(['username', 'supportUserName']), this.pick(['N', '😀', 'é']).repeat(this.pick([63, 64, 65])) + this.pick(['', ' ', '  ']))
    }
  }

  /** One frame to send on the socket of `role`. */
  next(role: Role): FuzzFrame {
    const r = this.rng()
    if (r < 0.14) return { data: JSON.stringify(this.json()), binary: false, label: 'random JSON' }
    if (r < 0.5) {
      const frame = this.valid(this.chance(0.85) ? role : role === 'User' ? 'Support' : 'User')
      for (let i = 0, n = 1 + this.int(3); i < n; i++) this.mutate(frame)
      return { data: JSON.stringify(frame), binary: false, label: 'mutated frame' }
    }
    if (r < 0.56) return { data: JSON.stringify(this.valid(role)), binary: false, label: 'valid frame' }
    if (r < 0.62) return { data: this.duplicateKeys(role), binary: false, label: 'duplicate keys' }
    if (r < 0.72) return { data: this.invalidJson(role), binary: false, label: 'invalid JSON' }
    if (r < 0.77) return this.binary(role)
    if (r < 0.83) return { data: this.pick(['pong:user', 'pong:support', 'pong', 'PONG:user', 'pong:user ', ' pong:support', 'pong:User', 'pong:agent', 'ping', '"pong:user"', '']), binary: false, label: 'pong string' }
    if (r < 0.88) return { data: this.deep(role), binary: false, label: 'deep nesting' }
    if (r < 0.93) return { data: this.pollution(role), binary: false, label: 'prototype keys' }
    if (r < 0.96) return { data: this.huge(role), binary: false, label: 'huge string' }
    if (r < 0.9985) return { data: JSON.stringify(this.json()).slice(0, 1 + this.int(40)) || '{', binary: false, label: 'truncated JSON' }
    if (r < 0.9993) return { data: this.badUtf8(role), binary: false, label: 'invalid UTF-8' }
    return { data: `{"type":"ChatMessage","args":{"content":"${'x'.repeat(MAX_FRAME_BYTES)}"}}`, binary: this.chance(0.3), label: 'oversized' }
  }

  duplicateKeys(role: Role): string {
    const text = JSON.stringify(this.valid(role))
    const key = this.pick(['type', 'userId', 'supportId', 'content', 'from', 'args'])
    const value = JSON.stringify(this.chance(0.5) ? this.json() : this.pick(['Join', 'ChatMessage', this.id(), 'Support', 'User', this.content()]))
    // Before the original (the original wins) or after it (the duplicate wins).
    if (key === 'type' || key === 'args') {
      return this.chance(0.5) ? `{"${key}":${value},${text.slice(1)}` : `${text.slice(0, -1)},"${key}":${value}}`
    }
    return this.chance(0.5) ? text.replace('"args":{', `"args":{"${key}":${value},`) : text.replace(/\}\}$/, `,"${key}":${value}}}`)
  }

  invalidJson(role: Role): string {
    const text = JSON.stringify(this.valid(role))
    switch (this.int(10)) {
      case 0:
        return text.slice(0, this.int(text.length))
      case 1:
        return `${text}${this.pick(['x', ',', '}', ' {}', '\u0000'])}`
      case 2:
        return text.replaceAll('"', "'")
      case 3:
        return `\ufeff${text}`
      case 4:
        return text.replace(/\}\}$/, ',}}')
      case 5:
        return text.replace(/"content":"[^"]*"/, '"content":NaN').replace(/"username":"[^"]*"/, '"username":undefined')
      case 6:
        return `/* comment */${text}`
      case 7:
        return text.replace(/"(\w+)":/, '$1:')
      case 8:
        return this.string(20)
      default:
        return text.replace(/"content":"/, '"content":"\u0001\n')
    }
  }

  binary(role: Role): FuzzFrame {
    const r = this.int(3)
    const data =
      r === 0
        ? Buffer.from(JSON.stringify(this.valid(role)))
        : r === 1
          ? Buffer.alloc(0)
          : Buffer.from(Array.from({ length: 1 + this.int(300) }, () => this.int(256)))
    return { data, binary: true, label: 'binary' }
  }

  deep(role: Role): string {
    const arrays = this.chance(0.5)
    // Deep, but inside MAX_FRAME_BYTES: 2 bytes a level for arrays, 6 for objects.
    const depth = this.pick(arrays ? [100, 1000, 5000, 15_000] : [100, 1000, 5000, 10_000])
    const open = arrays ? '['.repeat(depth) : '{"a":'.repeat(depth)
    const close = open.startsWith('[') ? ']'.repeat(depth) : '}'.repeat(depth)
    const inner = open + (open.startsWith('[') ? '' : '1') + close
    const valid = JSON.stringify(this.valid(role))
    switch (this.int(5)) {
      case 0:
        return inner
      case 1:
        return `{"type":"ChatMessage","args":${inner}}`
      case 2:
        return valid.replace(/\}\}$/, `,"extra":${inner}}}`) // still valid: extra fields are ignored
      case 3:
        return valid.replace(/"from":/, `"from":${inner},"from2":`)
      default:
        return inner.slice(0, inner.length - 1 - this.int(depth))
    }
  }

  pollution(role: Role): string {
    const valid = JSON.stringify(this.valid(role))
    const payload = this.pick([
      '{"polluted":"yes"}',
      '{"type":"Join","args":{"userId":"x"}}',
      '{"prototype":{"polluted":"yes"}}',
      '{"content":"inherited","userId":"' + this.chat.userId + '"}',
    ])
    switch (this.int(6)) {
      case 0:
        return `{"__proto__":${payload}}`
      case 1:
        return `{"constructor":{"prototype":{"polluted":"yes"}},"type":"ChatMessage"}`
      case 2:
        return valid.replace('"args":{', `"args":{"__proto__":${payload},`)
      case 3:
        return valid.replace(/"content":"[^"]*",?/, '').replace('"args":{', `"args":{"__proto__":{"content":"from the prototype"},`)
      case 4:
        return `{"type":"${this.pick(['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__'])}","args":${payload}}`
      default:
        return valid.replace(/^\{/, `{"__proto__":${payload},`)
    }
  }

  huge(role: Role): string {
    const frame = this.valid(role)
    const size = this.pick([10_000, 30_000, 60_000])
    const piece = this.pick(['x', 'é', '😀', '\\u0000'])
    const s = piece.repeat(Math.floor(size / Buffer.byteLength(piece)))
    if (isObject(frame.args)) put(frame.args, this.pick(['content', 'username', 'supportUserName', 'pad']), s)
    const text = JSON.stringify(frame)
    return Buffer.byteLength(text) > MAX_FRAME_BYTES - 10 ? text.slice(0, MAX_FRAME_BYTES / 4) : text
  }

  badUtf8(role: Role): Buffer {
    const text = JSON.stringify(this.valid(role))
    const bad = this.pick([[0xff], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]])
    const at = this.int(text.length)
    return Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bad), Buffer.from(text.slice(at))])
  }
}

// ------------------------------------------------------------------ the run

t.test(`fuzzing a live chat (FUZZ_SEED=${SEED})`, async (t) => {
  t.comment(`FUZZ_SEED=${SEED} (set it to replay this run)`)
  const rejections: unknown[] = []
  const onRejection = (reason: unknown) => void rejections.push(reason)
  process.on('unhandledRejection', onRejection)
  t.teardown(() => void process.off('unhandledRejection', onRejection))
  const prototypesBefore = snapshotPrototypes()

  const stack = await startStack(t, {
    env: {
      AGENT_AUTH: 'off',
      RATE_LIMIT_PER_SECOND: '1000000',
      RATE_LIMIT_BURST: '1000000',
      MAX_FRAME_BYTES: String(MAX_FRAME_BYTES),
      MAX_MESSAGE_LENGTH: String(MAX_MESSAGE_LENGTH),
    },
  })
  const server = stack.chatServers[0]!

  /** A visitor and an agent joined on a chat, with the agent's supportId. */
  async function liveChat(visitorName: string, agentName: string) {
    const visitor = await stack.joinVisitor(visitorName)
    const url = `${server.ws}/chat/${visitor.chatId}`
    const user = await stack.socket(url, 'pong:user')
    user.send({ type: 'Join', args: { userId: visitor.userId, username: visitorName, from: 'User' } })
    await user.nextOfType('UserJoined')
    const agent = await stack.socket(url, 'pong:support')
    agent.send({ type: 'Join', args: { userId: visitor.userId, username: visitorName, supportUserName: agentName, from: 'Support' } })
    const supportId = (await agent.nextOfType('SupportJoinedUser')).json.args.supportId as string
    await user.nextOfType('SupportJoinedUser')
    return { ids: { userId: visitor.userId, chatId: visitor.chatId, supportId }, url, user, agent, name: visitorName }
  }

  const rejoin = (ids: Ids, name: string, role: Role) =>
    JSON.stringify({ type: 'Join', args: { userId: ids.userId, supportId: ids.supportId, username: name, from: role, ...(role === 'Support' ? { supportUserName: 'Vika' } : {}) } })

  async function historyText(url: string, ids: Ids, name: string): Promise<string> {
    const socket = await stack.socket(url)
    socket.send(rejoin(ids, name, 'User'))
    const answer = await socket.next()
    await socket.close()
    if (answer.json?.type !== 'ChatHistory') throw new Error(`expected ChatHistory, got ${answer.text.slice(0, 300)}`)
    return answer.text
  }

  // The unrelated chat: 5 messages, its sockets stay open through the fuzzing.
  const unrelated = await liveChat('Dodo', 'Kiku')
  for (let i = 0; i < 5; i++) {
    const from: Role = i % 2 === 0 ? 'User' : 'Support'
    const sender = from === 'User' ? unrelated.user : unrelated.agent
    sender.send({ type: 'ChatMessage', args: { userId: unrelated.ids.userId, supportId: unrelated.ids.supportId, content: `unrelated message ${i} ✓`, from } })
    await unrelated.user.nextOfType('ChatMessage')
    await unrelated.agent.nextOfType('ChatMessage')
  }
  const unrelatedBefore = await historyText(unrelated.url, unrelated.ids, 'Dodo')
  t.equal(JSON.parse(unrelatedBefore).args.messages.length, 5, 'the unrelated chat has 5 messages')

  // The fuzzed chat.
  const fuzzed = await liveChat('Nika', 'Vika')
  const F = fuzzed.ids
  const fuzzer = new Fuzzer(SEED, F, unrelated.ids)
  const sides: Record<Role, { socket: TestSocket }> = { User: { socket: fuzzed.user }, Support: { socket: fuzzed.agent } }
  /** The stored form (ChatMessage args) of every echo, in order: the fuzzed chat's history must be exactly this. */
  const stored: string[] = []
  const historyOfF = () =>
    `{"type":"ChatHistory","args":{"user":{"username":"Nika","userId":"${F.userId}","chatId":"${F.chatId}"},"messages":[${stored.join(',')}]}}`

  const stats = { frames: 0, batches: 0, echoes: 0, closes: 0, joins: 0, errors: {} as Record<string, number>, labels: {} as Record<string, number> }
  const problems: string[] = []
  const describe = (f: FuzzFrame) => `${f.label} ${f.binary ? '(binary) ' : ''}${JSON.stringify(typeof f.data === 'string' ? f.data.slice(0, 160) : `<${f.data.length} bytes ${f.data.subarray(0, 40).toString('hex')}>`)}`

  /**
   * Sends a batch on one side, or on both at once, and checks every answer.
   * Errors go to the sender, in the order of its frames; every echo goes to
   * both sockets, and both see the same echoes in the same (storage) order.
   * Returns false after a problem.
   */
  async function batch(plan: { role: Role; frames: FuzzFrame[] }[]): Promise<boolean> {
    const sockets = [sides.User.socket, sides.Support.socket] as const
    const from = sockets.map((s) => s.received.length)
    const lanes = plan.map(({ role, frames }) => ({
      role,
      frames,
      socket: sides[role].socket,
      outcomes: frames.map((f) => predict(f.data, f.binary, role, F)),
      sentinel: `Sentinel-${SEED}-${stats.batches++}`,
    }))
    // Both lanes' frames interleaved, as two busy clients would send them.
    const longest = Math.max(...lanes.map((l) => l.frames.length))
    for (let i = 0; i < longest; i++) for (const lane of lanes) if (i < lane.frames.length) lane.socket.ws.send(lane.frames[i]!.data, { binary: lane.frames[i]!.binary })
    for (const lane of lanes) lane.socket.send({ type: lane.sentinel })

    const isEcho = (m: { json: any }) => m.json?.type === 'ChatMessage'
    const newOn = (k: 0 | 1) => sockets[k].received.slice(from[k])
    let expectedEchoes = 0
    const errorsOf = new Map<Role, { text: string; json: any }[]>()
    for (const lane of lanes) {
      const k = lane.role === 'User' ? 0 : 1
      const isSentinel = (text: string) => text.startsWith('{"type":"Error"') && text.includes(`\\"${lane.sentinel}\\"`)
      const ok = await waitFor(lane.socket, () => newOn(k).some((m) => isSentinel(m.text)), `the answer to ${lane.sentinel}`)
      if (!ok.done) {
        problems.push(`${lane.sentinel}: ${ok.why}; frames: ${lane.frames.map(describe).join('\n  ').slice(0, 4000)}`)
        return false
      }
      const before = newOn(k).slice(0, newOn(k).findIndex((m) => isSentinel(m.text)))
      const errors = before.filter((m) => m.json?.type === 'Error')
      errorsOf.set(lane.role, errors)
      const answered = lane.outcomes.filter((o) => o.kind === 'answer').length
      if (answered < errors.length) {
        problems.push(`${lane.sentinel}: ${errors.length} Error frames for ${answered} frames that expect one answer each`)
        return false
      }
      expectedEchoes += answered - errors.length
    }
    for (const k of [0, 1] as const) {
      const got = await waitFor(sockets[k], () => newOn(k).filter(isEcho).length >= expectedEchoes, `${expectedEchoes} echoes`)
      if (!got.done) problems.push(`batch of ${lanes.map((l) => l.sentinel).join(' + ')}: ${got.why} on the ${k === 0 ? 'visitor' : 'agent'} (got ${newOn(k).filter(isEcho).length})`)
      const senders = new Set(lanes.map((l) => l.role))
      const strays = newOn(k).filter((m) => !isEcho(m) && !(m.json?.type === 'Error' && senders.has(k === 0 ? 'User' : 'Support')))
      if (strays.length > 0) problems.push(`${lanes.map((l) => l.sentinel).join(' + ')}: unexpected frames on the ${k === 0 ? 'visitor' : 'agent'}: ${strays.map((m) => m.text.slice(0, 200)).join(' | ')}`)
    }
    const echoes = newOn(0).filter(isEcho)
    const agentEchoes = newOn(1).filter(isEcho)
    if (agentEchoes.length !== echoes.length || agentEchoes.some((m, i) => m.text !== echoes[i]?.text)) {
      problems.push(`${lanes.map((l) => l.sentinel).join(' + ')}: the visitor and the agent did not get the same echoes in the same order`)
    }
    if (problems.length > 0) return false

    for (const lane of lanes) {
      // Walk the lane's frames in order: each answer takes its next Error or its next own echo.
      const errors = errorsOf.get(lane.role)!
      const own = echoes.filter((m) => m.json?.args?.from === lane.role)
      const choices = align(lane.outcomes, errors, own)
      let e = 0
      let c = 0
      lane.outcomes.forEach((o, i) => {
        if (o.kind !== 'answer') return
        const error = errors[e]
        const echo = own[c]
        const echoFits = o.echo !== undefined && echo !== undefined && echo.json?.args?.content === o.echo
        const errorFits = error !== undefined && o.codes.includes(error.json?.args?.code)
        // The alignment decides frames that could go either way; without one, the first fit is reported.
        const taken = choices ? choices[i] : echoFits ? 'echo' : errorFits ? 'error' : undefined
        if (taken === 'echo' && echo !== undefined) {
          c++
          const expected = JSON.stringify({
            type: 'ChatMessage',
            args: { userId: F.userId, supportId: F.supportId, content: o.echo, timestamp: echo.json.args.timestamp, from: lane.role },
          })
          if (echo.text !== expected) problems.push(`${lane.sentinel} #${i}: echo ${echo.text.slice(0, 300)} is not ${expected.slice(0, 300)}`)
          if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/.test(echo.json.args.timestamp)) problems.push(`${lane.sentinel} #${i}: timestamp ${echo.json.args.timestamp}`)
        } else if (taken === 'error' && error !== undefined) {
          e++
          const code = error.json.args.code as string
          stats.errors[code] = (stats.errors[code] ?? 0) + 1
          const exact = `{"type":"Error","args":{"code":${JSON.stringify(code)},"message":${JSON.stringify(error.json.args.message)}}}`
          if (error.text !== exact || typeof error.json.args.message !== 'string') problems.push(`${lane.sentinel} #${i}: malformed Error ${error.text.slice(0, 300)}`)
        } else {
          problems.push(
            `${lane.sentinel} #${i} ${describe(lane.frames[i]!)}: expected ${o.echo !== undefined ? 'the echo or ' : ''}an Error in [${o.codes.join(', ')}], ` +
              `next Error is ${error?.text.slice(0, 200) ?? 'none'}, next own echo is ${echo?.text.slice(0, 200) ?? 'none'}`,
          )
          // Skip past it so one surprise does not cascade.
          if (error !== undefined) e++
        }
      })
      if (e !== errors.length) problems.push(`${lane.sentinel}: ${errors.length - e} Error frames left over: ${errors.slice(e).map((m) => m.text.slice(0, 150)).join(' | ')}`)
      if (c !== own.length) problems.push(`${lane.sentinel}: ${own.length - c} echoes left over`)
    }
    // In storage order, which both sockets agree on.
    for (const echo of echoes) stored.push(echo.text.slice('{"type":"ChatMessage","args":'.length, -1))
    stats.echoes += echoes.length
    return problems.length === 0
  }

  /** A frame the connection must not survive: sent alone, then a new socket re-joins. */
  async function closing(role: Role, f: FuzzFrame, code: number): Promise<boolean> {
    const sender = sides[role].socket
    const before = sender.received.length
    sender.ws.send(f.data, { binary: f.binary })
    const closed = await Promise.race([sender.closed, new Promise<null>((r) => setTimeout(r, 5000, null).unref())])
    if (closed === null) {
      problems.push(`${describe(f)}: the socket is still open 5 s later; it should have been closed with ${code}`)
      return false
    }
    stats.closes++
    if (closed.code !== code) problems.push(`${describe(f)}: closed with ${closed.code}, expected ${code}`)
    if (sender.received.length !== before) problems.push(`${describe(f)}: answered ${sender.received.slice(before).map((m) => m.text.slice(0, 200)).join(' | ')} before closing`)
    const again = await stack.socket(fuzzed.url, role === 'User' ? 'pong:user' : 'pong:support')
    again.send(rejoin(F, 'Nika', role))
    const history = await again.next()
    if (history.text !== historyOfF()) problems.push(`re-join after ${describe(f)}: the history is not exactly the echoed messages: ${history.text.slice(0, 300)}`)
    sides[role].socket = again
    return problems.length === 0
  }

  /**
   * A batch on a fresh socket that has not joined: Joins are judged for real
   * (wrong ids, a second agent, …) and the batch ends at the first one that
   * joins, which must be answered with exactly the chat's history.
   */
  async function unjoinedBatch(size: number): Promise<boolean> {
    const socket = await stack.socket(fuzzed.url)
    const mainBefore = [sides.User.socket.received.length, sides.Support.socket.received.length]
    const frames: FuzzFrame[] = []
    const outcomes: Outcome[] = []
    // `size` frames that leave the socket unjoined, then (if one turns up soon) one that joins it.
    for (let tries = 0; tries < size + 1000 && outcomes.at(-1)?.kind !== 'join'; tries++) {
      const f = fuzzer.next(fuzzer.chance(0.5) ? 'User' : 'Support')
      const o = predict(f.data, f.binary, null, F)
      // Frames that close the socket are tried on joined sockets; ambiguous ones are not tried.
      if (o.kind === 'close' || o.kind === 'ambiguous') continue
      if ((o.kind === 'join') !== frames.length >= size) continue
      stats.labels[f.label] = (stats.labels[f.label] ?? 0) + 1
      stats.frames++
      frames.push(f)
      outcomes.push(o)
    }
    for (const f of frames) socket.ws.send(f.data, { binary: f.binary })
    const sentinel = `Sentinel-${SEED}-${stats.batches++}`
    socket.send({ type: sentinel })
    const isSentinel = (text: string) => text.startsWith('{"type":"Error"') && text.includes(`\\"${sentinel}\\"`)
    const ok = await waitFor(socket, () => socket.received.some((m) => isSentinel(m.text)), `the answer to ${sentinel}`)
    if (!ok.done) {
      problems.push(`${sentinel} (not joined): ${ok.why}; frames: ${frames.map(describe).join('\n  ').slice(0, 4000)}`)
      return false
    }
    const answers = socket.received.slice(0, socket.received.findIndex((m) => isSentinel(m.text)))
    let a = 0
    outcomes.forEach((o, i) => {
      if (o.kind === 'silent') return
      const expected: (string | RegExp)[] = []
      if (o.kind === 'join') {
        stats.joins++
        if (o.supportJoined) {
          expected.push(`{"type":"SupportJoinedUser","args":{"supportId":"${F.supportId}","supportUserName":"Vika","username":"Nika","userId":"${F.userId}","chatId":"${F.chatId}"}}`)
        }
        expected.push(historyOfF())
      } else if (o.kind === 'answer') {
        expected.push(new RegExp(`^\\{"type":"Error","args":\\{"code":"(${o.codes.join('|')})","message":"(?:[^"\\\\]|\\\\.)*"\\}\\}$`))
      }
      for (const want of expected) {
        const got = answers[a++]
        const fits = got !== undefined && (typeof want === 'string' ? got.text === want : want.test(got.text))
        if (!fits) {
          problems.push(`${sentinel} #${i} (not joined) ${describe(frames[i]!)}: expected ${String(want).slice(0, 300)}, got ${got?.text.slice(0, 300) ?? 'nothing'}`)
          return
        }
        if (got.json?.type === 'Error') stats.errors[got.json.args.code] = (stats.errors[got.json.args.code] ?? 0) + 1
      }
    })
    if (a !== answers.length) problems.push(`${sentinel} (not joined): ${answers.length - a} unexpected frames: ${answers.slice(a).map((m) => m.text.slice(0, 200)).join(' | ')}`)
    await socket.close()
    const mainAfter = [sides.User.socket.received.length, sides.Support.socket.received.length]
    if (mainAfter.some((n, i) => n !== mainBefore[i])) problems.push(`${sentinel} (not joined): the chat's own sockets got frames`)
    return problems.length === 0
  }

  const started = Date.now()
  run: while (stats.frames < TARGET_FRAMES) {
    if (fuzzer.chance(0.15)) {
      if (!(await unjoinedBatch(50 + fuzzer.int(150)))) break run
      continue
    }
    // One side, or both at once; a frame that must close its socket ends its lane and is sent after the batch.
    const roles: Role[] = fuzzer.chance(0.3) ? ['User', 'Support'] : [fuzzer.chance(0.5) ? 'User' : 'Support']
    const plan: { role: Role; frames: FuzzFrame[] }[] = []
    const closers: { role: Role; frame: FuzzFrame; code: number }[] = []
    for (const role of roles) {
      const size = 100 + fuzzer.int(300)
      const frames: FuzzFrame[] = []
      while (frames.length < size) {
        const f = fuzzer.next(role)
        stats.labels[f.label] = (stats.labels[f.label] ?? 0) + 1
        stats.frames++
        const o = predict(f.data, f.binary, role, F)
        if (o.kind === 'close') {
          closers.push({ role, frame: f, code: o.code })
          break
        }
        frames.push(f)
      }
      if (frames.length > 0) plan.push({ role, frames })
    }
    if (plan.length > 0 && !(await batch(plan))) break run
    for (const closer of closers) if (!(await closing(closer.role, closer.frame, closer.code))) break run
  }
  const elapsed = Date.now() - started

  t.comment(`seed ${SEED}: ${stats.frames} frames in ${stats.batches} batches, ${elapsed} ms; ${stats.echoes} echoes, ${stats.closes} closes, ${stats.joins} joins`)
  t.comment(`errors: ${JSON.stringify(stats.errors)}`)
  t.comment(`frames: ${JSON.stringify(stats.labels)}`)
  t.same(problems, [], `every frame got the answer the protocol says (FUZZ_SEED=${SEED})`)
  t.ok(stats.frames >= TARGET_FRAMES, `${stats.frames} frames sent`)
  t.ok(stats.echoes > 0, 'some frames were valid messages and were echoed')
  t.ok(stats.joins > 0, 'some frames joined a fresh socket')
  t.ok(Object.keys(stats.errors).length >= 6, `many kinds of errors were provoked: ${Object.keys(stats.errors).join(', ')}`)
  t.notOk(stats.errors.INTERNAL_ERROR, 'never INTERNAL_ERROR')

  await t.test('afterwards', async (t) => {
    const health = await fetch(`${server.http}/health`)
    t.equal(health.status, 200, 'GET /health 200')
    t.ok(server.app.server.listening, 'the server still listens')
    t.equal(await historyText(fuzzed.url, F, 'Nika'), historyOfF(), "the fuzzed chat's history is exactly the messages that were echoed")
    t.equal(await historyText(unrelated.url, unrelated.ids, 'Dodo'), unrelatedBefore, "the unrelated chat's history is unchanged, byte for byte")
    t.same(unrelated.user.unconsumed.map((m) => m.text), [], "the unrelated chat's visitor got nothing")
    t.same(unrelated.agent.unconsumed.map((m) => m.text), [], "the unrelated chat's agent got nothing")
    const visitor = await stack.joinVisitor('Zaza')
    const fresh = await stack.socket(`${server.ws}/chat/${visitor.chatId}`)
    fresh.send({ type: 'Join', args: { userId: visitor.userId, username: 'Zaza', from: 'User' } })
    t.equal((await fresh.next()).json?.type, 'UserJoined', 'a new visitor can still join')
    t.same(snapshotPrototypes(), prototypesBefore, 'no prototype was polluted')
    t.equal(({} as Record<string, unknown>).polluted, undefined)
    t.same(rejections.map(String), [], 'no unhandled promise rejection')
  })
})

/**
 * Matches a lane's frames to its answers: each frame that expects an answer
 * takes the next Error (if its code is one the frame allows) or the next
 * echo (if its content is the frame's). Frames the doc leaves open could go
 * either way, so this searches; null when no assignment explains the answers.
 */
function align(outcomes: Outcome[], errors: { json: any }[], echoes: { json: any }[]): ('error' | 'echo' | undefined)[] | null {
  const choices: ('error' | 'echo' | undefined)[] = []
  const failed = new Set<number>()
  const go = (i: number, e: number, c: number): boolean => {
    if (i === outcomes.length) return e === errors.length && c === echoes.length
    const key = i * 1_000_000 + e
    if (failed.has(key)) return false
    const o = outcomes[i]!
    if (o.kind !== 'answer') {
      choices[i] = undefined
      if (go(i + 1, e, c)) return true
    } else {
      if (o.echo !== undefined && c < echoes.length && echoes[c]!.json?.args?.content === o.echo) {
        choices[i] = 'echo'
        if (go(i + 1, e, c + 1)) return true
      }
      if (e < errors.length && o.codes.includes(errors[e]!.json?.args?.code)) {
        choices[i] = 'error'
        if (go(i + 1, e + 1, c)) return true
      }
    }
    failed.add(key)
    return false
  }
  return go(0, 0, 0) ? choices : null
}

/** Waits until `done()` holds, checking on every frame; false (with why) on close or after 5 s. */
function waitFor(socket: TestSocket, done: () => boolean, what: string, timeoutMs = 5000): Promise<{ done: true } | { done: false; why: string }> {
  if (done()) return Promise.resolve({ done: true })
  return new Promise((resolve) => {
    const finish = (result: { done: true } | { done: false; why: string }) => {
      clearTimeout(timer)
      socket.ws.off('message', onMessage)
      socket.ws.off('close', onClose)
      resolve(result)
    }
    const onMessage = () => {
      if (done()) finish({ done: true })
    }
    const onClose = (code: number) => finish({ done: false, why: `socket closed (${code}) while waiting for ${what}` })
    const timer = setTimeout(() => finish({ done: false, why: `timed out after ${timeoutMs} ms waiting for ${what}` }), timeoutMs)
    // Registered after TestSocket's own listener, so `received` is up to date when this runs.
    socket.ws.on('message', onMessage)
    socket.ws.on('close', onClose)
  })
}

function snapshotPrototypes(): Record<string, string[]> {
  return {
    Object: Object.getOwnPropertyNames(Object.prototype).sort(),
    Array: Object.getOwnPropertyNames(Array.prototype).sort(),
    Function: Object.getOwnPropertyNames(Function.prototype).sort(),
    String: Object.getOwnPropertyNames(String.prototype).sort(),
  }
}
