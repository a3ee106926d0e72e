// Storage peers keep their owners' BEP 44 pointers alive (docs/discovery.md §4.1): the owner hands its
// signed item over KEEP_POINTER (real NetNodes), its machine goes away, the DHT forgets the item, the
// keeper re-puts it and a new machine with only the key still finds it with the right seq. And what
// the keeper must refuse, each with a clear warning: a forged or tampered item, an oversized one, an
// older seq, another key's item, an owner it holds nothing for, one owner too many; kept items
// survive a restart, owners no longer held are dropped, and a corrupt kept-pointers.json is a warning.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import sodium from 'sodium-native'
import { Discovery, POINTER_SALT, pointerTarget, signItem, sealPointer, type Identity } from '../dht/index.js'
import { decodeSignedItem, encodeSignedItem, MAX_SIGNED_ITEM_BYTES } from '../dht/pointer.js'
import { NetNode, shardIdOf, type Peer } from '../net/index.js'
import { PointerKeeper, KEPT_POINTERS_FILE, MAX_ITEM_BYTES, type PointerKeeperOptions } from '../agent/pointer-keeper.js'
import type { AgentError } from '../agent/errors.js'
import { testnet, loopbackOnly } from './helpers/dht-testnet.js'
import { tempDir } from './helpers/fixtures.js'

