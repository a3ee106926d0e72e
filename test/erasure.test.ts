// Erasure coding of blocks (docs/erasure.md, stubs/erasure.ts): round trips from every subset of k
// shards, random sizes and codes, the golden vectors docs/vectors/erasure-v1.json and their
// independent Python checker, the spec's parameter table against the library's contexts, hostile
// headers, too few shards, corrupt shards, output buffers and concurrent calls.
// The vectors are written only on purpose, after a deliberate format change (a new version):
//   npx tsc -p . && DUSTBOX_WRITE_VECTORS=1 node test/run.js erasure

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { promises as fsp, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import {
  encodeShards, decodeShards, parseShardHeader, shardPayloadSize, decodeBufferBytes, shardId,
  SHARD_HEADER_BYTES, SHARD_VERSION, DEFAULT_K, DEFAULT_M, MAX_K, MAX_M, MAX_BLOCK_BYTES
} from '../stubs/erasure.js'
import { BufferPool } from '../stubs/buffer-pool.js'
import { MAX_STORED_BLOCK } from '../stubs/block-store.js'
import { loadCrypto } from '../stubs/crypto.js'
import { StubError } from '../stubs/errors.js'
import { shardIdOf } from '../net/shard-store.js'

const rs = createRequire(import.meta.url)('@ronomon/reed-solomon') as typeof import('@ronomon/reed-solomon')
const FILE = fileURLToPath(new URL('../../docs/vectors/erasure-v1.json', import.meta.url))
const SPEC = fileURLToPath(new URL('../../docs/erasure.md', import.meta.url))
const CHECKER = fileURLToPath(new URL('../../docs/vectors/check_erasure_v1.py', import.meta.url))
const WRITE = process.env.DUSTBOX_WRITE_VECTORS === '1'
const LONG = process.env.DUSTBOX_LONG === '1'
/** Random round trips (seeded); DUSTBOX_LONG=1 runs many more. */
const RANDOM_RUNS = LONG ? 2000 : 60
const BLOCK_LABEL = 'dustbox/v1/erasure-vector'
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** Rejects/throws a StubError with this code whose message matches `re`. */
function coded (code: string, re?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof StubError, `not a StubError: ${String(err)}`)
    assert.equal(err.code, code, err.message)
    assert.ok(err.message.startsWith(`${code}: `), err.message)
    if (re !== undefined) assert.match(err.message, re)
    return true
  }
}

/** The vector block rule of erasure.md §10: BLAKE2b-512 counter stream over label || u32be L || u32be i. */
function vectorBlock (length: number): Buffer {
  const out = Buffer.alloc(Math.ceil(length / 64) * 64)
  for (let i = 0; i * 64 < length; i++) {
    const msg = Buffer.alloc(BLOCK_LABEL.length + 8)
    msg.write(BLOCK_LABEL, 0, 'ascii')
    msg.writeUInt32BE(length, BLOCK_LABEL.length)
    msg.writeUInt32BE(i, BLOCK_LABEL.length + 4)
    createHash('blake2b512').update(msg).digest().copy(out, i * 64)
  }
  return out.subarray(0, length)
}

/** Deterministic PRNG (mulberry32) for the random runs. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function bytesOf (rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0
  return b
}

/** Slots with only the shards of `keep` present. */
function only (shards: Uint8Array[], keep: readonly number[]): Array<Uint8Array | null> {
  return shards.map((s, i) => keep.includes(i) ? s : null)
}

/** The spec's Appendix A: (k, m) -> { w, p, x, y, b }. */
function specParameters (): Map<string, { w: number, p: number, x: number, y: number, b: number }> {
  const text = readFileSync(SPEC, 'utf8')
  const block = /```parameters\n([\s\S]*?)```/.exec(text)
  assert.ok(block !== null, 'erasure.md has a ```parameters block')
  const out = new Map<string, { w: number, p: number, x: number, y: number, b: number }>()
  for (const line of block[1].split('\n').slice(1)) {
    if (line.trim() === '') continue
    const [k, m, w, p, x, y, b] = line.trim().split(/\s+/).map(Number)
    out.set(`${k}+${m}`, { w, p, x, y, b })
  }
  return out
}

