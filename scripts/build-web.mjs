#!/usr/bin/env node
// Bundles the two browser pages with esbuild into each service's dist/public,
// which the service serves with @fastify/static. Type checking is tsc -b's job
// (tsconfig.web.json); this only bundles.
import { build } from 'esbuild'
import { copyFile, mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const pages = [
  { service: 'chat-server', entry: 'web/visitor.ts' },
  { service: 'subscriber', entry: 'web/console.ts' },
]

await Promise.all(
  pages.map(async ({ service, entry }) => {
    const dir = join(root, 'services', service)
    const out = join(dir, 'dist', 'public')
    await mkdir(out, { recursive: true })
    await build({
      entryPoints: [join(dir, entry)],
      outfile: join(out, 'app.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['es2022'],
      conditions: ['switchboard-source'],
      minify: true,
      sourcemap: true,
      logLevel: 'warning',
    })
    await copyFile(join(dir, 'web', 'index.html'), join(out, 'index.html'))
    await copyFile(join(root, 'libs', 'ui', 'style.css'), join(out, 'style.css'))
    await copyFile(join(root, 'libs', 'ui', 'favicon.svg'), join(out, 'favicon.svg'))
  }),
)
