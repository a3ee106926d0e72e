// The equal-seq refresh of stored BEP 44 items (dht/dht-node.ts header, docs/discovery.md §4.1) on
// real DHT nodes on 127.0.0.1 with a shrunken value TTL: a re-put of the identical item restarts its
// age and is answered as a normal put, so it outlives the original TTL; an item not re-put expires;
// the same seq with another v or sig, a lower seq, a cas mismatch and a bad token are still refused
// and refresh nothing. Then end to end: DhtNode.putMutable of the identical item is no longer "stale",
// and the item is still found after the TTL of the first put while one put once is not.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import sodium from 'sodium-native'
import { DhtNode, POINTER_SALT, pointerTarget, signItem, type Identity } from '../dht/index.js'
import { startDhtNode, testnet, loopbackOnly } from './helpers/dht-testnet.js'
import { rawSocket, type Raw } from './helpers/krpc-raw.js'

const TTL_MS = 3000
/** When the re-puts go out, and when the items are checked: after the first put's TTL, within the re-put's. */
const REPUT_AT_MS = 1500
const CHECK_AT_MS = TTL_MS + 1000
/** How long to wait for an answer to a put that gets none (the node is on loopback). */
const NO_ANSWER_MS = 300

function keypair (): Identity {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  return { publicKey, secretKey }
}

interface Item { k: Buffer, salt?: Buffer, seq: number, v: Buffer, sig: Buffer }

function item (id: Identity, seq: number, v: Buffer, salt?: Buffer): Item {
  const k = Buffer.from(id.publicKey)
  const sig = signItem(id.secretKey, seq, v, salt ?? Buffer.alloc(0))
  return salt === undefined ? { k, seq, v, sig } : { k, salt, seq, v, sig }
}

const target = (it: Item): Buffer => pointerTarget(it.k, it.salt ?? Buffer.alloc(0))

/** A raw KRPC client talking to one node: `get` (with the token for puts) and `put`, answering 'ok', an error code, or 'none'. */
function client (raw: Raw, port: number): { get: (it: Item) => Promise<any>, put: (it: Item, extra?: Record<string, unknown>) => Promise<'ok' | number | 'none'> } {
  const id = randomBytes(20)
  const get = async (it: Item): Promise<any> => {
    const m = await raw.query(port, 'get', { id, target: target(it) })
    assert.ok(m !== null && Buffer.from(m.y).toString() === 'r', 'the node answers get')
    return m.r
  }
  const put = async (it: Item, extra: Record<string, unknown> = {}): Promise<'ok' | number | 'none'> => {
    const { token } = await get(it)
    const a: Record<string, unknown> = { id, token, k: it.k, seq: it.seq, v: it.v, sig: it.sig, ...extra }
    if (it.salt !== undefined) a.salt = it.salt
    const m = await raw.query(port, 'put', a, NO_ANSWER_MS)
    if (m === null) return 'none'
    return Buffer.from(m.y).toString() === 'r' ? 'ok' : m.e[0]
  }
  return { get, put }
}

