// `dustbox dht-node` as a real process: prints its address, others bootstrap from it and find each
// other, SIGTERM stops it cleanly with its routing table saved; bad arguments name what is wrong.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDhtNode } from './helpers/dht-testnet.js'
import { tempDir } from './helpers/fixtures.js'

const BIN = fileURLToPath(new URL('../../bin/dustbox.js', import.meta.url))

function run (args: string[]): { proc: ReturnType<typeof spawn>, out: () => string, err: () => string, exit: Promise<number | null> } {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout!.on('data', (d) => { out += String(d) })
  proc.stderr!.on('data', (d) => { err += String(d) })
  const exit = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)))
  return { proc, out: () => out, err: () => err, exit }
}

test('dustbox dht-node: prints its address, others bootstrap from it, stops on SIGTERM with its table saved', async (t) => {
  const home = await tempDir(t, 'dustbox-dhtnode-Ωmega-')
  const r = run(['--home', home, 'dht-node', '--port', '0', '--host', '127.0.0.1', '--bootstrap', 'none'])
  t.after(() => { r.proc.kill('SIGKILL') })
  const until = Date.now() + 20_000
  while (!r.out().includes('bootstrap others with') && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 50))
  const m = /--bootstrap (127\.0\.0\.1:\d+)/.exec(r.out())
  assert.ok(m !== null, r.out() + r.err())
  const a = await startDhtNode(t, { bootstrap: [m[1]] })
  const b = await startDhtNode(t, { bootstrap: [m[1]] })
  const topic = randomBytes(20)
  await a.announce(topic, 4444)
  assert.deepEqual(await b.lookup(topic), [{ host: '127.0.0.1', port: 4444 }])
  r.proc.kill('SIGTERM')
  assert.equal(await r.exit, 0, r.err())
  assert.match(r.out(), /dht-node stopping \(\d+ nodes known/)
  const saved = JSON.parse(await fsp.readFile(join(home, 'dht-node', 'dht.json'), 'utf8'))
  assert.ok(saved.nodes.length >= 2)
})

test('dustbox dht-node: bad arguments are named', async (t) => {
  const home = await tempDir(t, 'dustbox-dhtnode-')
  for (const [args, want] of [
    [['--port', '99999'], /USAGE: --port "99999" is not a port number/],
    [['--port', '0', '--bootstrap', 'example.org'], /CONFIG_INVALID: bootstrap address "example.org" is not host:port/],
    [['--port', '0', '--host', 'nowhere'], /CONFIG_INVALID: DHT bind address "nowhere" is not an IPv4 address/]
  ] as const) {
    const r = run(['--home', home, 'dht-node', ...args])
    assert.equal(await r.exit, 1)
    assert.match(r.err(), want)
  }
})
