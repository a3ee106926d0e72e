// The benchmark corpus: the shape of /work/shared/anchors/make-corpus.sh, generated in Node (no
// bash, openssl or python). big = 2 AES-128-CTR keystream files + 2 seeded text-like files of
// 256 MiB x SCALE; small = round(20,000 x SCALE) files of 1..64 KiB in small/dNN/sM (221 dirs at
// SCALE 1), about half text-like. It ports the same generators, so the bytes are those of
// make-corpus.sh as well. Streaming (memory flat); cached in BENCH_DIR/corpus-<scale> with a marker.

import { createCipheriv, createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'

export type SetName = 'big' | 'small'

export const BIG_FILE_BYTES = 256 * 1024 * 1024
export const SMALL_FILES = 20_000
const SMALL_MIN = 1024
const SMALL_MAX = 64 * 1024
/** Write granularity (and the text generator's piece size, as in make-corpus.sh). */
const PIECE = 8 << 20
const MARKER = 'corpus.json'
const GENERATOR = 'dustbox-bench-corpus/1 (port of anchors/make-corpus.sh)'

export interface SetInfo { readonly files: number, readonly bytes: number }

export interface Corpus {
  readonly root: string
  readonly scale: number
  readonly bigFileBytes: number
  readonly sets: Readonly<Record<SetName, SetInfo>>
  /** True when an existing corpus was reused. */
  readonly reused: boolean
  readonly genSeconds: number
}

/** Same rounding as make-corpus.sh: int(256 MiB x scale) rounded down to 4 KiB, at least 4 KiB. */
export function bigFileBytes (scale: number): number {
  return Math.max(4096, Math.floor(Math.trunc(BIG_FILE_BYTES * scale) / 4096) * 4096)
}

/** Same rounding as make-corpus.sh (Python round(): halves to even). */
export function smallFileCount (scale: number): number {
  const x = SMALL_FILES * scale
  const f = Math.floor(x)
  const r = x - f > 0.5 || (x - f === 0.5 && f % 2 === 1) ? f + 1 : f
  return Math.max(1, r)
}

/** The corpus for `scale` under `benchDir`, generated unless a complete one is there already. */
export async function ensureCorpus (scale: number, benchDir: string, log: (s: string) => void): Promise<Corpus> {
  const root = join(benchDir, `corpus-${scale}`)
  try {
    const m = JSON.parse(await fsp.readFile(join(root, MARKER), 'utf8'))
    if (m.generator === GENERATOR && m.scale === scale) {
      return { root, scale, bigFileBytes: m.big_file_size, sets: { big: { files: m.big_files, bytes: m.big_bytes }, small: { files: m.small_files, bytes: m.small_bytes } }, reused: true, genSeconds: m.gen_seconds }
    }
  } catch {}
  const tmp = `${root}.tmp-${process.pid}`
  await fsp.rm(root, { recursive: true, force: true })
  await fsp.rm(tmp, { recursive: true, force: true })
  const bigBytes = bigFileBytes(scale)
  const smallCount = smallFileCount(scale)
  log(`generating corpus (scale ${scale}: 4 x ${bigBytes} B big, ${smallCount} small files) in ${root}`)
  const t0 = performance.now()
  try {
    await fsp.mkdir(join(tmp, 'big'), { recursive: true })
    await fsp.mkdir(join(tmp, 'small'), { recursive: true })
    const [, , , , small] = await Promise.all([
      writeKeystreamFile(join(tmp, 'big', 'incomp-0.bin'), bigBytes, anchorKey(1)),
      writeKeystreamFile(join(tmp, 'big', 'incomp-1.bin'), bigBytes, anchorKey(2)),
      writeTextFile(join(tmp, 'big', 'text-0.txt'), 'bigtext0', bigBytes),
      writeTextFile(join(tmp, 'big', 'text-1.txt'), 'bigtext1', bigBytes),
      writeSmallSet(join(tmp, 'small'), smallCount)
    ])
    const genSeconds = (performance.now() - t0) / 1000
    const sets = { big: { files: 4, bytes: 4 * bigBytes }, small }
    const marker = { generator: GENERATOR, scale, big_file_size: bigBytes, big_files: 4, big_bytes: sets.big.bytes, small_files: small.files, small_bytes: small.bytes, gen_seconds: genSeconds }
    await fsp.writeFile(join(tmp, MARKER), JSON.stringify(marker, null, 2) + '\n')
    await fsp.rename(tmp, root)
    log(`corpus ready in ${genSeconds.toFixed(1)} s`)
    return { root, scale, bigFileBytes: bigBytes, sets, reused: false, genSeconds }
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true })
    throw err
  }
}

/** make-corpus.sh's per-file AES key: 000102030405060708090a0b0c0d || n as 2 bytes. */
export function anchorKey (n: number): Buffer {
  return Buffer.from('000102030405060708090a0b0c0d' + n.toString(16).padStart(4, '0'), 'hex')
}

/**
 * Write `size` bytes of AES-128-CTR keystream (zero IV) to `path`: incompressible, no repeated
 * blocks. Returns the sha256 of what was written.
 */
export async function writeKeystreamFile (path: string, size: number, key: Buffer): Promise<string> {
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(Math.min(PIECE, size))
  const sha = createHash('sha256')
  const fh = await fsp.open(path, 'w')
  try {
    for (let left = size; left > 0;) {
      const piece = cipher.update(zeros.subarray(0, Math.min(left, zeros.byteLength)))
      sha.update(piece)
      await writeAll(fh, piece)
      left -= piece.byteLength
    }
  } finally {
    await fh.close()
  }
  return sha.digest('hex')
}

