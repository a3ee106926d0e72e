// Golden test vectors of the v1 formats (docs/vectors/v1.json, specified in docs/keys.md and
// docs/stub-format.md): every vector is recomputed with the real code under BOTH crypto backends
// (sodium-native and libsodium-wrappers) and must match the committed file byte for byte. The real
// stub / hydrate path is also run end to end (StubEngine, so the owner's keyed gear table) and must
// write exactly the vector stubs.
//
// The JSON is written only on request, from the native backend:
//   npx tsc -p . && DUSTBOX_WRITE_VECTORS=1 node test/run.js vectors
// Never regenerate it to make a failing test pass: a changed vector is a format change (a new version).
// docs/vectors/check_v1.py re-derives the vectors independently (Python hashlib + cryptography).
// (v1 was redefined before its first release: nonce in the block, SIV nonce for LZ4 blocks, keyed
// gear table, shell-quoted stub name in the comment. From the first release on, v1.json is frozen.)

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadNative, loadWasm, toHex, NONCE_BYTES, KEY_BYTES, type Crypto } from '../stubs/crypto.js'
import { deriveKey, deriveKeys, encodeSecretFile, decodeSecretFile, KDF_LABELS } from '../stubs/keys.js'
import { GEAR, gearTable } from '../stubs/gear.js'
import { chunkLengths, chunkFile, findCut, DEFAULT_CHUNKER, type ChunkerParams } from '../stubs/chunker.js'
import { encodeBlock, decodeBlock, blockKeyNonce, CODEC, BLOCK_OVERHEAD, BLOCK_VERSION, BLOCK_KEY_LABEL, INNER_HEADER } from '../stubs/block-codec.js'
import { encodeStub, decodeStub, type Stub, type StubBlock } from '../stubs/stub-format.js'
import { stubNameFor, targetNameFor } from '../stubs/names.js'
import { StubEngine } from '../stubs/engine.js'
import { StubError } from '../stubs/errors.js'
import { tempDir } from './helpers/fixtures.js'

const VECTORS_URL = new URL('../../docs/vectors/v1.json', import.meta.url)
const WRITE = process.env.DUSTBOX_WRITE_VECTORS === '1'

// ---- Inputs: formulas that need no library (documented in the JSON and docs/stub-format.md) ----

/**
 * xorshift32 byte stream: x = seed (u32, non-zero); repeat { x ^= x << 13; x ^= x >>> 17; x ^= x << 5 }
 * (all mod 2^32), each new x appended as 4 bytes little-endian; the stream is cut to n bytes.
 */
function xorshift32 (seed: number, n: number): Buffer {
  const out = Buffer.alloc(Math.ceil(n / 4) * 4)
  let x = seed >>> 0
  for (let i = 0; i < out.length; i += 4) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out.writeUInt32LE(x, i)
  }
  return out.subarray(0, n)
}

/** An ASCII string repeated, cut to n bytes. */
function repeatAscii (s: string, n: number): Buffer {
  return Buffer.from(s.repeat(Math.ceil(n / s.length)), 'ascii').subarray(0, n)
}

const ROOT = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
const SMALL: ChunkerParams = { min: 4096, avg: 16384, max: 65536 }
const PATTERN = 'dustbox test vector '

const INPUTS = {
  'xorshift32(seed, n)': 'x = seed (u32, non-zero); repeat { x ^= x << 13; x ^= x >>> 17; x ^= x << 5 } with all arithmetic mod 2^32 (>>> is a logical shift); append each new x as 4 bytes little-endian; cut the stream to n bytes. xorshift32(1, 8) = 2120040001060804 (hex).',
  'repeat(s, n)': 'the ASCII string s repeated and cut to n bytes.',
  'zeros(n)': 'n bytes of 0x00.',
  'concat(a, b)': 'the bytes of a followed by the bytes of b.'
}

interface InputSpec { formula: string, bytes: () => Buffer }

type GearKind = 'unkeyed' | 'keyed'

