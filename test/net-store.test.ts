// The ShardStore rules on real files: content addressing (a mismatch refused, a damaged copy dropped
// on GET), per-owner namespaces, quotas and donated space, concurrent PUTs of one shard, paged LIST,
// usage kept across a clean restart and rebuilt by a scan after a crash (temporary files removed),
// and a full disk (tiny tmpfs): DISK_FULL, nothing half-written, nothing miscounted.

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { ShardStore, shardIdOf } from '../net/shard-store.js'
import { tempDir, prng, smallDisk } from './helpers/fixtures.js'

const alice = randomBytes(32)
const bob = randomBytes(32)

async function open (dir: string, extra: Partial<ConstructorParameters<typeof ShardStore>[0]> = {}): Promise<ShardStore> {
  const s = new ShardStore({ dir, donatedBytes: 10_000_000, reserveDiskBytes: 0, ...extra })
  await s.open()
  return s
}

const codeOf = (code: string, re?: RegExp) => (e: any): boolean => e.code === code && (re === undefined || re.test(e.message))

test('store: content addressing, namespaces, damaged copies, concurrent puts, paged list', async t => {
  const dir = await tempDir(t)
  const s = await open(join(dir, 'store'))
  const shards = Array.from({ length: 25 }, (_, i) => prng(`s${i}`, 1000 + i))
  for (const d of shards) assert.equal((await s.put(alice, shardIdOf(d), d)).status, 0)
  await assert.rejects(s.put(alice, randomBytes(32), shards[0]), codeOf('HASH_MISMATCH'))
  await assert.rejects(s.put(alice, shardIdOf(Buffer.alloc(5_000_000)), Buffer.alloc(5_000_000)), codeOf('TOO_LARGE'))
  // Same shard 10 times at once: one write, nine "already held", counted once.
  const d = prng('same', 50_000)
  const rs = await Promise.all(Array.from({ length: 10 }, async () => await s.put(alice, shardIdOf(d), d)))
  assert.equal(rs.filter(r => r.status === 0).length, 1)
  assert.equal(s.usedBy(alice.toString('hex')), shards.reduce((a, b) => a + b.length, 0) + 50_000)
  // Bob sees none of it.
  await assert.rejects(s.get(bob, shardIdOf(shards[0])), codeOf('NOT_FOUND'))
  assert.deepEqual((await s.list(bob, null, 100)).entries, [])
  assert.deepEqual((await s.delete(bob, [shardIdOf(shards[0])])).deleted, [false])
  // Paged LIST visits every id once, in order.
  const seen: string[] = []
  let after: Buffer | null = null
  for (let page = 0; page < 20; page++) {
    const r = await s.list(alice, after, 4)
    seen.push(...r.entries.map(e => e.shard.toString('hex')))
    if (!r.more) break
    after = r.entries[r.entries.length - 1].shard
  }
  assert.equal(seen.length, 26)
  assert.deepEqual(seen, [...seen].sort())
  // A copy damaged on disk is dropped on GET (NOT_FOUND) and uncounted.
  const victim = shardIdOf(shards[3]).toString('hex')
  const path = join(dir, 'store', 'owners', alice.toString('hex'), victim.slice(0, 2), victim)
  const bytes = await fsp.readFile(path)
  bytes[10] ^= 1
  await fsp.writeFile(path, bytes)
  const before = s.usedBy(alice.toString('hex'))
  await assert.rejects(s.get(alice, Buffer.from(victim, 'hex')), codeOf('NOT_FOUND', /damaged/))
  assert.equal(s.usedBy(alice.toString('hex')), before - shards[3].length)
  await s.close()
})

