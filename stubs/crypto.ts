// The one small crypto interface of dustbox. Two backends give byte-identical results: sodium-native
// (native libsodium, fast) when it loads, libsodium-wrappers (the same libsodium compiled to WASM)
// otherwise. Everything else in the project calls only this interface.

import { StubError, StubCodes } from './errors.js'

export const HASH_BYTES = 32
export const KEY_BYTES = 32
export const NONCE_BYTES = 24
export const TAG_BYTES = 16
export const PUBLIC_KEY_BYTES = 32
export const SECRET_KEY_BYTES = 64
export const SIGNATURE_BYTES = 64

export interface Hasher {
  update (data: Uint8Array): this
  /** Finish and return the digest; the hasher cannot be used afterwards. */
  digest (): Uint8Array
}

export interface Crypto {
  readonly name: 'sodium-native' | 'libsodium-wrappers'
  /** BLAKE2b with an output of `outLen` bytes (default 32), keyed when `key` is given. */
  hash (data: Uint8Array, key?: Uint8Array, outLen?: number): Uint8Array
  /** Streaming BLAKE2b, same output as hash() over the concatenated input. */
  hasher (key?: Uint8Array, outLen?: number): Hasher
  /**
   * XChaCha20-Poly1305-IETF; returns ciphertext || 16-byte tag, written into `out` when given
   * (exactly message length + 16 bytes, not overlapping the message).
   */
  seal (message: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array, out?: Uint8Array): Uint8Array
  /**
   * Inverse of seal; returns null when the tag does not verify. The plaintext is written into `out`
   * when given (exactly ciphertext length - 16 bytes, not overlapping the ciphertext).
   */
  open (ciphertext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array, out?: Uint8Array): Uint8Array | null
  signKeypair (seed: Uint8Array): { publicKey: Uint8Array, secretKey: Uint8Array }
  sign (message: Uint8Array, secretKey: Uint8Array): Uint8Array
  verify (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean
  randomBytes (n: number): Uint8Array
}

let loaded: Promise<Crypto> | null = null

/**
 * The process-wide crypto backend: sodium-native when it loads, else libsodium-wrappers.
 * DUSTBOX_CRYPTO=wasm forces the WASM backend (tests and benchmarks compare both).
 */
export function loadCrypto (): Promise<Crypto> {
  if (loaded === null) {
    loaded = (async () => {
      if (process.env.DUSTBOX_CRYPTO !== 'wasm') {
        try { return await loadNative() } catch {}
      }
      return await loadWasm()
    })()
  }
  return loaded
}

export async function loadNative (): Promise<Crypto> {
  const { createNativeCrypto } = await import('./crypto-native.js')
  return await createNativeCrypto()
}

export async function loadWasm (): Promise<Crypto> {
  try {
    const { createWasmCrypto } = await import('./crypto-wasm.js')
    return await createWasmCrypto()
  } catch (err) {
    throw new StubError(StubCodes.CRYPTO_UNAVAILABLE, `neither sodium-native nor libsodium-wrappers could be loaded: ${(err as Error).message}`)
  }
}

export function toHex (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

const HEX_RE = /^[0-9a-f]*$/

/** Strict lowercase-hex decoder: returns null unless `s` is exactly `bytes` bytes of lowercase hex. */
export function fromHex (s: string, bytes: number): Uint8Array | null {
  if (s.length !== bytes * 2 || !HEX_RE.test(s)) return null
  return new Uint8Array(Buffer.from(s, 'hex'))
}

/** Constant-time comparison of two equal-length byte arrays (false if lengths differ). */
export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  let d = 0
  for (let i = 0; i < a.byteLength; i++) d |= a[i] ^ b[i]
  return d === 0
}
