// Hostile input to real DHT nodes on 127.0.0.1: malformed and mutated KRPC packets of every kind,
// replies that try to plant addresses outside the testnet, a burst from one address, and a flood of
// 10^4 fake announces (addresses that never answer) from many sockets. The node never crashes,
// its tables stay within their bounds, and a real peer announced before the flood is still found.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import bencode from 'bencode'
import { testnet, startDhtNode } from './helpers/dht-testnet.js'
import { rawSocket, type Raw } from './helpers/krpc-raw.js'
import { LONG } from './helpers/fixtures.js'
import { MAX_PEERS_PER_TOPIC, MAX_PER_ANNOUNCER, MAX_TOPICS } from '../dht/announce-store.js'

const MUTATIONS = Number(process.env.DUSTBOX_FUZZ_KRPC ?? (LONG ? 100_000 : 10_000))
const FAKE_ANNOUNCES = 10_000
const fast = { guard: { ratePerEndpoint: 1e6, burstPerEndpoint: 1e6, ratePerIp: 1e6, burstPerIp: 1e6, rateTotal: 1e6, burstTotal: 1e6 } }
const id = (): Buffer => randomBytes(20)

/** Hand-made packets that break one rule each (types, sizes, missing fields) for every message kind. */
function malformed (): Array<Uint8Array | Record<string, unknown>> {
  const ih = id()
  const q = (name: string, a: unknown): Record<string, unknown> => ({ t: Buffer.from('aa'), y: 'q', q: name, a })
  const r = (body: unknown, t = Buffer.from([0, 1])): Record<string, unknown> => ({ t, y: 'r', r: body })
  return [
    Buffer.alloc(0), Buffer.from('d'), Buffer.from('de'), Buffer.from('i42e'), Buffer.from('l'.repeat(900) + 'e'.repeat(900)),
    randomBytes(100), Buffer.alloc(4000, 0x61), Buffer.from('d1:t2:aa1:y1:qe'),
    // Found by this test at 10^5 mutations: a negative string length sends both bencode decoders into an endless allocation.
    Buffer.from('d1:eli201e-3:Generic&rrore1:t2:ab1:y1:ee', 'latin1'),
    { t: 5, y: 'q', q: 'ping', a: { id: id() } }, { t: Buffer.from('aa'), y: 7 }, { t: Buffer.from('aa'), y: 'z' },
    { t: Buffer.alloc(40), y: 'q', q: 'ping', a: { id: id() } },
    q('ping', 3), q('ping', { id: 'short' }), q('ping', { id: 42 }), q('find_node', { id: id() }), q('find_node', { id: id(), target: 9 }),
    q('get_peers', { id: id(), info_hash: [1, 2] }), q('get_peers', { id: id() }),
    q('announce_peer', { id: id(), info_hash: ih, port: 80, token: 12345 }), q('announce_peer', { id: id(), info_hash: ih, port: '80', token: Buffer.from('x') }),
    q('announce_peer', { id: id(), info_hash: ih, port: 0, token: Buffer.from('x') }), q('announce_peer', { id: id(), info_hash: ih, port: 70000, token: Buffer.from('x') }),
    q('announce_peer', { id: id(), info_hash: ih, implied_port: 5, token: Buffer.from('x') }), q('announce_peer', { id: id(), info_hash: ih, port: 80, token: Buffer.alloc(500) }),
    q('get', { id: id(), target: Buffer.from('x') }), q('get', { id: id(), target: ih, seq: -1 }),
    q('put', { id: id(), token: Buffer.from('x'), v: { d: 1 } }), q('put', { id: id(), token: Buffer.from('x') }),
    q('put', { id: id(), token: Buffer.from('x'), v: Buffer.alloc(1001) }), q('put', { id: id(), token: Buffer.from('x'), v: Buffer.from('v'), k: Buffer.alloc(31), sig: Buffer.alloc(64), seq: 1 }),
    q('put', { id: id(), token: Buffer.from('x'), v: Buffer.from('v'), k: Buffer.alloc(32), sig: Buffer.alloc(64), seq: 2 ** 60 }),
    q('put', { id: id(), token: Buffer.from('x'), v: Buffer.from('v'), k: Buffer.alloc(32), sig: Buffer.alloc(64) }),
    q('put', { id: id(), token: Buffer.from('x'), v: Buffer.from('v'), salt: Buffer.alloc(65), k: Buffer.alloc(32), sig: Buffer.alloc(64), seq: 1 }),
    r({ id: id(), nodes: Buffer.alloc(25) }), r({ id: id(), nodes: 'x' }), r({ id: id(), values: Buffer.alloc(6) }), r({ id: id(), values: [1, 2] }),
    r({ id: id(), token: 5 }), r({ id: id(), v: Buffer.alloc(10), k: Buffer.alloc(32) }), r({ id: 'x' }), r({ id: id() }, Buffer.from('abc')),
    { t: Buffer.from([0, 1]), y: 'e', e: 'boom' }, { t: Buffer.from([0, 1]), y: 'e', e: [Buffer.from('x'), 1] }
  ]
}

