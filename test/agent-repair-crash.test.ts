// The owner's agent SIGKILLed at random instants while it repairs (6 trials; 100 with
// `npm run test:long`), real processes on 127.0.0.1. Each trial deletes some of the owner's shards
// on a peer's disk, asks for an audit round (which finds them and starts the repair, rate-limited
// so that it takes a while), and kills the owner 0–2.5 s later: before, during or after the
// repair. After each restart the repair finishes (the audits find nothing wrong, every block is at
// full redundancy); at the end every stub opens byte-exact.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { randomBytes, randomInt } from 'node:crypto'
import { tempDir, sha256, LONG } from './helpers/fixtures.js'
import { testSwarm, stubbedCount, REPAIR_TUNABLES } from './helpers/agent-swarm.js'
import { sleep } from '../agent/swarm.js'

const TRIALS = LONG ? 100 : 6

async function shardFiles (peerHome: string, ownerHex: string): Promise<string[]> {
  const root = join(peerHome, 'donated', 'owners', ownerHex)
  const out: string[] = []
  for (const d of await fsp.readdir(root).catch(() => [] as string[])) {
    for (const f of await fsp.readdir(join(root, d)).catch(() => [] as string[])) if (/^[0-9a-f]{64}$/.test(f)) out.push(join(root, d, f))
  }
  return out
}

interface RepairReply { audited: { failed: number, unanswered: number }, repair: { queued: number, active: number }, unrecoverableTotal: number }

test(`owner SIGKILLed during repair at random instants (${TRIALS} trials): after restart the repair finishes, nothing is lost`, { timeout: LONG ? 3 * 3600_000 : 420_000 }, async (t) => {
  const ts = await testSwarm(t, { peers: 8 })
  const folder = await tempDir(t, 'dustbox-folder-')
  const data: Record<string, Buffer> = {}
  for (let i = 0; i < 4; i++) data[`Reparatur ${i} ⚙.bin`] = randomBytes(300_000 + i * 300_000)
  for (const [n, b] of Object.entries(data)) await fsp.writeFile(join(folder, n), b)
  const n = Object.keys(data).length
  // Repairs at 8 MB/s so a kill often lands in the middle of one.
  const tunables = { ...REPAIR_TUNABLES, lostAfterMs: 600_000, repairRateBytes: 8 * 1024 * 1024, auditPeriodMs: 600_000, auditRoundMs: 600_000 }
  await ts.startOwner([folder], [], tunables)
  const owner = (await ts.waitFor('all stubbed', st => stubbedCount(st) === n, 120_000)).identity
  let killedDuring = 0

  for (let trial = 0; trial < TRIALS; trial++) {
    // Lose a few copies on one peer's disk.
    const peer = ts.peers[randomInt(ts.peers.length)]
    const files = await shardFiles(peer.home, owner)
    for (const f of files.sort(() => Math.random() - 0.5).slice(0, 1 + randomInt(4))) await fsp.rm(f, { force: true })
    // An audit round finds them and the repair starts; the owner dies at a random instant.
    const asked = ts.call<RepairReply>('repair', { wait: false, full: true }).catch(() => null)
    await sleep(randomInt(2500))
    const st = await ts.status().catch(() => null)
    if (st !== null && st.health.repairing > 0) killedDuring++
    await ts.swarm.stop(ts.owner!, 'SIGKILL')
    await asked
    await ts.startOwner([folder], [], tunables)
    // After the restart: one full audit finds what the killed run had not, then repair until done.
    if (process.env.DUSTBOX_TRACE === '1') console.error(`trial ${trial} restarted at ${Math.round(performance.now())} ms`)
    const deadline = Date.now() + 90_000
    let last = await ts.call<RepairReply>('repair', { wait: true, full: true })
    while (last.repair.queued + last.repair.active > 0) {
      assert.ok(Date.now() < deadline, `trial ${trial}: still repairing after 90 s: ${JSON.stringify(last)}`)
      last = await ts.call<RepairReply>('repair', { wait: true, audit: false })
    }
    assert.equal(last.unrecoverableTotal, 0, `trial ${trial}`)
    await ts.waitFor(`trial ${trial}: full redundancy`, s => s.health.full === n && s.health.repairing === 0, 60_000)
    if (process.env.DUSTBOX_TRACE === '1') console.error(`trial ${trial} done at ${Math.round(performance.now())} ms`)
  }
  t.diagnostic(`${killedDuring} of ${TRIALS} kills landed while a repair was running`)
  // Every copy answers its audit: nothing the kills interrupted was left lost.
  const final = await ts.call<RepairReply>('repair', { wait: true, full: true })
  assert.equal(final.audited.failed, 0)
  assert.equal(final.unrecoverableTotal, 0)
  for (const [name, b] of Object.entries(data)) {
    const o = await ts.call<{ path: string }>('open', { path: join(folder, name + '.f') })
    assert.equal(sha256(await fsp.readFile(o.path)), sha256(b), name)
  }
})