/** The coding matrix M read back from the library's context (bit matrix: column 0 of T(x) = x). */
function libraryMatrix (k: number, m: number): { w: number, rows: number[][], ones: number } {
  const ctx = rs.create(k, m)
  const w = ctx[0]
  assert.equal(ctx[1], k)
  assert.equal(ctx[2], m)
  const bits = ctx.subarray(3)
  const rows: number[][] = []
  for (let r = 0; r < m; r++) {
    const row: number[] = []
    for (let c = 0; c < k; c++) {
      let x = 0
      for (let b = 0; b < w; b++) x |= bits[r * w * k * w + w * c + 0 + k * w * b] << b
      row.push(x)
    }
    rows.push(row)
  }
  let ones = 0
  for (const v of bits) ones += v
  return { w, rows, ones }
}

/** erasure.md §5.3. */
function chunkSize (w: number, k: number, size: number): number {
  let c = size / w
  while (c > 64 && c % 2 === 0 && (1 + k * w) * c > 1048576) c /= 2
  return c
}

/** Two decode subsets of k indices: data shards dropped first, then a fixed shuffle. */
function subsetsFor (k: number, m: number): number[][] {
  const n = k + m
  const a = Array.from({ length: n }, (_, i) => i).slice(Math.min(k, m)).slice(0, k)
  const b = Array.from({ length: n }, (_, i) => i).sort((x, y) => ((x * 7919 + 3) % n) - ((y * 7919 + 3) % n)).slice(0, k).sort((x, y) => x - y)
  return JSON.stringify(a) === JSON.stringify(b) ? [a] : [a, b]
}

const CASES: Array<[number, number, number[]]> = [
  [4, 2, [1, 7, 8, 9, 1000, 4137]],
  [1, 1, [1, 7, 8, 9, 1000, 4137]],
  [10, 4, [1, 7, 8, 9, 1000, 4137]],
  ...([[1, 3], [2, 2], [3, 3], [6, 6], [11, 6], [13, 4], [15, 2], [16, 1], [24, 6]] as Array<[number, number]>).map(([k, m]): [number, number, number[]] => [k, m, [9, 1000]])
]
const LARGE: Array<[number, number, number]> = [[4, 2, 4 * 1024 * 1024], [4, 2, 4 * 1024 * 1024 + 46], [13, 4, 4 * 1024 * 1024 + 46]]

/** Hostile variants of a valid 4+2 shard of a 9-byte block, each with the reason of erasure.md §7. */
function invalidShards (valid: Buffer): Array<{ shard: string, reason: string }> {
  const edit = (f: (b: Buffer) => Buffer | void): string => {
    const b = Buffer.from(valid)
    return hex(f(b) ?? b)
  }
  return [
    { shard: hex(valid.subarray(0, 7)), reason: 'short' },
    { shard: '', reason: 'short' },
    { shard: edit(b => { b[0] = 2 }), reason: 'version' },
    { shard: edit(b => { b[0] = 0 }), reason: 'version' },
    { shard: edit(b => { b[1] = 0 }), reason: 'k' },
    { shard: edit(b => { b[1] = 25 }), reason: 'k' },
    { shard: edit(b => { b[2] = 0 }), reason: 'm' },
    { shard: edit(b => { b[2] = 7 }), reason: 'm' },
    { shard: edit(b => { b[3] = 6 }), reason: 'index' },
    { shard: edit(b => { b[3] = 255 }), reason: 'index' },
    { shard: edit(b => { b.writeUInt32BE(0, 4) }), reason: 'blockLength' },
    { shard: edit(b => { b.writeUInt32BE(MAX_BLOCK_BYTES + 1, 4) }), reason: 'blockLength' },
    { shard: edit(b => { b.writeUInt32BE(0xffffffff, 4) }), reason: 'blockLength' },
    { shard: edit(b => { b.writeUInt32BE(33, 4) }), reason: 'payloadSize' },
    { shard: hex(valid.subarray(0, valid.length - 1)), reason: 'payloadSize' },
    { shard: hex(Buffer.concat([valid, Buffer.alloc(8)])), reason: 'payloadSize' },
    { shard: hex(valid.subarray(0, 8)), reason: 'payloadSize' }
  ]
}