test('store: quota per owner, donated space; usage survives a clean restart and is rebuilt after a crash', async t => {
  const dir = join(await tempDir(t), 'store')
  let s = await open(dir, { donatedBytes: 100_000, quota: owner => owner === alice.toString('hex') ? 60_000 : 30_000 })
  const a = [prng('a1', 30_000), prng('a2', 30_000), prng('a3', 10)]
  await s.put(alice, shardIdOf(a[0]), a[0])
  await s.put(alice, shardIdOf(a[1]), a[1])
  await assert.rejects(s.put(alice, shardIdOf(a[2]), a[2]), codeOf('QUOTA_EXCEEDED', /60000-byte quota/))
  const b = prng('b1', 30_000)
  await s.put(bob, shardIdOf(b), b)
  const c = prng('c1', 20_000)
  await assert.rejects(s.put(randomBytes(32), shardIdOf(c), c), codeOf('SPACE_EXCEEDED', /100000 donated bytes/))
  const space = await s.space(bob)
  assert.equal(space.used, 90_000n)
  assert.equal(space.free, 0n)
  await s.close()
  // Clean restart: usage.json is trusted.
  s = await open(dir, { donatedBytes: 100_000 })
  assert.equal(s.used, 90_000)
  // Crash: usage.json says unclean (as any running store leaves it); a leftover temp file is removed.
  const tmp = join(dir, 'owners', alice.toString('hex'), shardIdOf(a[0]).toString('hex').slice(0, 2), '.dustbox-tmp.partial.123456')
  await fsp.writeFile(tmp, 'partial')
  const again = new ShardStore({ dir, donatedBytes: 100_000, reserveDiskBytes: 0 })
  await again.open()
  assert.equal(again.used, 90_000)
  assert.equal(again.usedBy(alice.toString('hex')), 60_000)
  await assert.rejects(fsp.stat(tmp), { code: 'ENOENT' })
  await again.close()
  // A corrupt usage.json is not trusted either.
  await fsp.writeFile(join(dir, 'usage.json'), '{"v":1,"clean":true,"owners":{"zz":{"bytes":-1}}}')
  const third = await open(dir, { donatedBytes: 100_000 })
  assert.equal(third.used, 90_000)
  await third.close()
})

test('store: a full disk (tiny tmpfs) gives DISK_FULL; nothing half-written, nothing miscounted', async t => {
  const disk = await smallDisk(t, '4m')
  if (disk === null) { t.skip('cannot mount a tmpfs here (needs root)'); return }
  // Donated space larger than the disk, and no reserve: the write itself hits ENOSPC.
  const s = await open(join(disk, 'store'), { donatedBytes: 100_000_000 })
  t.after(async () => { await s.close().catch(() => {}) })
  let stored = 0
  let full = 0
  for (let i = 0; i < 12 && full === 0; i++) {
    const d = prng(`full${i}`, 1_000_000)
    try {
      await s.put(alice, shardIdOf(d), d)
      stored++
    } catch (err: any) {
      assert.equal(err.code, 'DISK_FULL', err.message)
      full++
    }
  }
  assert.ok(full === 1 && stored >= 1, `stored ${stored}, full ${full}`)
  assert.equal(s.usedBy(alice.toString('hex')), stored * 1_000_000)
  // Every shard on disk is complete, no temporary file is left, and each reads back.
  const root = join(disk, 'store', 'owners', alice.toString('hex'))
  const names = (await Promise.all((await fsp.readdir(root)).map(async p => (await fsp.readdir(join(root, p))).map(n => join(root, p, n))))).flat()
  assert.equal(names.filter(n => n.includes('.dustbox-tmp.')).length, 0)
  assert.equal(names.length, stored)
  for (const n of names) assert.equal((await fsp.stat(n)).size, 1_000_000)
  for (let i = 0; i < stored; i++) {
    const d = prng(`full${i}`, 1_000_000)
    assert.ok((await s.get(alice, shardIdOf(d))).equals(d))
  }
  // With the reserve on, a store refuses before writing at all.
  const r = await open(join(disk, 'store2'), { donatedBytes: 100_000_000, reserveDiskBytes: 64 * 1024 * 1024 })
  const d = prng('r', 1000)
  await assert.rejects(r.put(alice, shardIdOf(d), d), codeOf('DISK_FULL', /disk .* is full/))
  await r.close()
})
