// The parts the ingest pipeline is built from, each on its own: the buffer pool (size classes, reuse,
// eviction, foreign buffers), the directory-fsync coalescer, and the block store's write path (in
// place, read back, dedupe, a crash-shortened copy replaced, exact-length reads).

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BufferPool, MIN_CLASS } from '../stubs/buffer-pool.js'
import { DirSyncer } from '../stubs/dir-sync.js'
import { BlockStore } from '../stubs/block-store.js'
import { BlockPool, MAX_WORKER_FAILURES } from '../stubs/block-pool.js'
import { loadCrypto } from '../stubs/crypto.js'
import { StubError } from '../stubs/errors.js'
import { tempDir, prng } from './helpers/fixtures.js'

test('buffer pool: classes at most 25% over, buffers reused, oldest evicted, foreign ones ignored', () => {
  for (const n of [1, MIN_CLASS, MIN_CLASS + 1, 1_000_000, 1 << 20, (1 << 20) + 1, 4 * 2 ** 20 + 46, 64 * 2 ** 20]) {
    const c = BufferPool.classOf(n)
    assert.ok(c >= n && BufferPool.classOf(c) === c, `class of ${n} is ${c}`)
    if (n > MIN_CLASS) assert.ok(c <= 1.25 * n, `class of ${n} is ${c}`)
  }
  const pool = new BufferPool(4 * MIN_CLASS)
  const a = pool.take(1000)
  assert.equal(a.byteLength, 1000)
  assert.equal(a.buffer.byteLength, MIN_CLASS)
  pool.give(a)
  pool.give(a) // twice: kept once
  assert.equal(pool.retainedBytes, MIN_CLASS)
  const b = pool.take(5000)
  assert.equal(b.buffer, a.buffer, 'reused')
  assert.equal(pool.allocatedBytes, MIN_CLASS)
  // A larger free buffer (up to twice the class) serves a smaller request.
  const big = pool.take(2 * MIN_CLASS)
  pool.give(big)
  assert.equal(pool.take(MIN_CLASS + 1).buffer, big.buffer)
  // Foreign, detached and shared buffers are ignored.
  pool.give(new Uint8Array(100))
  pool.give(new Uint8Array(MIN_CLASS + 1))
  pool.give(new Uint8Array(new SharedArrayBuffer(MIN_CLASS)))
  const moved = pool.take(10)
  structuredClone(moved.buffer, { transfer: [moved.buffer as ArrayBuffer] })
  pool.give(moved)
  assert.equal(pool.retainedBytes, 0)
  // Over the cap, the oldest free buffers go first.
  const bufs = Array.from({ length: 6 }, () => pool.take(MIN_CLASS))
  for (const x of bufs) pool.give(x)
  assert.equal(pool.retainedBytes, 4 * MIN_CLASS)
  assert.equal(pool.take(MIN_CLASS).buffer, bufs[2].buffer, 'the two oldest were dropped')
})

test('directory fsyncs: concurrent requests share fsyncs, and each waits for one that started after it', async () => {
  const started: string[] = []
  let release: Array<() => void> = []
  const fsync = async (dir: string): Promise<void> => {
    started.push(dir)
    await new Promise<void>(resolve => release.push(resolve))
  }
  const syncer = new DirSyncer(fsync)
  const flush = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }
  const first = syncer.sync('/a')
  await flush()
  assert.deepEqual(started, ['/a'])
  // Ten more while the first runs: they may have changed /a after it started, so they wait for a
  // second fsync, which they all share; /b is independent.
  let done = 0
  const more = Array.from({ length: 10 }, async () => { await syncer.sync('/a'); done++ })
  const other = syncer.sync('/b')
  await flush()
  assert.deepEqual(started, ['/a', '/b'])
  release.shift()!() // the first /a fsync ends
  await first
  await flush()
  assert.equal(done, 0, 'the later requests wait for the fsync that started after them')
  assert.deepEqual(started, ['/a', '/b', '/a'])
  for (const r of release.splice(0)) r()
  await Promise.all([...more, other])
  assert.equal(done, 10)
  assert.equal(started.length, 3, 'eleven requests on /a cost two fsyncs')
  // Failures reach every waiter; the next request starts afresh.
  const failing = new DirSyncer(async () => { throw new Error('EIO') })
  await assert.rejects(Promise.all([failing.sync('/c'), failing.sync('/c')]), /EIO/)
  await assert.rejects(failing.sync('/c'), /EIO/)
  release = []
})