const REASON_TEXT: Record<string, RegExp> = {
  short: /\d+ bytes is shorter than the 8-byte shard header/,
  version: /shard format version \d+ is not 1/,
  k: /k=\d+ data shards is out of range 1\.\.24/,
  m: /m=\d+ parity shards is out of range 1\.\.6/,
  index: /index \d+ is not below k\+m=\d+/,
  blockLength: /block length \d+ is out of range 1\.\.67108910/,
  payloadSize: /payload of \d+ bytes, but a block of \d+ bytes in \d+ data shards has \d+-byte payloads/
}

async function buildVectors (): Promise<Record<string, unknown>> {
  const params = specParameters()
  const matrices: Record<string, unknown> = {}
  const cases: unknown[] = []
  for (const [k, m, lengths] of CASES) {
    const { w, rows } = libraryMatrix(k, m)
    matrices[`${k}+${m}`] = { w, p: params.get(`${k}+${m}`)!.p, rows }
    for (const length of lengths) {
      const shards = await encodeShards(vectorBlock(length), k, m)
      const size = shardPayloadSize(length, k)
      cases.push({ k, m, blockLength: length, payloadSize: size, chunkSize: chunkSize(w, k, size), shards: shards.map(hex), ids: shards.map(s => hex(shardIdOf(s))), decodeFrom: subsetsFor(k, m) })
    }
  }
  const large: unknown[] = []
  for (const [k, m, length] of LARGE) {
    const shards = await encodeShards(vectorBlock(length), k, m)
    const size = shardPayloadSize(length, k)
    large.push({ k, m, blockLength: length, payloadSize: size, chunkSize: chunkSize(libraryMatrix(k, m).w, k, size), ids: shards.map(s => hex(shardIdOf(s))), decodeFrom: subsetsFor(k, m).slice(0, k > 4 ? 2 : 1) })
  }
  const valid = (await encodeShards(vectorBlock(9), 4, 2))[0]
  return {
    about: 'docs/erasure.md (shard format v1, @ronomon/reed-solomon 6.0.0). Shards and ids in hex; shard = version || k || m || index || u32be block length || payload; id = BLAKE2b-256(shard). decodeFrom: subsets of shard indices that must rebuild the block. invalid: shards parseShardHeader must refuse, with the reason of erasure.md section 7.',
    blockRule: { label: BLOCK_LABEL, rule: 'block(L) = first L bytes of BLAKE2b-512(label || u32be(L) || u32be(0)) || BLAKE2b-512(label || u32be(L) || u32be(1)) || ...' },
    matrices,
    cases,
    large,
    invalid: invalidShards(valid)
  }
}

