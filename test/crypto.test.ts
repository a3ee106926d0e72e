// Both crypto backends (sodium-native, libsodium-wrappers) must give byte-identical results.

import test from 'node:test'
import assert from 'node:assert/strict'
import { loadNative, loadWasm, loadCrypto } from '../stubs/crypto.js'
import { prng } from './helpers/fixtures.js'

test('sodium-native and libsodium-wrappers agree byte for byte', async () => {
  const n = await loadNative()
  const w = await loadWasm()
  assert.equal(n.name, 'sodium-native')
  assert.equal(w.name, 'libsodium-wrappers')
  const key = prng('key', 32)
  for (const size of [0, 1, 1000, 1 << 20]) {
    const data = prng('data' + size, size)
    assert.deepEqual(Buffer.from(n.hash(data)), Buffer.from(w.hash(data)))
    assert.deepEqual(Buffer.from(n.hash(data, key)), Buffer.from(w.hash(data, key)))
    assert.deepEqual(Buffer.from(n.hash(data, key, 64)), Buffer.from(w.hash(data, key, 64)))
    const hn = n.hasher(key); const hw = w.hasher(key)
    for (let i = 0; i < size; i += 77777) { hn.update(data.subarray(i, i + 77777)); hw.update(data.subarray(i, i + 77777)) }
    const dn = hn.digest()
    assert.deepEqual(Buffer.from(dn), Buffer.from(hw.digest()))
    assert.deepEqual(Buffer.from(dn), Buffer.from(n.hash(data, key)), 'streaming equals one-shot')
    const nonce = prng('nonce', 24)
    const ad = Buffer.from([1])
    const cn = n.seal(data, ad, nonce, key)
    assert.deepEqual(Buffer.from(cn), Buffer.from(w.seal(data, ad, nonce, key)))
    assert.deepEqual(Buffer.from(w.open(cn, ad, nonce, key)!), data)
    assert.deepEqual(Buffer.from(n.open(cn, ad, nonce, key)!), data)
    const bad = Buffer.from(cn); bad[bad.length - 1] ^= 1
    assert.equal(n.open(bad, ad, nonce, key), null)
    assert.equal(w.open(bad, ad, nonce, key), null)
  }
  const seed = prng('seed', 32)
  const kn = n.signKeypair(seed); const kw = w.signKeypair(seed)
  assert.deepEqual(Buffer.from(kn.publicKey), Buffer.from(kw.publicKey))
  assert.deepEqual(Buffer.from(kn.secretKey), Buffer.from(kw.secretKey))
  const msg = Buffer.from('dustbox')
  const sig = n.sign(msg, kn.secretKey)
  assert.deepEqual(Buffer.from(sig), Buffer.from(w.sign(msg, kw.secretKey)))
  assert.equal(w.verify(sig, msg, kn.publicKey), true)
  assert.equal(n.verify(sig, Buffer.from('dustbux'), kn.publicKey), false)
  assert.equal(n.open(new Uint8Array(3), null, prng('n', 24), key), null, 'short ciphertext is refused, not thrown')
})

test('loadCrypto prefers the native backend', async () => {
  const c = await loadCrypto()
  assert.equal(c.name, process.env.DUSTBOX_CRYPTO === 'wasm' ? 'libsodium-wrappers' : 'sodium-native')
})
