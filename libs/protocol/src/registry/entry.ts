import { Type, OptionalKind, type Static, type TObject, type TSchema } from '@sinclair/typebox'

/** `chat` is ChatServer's /chat/{chatId}; `users` is Subscriber's /users. */
export type FrameSocket = 'chat' | 'users'
/** `client`: a frame clients send (the server receives it); `server`: a frame the server sends. */
export type FrameDirection = 'client' | 'server'

/**
 * One frame of the protocol: everything the parsers, the encoders, the
 * TypeScript types and the AsyncAPI document (scripts/gen-asyncapi.ts) know
 * about it. One type with two shapes (ChatMessage sent vs delivered, Error
 * with clientMessageId...) is two entries with the same `type` and their own `key`.
 */
export interface FrameEntry<
  T extends string = string,
  A extends TSchema = TSchema,
  S extends FrameSocket = FrameSocket,
  D extends FrameDirection = FrameDirection,
  V extends 1 | 2 = 1 | 2,
  R extends string = string,
> {
  /** The AsyncAPI message key (components/messages), unique. */
  readonly key: string
  /** The frame's `type` string ("Visitor" for the bare queue entry). */
  readonly type: T
  readonly sockets: readonly S[]
  readonly direction: D
  /** 1: seed 004 and v2 (fields marked x-protocol v2 only on v2); 2: v2 sockets only. */
  readonly since: V
  /** The args; property order is the order on the wire. */
  readonly args: A
  /** A bare frame: the args object alone, without {type, args} (the queue entries that answer Load). */
  readonly bare?: boolean
  /** `args` may be left out (Load). */
  readonly argsOptional?: boolean
  /** Fields v2 made optional that v1 frames still require (x-required-v1: ChatMessage.supportId). */
  readonly requiredV1?: readonly R[]
  /** One line for the AsyncAPI document; the longer prose is in scripts/asyncapi/template.yaml. */
  readonly summary: string
}

export function defineFrame<
  const T extends string,
  A extends TSchema,
  const S extends FrameSocket,
  const D extends FrameDirection,
  const V extends 1 | 2,
  const R extends string = never,
>(entry: FrameEntry<T, A, S, D, V, R>): FrameEntry<T, A, S, D, V, R> {
  return entry
}

/** The args type a v1 socket sends: the requiredV1 fields are required. */
type V1Static<S, R extends string> = { [K in keyof S as K extends R ? never : K]: S[K] } & { [K in keyof S & R]-?: Exclude<S[K], undefined> }
export type V1Args<A extends TSchema, R extends string> = [R] extends [never] ? A : Omit<A, 'static'> & { static: V1Static<A['static'], R>; params: unknown[] }

const isV2 = (s: TSchema): boolean => (s as Record<string, unknown>)['x-protocol'] === 'v2'

/** The args as a seed-004 (v1) socket has them: without the v2 fields, with x-required-v1 fields required. */
export function v1View<A extends TSchema, R extends string = never>(entry: FrameEntry<string, A, FrameSocket, FrameDirection, 1 | 2, R>): V1Args<A, R> {
  const schema = entry.args
  if (schema.type !== 'object' || schema.properties === undefined) return schema as V1Args<A, R>
  const object = schema as unknown as TObject
  const requiredV1 = new Set<string>(entry.requiredV1 ?? [])
  const props: Record<string, TSchema> = {}
  for (const [name, field] of Object.entries(object.properties)) {
    if (isV2(field)) continue
    if (requiredV1.has(name)) {
      const { [OptionalKind]: _optional, ...rest } = field as TSchema & { [OptionalKind]?: string }
      props[name] = rest as TSchema
    } else props[name] = field
  }
  const { properties: _p, required: _r, ...options } = object as unknown as Record<string, unknown>
  return Type.Object(props, options) as unknown as V1Args<A, R>
}

type Build = (value: unknown) => unknown

/** A function copying `value` into a new object in the schema's property order (nested objects and arrays too). */
function builder(schema: TSchema): Build | undefined {
  if (schema.type === 'object' && schema.properties !== undefined) {
    const fields = Object.entries((schema as unknown as TObject).properties).map(([name, field]) => [name, builder(field)] as const)
    return (value) => {
      const v = value as Record<string, unknown>
      const out: Record<string, unknown> = {}
      for (const [name, build] of fields) {
        const field = v[name]
        if (field !== undefined) out[name] = build === undefined || field === null ? field : build(field)
      }
      return out
    }
  }
  if (schema.type === 'array' && schema.items !== undefined) {
    const item = builder(schema.items as TSchema)
    return item === undefined ? undefined : (value) => (value as unknown[]).map(item)
  }
  return undefined
}

/** The args of an entry, serialised in wire order (fields the schema does not list are left out). */
export function argsEncoder<A extends TSchema>(entry: { readonly args: A }): (args: Static<A>) => string {
  const build = builder(entry.args) ?? ((v: unknown) => v)
  return (args) => JSON.stringify(build(args))
}

/** The whole frame `{"type","args"}` of an entry, in wire order. */
export function frameEncoder<A extends TSchema>(entry: { readonly type: string; readonly args: A }): (args: Static<A>) => string {
  const build = builder(entry.args) ?? ((v: unknown) => v)
  const type = entry.type
  return (args) => JSON.stringify({ type, args: build(args) })
}
