// The owner's pointer: a BEP 44 mutable item signed with the owner's Ed25519 key (docs/discovery.md
// §4). Its value is sealed with K_pointer, so only the owner reads it; the DHT sees a signed,
// sequence-numbered blob of at most 996 bytes under target SHA-1(public key || salt). The signed
// item travels whole (to the storage peers that keep and re-put it, docs/discovery.md §4.1) as one
// canonical bencoded dict {k, salt, seq, sig, v}: encodeSignedItem / decodeSignedItem.

import { createHash } from 'node:crypto'
import sodium from 'sodium-native'
import { DhtError, DhtCodes } from './errors.js'
import { LABELS } from './topics.js'

export const POINTER_SALT = Buffer.from(LABELS.pointerSalt, 'ascii')
export const POINTER_VERSION = 1
/** Largest `v` we put: its bencoding (`996:` + 996 bytes) is exactly BEP 44's 1000-byte limit. */
export const MAX_POINTER_V = 996
const NONCE_BYTES = 24
const TAG_BYTES = 16
export const POINTER_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES
export const MAX_POINTER_PAYLOAD = MAX_POINTER_V - POINTER_OVERHEAD

/** BEP 44 target of a mutable item: SHA-1(k || salt). */
export function pointerTarget (publicKey: Uint8Array, salt: Uint8Array = POINTER_SALT): Buffer {
  return createHash('sha1').update(publicKey).update(salt).digest()
}

function bstr (b: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${b.byteLength}:`, 'ascii'), b])
}

/** The bytes BEP 44 signs: the bencoded dict {salt, seq, v} without its `d` and `e`. */
export function signedBytes (seq: number, v: Uint8Array, salt: Uint8Array = POINTER_SALT): Buffer {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new DhtError(DhtCodes.POINTER_INVALID, `seq ${seq} is not a non-negative integer`)
  const parts: Buffer[] = []
  if (salt.byteLength > 0) parts.push(Buffer.from('4:salt', 'ascii'), bstr(salt))
  parts.push(Buffer.from(`3:seqi${seq}e1:v`, 'ascii'), bstr(v))
  return Buffer.concat(parts)
}

export function signItem (secretKey: Uint8Array, seq: number, v: Uint8Array, salt: Uint8Array = POINTER_SALT): Buffer {
  const sig = Buffer.alloc(64)
  sodium.crypto_sign_detached(sig, signedBytes(seq, v, salt), secretKey)
  return sig
}

export function verifyItem (publicKey: Uint8Array, sig: Uint8Array, seq: number, v: Uint8Array, salt: Uint8Array = POINTER_SALT): boolean {
  if (publicKey.byteLength !== 32 || sig.byteLength !== 64) return false
  return sodium.crypto_sign_verify_detached(sig, signedBytes(seq, v, salt), publicKey)
}

function aad (publicKey: Uint8Array, seq: number): Buffer {
  const b = Buffer.alloc(POINTER_SALT.length + 32 + 8)
  POINTER_SALT.copy(b)
  Buffer.from(publicKey).copy(b, POINTER_SALT.length)
  b.writeBigUInt64BE(BigInt(seq), POINTER_SALT.length + 32)
  return b
}

/** v = 0x01 || nonce (24) || XChaCha20-Poly1305(K_pointer, nonce, payload, ad = salt || pk || u64be(seq)). */
export function sealPointer (key: Uint8Array, publicKey: Uint8Array, seq: number, payload: Uint8Array, nonce?: Uint8Array): Buffer {
  if (key.byteLength !== 32) throw new DhtError(DhtCodes.CONFIG_INVALID, 'the pointer key must be 32 bytes')
  if (payload.byteLength > MAX_POINTER_PAYLOAD) throw new DhtError(DhtCodes.POINTER_TOO_LARGE, `a pointer holds at most ${MAX_POINTER_PAYLOAD} bytes, got ${payload.byteLength}`)
  const n = Buffer.alloc(NONCE_BYTES)
  if (nonce === undefined) sodium.randombytes_buf(n); else Buffer.from(nonce).copy(n)
  const v = Buffer.alloc(POINTER_OVERHEAD + payload.byteLength)
  v[0] = POINTER_VERSION
  n.copy(v, 1)
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(v.subarray(1 + NONCE_BYTES), payload, aad(publicKey, seq), null, n, key)
  return v
}

export function openPointer (key: Uint8Array, publicKey: Uint8Array, seq: number, v: Uint8Array): Buffer {
  if (v.byteLength < POINTER_OVERHEAD || v.byteLength > MAX_POINTER_V) throw new DhtError(DhtCodes.POINTER_INVALID, `pointer value is ${v.byteLength} bytes, not ${POINTER_OVERHEAD}..${MAX_POINTER_V}`)
  if (v[0] !== POINTER_VERSION) throw new DhtError(DhtCodes.POINTER_INVALID, `pointer format ${v[0]} is not ${POINTER_VERSION}`)
  const out = Buffer.alloc(v.byteLength - POINTER_OVERHEAD)
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, v.subarray(1 + NONCE_BYTES), aad(publicKey, seq), v.subarray(1, 1 + NONCE_BYTES), key)
  } catch {
    throw new DhtError(DhtCodes.POINTER_INVALID, `pointer seq ${seq} does not decrypt with this owner's pointer key`)
  }
  return out
}

/** A BEP 44 mutable item as signed by its owner: everything a `put` needs besides id and token. */
export interface SignedItem { readonly k: Buffer, readonly salt: Buffer, readonly seq: number, readonly sig: Buffer, readonly v: Buffer }

