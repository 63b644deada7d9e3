import { loadConfig, type Config } from '@switchboard/server-kit'

export { loadConfig, type Config }

/** Where Subscriber listens. */
export function listenOptions(config: Config): { host: string; port: number } {
  return { host: config.host, port: config.subscriberPort }
}
