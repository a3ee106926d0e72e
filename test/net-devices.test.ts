// Multi-device owners over real sockets: device certificates (codec, strict decoding, signature),
// the handshake extension that carries them (old payload prefix unchanged, bad certificates refused
// on both sides), one shard namespace for every certified device of an owner on a storage node,
// DEVICE between devices of one owner only (a foreign peer is refused and nothing is delivered),
// KEEP_POINTER delivered to its callback, size limits, callbacks that throw; and the agent's device
// key file (agent/device.ts).

import test, { type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import sodium from 'sodium-native'
import { NetNode, shardIdOf, type NetNodeOptions, type NetWarning } from '../net/index.js'
import { signDeviceCert, decodeDeviceCert, verifyDeviceCert, MAX_CERT_BYTES, MIN_CERT_BYTES } from '../net/device-cert.js'
import { encodePayload23, decodePayload23, initiate, respond } from '../net/handshake.js'
import { decodeFrame, MAX_DEVICE_BYTES, MAX_KEEP_POINTER_BYTES, MsgTypes } from '../net/messages.js'
import { NetError } from '../net/errors.js'
import type { Peer } from '../net/peer.js'
import { loadOrCreateDevice, cleanDeviceName } from '../agent/device.js'
import { tempDir, prng } from './helpers/fixtures.js'

interface KeyPair { publicKey: Buffer, secretKey: Buffer }

function keyPair (): KeyPair {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  return { publicKey, secretKey }
}

/** A device of `owner`: its own random key and a certificate of it by the owner's identity. */
function device (owner: KeyPair, name = 'laptop'): { key: KeyPair, cert: Buffer } {
  const key = keyPair()
  return { key, cert: signDeviceCert({ identity: owner, devicePublicKey: key.publicKey, createdMs: 1_700_000_000_000, name }) }
}

type TestNode = NetNode & { warnings: NetWarning[] }

async function startNode (t: TestContext, opts: Partial<NetNodeOptions> & { storage?: boolean } = {}): Promise<TestNode> {
  const dir = await tempDir(t, 'dustbox-dev-')
  const { storage, ...rest } = opts
  const node = new NetNode({
    identity: keyPair(),
    host: '127.0.0.1',
    transports: ['tcp'],
    stateDir: dir,
    store: storage === true ? { dir: `${dir}/store`, donatedBytes: 1 << 24, reserveDiskBytes: 0 } : null,
    handshakeTimeoutMs: 3000,
    banMs: 0,
    ...rest
  }) as TestNode
  node.warnings = []
  node.on('warning', w => node.warnings.push(w))
  await node.ready()
  t.after(async () => { await node.close() })
  return node
}

async function dial (from: NetNode, to: NetNode): Promise<Peer> {
  return await from.connect({ host: '127.0.0.1', port: to.port }, { expect: to.id })
}

async function waitFor (cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

const codeOf = (code: string, re?: RegExp) => (e: any): boolean => {
  assert.equal(e.code, code, e.message)
  if (re !== undefined) assert.match(e.message, re)
  return true
}

test('device cert: layout, signature input, strict decoding, verification', () => {
  const owner = keyPair()
  const dev = keyPair()
  const cert = signDeviceCert({ identity: owner, devicePublicKey: dev.publicKey, createdMs: 1234, name: 'Zoë’s laptop' })
  const name = Buffer.from('Zoë’s laptop', 'utf8')
  assert.equal(cert.length, 4 + 1 + 32 + 32 + 8 + 1 + name.length + 64)
  assert.equal(cert.subarray(0, 5).toString('hex'), Buffer.from('DBXC\x01', 'latin1').toString('hex'))
  assert.deepEqual(cert.subarray(5, 37), owner.publicKey)
  assert.deepEqual(cert.subarray(37, 69), dev.publicKey)
  assert.equal(cert.readBigUInt64BE(69), 1234n)
  assert.equal(cert[77], name.length)
  const body = cert.subarray(0, cert.length - 64)
  const input = Buffer.concat([Buffer.from('dustbox/v1/device-cert', 'ascii'), Buffer.from([0]), body])
  assert.ok(sodium.crypto_sign_verify_detached(cert.subarray(cert.length - 64), input, owner.publicKey))
  const c = verifyDeviceCert(cert, dev.publicKey, 'peer X')
  assert.deepEqual(c.identity, owner.publicKey)
  assert.deepEqual(c.device, dev.publicKey)
  assert.equal(c.createdMs, 1234)
  assert.equal(c.name, 'Zoë’s laptop')
  assert.deepEqual(c.raw, cert)
  // Bounds of the whole: empty name and 64-byte name.
  assert.equal(signDeviceCert({ identity: owner, devicePublicKey: dev.publicKey, createdMs: 0, name: '' }).length, MIN_CERT_BYTES)
  assert.equal(signDeviceCert({ identity: owner, devicePublicKey: dev.publicKey, createdMs: 0, name: 'x'.repeat(64) }).length, MAX_CERT_BYTES)
  assert.throws(() => signDeviceCert({ identity: owner, devicePublicKey: dev.publicKey, createdMs: 0, name: 'x'.repeat(65) }), /65 bytes/)
  assert.throws(() => signDeviceCert({ identity: owner, devicePublicKey: dev.publicKey, createdMs: 0, name: 'a\nb' }), /control/)
  assert.throws(() => signDeviceCert({ identity: { publicKey: owner.publicKey, secretKey: keyPair().secretKey }, devicePublicKey: dev.publicKey, createdMs: 0, name: '' }), /does not match/)

  const bad = (mut: (b: Buffer) => Buffer, re: RegExp): void => {
    assert.throws(() => verifyDeviceCert(mut(Buffer.from(cert)), dev.publicKey, 'peer X'), (e: any) => e.code === 'HANDSHAKE_FAILED' && /^HANDSHAKE_FAILED: peer X: device certificate/.test(e.message) && re.test(e.message))
  }
  bad(b => b.subarray(0, b.length - 1), /is \d+ bytes, but its name length says/)
  bad(b => Buffer.concat([b, Buffer.alloc(1)]), /is \d+ bytes, but its name length says/)
  bad(b => b.subarray(0, 100), /of 100 bytes is not/)
  bad(b => { b[0] = 0x41; return b }, /no DBXC magic/)
  bad(b => { b[4] = 2; return b }, /version 2/)
  bad(b => { b[77] = 65; return b }, /65 bytes, more than 64/)
  bad(b => { b[78] = 0xff; return b }, /not valid UTF-8/)
  bad(b => { b[78] = 0x07; return b }, /control characters/)
  bad(b => { b[70] ^= 1; return b }, /invalid signature/)
  bad(b => { b.set(keyPair().publicKey, 5); return b }, /invalid signature/)
  bad(b => { b[b.length - 1] ^= 1; return b }, /invalid signature/)
  assert.throws(() => verifyDeviceCert(cert, keyPair().publicKey, 'peer X'), /another device key/)
  assert.throws(() => decodeDeviceCert(Buffer.alloc(0), 'peer X'), /HANDSHAKE_FAILED: peer X: device certificate of 0 bytes/)
})

test('handshake payload: the certificate extension leaves the old prefix intact; extensions parsed strictly', () => {
  const owner = keyPair()
  const dev = device(owner)
  const plain = encodePayload23(1, 1, dev.key.publicKey)
  const withCert = encodePayload23(1, 1, dev.key.publicKey, '', dev.cert)
  // What an old decoder reads (39 + reason_len bytes; the rest ignored) is unchanged.
  assert.deepEqual(withCert.subarray(0, plain.length), plain)
  assert.deepEqual(withCert.subarray(plain.length, plain.length + 3), Buffer.from([0x01, dev.cert.length >> 8, dev.cert.length & 255]))
  assert.deepEqual(decodePayload23(withCert, 'x').cert, dev.cert)
  assert.equal(decodePayload23(plain, 'x').cert, null)
  // Unknown extension types are skipped (forward compatibility).
  const unknown = Buffer.concat([withCert, Buffer.from([0x7f, 0x00, 0x02, 0xaa, 0xbb])])
  assert.deepEqual(decodePayload23(unknown, 'x').cert, dev.cert)
  // Truncated or duplicated extensions fail the handshake.
  assert.throws(() => decodePayload23(withCert.subarray(0, withCert.length - 1), 'peer Y'), /HANDSHAKE_FAILED: peer Y: handshake extension 0x01 is truncated/)
  assert.throws(() => decodePayload23(Buffer.concat([plain, Buffer.from([1, 0])]), 'peer Y'), /extension header is truncated/)
  assert.throws(() => decodePayload23(Buffer.concat([withCert, withCert.subarray(plain.length)]), 'peer Y'), /two device certificates/)
  // The largest payload 2 (200-byte reason, 206-byte certificate) fits a 1024-byte handshake message.
  const big = encodePayload23(0, 0, dev.key.publicKey, 'é'.repeat(300), signDeviceCert({ identity: owner, devicePublicKey: dev.key.publicKey, createdMs: 0, name: 'n'.repeat(64) }))
  assert.ok(32 + 48 + big.length + 16 <= 1024, `${big.length}`)
})

test('devices: every certified device of an owner shares one namespace on a storage node; other owners see nothing', async t => {
  const quotaAsked = new Set<string>()
  const storage = await startNode(t, { storage: true })
  // A storage node with a quota policy: it is asked with the owner's hex, not the device's.
  const storage2 = await startNode(t, { store: { dir: join(await tempDir(t), 'store'), donatedBytes: 1 << 24, reserveDiskBytes: 0, quota: owner => { quotaAsked.add(owner); return 1 << 24 } } })
  const owner = keyPair()
  const d1 = device(owner, 'laptop')
  const d2 = device(owner, 'desktop')
  const n1 = await startNode(t, { identity: d1.key, certificate: d1.cert })
  const n2 = await startNode(t, { identity: d2.key, certificate: d2.cert })
  assert.deepEqual(n1.owner, owner.publicKey)
  assert.deepEqual(n1.certificate, d1.cert)
  assert.deepEqual(storage.owner, storage.key)
  assert.equal(storage.certificate, null)

  const p1 = await dial(n1, storage)
  const p2 = await dial(n2, storage)
  await waitFor(() => storage.peers().length === 2)
  const seen1 = storage.peer(n1.id)!
  assert.deepEqual(seen1.owner, owner.publicKey)
  assert.deepEqual(seen1.cert, d1.cert)
  assert.deepEqual(seen1.key, d1.key.publicKey)
  assert.equal(seen1.isOwnDevice, false)
  // A peer without a certificate is its own owner, as before.
  assert.deepEqual(p1.owner, storage.key)
  assert.equal(p1.cert, null)
  assert.equal(p1.isOwnDevice, false)

  const x = prng('device one', 3000)
  const y = prng('device two', 5000)
  assert.equal((await p1.put(shardIdOf(x), x)).stored, true)
  assert.deepEqual(await p2.get(shardIdOf(x)), x)
  const r = await p2.put(shardIdOf(y), y)
  assert.equal(r.usedByYou, 8000n)
  assert.deepEqual(await p1.get(shardIdOf(y)), y)
  assert.equal((await p2.put(shardIdOf(x), x)).stored, false, 'already held for this owner')
  const l1 = (await p1.listAll()).map(e => e.shard.toString('hex'))
  const l2 = (await p2.listAll()).map(e => e.shard.toString('hex'))
  assert.deepEqual(l1, l2)
  assert.equal(l1.length, 2)
  assert.deepEqual([...storage.store!.owners().keys()], [owner.publicKey.toString('hex')])

  // A device of another owner, and a node without a certificate, see none of it.
  const other = keyPair()
  const d3 = device(other)
  const n3 = await startNode(t, { identity: d3.key, certificate: d3.cert })
  const n4 = await startNode(t)
  for (const n of [n3, n4]) {
    const p = await dial(n, storage)
    await assert.rejects(p.get(shardIdOf(x)), codeOf('NOT_FOUND'))
    assert.deepEqual(await p.has([shardIdOf(x), shardIdOf(y)]), [false, false])
    assert.deepEqual(await p.listAll(), [])
    assert.deepEqual((await p.delete([shardIdOf(x)])).deleted, [false])
  }
  assert.deepEqual(await p1.get(shardIdOf(x)), x)

  // The quota policy is consulted with the owner's hex.
  const q = await dial(n1, storage2)
  await q.put(shardIdOf(x), x)
  assert.deepEqual([...quotaAsked], [owner.publicKey.toString('hex')])
})

test('devices: a certificate by another identity, or for another key, fails the handshake on both sides', async t => {
  const storage = await startNode(t, { storage: true })
  const owner = keyPair()
  const d1 = device(owner)
  const d2 = device(owner)
  // Forged: claims `owner` but signed by someone else (identity field patched after signing).
  const forgedKey = keyPair()
  const forgedCert = signDeviceCert({ identity: keyPair(), devicePublicKey: forgedKey.publicKey, createdMs: 1, name: 'x' })
  forgedCert.set(owner.publicKey, 5)

  const tcp = async (): Promise<net.Socket> => {
    const s = net.connect(storage.tcpPort, '127.0.0.1')
    s.on('error', () => {})
    await new Promise(resolve => s.once('connect', resolve))
    t.after(() => { s.destroy() })
    return s
  }
  // Responder side: the storage node refuses the certificate sent in message 3.
  const cases: Array<[KeyPair, Buffer, RegExp]> = [
    [forgedKey, forgedCert, /device certificate has an invalid signature/],
    [d1.key, d2.cert, /device certificate is for another device key/]
  ]
  for (const [key, cert, re] of cases) {
    const before = storage.warnings.length
    await initiate(await tcp(), { identity: key, certificate: cert, remoteLabel: 'storage', expectKey: storage.key }).catch(() => {})
    await waitFor(() => storage.warnings.length > before)
    const w = storage.warnings.slice(before)
    assert.ok(w.some(x => x.error.code === 'HANDSHAKE_FAILED' && re.test(x.error.message) && /tcp:127\.0\.0\.1:\d+/.test(x.error.message)), JSON.stringify(w.map(x => x.error.message)))
  }
  assert.equal(storage.peers().length, 0)

  // Initiator side: a listener that answers with a bad certificate is refused by the dialer.
  for (const [key, cert, re] of cases) {
    const server = net.createServer(s => {
      s.on('error', () => {})
      respond(s, { identity: key, certificate: cert, remoteLabel: 'dialer', timeoutMs: 2000 }).catch(() => {}).finally(() => s.destroy())
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    t.after(() => { server.close() })
    const d = device(owner)
    const n = await startNode(t, { identity: d.key, certificate: d.cert })
    await assert.rejects(n.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }), codeOf('HANDSHAKE_FAILED', re))
  }
  // A node's own certificate is checked at construction.
  assert.throws(() => new NetNode({ identity: d1.key, certificate: d2.cert }), codeOf('CONFIG_INVALID', /this node: device certificate is for another device key/))
  assert.throws(() => new NetNode({ identity: forgedKey, certificate: forgedCert }), codeOf('CONFIG_INVALID', /invalid signature/))
  // The honest device still gets through.
  const honest = await startNode(t, { identity: d1.key, certificate: d1.cert })
  const p = await dial(honest, storage)
  assert.ok(await p.ping() >= 0)
})

test('devices: DEVICE between devices of one owner; refused from anyone else and never delivered', async t => {
  const owner = keyPair()
  const d1 = device(owner)
  const d2 = device(owner)
  const d3 = device(owner)
  const delivered: Array<{ from: string, body: Buffer }> = []
  const n2 = await startNode(t, {
    identity: d2.key,
    certificate: d2.cert,
    onDevice: async (peer, body) => {
      delivered.push({ from: peer.id, body: Buffer.from(body) })
      if (body.toString() === 'throw') throw new Error('handler exploded')
      if (body.toString() === 'throw-net') throw new NetError('NOT_FOUND', 'no such thing')
      if (body.toString() === 'huge') return Buffer.alloc(MAX_DEVICE_BYTES + 1)
      if (body.length > 100) return body
      return Buffer.concat([Buffer.from('echo:'), body])
    }
  })
  const n1 = await startNode(t, { identity: d1.key, certificate: d1.cert, onDevice: async () => Buffer.from('from n1') })
  const n3 = await startNode(t, { identity: d3.key, certificate: d3.cert })

  const p = await dial(n1, n2)
  assert.equal(p.isOwnDevice, true)
  await waitFor(() => n2.peer(n1.id) !== undefined)
  assert.equal(n2.peer(n1.id)!.isOwnDevice, true)
  assert.deepEqual(await p.device(Buffer.from('hello')), Buffer.from('echo:hello'))
  assert.deepEqual(await n2.peer(n1.id)!.device(Buffer.from('back')), Buffer.from('from n1'))
  // The largest body, both ways.
  const big = prng('device big', MAX_DEVICE_BYTES)
  assert.deepEqual(await p.device(big, { timeoutMs: 60_000 }), big)
  // Limits, checked before anything is sent.
  await assert.rejects(p.device(Buffer.alloc(MAX_DEVICE_BYTES + 1)), codeOf('TOO_LARGE'))
  await assert.rejects(p.device(Buffer.alloc(0)), codeOf('BAD_MESSAGE'))
  // A handler that throws: an ERROR reply, a warning, and the node carries on.
  const before = n2.warnings.length
  await assert.rejects(p.device(Buffer.from('throw')), codeOf('INTERNAL', /internal error/))
  await waitFor(() => n2.warnings.length > before)
  assert.match(n2.warnings[n2.warnings.length - 1].error.message, /DEVICE handler failed: handler exploded/)
  await assert.rejects(p.device(Buffer.from('throw-net')), codeOf('NOT_FOUND', /no such thing/))
  await assert.rejects(p.device(Buffer.from('huge')), codeOf('TOO_LARGE', /over the 4194304-byte DEVICE limit/))
  assert.ok(p.isOpen)
  assert.ok(await p.ping() >= 0)
  // A device of the same owner without a handler refuses.
  const p3 = await dial(n1, n3)
  assert.equal(p3.isOwnDevice, true)
  await assert.rejects(p3.device(Buffer.from('hi')), codeOf('REFUSED', /takes no DEVICE requests/))

  // Foreign peers: another owner's device, and a node without a certificate.
  const count = delivered.length
  const foreign = device(keyPair())
  const f1 = await startNode(t, { identity: foreign.key, certificate: foreign.cert })
  const f2 = await startNode(t)
  for (const f of [f1, f2]) {
    const q = await dial(f, n2)
    assert.equal(q.isOwnDevice, false)
    await assert.rejects(q.device(Buffer.from('let me in')), codeOf('REFUSED', /only to other devices of this node's owner/))
    assert.ok(q.isOpen)
  }
  assert.equal(delivered.length, count, 'nothing from a foreign peer was delivered')
  // The owner's identity key itself (a node without certificate running as the owner) is the owner too.
  const ownerNode = await startNode(t, { identity: owner })
  const po = await dial(ownerNode, n2)
  assert.equal(po.isOwnDevice, true)
  assert.deepEqual(await po.device(Buffer.from('owner')), Buffer.from('echo:owner'))
})

test('devices: KEEP_POINTER is delivered to its callback; limits; no callback or a failing one is an error', async t => {
  const got: Array<{ owner: string, item: Buffer }> = []
  const keeper = await startNode(t, {
    storage: true,
    onKeepPointer: async (peer, item) => {
      if (item.toString() === 'bad') throw new Error('not a valid item')
      got.push({ owner: peer.owner.toString('hex'), item })
    }
  })
  const plain = await startNode(t, { storage: true })
  const owner = keyPair()
  const d1 = device(owner)
  const n1 = await startNode(t, { identity: d1.key, certificate: d1.cert })
  const p = await dial(n1, keeper)
  const item = prng('pointer item', MAX_KEEP_POINTER_BYTES)
  await p.keepPointer(item)
  await p.keepPointer(Buffer.from('a'))
  assert.deepEqual(got.map(g => g.owner), [owner.publicKey.toString('hex'), owner.publicKey.toString('hex')])
  assert.deepEqual(got[0].item, item)
  await assert.rejects(p.keepPointer(Buffer.alloc(MAX_KEEP_POINTER_BYTES + 1)), codeOf('TOO_LARGE'))
  await assert.rejects(p.keepPointer(Buffer.alloc(0)), codeOf('BAD_MESSAGE'))
  await assert.rejects(p.keepPointer(Buffer.from('bad')), codeOf('INTERNAL'))
  assert.equal(got.length, 2)
  assert.ok(p.isOpen)
  const q = await dial(n1, plain)
  await assert.rejects(q.keepPointer(Buffer.from('x')), codeOf('REFUSED', /keeps no pointers/))
  assert.ok(await q.ping() >= 0)
})

test('devices: oversize and empty DEVICE / KEEP_POINTER frames are undecodable (BAD_MESSAGE)', () => {
  const frame = (type: number, body: Buffer): Buffer => {
    const b = Buffer.alloc(5 + body.length)
    b[0] = type
    b.writeUInt32BE(9, 1)
    body.copy(b, 5)
    return b
  }
  const bad = (b: Buffer, re: RegExp): void => { assert.throws(() => decodeFrame(b), (e: any) => e.code === 'BAD_MESSAGE' && re.test(e.message)) }
  bad(frame(MsgTypes.DEVICE, Buffer.alloc(MAX_DEVICE_BYTES + 1)), /DEVICE: body of 4194305 bytes is not 1 to 4194304/)
  bad(frame(MsgTypes.DEVICE, Buffer.alloc(0)), /DEVICE: body of 0 bytes/)
  bad(frame(MsgTypes.DEVICE | 0x80, Buffer.alloc(MAX_DEVICE_BYTES + 1)), /DEVICE reply: body/)
  bad(frame(MsgTypes.KEEP_POINTER, Buffer.alloc(MAX_KEEP_POINTER_BYTES + 1)), /KEEP_POINTER: item of 1025 bytes/)
  bad(frame(MsgTypes.KEEP_POINTER, Buffer.alloc(0)), /KEEP_POINTER: item of 0 bytes/)
  bad(frame(MsgTypes.KEEP_POINTER | 0x80, Buffer.alloc(1)), /KEEP_POINTER reply: 1 trailing bytes/)
  const ok = decodeFrame(frame(MsgTypes.DEVICE | 0x80, Buffer.alloc(0)))
  assert.deepEqual(ok, { dir: 'reply', id: 9, reply: { kind: 'DEVICE', body: Buffer.alloc(0) } })
})

test('agent device key: made once (0600, strict format), certificate re-signed when missing, invalid or by another identity', async t => {
  const home = join(await tempDir(t), 'hömé')
  const owner = keyPair()
  const a = await loadOrCreateDevice(home, owner, { name: 'Zoë\tlaptop', now: () => 42 })
  assert.equal(a.name, 'Zoë laptop')
  assert.equal(a.id, a.publicKey.toString('hex').slice(0, 8))
  const keyText = await fsp.readFile(join(home, 'device.key'), 'utf8')
  assert.match(keyText, /^dustbox-device-key v1\n[0-9a-f]{64}\n$/)
  assert.equal((await fsp.stat(join(home, 'device.key'))).mode & 0o777, 0o600)
  const c = verifyDeviceCert(a.cert, a.publicKey, 'test')
  assert.deepEqual(c.identity, owner.publicKey)
  assert.equal(c.createdMs, 42)
  assert.deepEqual(await fsp.readFile(join(home, 'device.cert')), a.cert)
  // The key is the seed's: secret key = seed || public key.
  assert.equal(a.secretKey.subarray(0, 32).toString('hex'), keyText.split('\n')[1])
  assert.deepEqual(a.secretKey.subarray(32), a.publicKey)

  // Same key and certificate next time (no name given: the stored name stays).
  const b = await loadOrCreateDevice(home, owner, { now: () => 99 })
  assert.deepEqual(b.publicKey, a.publicKey)
  assert.deepEqual(b.cert, a.cert)
  assert.equal(b.name, 'Zoë laptop')
  // Another identity: same device key, a new certificate by that identity.
  const other = keyPair()
  const o = await loadOrCreateDevice(home, other, { now: () => 7 })
  assert.deepEqual(o.publicKey, a.publicKey)
  assert.deepEqual(verifyDeviceCert(o.cert, o.publicKey, 'test').identity, other.publicKey)
  // A damaged certificate is re-signed; a new name too.
  await fsp.writeFile(join(home, 'device.cert'), Buffer.from('garbage'))
  const d = await loadOrCreateDevice(home, owner, { name: 'desk' })
  assert.equal(verifyDeviceCert(d.cert, d.publicKey, 'test').name, 'desk')
  assert.deepEqual(await fsp.readFile(join(home, 'device.cert')), d.cert)
  // A damaged key file is an error naming the file, never its content.
  await fsp.writeFile(join(home, 'device.key'), keyText.toUpperCase(), { mode: 0o600 })
  await assert.rejects(loadOrCreateDevice(home, owner), (e: any) => e.code === 'KEY_INVALID' && e.message.includes('device.key') && !e.message.includes(keyText.split('\n')[1]))
  await fsp.writeFile(join(home, 'device.key'), keyText, { mode: 0o600 })
  await fsp.chmod(join(home, 'device.key'), 0o644)
  await assert.rejects(loadOrCreateDevice(home, owner), (e: any) => e.code === 'KEY_INVALID' && /chmod 600/.test(e.message))
  // Names: printable, at most 64 bytes, never empty.
  assert.equal(cleanDeviceName('\u0000\n'), 'device')
  assert.ok(Buffer.byteLength(cleanDeviceName('ü'.repeat(100))) <= 64)
  assert.equal(cleanDeviceName('  my  box \r\n'), 'my box')
  // Two devices made at once in fresh homes get different keys.
  const [x, y] = await Promise.all([loadOrCreateDevice(join(home, 'x'), owner), loadOrCreateDevice(join(home, 'y'), owner)])
  assert.notDeepEqual(x.publicKey, y.publicKey)
})