test('block store: written in place and read back, deduped, a short copy replaced, exact-length reads', async t => {
  const dir = await tempDir(t)
  const crypto = await loadCrypto()
  const store = new BlockStore(crypto, join(dir, 'blocks'))
  await store.ready()
  const bytes = prng('block', 300000)
  const id = crypto.hash(bytes)
  assert.equal(await store.put(id, bytes), true)
  assert.ok((await fsp.readFile(store.pathOf(id))).equals(bytes))
  assert.equal((await fsp.stat(store.pathOf(id))).mode & 0o777, 0o600)
  assert.equal(await store.put(id, bytes), false, 'an identical copy is kept')
  // A crash left the block short at its path: readers see BLOCK_CORRUPT, the next put replaces it.
  await fsp.truncate(store.pathOf(id), 1000)
  const out = new Uint8Array(bytes.length)
  await assert.rejects(store.readInto(id, 'f.f', out), (e: StubError) => e.code === 'BLOCK_CORRUPT' && /1000 bytes/.test(e.message))
  await assert.rejects(store.get(id, 'f.f'), (e: StubError) => e.code === 'BLOCK_CORRUPT')
  assert.equal(await store.put(id, bytes), true)
  await store.readInto(id, 'f.f', out)
  assert.ok(Buffer.from(out).equals(bytes))
  assert.ok(Buffer.from(await store.get(id, 'f.f')).equals(bytes))
  await store.syncDirsOf([id])
  assert.deepEqual((await fsp.readdir(join(dir, 'blocks', 'tmp'))), [], 'no temporary file left')
  const other = crypto.hash(prng('other', 10))
  await assert.rejects(store.readInto(other, 'f.f', out), (e: StubError) => e.code === 'BLOCK_MISSING' && e.message.includes('"f.f"'))
  const ids: string[] = []
  for await (const x of store.ids()) ids.push(x)
  assert.deepEqual(ids, [Buffer.from(id).toString('hex')])
})

test('idle block workers do not keep a process alive (an engine nobody closed lets node exit)', async t => {
  const dir = await tempDir(t)
  const index = fileURLToPath(new URL('../stubs/index.js', import.meta.url))
  const script = `
    import { StubEngine, createSecret, loadCrypto } from ${JSON.stringify(index)}
    import { writeFileSync } from 'node:fs'
    const home = ${JSON.stringify(join(dir, 'home'))}
    await createSecret(await loadCrypto(), home)
    const engine = await StubEngine.open({ home })
    writeFileSync(${JSON.stringify(join(dir, 'x'))}, 'hello')
    await engine.stub(${JSON.stringify(join(dir, 'x'))})
    await engine.stub(${JSON.stringify(join(dir, 'missing'))}).catch(() => {})
    console.log('done')`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.signal, null, 'the process had to be killed: something kept it alive')
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /done/)
})

test('block workers that keep dying break the pool with WORKER_FAILED instead of respawning forever', async t => {
  const dir = await tempDir(t)
  const script = join(dir, 'dies.mjs')
  await fsp.writeFile(script, 'process.exit(3)\n')
  const pool = new BlockPool({ data: new Uint8Array(32), plainHash: new Uint8Array(32) }, 2, new URL('file://' + script))
  t.after(async () => { await pool.close() })
  const task = (): { type: 'encode', plain: Uint8Array, out: Uint8Array } => ({ type: 'encode', plain: new Uint8Array(10), out: new Uint8Array(100) })
  let tries = 0
  for (; tries < 50; tries++) {
    const err = await pool.run(task()).then(() => null, (e: StubError) => e)
    assert.ok(err !== null && err.code === 'WORKER_FAILED', String(err))
    if (err.message.includes('in a row')) break
  }
  assert.ok(tries < 50, 'the pool gave up respawning')
  await assert.rejects(pool.run(task()), (e: StubError) => e.code === 'WORKER_FAILED' && e.message.includes(`${MAX_WORKER_FAILURES} in a row`))
})
