// Noise_XX_25519_ChaChaPoly_BLAKE2b (Noise Protocol Framework rev. 34), the handshake of dustbox's
// secure channel (docs/protocol.md §3). Pure state machine, no I/O: handshake.ts moves its messages.
// The static keys are the X25519 forms of the nodes' Ed25519 identities (RFC 7748 birational map,
// libsodium's crypto_sign_ed25519_{pk,sk}_to_curve25519).

import sodium from 'sodium-native'
import { NetError, NetCodes } from './errors.js'

export const PROTOCOL_NAME = 'Noise_XX_25519_ChaChaPoly_BLAKE2b'
export const HASHLEN = 64
const BLOCKLEN = 128
export const DHLEN = 32
export const TAGLEN = 16
/** The largest counter we use; a channel closes before reaching it (Noise reserves 2^64-1). */
const MAX_NONCE = Number.MAX_SAFE_INTEGER

export interface X25519KeyPair {
  readonly publicKey: Buffer
  readonly secretKey: Buffer
}

export function blake2b512 (...parts: Uint8Array[]): Buffer {
  const state = Buffer.alloc(sodium.crypto_generichash_STATEBYTES)
  sodium.crypto_generichash_init(state, null, HASHLEN)
  for (const p of parts) sodium.crypto_generichash_update(state, p)
  const out = Buffer.alloc(HASHLEN)
  sodium.crypto_generichash_final(state, out)
  return out
}

/** HMAC (RFC 2104) over BLAKE2b-512, block length 128, as Noise §4.3 defines HMAC-HASH. */
export function hmac (key: Uint8Array, ...data: Uint8Array[]): Buffer {
  let k: Uint8Array = key
  if (k.byteLength > BLOCKLEN) k = blake2b512(k)
  const ipad = Buffer.alloc(BLOCKLEN, 0x36)
  const opad = Buffer.alloc(BLOCKLEN, 0x5c)
  for (let i = 0; i < k.byteLength; i++) {
    ipad[i] ^= k[i]
    opad[i] ^= k[i]
  }
  return blake2b512(opad, blake2b512(ipad, ...data))
}