const CHUNK_INPUTS: Array<{ what: string, input: InputSpec, params: ChunkerParams }> = [
  { what: 'small params, 3 MiB pseudo-random', input: { formula: 'xorshift32(1, 3145728)', bytes: () => xorshift32(1, 3 * 1024 * 1024) }, params: SMALL },
  { what: 'small params, zeros', input: { formula: 'zeros(300000)', bytes: () => Buffer.alloc(300000) }, params: SMALL },
  { what: 'small params, text then pseudo-random', input: { formula: `concat(repeat("${PATTERN}", 100000), xorshift32(5, 200000))`, bytes: () => Buffer.concat([repeatAscii(PATTERN, 100000), xorshift32(5, 200000)]) }, params: SMALL },
  { what: 'default params, 12 MiB pseudo-random', input: { formula: 'xorshift32(2, 12582912)', bytes: () => xorshift32(2, 12 * 1024 * 1024) }, params: DEFAULT_CHUNKER }
]

/** Every input chunked with the unkeyed table (tools, tests) and with the vector owner's keyed table (what stubs use). */
const CHUNK_CASES: Array<{ name: string, gear: GearKind, input: InputSpec, params: ChunkerParams }> = (['unkeyed', 'keyed'] as const).flatMap(gear =>
  CHUNK_INPUTS.map(c => ({ name: `${gear} gear table, ${c.what}`, gear, input: c.input, params: c.params })))

const BLOCK_CASES: Array<{ name: string, input: InputSpec }> = [
  { name: 'raw codec (incompressible)', input: { formula: 'xorshift32(3, 100)', bytes: () => xorshift32(3, 100) } },
  { name: 'lz4 codec (compressible)', input: { formula: `repeat("${PATTERN}", 500)`, bytes: () => repeatAscii(PATTERN, 500) } },
  { name: 'one byte (raw: LZ4 never makes it smaller)', input: { formula: 'repeat("A", 1)', bytes: () => Buffer.from('A') } }
]

/** LZ4 length extension bytes for a length field n >= 15 (after the nibble 15). */
function lz4LengthBytes (n: number): number[] {
  const out: number[] = []
  let r = n - 15
  while (r >= 255) { out.push(255); r -= 255 }
  out.push(r)
  return out
}

/**
 * A hand-made LZ4 block of a periodic plaintext: `lit` literals, one match at distance `offset` up to
 * 5 bytes before the end, then those 5 bytes as literals. Valid LZ4, but not what dustbox's compressor
 * writes: it stands for another LZ4 implementation's output.
 */
function lz4LiteralsMatchLiterals (plain: Buffer, lit: number, offset: number): Buffer {
  const ml = plain.length - lit - 5
  assert.ok(lit >= offset && ml >= 4 && plain.subarray(offset).equals(plain.subarray(0, plain.length - offset)))
  const seq1 = [((Math.min(lit, 15) << 4) | Math.min(ml - 4, 15)), ...(lit >= 15 ? lz4LengthBytes(lit) : [])]
  const matchLen = ml - 4 >= 15 ? lz4LengthBytes(ml - 4) : []
  return Buffer.concat([Buffer.from(seq1), plain.subarray(0, lit), Buffer.from([offset & 0xff, offset >> 8, ...matchLen, 0x50]), plain.subarray(plain.length - 5)])
}

const ALT_LZ4 = { plaintext: BLOCK_CASES[1].input, literals: 40, offset: 40 }

const LONG_NAME_1 = 'a'.repeat(253)
const LONG_NAME_2 = 'a'.repeat(254)
const LONG_NAME_3 = 'a'.repeat(243) + '数'.repeat(4)

const NAME_CASES: Array<{ name: string, formula: string }> = [
  { name: 'report.pdf', formula: '"report.pdf"' },
  { name: 'Grüße 数据 🎉.txt', formula: '"Grüße 数据 🎉.txt"' },
  { name: LONG_NAME_1, formula: 'repeat("a", 253): 255 bytes with ".f", kept' },
  { name: LONG_NAME_2, formula: 'repeat("a", 254): shortened' },
  { name: LONG_NAME_3, formula: 'repeat("a", 243) + repeat("数", 4) (255 bytes): shortened, the cut does not split a character' }
]

