// The subset of sodium-native's API that stubs/crypto-native.ts, net/ and setup/key-backup.ts use (the
// package ships no types).
declare module 'sodium-native' {
  export const crypto_generichash_STATEBYTES: number
  export const crypto_aead_xchacha20poly1305_ietf_ABYTES: number
  export const crypto_sign_PUBLICKEYBYTES: number
  export const crypto_sign_SECRETKEYBYTES: number
  export const crypto_sign_BYTES: number
  export function crypto_generichash(out: Uint8Array, input: Uint8Array, key?: Uint8Array): void
  export function crypto_generichash_init(state: Uint8Array, key: Uint8Array | null, outlen: number): void
  export function crypto_generichash_update(state: Uint8Array, input: Uint8Array): void
  export function crypto_generichash_final(state: Uint8Array, out: Uint8Array): void
  export function crypto_aead_xchacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number
  export function crypto_aead_xchacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number
  export function crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void
  export function crypto_sign_keypair(pk: Uint8Array, sk: Uint8Array): void
  export function crypto_sign_detached(sig: Uint8Array, m: Uint8Array, sk: Uint8Array): void
  export function crypto_sign_verify_detached(sig: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean
  export function randombytes_buf(buf: Uint8Array): void
  export function sodium_memzero(buf: Uint8Array): void
  export const crypto_aead_chacha20poly1305_ietf_ABYTES: number
  export function crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number
  export function crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number
  export function crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void
  export function crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void
  export function crypto_sign_ed25519_pk_to_curve25519(x25519pk: Uint8Array, ed25519pk: Uint8Array): void
  export function crypto_sign_ed25519_sk_to_curve25519(x25519sk: Uint8Array, ed25519sk: Uint8Array): void
  export const crypto_pwhash_ALG_ARGON2ID13: number
  export const crypto_pwhash_SALTBYTES: number
  export const crypto_secretbox_NONCEBYTES: number
  export const crypto_secretbox_MACBYTES: number
  export function crypto_pwhash_async(out: Uint8Array, passwd: Uint8Array, salt: Uint8Array, opslimit: number, memlimit: number, alg: number): Promise<void>
  export function crypto_secretbox_easy(c: Uint8Array, m: Uint8Array, n: Uint8Array, k: Uint8Array): void
  export function crypto_secretbox_open_easy(m: Uint8Array, c: Uint8Array, n: Uint8Array, k: Uint8Array): boolean
}
