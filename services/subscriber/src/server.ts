import { buildApp } from './app.js'
import { listenOptions, loadConfig } from './config.js'
import { runServer, signAgentToken } from '@switchboard/server-kit'

await runServer('subscriber', loadConfig, buildApp, listenOptions, async (app, config) => {
  const secret = app.agentAuth.generatedSecret
  if (secret === undefined) return
  // A start without a key prints a ready-to-open console link, as Jupyter does.
  const token = await signAgentToken(secret, { id: 'agent', name: 'Agent', ttlSeconds: 12 * 3600 })
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
  process.stderr.write(`\nAgent console (this process's random secret, valid 12 h): http://${host}:${config.subscriberPort}/?token=${token}\n\n`)
})
