/**
 * Where the servers are. In order: a query parameter (`?chatServer=…`,
 * `?subscriber=…`), a global set before the script loads
 * (`window.SWITCHBOARD = { chatServer, subscriber }`), then a default.
 */
export interface ServerSettings {
  chatServer?: string
  subscriber?: string
}

declare global {
  interface Window {
    SWITCHBOARD?: ServerSettings
  }
}

export function setting(name: keyof ServerSettings, fallback: string): string {
  const fromQuery = new URLSearchParams(window.location.search).get(name)
  if (fromQuery) return fromQuery
  const fromGlobal = window.SWITCHBOARD?.[name]
  if (fromGlobal) return fromGlobal
  return fallback
}

/** sessionStorage as JSON, tolerant of missing or corrupt entries and of storage being off. */
export const stored = {
  get<T>(key: string): T | undefined {
    try {
      const raw = window.sessionStorage.getItem(key)
      return raw === null ? undefined : (JSON.parse(raw) as T)
    } catch {
      return undefined
    }
  },
  set(key: string, value: unknown): void {
    try {
      window.sessionStorage.setItem(key, JSON.stringify(value))
    } catch {
      // Private mode or storage disabled: the page still works, only without refresh recovery.
    }
  },
  remove(key: string): void {
    try {
      window.sessionStorage.removeItem(key)
    } catch {
      // As above.
    }
  },
}
