// Erasure coding of encrypted blocks (docs/erasure.md): a block is cut into k data shards and m parity
// shards, any k of which give the block back. Shard = 8-byte header (version, k, m, index, block
// length) || payload; the parity payloads are the Reed-Solomon code of @ronomon/reed-solomon (native,
// in libuv's thread pool), whose exact construction erasure.md spells out. Headers are hostile input
// and checked here; a shard's bytes are not (a corrupt payload yields a wrong block, which the caller
// detects by the block id, BLAKE2b-256 of the block).

import { createRequire } from 'node:module'
import { BLOCK_OVERHEAD, MAX_PLAIN_BLOCK } from './block-codec.js'
import { BufferPool } from './buffer-pool.js'
import type { Crypto } from './crypto.js'
import { StubError, StubCodes } from './errors.js'

/** Shard format version (header byte 0). */
export const SHARD_VERSION = 1
export const SHARD_HEADER_BYTES = 8
export const DEFAULT_K = 4
export const DEFAULT_M = 2
/** Most data shards (the library's MAX_K, which also fixes the format: erasure.md §2). */
export const MAX_K = 24
/** Most parity shards (the library's MAX_M). */
export const MAX_M = 6
/** Payloads are whole multiples of this many bytes (the library's rule). */
export const PAYLOAD_ALIGN = 8
/** Largest block: the largest encrypted block (64 MiB of plaintext + the block overhead, 46 bytes). */
export const MAX_BLOCK_BYTES = MAX_PLAIN_BLOCK + BLOCK_OVERHEAD
/** Free scratch buffers the module-wide pool keeps between calls (options.scratch overrides the pool). */
export const SCRATCH_RETAIN_BYTES = 32 * 1024 * 1024

type ReedSolomon = typeof import('@ronomon/reed-solomon')
type Context = ReturnType<ReedSolomon['create']>
// The package's "main" is binding.node, which Node's ESM loader refuses: load it with require().
const rs: ReedSolomon = createRequire(import.meta.url)('@ronomon/reed-solomon')

if (rs.MAX_K < MAX_K || rs.MAX_M < MAX_M) {
  throw new Error(`@ronomon/reed-solomon allows k <= ${rs.MAX_K}, m <= ${rs.MAX_M}; dustbox needs ${MAX_K}, ${MAX_M}`)
}

export interface ShardHeader {
  readonly version: number
  readonly k: number
  readonly m: number
  /** 0..k-1 data, k..k+m-1 parity. */
  readonly index: number
  readonly blockLength: number
  /** Bytes after the header (shardPayloadSize(blockLength, k)). */
  readonly payloadSize: number
}

export interface ErasureOptions {
  /** Pool of the contiguous data and parity regions the library works on (default: one per thread). */
  readonly scratch?: BufferPool
  /** Names the block in error messages (e.g. its id), before "shard i". */
  readonly label?: string
}

const defaultScratch = new BufferPool(SCRATCH_RETAIN_BYTES)
const contexts = new Map<number, Context>()

function invalid (text: string): StubError {
  return new StubError(StubCodes.ERASURE_INVALID, text)
}

function checkParams (k: number, m: number): void {
  if (!(Number.isInteger(k) && k >= 1 && k <= MAX_K)) throw invalid(`k=${String(k)} data shards is out of range 1..${MAX_K}`)
  if (!(Number.isInteger(m) && m >= 1 && m <= MAX_M)) throw invalid(`m=${String(m)} parity shards is out of range 1..${MAX_M}`)
}

function checkLength (blockLength: number): void {
  if (!(Number.isInteger(blockLength) && blockLength >= 1 && blockLength <= MAX_BLOCK_BYTES)) {
    throw invalid(`block length ${String(blockLength)} is out of range 1..${MAX_BLOCK_BYTES}`)
  }
}

function contextOf (k: number, m: number): Context {
  const key = k * 64 + m
  let ctx = contexts.get(key)
  if (ctx === undefined) {
    ctx = rs.create(k, m)
    contexts.set(key, ctx)
  }
  return ctx
}

/** Bytes of each shard's payload: ceil(L / k) rounded up to a multiple of 8. */
export function shardPayloadSize (blockLength: number, k: number): number {
  checkLength(blockLength)
  if (!(Number.isInteger(k) && k >= 1 && k <= MAX_K)) throw invalid(`k=${String(k)} data shards is out of range 1..${MAX_K}`)
  return Math.ceil(Math.ceil(blockLength / k) / PAYLOAD_ALIGN) * PAYLOAD_ALIGN
}

/** Bytes an `out` buffer of decodeShards() needs for the block to be rebuilt in place: k * payload. */
export function decodeBufferBytes (blockLength: number, k: number): number {
  return k * shardPayloadSize(blockLength, k)
}

