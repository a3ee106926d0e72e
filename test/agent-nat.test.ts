// Agents behind NATs, in network namespaces the test makes and removes (test/helpers/natlab.ts,
// docs/reachability.md §6): two public storage peers and a DHT node on the "internet", one agent
// behind an endpoint-independent NAT and one behind a symmetric NAT (nftables masquerade, `random`).
// Each learns its public address and its NAT's mapping behaviour from what its peers see; the public
// peers find themselves reachable. Skips with the reason where namespaces or nftables are unavailable.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { LocalSwarm } from '../agent/swarm.js'
import { natLab } from './helpers/natlab.js'
import { untilStatus } from './helpers/agent-swarm.js'

test('behind NATs in network namespaces: each agent learns its public address and NAT type from its peers', async (t) => {
  const { lab, why } = natLab(t, ['endpoint-independent', 'symmetric'])
  if (lab === null) { t.skip(why); return }
  for (const ip of ['10.77.0.254', '10.77.0.10', '10.77.0.11']) lab.addPublic(ip)
  const base = await fsp.mkdtemp(join(tmpdir(), 'dustbox-nat-'))
  const swarm = new LocalSwarm(base)
  t.after(async () => { await swarm.close(); await fsp.rm(base, { recursive: true, force: true, maxRetries: 3 }) })
  const pub = lab.wrap(lab.inet)
  await swarm.startBootstrap({ host: '10.77.0.254', wrap: pub })
  await swarm.startAgent({ name: 'public-1', home: join(base, 'pub1'), host: '10.77.0.10', wrap: pub })
  await swarm.startAgent({ name: 'public-2', home: join(base, 'pub2'), host: '10.77.0.11', wrap: pub })
  const [eim, sym] = lab.nats
  await swarm.startAgent({ name: 'behind-eim', home: join(base, 'eim'), host: eim.lan, wrap: lab.wrap(eim.host) })
  await swarm.startAgent({ name: 'behind-sym', home: join(base, 'sym'), host: sym.lan, wrap: lab.wrap(sym.host) })

  const e = await untilStatus('the agent behind the endpoint-independent NAT to know it', join(base, 'eim'), s => s.reachability?.natType === 'endpoint-independent', 60_000)
  assert.equal(e.reachability!.publicAddress!.host, eim.wan, 'seen at its router\'s public address')
  assert.ok(e.reachability!.observerHosts >= 2)
  const s = await untilStatus('the agent behind the symmetric NAT to know it', join(base, 'sym'), st => st.reachability?.natType === 'symmetric', 60_000)
  assert.equal(s.reachability!.publicAddress!.host, sym.wan)
  assert.ok(s.reachability!.mappedPorts >= 2, 'a new port per destination')
  const p = await untilStatus('a public peer to find itself reachable', join(base, 'pub1'), st => st.reachability?.natType === 'open', 60_000)
  assert.deepEqual(p.reachability!.publicAddress, { host: '10.77.0.10', port: p.port })
})
