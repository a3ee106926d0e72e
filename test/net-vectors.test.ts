// Golden vectors of the network protocol v1 (docs/vectors/net-v1.json, specified in
// docs/protocol.md): peer ids, the Noise XX handshake with fixed keys, the first transport records,
// a device certificate and the handshake payload carrying it, every message's bytes, shard ids and
// audit proofs. Recomputed with the real code and compared byte
// for byte. docs/vectors/check_net_v1.py re-derives them independently (Python hashlib + cryptography).
//
// The JSON is written only on request:
//   npx tsc -p . && DUSTBOX_WRITE_VECTORS=1 node test/run.js net-vectors
// Never regenerate it to make a failing test pass: a changed vector is a protocol change.

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import sodium from 'sodium-native'
import { spawnSync } from 'node:child_process'
import { peerIdFromKey, parsePeerId } from '../net/peer-id.js'
import { NoiseXX, x25519FromEd25519, x25519KeyPair } from '../net/noise.js'
import { PROLOGUE, encodePayload1, encodePayload23, decodePayload23, Caps } from '../net/handshake.js'
import { signDeviceCert, verifyDeviceCert, CERT_SIG_LABEL } from '../net/device-cert.js'
import { encodeError, encodeGoodbye, encodeHello, encodeReply, encodeRequest, decodeFrame } from '../net/messages.js'
import { shardIdOf, auditProof } from '../net/shard-store.js'

const VECTORS_URL = new URL('../../docs/vectors/net-v1.json', import.meta.url)
const WRITE = process.env.DUSTBOX_WRITE_VECTORS === '1'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const seq = (start: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 255))

function ed25519 (seed: Buffer): { publicKey: Buffer, secretKey: Buffer } {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed)
  return { publicKey, secretKey }
}

function record (cipher: { encryptWithAd: (ad: null, p: Uint8Array) => Uint8Array }, plaintext: Buffer): Buffer {
  const c = cipher.encryptWithAd(null, plaintext)
  const len = Buffer.alloc(4)
  len.writeUInt32BE(c.byteLength)
  return Buffer.concat([len, c])
}