function valid (target: number): Uint8Array[] {
  const ih = id()
  const enc = (m: unknown): Uint8Array => bencode.encode(m)
  void target
  return [
    enc({ t: Buffer.from('aa'), y: 'q', q: 'ping', a: { id: id() } }),
    enc({ t: Buffer.from('ab'), y: 'q', q: 'find_node', a: { id: id(), target: ih } }),
    enc({ t: Buffer.from('ac'), y: 'q', q: 'get_peers', a: { id: id(), info_hash: ih } }),
    enc({ t: Buffer.from('ad'), y: 'q', q: 'announce_peer', a: { id: id(), info_hash: ih, port: 6881, token: Buffer.alloc(20, 1), implied_port: 0 } }),
    enc({ t: Buffer.from('ae'), y: 'q', q: 'get', a: { id: id(), target: ih, seq: 1 } }),
    enc({ t: Buffer.from('af'), y: 'q', q: 'put', a: { id: id(), token: Buffer.alloc(20, 1), v: Buffer.from('value'), k: Buffer.alloc(32, 2), sig: Buffer.alloc(64, 3), seq: 4, salt: Buffer.from('s') } }),
    enc({ t: Buffer.from([0, 1]), y: 'r', r: { id: id(), nodes: randomBytes(26 * 8), token: Buffer.alloc(20), values: [randomBytes(6), randomBytes(6)] } }),
    enc({ t: Buffer.from([0, 2]), y: 'e', e: [201, Buffer.from('Generic Error')] })
  ]
}

async function alive (victim: { lookup: (ih: Buffer) => Promise<unknown> }, announcer: { announce: (ih: Buffer, p: number) => Promise<void> }): Promise<void> {
  const ih = id()
  await announcer.announce(ih, 4321)
  assert.deepEqual(await victim.lookup(ih), [{ host: '127.0.0.1', port: 4321 }])
}

test('malformed and mutated KRPC packets never crash a node, and it keeps serving lookups', async (t) => {
  const net = await testnet(t, 5, fast)
  const victim = net.nodes[2]
  const raws: Raw[] = await Promise.all(Array.from({ length: 4 }, async () => await rawSocket()))
  t.after(() => raws.forEach(r => r.close()))
  for (const m of malformed()) {
    if (m instanceof Uint8Array) raws[0].sendBytes(victim.port, m)
    else raws[0].send(victim.port, m)
  }
  await new Promise(resolve => setTimeout(resolve, 200))
  const s0 = victim.stats().guard
  assert.ok(s0.dropped.malformed + s0.dropped['too-large'] >= malformed().length - 2, JSON.stringify(s0))
  await alive(victim, net.nodes[4])
  const seeds = valid(victim.port)
  let sent = 0
  for (let i = 0; i < MUTATIONS; i++) {
    const b = Buffer.from(seeds[i % seeds.length])
    const flips = 1 + (i % 4)
    for (let k = 0; k < flips; k++) {
      const op = (i * 7 + k) % 3
      const at = Math.floor(Math.random() * b.length)
      if (op === 0) b[at] = Math.floor(Math.random() * 256)
      else if (op === 1) b[at] = '0123456789:ilde'.charCodeAt(Math.floor(Math.random() * 15))
      else b.copyWithin(at, Math.floor(Math.random() * b.length))
    }
    raws[i % raws.length].sendBytes(victim.port, i % 5 === 0 ? b.subarray(0, Math.floor(Math.random() * b.length)) : b)
    sent++
    if (i % 50 === 49) await new Promise(resolve => setTimeout(resolve, 1)) // paced, so the kernel's UDP buffer does not drop most
  }
  await new Promise(resolve => setTimeout(resolve, 300))
  const s = victim.stats()
  t.diagnostic(`${sent} mutated packets: ${s.guard.passed} passed, ${s.guard.dropped.malformed} malformed, ${s.guard.dropped['id-changed']} with a changed node id, ${s.guard.dropped['too-large']} too large, ${s.guard.dropped['rate-limited']} rate-limited; heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`)
  assert.ok(s.guard.received > sent / 2, `${s.guard.received} of ${sent} arrived`)
  assert.ok(s.guard.dropped.malformed > s.guard.received / 4)
  assert.ok(s.nodes <= 5 + 2 * raws.length, `${s.nodes} routing entries: a source address changes its id at most once a minute`)
  await alive(victim, net.nodes[4])
  await alive(net.nodes[4], victim)
  assert.equal(net.blockedSends(), 0)
})

