export * from './dom.js'
export * from './settings.js'
