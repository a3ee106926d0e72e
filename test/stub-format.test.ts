// The `.f` stub codec: round trip, and STUB_INVALID / STUB_FOREIGN for every kind of bad stub
// (each field edited, truncated, empty, binary garbage, over the limit, random mutations).

import test from 'node:test'
import assert from 'node:assert/strict'
import { loadCrypto } from '../stubs/crypto.js'
import { deriveKeys } from '../stubs/keys.js'
import { encodeStub, decodeStub, MAX_STUB_BYTES, type Stub } from '../stubs/stub-format.js'
import { DEFAULT_CHUNKER } from '../stubs/chunker.js'
import { StubError } from '../stubs/errors.js'
import { prng, LONG } from './helpers/fixtures.js'

async function setup (): Promise<{ crypto: Awaited<ReturnType<typeof loadCrypto>>, keys: ReturnType<typeof deriveKeys>, stub: Stub, bytes: Buffer }> {
  const crypto = await loadCrypto()
  const keys = deriveKeys(crypto, prng('stub-owner', 32))
  const blocks = [0, 1, 2].map(i => ({ id: prng('id' + i, 32), ph: prng('ph' + i, 32), size: 1000 + i, stored: 1022 + i }))
  const stub: Stub = { owner: keys.ownerId, name: 'Grüße "quoted"\n\t — 数据.txt', size: 3003, mode: 0o640, mtimeNs: 1700000000123456789n, hash: prng('hash', 32), chunker: DEFAULT_CHUNKER, blocks }
  return { crypto, keys, stub, bytes: encodeStub(crypto, keys.stubMac, stub, 'x.f') }
}

function codeOf (fn: () => unknown): string {
  try { fn() } catch (err) { assert.ok(err instanceof StubError, String(err)); return err.code }
  return 'OK'
}

test('a stub round-trips and is readable text', async () => {
  const { crypto, keys, stub, bytes } = await setup()
  const d = decodeStub(crypto, bytes, { ownerId: keys.ownerId, macKey: keys.stubMac }, 'x.f')
  assert.deepEqual({ ...d, hash: Buffer.from(d.hash), blocks: d.blocks.map(b => ({ ...b, id: Buffer.from(b.id), ph: Buffer.from(b.ph) })) },
    { ...stub, hash: Buffer.from(stub.hash), blocks: stub.blocks.map(b => ({ ...b, id: Buffer.from(b.id), ph: Buffer.from(b.ph) })) })
  const text = bytes.toString('utf8')
  assert.match(text, /^dustbox-stub v1\n# dustbox stub: /)
  assert.match(text, /dustbox open/)
  assert.ok(text.split('\n').filter(l => l !== '').length === 16 + 0 && text.endsWith('\n'))
})

test('every edited field makes the stub STUB_INVALID, naming the stub', async () => {
  const { crypto, keys, bytes } = await setup()
  const opts = { ownerId: keys.ownerId, macKey: keys.stubMac }
  const lines = bytes.toString('utf8').split('\n')
  for (let i = 0; i < lines.length - 1; i++) {
    const edits = [lines[i] + ' ', lines[i].replace(/[0-9a-f]$/, c => c === '0' ? '1' : '0'), '', lines[i].toUpperCase()]
    for (const e of edits) {
      if (e === lines[i]) continue
      const copy = [...lines]; copy[i] = e
      const code = codeOf(() => decodeStub(crypto, Buffer.from(copy.join('\n')), opts, '/some/where/x.f'))
      if (i === 4 && e !== '' && /^owner ed25519:[0-9a-f]{64}$/.test(e)) assert.equal(code, 'STUB_FOREIGN')
      else assert.equal(code, 'STUB_INVALID', `line ${i} edited to ${JSON.stringify(e.slice(0, 30))}`)
    }
  }
  try { decodeStub(crypto, Buffer.from('dustbox-stub v1\n'), opts, '/some/where/x.f') } catch (err) { assert.match((err as Error).message, /^STUB_INVALID: "\/some\/where\/x\.f"/) }
})

test('truncated, empty, garbage, oversized and future-version stubs are refused', async () => {
  const { crypto, keys, bytes } = await setup()
  const opts = { ownerId: keys.ownerId, macKey: keys.stubMac }
  for (let n = 0; n < bytes.length; n += 7) assert.equal(codeOf(() => decodeStub(crypto, bytes.subarray(0, n), opts, 'x.f')), 'STUB_INVALID', `truncated at ${n}`)
  assert.equal(codeOf(() => decodeStub(crypto, new Uint8Array(0), opts, 'x.f')), 'STUB_INVALID')
  assert.equal(codeOf(() => decodeStub(crypto, prng('garbage', 5000), opts, 'x.f')), 'STUB_INVALID')
  assert.equal(codeOf(() => decodeStub(crypto, Buffer.concat([Buffer.from('dustbox-stub v1\n'), prng('g', 100)]), opts, 'x.f')), 'STUB_INVALID')
  assert.equal(codeOf(() => decodeStub(crypto, new Uint8Array(MAX_STUB_BYTES + 1), opts, 'x.f')), 'STUB_INVALID')
  assert.equal(codeOf(() => decodeStub(crypto, Buffer.from(bytes.toString().replace('dustbox-stub v1', 'dustbox-stub v2')), opts, 'x.f')), 'STUB_INVALID')
  assert.match(String((() => { try { decodeStub(crypto, Buffer.from(bytes.toString().replace('dustbox-stub v1', 'dustbox-stub v2')), opts, 'x.f') } catch (e) { return (e as Error).message } })()), /version 2 is not supported/)
  const manyBlocks = bytes.toString().replace(/^blocks 3$/m, 'blocks 999999999')
  assert.equal(codeOf(() => decodeStub(crypto, Buffer.from(manyBlocks), opts, 'x.f')), 'STUB_INVALID')
})

test("another identity's stub is STUB_FOREIGN", async () => {
  const { crypto, bytes } = await setup()
  const other = deriveKeys(crypto, prng('someone else', 32))
  assert.equal(codeOf(() => decodeStub(crypto, bytes, { ownerId: other.ownerId, macKey: other.stubMac }, 'x.f')), 'STUB_FOREIGN')
})

test('random mutations never crash the decoder and never authenticate', async () => {
  const { crypto, keys, bytes } = await setup()
  const opts = { ownerId: keys.ownerId, macKey: keys.stubMac }
  const trials = LONG ? 100000 : 5000
  const r = prng('mutate', trials * 8)
  for (let t = 0; t < trials; t++) {
    const m = Buffer.from(bytes)
    const flips = 1 + (r[t * 8] % 4)
    for (let f = 0; f < flips; f++) m[r.readUInt16LE(t * 8 + 1 + f) % m.length] = r[t * 8 + 5 + (f % 3)]
    if (m.equals(bytes)) continue
    const code = codeOf(() => decodeStub(crypto, m, opts, 'x.f'))
    assert.ok(code === 'STUB_INVALID' || code === 'STUB_FOREIGN', `trial ${t}: ${code}`)
  }
})
