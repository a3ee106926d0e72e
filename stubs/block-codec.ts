// Block codec v1 (docs/stub-format.md, "Encrypted block"): plaintext block -> optional LZ4 ->
// XChaCha20-Poly1305 with a key derived from the data key and the keyed plaintext hash, and a nonce
// that is a function of the exact bytes sealed (SIV-style), so a key never seals two different
// messages under one nonce, even if another LZ4 implementation compresses differently.
// Same owner + same plaintext = same encrypted block (dedupe); block id = BLAKE2b-256(encrypted block).
//
//   block  = version (1 byte, 0x01) || nonce (24 bytes) || AEAD(key, nonce, ad = version byte, inner)
//   inner  = codec (1 byte: 0 raw, 1 lz4) || plain length (u32 big-endian) || payload
//   nonce  = raw: BLAKE2b-512(K_data, label || ph)[32..56)   lz4: BLAKE2b-192(key = block key, inner)

import lz4 from 'lz4'
import type { Crypto } from './crypto.js'
import { HASH_BYTES, KEY_BYTES, NONCE_BYTES, TAG_BYTES, equalBytes } from './crypto.js'

export const BLOCK_VERSION = 1
export const BLOCK_KEY_LABEL = 'dustbox/v1/block'
export const CODEC = { raw: 0, lz4: 1 } as const
export const INNER_HEADER = 5
export const BLOCK_OVERHEAD = 1 + NONCE_BYTES + INNER_HEADER + TAG_BYTES
/** Hard bound on a block's plaintext, whatever a stub or peer claims. */
export const MAX_PLAIN_BLOCK = 64 * 1024 * 1024

export interface EncodedBlock {
  /** Keyed BLAKE2b-256 of the plaintext (K_plain-hash). */
  ph: Uint8Array
  /** BLAKE2b-256 of `block`: its address. */
  id: Uint8Array
  block: Uint8Array
  codec: number
}

export interface BlockKeys {
  data: Uint8Array
  plainHash: Uint8Array
}

/**
 * Per-block key and raw-codec nonce: BLAKE2b-512(key = K_data, "dustbox/v1/block" || ph) split 32 | 24.
 * (An LZ4 block's nonce is BLAKE2b-192 keyed with the block key over the inner message.)
 */
export function blockKeyNonce (crypto: Crypto, dataKey: Uint8Array, ph: Uint8Array): { key: Uint8Array, nonce: Uint8Array } {
  const msg = new Uint8Array(BLOCK_KEY_LABEL.length + HASH_BYTES)
  msg.set(Buffer.from(BLOCK_KEY_LABEL, 'ascii'), 0)
  msg.set(ph, BLOCK_KEY_LABEL.length)
  const out = crypto.hash(msg, dataKey, 64)
  return { key: out.subarray(0, KEY_BYTES), nonce: out.subarray(KEY_BYTES, KEY_BYTES + NONCE_BYTES) }
}

const AD = new Uint8Array([BLOCK_VERSION])

/**
 * A working buffer reused from block to block (one per worker), so that encoding or decoding a block
 * allocates only its result: the garbage of a 4 GiB stub is then its blocks, not three times that.
 */
export class Scratch {
  private buf = Buffer.alloc(0)

  /** A view of at least `n` writable bytes (exactly `n`), valid until the next call. */
  take (n: number): Buffer {
    if (this.buf.byteLength < n) this.buf = Buffer.allocUnsafeSlow(n)
    return this.buf.subarray(0, n)
  }
}

/**
 * Encode one plaintext block. The block is written into `out` when given (at least |plain| + 46
 * bytes; the result is a view of its first |block| bytes), else into a new buffer.
 */