test('payload size, constants and limits (erasure.md §2, §3)', () => {
  assert.equal(SHARD_VERSION, 1)
  assert.equal(SHARD_HEADER_BYTES, 8)
  assert.equal(DEFAULT_K, 4)
  assert.equal(DEFAULT_M, 2)
  assert.equal(MAX_K, 24)
  assert.equal(MAX_M, 6)
  assert.ok(rs.MAX_K >= MAX_K && rs.MAX_M >= MAX_M)
  assert.equal(MAX_BLOCK_BYTES, MAX_STORED_BLOCK, 'the largest encrypted block the block store keeps')
  const table: Array<[number, number, number]> = [[1, 4, 8], [9, 4, 8], [32, 4, 8], [33, 4, 16], [4137, 4, 1040], [4 * 1024 * 1024, 4, 1024 * 1024], [4 * 1024 * 1024 + 46, 4, 1048592], [1, 1, 8], [7, 1, 8], [9, 1, 16], [1000, 24, 48], [MAX_BLOCK_BYTES, 1, 67108912]]
  for (const [l, k, s] of table) assert.equal(shardPayloadSize(l, k), s, `L=${l} k=${k}`)
  for (const [l, k, s] of table) assert.equal(decodeBufferBytes(l, k), k * s)
  assert.throws(() => shardPayloadSize(0, 4), coded('ERASURE_INVALID', /block length 0 is out of range/))
  assert.throws(() => shardPayloadSize(10, 25), coded('ERASURE_INVALID', /k=25/))
})

test('the spec\'s parameter table matches the library: w and the ones of every bit matrix (144 codes)', () => {
  const params = specParameters()
  assert.equal(params.size, 144)
  for (let k = 1; k <= MAX_K; k++) {
    for (let m = 1; m <= MAX_M; m++) {
      const row = params.get(`${k}+${m}`)
      assert.ok(row !== undefined, `${k}+${m} in the table`)
      const lib = libraryMatrix(k, m)
      assert.equal(lib.w, row.w, `${k}+${m}: w`)
      assert.equal(lib.ones, row.b, `${k}+${m}: ones of the bit matrix`)
      assert.ok(lib.rows[0].every(v => v === 1), `${k}+${m}: parity 0 is the XOR`)
    }
  }
})

test('4+2: every subset of at least 4 shards rebuilds the block; shards are header || payload', async () => {
  const crypto = await loadCrypto()
  const rand = prng(42)
  for (const length of [1, 7, 8, 9, 1000, 4137, 65_543, 1 + Math.floor(rand() * 300_000)]) {
    const block = bytesOf(rand, length)
    const shards = await encodeShards(block)
    assert.equal(shards.length, 6)
    const size = shardPayloadSize(length, 4)
    const padded = Buffer.concat([block, Buffer.alloc(4 * size - length)])
    for (const [i, s] of shards.entries()) {
      assert.equal(s.length, SHARD_HEADER_BYTES + size)
      assert.deepEqual([...s.subarray(0, 4)], [1, 4, 2, i])
      assert.equal(s.readUInt32BE(4), length)
      assert.deepEqual(parseShardHeader(s, 'x'), { version: 1, k: 4, m: 2, index: i, blockLength: length, payloadSize: size })
      if (i < 4) assert.ok(s.subarray(8).equals(padded.subarray(i * size, (i + 1) * size)), `data payload ${i}`)
      assert.deepEqual(shardId(crypto, s), new Uint8Array(shardIdOf(s)), 'shardId = net shardIdOf')
    }
    const xor = Buffer.alloc(size)
    for (let i = 0; i < 4; i++) for (let j = 0; j < size; j++) xor[j] ^= shards[i][8 + j]
    assert.ok(xor.equals(shards[4].subarray(8)), 'parity 0 is the XOR of the data payloads')
    let subsets = 0
    for (let mask = 0; mask < 64; mask++) {
      const keep = [0, 1, 2, 3, 4, 5].filter(i => (mask & (1 << i)) !== 0)
      if (keep.length < 4) continue
      const got = await decodeShards(only(shards, keep), 4, 2, length)
      assert.ok(Buffer.from(got).equals(block), `L=${length} from ${keep.join(',')}`)
      subsets++
    }
    assert.equal(subsets, 22)
  }
})

