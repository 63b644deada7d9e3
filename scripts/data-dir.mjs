// The data directory of `npm start`: what has to outlive one run (the agent
// token secret, the private Redis's append-only file). Only the scripts use
// it; the services take everything from their environment.
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomSecret } from '@switchboard/server-kit'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** `SWITCHBOARD_DATA_DIR`, else `.switchboard/` in the repository (whatever the working directory). */
export function dataDir(env = process.env) {
  return resolve(env.SWITCHBOARD_DATA_DIR || join(root, '.switchboard'))
}

/** Creates the data directory (owner only: it holds a secret and every conversation) and returns it. */
export function ensureDataDir(dir) {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  return dir
}

/** Where the HS256 secret for agent tokens is kept. */
export const agentSecretFile = (dir) => join(dir, 'agent-jwt-secret')

/**
 * The kept agent-token secret, or undefined when none has been made yet.
 * Throws when the file exists but cannot be a secret the services accept.
 */
export function readAgentSecret(dir) {
  const file = agentSecretFile(dir)
  let secret
  try {
    secret = readFileSync(file, 'utf8').trim()
  } catch (err) {
    if (err.code === 'ENOENT') return undefined
    throw err
  }
  if (secret.length < 32) throw new Error(`${file} holds no usable secret (under 32 characters): delete it and npm start makes a new one`)
  // Anyone who can read it can sign in as any agent.
  if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600)
  return secret
}

/** The kept secret; on the first run a random one, written owner-only (0600). */
export function keptAgentSecret(dir) {
  const existing = readAgentSecret(dir)
  if (existing !== undefined) return { secret: existing, created: false }
  const secret = randomSecret()
  try {
    // wx: of two runs racing on a new directory, the second keeps the first one's secret.
    writeFileSync(agentSecretFile(dir), `${secret}\n`, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if (err.code === 'EEXIST') return { secret: readAgentSecret(dir), created: false }
    throw err
  }
  return { secret, created: true }
}
