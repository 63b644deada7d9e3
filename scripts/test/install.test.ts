import t from 'tap'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

// What `npm ci` on a fresh clone will say, read from the files that decide it:
// an EBADENGINE warning for any locked package that does not run on every Node
// the project claims, and an install-scripts warning for any locked package
// with an install script that allowScripts does not approve.

const semver = createRequire(import.meta.url)('semver') as {
  subset(range: string, superset: string): boolean
  minVersion(range: string): { major: number; minor: number } | null
}
const file = (name: string) => readFile(fileURLToPath(new URL(`../../${name}`, import.meta.url)), 'utf8')
const project = JSON.parse(await file('package.json'))
const lock = JSON.parse(await file('package-lock.json'))
type Locked = { version: string; engines?: { node?: string }; hasInstallScript?: boolean; link?: boolean }
const locked = Object.entries(lock.packages as Record<string, Locked>)
  .filter(([path, pkg]) => path !== '' && !pkg.link)
  .map(([path, pkg]) => ({ name: path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length), ...pkg }))

t.test('every locked package runs on every Node the project supports', async (t) => {
  const supported: string = project.engines.node
  const narrower = locked.filter((pkg) => pkg.engines?.node !== undefined && !semver.subset(supported, pkg.engines.node))
  t.same(
    narrower.map((pkg) => `${pkg.name}@${pkg.version} wants node ${pkg.engines!.node}`),
    [],
    `engines ${supported} fits every package's`,
  )
})

t.test("the README's Node floor is the one in engines", async (t) => {
  const floor = semver.minVersion(project.engines.node)!
  t.match(await file('README.md'), `You need Node.js ${floor.major}.${floor.minor}+`)
})

t.test('allowScripts approves every install script in the lock', async (t) => {
  const allowed = (project.allowScripts ?? {}) as Record<string, boolean>
  const approves = (name: string, version: string) => allowed[name] === true || allowed[`${name}@${version}`] === true
  const withScripts = locked.filter((pkg) => pkg.hasInstallScript)
  t.ok(withScripts.length > 0, 'the lock has install scripts to approve (esbuild at least)')
  t.same(
    withScripts.filter((pkg) => !approves(pkg.name, pkg.version)).map((pkg) => `${pkg.name}@${pkg.version}`),
    [],
    'none is left for npm to warn about',
  )
})
