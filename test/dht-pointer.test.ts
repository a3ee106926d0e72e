// The owner's BEP 44 pointer on a real testnet: put and get round trip (also from a "new machine"
// with only the key), sequence numbers kept across restarts, and everything that must be refused:
// a value signed by another key, a tampered value, a lower sequence number (at storing nodes and from
// a hostile node answering gets), an oversized payload.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import sodium from 'sodium-native'
import { Discovery, DhtNode, POINTER_SALT, pointerTarget, signItem, sealPointer, MAX_POINTER_PAYLOAD, type Identity } from '../dht/index.js'
import { testnet, loopbackOnly } from './helpers/dht-testnet.js'
import { rawSocket } from './helpers/krpc-raw.js'
import { tempDir } from './helpers/fixtures.js'

function keypair (): Identity {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  return { publicKey, secretKey }
}

async function owner (t: any, bootstrap: string[], identity: Identity, pointerKey: Buffer, stateDir?: string): Promise<{ d: Discovery, warnings: string[] }> {
  const d = new Discovery({ identity, pointerKey, host: '127.0.0.1', port: 0, bootstrap, allowAddress: loopbackOnly, stateDir: stateDir ?? await tempDir(t, 'dustbox-ptr-'), autoStart: false })
  const warnings: string[] = []
  d.on('warning', w => warnings.push(w.error.message))
  t.after(async () => await d.close())
  await d.ready()
  return { d, warnings }
}

test('pointer: put and get round trip, from a new machine with only the key, seq kept across restarts', async (t) => {
  const net = await testnet(t, 8)
  const id = keypair()
  const key = randomBytes(32)
  const dir = await tempDir(t, 'dustbox-ptr-home-')
  const a = await owner(t, net.bootstrap, id, key, dir)
  const p0 = Buffer.from('index root 7f3a… — Grüße, 数据 🎉')
  const r0 = await a.d.putPointer(p0)
  assert.equal(r0.seq, 0)
  assert.ok(r0.nodes >= 1)
  const fresh = await owner(t, net.bootstrap, id, key)
  const got = await fresh.d.getPointer()
  assert.deepEqual(got, { seq: 0, payload: p0, source: 'dht' })
  const p1 = randomBytes(MAX_POINTER_PAYLOAD)
  assert.equal((await a.d.putPointer(p1)).seq, 1)
  assert.deepEqual(await fresh.d.getPointer(), { seq: 1, payload: p1, source: 'dht' })
  await assert.rejects(a.d.putPointer(Buffer.alloc(MAX_POINTER_PAYLOAD + 1)), /^DhtError: POINTER_TOO_LARGE/)
  await a.d.close()
  const again = await owner(t, net.bootstrap, id, key, dir)
  assert.equal((await again.d.putPointer(Buffer.from('after restart'))).seq, 2)
  // The new machine put nothing yet, but its first put goes above what the DHT holds.
  assert.equal((await fresh.d.putPointer(Buffer.from('from the new machine'))).seq, 3)
  assert.equal((await again.d.getPointer())!.payload.toString(), 'from the new machine')
  // Another owner's key cannot read it: the value is sealed with K_pointer.
  const other = await owner(t, net.bootstrap, id, randomBytes(32))
  await assert.rejects(other.d.getPointer(), /^DhtError: POINTER_INVALID: pointer seq 3 does not decrypt/)
})