function keypair (): Identity & { publicKey: Buffer, secretKey: Buffer } {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  return { publicKey, secretKey }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** A signed item of `id` (seq, a value sealed with a random key), encoded for KEEP_POINTER. */
function itemOf (id: Identity, seq: number, text = `seq ${seq}`): Buffer {
  const pk = Buffer.from(id.publicKey)
  const v = sealPointer(randomBytes(32), pk, seq, Buffer.from(text))
  return encodeSignedItem({ k: pk, salt: POINTER_SALT, seq, sig: signItem(id.secretKey, seq, v), v })
}

async function discovery (t: TestContext, bootstrap: string[], identity: Identity, pointerKey?: Buffer): Promise<Discovery> {
  const d = new Discovery({ identity, ...(pointerKey !== undefined ? { pointerKey } : {}), host: '127.0.0.1', port: 0, bootstrap, allowAddress: loopbackOnly, stateDir: await tempDir(t, 'dustbox-keep-'), autoStart: false })
  d.on('warning', () => {})
  t.after(async () => await d.close())
  await d.ready()
  return d
}

async function keeper (t: TestContext, opts: Partial<PointerKeeperOptions> & { home: string }): Promise<{ k: PointerKeeper, warnings: string[], reputs: Buffer[] }> {
  const reputs: Buffer[] = []
  const k = new PointerKeeper({ holds: () => true, reput: async (item) => { reputs.push(item); return true }, warningsPerMinute: 1000, ...opts })
  const warnings: string[] = []
  k.on('warning', e => warnings.push(e.message))
  t.after(async () => await k.close())
  await k.ready()
  return { k, warnings, reputs }
}

async function waitFor (cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

test('pointer keeper: the owner hands its item over KEEP_POINTER, goes away, and the keeper keeps it in the DHT', async (t) => {
  const net = await testnet(t, 8)
  const owner = keypair()
  const pointerKey = randomBytes(32)
  const ownerHex = hex(owner.publicKey)
  // The keeper: a storage node (its store decides `holds`) whose onKeepPointer is the keeper's.
  const kdir = await tempDir(t, 'dustbox-keeper-')
  const keeperId = keypair()
  const kd = await discovery(t, net.bootstrap, keeperId)
  let pk: PointerKeeper | null = null
  const knode = new NetNode({
    identity: keeperId, host: '127.0.0.1', stateDir: kdir, store: { dir: join(kdir, 'store'), donatedBytes: 1 << 24, reserveDiskBytes: 0 },
    onKeepPointer: async (peer: Peer, item: Buffer) => { await pk!.onKeepPointer(peer, item) }
  })
  knode.on('warning', () => {})
  t.after(async () => await knode.close())
  await knode.ready()
  const kept = await keeper(t, {
    home: kdir,
    holds: h => (knode.store?.usedBy(h) ?? 0) > 0,
    reput: async item => await kd.reputItem(item),
    reputMs: 60_000,
    startDelayMs: 0
  })
  pk = kept.k
  // The owner: a node, its discovery, two puts (seq 0, 1).
  const odir = await tempDir(t, 'dustbox-owner-')
  const onode = new NetNode({ identity: owner, host: '127.0.0.1', stateDir: odir, store: null })
  onode.on('warning', () => {})
  t.after(async () => await onode.close())
  await onode.ready()
  const od = await discovery(t, net.bootstrap, owner, pointerKey)
  assert.equal(od.signedPointer(), null, 'nothing put yet')
  await od.putPointer(Buffer.from('root v0'))
  const payload = Buffer.from('index root seq 1: shard 9f…, 5 holders')
  assert.equal((await od.putPointer(payload)).seq, 1)
  const item = od.signedPointer()!
  assert.ok(item.length <= MAX_ITEM_BYTES)
  const decoded = decodeSignedItem(item)
  assert.equal(decoded.seq, 1)
  assert.ok(decoded.k.equals(owner.publicKey))
  const peer = await onode.connect({ host: '127.0.0.1', port: knode.port })
  // Before it holds anything for this owner, the keeper refuses (and says why, to the owner too).
  await assert.rejects(peer.keepPointer(item), /REFUSED.*stores no shards/)
  assert.ok(kept.warnings.some(w => /^BAD_PARAMS: refused the DHT pointer .* stores no shards for that owner/.test(w)), kept.warnings.join('\n'))
  const shard = randomBytes(1000)
  await peer.put(shardIdOf(shard), shard)
  await peer.keepPointer(item)
  assert.deepEqual(kept.k.list().map(e => [e.owner, e.seq]), [[ownerHex, 1]])
  assert.ok(kept.k.item(ownerHex)!.equals(item))
  // An item too big for KEEP_POINTER never leaves the owner.
  await assert.rejects(peer.keepPointer(Buffer.alloc(MAX_ITEM_BYTES + 1)), /TOO_LARGE|BAD_MESSAGE|1024/)

  // The owner's machine is gone; the DHT nodes forget the item (as they do after ~2 h).
  await onode.close()
  await od.close()
  const target = pointerTarget(owner.publicKey).toString('hex')
  for (const n of [...net.nodes, kd.dht]) (n as any).dht._values.remove(target)
  const fresh = await discovery(t, net.bootstrap, owner, pointerKey)
  assert.equal(await fresh.getPointer(), null, 'the DHT has forgotten the pointer')
  for (const n of [...net.nodes, kd.dht]) (n as any).dht._values.remove(target)

  // The keeper re-puts it (the round a restored node would run within REPUT_MS).
  const stored = new Promise<boolean>(resolve => kept.k.once('reput', r => resolve(r.stored)))
  await kept.k.reputNow(true)
  assert.equal(await stored, true)
  const newMachine = await discovery(t, net.bootstrap, owner, pointerKey)
  assert.deepEqual(await newMachine.getPointer(), { seq: 1, payload, source: 'dht' })

  // On its own timer too: forget again, shrink the period, and wait.
  for (const n of [...net.nodes, kd.dht, newMachine.dht]) (n as any).dht._values.remove(target)
  await kept.k.close()
  const again = await keeper(t, { home: kdir, holds: h => (knode.store?.usedBy(h) ?? 0) > 0, reput: async i => await kd.reputItem(i), reputMs: 200, startDelayMs: 0 })
  let reputs = 0
  again.k.on('reput', () => { reputs++ })
  await waitFor(() => reputs >= 2)
  const third = await discovery(t, net.bootstrap, owner, pointerKey)
  assert.deepEqual(await third.getPointer(), { seq: 1, payload, source: 'dht' })
  assert.deepEqual(again.warnings, [])

  // reputItem itself refuses what does not verify, and sends nothing.
  const forged = Buffer.from(item)
  forged[forged.length - 2] ^= 1
  await assert.rejects(kd.reputItem(forged), /^DhtError: POINTER_INVALID: signed item: the signature over seq 1 does not verify/)
})

test('pointer keeper: forged, tampered, oversized, older, foreign, unheld and surplus items are refused with clear warnings', async (t) => {
  const home = await tempDir(t, 'dustbox-keeper-')
  const owner = keypair()
  const other = keypair()
  const mallory = keypair()
  const ownerHex = hex(owner.publicKey)
  const otherHex = hex(other.publicKey)
  const held = new Set([ownerHex, otherHex])
  const { k, warnings } = await keeper(t, { home, holds: h => held.has(h), maxKeptOwners: 2 })
  const refused = async (owner: string, item: Buffer, re: RegExp): Promise<void> => {
    const n = warnings.length
    assert.equal(await k.accept(owner, owner, item), false)
    assert.equal(warnings.length, n + 1)
    assert.match(warnings[n], re)
  }
  // 1. Signed by another key under the owner's k.
  const v = sealPointer(randomBytes(32), owner.publicKey, 3, Buffer.from('forged'))
  const forged = encodeSignedItem({ k: owner.publicKey, salt: POINTER_SALT, seq: 3, sig: signItem(mallory.secretKey, 3, v), v })
  await refused(ownerHex, forged, /^INDEX_INVALID: refused the DHT pointer from [0-9a-f]{8} for owner [0-9a-f]{8}: POINTER_INVALID: signed item: the signature over seq 3 does not verify/)
  // 2. A real item with a byte of v changed, and with a raised seq.
  const real = itemOf(owner, 5)
  const tampered = Buffer.from(real)
  tampered[tampered.length - 2] ^= 1
  await refused(ownerHex, tampered, /does not verify/)
  const raised = Buffer.from(real.toString('latin1').replace('3:seqi5e', '3:seqi6e'), 'latin1')
  await refused(ownerHex, raised, /the signature over seq 6 does not verify/)
  // 3. Malformed: trailing bytes, a non-canonical seq, keys out of order, another salt, garbage.
  await refused(ownerHex, Buffer.concat([real, Buffer.from('x')]), /trailing bytes/)
  await refused(ownerHex, Buffer.from(real.toString('latin1').replace('3:seqi5e', '3:seqi05e'), 'latin1'), /seq is not a canonical/)
  await refused(ownerHex, Buffer.from('d1:v1:x1:k32:' + 'a'.repeat(32) + 'e'), /expected "d1:k"/)
  const pk = Buffer.from(owner.publicKey)
  const sv = Buffer.from('x')
  await refused(ownerHex, encodeSignedItem({ k: pk, salt: Buffer.from('other salt'), seq: 1, sig: signItem(owner.secretKey, 1, sv, Buffer.from('other salt')), v: sv }), /salt is not the dustbox pointer salt/)
  await refused(ownerHex, randomBytes(300), /INDEX_INVALID.*signed item/)
  // 4. Oversized: refused before it is parsed (and TOO_LARGE on the wire).
  await refused(ownerHex, Buffer.alloc(MAX_ITEM_BYTES + 1, 0x64), new RegExp(`the item is ${MAX_ITEM_BYTES + 1} bytes, more than the ${MAX_ITEM_BYTES} kept`))
  await assert.rejects(k.onKeepPointer({ owner: pk, key: pk }, Buffer.alloc(MAX_ITEM_BYTES + 1)), /^NetError: TOO_LARGE/)
  assert.equal(MAX_ITEM_BYTES, 1024)
  assert.ok(MAX_SIGNED_ITEM_BYTES > MAX_ITEM_BYTES)
  // 5. A valid item of another key, handed over by the owner.
  await refused(ownerHex, itemOf(mallory, 9), /it is signed by key [0-9a-f]{8}, not by the owner who sent it/)
  // 6. Kept; then an older seq, and a different item under the same seq, are refused; the same item is fine.
  assert.equal(await k.accept(ownerHex, ownerHex, real), true)
  await refused(ownerHex, itemOf(owner, 4), /^INDEX_STALE: .*its seq 4 is older than the seq 5 kept/)
  await refused(ownerHex, itemOf(owner, 5, 'another'), /^INDEX_STALE: .*another item with the same seq 5/)
  const n = warnings.length
  assert.equal(await k.accept(ownerHex, ownerHex, real), true)
  assert.equal(warnings.length, n)
  assert.equal(await k.accept(ownerHex, ownerHex, itemOf(owner, 8)), true)
  assert.equal(k.list()[0].seq, 8)
  // 7. An owner this node stores nothing for (by owner or transport key).
  await refused(hex(mallory.publicKey), itemOf(mallory, 1), /^BAD_PARAMS: .*this node stores no shards for that owner/)
  // ... but one held under the transport key it speaks through is accepted.
  const device = randomBytes(32).toString('hex')
  held.add(device)
  assert.equal(await k.accept(otherHex, device, itemOf(other, 0)), true)
  // 8. One owner too many.
  const third = keypair()
  held.add(hex(third.publicKey))
  await refused(hex(third.publicKey), itemOf(third, 0), /keeps the pointers of 2 owners already/)
  // On the wire, a refusal is REFUSED with the reason.
  await assert.rejects(k.onKeepPointer({ owner: pk, key: pk }, itemOf(owner, 2)), /^NetError: REFUSED: its seq 2 is older than the seq 8 kept/)
  assert.equal(k.size, 2)
})

test('pointer keeper: kept items survive a restart, are re-put on the timer, and owners no longer held are dropped', async (t) => {
  const home = await tempDir(t, 'dustbox-keeper-')
  const a = keypair()
  const b = keypair()
  const [ah, bh] = [hex(a.publicKey), hex(b.publicKey)]
  const held = new Set([ah, bh])
  const first = await keeper(t, { home, holds: h => held.has(h) })
  const ia = itemOf(a, 3)
  const ib = itemOf(b, 11)
  assert.equal(await first.k.accept(ah, ah, ia), true)
  assert.equal(await first.k.accept(bh, bh, ib), true)
  await first.k.close()
  await first.k.close() // idempotent
  assert.equal(await first.k.accept(ah, ah, itemOf(a, 4)), false, 'closed')
  const st = await fsp.stat(join(home, KEPT_POINTERS_FILE))
  assert.equal(st.mode & 0o777, 0o600)

  const second = await keeper(t, { home, holds: h => held.has(h), reputMs: 150, startDelayMs: 0 })
  assert.deepEqual(second.k.list().map(e => [e.owner, e.seq]).sort(), [[ah, 3], [bh, 11]].sort())
  assert.ok(second.k.item(ah)!.equals(ia))
  assert.ok(second.k.item(bh)!.equals(ib))
  assert.deepEqual(second.warnings, [])
  // Re-put on the timer, as signed.
  await waitFor(() => second.reputs.filter(r => r.equals(ia)).length >= 2 && second.reputs.some(r => r.equals(ib)))
  // b's shards are gone: its pointer is dropped at the next round, and stays dropped after a restart.
  held.delete(bh)
  let dropped = ''
  second.k.once('dropped', d => { dropped = d.owner })
  // (the keeper's timers are unref'd: wait with a ref'd one)
  await waitFor(() => dropped !== '')
  assert.equal(dropped, bh)
  assert.equal(second.k.size, 1)
  await second.k.close()
  const third = await keeper(t, { home, holds: h => held.has(h) })
  assert.deepEqual(third.k.list().map(e => e.owner), [ah])

  // A re-put that fails is a warning and is tried again after retryMs.
  await third.k.close()
  const calls: number[] = []
  const failing = await keeper(t, { home, holds: h => held.has(h), reputMs: 2000, retryMs: 100, startDelayMs: 0, reput: async () => { calls.push(Date.now()); throw new Error('no DHT node answered') } })
  await waitFor(() => calls.length >= 2)
  assert.ok(calls[1] - calls[0] < 1500, `retried after ${calls[1] - calls[0]} ms, not after retryMs`)
  assert.match(failing.warnings[0], /^INDEX_FAILED: re-putting the DHT pointer of owner [0-9a-f]{8} \(seq 3\) failed, retrying in ~1 s: no DHT node answered/)
})

test('pointer keeper: a corrupt, foreign or oversized kept-pointers.json is a warning and a fresh start', async (t) => {
  const a = keypair()
  const ah = hex(a.publicKey)
  const good = { owner: ah, via: ah, seq: 2, item: itemOf(a, 2).toString('hex'), acceptedAt: 1, putAt: null }
  const cases: Array<[string, string | Buffer, RegExp, number]> = [
    ['not JSON', '{"format":1,"owners":[', /kept-pointers\.json is not a format 1 list of kept pointers; keeping no pointers/, 0],
    ['wrong format', JSON.stringify({ format: 2, owners: [good] }), /is not a format 1 list/, 0],
    ['not a list', JSON.stringify({ format: 1, owners: 'x' }), /is not a format 1 list/, 0],
    ['oversized', Buffer.alloc(3 * 1024 * 1024 + 10, 0x20), /more than the \d+ it may take; keeping no pointers/, 0],
    ['a forged entry among good ones', JSON.stringify({
      format: 1,
      owners: [good, { ...good, owner: hex(keypair().publicKey) }, { ...good, item: good.item.replace(/.$/, c => c === '0' ? '1' : '0') }, { ...good, acceptedAt: -1 }, null, { ...good }]
    }), /skipped 5 bad or surplus entries/, 1]
  ]
  for (const [name, body, re, keptN] of cases) {
    const home = await tempDir(t, 'dustbox-keeper-')
    await fsp.writeFile(join(home, KEPT_POINTERS_FILE), body)
    const { k, warnings } = await keeper(t, { home })
    assert.equal(warnings.length, 1, `${name}: ${warnings.join('\n')}`)
    assert.match(warnings[0], re, name)
    assert.equal(k.size, keptN, name)
    // It still works, and the next save replaces the bad file.
    const b = keypair()
    assert.equal(await k.accept(hex(b.publicKey), hex(b.publicKey), itemOf(b, 0)), true, name)
    await k.close()
    const again = await keeper(t, { home })
    assert.deepEqual(again.warnings, [], name)
    assert.equal(again.k.size, keptN + 1, name)
  }
})

test('pointer keeper: warnings from a flood are rate limited, and warning events carry AgentErrors', async (t) => {
  const home = await tempDir(t, 'dustbox-keeper-')
  const k = new PointerKeeper({ home, holds: () => false, reput: async () => true, warningsPerMinute: 3 })
  const got: AgentError[] = []
  k.on('warning', e => got.push(e))
  t.after(async () => await k.close())
  await k.ready()
  const a = keypair()
  for (let i = 0; i < 50; i++) assert.equal(await k.accept(hex(a.publicKey), hex(a.publicKey), itemOf(a, i)), false)
  assert.equal(got.length, 3)
  assert.equal(got[0].code, 'BAD_PARAMS')
})
