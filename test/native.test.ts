// The native dependencies are really there: `npm ci` compiled lz4 with node-gyp (its install script,
// allowed in package.json "allowScripts") and installed sodium-native's prebuilt binary. .ci/run runs
// this on a clean clone, so it proves the install steps, with a message that says what is missing.

import test from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { existsSync, readFileSync } from 'node:fs'

const require = createRequire(import.meta.url)

test('lz4 was compiled by npm ci and its native binding loads', () => {
  const pkg = require.resolve('lz4/package.json')
  const binding = new URL('build/Release/lz4.node', 'file://' + pkg).pathname
  assert.ok(existsSync(binding), `${binding} is missing: npm ci did not run lz4's node-gyp build (is "allowScripts" in package.json still allowing lz4, and are python3, make and g++ installed?)`)
  const lz4 = require('lz4')
  const out = Buffer.alloc(lz4.encodeBound(1000))
  assert.ok(lz4.encodeBlock(Buffer.alloc(1000, 7), out) > 0)
})

test('sodium-native loads its prebuilt binary (the fast crypto backend)', () => {
  const sodium = require('sodium-native')
  const out = Buffer.alloc(32)
  sodium.crypto_generichash(out, Buffer.from('dustbox'))
  assert.equal(out.toString('hex').length, 64)
})

test('every package with an install script is covered by allowScripts', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8'))
  const allowed = Object.keys(pkg.allowScripts ?? {}).filter(k => pkg.allowScripts[k] === true).map(k => k.replace(/(.)@.*$/, '$1'))
  const scripted = Object.entries(lock.packages as Record<string, { hasInstallScript?: boolean }>)
    .filter(([path, p]) => path !== '' && p.hasInstallScript === true)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length))
  assert.ok(scripted.includes('lz4'), 'the lockfile marks lz4 as having an install script')
  for (const name of scripted) assert.ok(allowed.includes(name), `${name} has an install script that package.json "allowScripts" does not allow`)
})
