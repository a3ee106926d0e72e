// Two and three real nodes (child processes) over uTP and over TCP on 127.0.0.1: put/get/has/list/
// delete/audit/space round trips with many requests in flight, the owner-only storage rules between
// three owners, quotas, donated space, hash mismatch, accounting both ways, and backpressure from a
// receiver that stops reading.

import test from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { startChild, startChildren } from './helpers/testnet.js'
import { shardIdOf, auditProof } from '../net/shard-store.js'
import { prng } from './helpers/fixtures.js'
import { parsePeerId } from '../net/peer-id.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

async function rejectsWith (p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.code, code, err.message)
    if (re !== undefined) assert.match(err.message, re)
    return true
  })
}

for (const transport of ['utp', 'tcp'] as const) {
  test(`nodes over ${transport}: round trips, many in flight, owner-only rules, accounting`, async t => {
    const [a, b, c] = await startChildren(t, 3)
    const conn = await a.call('connect', { host: '127.0.0.1', port: b.port, expect: b.id, transports: [transport] })
    assert.equal(conn.transport, transport)
    assert.equal(conn.id, b.id)
    await c.call('connect', { host: '127.0.0.1', port: b.port, expect: b.id, transports: [transport] })
    await a.call('connect', { host: '127.0.0.1', port: c.port, expect: c.id, transports: [transport] })

    // 60 shards of mixed sizes, 16 requests in flight, A → B and A → C at once.
    const sizes = [1, 1000, 65536, 262144, 1048576]
    const [toB, toC] = await Promise.all([
      a.call('putGen', { peer: b.id, seed: 'ab', count: 60, size: 100_000, parallel: 16 }),
      a.call('putGen', { peer: c.id, seed: 'ac', count: 20, size: 1_048_576, parallel: 16 })
    ])
    assert.equal(toB.stored, 60)
    assert.equal(toC.stored, 20)
    const [gotB, gotC] = await Promise.all([
      a.call('getGen', { peer: b.id, seed: 'ab', count: 60, size: 100_000, parallel: 16 }),
      a.call('getGen', { peer: c.id, seed: 'ac', count: 20, size: 1_048_576, parallel: 16 })
    ])
    assert.equal(gotB.ok, 60)
    assert.equal(gotC.ok, 20)
    // Same shard again: already held, costs nothing.
    const again = await a.call('putGen', { peer: b.id, seed: 'ab', count: 5, size: 100_000 })
    assert.equal(again.stored, 0)

    for (const size of sizes) {
      const data = prng(`one-${size}`, size)
      const id = hex(shardIdOf(data))
      const r = await a.call('put', { peer: b.id, shard: id, data: hex(data) })
      assert.equal(r.stored, true)
      assert.equal(await a.call('get', { peer: b.id, shard: id }), hex(data))
    }

    // HAS (batched), LIST (paged: 7 per page), AUDIT.
    const known = toB.ids.slice(0, 10)
    const unknown = [hex(randomBytes(32)), hex(randomBytes(32))]
    assert.deepEqual(await a.call('has', { peer: b.id, shards: [...known, ...unknown] }), [...known.map(() => true), false, false])
    const listed = await a.call('listAll', { peer: b.id, pageSize: 7 })
    assert.equal(listed.length, 60 + sizes.length)
    const listedIds = listed.map((e: any) => e.shard)
    assert.deepEqual(listedIds, [...listedIds].sort(), 'LIST is in id order')
    assert.ok(toB.ids.every((id: string) => listedIds.includes(id)))
    const data0 = prng('ab/0', 100_000)
    const nonce = randomBytes(32)
    const answers = await a.call('audit', { peer: b.id, challenges: [
      { shard: toB.ids[0], nonce: hex(nonce), offset: 0, length: 0 },
      { shard: toB.ids[0], nonce: hex(nonce), offset: 500, length: 1000 },
      { shard: unknown[0], nonce: hex(nonce), offset: 0, length: 0 },
      { shard: toB.ids[0], nonce: hex(nonce), offset: 99_999, length: 2 }
    ] })
    assert.deepEqual(answers.map((x: any) => x.status), [0, 0, 1, 2])
    assert.equal(answers[0].proof, hex(auditProof(Buffer.from(toB.ids[0], 'hex'), nonce, 0, 0, data0)))
    assert.equal(answers[1].proof, hex(auditProof(Buffer.from(toB.ids[0], 'hex'), nonce, 500, 1000, data0.subarray(500, 1500))))

    // C is another owner: it sees nothing of A's shards on B and cannot delete them.
    await rejectsWith(c.call('get', { peer: b.id, shard: toB.ids[0] }), 'NOT_FOUND', /no shard/)
    assert.deepEqual(await c.call('has', { peer: b.id, shards: known }), known.map(() => false))
    assert.deepEqual(await c.call('listAll', { peer: b.id }), [])
    assert.deepEqual((await c.call('del', { peer: b.id, shards: known })).deleted, known.map(() => false))
    const audC = await c.call('audit', { peer: b.id, challenges: [{ shard: toB.ids[0], nonce: hex(nonce), offset: 0, length: 0 }] })
    assert.equal(audC[0].status, 1)
    assert.equal(await a.call('get', { peer: b.id, shard: toB.ids[0] }).then((h: string) => h.length), 200_000, 'still there for its owner')

    // A shard whose bytes do not match its id is refused.
    await rejectsWith(a.call('put', { peer: b.id, shard: hex(randomBytes(32)), data: hex(prng('x', 1000)) }), 'HASH_MISMATCH', /do not hash to its id/)

    // Accounting both ways: B holds for A exactly what A's ledger says B holds for it.
    const expectedOnB = 60 * 100_000 + sizes.reduce((x, y) => x + y, 0)
    const spaceB = await a.call('space', { peer: b.id })
    assert.equal(spaceB.usedByYou, String(expectedOnB))
    const usageA = await a.call('usage')
    const usageB = await b.call('usage')
    const keyHex = (id: string): string => hex(parsePeerId(id))
    assert.equal(usageB[keyHex(a.id)].heldForThem, expectedOnB)
    assert.equal(usageA[keyHex(b.id)].heldByThem, expectedOnB)
    assert.equal(usageA[keyHex(b.id)].reportedByThem, expectedOnB)

    // DELETE by the owner: the shard goes, usage drops on both sides.
    const del = await a.call('del', { peer: b.id, shards: known })
    assert.deepEqual(del.deleted, known.map(() => true))
    assert.equal(del.usedByYou, String(expectedOnB - 10 * 100_000))
    await rejectsWith(a.call('get', { peer: b.id, shard: known[0] }), 'NOT_FOUND')
    assert.ok(Number(await a.call('ping', { peer: b.id })) >= 0)
  })
}