/** The shard id of the storage protocol: BLAKE2b-256 of the whole shard, header included. */
export function shardId (crypto: Crypto, shard: Uint8Array): Uint8Array {
  return crypto.hash(shard)
}

/** Checks a shard's header and length (hostile input); errors read `SHARD_INVALID: ${label}: what`. */
export function parseShardHeader (shard: Uint8Array, label: string): ShardHeader {
  const bad = (text: string): StubError => new StubError(StubCodes.SHARD_INVALID, `${label}: ${text}`)
  if (shard.byteLength < SHARD_HEADER_BYTES) throw bad(`${shard.byteLength} bytes is shorter than the ${SHARD_HEADER_BYTES}-byte shard header`)
  const version = shard[0]
  const k = shard[1]
  const m = shard[2]
  const index = shard[3]
  const blockLength = ((shard[4] << 24) | (shard[5] << 16) | (shard[6] << 8) | shard[7]) >>> 0
  if (version !== SHARD_VERSION) throw bad(`shard format version ${version} is not ${SHARD_VERSION}`)
  if (k < 1 || k > MAX_K) throw bad(`k=${k} data shards is out of range 1..${MAX_K}`)
  if (m < 1 || m > MAX_M) throw bad(`m=${m} parity shards is out of range 1..${MAX_M}`)
  if (index >= k + m) throw bad(`index ${index} is not below k+m=${k + m}`)
  if (blockLength < 1 || blockLength > MAX_BLOCK_BYTES) throw bad(`block length ${blockLength} is out of range 1..${MAX_BLOCK_BYTES}`)
  const payloadSize = shardPayloadSize(blockLength, k)
  if (shard.byteLength - SHARD_HEADER_BYTES !== payloadSize) {
    throw bad(`payload of ${shard.byteLength - SHARD_HEADER_BYTES} bytes, but a block of ${blockLength} bytes in ${k} data shards has ${payloadSize}-byte payloads`)
  }
  return { version, k, m, index, blockLength, payloadSize }
}

function writeHeader (shard: Buffer, k: number, m: number, index: number, blockLength: number): void {
  shard[0] = SHARD_VERSION
  shard[1] = k
  shard[2] = m
  shard[3] = index
  shard.writeUInt32BE(blockLength, 4)
}

/** A Buffer over the same memory (the library wants Buffers). */
function asBuffer (u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength)
}

/** One library call: computes `targets` from `sources` over data (k*S bytes) and parity (m*S bytes). */
async function code (k: number, m: number, sources: number, targets: number, data: Buffer, parity: Buffer, size: number): Promise<void> {
  const ctx = contextOf(k, m)
  await new Promise<void>((resolve, reject) => {
    try {
      rs.encode(ctx, sources, targets, data, 0, k * size, parity, 0, m * size, resolve)
    } catch (err) {
      reject(invalid(`reed-solomon refused k=${k} m=${m} sources=${sources.toString(2)} targets=${targets.toString(2)}: ${(err as Error).message}`))
    }
  })
}

/**
 * Cuts `block` (1..MAX_BLOCK_BYTES bytes) into k data and m parity shards, header included, in index
 * order. The block is copied first, so the caller may reuse it as soon as the promise settles.
 */
export async function encodeShards (block: Uint8Array, k: number = DEFAULT_K, m: number = DEFAULT_M, opts: ErasureOptions = {}): Promise<Buffer[]> {
  checkParams(k, m)
  const length = block.byteLength
  checkLength(length)
  const size = shardPayloadSize(length, k)
  const scratch = opts.scratch ?? defaultScratch
  const dataView = scratch.take(k * size)
  const parityView = scratch.take(m * size)
  const data = asBuffer(dataView)
  const parity = asBuffer(parityView)
  data.set(block, 0)
  data.fill(0, length)
  const parityDone = code(k, m, (1 << k) - 1, ((1 << m) - 1) << k, data, parity, size)
  try {
    // While the thread pool computes parity (it only reads `data`), assemble the data shards.
    const shards: Buffer[] = []
    for (let i = 0; i < k + m; i++) {
      if (i === k) await parityDone
      const shard = Buffer.allocUnsafeSlow(SHARD_HEADER_BYTES + size)
      writeHeader(shard, k, m, i, length)
      const from = i < k ? data : parity
      const at = (i < k ? i : i - k) * size
      from.copy(shard, SHARD_HEADER_BYTES, at, at + size)
      shards.push(shard)
    }
    return shards
  } finally {
    // The scratch goes back only once the library is done with it, whatever happened here.
    await parityDone.catch(() => {})
    scratch.give(dataView)
    scratch.give(parityView)
  }
}