export function encodeBlock (crypto: Crypto, keys: BlockKeys, plain: Uint8Array, scratch: Scratch = new Scratch(), out?: Uint8Array): EncodedBlock {
  const ph = crypto.hash(plain, keys.plainHash)
  const bound = lz4.encodeBound(plain.byteLength)
  const inner = scratch.take(INNER_HEADER + Math.max(bound, plain.byteLength))
  let codec: number = CODEC.raw
  let payloadLen = plain.byteLength
  if (plain.byteLength > 0) {
    const n = lz4.encodeBlock(asBuffer(plain), inner.subarray(INNER_HEADER))
    if (n > 0 && n < plain.byteLength) { codec = CODEC.lz4; payloadLen = n }
  }
  if (codec === CODEC.raw) inner.set(plain, INNER_HEADER)
  inner[0] = codec
  inner.writeUInt32BE(plain.byteLength, 1)
  const derived = blockKeyNonce(crypto, keys.data, ph)
  const message = inner.subarray(0, INNER_HEADER + payloadLen)
  const nonce = codec === CODEC.raw ? derived.nonce : crypto.hash(message, derived.key, NONCE_BYTES)
  const blockLength = 1 + NONCE_BYTES + message.byteLength + TAG_BYTES
  if (out !== undefined && out.byteLength < blockLength) throw new RangeError(`encodeBlock: output of ${out.byteLength} bytes cannot hold ${blockLength}`)
  const block = out === undefined ? new Uint8Array(blockLength) : out.subarray(0, blockLength)
  block[0] = BLOCK_VERSION
  block.set(nonce, 1)
  crypto.seal(message, AD, nonce, derived.key, block.subarray(1 + NONCE_BYTES))
  return { ph, id: crypto.hash(block), block, codec }
}

/** Why a block failed to decode; the caller names the file and block in its error. */
export class BlockDecodeError extends Error {}

/**
 * Decrypt and decompress an encrypted block and check it is exactly the plaintext that `ph` names.
 * Throws BlockDecodeError on any mismatch; never trusts a length it has not bounded. The plaintext
 * is written into `out` when given (exactly `expectedSize` bytes), else into a new buffer of its own
 * (never a view of `scratch` or of a shared pool), so either can be transferred to another thread.
 */
export function decodeBlock (crypto: Crypto, keys: BlockKeys, ph: Uint8Array, block: Uint8Array, expectedSize: number, scratch: Scratch = new Scratch(), out?: Uint8Array): Uint8Array {
  if (out !== undefined && out.byteLength !== expectedSize) throw new RangeError('decodeBlock: output must be exactly the expected size')
  if (block.byteLength < BLOCK_OVERHEAD) throw new BlockDecodeError(`too short (${block.byteLength} bytes)`)
  if (block[0] !== BLOCK_VERSION) throw new BlockDecodeError(`unknown block version ${block[0]}`)
  if (expectedSize < 0 || expectedSize > MAX_PLAIN_BLOCK) throw new BlockDecodeError(`size ${expectedSize} out of range`)
  if (block.byteLength > expectedSize + BLOCK_OVERHEAD) throw new BlockDecodeError(`${block.byteLength} bytes is too long for ${expectedSize} bytes of plaintext`)
  const { key } = blockKeyNonce(crypto, keys.data, ph)
  const sealed = block.subarray(1 + NONCE_BYTES)
  const inner = crypto.open(sealed, AD, block.subarray(1, 1 + NONCE_BYTES), key, scratch.take(sealed.byteLength - TAG_BYTES))
  if (inner === null) throw new BlockDecodeError('authentication failed (wrong key or altered bytes)')
  if (inner.byteLength < INNER_HEADER) throw new BlockDecodeError('inner header truncated')
  const codec = inner[0]
  const size = ((inner[1] << 24) >>> 0) + (inner[2] << 16) + (inner[3] << 8) + inner[4]
  if (size !== expectedSize) throw new BlockDecodeError(`holds ${size} bytes, stub says ${expectedSize}`)
  const payload = inner.subarray(INNER_HEADER)
  let plain: Uint8Array
  if (codec === CODEC.raw) {
    if (payload.byteLength !== size) throw new BlockDecodeError('raw payload length mismatch')
    plain = out ?? Buffer.allocUnsafeSlow(size)
    plain.set(payload)
  } else if (codec === CODEC.lz4) {
    plain = out ?? Buffer.allocUnsafeSlow(size)
    const n = size === 0 ? 0 : lz4.decodeBlock(asBuffer(payload), asBuffer(plain))
    if (n !== size) throw new BlockDecodeError('LZ4 payload malformed')
  } else {
    throw new BlockDecodeError(`unknown codec ${codec}`)
  }
  if (!equalBytes(crypto.hash(plain, keys.plainHash), ph)) throw new BlockDecodeError('plaintext hash mismatch')
  return plain
}

/** The lz4 binding wants Buffers; a Buffer view of the same bytes (no copy). */
function asBuffer (b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}