test('refresh: an identical re-put restarts a stored item\'s age; other puts under the same or a lower seq are refused', async (t) => {
  const node = await startDhtNode(t, { bootstrap: false, valueTtlMs: TTL_MS })
  const raw = await rawSocket()
  t.after(() => raw.close())
  const c = client(raw, node.port)
  const alice = keypair()
  const bob = keypair()
  const carol = keypair()
  const a5 = item(alice, 5, Buffer.from('alice five'), POINTER_SALT) // re-put: kept
  const b5 = item(bob, 5, Buffer.from('bob five'), POINTER_SALT) // refused puts only: expires
  const c0 = item(carol, 0, Buffer.from('carol, no salt')) // re-put without a salt: kept
  const start = Date.now()
  for (const it of [a5, b5, c0]) assert.equal(await c.put(it), 'ok')
  assert.equal(node.stats().values, 3)

  await sleep(start + REPUT_AT_MS - Date.now())
  const reputAt = Date.now()
  assert.equal(await c.put(a5), 'ok', 'the identical item: a normal put reply')
  assert.equal(await c.put(c0), 'ok', 'the identical item without a salt')
  assert.equal(await c.put(a5, { cas: 5 }), 'ok', 'with a cas equal to the stored seq')
  // Everything else under Bob's target is refused and restarts nothing.
  assert.equal(await c.put(item(bob, 5, Buffer.from('bob five, changed'), POINTER_SALT)), 302, 'same seq, another v (validly signed)')
  assert.equal(await c.put(item(bob, 4, Buffer.from('bob four'), POINTER_SALT)), 302, 'a lower seq')
  assert.equal(await c.put(b5, { cas: 4 }), 301, 'the identical item with a cas mismatch')
  assert.equal(await c.put(b5, { token: Buffer.from('not a token') }), 203, 'the identical item with a bad token')
  const badSig = Buffer.from(b5.sig)
  badSig[0] ^= 1
  assert.equal(await c.put({ ...b5, sig: badSig }), 'none', 'same seq and v under a signature that does not verify: no answer')
  const otherSalt = item(bob, 5, b5.v, Buffer.from('another salt'))
  assert.equal(await c.put({ ...otherSalt, sig: b5.sig }), 'none', 'Bob\'s signature under another salt (another target): does not verify')

  await sleep(start + CHECK_AT_MS - Date.now())
  const ra = await c.get(a5)
  assert.equal(ra.seq, 5)
  assert.deepEqual(Buffer.from(ra.v), a5.v, 'the refreshed item is unchanged')
  assert.deepEqual(Buffer.from(ra.sig), a5.sig)
  assert.deepEqual(Buffer.from((await c.get(c0)).v), c0.v)
  assert.equal((await c.get(b5)).v, undefined, 'the item that was not re-put has expired')
  assert.ok(Date.now() - reputAt < TTL_MS, 'checked within the TTL of the re-put (the test ran slow)')
  // A higher seq still replaces the item, and a lower one is still refused.
  const a6 = item(alice, 6, Buffer.from('alice six'), POINTER_SALT)
  assert.equal(await c.put(a6), 'ok')
  assert.equal(await c.put(a5), 302, 'the old identical item is now a lower seq')
  assert.deepEqual(Buffer.from((await c.get(a5)).v), a6.v)
  // The expired target takes any seq again (as before: nothing is stored there).
  assert.equal(await c.put(item(bob, 1, Buffer.from('bob one'), POINTER_SALT)), 'ok')
})

test('refresh: DhtNode.putMutable of the identical item is stored again, and outlives the first put\'s TTL', async (t) => {
  const net = await testnet(t, 5, { valueTtlMs: TTL_MS })
  const owner = new DhtNode({ host: '127.0.0.1', port: 0, bootstrap: net.bootstrap, allowAddress: loopbackOnly, queryTimeoutMs: 500, valueTtlMs: TTL_MS })
  owner.on('warning', () => {})
  t.after(async () => await owner.close())
  await owner.ready()
  const id = keypair()
  const kept = item(id, 3, Buffer.from('kept pointer'), POINTER_SALT)
  const lapsed = item(keypair(), 3, Buffer.from('lapsed pointer'), POINTER_SALT)
  const start = Date.now()
  for (const it of [kept, lapsed]) {
    const r = await owner.putMutable(it)
    assert.equal(r.stale, false)
    assert.ok(r.nodes >= 1)
  }
  await sleep(start + REPUT_AT_MS - Date.now())
  const reputAt = Date.now()
  const again = await owner.putMutable(kept)
  assert.equal(again.stale, false, 'nodes holding the identical item take the re-put (no 302)')
  assert.ok(again.nodes >= 1)
  await sleep(start + CHECK_AT_MS - Date.now())
  const reader = net.nodes[net.nodes.length - 1]
  const got = await reader.getMutable(target(kept), POINTER_SALT)
  assert.ok(got !== null, 'the re-put item is still stored after the first put\'s TTL')
  assert.equal(got.seq, 3)
  assert.deepEqual(Buffer.from(got.v), kept.v)
  assert.equal(await reader.getMutable(target(lapsed), POINTER_SALT), null, 'the item put once has expired everywhere')
  assert.ok(Date.now() - reputAt < TTL_MS, 'checked within the TTL of the re-put (the test ran slow)')
})
