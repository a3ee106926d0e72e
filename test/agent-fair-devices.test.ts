// Fair exchange across an owner's devices (docs/agent.md § Fair exchange), with real agent processes
// on 127.0.0.1: owner X has a laptop that donates nothing and a server (a second device, its own
// key certified by X) that donates. Another owner Y stores on X's server. Then X's laptop stores on
// Y: Y must count what it placed on all of X's devices (not only on the key X connects with), and
// the laptop must count what its server donates (not only its own 0 bytes). Graces are shrunk so
// that either mistake would leave the laptop's files waiting.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { spawnSync } from 'node:child_process'
import { LocalSwarm, BIN, agentStatus } from '../agent/swarm.js'
import { createDeviceKey } from '../agent/device.js'
import { untilStatus, stubbedCount } from './helpers/agent-swarm.js'
import { writeRandom } from './helpers/fixtures.js'
import { IndexDb, MAX_PEER_OWNERS } from '../agent/index-db.js'

const KiB = 1024
const MiB = 1024 * KiB

test('fair exchange counts every device of an owner: what others placed on its server, what its server donates', async (t) => {
  const base = await fsp.mkdtemp(join(tmpdir(), 'dustbox-fair-'))
  const swarm = new LocalSwarm(base)
  t.after(async () => { await swarm.close(); await fsp.rm(base, { recursive: true, force: true, maxRetries: 3 }) })
  await swarm.startBootstrap()
  const [q] = await swarm.startPeers(1) // Q: a third owner's storage node

  // X's identity, then its server: the same identity, a device key of its own, 4 GiB donated, no folder.
  const laptop = join(base, 'x-laptop')
  const server = join(base, 'x-server')
  await fsp.mkdir(laptop, { recursive: true, mode: 0o700 })
  const init = spawnSync(process.execPath, [BIN, '--home', laptop, 'init'], { encoding: 'utf8' })
  assert.equal(init.status, 0, init.stderr)
  await fsp.mkdir(server, { recursive: true, mode: 0o700 })
  await fsp.copyFile(join(laptop, 'secret.key'), join(server, 'secret.key'))
  await fsp.chmod(join(server, 'secret.key'), 0o600)
  await createDeviceKey(server)
  await swarm.startAgent({ name: 'x-server', home: server, donate: '4G' })

  // Y stores 3 MiB at 1+1: every block has one shard on Q and one on X's server.
  const yFolder = join(base, 'Y Dateien')
  await fsp.mkdir(yFolder)
  for (let i = 0; i < 3; i++) await writeRandom(join(yFolder, `y-${i}.bin`), MiB)
  const yHome = join(base, 'y')
  await swarm.startAgent({ name: 'y', home: yHome, folders: [yFolder], extraArgs: ['--redundancy', '1+1', '--settle', '0.3'], tunables: { graceBytes: 16 * KiB } })
  const ySt = await untilStatus('Y to stub its files', yHome, s => stubbedCount(s) === 3, 120_000)
  const qId = (await agentStatus(q.home)).identity
  // Y's peers are Q and X's server (its device key is not X's identity: whatever is not Q).
  const onServer = ySt.peers.filter(p => !qId.startsWith(p.short)).reduce((n, p) => n + p.holdsForMe, 0)
  assert.ok(onServer >= 3 * MiB, `Y placed ${onServer} bytes on X's server`)

  // X's laptop: donates nothing, grace 256 KiB; 1.5 MiB of files at 1+1 (3 MiB of shards, half on Y).
  const xFolder = join(base, 'X Ordner ü')
  await fsp.mkdir(xFolder)
  for (let i = 0; i < 3; i++) await writeRandom(join(xFolder, `x-${i}.bin`), 512 * KiB)
  await swarm.startAgent({ name: 'x-laptop', home: laptop, folders: [xFolder], donate: '0', extraArgs: ['--redundancy', '1+1', '--settle', '0.3'], tunables: { graceBytes: 256 * KiB } })
  const yId = (await agentStatus(yHome)).identity
  const xSt = await untilStatus('X\'s laptop to stub its files', laptop, s => stubbedCount(s) === 3, 120_000)
  assert.equal(xSt.placement.devicesDonated, 4 * 1024 * MiB, 'the laptop counts what its server donates')
  const onY = xSt.peers.find(p => yId.startsWith(p.short))?.holdsForMe ?? 0
  assert.ok(onY > 16 * KiB, `Y took ${onY} bytes from X, past its 16 KiB grace: it counted what it placed on X's server`)
  const status = spawnSync(process.execPath, [BIN, '--home', laptop, 'status'], { encoding: 'utf8' })
  assert.match(status.stdout, /donating 0 B \(my other devices 4\.0 GiB\)/)
  // The server learns where the laptop placed its blocks (synced shard rows) while it runs: they
  // count in what it grants Y, without a restart.
  const laptopTaken = xSt.placement.taken
  await untilStatus('the server to count the laptop\'s shards', server, s => s.placement.taken >= laptopTaken, 60_000)
})

test('device-to-owner rows are bounded: the least recently seen go past MAX_PEER_OWNERS', async (t) => {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'dustbox-owners-'))
  t.after(async () => { await fsp.rm(dir, { recursive: true, force: true }) })
  let now = 1_000
  const db = new IndexDb(dir, () => now)
  t.after(() => { db.close() })
  const key = (i: number): Buffer => Buffer.alloc(32, 0).fill(i & 255, 0, 1).fill((i >> 8) & 255, 1, 2)
  const owner = Buffer.alloc(32, 7)
  for (let i = 0; i < MAX_PEER_OWNERS + 200; i++) { now++; db.notePeerOwner(key(i), owner) }
  const rows = db.peerOwners()
  assert.equal(rows.length, MAX_PEER_OWNERS)
  assert.ok(rows.some(r => r.key.equals(key(MAX_PEER_OWNERS + 199))), 'the newest kept')
  assert.ok(!rows.some(r => r.key.equals(key(0))), 'the oldest dropped')
  db.noteDeviceSpace(key(1), 5 * MiB)
  db.noteDeviceSpace(key(1), 6 * MiB)
  assert.deepEqual(db.deviceSpace().map(r => r.donated), [6 * MiB])
})