test('pointer: storing nodes refuse a value signed by another key, a tampered value and a lower seq', async (t) => {
  const net = await testnet(t, 8)
  const id = keypair()
  const key = randomBytes(32)
  const a = await owner(t, net.bootstrap, id, key)
  await a.d.putPointer(Buffer.from('zero'))
  await a.d.putPointer(Buffer.from('one'))
  const pk = Buffer.from(id.publicKey)
  const mallory = new DhtNode({ host: '127.0.0.1', port: 0, bootstrap: net.bootstrap, allowAddress: loopbackOnly, queryTimeoutMs: 500 })
  mallory.on('warning', () => {})
  t.after(async () => await mallory.close())
  await mallory.ready()
  const evil = keypair()
  // 1. Our key, seq 5, but signed by another key.
  const v5 = sealPointer(randomBytes(32), pk, 5, Buffer.from('forged'))
  await assert.rejects(mallory.putMutable({ k: pk, v: v5, seq: 5, salt: POINTER_SALT, sig: signItem(evil.secretKey, 5, v5) }), /PUT_FAILED/)
  // 2. A value of ours with one byte changed, under its real signature.
  const real = await mallory.getMutable(pointerTarget(pk), POINTER_SALT)
  assert.equal(real!.seq, 1)
  const tampered = Buffer.from(real!.v)
  tampered[tampered.length - 1] ^= 1
  await assert.rejects(mallory.putMutable({ k: pk, v: tampered, seq: 1, salt: POINTER_SALT, sig: real!.sig }), /PUT_FAILED/)
  const tampered2 = Buffer.from(real!.v)
  await assert.rejects(mallory.putMutable({ k: pk, v: tampered2, seq: 9, salt: POINTER_SALT, sig: real!.sig }), /PUT_FAILED/, 'a raised seq under the old signature')
  // 3. The real, validly signed seq 0 item again: a replay.
  const zero = { seq: 0, v: sealPointer(key, pk, 0, Buffer.from('zero')) }
  // Nodes holding seq 1 answer "sequence number less than current"; nodes holding nothing may take it,
  // and a get then prefers the highest verified seq.
  await mallory.putMutable({ k: pk, v: zero.v, seq: 0, salt: POINTER_SALT, sig: signItem(id.secretKey, 0, zero.v) }).catch(() => {})
  assert.equal((await mallory.getMutable(pointerTarget(pk), POINTER_SALT))!.seq, 1)
  // 4. Another key's item under its own target does not touch ours.
  const vEvil = Buffer.from('other owner')
  await mallory.putMutable({ k: Buffer.from(evil.publicKey), v: vEvil, seq: 100, salt: POINTER_SALT, sig: signItem(evil.secretKey, 100, vEvil) })
  const fresh = await owner(t, net.bootstrap, id, key)
  assert.deepEqual(await fresh.d.getPointer(), { seq: 1, payload: Buffer.from('one'), source: 'dht' })
})

test('pointer: a hostile node answering gets with forged, tampered or replayed items is not believed', async (t) => {
  const id = keypair()
  const key = randomBytes(32)
  const pk = Buffer.from(id.publicKey)
  const item = (seq: number, text: string): { v: Buffer, sig: Buffer, seq: number } => {
    const v = sealPointer(key, pk, seq, Buffer.from(text))
    return { v, sig: signItem(id.secretKey, seq, v), seq }
  }
  const old = item(0, 'old')
  const evil = keypair()
  let answer: Record<string, unknown> = {}
  const hostile = await rawSocket((m, reply) => {
    const q = Buffer.from(m.q).toString()
    const base = { id: Buffer.alloc(20, 7), token: Buffer.from('tok') }
    if (q === 'get') reply({ ...base, ...answer })
    else reply(base)
  })
  t.after(() => hostile.close())
  const bootstrap = [`127.0.0.1:${hostile.port}`]
  const forgedV = sealPointer(key, pk, 9, Buffer.from('forged'))
  const cases: Array<[string, Record<string, unknown>]> = [
    ['signed by another key', { k: pk, seq: 9, v: forgedV, sig: signItem(evil.secretKey, 9, forgedV) }],
    ['tampered value', { k: pk, seq: 0, v: Buffer.concat([old.v.subarray(0, -1), Buffer.from([old.v[old.v.length - 1] ^ 1])]), sig: old.sig }],
    ['raised seq under an old signature', { k: pk, seq: 7, v: old.v, sig: old.sig }],
    ['another key\'s valid item', { k: Buffer.from(evil.publicKey), seq: 1, v: Buffer.from('x'), sig: signItem(evil.secretKey, 1, Buffer.from('x')) }]
  ]
  const fresh = await owner(t, bootstrap, id, key)
  for (const [name, a] of cases) {
    answer = a
    assert.equal(await fresh.d.getPointer(), null, name)
  }
  // A valid but old item: a machine that knows seq 3 exists (minSeq) refuses it as a replay.
  answer = { k: pk, seq: 0, v: old.v, sig: old.sig }
  assert.deepEqual(await fresh.d.getPointer(), { seq: 0, payload: Buffer.from('old'), source: 'dht' })
  await assert.rejects(fresh.d.getPointer({ minSeq: 3 }), /^DhtError: POINTER_REPLAYED: the DHT's pointer has seq 0, below the 3/)
  // A node that put seq 1 itself keeps its own copy, warns, and puts it again.
  const dir = await tempDir(t, 'dustbox-ptr-local-')
  const { d, warnings } = await owner(t, bootstrap, id, key, dir)
  answer = {}
  await d.putPointer(Buffer.from('first')) // the hostile node claims to store it and holds nothing
  assert.equal((await d.putPointer(Buffer.from('mine'))).seq, 1)
  answer = { k: pk, seq: 0, v: old.v, sig: old.sig }
  const got = await d.getPointer()
  assert.equal(got!.source, 'local')
  assert.equal(got!.payload.toString(), 'mine')
  assert.ok(warnings.some(w => w.startsWith('POINTER_REPLAYED')), warnings.join('\n'))
})
