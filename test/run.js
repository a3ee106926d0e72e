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
// The NAT-lab tests need Debian's nftables and miniupnpd-nftables (test/helpers/natlab.ts). Installed
// here once, before the files run two at a time (two apt-gets at once would fight over dpkg's lock);
// when that cannot be done, the tests skip at once and say why instead of each trying again.
const env = { ...process.env }
if (files.some(f => /nat|port-mapping/.test(f)) && env.DUSTBOX_NO_APT !== '1') {
  const { ensurePackage } = await import('../dist/test/helpers/natlab.js')
  for (const [cmd, pkg] of [['nft', 'nftables'], ['miniupnpd', 'miniupnpd-nftables']]) {
    const why = ensurePackage(cmd, pkg)
    if (why !== null) { console.error(`test/run.js: ${why}; the tests that need it skip`); env.DUSTBOX_NO_APT = '1' }
  }
}
const args = ['--test', '--test-concurrency=2', ...(process.env.DUSTBOX_LONG ? ['--test-timeout=3600000'] : ['--test-timeout=300000']), ...files]
const r = spawnSync(process.execPath, args, { stdio: 'inherit', env })
process.exit(r.status ?? 1)