function compute (): Record<string, unknown> {
  const seedA = seq(0x00, 32)
  const seedB = seq(0x20, 32)
  const A = ed25519(seedA)
  const B = ed25519(seedB)
  const xA = x25519FromEd25519(A)
  const xB = x25519FromEd25519(B)
  const eA = x25519KeyPair(seq(0x40, 32))
  const eB = x25519KeyPair(seq(0x60, 32))

  const ids = [A.publicKey, B.publicKey, Buffer.alloc(32), Buffer.alloc(32, 0xff)].map(k => ({ key: hex(k), peerId: peerIdFromKey(k) }))

  const ini = new NoiseXX(true, xA, PROLOGUE, eA)
  const res = new NoiseXX(false, xB, PROLOGUE, eB)
  const p1 = encodePayload1(1, 1)
  const m1 = ini.writeMessage(p1)
  assert.deepEqual(res.readMessage(m1), p1)
  const p2 = encodePayload23(1, Caps.STORAGE, B.publicKey)
  const m2 = res.writeMessage(p2)
  assert.deepEqual(ini.readMessage(m2), p2)
  const p3 = encodePayload23(1, Caps.STORAGE, A.publicKey)
  const m3 = ini.writeMessage(p3)
  assert.deepEqual(res.readMessage(m3), p3)
  const si = ini.split()
  const sr = res.split()
  assert.deepEqual(si.handshakeHash, sr.handshakeHash)
  const refusal = encodePayload23(0, 0, B.publicKey, 'no common protocol version: it offered 2..2, this node speaks 1..1')

  const hello = encodeHello({ agent: 'dustbox/0.1', utpPort: 49737, tcpPort: 49737, observed: { host: '127.0.0.1', port: 40000 }, maxFrame: 4202496, maxRequests: 8 })
  const ping = encodeRequest(1, { kind: 'PING', nonce: 0x0102030405060708n })
  const r1 = record(si.send, hello)
  const r2 = record(si.send, ping)
  const r3 = record(sr.send, hello)

  // A device of identity A: its own key from a fixed seed, certified by A.
  const seedD = seq(0xa0, 32)
  const D = ed25519(seedD)
  const certName = 'Zoë’s laptop'
  const cert = signDeviceCert({ identity: A, devicePublicKey: D.publicKey, createdMs: 1700000000000, name: certName })
  const certBody = cert.subarray(0, cert.length - 64)
  const p3Cert = encodePayload23(1, 0, D.publicKey, '', cert)

  const shard = Buffer.from('dustbox shard vector: any bytes at all', 'ascii')
  const sid = shardIdOf(shard)
  const nonce = seq(0x80, 32)
  const sid2 = shardIdOf(Buffer.alloc(0))

  const messages: Record<string, string> = {
    HELLO: hex(hello),
    HELLO_noObserved: hex(encodeHello({ agent: 'x', utpPort: 1, tcpPort: 0, observed: null, maxFrame: 65536, maxRequests: 1 })),
    GOODBYE: hex(encodeGoodbye(15, 'refused: not on the allow list')),
    ERROR: hex(encodeError(7, 3, 'no shard 0123456789ab… here for this owner')),
    PING: hex(ping),
    PING_reply: hex(encodeReply(1, { kind: 'PING', nonce: 0x0102030405060708n })),
    PUT_SHARD: hex(encodeRequest(2, { kind: 'PUT_SHARD', shard: sid, data: shard })),
    PUT_SHARD_reply: hex(encodeReply(2, { kind: 'PUT_SHARD', status: 0, usedByYou: 38n, quotaForYou: 1073741824n })),
    GET_SHARD: hex(encodeRequest(3, { kind: 'GET_SHARD', shard: sid })),
    GET_SHARD_reply: hex(encodeReply(3, { kind: 'GET_SHARD', data: shard })),
    HAS: hex(encodeRequest(4, { kind: 'HAS', shards: [sid, sid2] })),
    HAS_reply: hex(encodeReply(4, { kind: 'HAS', held: [true, false] })),
    DELETE: hex(encodeRequest(5, { kind: 'DELETE', shards: [sid] })),
    DELETE_reply: hex(encodeReply(5, { kind: 'DELETE', deleted: [true], usedByYou: 0n })),
    LIST: hex(encodeRequest(6, { kind: 'LIST', after: null, limit: 1024 })),
    LIST_after: hex(encodeRequest(6, { kind: 'LIST', after: sid2, limit: 2 })),
    LIST_reply: hex(encodeReply(6, { kind: 'LIST', more: true, entries: [{ shard: sid2, size: 0 }, { shard: sid, size: 38 }] })),
    AUDIT: hex(encodeRequest(0xfffffffe, { kind: 'AUDIT', challenges: [{ shard: sid, nonce, offset: 0, length: 0 }, { shard: sid, nonce, offset: 8, length: 5 }] })),
    AUDIT_reply: hex(encodeReply(0xfffffffe, { kind: 'AUDIT', answers: [{ status: 0, proof: auditProof(sid, nonce, 0, 0, shard) }, { status: 0, proof: auditProof(sid, nonce, 8, 5, shard.subarray(8, 13)) }] })),
    SPACE: hex(encodeRequest(9, { kind: 'SPACE' })),
    SPACE_reply: hex(encodeReply(9, { kind: 'SPACE', space: { donated: 10737418240n, used: 38n, free: 1073741786n, quotaForYou: 1073741824n, usedByYou: 38n, maxShard: 4198400 } })),
    DEVICE: hex(encodeRequest(10, { kind: 'DEVICE', body: Buffer.from('opaque device request', 'ascii') })),
    DEVICE_reply: hex(encodeReply(10, { kind: 'DEVICE', body: Buffer.from('opaque answer', 'ascii') })),
    DEVICE_reply_empty: hex(encodeReply(11, { kind: 'DEVICE', body: Buffer.alloc(0) })),
    KEEP_POINTER: hex(encodeRequest(12, { kind: 'KEEP_POINTER', item: Buffer.from('d1:v3:abce', 'ascii') })),
    KEEP_POINTER_reply: hex(encodeReply(12, { kind: 'KEEP_POINTER' })),
    INTRODUCE: hex(encodeRequest(13, { kind: 'INTRODUCE', target: B.publicKey, targetAddr: null, self: { host: '203.0.113.7', port: 51000 } })),
    INTRODUCE_byAddress: hex(encodeRequest(14, { kind: 'INTRODUCE', target: Buffer.alloc(32), targetAddr: { host: '198.51.100.2', port: 6881 }, self: null })),
    INTRODUCE_reply: hex(encodeReply(13, { kind: 'INTRODUCE', key: B.publicKey, addr: { host: '198.51.100.2', port: 6881 }, nonce: seq(0xa0, 8) })),
    PUNCH: hex(encodeRequest(15, { kind: 'PUNCH', from: A.publicKey, addr: { host: '203.0.113.7', port: 51000 }, nonce: seq(0xa0, 8) })),
    PUNCH_reply: hex(encodeReply(15, { kind: 'PUNCH' })),
    RELAY_OPEN: hex(encodeRequest(16, { kind: 'RELAY_OPEN', target: B.publicKey })),
    RELAY_OPEN_reply: hex(encodeReply(16, { kind: 'RELAY_OPEN', circuit: 7 })),
    RELAY_ACCEPT: hex(encodeRequest(17, { kind: 'RELAY_ACCEPT', circuit: 7, from: A.publicKey })),
    RELAY_ACCEPT_reply: hex(encodeReply(17, { kind: 'RELAY_ACCEPT' })),
    RELAY_DATA: hex(encodeRequest(18, { kind: 'RELAY_DATA', circuit: 7, data: Buffer.from('ciphertext of the inner channel', 'ascii') })),
    RELAY_DATA_reply: hex(encodeReply(18, { kind: 'RELAY_DATA' })),
    RELAY_CLOSE: hex(encodeRequest(19, { kind: 'RELAY_CLOSE', circuit: 7 })),
    RELAY_CLOSE_reply: hex(encodeReply(19, { kind: 'RELAY_CLOSE' }))
  }

  return {
    format: 'dustbox network protocol vectors v1',
    about: 'Golden vectors of docs/protocol.md v1. Byte strings are lowercase hex. Checked by test/net-vectors.test.ts and docs/vectors/check_net_v1.py (independent Python).',
    peerIds: ids,
    identities: {
      initiatorEd25519Seed: hex(seedA),
      initiatorEd25519PublicKey: hex(A.publicKey),
      initiatorX25519SecretKey: hex(xA.secretKey),
      initiatorX25519PublicKey: hex(xA.publicKey),
      responderEd25519Seed: hex(seedB),
      responderEd25519PublicKey: hex(B.publicKey),
      responderX25519SecretKey: hex(xB.secretKey),
      responderX25519PublicKey: hex(xB.publicKey)
    },
    handshake: {
      protocolName: 'Noise_XX_25519_ChaChaPoly_BLAKE2b',
      prologue: hex(PROLOGUE),
      initiatorEphemeralSecret: hex(eA.secretKey),
      responderEphemeralSecret: hex(eB.secretKey),
      payload1: hex(p1),
      message1: hex(m1),
      payload2: hex(p2),
      message2: hex(m2),
      payload3: hex(p3),
      message3: hex(m3),
      handshakeHash: hex(si.handshakeHash),
      refusalPayload2: hex(refusal),
      initiatorRecord1: hex(r1),
      initiatorRecord2: hex(r2),
      responderRecord1: hex(r3),
      recordPlaintexts: { initiatorRecord1: 'messages.HELLO', initiatorRecord2: 'messages.PING', responderRecord1: 'messages.HELLO' }
    },
    deviceCert: {
      identitySeed: hex(seedA),
      identityPublicKey: hex(A.publicKey),
      deviceSeed: hex(seedD),
      devicePublicKey: hex(D.publicKey),
      createdMs: 1700000000000,
      name: certName,
      signatureInput: hex(Buffer.concat([CERT_SIG_LABEL, Buffer.from([0]), certBody])),
      cert: hex(cert),
      payload3WithCert: hex(p3Cert)
    },
    shards: {
      data: hex(shard),
      id: hex(sid),
      emptyId: hex(sid2),
      auditNonce: hex(nonce),
      auditProofWhole: hex(auditProof(sid, nonce, 0, 0, shard)),
      auditProofRange8_5: hex(auditProof(sid, nonce, 8, 5, shard.subarray(8, 13)))
    },
    messages
  }
}