test('nodes: per-owner quota and total donated space give explicit errors; nothing is half-stored', async t => {
  const b = await startChild(t, { donate: 3_000_000, quota: 2_000_000 })
  const [a, c] = await startChildren(t, 2)
  await a.call('connect', { host: '127.0.0.1', port: b.port, expect: b.id, transports: ['tcp'] })
  await c.call('connect', { host: '127.0.0.1', port: b.port, expect: b.id, transports: ['utp'] })
  const first = await a.call('putGen', { peer: b.id, seed: 'q', count: 2, size: 900_000 })
  assert.equal(first.stored, 2)
  const big = prng('q-over', 300_000)
  await rejectsWith(a.call('put', { peer: b.id, shard: hex(shardIdOf(big)), data: hex(big) }), 'QUOTA_EXCEEDED', /quota/)
  await c.call('putGen', { peer: b.id, seed: 'c', count: 1, size: 1_000_000 })
  const more = prng('c-over', 1_000_000)
  await rejectsWith(c.call('put', { peer: b.id, shard: hex(shardIdOf(more)), data: hex(more) }), 'SPACE_EXCEEDED', /donated/)
  const space = await c.call('space', { peer: b.id })
  assert.equal(space.used, String(2_800_000))
  assert.equal(space.free, String(200_000))
  assert.deepEqual(await a.call('has', { peer: b.id, shards: [hex(shardIdOf(big))] }), [false])
  // A node that donates nothing refuses storage but still answers.
  const d = await startChild(t, { donate: 0 })
  await a.call('connect', { host: '127.0.0.1', port: d.port, expect: d.id })
  await rejectsWith(a.call('put', { peer: d.id, shard: hex(shardIdOf(big)), data: hex(big) }), 'SPACE_EXCEEDED', /donates no space/)
  assert.equal((await a.call('space', { peer: d.id })).donated, '0')
})

test('nodes: a receiver that stops reading slows the sender; memory stays bounded; all completes after', async t => {
  const [a, b] = await startChildren(t, 2)
  await a.call('connect', { host: '127.0.0.1', port: b.port, expect: b.id, transports: ['tcp'] })
  await b.call('pauseAll')
  await a.call('resetPeak')
  const rss0 = (await a.call('mem')).rss
  // 300 MiB offered with 64 in flight (the peer layer allows 32), while B reads nothing.
  const put = a.call('putGen', { peer: b.id, seed: 'bp', count: 300, size: 1_048_576, parallel: 64, timeoutMs: 60_000 })
  await new Promise(resolve => setTimeout(resolve, 1500))
  const during = await a.call('mem')
  assert.ok(during.peakRss - rss0 < 160 * 1024 * 1024, `sender grew ${(during.peakRss - rss0) >> 20} MiB while the receiver was stalled`)
  await b.call('pauseAll', { resume: true })
  const r = await put
  assert.equal(r.stored, 300)
  const bm = await b.call('mem')
  assert.ok(bm.peakRss < 400 * 1024 * 1024, `receiver peak RSS ${bm.peakRss >> 20} MiB`)
})
