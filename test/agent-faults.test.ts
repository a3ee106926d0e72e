// The agent when things go wrong, with real processes on 127.0.0.1: fewer than k+m peers (nothing
// is stubbed and status says why; a sixth peer lets it go on); m peers killed (every stub still
// opens); changes made while the agent was stopped (caught at restart); a file modified while it
// uploads (never stubbed with stale content).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { tempDir } from './helpers/fixtures.js'
import { testSwarm, stubbedCount } from './helpers/agent-swarm.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const exists = async (p: string): Promise<boolean> => await fsp.stat(p).then(() => true, () => false)

test('fewer than k+m peers: nothing is stubbed and status says why; then m peers die and every stub still opens', async (t) => {
  const ts = await testSwarm(t, { peers: 5 })
  const folder = await tempDir(t, 'dustbox-folder-')
  const data: Record<string, Buffer> = {}
  for (let i = 0; i < 12; i++) data[`Datei-${i}-ü.bin`] = randomBytes(50_000 + i * 40_000)
  for (const [n, b] of Object.entries(data)) await fsp.writeFile(join(folder, n), b)
  await ts.startOwner([folder])
  const s = await ts.waitFor('placement waiting for peers', st => st.placement.waiting?.includes('waiting for peers') === true && st.peers.filter(p => p.connected).length >= 5, 60_000)
  assert.match(s.placement.waiting!, /6 are needed for 4\+2/)
  await new Promise(resolve => setTimeout(resolve, 1500))
  assert.equal(stubbedCount(await ts.status()), 0)
  for (const n of Object.keys(data)) assert.equal(await exists(join(folder, n)), true, `${n} must stay while it cannot be placed`)

  // A sixth peer joins: everything gets placed and stubbed.
  const sixth = await ts.swarm.startAgent({ name: 'peer-6', home: join(ts.base, 'peer-6') })
  ts.peers.push(sixth)
  await ts.waitFor('all stubbed', st => stubbedCount(st) === 12, 90_000)

  // m = 2 of the 6 peers die for good: every stub still opens byte-exact.
  await ts.swarm.stop(ts.peers[0], 'SIGKILL')
  await ts.swarm.stop(ts.peers[3], 'SIGKILL')
  for (const [n, b] of Object.entries(data)) {
    const r = await ts.call<{ path: string }>('open', { path: join(folder, n + '.f') })
    assert.equal(sha(await fsp.readFile(r.path)), sha(b), n)
  }
})

test('changes made while the agent was stopped are caught at restart; a file modified during upload is not stubbed stale', async (t) => {
  const ts = await testSwarm(t, { peers: 6 })
  const folder = await tempDir(t, 'dustbox-folder-')
  await fsp.writeFile(join(folder, 'first.txt'), 'first')
  await ts.startOwner([folder])
  await ts.waitFor('first stubbed', st => stubbedCount(st) === 1)
  await ts.swarm.stop(ts.owner!)

  // While stopped: a new file, a new folder with a file, an ignored file.
  await fsp.writeFile(join(folder, 'while-down.txt'), randomBytes(30_000))
  await fsp.mkdir(join(folder, 'Neuer Ordner'))
  await fsp.writeFile(join(folder, 'Neuer Ordner', 'ñ.bin'), randomBytes(300_000))
  await fsp.writeFile(join(folder, '.dustboxignore'), 'secret-*\n')
  await fsp.writeFile(join(folder, 'secret-notes.txt'), 'never leaves this machine')
  await ts.startOwner([folder])
  await ts.waitFor('changes while down stubbed', st => stubbedCount(st) === 3, 60_000)
  assert.equal(await exists(join(folder, 'while-down.txt.f')), true)
  assert.equal(await exists(join(folder, 'Neuer Ordner', 'ñ.bin.f')), true)
  assert.equal(await exists(join(folder, 'secret-notes.txt')), true)
  assert.equal(await exists(join(folder, 'secret-notes.txt.f')), false)

  // A file that keeps changing while it is read and placed: never stubbed with stale content.
  const path = join(folder, 'growing.log.bin')
  let content = randomBytes(24 * 1024 * 1024)
  await fsp.writeFile(path, content)
  const deadline = Date.now() + 4000
  while (Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 150 + Math.floor(Math.random() * 200)))
    const more = randomBytes(100_000)
    await fsp.appendFile(path, more)
    content = Buffer.concat([content, more])
  }
  await ts.waitFor('the growing file stubbed once it settled', st => stubbedCount(st) === 4, 120_000)
  const r = await ts.call<{ path: string }>('open', { path: path + '.f' })
  assert.equal(sha(await fsp.readFile(r.path)), sha(content), 'the stub holds the final content')
})