test('net vectors: recomputed values match docs/vectors/net-v1.json', async () => {
  const v = compute()
  if (WRITE) await fsp.writeFile(VECTORS_URL, JSON.stringify(v, null, 1) + '\n')
  const committed = JSON.parse(readFileSync(fileURLToPath(VECTORS_URL), 'utf8'))
  assert.deepEqual(v, committed)
})

test('net vectors: every message vector decodes back to the same bytes', () => {
  const v = JSON.parse(readFileSync(fileURLToPath(VECTORS_URL), 'utf8')) as { messages: Record<string, string>, peerIds: Array<{ key: string, peerId: string }> }
  for (const [name, h] of Object.entries(v.messages)) {
    const f = decodeFrame(Buffer.from(h, 'hex'))
    assert.ok(f.dir !== 'unknown', name)
  }
  for (const p of v.peerIds) assert.equal(hex(parsePeerId(p.peerId)), p.key)
  const dc = (v as unknown as { deviceCert: Record<string, string> }).deviceCert
  const c = verifyDeviceCert(Buffer.from(dc.cert, 'hex'), Buffer.from(dc.devicePublicKey, 'hex'), 'vector')
  assert.equal(hex(c.identity), dc.identityPublicKey)
  assert.equal(c.name, dc.name)
  const p3 = decodePayload23(Buffer.from(dc.payload3WithCert, 'hex'), 'vector')
  assert.equal(hex(p3.cert!), dc.cert)
})

test('net vectors: the independent Python reimplementation agrees (skipped without python3 + cryptography)', t => {
  const probe = spawnSync('python3', ['-c', 'import cryptography'], { encoding: 'utf8' })
  if (probe.status !== 0) { t.skip('python3 with the cryptography package is not available'); return }
  const r = spawnSync('python3', [fileURLToPath(new URL('../../docs/vectors/check_net_v1.py', import.meta.url))], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(r.status, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /0 mismatches/)
})