const TARGET_CASES: Array<{ stubFileName: string, recordedName: string }> = [
  { stubFileName: 'report.pdf.f', recordedName: 'report.pdf' },
  { stubFileName: 'renamed.pdf.f', recordedName: 'report.pdf' },
  { stubFileName: stubNameFor(LONG_NAME_2), recordedName: LONG_NAME_2 },
  { stubFileName: 'short~name.f', recordedName: LONG_NAME_2 },
  { stubFileName: 'no-suffix', recordedName: 'report.pdf' }
]

interface FileCase { label: string, name: string, mode: number, mtimeNs: bigint, chunker: ChunkerParams, input: InputSpec }

const FILE_CASES: FileCase[] = [
  {
    label: 'four blocks (the first lz4, three raw), Unicode name with quotes, small chunker params',
    name: 'Grüße "Ω" 数据 🎉 it\'s.txt',
    mode: 0o640,
    mtimeNs: 1700000000250000000n,
    chunker: SMALL,
    input: { formula: `concat(repeat("${PATTERN}", 20000), xorshift32(4, 40000))`, bytes: () => Buffer.concat([repeatAscii(PATTERN, 20000), xorshift32(4, 40000)]) }
  },
  {
    label: 'empty file, default chunker params',
    name: 'empty.txt',
    mode: 0o600,
    mtimeNs: 1600000000000000000n,
    chunker: DEFAULT_CHUNKER,
    input: { formula: 'zeros(0)', bytes: () => Buffer.alloc(0) }
  },
  {
    label: 'one lz4 block, name with a tab, a newline, DEL, quotes and a backslash (the comment quotes it as $\'...\'), default chunker params',
    name: 'notes\t"v2"\nfinal \'draft\' \\ \x7f.txt',
    mode: 0o644,
    mtimeNs: 1650000000500000000n,
    chunker: DEFAULT_CHUNKER,
    input: { formula: `repeat("${PATTERN}", 3000)`, bytes: () => repeatAscii(PATTERN, 3000) }
  }
]

// ---- Computing the vectors with the real code ----

const hex = (b: Uint8Array): string => toHex(b)
const u32hex = (v: number): string => (v >>> 0).toString(16).padStart(8, '0')
const AD = new Uint8Array([BLOCK_VERSION])

function gearBytes (table: Int32Array): Buffer {
  const out = Buffer.alloc(1024)
  for (let i = 0; i < 256; i++) out.writeUInt32LE(table[i] >>> 0, i * 4)
  return out
}

