export * from './redis-server.js'
export * from './ws-client.js'
export * from './stack.js'
export * from './browser.js'
