/**
 * The import graph of the source (libs/*\/src, services/*\/src, services/*\/web)
 * and the rules it must keep (docs/architecture.md says why). Imports are read
 * with the TypeScript compiler's own pre-processor (`ts.preProcessFile`):
 * `import`, `import type`, `export … from`, `import()` and `require()` alike,
 * since a type-only import still ties one package to another's API (and a
 * page's types to Node's). No type checking, so the whole graph takes well
 * under a second.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve, sep } from 'node:path'
import ts from 'typescript'

/** One import: the file (relative to the root), the package it is in, what it names, and the package that is. */
export interface ImportEdge {
  file: string
  from: string
  specifier: string
  to: string
}

/** A rule: no file of the packages `from` matches may import a target `forbidden` matches. */
export interface ImportRule {
  name: string
  from: (pkg: string) => boolean
  forbidden: (target: string, from: string) => boolean
}

/** Where the source lives: each directory's files belong to the package named after it. */
const SOURCE_DIRS = ['libs/*/src', 'services/*/src', 'services/*/web']

const builtins = new Set(builtinModules)

/**
 * The package an import names: a workspace package by its directory
 * (`libs/domain`, `services/chat-server`, also when reached by a relative
 * path), `node` for Node's built-in modules, otherwise the npm package
 * (`fastify`, `@fastify/websocket`).
 */
export function targetOf(specifier: string, importer: string, root: string): string {
  if (specifier.startsWith('.')) return packageOf(relative(root, resolve(dirname(join(root, importer)), specifier)))
  if (specifier.startsWith('node:') || builtins.has(specifier.split('/')[0]!)) return 'node'
  const parts = specifier.split('/')
  const name = specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!
  const workspace = /^@switchboard\/(.+)$/.exec(name)
  if (workspace !== null) return ['chat-server', 'subscriber'].includes(workspace[1]!) ? `services/${workspace[1]}` : workspace[1] === 'bench' ? 'bench' : `libs/${workspace[1]}`
  return name
}

/** `libs/domain/src/x.ts` → `libs/domain`. */
export function packageOf(path: string): string {
  const parts = path.split(sep).join('/').split('/')
  return parts[0] === 'libs' || parts[0] === 'services' ? `${parts[0]}/${parts[1]}` : parts[0]!
}

function sourceFiles(root: string): string[] {
  const files: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry)
      if (statSync(path).isDirectory()) walk(path)
      else if (/\.(m|c)?tsx?$/.test(entry) && !entry.endsWith('.d.ts')) files.push(path)
    }
  }
  for (const pattern of SOURCE_DIRS) {
    const [top, , leaf] = pattern.split('/')
    for (const pkg of readdirSync(join(root, top!))) {
      const dir = join(root, top!, pkg, leaf!)
      if (statSync(dir, { throwIfNoEntry: false })?.isDirectory()) walk(dir)
    }
  }
  return files
}

/** Every import of every source file under `root`. */
export function importGraph(root: string): ImportEdge[] {
  const edges: ImportEdge[] = []
  for (const path of sourceFiles(root)) {
    const file = relative(root, path).split(sep).join('/')
    const { importedFiles } = ts.preProcessFile(readFileSync(path, 'utf8'), true, true)
    for (const { fileName: specifier } of importedFiles) {
      edges.push({ file, from: packageOf(file), specifier, to: targetOf(specifier, file, root) })
    }
  }
  return edges
}

const is = (...names: string[]) => (pkg: string) => names.includes(pkg)
const isFastify = (target: string) => target === 'fastify' || target === 'fastify-plugin' || target.startsWith('@fastify/')
/** Modules a browser does not have. */
const isNodeOnly = (target: string) => target === 'node' || target === 'ws' || target === 'ioredis' || target === 'pino'

/** What must never import what (docs/architecture.md). */
export const RULES: readonly ImportRule[] = [
  {
    name: 'domain knows no fastify (and no server-kit)',
    from: is('libs/domain'),
    forbidden: (target) => isFastify(target) || target === 'libs/server-kit',
  },
  {
    name: 'protocol knows no storage (no ioredis, no domain) and no fastify',
    from: is('libs/protocol'),
    forbidden: (target) => target === 'ioredis' || target === 'pg' || target.startsWith('@electric-sql/') || target === 'libs/domain' || target === 'libs/store' || target === 'libs/server-kit' || isFastify(target),
  },
  {
    name: 'store knows no fastify and no live state (no ioredis, domain or server-kit)',
    from: is('libs/store'),
    forbidden: (target) => isFastify(target) || target === 'ioredis' || target === 'libs/domain' || target === 'libs/server-kit',
  },
  {
    name: 'client, ui and the pages never pull in Redis, PostgreSQL, domain, store, server-kit, fastify or Node-only modules',
    from: (pkg) => pkg === 'libs/client' || pkg === 'libs/ui',
    forbidden: (target) =>
      isNodeOnly(target) || isFastify(target) || target === 'libs/domain' || target === 'libs/store' || target === 'pg' || target === 'libs/server-kit' || target.startsWith('services/'),
  },
  {
    name: 'services never import each other',
    from: (pkg) => pkg.startsWith('services/'),
    forbidden: (target, from) => target.startsWith('services/') && target !== from,
  },
  {
    name: 'nothing in src imports libs/testing',
    from: () => true,
    forbidden: (target, from) => target === 'libs/testing' && from !== 'libs/testing',
  },
]

/** The pages (services/*\/web) are browser code: the client's rule holds for them too. */
export function isPage(file: string): boolean {
  return /^services\/[^/]+\/web\//.test(file)
}

/** Each edge that breaks a rule, said in one line. */
export function violations(edges: readonly ImportEdge[], rules: readonly ImportRule[] = RULES): string[] {
  const found: string[] = []
  const browser = rules.find((rule) => rule.name.startsWith('client, ui'))
  for (const edge of edges) {
    for (const rule of rules) {
      const applies = rule.from(edge.from) || (rule === browser && isPage(edge.file))
      if (applies && rule.forbidden(edge.to, edge.from)) found.push(`${edge.file} imports '${edge.specifier}' (${edge.to}): ${rule.name}`)
    }
  }
  return found
}