function computeVectors (crypto: Crypto): Record<string, unknown> {
  const keys = deriveKeys(crypto, ROOT)
  const keyedGear = gearTable(crypto, keys.chunker)
  const tables: Record<GearKind, Int32Array> = { unkeyed: GEAR, keyed: keyedGear }
  const gearVector = (table: Int32Array): Record<string, unknown> => ({
    first8: Array.from(table.subarray(0, 8), v => u32hex(v)),
    last: u32hex(table[255]),
    tableBlake2b256: hex(crypto.hash(gearBytes(table)))
  })

  const blockKeys = { data: keys.data, plainHash: keys.plainHash }
  const blockVector = (name: string, input: InputSpec): Record<string, unknown> => {
    const plain = input.bytes()
    const e = encodeBlock(crypto, blockKeys, plain)
    const o = crypto.hash(Buffer.concat([Buffer.from(BLOCK_KEY_LABEL, 'ascii'), e.ph]), keys.data, 64)
    const { key, nonce: rawNonce } = blockKeyNonce(crypto, keys.data, e.ph)
    assert.equal(hex(key), hex(o.subarray(0, KEY_BYTES)))
    assert.equal(hex(rawNonce), hex(o.subarray(KEY_BYTES, KEY_BYTES + NONCE_BYTES)))
    assert.equal(e.block[0], BLOCK_VERSION)
    const nonce = e.block.subarray(1, 1 + NONCE_BYTES)
    const inner = crypto.open(e.block.subarray(1 + NONCE_BYTES), AD, nonce, key)
    assert.ok(inner !== null, `${name}: opens`)
    // The nonce written in the block is the documented function of the codec (keys.md §4).
    const expected = e.codec === CODEC.raw ? rawNonce : crypto.hash(inner, key, NONCE_BYTES)
    assert.equal(hex(nonce), hex(expected), `${name}: nonce rule`)
    assert.equal(e.block.byteLength, inner.byteLength - INNER_HEADER + BLOCK_OVERHEAD)
    return {
      name,
      plaintext: input.formula,
      plaintextHex: hex(plain),
      ph: hex(e.ph),
      blockKeyNonce: hex(o),
      key: hex(key),
      codec: e.codec === CODEC.lz4 ? 'lz4' : 'raw',
      nonceRule: e.codec === CODEC.lz4 ? 'lz4: BLAKE2b-192(key = key, inner)' : 'raw: blockKeyNonce[32..56)',
      nonce: hex(nonce),
      inner: hex(inner),
      block: hex(e.block),
      stored: e.block.byteLength,
      id: hex(e.id)
    }
  }

  // Another compressor's LZ4 encoding of blocks[1]'s plaintext, sealed by the spec (not by encodeBlock,
  // which would compress it its own way): readers accept it, and its nonce and id differ.
  const altBlock = (): Record<string, unknown> => {
    const plain = ALT_LZ4.plaintext.bytes()
    const ph = crypto.hash(plain, keys.plainHash)
    const { key } = blockKeyNonce(crypto, keys.data, ph)
    const payload = lz4LiteralsMatchLiterals(plain, ALT_LZ4.literals, ALT_LZ4.offset)
    const inner = Buffer.alloc(INNER_HEADER + payload.length)
    inner[0] = CODEC.lz4
    inner.writeUInt32BE(plain.length, 1)
    payload.copy(inner, INNER_HEADER)
    const nonce = crypto.hash(inner, key, NONCE_BYTES)
    const block = Buffer.concat([Buffer.from(AD), nonce, crypto.seal(inner, AD, nonce, key)])
    const ml = plain.length - ALT_LZ4.literals - 5
    return {
      about: 'The plaintext of blocks[1] with another valid LZ4 payload, as a different LZ4 implementation could write it (dustbox\'s own compressor writes blocks[1]). Sealed as the spec says: nonce = BLAKE2b-192(key = block key, inner). Readers MUST decode it to the same plaintext; its inner bytes differ from blocks[1], so do its nonce and its id: one block key never seals two different messages under one nonce.',
      plaintext: ALT_LZ4.plaintext.formula,
      ph: hex(ph),
      payload: `LZ4 sequences: ${ALT_LZ4.literals} literals (plaintext[0..${ALT_LZ4.literals})), a match at offset ${ALT_LZ4.offset} of length ${ml}, then the last 5 bytes as literals`,
      inner: hex(inner),
      nonce: hex(nonce),
      block: hex(block),
      stored: block.byteLength,
      id: hex(crypto.hash(block))
    }
  }

  const stubVector = (c: FileCase): Record<string, unknown> => {
    const data = c.input.bytes()
    const blocks: StubBlock[] = []
    let pos = 0
    for (const n of chunkLengths(data, c.chunker, keyedGear)) {
      const e = encodeBlock(crypto, blockKeys, data.subarray(pos, pos + n))
      blocks.push({ id: e.id, ph: e.ph, size: n, stored: e.block.byteLength })
      pos += n
    }
    const stub: Stub = { owner: keys.ownerId, name: c.name, size: data.byteLength, mode: c.mode, mtimeNs: c.mtimeNs, hash: crypto.hash(data, keys.plainHash), chunker: c.chunker, blocks }
    const stubFileName = stubNameFor(c.name)
    const bytes = encodeStub(crypto, keys.stubMac, stub, stubFileName)
    const text = bytes.toString('utf8')
    const macLine = text.slice(text.lastIndexOf('mac '))
    return {
      label: c.label,
      file: { name: c.name, content: c.input.formula, size: data.byteLength, mode: c.mode.toString(8).padStart(4, '0'), mtimeNs: c.mtimeNs.toString(), chunker: c.chunker, gear: 'keyed' },
      wholeFileHash: hex(stub.hash),
      blocks: blocks.map(b => ({ id: hex(b.id), ph: hex(b.ph), size: b.size, stored: b.stored })),
      stubFileName,
      mac: macLine.slice(4, 68),
      macInputBytes: bytes.byteLength - macLine.length,
      stubBytes: bytes.byteLength,
      stub: text
    }
  }

  return {
    format: 'dustbox test vectors v1',
    about: 'Golden vectors of the dustbox v1 formats: docs/keys.md, docs/stub-format.md. Byte strings are lowercase hex unless said otherwise; a reimplementation must reproduce every value. Checked by test/vectors.test.ts (both crypto backends) and docs/vectors/check_v1.py (independent Python).',
    inputs: INPUTS,
    keys: {
      root: hex(ROOT),
      rootFormula: 'bytes 0x00, 0x01, ..., 0x1f',
      secretFile: encodeSecretFile(ROOT),
      labels: KDF_LABELS,
      identitySeed: hex(deriveKey(crypto, ROOT, KDF_LABELS.identity)),
      data: hex(keys.data),
      plainHash: hex(keys.plainHash),
      stubMac: hex(keys.stubMac),
      index: hex(keys.index),
      chunker: hex(keys.chunker),
      pointer: hex(keys.pointer),
      audit: hex(keys.audit),
      ed25519PublicKey: hex(keys.identity.publicKey),
      ed25519SecretKey: hex(keys.identity.secretKey),
      ownerId: keys.ownerId
    },
    gear: {
      about: 'Entries as unsigned 32-bit values written as 8 hex digits, most significant first; tableBlake2b256 = unkeyed BLAKE2b-256 of the 256 entries each as 4 bytes little-endian (1024 bytes). unkeyed: GEAR[i] = LE32(BLAKE2b-512("dustbox/v1/gear" || byte i)[0..4)), the default of tools and tests. keyed: GEAR_K[i] = LE32(BLAKE2b-512(key = K_chunker, "dustbox/v1/gear" || byte i)[0..4)) with K_chunker = keys.chunker, the table stubs are cut with.',
      unkeyed: gearVector(GEAR),
      keyed: gearVector(keyedGear)
    },
    chunker: CHUNK_CASES.map(c => {
      const data = c.input.bytes()
      return { name: c.name, gear: c.gear, input: c.input.formula, inputBytes: data.byteLength, params: c.params, lengths: chunkLengths(data, c.params, tables[c.gear]) }
    }),
    blocks: BLOCK_CASES.map(c => blockVector(c.name, c.input)),
    altLz4Block: altBlock(),
    names: {
      stubNameFor: NAME_CASES.map(c => ({ name: c.name, formula: c.formula, nameBytes: Buffer.byteLength(c.name), stubName: stubNameFor(c.name), stubNameBytes: Buffer.byteLength(stubNameFor(c.name)) })),
      targetNameFor: TARGET_CASES.map(c => ({ ...c, target: targetNameFor(c.stubFileName, c.recordedName) }))
    },
    stubs: FILE_CASES.map(stubVector)
  }
}