/** Largest seq written (BEP 44 allows int64; ours stay safe integers: at most 16 digits). */
const MAX_SEQ_DIGITS = 16
/** Largest salt BEP 44 allows. */
const MAX_SALT = 64

/**
 * The byte format of a signed item handed to storage peers (docs/discovery.md §4.1): the canonical
 * bencoding of the dict {k, salt, seq, sig, v}, keys in this (sorted) order, i.e. BEP 44's put
 * arguments without id, token and cas:
 * `d1:k32:<k>4:salt<n>:<salt>3:seqi<seq>e3:sig64:<sig>1:v<n>:<v>e`.
 */
export function encodeSignedItem (item: SignedItem): Buffer {
  if (item.k.byteLength !== 32 || item.sig.byteLength !== 64) throw new DhtError(DhtCodes.POINTER_INVALID, 'a signed item needs a 32-byte key and a 64-byte signature')
  if (!Number.isSafeInteger(item.seq) || item.seq < 0) throw new DhtError(DhtCodes.POINTER_INVALID, `seq ${item.seq} is not a non-negative integer`)
  if (item.v.byteLength > MAX_POINTER_V || item.salt.byteLength > MAX_SALT) throw new DhtError(DhtCodes.POINTER_TOO_LARGE, `a signed item holds at most ${MAX_POINTER_V} bytes of value and ${MAX_SALT} of salt`)
  return Buffer.concat([
    Buffer.from('d1:k', 'ascii'), bstr(item.k),
    Buffer.from('4:salt', 'ascii'), bstr(item.salt),
    Buffer.from(`3:seqi${item.seq}e3:sig`, 'ascii'), bstr(item.sig),
    Buffer.from('1:v', 'ascii'), bstr(item.v),
    Buffer.from('e', 'ascii')
  ])
}

/** The largest encoded signed item of a dustbox pointer: the longest seq, salt POINTER_SALT, a 996-byte v. */
export const MAX_SIGNED_ITEM_BYTES = 1 + 6 + 32 + 6 + `${POINTER_SALT.length}:`.length + POINTER_SALT.length +
  6 + MAX_SEQ_DIGITS + 1 + 8 + 64 + 3 + `${MAX_POINTER_V}:`.length + MAX_POINTER_V + 1

/**
 * Strictly decodes a signed item (encodeSignedItem's format and nothing else: the five keys in
 * order, canonical lengths and integer, no trailing bytes; the salt must be `salt`), and checks its
 * signature. Throws POINTER_INVALID (POINTER_TOO_LARGE for an oversized one) saying what is wrong;
 * never reads past `maxBytes`.
 */
export function decodeSignedItem (buf: Uint8Array, opts: { salt?: Uint8Array, maxBytes?: number } = {}): SignedItem {
  const max = opts.maxBytes ?? MAX_SIGNED_ITEM_BYTES
  if (!(buf instanceof Uint8Array)) throw new DhtError(DhtCodes.POINTER_INVALID, 'a signed item must be bytes')
  if (buf.byteLength > max) throw new DhtError(DhtCodes.POINTER_TOO_LARGE, `a signed item is ${buf.byteLength} bytes, more than the ${max} allowed`)
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  let pos = 0
  const bad = (what: string): DhtError => new DhtError(DhtCodes.POINTER_INVALID, `signed item: ${what} at byte ${pos}`)
  const lit = (s: string): void => {
    if (b.toString('latin1', pos, pos + s.length) !== s) throw bad(`expected ${JSON.stringify(s)}`)
    pos += s.length
  }
  const str = (maxLen: number): Buffer => {
    const start = pos
    while (pos < b.length && pos - start <= 4 && b[pos] >= 0x30 && b[pos] <= 0x39) pos++
    const digits = b.toString('latin1', start, pos)
    if (digits.length === 0 || digits.length > 4 || (digits.length > 1 && digits[0] === '0') || b[pos] !== 0x3a) throw bad('bad string length')
    const len = Number(digits)
    pos++
    if (len > maxLen) throw bad(`string of ${len} bytes, more than ${maxLen}`)
    if (pos + len > b.length) throw bad('string runs past the end')
    const out = Buffer.from(b.subarray(pos, pos + len))
    pos += len
    return out
  }
  lit('d1:k')
  const k = str(32)
  if (k.length !== 32) throw bad('k is not 32 bytes')
  lit('4:salt')
  const salt = str(MAX_SALT)
  lit('3:seqi')
  const start = pos
  while (pos < b.length && pos - start <= MAX_SEQ_DIGITS && b[pos] >= 0x30 && b[pos] <= 0x39) pos++
  const digits = b.toString('latin1', start, pos)
  if (digits.length === 0 || digits.length > MAX_SEQ_DIGITS || (digits.length > 1 && digits[0] === '0')) throw bad('seq is not a canonical non-negative integer')
  const seq = Number(digits)
  if (!Number.isSafeInteger(seq)) throw bad('seq is too large')
  lit('e3:sig')
  const sig = str(64)
  if (sig.length !== 64) throw bad('sig is not 64 bytes')
  lit('1:v')
  const v = str(MAX_POINTER_V)
  lit('e')
  if (pos !== b.length) throw bad('trailing bytes')
  const want = opts.salt ?? POINTER_SALT
  if (!salt.equals(want)) throw new DhtError(DhtCodes.POINTER_INVALID, 'signed item: the salt is not the dustbox pointer salt')
  if (!verifyItem(k, sig, seq, v, salt)) throw new DhtError(DhtCodes.POINTER_INVALID, `signed item: the signature over seq ${seq} does not verify under its key ${k.toString('hex').slice(0, 8)}`)
  return { k, salt, seq, sig, v }
}
