// Proof-of-storage audits with real agent processes on 127.0.0.1: a peer whose shards are altered
// or deleted on its disk is caught by the audits within the audit period and the copies are
// rebuilt elsewhere; a peer that says it has shards but never sends them, and a slowloris peer,
// are routed around (every stub opens) and end up lost, their shards rebuilt on other peers.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { tempDir, sha256 } from './helpers/fixtures.js'
import { testSwarm, stubbedCount, REPAIR_TUNABLES, peerIds } from './helpers/agent-swarm.js'
import { agentStatus } from '../agent/swarm.js'
import Database from 'better-sqlite3'
import { shardIdOf } from '../net/index.js'

/** The shard ids the owner's index records on a peer (copies on its disk that no row references, e.g. a retried PUT's, are never audited). */
async function recorded (ownerHome: string, peerHome: string): Promise<Set<string>> {
  const key = Buffer.from((await agentStatus(peerHome)).identity, 'hex')
  const db = new Database(join(ownerHome, 'index.sqlite'), { readonly: true })
  try {
    return new Set((db.prepare('SELECT shard_id FROM shards WHERE peer = ?').all(key) as Array<{ shard_id: Buffer }>).map(r => r.shard_id.toString('hex')))
  } finally { db.close() }
}

const HOSTILE = fileURLToPath(new URL('./helpers/hostile-peer.js', import.meta.url))

/** Every shard file an owner has on a peer's disk. */
async function shardFiles (peerHome: string, ownerHex: string): Promise<string[]> {
  const root = join(peerHome, 'donated', 'owners', ownerHex)
  const out: string[] = []
  for (const d of await fsp.readdir(root).catch(() => [] as string[])) {
    for (const f of await fsp.readdir(join(root, d)).catch(() => [] as string[])) if (/^[0-9a-f]{64}$/.test(f)) out.push(join(root, d, f))
  }
  return out.sort()
}

async function files (folder: string, n: number): Promise<Record<string, Buffer>> {
  const data: Record<string, Buffer> = {}
  for (let i = 0; i < n; i++) data[`Prüfung ${i} ✓.bin`] = randomBytes(60_000 + i * 250_000)
  for (const [name, b] of Object.entries(data)) await fsp.writeFile(join(folder, name), b)
  return data
}

test('shards altered or deleted on a peer\'s disk: audits catch them within the period, repair restores full redundancy', async (t) => {
  const ts = await testSwarm(t, { peers: 8 })
  const ids = await peerIds(ts)
  const folder = await tempDir(t, 'dustbox-folder-')
  const data = await files(folder, 8)
  const n = Object.keys(data).length
  await ts.startOwner([folder], [], { ...REPAIR_TUNABLES, lostAfterMs: 600_000 })
  const s0 = await ts.waitFor('all stubbed', st => stubbedCount(st) === n, 120_000)
  const owner = s0.identity

  // One peer's copies altered (one byte flipped each), another's deleted.
  const mine = new Map<typeof ts.peers[number], string[]>()
  for (const p of ts.peers) {
    const ids = await recorded(ts.ownerHome, p.home)
    mine.set(p, (await shardFiles(p.home, owner)).filter(f => ids.has(f.slice(-64))))
  }
  const withShards = ts.peers.filter(p => mine.get(p)!.length >= 3)
  assert.ok(withShards.length >= 2)
  const [alterer, deleter] = withShards
  const altered = mine.get(alterer)!.slice(0, 3)
  for (const f of altered) {
    const b = await fsp.readFile(f)
    b[Math.floor(b.length / 2)] ^= 0x5a
    await fsp.writeFile(f, b)
  }
  const deleted = mine.get(deleter)!.slice(0, 3)
  for (const f of deleted) await fsp.rm(f)

  // Every copy is audited within auditPeriodMs (4 s) plus a round: the six bad copies are found and
  // rebuilt. (A copy whose audit answers ran out is re-read by a refresh, which also finds it bad: under
  // load some of the six are caught that way first, so the test counts copies, not failed audits.)
  const s = await ts.waitFor('bad copies found and rebuilt', async st => {
    const a = st.peers.find(p => p.short === ids.get(alterer))
    const d = st.peers.find(p => p.short === ids.get(deleter))
    if (a === undefined || d === undefined || a.audits.failed + d.audits.failed < 1 || st.repair.shardsRebuilt < 6 ||
      st.health.full !== n || st.health.repairing !== 0) return false
    // Each bad copy is either no longer recorded on its peer, or was put there again intact by the repair.
    for (const [peer, list] of [[alterer, altered], [deleter, deleted]] as const) {
      const now = await recorded(ts.ownerHome, peer.home)
      for (const f of list) {
        if (!now.has(f.slice(-64))) continue
        const b = await fsp.readFile(f).catch(() => null)
        if (b === null || shardIdOf(b).toString('hex') !== f.slice(-64)) return false
      }
    }
    return true
  }, 120_000)
  assert.ok(s.audits.challenges > 0)
  // The peers stay (a few bad copies lower the score; they are not lost for it).
  assert.notEqual(s.peers.find(p => p.short === ids.get(alterer))?.state, 'lost')
  // What the peers held was replaced: none of the altered or deleted copies is still recorded.
  const r = await ts.call<{ audited: { failed: number }, unrecoverableTotal: number }>('repair', {})
  assert.equal(r.unrecoverableTotal, 0)
  for (const [name, b] of Object.entries(data)) {
    const o = await ts.call<{ path: string }>('open', { path: join(folder, name + '.f') })
    assert.equal(sha256(await fsp.readFile(o.path)), sha256(b), name)
  }
})

