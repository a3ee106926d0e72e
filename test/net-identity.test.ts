// Identity and handshake over real sockets: the right peer is proven on both sides; a peer claiming
// another's id, a replayed handshake, a wrong protocol version, a dialed id that answers as someone
// else, and a refused peer all fail with a clear reason, on both sides, and the node carries on.

import test, { type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import sodium from 'sodium-native'
import { NetNode, type NetNodeOptions, type NetWarning } from '../net/index.js'
import { NoiseXX, x25519FromEd25519, x25519KeyPair } from '../net/noise.js'
import { PROLOGUE, encodePayload1, encodePayload23, initiate } from '../net/handshake.js'
import { parsePeerId, peerIdFromKey, luhn32, ALPHABET } from '../net/peer-id.js'
import { tempDir } from './helpers/fixtures.js'

function identity (): { publicKey: Buffer, secretKey: Buffer } {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  return { publicKey, secretKey }
}

async function startNode (t: TestContext, opts: Partial<NetNodeOptions> = {}): Promise<NetNode & { warnings: NetWarning[] }> {
  const dir = await tempDir(t, 'dustbox-id-')
  const node = new NetNode({ identity: identity(), host: '127.0.0.1', stateDir: dir, store: { dir: `${dir}/store`, donatedBytes: 1 << 24, reserveDiskBytes: 0 }, handshakeTimeoutMs: 3000, ...opts }) as NetNode & { warnings: NetWarning[] }
  node.warnings = []
  node.on('warning', w => node.warnings.push(w))
  await node.ready()
  t.after(async () => { await node.close() })
  return node
}

async function waitFor (cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

function frame (m: Buffer): Buffer {
  const b = Buffer.alloc(2 + m.length)
  b.writeUInt16BE(m.length)
  m.copy(b, 2)
  return b
}

/** Read u16-framed messages from a socket. */
function reader (s: net.Socket): () => Promise<Buffer> {
  let buf = Buffer.alloc(0)
  const waiters: Array<() => void> = []
  s.on('data', d => { buf = Buffer.concat([buf, d]); waiters.splice(0).forEach(w => w()) })
  s.on('close', () => waiters.splice(0).forEach(w => w()))
  return async () => {
    for (let i = 0; i < 100; i++) {
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const n = buf.readUInt16BE(0)
        const m = buf.subarray(2, 2 + n)
        buf = buf.subarray(2 + n)
        return m
      }
      if (s.destroyed) throw new Error('closed')
      await new Promise<void>(resolve => waiters.push(resolve))
    }
    throw new Error('no message')
  }
}

async function tcp (port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1')
  s.on('error', () => {})
  await new Promise(resolve => s.once('connect', resolve))
  return s
}

test('peer ids: round trip, forgiving form, every single-character typo caught', () => {
  for (let i = 0; i < 50; i++) {
    const key = identity().publicKey
    const id = peerIdFromKey(key)
    assert.match(id, /^([A-Z2-7]{7}-){7}[A-Z2-7]{7}$/)
    assert.deepEqual(Buffer.from(parsePeerId(id)), key)
    assert.deepEqual(Buffer.from(parsePeerId(id.toLowerCase().replace(/-/g, ' '))), key)
    // Any one character changed is rejected (it is either a check character or checked by one).
    const clean = id.replace(/-/g, '')
    const pos = i % 56
    const c = clean[pos]
    const other = ALPHABET[(ALPHABET.indexOf(c) + 1 + (i % 31)) % 32]
    const typo = clean.slice(0, pos) + other + clean.slice(pos + 1)
    assert.throws(() => parsePeerId(typo), (e: any) => e.code === 'PEER_ID_INVALID')
  }
  assert.equal(luhn32('AAAAAAAAAAAAA'), 'A')
  assert.throws(() => parsePeerId('ABC'), /has 3 characters, not 56/)
  assert.throws(() => parsePeerId('!'.repeat(56)), /outside A-Z and 2-7/)
  // Misread digits are accepted as the letters they look like.
  const id = peerIdFromKey(Buffer.alloc(32))
  assert.deepEqual(Buffer.from(parsePeerId(id.replace(/O/g, '0'))), Buffer.alloc(32))
  // Non-zero padding bits: another spelling of the same key is refused.
  const z = 'A'.repeat(51) + 'B'
  const groups = [0, 1, 2, 3].map(g => z.slice(g * 13, g * 13 + 13)).map(g => g + luhn32(g)).join('')
  assert.throws(() => parsePeerId(groups), /does not encode a 32-byte key/)
})

test('handshake: both sides learn each other\'s proven id, over uTP and TCP', async t => {
  const a = await startNode(t)
  const b = await startNode(t)
  for (const tr of ['utp', 'tcp'] as const) {
    const p = await a.connect({ host: '127.0.0.1', port: b.port }, { expect: b.id, transports: [tr] })
    assert.equal(p.id, b.id)
    assert.equal(p.transport, tr)
    await waitFor(() => b.peer(a.id) !== undefined)
    assert.equal(b.peer(a.id)?.id, a.id)
    p.close()
    await waitFor(() => b.peer(a.id) === undefined && a.peer(b.id) === undefined)
  }
  // Both transports raced: one wins, one connection remains.
  const p = await a.connect({ host: '127.0.0.1', port: b.port }, { expect: b.id })
  await new Promise(resolve => setTimeout(resolve, 300))
  assert.equal(a.peers().length, 1)
  assert.equal(b.peers().length, 1)
  assert.ok(p.isOpen)
})

test('handshake: dialing an id that answers as another node fails with PEER_MISMATCH', async t => {
  const a = await startNode(t)
  const b = await startNode(t)
  const c = await startNode(t)
  await assert.rejects(a.connect({ host: '127.0.0.1', port: b.port }, { expect: c.id }), (e: any) => {
    assert.equal(e.code, 'PEER_MISMATCH')
    assert.match(e.message, new RegExp(`dialed ${c.shortId}.*but the node there is ${b.id}`))
    return true
  })
})

test('handshake: a peer claiming another\'s id is rejected, whichever key it shows', async t => {
  const victim = await startNode(t)
  const alice = identity()
  const mallory = identity()
  // (1) Mallory's own static key with Alice's Ed25519 key in the payload: the binding check fails.
  {
    const s = await tcp(victim.port)
    const next = reader(s)
    const hs = new NoiseXX(true, x25519FromEd25519(mallory), PROLOGUE)
    s.write(frame(hs.writeMessage(encodePayload1(1, 1))))
    hs.readMessage(await next())
    s.write(frame(hs.writeMessage(encodePayload23(1, 0, alice.publicKey))))
    await waitFor(() => victim.warnings.some(w => /claims identity/.test(w.error.message)))
    s.destroy()
  }
  // (2) Alice's static public key without her secret: the se key differs, message 3 fails to authenticate.
  {
    const s = await tcp(victim.port)
    const next = reader(s)
    const fake = { publicKey: x25519FromEd25519(alice).publicKey, secretKey: x25519KeyPair().secretKey }
    const hs = new NoiseXX(true, fake, PROLOGUE)
    s.write(frame(hs.writeMessage(encodePayload1(1, 1))))
    hs.readMessage(await next())
    s.write(frame(hs.writeMessage(encodePayload23(1, 0, alice.publicKey))))
    await waitFor(() => victim.warnings.some(w => w.error.code === 'HANDSHAKE_FAILED' && /message 3.*failed to authenticate/.test(w.error.message)))
    s.destroy()
  }
  assert.equal(victim.peers().length, 0)
  // The node still serves honest peers.
  const honest = await startNode(t)
  const p = await honest.connect({ host: '127.0.0.1', port: victim.port }, { expect: victim.id })
  assert.ok(await p.ping() >= 0)
})

test('handshake: a recorded handshake replayed to the responder is rejected', async t => {
  const b = await startNode(t)
  const alice = identity()
  // Record a real handshake: Alice dials B through a tap that copies her bytes.
  const recorded: Buffer[] = []
  const tap = net.createServer(client => {
    const up = net.connect(b.tcpPort, '127.0.0.1')
    up.on('error', () => {}); client.on('error', () => {})
    client.on('data', d => { recorded.push(Buffer.from(d)); up.write(d) })
    up.pipe(client)
  })
  await new Promise<void>(resolve => tap.listen(0, '127.0.0.1', resolve))
  t.after(() => { tap.close() })
  const s0 = await tcp((tap.address() as net.AddressInfo).port)
  const r = await initiate(s0, { identity: alice, remoteLabel: 'tap' })
  assert.equal(r.remoteId, b.id)
  await waitFor(() => b.peer(peerIdFromKey(alice.publicKey)) !== undefined)
  s0.destroy()
  const all = Buffer.concat(recorded)
  // Replay everything Alice sent (messages 1 and 3, then her records) on a new connection.
  const warnings0 = b.warnings.length
  const s = await tcp(b.tcpPort)
  const next = reader(s)
  s.write(all.subarray(0, 2 + all.readUInt16BE(0)))
  await next()
  s.write(all.subarray(2 + all.readUInt16BE(0)))
  await waitFor(() => b.warnings.length > warnings0)
  const w = b.warnings.slice(warnings0)
  assert.ok(w.some(x => x.error.code === 'HANDSHAKE_FAILED' && /message 3.*failed to authenticate.*replayed/.test(x.error.message)), JSON.stringify(w.map(x => x.error.message)))
  s.destroy()
})

test('handshake: no common protocol version is refused with the reason, on both sides', async t => {
  const b = await startNode(t)
  const future = await startNode(t, { minVersion: 2, maxVersion: 2 })
  await assert.rejects(future.connect({ host: '127.0.0.1', port: b.port }, { transports: ['tcp'] }), (e: any) => {
    assert.equal(e.code, 'VERSION_MISMATCH')
    assert.match(e.message, /refused: no common protocol version: it offered 2\.\.2, this node speaks 1\.\.1/)
    return true
  })
  await waitFor(() => b.warnings.some(w => w.error.code === 'VERSION_MISMATCH'))
  // And the other way round: the old node dials the new one.
  await assert.rejects(b.connect({ host: '127.0.0.1', port: future.port }, { transports: ['utp'] }), (e: any) => e.code === 'VERSION_MISMATCH' && /offered 1\.\.1, this node speaks 2\.\.2/.test(e.message))
})

test('handshake: a refused peer is told why; not-a-dustbox-peer and garbage are dropped', async t => {
  const b = await startNode(t, { accept: () => 'not on the allow list' })
  const a = await startNode(t)
  await assert.rejects(a.connect({ host: '127.0.0.1', port: b.port }, { expect: b.id, transports: ['tcp'] }), (e: any) => e.code === 'REFUSED' && /not on the allow list/.test(e.message))
  const s = await tcp(b.tcpPort)
  s.write(Buffer.concat([Buffer.from([0, 34]), Buffer.alloc(34, 7)]))
  await waitFor(() => b.warnings.some(w => /not a dustbox peer/.test(w.error.message)))
  const s2 = await tcp(b.tcpPort)
  s2.write(Buffer.from([0xff, 0xff]))
  await waitFor(() => b.warnings.some(w => /65535-byte handshake message/.test(w.error.message)))
  s.destroy(); s2.destroy()
})
