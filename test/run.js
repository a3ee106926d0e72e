#!/usr/bin/env node
// Runs the compiled test files (dist/test/*.test.js) with node:test, two files at a time.
// `npm run test:long` sets DUSTBOX_LONG=1: the same files with their long soak/fuzz counts.
// Extra arguments filter the files by substring: `npm test -- chunker stub-format`.
import { readdirSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

const dir = fileURLToPath(new URL('../dist/test/', import.meta.url))
const filters = process.argv.slice(2)
const files = readdirSync(dir)
  .filter(f => f.endsWith('.test.js'))
  .filter(f => filters.length === 0 || filters.some(x => f.includes(x)))
  .sort()
  .map(f => join(dir, f))
if (files.length === 0) {
  console.error('no test files found in dist/test (run npm run build)')
  process.exit(1)
}
const args = ['--test', '--test-concurrency=2', ...(process.env.DUSTBOX_LONG ? ['--test-timeout=3600000'] : ['--test-timeout=300000']), ...files]
const r = spawnSync(process.execPath, args, { stdio: 'inherit' })
process.exit(r.status ?? 1)
