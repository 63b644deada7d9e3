#!/usr/bin/env node
// Reads tap's TAP output (one top-level test point per test file, the file's
// own tests indented beneath) and prints `N passed, N failed[, N skipped]`.
// A file that failed without a failing test inside (a crash, a timeout, no
// tests) counts as one failure, so a broken file can never look green.
import { readFileSync } from 'node:fs'

const lines = readFileSync(process.argv[2] ?? 0, 'utf8').split('\n')
let passed = 0
let failed = 0
let skipped = 0
let failedInFile = 0
let testsInFile = 0
const point = /^(not ok|ok) \d+(?: - [^#]*)?(#.*)?$/

for (const line of lines) {
  const nested = line.startsWith('    ') && !line.startsWith('     ')
  const m = point.exec(nested ? line.slice(4) : line)
  if (m === null) continue
  const ok = m[1] === 'ok'
  const directive = (m[2] ?? '').toUpperCase()
  const skip = /#\s*(SKIP|TODO)/.test(directive)
  if (nested) {
    testsInFile++
    if (skip) skipped++
    else if (ok) passed++
    else {
      failed++
      failedInFile++
    }
  } else {
    if ((!ok && failedInFile === 0) || (ok && testsInFile === 0 && !skip)) failed++
    failedInFile = 0
    testsInFile = 0
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
process.exitCode = failed > 0 || passed === 0 ? 1 : 0
