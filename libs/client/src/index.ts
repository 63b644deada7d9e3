export * from './reconnecting-socket.js'
export * from './http.js'
export * from './chat-client.js'
export * from './queue-client.js'
