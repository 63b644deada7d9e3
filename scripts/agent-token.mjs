#!/usr/bin/env node
// npm run agent-token -- --name Vika [--id vika] [--ttl 8h]
// Prints an agent token signed with AGENT_JWT_SECRET (the secret the services use).
import { parseArgs } from 'node:util'
import { parseTtl, signAgentToken } from '@switchboard/server-kit'

const usage = 'usage: AGENT_JWT_SECRET=… npm run agent-token -- --name <display name> [--id <agent id>] [--ttl 8h]'
let values
try {
  ;({ values } = parseArgs({
    options: { name: { type: 'string' }, id: { type: 'string' }, ttl: { type: 'string', default: '8h' }, help: { type: 'boolean' } },
  }))
} catch (err) {
  console.error(`${err.message}\n${usage}`)
  process.exit(2)
}
if (values.help) {
  console.log(usage)
  process.exit(0)
}
const secret = process.env.AGENT_JWT_SECRET
if (!secret || secret.length < 32) {
  console.error('AGENT_JWT_SECRET must be set (at least 32 characters) to the secret the services use.')
  console.error('Without one, each start makes a random secret and prints a console link itself.')
  console.error(usage)
  process.exit(2)
}
const name = values.name?.trim()
if (!name) {
  console.error(`--name is required\n${usage}`)
  process.exit(2)
}
// A stable id by default, so the same person keeps the same identity across tokens.
const id = values.id?.trim() || name.toLowerCase().normalize('NFKD').replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'agent'
let ttlSeconds
try {
  ttlSeconds = parseTtl(values.ttl)
} catch (err) {
  console.error(err.message)
  process.exit(2)
}
process.stdout.write(`${await signAgentToken(secret, { id, name, ttlSeconds })}\n`)