test('random codes, sizes and losses round trip (seeded)', async () => {
  const rand = prng(7)
  const pool = new BufferPool(8 * 1024 * 1024)
  for (let run = 0; run < RANDOM_RUNS; run++) {
    const k = 1 + Math.floor(rand() * MAX_K)
    const m = 1 + Math.floor(rand() * MAX_M)
    const length = 1 + Math.floor(rand() ** 3 * 400_000)
    const block = bytesOf(rand, length)
    const shards = await encodeShards(block, k, m, { scratch: pool })
    const lose = Math.floor(rand() * (m + 1))
    const order = Array.from({ length: k + m }, (_, i) => i).sort(() => rand() - 0.5)
    const keep = order.slice(lose)
    const got = await decodeShards(only(shards, keep), k, m, length, undefined, { scratch: pool })
    assert.ok(Buffer.from(got).equals(block), `run ${run}: ${k}+${m} L=${length} without ${order.slice(0, lose).join(',')}`)
  }
})

if (WRITE) {
  test('write docs/vectors/erasure-v1.json (DUSTBOX_WRITE_VECTORS=1)', async () => {
    const text = JSON.stringify(await buildVectors(), null, 1) + '\n'
    assert.ok(text.length < 200_000, `${text.length} bytes`)
    await fsp.writeFile(FILE, text)
  })
} else {
  test('golden vectors: shards, ids, matrices and decodes match docs/vectors/erasure-v1.json', async () => {
    const want = JSON.parse(await fsp.readFile(FILE, 'utf8'))
    const got = JSON.parse(JSON.stringify(await buildVectors()))
    for (const key of Object.keys(want)) assert.deepEqual(got[key], want[key], key)
    assert.deepEqual(Object.keys(got), Object.keys(want))
    for (const c of want.cases) {
      const shards = (c.shards as string[]).map(h => Buffer.from(h, 'hex'))
      for (const subset of c.decodeFrom as number[][]) {
        const block = await decodeShards(only(shards, subset), c.k, c.m, c.blockLength)
        assert.ok(Buffer.from(block).equals(vectorBlock(c.blockLength)), `${c.k}+${c.m} L=${c.blockLength} from ${subset.join(',')}`)
      }
    }
    for (const c of want.large) {
      const block = vectorBlock(c.blockLength)
      const shards = await encodeShards(block, c.k, c.m)
      for (const subset of c.decodeFrom as number[][]) {
        assert.ok(Buffer.from(await decodeShards(only(shards, subset), c.k, c.m, c.blockLength)).equals(block))
      }
    }
  })
}

test('golden vectors: the independent Python reimplementation agrees (skipped without python3)', t => {
  const probe = spawnSync('python3', ['-c', 'import hashlib'], { encoding: 'utf8' })
  if (probe.status !== 0) { t.skip('python3 is not available'); return }
  const r = spawnSync('python3', [CHECKER], { encoding: 'utf8', timeout: 180_000 })
  assert.equal(r.status, 0, r.stdout + r.stderr)
  t.diagnostic(r.stdout.trim().split('\n').at(-1) ?? '')
})

test('hostile shard headers are refused with SHARD_INVALID naming the shard and what is wrong', async () => {
  const want = WRITE ? null : JSON.parse(await fsp.readFile(FILE, 'utf8'))
  const valid = (await encodeShards(vectorBlock(9), 4, 2))[0]
  const list = want?.invalid ?? invalidShards(valid)
  assert.ok(list.length >= 15)
  for (const { shard, reason } of list as Array<{ shard: string, reason: string }>) {
    assert.throws(() => parseShardHeader(Buffer.from(shard, 'hex'), 'shard 0 from peer Alice'), coded('SHARD_INVALID', new RegExp(`^SHARD_INVALID: shard 0 from peer Alice: ${REASON_TEXT[reason].source}`)), reason)
  }
  // Random header bytes: either a valid header or SHARD_INVALID, never anything else.
  const rand = prng(99)
  let accepted = 0
  for (let i = 0; i < 20_000; i++) {
    const b = Buffer.from(valid)
    const n = 1 + Math.floor(rand() * 3)
    for (let j = 0; j < n; j++) b[Math.floor(rand() * 8)] = Math.floor(rand() * 256)
    const cut = rand() < 0.1 ? b.subarray(0, Math.floor(rand() * b.length)) : b
    try {
      const h = parseShardHeader(cut, 'fuzz')
      assert.equal(cut.length - 8, shardPayloadSize(h.blockLength, h.k))
      accepted++
    } catch (err) {
      coded('SHARD_INVALID', /^SHARD_INVALID: fuzz: /)(err)
    }
  }
  assert.ok(accepted > 0)
})

