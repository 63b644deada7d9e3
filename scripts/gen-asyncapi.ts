/** `npm run gen`: writes docs/asyncapi.yaml from the frame registry (see scripts/asyncapi/generate.ts). */
import { writeFileSync } from 'node:fs'
import { DOC_PATH, generateAsyncApi } from './asyncapi/generate.js'

writeFileSync(DOC_PATH, generateAsyncApi())
console.log(`wrote ${DOC_PATH}`)
