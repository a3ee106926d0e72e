// Crypto backend on sodium-native (libsodium compiled natively, prebuilt inside the npm package).

import { createRequire } from 'node:module'
import type { Crypto, Hasher } from './crypto.js'
import { TAG_BYTES, PUBLIC_KEY_BYTES, SECRET_KEY_BYTES, SIGNATURE_BYTES, HASH_BYTES } from './crypto.js'

type Sodium = typeof import('sodium-native')

export async function createNativeCrypto (): Promise<Crypto> {
  const require = createRequire(import.meta.url)
  const s: Sodium = require('sodium-native')

  class NativeHasher implements Hasher {
    private state: Uint8Array | null = new Uint8Array(s.crypto_generichash_STATEBYTES)
    constructor (key: Uint8Array | undefined, private readonly outLen: number) {
      s.crypto_generichash_init(this.state!, key ?? null, outLen)
    }

    update (data: Uint8Array): this {
      if (this.state === null) throw new Error('hasher already finished')
      s.crypto_generichash_update(this.state, data)
      return this
    }

    digest (): Uint8Array {
      if (this.state === null) throw new Error('hasher already finished')
      const out = new Uint8Array(this.outLen)
      s.crypto_generichash_final(this.state, out)
      this.state = null
      return out
    }
  }

  return {
    name: 'sodium-native',
    hash (data, key, outLen = HASH_BYTES) {
      const out = new Uint8Array(outLen)
      if (key !== undefined) s.crypto_generichash(out, data, key)
      else s.crypto_generichash(out, data)
      return out
    },
    hasher (key, outLen = HASH_BYTES) { return new NativeHasher(key, outLen) },
    seal (message, ad, nonce, key, out = new Uint8Array(message.byteLength + TAG_BYTES)) {
      if (out.byteLength !== message.byteLength + TAG_BYTES) throw new RangeError('seal: output must be message length + 16 bytes')
      s.crypto_aead_xchacha20poly1305_ietf_encrypt(out, message, ad, null, nonce, key)
      return out
    },
    open (ciphertext, ad, nonce, key, out) {
      if (ciphertext.byteLength < TAG_BYTES) return null
      const plain = out ?? new Uint8Array(ciphertext.byteLength - TAG_BYTES)
      if (plain.byteLength !== ciphertext.byteLength - TAG_BYTES) throw new RangeError('open: output must be ciphertext length - 16 bytes')
      try {
        s.crypto_aead_xchacha20poly1305_ietf_decrypt(plain, null, ciphertext, ad, nonce, key)
      } catch {
        return null
      }
      return plain
    },
    signKeypair (seed) {
      const publicKey = new Uint8Array(PUBLIC_KEY_BYTES)
      const secretKey = new Uint8Array(SECRET_KEY_BYTES)
      s.crypto_sign_seed_keypair(publicKey, secretKey, seed)
      return { publicKey, secretKey }
    },
    sign (message, secretKey) {
      const sig = new Uint8Array(SIGNATURE_BYTES)
      s.crypto_sign_detached(sig, message, secretKey)
      return sig
    },
    verify (signature, message, publicKey) {
      if (signature.byteLength !== SIGNATURE_BYTES || publicKey.byteLength !== PUBLIC_KEY_BYTES) return false
      return s.crypto_sign_verify_detached(signature, message, publicKey)
    },
    randomBytes (n) {
      const out = new Uint8Array(n)
      s.randombytes_buf(out)
      return out
    }
  }
}