test('decode refuses a shard whose header disagrees with its slot, code or block length', async () => {
  const block = vectorBlock(1000)
  const a = await encodeShards(block, 4, 2)
  const other = await encodeShards(vectorBlock(1001), 4, 2)
  const wide = await encodeShards(block, 4, 3)
  const opts = { label: 'block 3fa2' }
  await assert.rejects(decodeShards([a[1], a[0], a[2], a[3], null, null], 4, 2, 1000, undefined, opts), coded('SHARD_INVALID', /^SHARD_INVALID: block 3fa2 shard 0: header says index 1, not 0$/))
  await assert.rejects(decodeShards([a[0], other[1], a[2], a[3], null, null], 4, 2, 1000), coded('SHARD_INVALID', /block shard 1: header says block length 1001, not 1000/))
  await assert.rejects(decodeShards([a[0], a[1], a[2], wide[3], null, null], 4, 2, 1000), coded('SHARD_INVALID', /shard 3: header says m=3, not 2/))
  await assert.rejects(decodeShards([a[0], a[1], a[2], a[3], null, null], 4, 2, 999), coded('SHARD_INVALID', /shard 0: payload of 256 bytes, but a block of 999 bytes|header says block length 1000, not 999/))
  const truncated = a[5].subarray(0, a[5].length - 8)
  await assert.rejects(decodeShards([a[0], a[1], null, a[3], null, truncated], 4, 2, 1000), coded('SHARD_INVALID', /shard 5: payload of 248 bytes, but a block of 1000 bytes in 4 data shards has 256-byte payloads/))
})

test('fewer than k shards: SHARDS_TOO_FEW says how many are present and needed', async () => {
  const shards = await encodeShards(vectorBlock(5000), 4, 2)
  await assert.rejects(decodeShards(only(shards, [0, 2, 5]), 4, 2, 5000), coded('SHARDS_TOO_FEW', /^SHARDS_TOO_FEW: block: 3 of its 6 shards present \(0, 2, 5\), 4 needed$/))
  await assert.rejects(decodeShards([null, null, null, null, null, null], 4, 2, 5000, undefined, { label: 'block 9e01' }), coded('SHARDS_TOO_FEW', /block 9e01: 0 of its 6 shards present \(none\), 4 needed/))
})

test('bad arguments: ERASURE_INVALID', async () => {
  const block = vectorBlock(100)
  await assert.rejects(encodeShards(block, 0, 2), coded('ERASURE_INVALID', /k=0 data shards is out of range 1\.\.24/))
  await assert.rejects(encodeShards(block, 25, 2), coded('ERASURE_INVALID', /k=25/))
  await assert.rejects(encodeShards(block, 4, 7), coded('ERASURE_INVALID', /m=7 parity shards is out of range 1\.\.6/))
  await assert.rejects(encodeShards(block, 4.5, 2), coded('ERASURE_INVALID', /k=4\.5/))
  await assert.rejects(encodeShards(new Uint8Array(0), 4, 2), coded('ERASURE_INVALID', /block length 0 is out of range 1\.\.67108910/))
  const shards = await encodeShards(block, 4, 2)
  await assert.rejects(decodeShards(shards.slice(0, 5), 4, 2, 100), coded('ERASURE_INVALID', /5 shard slots given, a 4\+2 code has 6/))
  await assert.rejects(decodeShards(shards, 4, 2, 100, new Uint8Array(99)), coded('ERASURE_INVALID', /output buffer of 99 bytes is smaller than the 100-byte block/))
  await assert.rejects(decodeShards(shards, 4, 2, MAX_BLOCK_BYTES + 1), coded('ERASURE_INVALID', /block length 67108911 is out of range/))
})