/** Noise HKDF with two or three outputs, each HASHLEN bytes. */
export function hkdf (chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Buffer[] {
  const temp = hmac(chainingKey, ikm)
  const o1 = hmac(temp, Buffer.from([1]))
  const o2 = hmac(temp, o1, Buffer.from([2]))
  if (outputs === 2) return [o1, o2]
  return [o1, o2, hmac(temp, o2, Buffer.from([3]))]
}

export function x25519 (secretKey: Uint8Array, publicKey: Uint8Array): Buffer {
  const out = Buffer.alloc(DHLEN)
  try {
    sodium.crypto_scalarmult(out, secretKey, publicKey)
  } catch (err) {
    // libsodium refuses low-order points (all-zero result): a malicious or broken peer.
    throw new NetError(NetCodes.HANDSHAKE_FAILED, 'the peer sent an invalid X25519 public key', { cause: err })
  }
  return out
}

export function x25519KeyPair (secretKey?: Uint8Array): X25519KeyPair {
  const sk = Buffer.alloc(DHLEN)
  if (secretKey === undefined) sodium.randombytes_buf(sk)
  else sk.set(secretKey)
  const pk = Buffer.alloc(DHLEN)
  sodium.crypto_scalarmult_base(pk, sk)
  return { publicKey: pk, secretKey: sk }
}

/** The X25519 key pair of an Ed25519 identity (libsodium's 64-byte secret key seed || pk). */
export function x25519FromEd25519 (ed: { publicKey: Uint8Array, secretKey: Uint8Array }): X25519KeyPair {
  const pk = Buffer.alloc(DHLEN)
  const sk = Buffer.alloc(DHLEN)
  sodium.crypto_sign_ed25519_pk_to_curve25519(pk, ed.publicKey)
  sodium.crypto_sign_ed25519_sk_to_curve25519(sk, ed.secretKey)
  return { publicKey: pk, secretKey: sk }
}

/** X25519 form of an Ed25519 public key, or null if the key is not a valid Ed25519 point. */
export function x25519PublicFromEd25519 (edPublicKey: Uint8Array): Buffer | null {
  const pk = Buffer.alloc(DHLEN)
  try {
    sodium.crypto_sign_ed25519_pk_to_curve25519(pk, edPublicKey)
  } catch {
    return null
  }
  return pk
}

/** Noise CipherState with ChaChaPoly (IETF, 96-bit nonce = 32 zero bits || 64-bit little-endian n). */
export class CipherState {
  private key: Buffer | null = null
  private n = 0
  private readonly nonceBuf = Buffer.alloc(12)

  initializeKey (key: Uint8Array | null): void {
    this.key = key === null ? null : Buffer.from(key)
    this.n = 0
  }

  hasKey (): boolean {
    return this.key !== null
  }

  private nextNonce (): Buffer {
    if (this.n >= MAX_NONCE) throw new NetError(NetCodes.CLOSED, 'nonce space exhausted: the channel must be reopened')
    this.nonceBuf.writeUInt32LE(this.n >>> 0, 4)
    this.nonceBuf.writeUInt32LE(Math.floor(this.n / 0x100000000), 8)
    this.n++
    return this.nonceBuf
  }

  /** Encrypt plaintext into out (length plaintext + 16), or return plaintext if there is no key yet. */
  encryptWithAd (ad: Uint8Array | null, plaintext: Uint8Array, out?: Uint8Array): Uint8Array {
    if (this.key === null) return plaintext
    const c = out ?? Buffer.allocUnsafe(plaintext.byteLength + TAGLEN)
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(c, plaintext, ad, null, this.nextNonce(), this.key)
    return c
  }

  /** Decrypt; returns null if authentication fails (the nonce is still consumed only on success). */
  decryptWithAd (ad: Uint8Array | null, ciphertext: Uint8Array, out?: Uint8Array): Uint8Array | null {
    if (this.key === null) return ciphertext
    if (ciphertext.byteLength < TAGLEN) return null
    const m = out ?? Buffer.allocUnsafe(ciphertext.byteLength - TAGLEN)
    if (this.n >= MAX_NONCE) return null
    this.nonceBuf.writeUInt32LE(this.n >>> 0, 4)
    this.nonceBuf.writeUInt32LE(Math.floor(this.n / 0x100000000), 8)
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(m, null, ciphertext, ad, this.nonceBuf, this.key)
    } catch {
      return null
    }
    this.n++
    return m
  }
}

class SymmetricState {
  readonly cipher = new CipherState()
  ck: Buffer
  h: Buffer

  constructor (protocolName: string) {
    const name = Buffer.from(protocolName, 'ascii')
    this.h = name.byteLength <= HASHLEN ? Buffer.concat([name, Buffer.alloc(HASHLEN - name.byteLength)]) : blake2b512(name)
    this.ck = Buffer.from(this.h)
  }

  mixKey (ikm: Uint8Array): void {
    const [ck, tempK] = hkdf(this.ck, ikm, 2)
    this.ck = ck
    this.cipher.initializeKey(tempK.subarray(0, 32))
  }

  mixHash (data: Uint8Array): void {
    this.h = blake2b512(this.h, data)
  }

  encryptAndHash (plaintext: Uint8Array): Uint8Array {
    const c = this.cipher.encryptWithAd(this.h, plaintext)
    this.mixHash(c)
    return c
  }

  decryptAndHash (ciphertext: Uint8Array): Uint8Array | null {
    const p = this.cipher.decryptWithAd(this.h, ciphertext)
    if (p === null) return null
    this.mixHash(ciphertext)
    return Buffer.from(p)
  }

  split (): [CipherState, CipherState] {
    const [t1, t2] = hkdf(this.ck, Buffer.alloc(0), 2)
    const c1 = new CipherState()
    const c2 = new CipherState()
    c1.initializeKey(t1.subarray(0, 32))
    c2.initializeKey(t2.subarray(0, 32))
    return [c1, c2]
  }
}

export interface NoiseResult {
  /** Encrypts what this side sends. */
  readonly send: CipherState
  /** Decrypts what this side receives. */
  readonly recv: CipherState
  /** The handshake hash h: unique per session, binds both identities and both ephemerals. */
  readonly handshakeHash: Buffer
  /** The peer's static X25519 public key. */
  readonly remoteStatic: Buffer
}

/**
 * The XX pattern:  -> e  /  <- e, ee, s, es  /  -> s, se.
 * Message i (0, 1, 2) is written by the initiator when i is even, by the responder when odd.
 */
