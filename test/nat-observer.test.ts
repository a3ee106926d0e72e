// What a node learns of its own reachability (docs/reachability.md §2): the classification of what
// peers report (open, behind a NAT, endpoint-independent or symmetric mapping, a lying minority),
// bounded hostile input, and real nodes over uTP on 127.0.0.1 that find themselves reachable as is.

import test, { type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import sodium from 'sodium-native'
import { NetNode } from '../net/index.js'
import { NatObserver, classify, MAX_OBSERVATIONS, type Observation } from '../net/nat-observer.js'
import { tempDir } from './helpers/fixtures.js'

const key = (i: number): string => i.toString(16).padStart(64, '0')
const ob = (i: number, from: string, host: string, port: number): Observation => ({ by: key(i), from, host, port, at: Date.now() })
const local = { hosts: ['192.168.1.5', '127.0.0.1'], port: 4000 }

test('classification: unknown, open, NAT on one observer host, endpoint-independent, symmetric; a lying minority cannot flip it', () => {
  assert.equal(classify([], local).natType, 'unknown')
  const open = classify([ob(1, '1.1.1.1', '192.168.1.5', 4000), ob(2, '2.2.2.2', '192.168.1.5', 4000)], local)
  assert.equal(open.natType, 'open')
  assert.deepEqual(open.publicAddress, { host: '192.168.1.5', port: 4000 })
  assert.equal(classify([ob(1, '1.1.1.1', '203.0.113.7', 51000)], local).natType, 'nat')
  const eim = classify([ob(1, '1.1.1.1', '203.0.113.7', 51000), ob(2, '2.2.2.2', '203.0.113.7', 51000), ob(3, '3.3.3.3', '203.0.113.7', 51000)], local)
  assert.equal(eim.natType, 'endpoint-independent')
  assert.deepEqual(eim.publicAddress, { host: '203.0.113.7', port: 51000 })
  assert.equal(eim.mappedPorts, 1)
  assert.equal(eim.observerHosts, 3)
  const sym = classify([ob(1, '1.1.1.1', '203.0.113.7', 51000), ob(2, '2.2.2.2', '203.0.113.7', 51001), ob(3, '3.3.3.3', '203.0.113.7', 51002)], local)
  assert.equal(sym.natType, 'symmetric')
  assert.equal(sym.mappedPorts, 3)
  // One liar among four: still endpoint-independent at the majority's address.
  const lie = classify([ob(1, '1.1.1.1', '203.0.113.7', 51000), ob(2, '2.2.2.2', '203.0.113.7', 51000), ob(3, '3.3.3.3', '203.0.113.7', 51000), ob(4, '4.4.4.4', '198.51.100.1', 9)], local)
  assert.equal(lie.natType, 'endpoint-independent')
  assert.deepEqual(lie.publicAddress, { host: '203.0.113.7', port: 51000 })
})

test('observations are hostile input: invalid ones are ignored, one per peer, at most MAX_OBSERVATIONS', () => {
  const o = new NatObserver(() => local)
  o.observe(key(1), '1.1.1.1', 'not-an-ip', 5)
  o.observe(key(1), '1.1.1.1', '203.0.113.7', 0)
  o.observe(key(1), '1.1.1.1', '203.0.113.7', 70000)
  o.observe('zz', '1.1.1.1', '203.0.113.7', 5)
  o.observe(key(1), '1.1.1.1', { toString: () => '1.2.3.4' }, 5)
  assert.equal(o.observations().length, 0)
  o.observe(key(1), '1.1.1.1', '203.0.113.7', 5)
  o.observe(key(1), '1.1.1.1', '203.0.113.7', 6)
  assert.equal(o.observations().length, 1)
  assert.equal(o.observations()[0].port, 6)
  for (let i = 0; i < 200; i++) o.observe(key(1000 + i), `10.0.${i >> 8}.${i & 255}`, '203.0.113.7', 6)
  assert.equal(o.observations().length, MAX_OBSERVATIONS)
})

test('after a remap, connected peers decide: one live report of a new public host wins at once; two live hosts outvote peers that left', () => {
  const connected = new Set<string>()
  const o = new NatObserver(() => local, Date.now, by => connected.has(by))
  for (let i = 1; i <= 4; i++) o.observe(key(i), `10.0.0.${i}`, '203.0.113.7', 51000)
  assert.equal(o.status().natType, 'endpoint-independent')
  // Every peer disconnected (the router restarted): the old reports still say what is known.
  assert.deepEqual(o.status().publicAddress, { host: '203.0.113.7', port: 51000 })
  // One peer is back and sees a new public host: that is the address now (type not known yet).
  connected.add(key(1))
  o.observe(key(1), '10.0.0.1', '198.51.100.20', 40000)
  assert.deepEqual(o.status().publicAddress, { host: '198.51.100.20', port: 40000 })
  assert.equal(o.status().natType, 'nat')
  // A second host confirms it: endpoint-independent again, three stale reports notwithstanding.
  connected.add(key(2))
  o.observe(key(2), '10.0.0.2', '198.51.100.20', 40000)
  assert.equal(o.status().natType, 'endpoint-independent')
  assert.equal(o.status().observers, 2)
  // Churn without a change: one live peer agreeing with the old reports keeps all of them counted.
  const p = new NatObserver(() => local, Date.now, by => by === key(1))
  for (let i = 1; i <= 3; i++) p.observe(key(i), `10.0.0.${i}`, '203.0.113.7', 51000)
  assert.equal(p.status().natType, 'endpoint-independent')
  assert.equal(p.status().observers, 3)
  // Same host, a new port (the masquerade restarted): one live peer does not decide; two do.
  const q = new NatObserver(() => local, Date.now, by => by === key(1) || by === key(2))
  for (let i = 1; i <= 3; i++) q.observe(key(i), `10.0.0.${i}`, '203.0.113.7', 51000)
  q.observe(key(1), '10.0.0.1', '203.0.113.7', 52000)
  q.observe(key(2), '10.0.0.2', '203.0.113.7', 52000)
  assert.deepEqual(q.status().publicAddress, { host: '203.0.113.7', port: 52000 })
})

async function node (t: TestContext, transports: Array<'utp' | 'tcp'> = ['utp']): Promise<NetNode> {
  const pk = Buffer.alloc(32)
  const sk = Buffer.alloc(64)
  sodium.crypto_sign_keypair(pk, sk)
  const n = new NetNode({ identity: { publicKey: pk, secretKey: sk }, host: '127.0.0.1', transports, stateDir: await tempDir(t, 'dustbox-nat-'), store: null, banMs: 0 })
  await n.ready()
  t.after(async () => { await n.close() })
  return n
}

test('real nodes over uTP on 127.0.0.1: peers report where they see the socket, and the node finds itself reachable', async (t) => {
  const [a, b, c] = [await node(t), await node(t), await node(t)]
  assert.equal(a.reachability().natType, 'unknown')
  await a.connect({ host: '127.0.0.1', port: b.port }, { expect: b.key })
  await c.connect({ host: '127.0.0.1', port: a.port }, { expect: a.key })
  const deadline = Date.now() + 10_000
  while (a.reachability().observers < 2 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  const r = a.reachability()
  assert.equal(r.observers, 2)
  assert.equal(r.natType, 'open')
  assert.deepEqual(r.publicAddress, { host: '127.0.0.1', port: a.port })
})

test('address probe: a peer reached over TCP is asked over UDP where it sees the socket; probes are no bigger than asks, unsolicited answers are ignored', async (t) => {
  const [a, b] = [await node(t, ['utp', 'tcp']), await node(t, ['utp', 'tcp'])]
  await a.connect({ host: '127.0.0.1', port: b.port }, { expect: b.key, transports: ['tcp'] })
  const deadline = Date.now() + 10_000
  while (a.reachability().observers < 1 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  assert.equal(a.reachability().observers, 1, 'the probe over UDP gave an observation')
  assert.deepEqual(a.reachability().publicAddress, { host: '127.0.0.1', port: a.port })
  // A raw ASK from a plain UDP socket: the answer has the ask's size and says where it came from.
  const dgram = await import('node:dgram')
  const { encodeProbe, ProbeTypes, PROBE_BYTES } = await import('../net/address-probe.js')
  const sock = dgram.createSocket('udp4')
  t.after(() => sock.close())
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  const answer = new Promise<Buffer>(resolve => sock.once('message', m => resolve(m)))
  sock.send(encodeProbe(ProbeTypes.ASK, Buffer.alloc(8, 7), null), b.port, '127.0.0.1')
  const m = await answer
  assert.equal(m.length, PROBE_BYTES)
  assert.equal(m[4], ProbeTypes.ANSWER)
  assert.equal(m.readUInt16BE(18), sock.address().port)
  // An answer nobody asked for, and garbage: nothing observed, nothing crashes.
  const before = b.reachability().observers
  sock.send(encodeProbe(ProbeTypes.ANSWER, Buffer.alloc(8, 9), { host: '6.6.6.6', port: 6 }), b.port, '127.0.0.1')
  sock.send(Buffer.from('DBXP garbage'), b.port, '127.0.0.1')
  await new Promise(resolve => setTimeout(resolve, 200))
  assert.equal(b.reachability().observers, before)
})
