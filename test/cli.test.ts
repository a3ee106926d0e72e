// The dustbox CLI as a user runs it (real child processes): help, init, stub/inspect/verify/hydrate,
// --json, exit codes, and one-line `CODE: message` errors on stderr.

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir, writeTree, textLike, exists } from './helpers/fixtures.js'

const BIN = fileURLToPath(new URL('../../bin/dustbox.js', import.meta.url))

function dustbox (args: string[], env: NodeJS.ProcessEnv = {}): { code: number, out: string, err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 })
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr }
}

test('--help works for every command and exits 0', () => {
  const top = dustbox(['--help'])
  assert.equal(top.code, 0)
  for (const c of ['init', 'stub', 'hydrate', 'open', 'verify', 'inspect', 'demo']) {
    assert.match(top.out, new RegExp(`\\b${c}\\b`))
    const r = dustbox([c, '--help'])
    assert.equal(r.code, 0, c)
    assert.match(r.out, /Usage: dustbox/)
  }
})

test('usage errors are one USAGE line and exit 2', () => {
  for (const args of [['frobnicate'], ['stub'], ['inspect', 'a', 'b'], ['--nope']]) {
    const r = dustbox(args)
    assert.equal(r.code, 2, args.join(' '))
    assert.match(r.err, /^USAGE: /)
    assert.equal(r.err.trim().split('\n').length, 1, r.err)
  }
})

test('init, stub, inspect, verify, hydrate through the CLI', async t => {
  const dir = await tempDir(t)
  const home = join(dir, 'home ü')
  const paths = await writeTree(join(dir, 'f'), { 'Grüße.txt': textLike('cli', 200000), 'b.txt': 'bee' })
  const missing = dustbox(['--home', home, 'stub', paths['b.txt']])
  assert.equal(missing.code, 1)
  assert.match(missing.err, /^KEY_MISSING: .*dustbox init/)

  const init = dustbox(['init', '--json'], { DUSTBOX_HOME: home })
  assert.equal(init.code, 0, init.err)
  const { owner } = JSON.parse(init.out)
  assert.match(owner, /^[0-9a-f]{64}$/)
  assert.equal((await fsp.stat(join(home, 'secret.key'))).mode & 0o777, 0o600)
  const again = dustbox(['--home', home, 'init'])
  assert.equal(again.code, 1)
  assert.match(again.err, /^KEY_EXISTS: /)
  const secret = await fsp.readFile(join(home, 'secret.key'), 'utf8')
  const hex = /([0-9a-f]{64})/.exec(secret)![1]
  assert.ok(!init.out.includes(hex) && !init.err.includes(hex), 'the secret is never printed')

  const stub = dustbox(['--home', home, 'stub', '--json', paths['Grüße.txt'], paths['b.txt']])
  assert.equal(stub.code, 0, stub.err)
  const lines = stub.out.trim().split('\n').map(l => JSON.parse(l))
  assert.equal(lines.length, 2)
  assert.ok(lines.every(l => l.ok === true && l.stubPath.endsWith('.f')))
  assert.equal(await exists(paths['b.txt']), false)

  const insp = dustbox(['--home', home, 'inspect', '--json', paths['Grüße.txt'] + '.f'])
  assert.equal(insp.code, 0, insp.err)
  const v = JSON.parse(insp.out)
  assert.equal(v.name, 'Grüße.txt')
  assert.equal(v.size, 200000)
  assert.equal(v.owner, owner)
  assert.equal(v.authenticated, true)
  const human = dustbox(['--home', home, 'inspect', paths['b.txt'] + '.f'])
  assert.match(human.out, /name +"b\.txt"/)

  assert.equal(dustbox(['--home', home, 'verify', paths['b.txt'] + '.f']).code, 0)
  const hyd = dustbox(['--home', home, 'hydrate', paths['b.txt'] + '.f', join(dir, 'f', 'nope.f')])
  assert.equal(hyd.code, 1, 'one failure makes the exit non-zero')
  assert.match(hyd.err, /^STUB_INVALID: .*nope\.f/m)
  assert.equal(await fsp.readFile(paths['b.txt'], 'utf8'), 'bee')
  const open = dustbox(['--home', home, 'open', '--no-launch', paths['Grüße.txt'] + '.f'])
  assert.equal(open.code, 0, open.err)
  assert.ok(await exists(paths['Grüße.txt']))

  await fsp.writeFile(paths['b.txt'] + '.f', 'garbage')
  const bad = dustbox(['--home', home, 'verify', paths['b.txt'] + '.f'])
  assert.equal(bad.code, 1)
  assert.match(bad.err, /^STUB_INVALID: ".*b\.txt\.f" is not a valid dustbox stub/)
  assert.equal(bad.err.trim().split('\n').length, 1)
})

test('a corrupt secret file is a clear error', async t => {
  const dir = await tempDir(t)
  await fsp.mkdir(join(dir, 'h'))
  await fsp.writeFile(join(dir, 'h', 'secret.key'), 'dustbox-secret-v1:1234\n', { mode: 0o600 })
  const r = dustbox(['--home', join(dir, 'h'), 'verify', 'x.f'])
  assert.equal(r.code, 1)
  assert.match(r.err, /^KEY_INVALID: /)
  assert.ok(!r.err.includes('1234'), 'no key material in errors')
  assert.equal(dustbox(['--home', join(dir, 'g'), 'init']).code, 0)
  await fsp.chmod(join(dir, 'g', 'secret.key'), 0o644)
  const open = dustbox(['--home', join(dir, 'g'), 'verify', 'x.f'])
  assert.equal(open.code, 1)
  assert.match(open.err, /^KEY_INVALID: .*accessible by group or others.*chmod 600/)
})

test('the swarm demo runs (a DHT node, six peers and an agent on 127.0.0.1) and opens a stub back', () => {
  const r = dustbox(['demo', '--exit'])
  assert.equal(r.code, 0, r.err)
  assert.match(r.out, /byte-exact: yes/)
})
