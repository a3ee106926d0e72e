// Crypto backend on libsodium-wrappers (libsodium compiled to WASM): the fallback when sodium-native
// cannot load. Byte-identical to crypto-native.ts (test/crypto.test.ts checks it).

import type { Crypto, Hasher } from './crypto.js'
import { HASH_BYTES } from './crypto.js'

export async function createWasmCrypto (): Promise<Crypto> {
  const mod = await import('libsodium-wrappers')
  const sodium = (mod as any).default ?? mod
  await sodium.ready

  class WasmHasher implements Hasher {
    private state: unknown = null
    private done = false
    constructor (key: Uint8Array | undefined, private readonly outLen: number) {
      this.state = sodium.crypto_generichash_init(key ?? null, outLen)
    }

    update (data: Uint8Array): this {
      if (this.done) throw new Error('hasher already finished')
      sodium.crypto_generichash_update(this.state, data)
      return this
    }

    digest (): Uint8Array {
      if (this.done) throw new Error('hasher already finished')
      this.done = true
      return sodium.crypto_generichash_final(this.state, this.outLen)
    }
  }

  return {
    name: 'libsodium-wrappers',
    hash (data, key, outLen = HASH_BYTES) {
      return sodium.crypto_generichash(outLen, data, key ?? null)
    },
    hasher (key, outLen = HASH_BYTES) { return new WasmHasher(key, outLen) },
    seal (message, ad, nonce, key, out) {
      const sealed: Uint8Array = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, null, nonce, key)
      return into(sealed, out, 'seal')
    },
    open (ciphertext, ad, nonce, key, out) {
      let plain: Uint8Array
      try {
        plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key)
      } catch {
        return null
      }
      return into(plain, out, 'open')
    },
    signKeypair (seed) {
      const kp = sodium.crypto_sign_seed_keypair(seed)
      return { publicKey: kp.publicKey, secretKey: kp.privateKey }
    },
    sign (message, secretKey) { return sodium.crypto_sign_detached(message, secretKey) },
    verify (signature, message, publicKey) {
      try { return sodium.crypto_sign_verify_detached(signature, message, publicKey) } catch { return false }
    },
    randomBytes (n) { return sodium.randombytes_buf(n) }
  }
}

/** The WASM API always allocates its result; copy it into the caller's buffer when one is given. */
function into (result: Uint8Array, out: Uint8Array | undefined, op: string): Uint8Array {
  if (out === undefined) return result
  if (out.byteLength !== result.byteLength) throw new RangeError(`${op}: output buffer has the wrong length`)
  out.set(result)
  return out
}