/** Throws BLOCK_CORRUPT unless data[from, to) is all zero (the padding of the last data payloads). */
function checkPadding (data: Uint8Array, from: number, to: number, label: string): void {
  for (let i = from; i < to; i++) {
    if (data[i] !== 0) throw new StubError(StubCodes.BLOCK_CORRUPT, `${label}: byte ${i - from} of the zero padding after the block is ${data[i]}: a shard is corrupt`)
  }
}

/**
 * Rebuilds a block of `blockLength` bytes from at least k of its k+m shards: `shards[i]` is shard i
 * or null when missing. Every present shard's header must say (k, m, i, blockLength). Only missing
 * data shards are computed; with every data shard present the payloads are just copied. The result
 * is written into `out` when given (at least blockLength bytes; with decodeBufferBytes() bytes or
 * more it is rebuilt there in place, its bytes past blockLength then holding the zero padding) and
 * is a view of exactly blockLength bytes; `out` must not be used until the promise settles. The
 * caller checks the block id: a corrupt payload is not detected here (only non-zero padding is, as
 * BLOCK_CORRUPT).
 */
export async function decodeShards (shards: ReadonlyArray<Uint8Array | null | undefined>, k: number, m: number, blockLength: number, out?: Uint8Array, opts: ErasureOptions = {}): Promise<Uint8Array> {
  checkParams(k, m)
  checkLength(blockLength)
  const label = opts.label ?? 'block'
  if (shards.length !== k + m) throw invalid(`${label}: ${shards.length} shard slots given, a ${k}+${m} code has ${k + m}`)
  if (out !== undefined && out.byteLength < blockLength) throw invalid(`${label}: output buffer of ${out.byteLength} bytes is smaller than the ${blockLength}-byte block`)
  const size = shardPayloadSize(blockLength, k)
  const present: number[] = []
  for (let i = 0; i < k + m; i++) {
    const shard = shards[i]
    if (shard === null || shard === undefined) continue
    const h = parseShardHeader(shard, `${label} shard ${i}`)
    const wrong = [
      h.k !== k ? `k=${h.k}, not ${k}` : '',
      h.m !== m ? `m=${h.m}, not ${m}` : '',
      h.index !== i ? `index ${h.index}, not ${i}` : '',
      h.blockLength !== blockLength ? `block length ${h.blockLength}, not ${blockLength}` : ''
    ].filter(s => s !== '')
    if (wrong.length > 0) throw new StubError(StubCodes.SHARD_INVALID, `${label} shard ${i}: header says ${wrong.join(', ')}`)
    present.push(i)
  }
  if (present.length < k) {
    throw new StubError(StubCodes.SHARDS_TOO_FEW, `${label}: ${present.length} of its ${k + m} shards present (${present.join(', ') || 'none'}), ${k} needed`)
  }
  const payload = (i: number): Uint8Array => shards[i]!.subarray(SHARD_HEADER_BYTES)
  const missingData = Array.from({ length: k }, (_, i) => i).filter(i => shards[i] == null)

  if (missingData.length === 0) {
    const result = out ?? Buffer.allocUnsafeSlow(blockLength)
    for (let i = 0; i < k; i++) {
      const at = i * size
      const take = Math.max(0, Math.min(size, blockLength - at))
      const p = payload(i)
      if (take > 0) result.set(take === size ? p : p.subarray(0, take), at)
      checkPadding(p, take, size, label)
    }
    return result.subarray(0, blockLength)
  }

  const scratch = opts.scratch ?? defaultScratch
  const inPlace = out === undefined || out.byteLength >= k * size
  const dataView = out === undefined ? Buffer.allocUnsafeSlow(k * size) : inPlace ? out : scratch.take(k * size)
  const parityView = scratch.take(m * size)
  try {
    const data = asBuffer(dataView)
    const parity = asBuffer(parityView)
    let sources = 0
    for (let i = 0; i < k; i++) {
      if (shards[i] == null) continue
      data.set(payload(i), i * size)
      sources |= 1 << i
    }
    // One missing data shard with parity 0 present: the library XORs k shards and reads no other
    // parity. Otherwise every present parity shard is a source: copying one is cheaper than the
    // library recomputing it (it recomputes every parity shard that is not a source).
    const xorOnly = missingData.length === 1 && shards[k] != null
    for (let j = 0; j < m; j++) {
      if (shards[k + j] == null || (xorOnly && j > 0)) continue
      parity.set(payload(k + j), j * size)
      sources |= 1 << (k + j)
    }
    let targets = 0
    for (const i of missingData) targets |= 1 << i
    await code(k, m, sources, targets, data, parity, size)
    checkPadding(data, blockLength, k * size, label)
    if (!inPlace) out!.set(data.subarray(0, blockLength))
    return (inPlace ? dataView : out!).subarray(0, blockLength)
  } finally {
    if (!inPlace) scratch.give(dataView)
    scratch.give(parityView)
  }
}
