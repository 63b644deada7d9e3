/**
 * docs/asyncapi.yaml is generated (`npm run gen`) from the frame registry,
 * the Errors table and scripts/asyncapi/template.yaml: the committed file must
 * be byte for byte what the generator writes, as fastify checks its
 * generated validator.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'

import { parse } from 'yaml'
import { Errors, REGISTRY } from '@switchboard/protocol'
import { DOC_PATH, generateAsyncApi } from '../../../scripts/asyncapi/generate.js'

t.test('the committed docs/asyncapi.yaml is what `npm run gen` writes', async (t) => {
  const committed = readFileSync(DOC_PATH, 'utf8')
  const generated = generateAsyncApi()
  if (committed === generated) {
    t.pass('docs/asyncapi.yaml is up to date')
    return
  }
  const a = committed.split('\n')
  const b = generated.split('\n')
  const line = a.findIndex((l, i) => l !== b[i])
  t.fail(`docs/asyncapi.yaml is stale: run \`npm run gen\` (first difference at line ${line + 1}: ${JSON.stringify(a[line])} vs ${JSON.stringify(b[line])})`)
})

t.test('the generator writes every registry frame and every error code', async (t) => {
  const doc = parse(generateAsyncApi()) as { components: { messages: Record<string, { name: string }>; schemas: { ErrorCode: { enum: string[] } } } }
  for (const entry of REGISTRY) t.equal(doc.components.messages[entry.key]?.name, entry.type, `components.messages.${entry.key} is a ${entry.type}`)
  t.same(doc.components.schemas.ErrorCode.enum, Object.keys(Errors), 'ErrorCode lists the Errors table')
})
