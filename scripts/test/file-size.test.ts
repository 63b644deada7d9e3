import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** No source file of a package is longer than this: past it, a module is doing more than one job. */
const MAX_LINES = 400
const root = fileURLToPath(new URL('../..', import.meta.url))

/** Lines of `text` as an editor counts them (a final newline ends the last line, it does not start one). */
export function lineCount(text: string): number {
  if (text === '') return 0
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry)
    return statSync(path).isDirectory() ? sources(path) : /\.(m|c)?tsx?$/.test(entry) ? [path] : []
  })
}

t.test(`no source file in libs/*/src or services/*/src is over ${MAX_LINES} lines`, async (t) => {
  const files = ['libs', 'services'].flatMap((top) =>
    readdirSync(join(root, top))
      .map((pkg) => join(root, top, pkg, 'src'))
      .filter((dir) => statSync(dir, { throwIfNoEntry: false })?.isDirectory())
      .flatMap(sources),
  )
  t.ok(files.length > 20, `the sources are found (${files.length})`)
  const long = files
    .map((path) => ({ file: relative(root, path), lines: lineCount(readFileSync(path, 'utf8')) }))
    .filter((f) => f.lines > MAX_LINES)
    .map((f) => `${f.file}: ${f.lines} lines`)
  t.same(long, [], `over ${MAX_LINES} lines:\n${long.join('\n')}`)
})

t.test('lines are counted as an editor counts them', async (t) => {
  t.equal(lineCount(''), 0)
  t.equal(lineCount('a'), 1)
  t.equal(lineCount('a\n'), 1)
  t.equal(lineCount('a\nb\n'), 2)
  t.equal(lineCount('a\n'.repeat(401)), 401, 'a 401-line file is over the limit')
})
