import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'

export interface OpenApiPluginOptions {
  /** The document's title, e.g. `Switchboard chat-server`. */
  title: string
  /** What the service is for, one sentence. */
  description: string
}

/**
 * What fastify writes without a schema: a body as it is, and a thrown error
 * (which reaches a schema's serializer with its fields inherited, not own) as
 * `{statusCode, code, error, message}`, in that order.
 */
function serialize(data: unknown): string {
  if (data === null || typeof data !== 'object' || Array.isArray(data) || Object.keys(data).length > 0) return JSON.stringify(data)
  const { statusCode, code, error, message } = data as Record<string, unknown>
  return JSON.stringify({ statusCode, code, error, message })
}

/**
 * An OpenAPI 3 document of every HTTP route that has a schema, served at
 * `/docs/openapi.json`. Registered before any route, so it sees them all.
 *
 * Response schemas here are documentation only: replies are still written by
 * `JSON.stringify`, as before they had schemas. fast-json-stringify would
 * drop fields a schema misses and coerce values to the declared type (a null
 * integer becomes 0), and the seed-004 clients depend on the exact bytes.
 */
export const openApiPlugin = fp(
  async function openApiPlugin(app: FastifyInstance, opts: OpenApiPluginOptions) {
    app.setSerializerCompiler(() => serialize)
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: { title: opts.title, description: opts.description, version: '0.1.0' },
        tags: [{ name: 'operations', description: 'Health, readiness, metrics and this document' }],
      },
      // WebSockets are not HTTP endpoints: docs/asyncapi.yaml describes them.
      transform: ({ schema, url, route }) => ({ schema: (route as { websocket?: boolean }).websocket ? { ...schema, hide: true } : schema, url }),
    })
    app.get(
      '/docs/openapi.json',
      { schema: { summary: 'This OpenAPI document', tags: ['operations'], response: { 200: { description: 'OpenAPI 3 document', type: 'object' } } } },
      async () => app.swagger(),
    )
  },
  { name: 'switchboard-openapi' },
)