function loadVectors (): any {
  return JSON.parse(readFileSync(fileURLToPath(VECTORS_URL), 'utf8'))
}

const backends: Array<[string, () => Promise<Crypto>]> = [['sodium-native', loadNative], ['libsodium-wrappers', loadWasm]]

if (WRITE) {
  test('write docs/vectors/v1.json (DUSTBOX_WRITE_VECTORS=1)', async () => {
    const v = computeVectors(await loadNative())
    await fsp.mkdir(fileURLToPath(new URL('.', VECTORS_URL)), { recursive: true })
    // One number array per line keeps the file short and diffable.
    const text = JSON.stringify(v, null, 1).replace(/\[\n\s*(\d+(?:,\n\s*\d+)*)\n\s*\]/g, (_m, body: string) => '[' + body.replace(/,\n\s*/g, ', ') + ']')
    await fsp.writeFile(VECTORS_URL, text + '\n')
  })
} else {
  for (const [name, load] of backends) {
    test(`every vector recomputes exactly under ${name}`, async () => {
      const crypto = await load()
      assert.equal(crypto.name, name)
      const want = loadVectors()
      const got = JSON.parse(JSON.stringify(computeVectors(crypto)))
      // Section by section, so a failure names what changed.
      for (const section of Object.keys(want)) assert.deepEqual(got[section], want[section], `section ${section}`)
      assert.deepEqual(Object.keys(got), Object.keys(want))
    })

    test(`vector blocks and stubs decode under ${name}`, async () => {
      const crypto = await load()
      const v = loadVectors()
      const keys = deriveKeys(crypto, Buffer.from(v.keys.root, 'hex'))
      assert.deepEqual(decodeSecretFile(v.keys.secretFile, 'secret.key'), new Uint8Array(ROOT))
      for (const b of v.blocks) {
        const plain = decodeBlock(crypto, keys, Buffer.from(b.ph, 'hex'), Buffer.from(b.block, 'hex'), b.plaintextHex.length / 2)
        assert.equal(Buffer.from(plain).toString('hex'), b.plaintextHex, b.name)
        // Layout: version || nonce || ciphertext || tag, and |block| = |payload| + BLOCK_OVERHEAD (46).
        assert.equal(b.block.slice(2, 2 + 2 * NONCE_BYTES), b.nonce, b.name)
        assert.equal(b.stored, b.inner.length / 2 - INNER_HEADER + BLOCK_OVERHEAD, b.name)
      }
      // Another compressor's LZ4 payload of the same plaintext decodes to it, under another nonce and id.
      const alt = v.altLz4Block
      const lz4Vector = v.blocks.find((b: any) => b.plaintext === alt.plaintext)
      assert.equal(alt.ph, lz4Vector.ph)
      const altPlain = decodeBlock(crypto, keys, Buffer.from(alt.ph, 'hex'), Buffer.from(alt.block, 'hex'), lz4Vector.plaintextHex.length / 2)
      assert.equal(Buffer.from(altPlain).toString('hex'), lz4Vector.plaintextHex)
      assert.notEqual(alt.inner, lz4Vector.inner)
      assert.notEqual(alt.nonce, lz4Vector.nonce)
      assert.notEqual(alt.id, lz4Vector.id)
      for (const s of v.stubs) {
        const bytes = Buffer.from(s.stub, 'utf8')
        assert.equal(bytes.byteLength, s.stubBytes)
        const d = decodeStub(crypto, bytes, { ownerId: keys.ownerId, macKey: keys.stubMac }, s.stubFileName)
        assert.equal(d.name, s.file.name)
        assert.equal(d.size, s.file.size)
        assert.equal(d.mode.toString(8).padStart(4, '0'), s.file.mode)
        assert.equal(d.mtimeNs.toString(), s.file.mtimeNs)
        assert.deepEqual(d.blocks.map(b => ({ id: toHex(b.id), ph: toHex(b.ph), size: b.size, stored: b.stored })), s.blocks)
        for (const b of s.blocks) assert.ok(b.stored >= BLOCK_OVERHEAD && b.stored <= b.size + BLOCK_OVERHEAD)
        // The MAC covers every byte before the mac line: flipping any one of a sample of them is refused.
        for (const i of [0, 20, s.macInputBytes - 1]) {
          const bad = Buffer.from(bytes); bad[i] ^= 0x01
          assert.throws(() => decodeStub(crypto, bad, { ownerId: keys.ownerId, macKey: keys.stubMac }, 'x.f'), (e: unknown) => e instanceof StubError && e.code === 'STUB_INVALID')
        }
        const other = deriveKeys(crypto, Buffer.alloc(32, 0xff))
        assert.throws(() => decodeStub(crypto, bytes, { ownerId: other.ownerId, macKey: other.stubMac }, 'x.f'), (e: unknown) => e instanceof StubError && e.code === 'STUB_FOREIGN')
      }
    })
  }

  test('the chunker vectors hold for findCut on a window of exactly max bytes (streaming rule)', async () => {
    const v = loadVectors()
    const keys = deriveKeys(await loadNative(), ROOT)
    const tables: Record<GearKind, Int32Array> = { unkeyed: GEAR, keyed: gearTable(await loadNative(), keys.chunker) }
    for (const c of v.chunker.filter((x: any) => x.input === 'xorshift32(1, 3145728)')) {
      const data = xorshift32(1, c.inputBytes)
      let pos = 0
      for (const n of c.lengths) {
        const end = Math.min(data.length, pos + c.params.max)
        assert.equal(findCut(data.subarray(0, end), pos, end, c.params, tables[c.gear as GearKind]), n, c.name)
        pos += n
      }
    }
  })

  test('chunkFile (the streaming chunker stub uses) cuts every chunker vector input as the vectors say', async t => {
    const v = loadVectors()
    const dir = await tempDir(t)
    const keys = deriveKeys(await loadNative(), ROOT)
    const tables: Record<GearKind, Int32Array> = { unkeyed: GEAR, keyed: gearTable(await loadNative(), keys.chunker) }
    for (const [i, c] of CHUNK_CASES.entries()) {
      const want = v.chunker[i]
      assert.equal(want.name, c.name)
      const path = join(dir, `input${i}`)
      await fsp.writeFile(path, c.input.bytes())
      const fh = await fsp.open(path, 'r')
      const lengths: number[] = []
      try {
        for await (const chunk of chunkFile(fh, { params: c.params, gear: tables[c.gear] })) lengths.push(chunk.byteLength)
      } finally {
        await fh.close()
      }
      assert.deepEqual(lengths, want.lengths, c.name)
    }
  })

  test('stub and hydrate of the vector files write exactly the vector stubs', async t => {
    const v = loadVectors()
    const dir = await tempDir(t)
    for (const [i, c] of FILE_CASES.entries()) {
      const want = v.stubs[i]
      const home = join(dir, `home${i}`)
      const engine = await StubEngine.open({ home, secret: ROOT, chunker: c.chunker, workers: 1, crypto: await loadNative() })
      try {
        // The engine cuts with the owner's keyed table, the one in the vectors.
        assert.equal(hex(engine.crypto.hash(gearBytes(engine.gear))), v.gear.keyed.tableBlake2b256)
        const files = join(dir, `files${i}`)
        await fsp.mkdir(files)
        const path = join(files, c.name)
        const data = c.input.bytes()
        await fsp.writeFile(path, data)
        await fsp.chmod(path, c.mode)
        // Exact in a double (whole seconds + 0.25 or 0.5): Node's utimes keeps it to the microsecond.
        const seconds = Number(c.mtimeNs / 1000000000n) + Number(c.mtimeNs % 1000000000n) / 1e9
        await fsp.utimes(path, seconds, seconds)
        const st = await fsp.stat(path, { bigint: true })
        if (st.mtimeNs !== c.mtimeNs) { t.diagnostic(`file system keeps mtime ${st.mtimeNs}, not ${c.mtimeNs}: end-to-end stub bytes not compared`); continue }
        const r = await engine.stub(path)
        assert.equal(r.stubPath, join(files, want.stubFileName))
        const stubBytes = await fsp.readFile(r.stubPath)
        assert.equal(stubBytes.toString('utf8'), want.stub)
        assert.equal(((await fsp.stat(r.stubPath)).mode & 0o777).toString(8).padStart(4, '0'), (c.mode & 0o666).toString(8).padStart(4, '0'))
        for (const b of want.blocks) {
          const block = await fsp.readFile(join(home, 'blocks', b.id.slice(0, 2), b.id))
          assert.equal(block.byteLength, b.stored)
        }
        const h = await engine.hydrate(r.stubPath)
        assert.equal(h.path, path)
        assert.deepEqual(await fsp.readFile(path), data)
        const st2 = await fsp.stat(path, { bigint: true })
        assert.equal(Number(st2.mode & 0o7777n), c.mode)
        // hydrate sets the mtime with FileHandle.utimes (before its fsync) from a double number of
        // seconds (Number(ns) / 1e9); Node keeps microseconds, so it is not nanosecond-exact
        // (documented in docs/stub-format.md §6.2).
        const drift = st2.mtimeNs - c.mtimeNs
        assert.ok(drift <= 0n && drift > -2000n, `restored mtime ${st2.mtimeNs} vs recorded ${c.mtimeNs}`)
      } finally {
        await engine.close()
      }
    }
  })
}