async function writeAll (fh: fsp.FileHandle, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.byteLength;) off += (await fh.write(data, off, data.byteLength - off)).bytesWritten
}

// ---- text-like generator (make-corpus.sh's seeded generator, ported) ----

const M64 = (1n << 64n) - 1n

class SplitMix {
  private s: bigint
  constructor (seed: bigint) { this.s = seed & M64 }
  next (): bigint {
    this.s = (this.s + 0x9E3779B97F4A7C15n) & M64
    let z = this.s
    z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & M64
    z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & M64
    return z ^ (z >> 31n)
  }

  below (n: number): number { return Number(this.next() % BigInt(n)) }
}

interface Phrases { bytes: Uint8Array, off: Uint32Array }
let phrases: Phrases | null = null

/** 65,536 phrases of 1..3 Zipf-chosen pseudo-words from an 8,192-word vocabulary, each + a separator. */
function phraseTable (): Phrases {
  if (phrases !== null) return phrases
  const rng = new SplitMix(20240601n)
  const cons = 'bcdfghjklmnprstvwyz'
  const vows = 'aeiou'
  const vocab: string[] = []
  const seen = new Set<string>()
  while (vocab.length < 8192) {
    let w = ''
    for (let k = 1 + rng.below(4); k > 0; k--) {
      w += cons[rng.below(cons.length)]
      w += vows[rng.below(vows.length)]
    }
    if (rng.below(3) === 0) w += cons[rng.below(cons.length)]
    if (!seen.has(w)) { seen.add(w); vocab.push(w) }
  }
  const cum = new Float64Array(vocab.length)
  let acc = 0
  for (let r = 0; r < vocab.length; r++) { acc += 1 / (r + 1); cum[r] = acc }
  const zipfWord = (): string => {
    const x = (Number(rng.next()) / 2 ** 64) * acc
    let lo = 0
    let hi = cum.length
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (cum[mid] < x) lo = mid + 1; else hi = mid }
    return vocab[Math.min(lo, vocab.length - 1)]
  }
  const seps = [' ', ' ', ' ', ' ', ', ', '. ', '.\n', '\n', ' - ', '; ']
  const list: string[] = []
  for (let i = 0; i < 65536; i++) {
    const words: string[] = []
    for (let n = 1 + rng.below(3); n > 0; n--) words.push(zipfWord())
    list.push(words.join(' ') + seps[rng.below(seps.length)])
  }
  const bytes = Buffer.from(list.join(''), 'latin1')
  const off = new Uint32Array(list.length + 1)
  for (let i = 0; i < list.length; i++) off[i + 1] = off[i] + list[i].length
  phrases = { bytes, off }
  return phrases
}

/** Fill out[0, size) with text for `tag` (make-corpus.sh's text_bytes(tag, size)). */
function textInto (out: Uint8Array, tag: string, size: number): void {
  const { bytes, off } = phraseTable()
  let have = 0
  for (let blk = 0; have < size; blk++) {
    const n = Math.min(65536, Math.floor((size - have) / 10) + 16)
    const idx = createHash('shake256', { outputLength: 2 * n }).update(`${tag}/${blk}`).digest()
    for (let k = 0; k < 2 * n && have < size; k += 2) {
      const p = idx[k] | (idx[k + 1] << 8)
      const end = Math.min(off[p + 1], off[p] + size - have)
      for (let j = off[p]; j < end; j++) out[have++] = bytes[j]
    }
  }
}

async function writeTextFile (path: string, tag: string, size: number): Promise<void> {
  const buf = new Uint8Array(Math.min(PIECE, size))
  const fh = await fsp.open(path, 'w')
  try {
    for (let left = size, blk = 0; left > 0; blk++) {
      const n = Math.min(left, PIECE)
      textInto(buf, `${tag}#${blk}`, n)
      await writeAll(fh, buf.subarray(0, n))
      left -= n
      // let the other generators run between pieces
      await new Promise(resolve => setImmediate(resolve))
    }
  } finally {
    await fh.close()
  }
}

async function writeSmallSet (dir: string, count: number): Promise<SetInfo> {
  const rng = new SplitMix(777n)
  const buf = new Uint8Array(SMALL_MAX)
  let bytes = 0
  let lastDir = ''
  for (let i = 0; i < count; i++) {
    const r = rng.next()
    const size = SMALL_MIN + Number(r % BigInt(SMALL_MAX - SMALL_MIN + 1))
    const isText = ((r >> 32n) & 1n) === 1n
    const d = join(dir, `d${String(Math.floor(i / 1000)).padStart(2, '0')}`, `s${Math.floor(i / 100) % 10}`)
    if (d !== lastDir) { await fsp.mkdir(d, { recursive: true }); lastDir = d }
    const num = String(i).padStart(5, '0')
    let data: Uint8Array
    if (isText) {
      textInto(buf, `small${i}`, size)
      data = buf.subarray(0, size)
    } else {
      data = createHash('shake256', { outputLength: size }).update(`smallbin${i}`).digest()
    }
    await fsp.writeFile(join(d, `f${num}.${isText ? 'txt' : 'bin'}`), data)
    bytes += size
  }
  return { files: count, bytes }
}
