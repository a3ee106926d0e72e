// The owner's pointer: a BEP 44 mutable item signed with the owner's Ed25519 key (docs/discovery.md
// §4). Its value is sealed with K_pointer, so only the owner reads it; the DHT sees a signed,
// sequence-numbered blob of at most 996 bytes under target SHA-1(public key || salt).

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
