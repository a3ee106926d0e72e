// Introductions, hole punching and relays between real NetNodes over real uTP/TCP sockets on
// 127.0.0.1 (docs/reachability.md §4-§5): the wire codecs of the new messages (golden bytes, strict
// decoding), an introduction by key and by address that ends in a uTP connection marked "punched" on
// both sides, a relayed connection (end-to-end handshake inside the circuit) that stores and reads a
// shard while the relay's tap never sees the plaintext, a better path replacing a relayed one, and the
// refusals: relaying off by default, unknown targets, circuits over the cap, PUNCH datagrams with a
// wrong nonce or from another host. NAT-crossing runs in network namespaces: agent-nat-punch.test.ts.

import test, { type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import sodium from 'sodium-native'
import { NetNode, shardIdOf, type NetNodeOptions } from '../net/index.js'
import { decodeFrame, encodeReply, encodeRequest, MsgTypes } from '../net/messages.js'
import { HolePuncher, PUNCH_TYPE } from '../net/hole-punch.js'
import { encodeProbe, AddressProbe } from '../net/address-probe.js'
import { PerMinute } from '../net/rate-limit.js'
import { NetError } from '../net/errors.js'
import { tempDir } from './helpers/fixtures.js'

function keyPair (): { publicKey: Buffer, secretKey: Buffer } {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  return { publicKey, secretKey }
}

async function startNode (t: TestContext, opts: Partial<NetNodeOptions> & { storage?: boolean } = {}): Promise<NetNode> {
  const dir = await tempDir(t, 'dustbox-reach-')
  const { storage, ...rest } = opts
  const node = new NetNode({
    identity: keyPair(),
    host: '127.0.0.1',
    stateDir: dir,
    store: storage === true ? { dir: `${dir}/store`, donatedBytes: 1 << 26, reserveDiskBytes: 0 } : null,
    handshakeTimeoutMs: 3000,
    banMs: 0,
    ...rest
  })
  node.on('warning', () => {})
  await node.ready()
  t.after(async () => { await node.close() })
  return node
}

const dial = async (from: NetNode, to: NetNode, transports: Array<'utp' | 'tcp'> = ['utp']): Promise<void> => {
  await from.connect({ host: '127.0.0.1', port: to.port }, { expect: to.id, transports })
}

async function waitFor (what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

test('reach messages: golden bytes and strict decoding', () => {
  const key = Buffer.alloc(32, 0xab)
  const nonce = Buffer.from('0102030405060708', 'hex')
  const intro = encodeRequest(7, { kind: 'INTRODUCE', target: key, targetAddr: null, self: { host: '203.0.113.7', port: 51000 } })
  assert.equal(intro.toString('hex'), '0d00000007' + 'ab'.repeat(32) + '00000000000000' + '04cb007107c738')
  assert.deepEqual(decodeFrame(intro), { dir: 'request', id: 7, req: { kind: 'INTRODUCE', target: key, targetAddr: null, self: { host: '203.0.113.7', port: 51000 } } })
  const reply = encodeReply(7, { kind: 'INTRODUCE', key, addr: { host: '198.51.100.2', port: 6881 }, nonce })
  assert.equal(reply.toString('hex'), '8d00000007' + 'ab'.repeat(32) + '04c6336402' + '1ae1' + '0102030405060708')
  const data = encodeRequest(9, { kind: 'RELAY_DATA', circuit: 3, data: Buffer.from('xy') })
  assert.equal(data.toString('hex'), '11000000090000000378' + '79')
  assert.equal(encodeRequest(2, { kind: 'RELAY_OPEN', target: key }).toString('hex'), '0f00000002' + 'ab'.repeat(32))
  assert.equal(encodeReply(2, { kind: 'RELAY_OPEN', circuit: 258 }).toString('hex'), '8f0000000200000102')
  assert.equal(encodeRequest(4, { kind: 'PUNCH', from: key, addr: { host: '10.0.0.1', port: 1 }, nonce }).toString('hex'), '0e00000004' + 'ab'.repeat(32) + '040a0000010001' + '0102030405060708')
  // Strict: a truncated key, a PUNCH without an address, port 0, family 6, an empty RELAY_DATA.
  const bad = [
    Buffer.concat([Buffer.from([MsgTypes.RELAY_OPEN, 0, 0, 0, 1]), Buffer.alloc(31)]),
    Buffer.concat([Buffer.from([MsgTypes.PUNCH, 0, 0, 0, 1]), key, Buffer.alloc(7), nonce]),
    Buffer.concat([Buffer.from([MsgTypes.PUNCH, 0, 0, 0, 1]), key, Buffer.from('040a00000100' + '00', 'hex'), nonce]),
    Buffer.concat([Buffer.from([MsgTypes.INTRODUCE, 0, 0, 0, 1]), key, Buffer.from('06000000000001', 'hex'), Buffer.alloc(7)]),
    Buffer.from([MsgTypes.RELAY_DATA, 0, 0, 0, 1, 0, 0, 0, 1])
  ]
  for (const b of bad) assert.throws(() => decodeFrame(b), (e: unknown) => e instanceof NetError && e.code === 'BAD_MESSAGE', b.toString('hex'))
})

test('hole puncher: answers only its nonce from the expected host, finds the source port, marks it punched', async () => {
  const sent: Array<{ buf: Buffer, host: string, port: number }> = []
  const p = new HolePuncher((buf, host, port) => { sent.push({ buf, host, port }) })
  const nonce = randomBytes(8)
  const found = p.punch(nonce, '198.51.100.9', 4000, { windowMs: 2000, intervalMs: 50 })
  assert.ok(sent.length >= 1 && sent[0].host === '198.51.100.9' && sent[0].buf[4] === PUNCH_TYPE)
  // Wrong nonce, wrong host, a probe: ignored.
  assert.equal(p.onDatagram(encodeProbe(PUNCH_TYPE, randomBytes(8), null), { address: '198.51.100.9', port: 4001 }), true)
  assert.equal(p.onDatagram(encodeProbe(PUNCH_TYPE, nonce, null), { address: '198.51.100.10', port: 4001 }), true)
  assert.equal(p.onDatagram(encodeProbe(0x01, nonce, null), { address: '198.51.100.9', port: 4001 }), false)
  const before = sent.length
  p.onDatagram(encodeProbe(PUNCH_TYPE, nonce, null), { address: '198.51.100.9', port: 4001 })
  assert.deepEqual(await found, { host: '198.51.100.9', port: 4001 }, 'the port its NAT chose, not the one asked')
  assert.ok(sent.slice(before).some(s => s.port === 4001), 'answered once at the source')
  assert.equal(p.wasPunched({ host: '198.51.100.9', port: 4001 }), true)
  assert.equal(p.wasPunched({ host: '198.51.100.9', port: 4000 }), true, 'the address punched towards counts too')
  assert.equal(p.wasPunched({ host: '198.51.100.9', port: 4002 }), false)
  // No answer: null when the window ends.
  assert.equal(await p.punch(randomBytes(8), '198.51.100.9', 4000, { windowMs: 200, intervalMs: 50 }), null)
  p.close()
})

test('introduction by key and by address: A and B meet through C and connect over uTP, punched on both sides', async t => {
  const c = await startNode(t)
  const a = await startNode(t, { reach: { indirectAfterMs: 0 } })
  const b = await startNode(t)
  await dial(a, c)
  await dial(b, c, ['tcp']) // C sees B over TCP: it must give A B's uTP port, not the TCP one
  const peer = await a.reach.connectIndirect({ key: b.key, host: '127.0.0.1' }, AbortSignal.timeout(10_000))
  assert.equal(peer.path, 'punched')
  assert.equal(peer.transport, 'utp')
  assert.ok(peer.key.equals(b.key))
  await waitFor('B to see A', () => b.peer(a.key)?.isOpen === true)
  assert.equal(b.peer(a.key)!.path, 'punched')
  await peer.ping()
  peer.close()
  await waitFor('B to lose A', () => b.peer(a.key) === undefined)
  // By address (what a DHT lookup gives): C finds B by the uTP port B connected from... over TCP it
  // knows B's uTP port from B's HELLO.
  const again = await a.reach.connectIndirect({ host: '127.0.0.1', port: b.port }, AbortSignal.timeout(10_000))
  assert.ok(again.key.equals(b.key))
  assert.equal(again.path, 'punched')
})

test('relay: a circuit through R carries the end-to-end channel; R only sees ciphertext; off unless opted in', async t => {
  const tapped: Buffer[] = []
  const r = await startNode(t, { reach: { relay: { enabled: true, tap: d => tapped.push(Buffer.from(d)) } } })
  const plain = await startNode(t) // relaying is off by default
  const a = await startNode(t)
  const s = await startNode(t, { storage: true })
  for (const x of [a, s]) { await dial(x, r); await dial(x, plain) }
  await assert.rejects(plain.reach.relay.open(plain.peer(a.key)!, s.key), (e: unknown) => e instanceof NetError && e.code === 'REFUSED')
  const peer = await a.reach.relayTo(s.key, AbortSignal.timeout(10_000))
  assert.equal(peer.path, 'relayed')
  assert.equal(peer.transport, 'relay')
  await waitFor('S to see A relayed', () => s.peer(a.key)?.path === 'relayed')
  // A shard of recognisable plaintext through the circuit, stored at S and read back.
  const secret = Buffer.alloc(300_000)
  for (let i = 0; i < secret.length; i += 32) Buffer.from('PLAINTEXT-MARKER-dustbox-relay!!').copy(secret, i)
  const id = shardIdOf(secret)
  assert.equal((await peer.put(id, secret)).stored, true)
  assert.ok((await peer.get(id)).equals(secret))
  const seen = Buffer.concat(tapped)
  assert.ok(seen.length > secret.length * 2, `the relay forwarded ${seen.length} bytes`)
  assert.equal(seen.indexOf('PLAINTEXT-MARKER'), -1, 'the relay saw no plaintext')
  assert.equal(seen.indexOf(id), -1, 'nor the shard id')
  const st = r.relayStats()
  assert.equal(st.circuits, 1)
  assert.ok(st.bytes === seen.length)
  // A better path replaces the relayed one: a direct dial wins over the circuit, on both sides.
  await dial(a, s)
  await waitFor('the direct connection to replace the relayed one', () => a.peer(s.key)?.path === 'direct' && s.peer(a.key)?.path === 'direct')
  await waitFor('the circuit to close', () => r.relayStats().circuits === 0)
  // Unknown target, and a relay at its cap.
  await assert.rejects(a.reach.relayTo(keyPair().publicKey, AbortSignal.timeout(5000)), (e: unknown) => e instanceof NetError && e.code === 'NOT_FOUND')
})

test('relay caps: circuits over the cap are refused with BUSY; a rate-capped relay keeps each circuit in order', async t => {
  const r = await startNode(t, { reach: { relay: { enabled: true, maxCircuits: 1, rateBytes: 1024 * 1024 } } })
  const a = await startNode(t)
  const s1 = await startNode(t, { storage: true })
  const s2 = await startNode(t)
  for (const x of [a, s1, s2]) await dial(x, r)
  const peer = await a.reach.relayTo(s1.key, AbortSignal.timeout(10_000))
  await assert.rejects(a.reach.relayTo(s2.key, AbortSignal.timeout(10_000)), (e: unknown) => e instanceof NetError && e.code === 'BUSY')
  // 2.5 MiB through a relay capped at 1 MiB/s: chunks wait for the rate, and must still arrive in order.
  const shard = randomBytes(2.5 * 1024 * 1024)
  assert.equal((await peer.put(shardIdOf(shard), shard, { timeoutMs: 60_000 })).stored, true)
  assert.equal(peer.isOpen, true)
})

test('a relay that tampers with the stream breaks only that circuit, and gets neither end banned', async t => {
  const r = await startNode(t, { reach: { relay: { enabled: true } } })
  const a = await startNode(t, { banMs: 60_000 })
  const s = await startNode(t, { banMs: 60_000 })
  for (const x of [a, s]) await dial(x, r)
  const peer = await a.reach.relayTo(s.key, AbortSignal.timeout(10_000))
  await peer.ping()
  // From now on the relay flips a bit in every chunk it forwards.
  const relay = r.reach.relay
  const forward = relay.data.bind(relay)
  relay.data = async (from, circuit, data) => {
    const bad = Buffer.from(data)
    bad[bad.length - 1] ^= 1
    return await forward(from, circuit, bad)
  }
  await assert.rejects(peer.ping({ timeoutMs: 5000 }))
  await waitFor('both ends to drop the circuit', () => a.peer(s.key) === undefined && s.peer(a.key) === undefined)
  assert.equal(a.bannedReason(s.key), null, 'A does not blame S for what the relay did')
  assert.equal(s.bannedReason(a.key), null, 'S does not blame A')
  // They can still meet directly.
  await dial(a, s)
  assert.equal(a.peer(s.key)?.path, 'direct')
})

test('rate limits: PerMinute counts per key per minute; the address probe answers one IP at most 30 times a minute', () => {
  const pm = new PerMinute(2)
  assert.deepEqual([pm.allow('a', 0), pm.allow('a', 1), pm.allow('a', 2), pm.allow('b', 2)], [true, true, false, true])
  assert.equal(pm.room('a', 3), false)
  assert.equal(pm.allow('a', 60_002), true, 'a new minute')
  let now = 1_000
  const sent: string[] = []
  const probe = new AddressProbe({ send: (_b, host) => { sent.push(host) }, onObserved: () => {}, now: () => now })
  const ask = encodeProbe(0x01, randomBytes(8), null)
  for (let i = 0; i < 40; i++) probe.onDatagram(ask, { address: '198.51.100.1', port: 4000 })
  probe.onDatagram(ask, { address: '198.51.100.2', port: 4000 })
  assert.equal(sent.filter(h => h === '198.51.100.1').length, 30)
  assert.equal(sent.filter(h => h === '198.51.100.2').length, 1)
  now += 61_000
  probe.onDatagram(ask, { address: '198.51.100.1', port: 4000 })
  assert.equal(sent.filter(h => h === '198.51.100.1').length, 31)
})
