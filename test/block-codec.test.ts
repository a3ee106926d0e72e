// Block codec: round trips (raw and LZ4), dedupe determinism, and refusal of every altered block.

import test from 'node:test'
import assert from 'node:assert/strict'
import { loadCrypto } from '../stubs/crypto.js'
import { deriveKeys } from '../stubs/keys.js'
import { encodeBlock, decodeBlock, BlockDecodeError, CODEC } from '../stubs/block-codec.js'
import { prng, textLike } from './helpers/fixtures.js'

test('blocks round-trip, compress when it helps, and are deterministic per owner', async () => {
  const crypto = await loadCrypto()
  const a = deriveKeys(crypto, prng('owner-a', 32))
  const b = deriveKeys(crypto, prng('owner-b', 32))
  const text = textLike('codec', 300000)
  const rnd = prng('codec', 300000)
  const et = encodeBlock(crypto, a, text)
  const er = encodeBlock(crypto, a, rnd)
  assert.equal(et.codec, CODEC.lz4)
  assert.equal(er.codec, CODEC.raw)
  assert.ok(et.block.byteLength < text.length)
  assert.deepEqual(Buffer.from(decodeBlock(crypto, a, et.ph, et.block, text.length)), text)
  assert.deepEqual(Buffer.from(decodeBlock(crypto, a, er.ph, er.block, rnd.length)), rnd)
  assert.deepEqual(Buffer.from(encodeBlock(crypto, a, text).id), Buffer.from(et.id), 'same owner, same block id')
  assert.notDeepEqual(Buffer.from(encodeBlock(crypto, b, text).id), Buffer.from(et.id), 'another owner, another id')
  assert.deepEqual(Buffer.from(crypto.hash(et.block)), Buffer.from(et.id))
  assert.ok(!Buffer.from(et.block).includes(text.subarray(0, 64)), 'no plaintext in the block')
  assert.throws(() => decodeBlock(crypto, b, et.ph, et.block, text.length), BlockDecodeError, 'another owner cannot read it')
})

test('any altered byte, truncation, wrong size or wrong hash is refused', async () => {
  const crypto = await loadCrypto()
  const k = deriveKeys(crypto, prng('owner', 32))
  const plain = textLike('alter', 5000)
  const e = encodeBlock(crypto, k, plain)
  for (let i = 0; i < e.block.byteLength; i += 97) {
    const bad = Uint8Array.from(e.block); bad[i] ^= 0x20
    assert.throws(() => decodeBlock(crypto, k, e.ph, bad, plain.length), BlockDecodeError)
  }
  assert.throws(() => decodeBlock(crypto, k, e.ph, e.block.subarray(0, 10), plain.length), BlockDecodeError)
  assert.throws(() => decodeBlock(crypto, k, e.ph, e.block.subarray(0, e.block.length - 1), plain.length), BlockDecodeError)
  assert.throws(() => decodeBlock(crypto, k, e.ph, e.block, plain.length + 1), /stub says/)
  assert.throws(() => decodeBlock(crypto, k, e.ph, e.block, 2 ** 40), /out of range/)
  const wrongPh = Uint8Array.from(e.ph); wrongPh[0] ^= 1
  assert.throws(() => decodeBlock(crypto, k, wrongPh, e.block, plain.length), BlockDecodeError)
})
