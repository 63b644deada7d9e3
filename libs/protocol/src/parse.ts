import type { TSchema, Static } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { ProtocolError } from './errors.js'

/** A compiled table of the frame types one socket accepts. */
export interface FrameParser<Frame> {
  /** Parses one text frame, or throws a {@link ProtocolError}. */
  parse(text: string): Frame
}

type FrameOf<T extends Record<string, TSchema>> = {
  [K in keyof T & string]: { type: K; args: Static<T[K]> }
}[keyof T & string]

/**
 * Compiles `{type → args schema}` into a parser. Validators are compiled once,
 * at start, so parsing a frame costs one JSON.parse and one generated check.
 */
export function compileFrameParser<T extends Record<string, TSchema>>(table: T): FrameParser<FrameOf<T>> {
  const checks = new Map<string, TypeCheck<TSchema>>()
  for (const [type, schema] of Object.entries(table)) checks.set(type, TypeCompiler.Compile(schema))

  return {
    parse(text) {
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch {
        throw new ProtocolError('INVALID_JSON')
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new ProtocolError('INVALID_FRAME', 'A frame is a JSON object {"type", "args"}')
      }
      const { type, args = {} } = value as { type?: unknown; args?: unknown }
      if (typeof type !== 'string') {
        throw new ProtocolError('INVALID_FRAME', 'A frame needs a string "type"')
      }
      const check = checks.get(type)
      if (check === undefined) {
        throw new ProtocolError('UNKNOWN_TYPE', `Unknown frame type ${JSON.stringify(type.slice(0, 64))}; expected one of ${[...checks.keys()].join(', ')}`)
      }
      if (!check.Check(args)) {
        const first = check.Errors(args).First()
        const where = first?.path ? `args${first.path.replaceAll('/', '.')}` : 'args'
        throw new ProtocolError('INVALID_FRAME', `${type}: ${where}: ${first?.message ?? 'invalid'}`)
      }
      return { type, args } as FrameOf<T>
    },
  }
}