export class NoiseXX {
  readonly initiator: boolean
  private readonly ss: SymmetricState
  private readonly s: X25519KeyPair
  private readonly e: X25519KeyPair
  private re: Buffer | null = null
  private rs: Buffer | null = null
  private step = 0

  /** `ephemeral` is for golden vectors only: a fixed ephemeral key removes forward secrecy. */
  constructor (initiator: boolean, staticKey: X25519KeyPair, prologue: Uint8Array, ephemeral?: X25519KeyPair) {
    this.initiator = initiator
    this.s = staticKey
    this.e = ephemeral ?? x25519KeyPair()
    this.ss = new SymmetricState(PROTOCOL_NAME)
    this.ss.mixHash(prologue)
  }

  get done (): boolean {
    return this.step === 3
  }

  get remoteStatic (): Buffer | null {
    return this.rs
  }

  private expectTurn (writing: boolean): void {
    if (this.step > 2) throw new NetError(NetCodes.HANDSHAKE_FAILED, 'handshake already finished')
    const mine = (this.step % 2 === 0) === this.initiator
    if (mine !== writing) throw new NetError(NetCodes.HANDSHAKE_FAILED, `handshake message ${this.step + 1} is not ours to ${writing ? 'write' : 'read'}`)
  }

  writeMessage (payload: Uint8Array): Buffer {
    this.expectTurn(true)
    const parts: Uint8Array[] = []
    const ss = this.ss
    if (this.step === 0) {
      parts.push(this.e.publicKey)
      ss.mixHash(this.e.publicKey)
    } else if (this.step === 1) {
      parts.push(this.e.publicKey)
      ss.mixHash(this.e.publicKey)
      ss.mixKey(x25519(this.e.secretKey, this.re!))
      parts.push(ss.encryptAndHash(this.s.publicKey))
      ss.mixKey(x25519(this.s.secretKey, this.re!))
    } else {
      parts.push(ss.encryptAndHash(this.s.publicKey))
      ss.mixKey(x25519(this.s.secretKey, this.re!))
    }
    parts.push(ss.encryptAndHash(payload))
    this.step++
    return Buffer.concat(parts)
  }

  /** Read a message; returns its payload or throws HANDSHAKE_FAILED naming the step. */
  readMessage (message: Uint8Array): Buffer {
    this.expectTurn(false)
    const ss = this.ss
    const fail = (why: string): never => { throw new NetError(NetCodes.HANDSHAKE_FAILED, `handshake message ${this.step + 1}: ${why}`) }
    let off = 0
    const take = (n: number, what: string): Buffer => {
      if (message.byteLength - off < n) fail(`too short for ${what}`)
      const b = Buffer.from(message.subarray(off, off + n))
      off += n
      return b
    }
    const open = (n: number, what: string): Buffer => {
      const p = ss.decryptAndHash(take(n, what))
      if (p === null) fail(`${what} failed to authenticate (wrong keys, a replayed or altered message)`)
      return p as Buffer
    }
    if (this.step === 0) {
      this.re = take(DHLEN, 'the ephemeral key')
      ss.mixHash(this.re)
    } else if (this.step === 1) {
      this.re = take(DHLEN, 'the ephemeral key')
      ss.mixHash(this.re)
      ss.mixKey(x25519(this.e.secretKey, this.re))
      this.rs = open(DHLEN + TAGLEN, 'the static key')
      ss.mixKey(x25519(this.e.secretKey, this.rs))
    } else {
      this.rs = open(DHLEN + TAGLEN, 'the static key')
      ss.mixKey(x25519(this.e.secretKey, this.rs))
    }
    const rest = message.byteLength - off
    const payload = open(rest, 'the payload')
    this.step++
    return payload
  }

  /** After message 3: the transport ciphers (initiator sends with the first, responder with the second). */
  split (): NoiseResult {
    if (!this.done || this.rs === null) throw new NetError(NetCodes.HANDSHAKE_FAILED, 'split before the handshake finished')
    const [c1, c2] = this.ss.split()
    return {
      send: this.initiator ? c1 : c2,
      recv: this.initiator ? c2 : c1,
      handshakeHash: Buffer.from(this.ss.h),
      remoteStatic: this.rs
    }
  }
}