test('replies cannot plant addresses outside the testnet; one address sending a burst is rate-limited', async (t) => {
  const evil = await rawSocket((m, reply) => {
    const nodes = Buffer.alloc(26 * 3)
    for (let i = 0; i < 3; i++) {
      randomBytes(20).copy(nodes, i * 26)
      Buffer.from(i === 0 ? [8, 8, 8, 8] : i === 1 ? [10, 0, 0, 1] : [224, 0, 0, 1]).copy(nodes, i * 26 + 20)
      nodes.writeUInt16BE(6881, i * 26 + 24)
    }
    reply({ id: Buffer.alloc(20, 9), nodes, token: Buffer.from('t'), values: [Buffer.from([1, 1, 1, 1, 0, 80]), Buffer.from([127, 0, 0, 1, 0, 81])] })
  })
  t.after(() => evil.close())
  const node = await startDhtNode(t, { bootstrap: [`127.0.0.1:${evil.port}`] })
  const found = await node.lookup(id())
  assert.deepEqual(found, [{ host: '127.0.0.1', port: 81 }])
  const s = node.stats()
  assert.equal(s.guard.blockedSends, 0, 'never even tried an outside address')
  assert.ok(s.guard.filteredAddresses >= 4)
  assert.deepEqual(node.stats().nodes, 1)
  // A burst from one address beyond the per-address allowance is dropped, and the node says so.
  const warnings: string[] = []
  node.on('warning', w => warnings.push(w.error.message))
  const burst = await rawSocket()
  t.after(() => burst.close())
  const burstId = id()
  for (let i = 0; i < 1000; i++) burst.send(node.port, { t: Buffer.from('aa'), y: 'q', q: 'ping', a: { id: burstId } })
  await new Promise(resolve => setTimeout(resolve, 300))
  assert.ok(node.stats().guard.dropped['rate-limited'] > 0, JSON.stringify(node.stats().guard))
  assert.ok(warnings.some(w => w.startsWith(`RATE_LIMITED: dropped a datagram from 127.0.0.1:${burst.port}`)), warnings.join('\n'))
  assert.ok(warnings.length <= 20, 'warnings are themselves rate-limited')
  // The same address with a new node id is taken once (a restart without state), not again within a minute.
  const before = node.stats().guard.dropped['id-changed']
  const quiet = await rawSocket()
  t.after(() => quiet.close())
  const ids = [id(), id(), id()]
  const answered = []
  for (const nid of ids) answered.push(await quiet.query(node.port, 'ping', { id: nid }, 500) !== null)
  assert.deepEqual(answered, [true, true, false])
  assert.equal(node.stats().guard.dropped['id-changed'] - before, 1, 'the second change within a minute is dropped')
})

test(`a flood of ${FAKE_ANNOUNCES} fake announces stays bounded and does not hide a real peer`, async (t) => {
  const net = await testnet(t, 6, { ...fast, store: { maxPerIp: 1000 } })
  const topic = id()
  await net.nodes[5].announce(topic, 5555) // the real peer, before the flood
  const socks: Raw[] = await Promise.all(Array.from({ length: 32 }, async () => await rawSocket()))
  t.after(() => socks.forEach(s => s.close()))
  const heap0 = process.memoryUsage().heapUsed
  let announced = 0
  const tokens = new Map<string, Buffer>()
  await Promise.all(socks.map(async (s, si) => {
    const sockId = id() // one id per socket: an address that changes ids is dropped (id-changed)
    for (let i = si; i < FAKE_ANNOUNCES; i += socks.length) {
      const victim = net.nodes[i % 5]
      const ih = i % 2 === 0 ? topic : id()
      const key = `${si}/${victim.port}`
      let token = tokens.get(key)
      if (token === undefined) {
        const r = await s.query(victim.port, 'get_peers', { id: sockId, info_hash: ih })
        token = Buffer.from(r.r.token)
        tokens.set(key, token)
      }
      // Ports nobody listens on: addresses that never answer.
      s.send(victim.port, { t: Buffer.from('xx'), y: 'q', q: 'announce_peer', a: { id: sockId, info_hash: ih, port: 20000 + (i % 40000), token } })
      announced++
      if (i % 64 === si) await new Promise(resolve => setTimeout(resolve, 1))
    }
  }))
  await new Promise(resolve => setTimeout(resolve, 300))
  const heapMiB = (process.memoryUsage().heapUsed - heap0) / 2 ** 20
  const stats = net.nodes.slice(0, 5).map(n => n.stats())
  t.diagnostic(`${announced} fake announces: stored per node ${stats.map(s => s.announces).join(', ')} in ${stats.map(s => s.announceTopics).join(', ')} topics; heap +${heapMiB.toFixed(1)} MiB for 6 nodes`)
  for (const s of stats) {
    assert.ok(s.announceTopics <= MAX_TOPICS)
    assert.ok(s.announces <= MAX_TOPICS * MAX_PEERS_PER_TOPIC)
  }
  // On the flooded topic each victim holds at most MAX_PER_ANNOUNCER per announcing socket.
  const onTopic = await net.nodes[0].lookup(topic)
  assert.ok(onTopic.length <= 5 * (32 * MAX_PER_ANNOUNCER + 1), `${onTopic.length}`)
  // The real peer is still in the replies, from every node that holds it.
  await Promise.all(net.nodes.map(async (n) => {
    const found = await n.lookup(topic)
    assert.ok(found.some(e => e.port === 5555), `node ${n.port} still finds the real peer`)
  }))
  assert.equal(net.blockedSends(), 0)
})
