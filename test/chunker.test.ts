// FastCDC chunker: bounds, determinism, streaming = in-memory, and the dedupe property after an
// insertion at the start of a 64 MiB file.

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { chunkLengths, chunkFile, findCut, topMask, DEFAULT_CHUNKER, CHUNK_MIN, CHUNK_MAX, type ChunkerParams } from '../stubs/chunker.js'
import { GEAR } from '../stubs/gear.js'
import { prng, textLike, tempDir, sha256 } from './helpers/fixtures.js'

test('chunks respect min and max and cover the input exactly', () => {
  const data = prng('bounds', 40 * 1024 * 1024)
  const lens = chunkLengths(data)
  assert.equal(lens.reduce((a, b) => a + b, 0), data.length)
  for (const n of lens.slice(0, -1)) {
    assert.ok(n >= CHUNK_MIN && n <= CHUNK_MAX, `chunk of ${n}`)
  }
  const avg = data.length / lens.length
  assert.ok(avg > 512 * 1024 && avg < 2 * 1024 * 1024, `average ${avg}`)
})

test('zeros and tiny inputs: max-size cuts and a short tail', () => {
  assert.deepEqual(chunkLengths(new Uint8Array(0)), [])
  assert.deepEqual(chunkLengths(new Uint8Array(10)), [10])
  assert.deepEqual(chunkLengths(new Uint8Array(CHUNK_MIN)), [CHUNK_MIN])
  const z = new Uint8Array(CHUNK_MAX * 2 + 5)
  const lens = chunkLengths(z)
  assert.equal(lens.reduce((a, b) => a + b, 0), z.length)
  assert.ok(lens.every(n => n <= CHUNK_MAX))
  assert.equal(findCut(z, 0, 100), 100)
})

test('inserting one byte at the start of a 64 MiB file reuses at least 90% of its blocks', () => {
  for (const kind of ['random', 'text']) {
    const base = kind === 'random' ? prng('reuse', 64 * 1024 * 1024) : textLike('reuse', 64 * 1024 * 1024)
    const edited = Buffer.concat([Buffer.from([0x42]), base])
    const hashes = (data: Buffer): string[] => {
      const out: string[] = []
      let p = 0
      for (const n of chunkLengths(data)) { out.push(sha256(data.subarray(p, p + n))); p += n }
      return out
    }
    const before = new Set(hashes(base))
    const after = hashes(edited)
    const reused = after.filter(h => before.has(h)).length
    assert.ok(reused / after.length >= 0.9, `${kind}: ${reused}/${after.length} blocks reused`)
  }
})

test('streaming chunking of a file equals in-memory chunking, with all bytes seen once in order', async t => {
  const dir = await tempDir(t)
  const data = Buffer.concat([prng('stream', 9 * 1024 * 1024), textLike('stream', 7 * 1024 * 1024 + 3)])
  const path = join(dir, 'f.bin')
  await fsp.writeFile(path, data)
  const fh = await fsp.open(path, 'r')
  const seen: Buffer[] = []
  const lens: number[] = []
  const chunks: Buffer[] = []
  try {
    for await (const c of chunkFile(fh, { onData: b => seen.push(Buffer.from(b)) })) { lens.push(c.byteLength); chunks.push(Buffer.from(c)) }
  } finally { await fh.close() }
  assert.deepEqual(lens, chunkLengths(data))
  assert.ok(Buffer.concat(chunks).equals(data))
  assert.ok(Buffer.concat(seen).equals(data))
  // A size hint that is too small (the file grew) or too large changes nothing.
  for (const sizeHint of [0, 1000, data.length, data.length * 3]) {
    const again: number[] = []
    const fh2 = await fsp.open(path, 'r')
    try { for await (const c of chunkFile(fh2, { sizeHint })) again.push(c.byteLength) } finally { await fh2.close() }
    assert.deepEqual(again, lens, `sizeHint ${sizeHint}`)
  }
})

test('small parameters work the same way', () => {
  const p = { min: 2048, avg: 8192, max: 32768 }
  const data = prng('small', 1 << 20)
  const lens = chunkLengths(data, p)
  assert.equal(lens.reduce((a, b) => a + b, 0), data.length)
  assert.ok(lens.slice(0, -1).every(n => n >= p.min && n <= p.max))
  assert.notDeepEqual(lens, chunkLengths(data, DEFAULT_CHUNKER))
})

/** The cut rule exactly as docs/stub-format.md §1.4 writes it, one byte per step. */
function referenceCut (src: Uint8Array, start: number, end: number, p: ChunkerParams): number {
  let n = end - start
  if (n <= p.min) return n
  if (n > p.max) n = p.max
  const b = Math.log2(p.avg)
  const normal = Math.min(p.avg, n)
  let h = 0
  let i = start + p.min
  for (; i < start + normal; i++) {
    h = ((h << 1) + GEAR[src[i]]) | 0
    if ((h & topMask(b + 2)) === 0) return i - start + 1
  }
  for (; i < start + n; i++) {
    h = ((h << 1) + GEAR[src[i]]) | 0
    if ((h & topMask(b - 2)) === 0) return i - start + 1
  }
  return n
}

test('the unrolled cut loop equals the one-byte rule of the spec at every offset and end', () => {
  const data = Buffer.concat([prng('unroll', 600000), textLike('unroll', 200000), new Uint8Array(70000)])
  for (const p of [{ min: 64, avg: 256, max: 1024 }, { min: 1000, avg: 4096, max: 16387 }, { min: 4096, avg: 16384, max: 65536 }]) {
    let cuts = 0
    for (let start = 0; start < data.length - 10; start += 997) {
      for (const end of [data.length, start + p.max, start + p.max + 1, start + p.min + 1, start + p.avg + 2, start + p.avg + 3]) {
        if (end > data.length || end <= start) continue
        assert.equal(findCut(data, start, end, p), referenceCut(data, start, end, p), `start ${start} end ${end} params ${JSON.stringify(p)}`)
        cuts++
      }
    }
    assert.ok(cuts > 1000)
  }
})
