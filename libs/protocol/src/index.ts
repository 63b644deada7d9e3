export * from './errors.js'
export * from './frames.js'
export * from './parse.js'
export * from './v2.js'
