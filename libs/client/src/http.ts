import type { Visitor } from '@switchboard/protocol'

/** `http(s)://host:port` → `ws(s)://host:port`, with any trailing slash dropped. */
export function toWebSocketUrl(base: string): string {
  return base.replace(/\/+$/, '').replace(/^http(s?):/i, 'ws$1:')
}

/** `ws(s)://…` or `http(s)://…` → `http(s)://…`, with any trailing slash dropped. */
export function toHttpUrl(base: string): string {
  return base.replace(/\/+$/, '').replace(/^ws(s?):/i, 'http$1:')
}

/** An error the server answered with: `code` is from the protocol's error table. */
export class SwitchboardError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message)
    this.name = 'SwitchboardError'
  }
}

/** `GET /user/join/{name}`: registers a visitor. Throws {@link SwitchboardError} on a 4xx/5xx answer. */
export async function registerVisitor(chatServer: string, name: string, fetchImpl: typeof fetch = fetch): Promise<Visitor> {
  const res = await fetchImpl(`${toHttpUrl(chatServer)}/user/join/${encodeURIComponent(name)}`)
  const body = (await res.json().catch(() => ({}))) as Partial<Visitor> & { code?: string; message?: string }
  if (!res.ok) throw new SwitchboardError(body.code ?? 'HTTP_ERROR', body.message ?? `HTTP ${res.status}`, res.status)
  return { userId: body.userId!, username: body.username!, chatId: body.chatId! }
}

/** Adds an agent token as the `token` query parameter (browsers cannot send headers with a WebSocket). */
export function withToken(url: string, token: string | undefined): string {
  if (!token) return url
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`
}
