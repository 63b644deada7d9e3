#!/usr/bin/env node
// npm run agent-token -- --name Vika [--id vika] [--ttl 8h]
// Prints an agent token signed with AGENT_JWT_SECRET (the secret the services
// use), else with the secret `npm start` keeps in its data directory.
import { parseArgs } from 'node:util'
import { parseTtl, signAgentToken } from '@switchboard/server-kit'
import { agentSecretFile, dataDir, readAgentSecret } from './data-dir.mjs'

const usage = 'usage: [AGENT_JWT_SECRET=…] npm run agent-token -- --name <display name> [--id <agent id>] [--ttl 8h]'
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
let secret = process.env.AGENT_JWT_SECRET
if (secret === undefined || secret === '') {
  try {
    secret = readAgentSecret(dataDir())
  } catch (err) {
    console.error(err.message)
    process.exit(2)
  }
  if (secret === undefined) {
    console.error(`There is no AGENT_JWT_SECRET and no ${agentSecretFile(dataDir())} yet.`)
    console.error('Run npm start once (it makes and keeps that secret), or set AGENT_JWT_SECRET to the secret the services use.')
    console.error(usage)
    process.exit(2)
  }
} else if (secret.length < 32) {
  console.error('AGENT_JWT_SECRET must be at least 32 characters: the secret the services use.')
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
