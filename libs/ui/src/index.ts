export * from './dom.js'
export * from './settings.js'
export * from './conversation.js'
export * from './error-banner.js'