test('a corrupt payload: a wrong block (the caller\'s block id check catches it), or BLOCK_CORRUPT in the padding', async () => {
  const block = vectorBlock(1001)
  const shards = await encodeShards(block, 4, 2)
  const bad = Buffer.from(shards[4])
  bad[8 + 10] ^= 1
  const got = await decodeShards([shards[0], null, shards[2], shards[3], bad, shards[5]], 4, 2, 1001)
  assert.ok(!Buffer.from(got).equals(block), 'a flipped parity bit gives a different block')
  assert.notEqual(hex(createHash('blake2b512').update(got).digest()), hex(createHash('blake2b512').update(block).digest()))
  // S = 256: shard 3's payload holds bytes 768..1024 of the padded block, 1001..1024 being padding.
  const pad = Buffer.from(shards[3])
  pad[pad.length - 1] = 7
  await assert.rejects(decodeShards([shards[0], shards[1], shards[2], pad, null, null], 4, 2, 1001), coded('BLOCK_CORRUPT', /^BLOCK_CORRUPT: block: byte 22 of the zero padding after the block is 7: a shard is corrupt$/))
  // A garbage parity payload spoils the rebuilt padding too (not every corruption does).
  const parityBad = Buffer.concat([shards[5].subarray(0, 8), bytesOf(prng(5), shards[5].length - 8)])
  await assert.rejects(decodeShards([shards[0], shards[1], null, null, shards[4], parityBad], 4, 2, 1001), coded('BLOCK_CORRUPT'))
})

test('output buffers: rebuilt in place with decodeBufferBytes(), through scratch when smaller', async () => {
  const length = 10_007
  const block = vectorBlock(length)
  const shards = await encodeShards(block, 4, 2)
  const missing = only(shards, [1, 2, 4, 5])
  const big = new Uint8Array(decodeBufferBytes(length, 4) + 5)
  const r1 = await decodeShards(missing, 4, 2, length, big)
  assert.equal(r1.buffer, big.buffer)
  assert.equal(r1.byteOffset, big.byteOffset)
  assert.equal(r1.byteLength, length)
  assert.ok(Buffer.from(r1).equals(block))
  const exact = new Uint8Array(length)
  const r2 = await decodeShards(missing, 4, 2, length, exact)
  assert.equal(r2.buffer, exact.buffer)
  assert.ok(Buffer.from(exact).equals(block))
  const all = new Uint8Array(length + 3).subarray(2)
  const r3 = await decodeShards(only(shards, [0, 1, 2, 3]), 4, 2, length, all)
  assert.equal(r3.byteOffset, 2)
  assert.ok(Buffer.from(r3).equals(block))
  // The encoder copies the block: changing it afterwards changes no shard.
  const mine = Buffer.from(block)
  const s = await encodeShards(mine, 4, 2)
  mine.fill(0)
  assert.ok(s.every((x, i) => x.equals(shards[i])))
})

test('concurrent calls share contexts and a small scratch pool safely', async () => {
  const rand = prng(3)
  const pool = new BufferPool(1024 * 1024)
  const jobs = Array.from({ length: 48 }, async (_, i) => {
    const k = [4, 10, 1, 24][i % 4]
    const m = [2, 4, 1, 6][i % 4]
    const block = bytesOf(rand, 1 + Math.floor(rand() * 200_000))
    const shards = await encodeShards(block, k, m, { scratch: pool })
    const keep = Array.from({ length: k + m }, (_, j) => j).slice(m)
    const got = await decodeShards(only(shards, keep), k, m, block.length, undefined, { scratch: pool })
    assert.ok(Buffer.from(got).equals(block), `job ${i}`)
  })
  await Promise.all(jobs)
})
