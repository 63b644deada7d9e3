import { buildApp } from './app.js'
import { listenOptions, loadConfig } from './config.js'
import { runServer } from '@switchboard/server-kit'

await runServer('chat-server', loadConfig, buildApp, listenOptions)