for (const mode of ['nodata', 'slow'] as const) {
  test(`a ${mode === 'nodata' ? 'peer that says HAS but never sends data' : 'slowloris peer'} is routed around, then lost and replaced`, async (t) => {
    const ts = await testSwarm(t, { peers: 6 })
    const bad = await ts.swarm.startAgent({ name: 'hostile', home: join(ts.base, 'hostile'), bin: HOSTILE, env: { DUSTBOX_HOSTILE: mode, DUSTBOX_HOSTILE_DELAY_MS: '20000' } })
    ts.peers.push(bad)
    const badId = (await agentStatus(bad.home)).identity.slice(0, 8)
    const folder = await tempDir(t, 'dustbox-folder-')
    // Long lost-after: the hostile peer can only be lost by its score. Audits answered within 2 s.
    // A long keepalive: a peer whose requests hang also leaves pings behind them unanswered, and
    // its channel would be closed and redialled (17 s away at times); the score is what is tested.
    await ts.startOwner([folder], [], { ...REPAIR_TUNABLES, lostAfterMs: 600_000, auditTimeoutMs: 2000, getTimeoutMs: 5000, auditRoundMs: 60_000, keepaliveMs: 60_000 })
    // The files come once the owner has met every peer, the hostile one included, so it gets shards.
    await ts.waitFor('every peer connected', st => st.peers.filter(p => p.connected).length >= ts.peers.length, 60_000)
    const data = await files(folder, 6)
    const n = Object.keys(data).length
    await ts.waitFor('all stubbed', st => stubbedCount(st) === n, 120_000)
    const st0 = await ts.status()
    assert.ok((st0.peers.find(p => p.short === badId)?.holdsForMe ?? 0) > 0, 'the hostile peer holds shards')

    // Every stub opens: the reads the hostile peer never (or only after 20 s) answers are hedged to
    // other peers. (No timing assertion: how fast is the bench's business, not the test's.)
    for (const [name, b] of Object.entries(data)) {
      const o = await ts.call<{ path: string }>('open', { path: join(folder, name + '.f') })
      assert.equal(sha256(await fsp.readFile(o.path)), sha256(b), name)
    }
    // Audit rounds (via dustbox repair) go unanswered: the score falls, the peer is lost, its shards move.
    // Each call runs one audit round (at most auditTimeoutMs per unanswered batch); bounded in count and time.
    const until = Date.now() + 120_000
    for (let i = 0; i < 400 && Date.now() < until; i++) {
      const s = await ts.status()
      if (s.peers.find(p => p.short === badId)?.state === 'lost') break
      await ts.call('repair', { wait: false })
      await new Promise(resolve => setTimeout(resolve, 300))
    }
    const s = await ts.waitFor('hostile peer lost and replaced', st => {
      const h = st.peers.find(p => p.short === badId)
      return h?.state === 'lost' && h.holdsForMe === 0 && st.health.full === n && st.health.repairing === 0
    }, 90_000)
    assert.match(s.peers.find(p => p.short === badId)!.lostWhy ?? '', /score/)
  })
}
