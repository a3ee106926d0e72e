// Monitoring and automatic repair with real agent processes on 127.0.0.1: m of the peers holding
// the files die for good → they are declared lost, every block is rebuilt on the other peers (the
// test checks where shards now live), then m more die and every stub still opens byte-exact; more
// than m lost → the agent names exactly the files it cannot recover and never stubs a local one.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { tempDir, sha256, exists } from './helpers/fixtures.js'
import { BIN, sleep } from '../agent/swarm.js'
import { testSwarm, stubbedCount, REPAIR_TUNABLES, peerIds, holders } from './helpers/agent-swarm.js'

test('m peers die → repaired onto other peers; then m more die and every stub still opens', async (t) => {
  const ts = await testSwarm(t, { peers: 9 })
  const ids = await peerIds(ts)
  const folder = await tempDir(t, 'dustbox-folder-')
  const data: Record<string, Buffer> = {}
  for (let i = 0; i < 6; i++) data[`Ordner ✓/Datei-${i}-ü.bin`] = randomBytes(100_000 + i * 700_000)
  data['大きい.bin'] = randomBytes(9 * 1024 * 1024)
  for (const [n, b] of Object.entries(data)) {
    await fsp.mkdir(join(folder, n, '..'), { recursive: true })
    await fsp.writeFile(join(folder, n), b)
  }
  const n = Object.keys(data).length
  await ts.startOwner([folder], [], REPAIR_TUNABLES)
  await ts.waitFor('all stubbed', st => stubbedCount(st) === n, 120_000)

  // Kill m = 2 of the peers holding shards.
  const before = holders(await ts.status())
  assert.ok(before.length >= 6, `shards on ${before.length} peers`)
  const dead1 = ts.peers.filter(p => before.includes(ids.get(p)!)).slice(0, 2)
  for (const p of dead1) await ts.swarm.stop(p, 'SIGKILL')
  const deadIds1 = dead1.map(p => ids.get(p)!)
  const s1 = await ts.waitFor('the dead peers lost and every block back at full redundancy', st =>
    deadIds1.every(id => st.peers.find(p => p.short === id)?.state === 'lost') &&
    st.repair.shardsRebuilt > 0 && st.health.full === n && st.health.repairing === 0, 120_000)
  // No shard of mine is recorded on the dead peers any more; the rebuilt ones went to the others.
  for (const id of deadIds1) assert.equal(s1.peers.find(p => p.short === id)?.holdsForMe ?? 0, 0, `nothing recorded on dead peer ${id.slice(0, 8)}`)
  const after = holders(s1)
  assert.ok(after.every(id => !deadIds1.includes(id)))
  assert.ok(after.length >= 6)

  // m more die: still every stub opens byte-exact.
  const dead2 = ts.peers.filter(p => after.includes(ids.get(p)!)).slice(0, 2)
  for (const p of dead2) await ts.swarm.stop(p, 'SIGKILL')
  for (const [name, b] of Object.entries(data)) {
    const r = await ts.call<{ path: string }>('open', { path: join(folder, name + '.f') })
    assert.equal(sha256(await fsp.readFile(r.path)), sha256(b), name)
  }
})

test('more than m peers lost for good: exactly the unrecoverable files are named; local originals are never stubbed', async (t) => {
  const ts = await testSwarm(t, { peers: 6 })
  const ids = await peerIds(ts)
  const folder = await tempDir(t, 'dustbox-folder-')
  const names = ['Verloren 1 ✗.bin', 'Verloren 2 ✗.bin', 'lokal ✓.bin']
  const data = new Map(names.map((n, i) => [n, randomBytes(200_000 + i * 100_000)]))
  for (const [n, b] of data) await fsp.writeFile(join(folder, n), b)
  await ts.startOwner([folder], [], REPAIR_TUNABLES)
  await ts.waitFor('all stubbed', st => stubbedCount(st) === 3, 120_000)
  // One file is open (hydrated, its bytes local) when the peers die.
  await ts.call('open', { path: join(folder, 'lokal ✓.bin.f') })

  // 3 of the 6 peers (more than m = 2) die for good: every block keeps 3 < k = 4 shards.
  const dead = ts.peers.slice(0, 3)
  for (const p of dead) await ts.swarm.stop(p, 'SIGKILL')
  const s = await ts.waitFor('the dead peers lost and the files named', st =>
    dead.every(p => st.peers.find(x => x.short === ids.get(p))?.state === 'lost') && st.health.unrecoverable === 3, 60_000)
  assert.deepEqual(s.unrecoverable.map(f => f.rel).sort(), [...names].sort())
  assert.equal(s.unrecoverable.find(f => f.rel === 'lokal ✓.bin')?.state, 'hydrated')

  // `dustbox repair` lists them and exits 1.
  const r = spawnSync(process.execPath, [BIN, '--home', ts.ownerHome, 'repair', '--no-audit'], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 1, r.stdout + r.stderr)
  assert.match(r.stdout, /UNRECOVERABLE: 3 files/)
  for (const n of names) assert.ok(r.stdout.includes(n), `${n} listed`)
  assert.match(r.stdout, /lokal ✓\.bin \(still local: placed again\)/)

  // Files that are still local are never stubbed while their blocks cannot be placed: the open one
  // (even when evicted explicitly), and a new one.
  await fsp.writeFile(join(folder, 'neu.bin'), randomBytes(50_000))
  await ts.call('evict', { path: join(folder, 'lokal ✓.bin') })
  await sleep(4000)
  assert.equal(await exists(join(folder, 'lokal ✓.bin.f')), false)
  assert.equal(sha256(await fsp.readFile(join(folder, 'lokal ✓.bin'))), sha256(data.get('lokal ✓.bin')!))
  assert.equal(await exists(join(folder, 'neu.bin.f')), false)
  assert.equal(await exists(join(folder, 'neu.bin')), true)
  assert.match((await ts.status()).placement.waiting ?? '', /waiting for peers/)
})
