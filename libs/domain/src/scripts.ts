import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import './commands.js'

/*
 * Lua scripts, one per file in src/lua/ (shared fragments in src/lua/lib/):
 * each read-check-write runs atomically in Redis, and the PUBLISH that
 * announces a change runs in the same script, so the order in which
 * participants see events is the order in which Redis stored them, whichever
 * instance wrote them. Time comes from Redis (TIME), so every instance agrees
 * on when a chat expires. Every key a script touches comes in KEYS (see
 * test/script-keys.test.ts); a script publishes data or frames TypeScript
 * built, never frame JSON of its own. Their typed signatures: commands.ts.
 */

/**
 * The Lua sources are read from src/lua/ both when running from source
 * (src/scripts.ts) and when built (dist/scripts.js): `../src/lua/` from either.
 */
export const LUA_DIR = new URL('../src/lua/', import.meta.url)

const INCLUDE = /^--!include (\S+)\s*$/gm

/** A script's source with its `--!include lib/….lua` lines replaced by those files (once each, not nested). */
export function loadLua(file: string): string {
  const source = readFileSync(new URL(file, LUA_DIR), 'utf8')
  return source.replace(INCLUDE, (_line, included: string) => {
    if (!/^lib\/[a-z-]+\.lua$/.test(included)) throw new Error(`${file}: bad include ${included}`)
    return readFileSync(new URL(included, LUA_DIR), 'utf8').trimEnd()
  })
}

/** Each command: its file, and how many KEYS it takes (null: the caller passes the count first). */
export const scriptFiles = {
  sbEnqueue: { file: 'enqueue.lua', keys: 4 },
  sbClaim: { file: 'claim.lua', keys: 6 },
  sbJoinSupport: { file: 'join-support.lua', keys: 9 },
  sbAppendMessage: { file: 'append-message.lua', keys: 5 },
  sbHoldChat: { file: 'hold-chat.lua', keys: 1 },
  sbReceipt: { file: 'receipt.lua', keys: 4 },
  sbEndChat: { file: 'end-chat.lua', keys: 4 },
  sbWarnExpiring: { file: 'warn-expiring.lua', keys: 2 },
  sbTouchWaiting: { file: 'touch-waiting.lua', keys: 5 },
  sbExpire: { file: 'expire.lua', keys: 7 },
  sbTransfer: { file: 'transfer.lua', keys: 10 },
  sbPresenceRenew: { file: 'presence-renew.lua', keys: 3 },
  sbPresenceSweep: { file: 'presence-sweep.lua', keys: null },
  sbSetStatus: { file: 'set-status.lua', keys: 1 },
  sbWaitingVisitor: { file: 'waiting-visitor.lua', keys: 2 },
} as const satisfies Record<string, { file: string; keys: number | null }>

export type ScriptName = keyof typeof scriptFiles

/** Every script's source, read once. */
export const scriptSources: Record<ScriptName, string> = Object.fromEntries(
  Object.entries(scriptFiles).map(([name, { file }]) => [name, loadLua(file)]),
) as Record<ScriptName, string>

/** Registers every script on a client (EVALSHA, with EVAL on a cache miss), as the typed commands of commands.ts. */
export function defineScripts(redis: Redis): void {
  for (const [name, { keys }] of Object.entries(scriptFiles)) {
    redis.defineCommand(name, keys === null ? { lua: scriptSources[name as ScriptName] } : { numberOfKeys: keys, lua: scriptSources[name as ScriptName] })
  }
}
