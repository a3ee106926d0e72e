// Peers behind NATs reach each other (docs/reachability.md §4-§5), in network namespaces the test
// makes and removes (test/helpers/natlab.ts): a DHT node and one public agent C (no storage, relay
// opted in) on the "internet"; the owner A behind an endpoint-independent NAT, a storage peer B
// behind another endpoint-independent NAT, a storage peer S behind a symmetric NAT. A and B find each
// other through the DHT and connect by hole punching (C introduces them); A and S cannot punch (S's
// NAT maps every destination to a new port) and fall back to a circuit through C. A places two files
// (k=1, m=1: one shard on B, one on S), opens the first with S stopped (the bytes come through the
// punched hole) and the second with B stopped (through the relay), byte-exact; the relay's tap of
// every byte it forwarded holds no plaintext. Skips with the reason where namespaces or nftables are
// unavailable.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { randomBytes } from 'node:crypto'
import { LocalSwarm, agentStatus } from '../agent/swarm.js'
import { ControlClient } from '../agent/control-client.js'
import { natLab } from './helpers/natlab.js'
import { untilStatus } from './helpers/agent-swarm.js'

const TUNABLES = { indirectAfterMs: 500, dialTimeoutMs: 10_000, upgradeIntervalMs: 5_000 }
/**
 * B and S look the swarm up only as they start (before A exists): otherwise B dialling A at the same
 * moment A dials B opens both NATs by itself (an unplanned simultaneous open, which works between two
 * endpoint-independent NATs too) and the introduction this test is about never happens.
 */
const PASSIVE = { ...TUNABLES, lookupIntervalMs: 600_000 }

async function call<T> (home: string, method: string, params: Record<string, unknown>): Promise<T> {
  const c = await ControlClient.connect(home, { timeoutMs: 3000 })
  try { return await c.call<T>(method, params, { timeoutMs: 120_000 }) } finally { await c.close() }
}

/** Random (incompressible) bytes with a recognisable marker every 4 KiB: the relay's tap must never contain it. */
function content (tag: string, bytes: number): Buffer {
  const b = randomBytes(bytes)
  for (let i = 0; i + 64 <= bytes; i += 4096) Buffer.from(`PLAINTEXT-MARKER ${tag} ${i} `.padEnd(64, '.')).copy(b, i)
  return b
}

test('behind NATs: A and B connect through a punched hole, A and S through a relay; files open over both, the relay sees only ciphertext', async (t) => {
  const { lab, why } = natLab(t, ['endpoint-independent', 'endpoint-independent', 'symmetric'])
  if (lab === null) { t.skip(why); return }
  for (const ip of ['10.77.0.254', '10.77.0.10']) lab.addPublic(ip)
  const base = await fsp.mkdtemp(join(tmpdir(), 'dustbox-punch-'))
  const swarm = new LocalSwarm(base)
  t.after(async () => { await swarm.close(); await fsp.rm(base, { recursive: true, force: true, maxRetries: 3 }) })
  const pub = lab.wrap(lab.inet)
  const [natA, natB, natS] = lab.nats
  const folder = join(base, 'Fotos — 写真')
  await fsp.mkdir(folder)
  const tap = join(base, 'relay-tap.bin')
  await fsp.writeFile(tap, '')
  await swarm.startBootstrap({ host: '10.77.0.254', wrap: pub })
  const homes = { a: join(base, 'a'), b: join(base, 'b'), s: join(base, 's'), c: join(base, 'c') }
  await swarm.startAgent({ name: 'relay-c', home: homes.c, host: '10.77.0.10', wrap: pub, donate: '0', extraArgs: ['--relay', '50M'], env: { DUSTBOX_RELAY_TAP: tap }, tunables: TUNABLES })
  await swarm.startAgent({ name: 'peer-b', home: homes.b, host: natB.lan, wrap: lab.wrap(natB.host), tunables: PASSIVE })
  let s = await swarm.startAgent({ name: 'peer-s', home: homes.s, host: natS.lan, wrap: lab.wrap(natS.host), tunables: PASSIVE })
  const a = await swarm.startAgent({ name: 'owner-a', home: homes.a, host: natA.lan, wrap: lab.wrap(natA.host), folders: [folder], extraArgs: ['--redundancy', '1+1', '--settle', '0.3'], tunables: TUNABLES })
  const b = swarm.children.find(c => c.name === 'peer-b')!
  const idOf = async (home: string): Promise<string> => (await agentStatus(home)).identity.slice(0, 8)
  const [bId, sId] = [await idOf(homes.b), await idOf(homes.s)]

  const t0 = Date.now()
  const st = await untilStatus('A to reach B through a punched hole and S through the relay', homes.a, x => {
    const pb = x.peers.find(p => p.short === bId)
    const ps = x.peers.find(p => p.short === sId)
    return pb?.connected === true && pb.path === 'punched' && ps?.connected === true && ps.path === 'relayed'
  }, 90_000)
  t.diagnostic(`A connected to B (punched) and S (relayed) ${Date.now() - t0} ms after A started`)
  assert.equal(st.peers.find(p => p.short === bId)!.transport, 'utp')
  assert.equal(st.peers.find(p => p.short === sId)!.transport, 'relay')

  const files = { one: content('one', 3 * 1024 * 1024 + 17), two: content('two', 2 * 1024 * 1024 + 5) }
  await fsp.writeFile(join(folder, 'über-one.bin'), files.one)
  await fsp.writeFile(join(folder, 'two ✓.bin'), files.two)
  await untilStatus('both files to be placed and stubbed', homes.a, x => (x.folders[0]?.files.stubbed ?? 0) === 2, 120_000)
  const placed = await agentStatus(homes.a)
  assert.ok(placed.peers.find(p => p.short === bId)!.holdsForMe > 0, 'B holds a shard of every block')
  assert.ok(placed.peers.find(p => p.short === sId)!.holdsForMe > 0, 'S holds a shard of every block (placed through the relay)')
  const relay = (await agentStatus(homes.c)).relay!
  assert.ok(relay.enabled && relay.opened >= 1 && relay.bytes > (files.one.length + files.two.length) / 2, `the relay forwarded ${relay.bytes} bytes`)

  // One through the punched hole: S is stopped, B alone holds what A needs.
  await swarm.stop(s)
  const r1 = await call<{ path: string }>(homes.a, 'open', { path: join(folder, 'über-one.bin.f') })
  assert.ok((await fsp.readFile(r1.path)).equals(files.one), 'file one byte-exact, through the punched hole')

  // One through the relay: S comes back (and is relayed again), B is stopped.
  s = await swarm.startAgent({ name: 'peer-s', home: homes.s, host: natS.lan, wrap: lab.wrap(natS.host), tunables: PASSIVE })
  await untilStatus('A to reach S through the relay again', homes.a, x => x.peers.find(p => p.short === sId)?.path === 'relayed', 90_000)
  await swarm.stop(b)
  const r2 = await call<{ path: string }>(homes.a, 'open', { path: join(folder, 'two ✓.bin.f') })
  assert.ok((await fsp.readFile(r2.path)).equals(files.two), 'file two byte-exact, through the relay')

  // What the relay saw: volumes, never content.
  const seen = await fsp.readFile(tap)
  assert.ok(seen.length > files.two.length, `the tap holds ${seen.length} bytes`)
  assert.equal(seen.indexOf('PLAINTEXT-MARKER'), -1, 'no plaintext crossed the relay')
  assert.ok(a.proc.exitCode === null)
})
