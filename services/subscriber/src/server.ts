import { buildApp } from './app.js'
import { listenOptions, loadConfig } from './config.js'
import { runServer } from '@switchboard/server-kit'

await runServer('subscriber', loadConfig, buildApp, listenOptions)
