// The folder index format (docs/index-format.md): codec round trip and strict decoding, the sealed
// root (a forged or altered root is refused, a stale one too), and the restore's path checks: an
// index entry with "../", an absolute path or a name too long is refused by name, nothing is written
// outside the target folder, and the good entries are still restored.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './helpers/fixtures.js'
import { encodeIndex, decodeIndex, encodeRoot, decodeRoot, encodeRootPointer, decodeRootPointer, type FolderIndex, type IndexFile } from '../agent/index-codec.js'
import { sealRoot, openRoot, indexHash } from '../agent/folder-index.js'
import { Restorer, relProblem } from '../agent/restore.js'
import { IndexDb } from '../agent/index-db.js'
import { loadCrypto } from '../stubs/crypto.js'
import { deriveKeys } from '../stubs/keys.js'
import { encodeStub, type Stub } from '../stubs/stub-format.js'
import { DEFAULT_CHUNKER } from '../stubs/chunker.js'

const crypto = await loadCrypto()
const keys = deriveKeys(crypto, Buffer.alloc(32, 7))
const other = deriveKeys(crypto, Buffer.alloc(32, 8))

function stubFor (name: string): Buffer {
  const s: Stub = { owner: keys.ownerId, name, size: 0, mode: 0o644, mtimeNs: 1_700_000_000_000_000_000n, hash: Buffer.alloc(32, 1), chunker: DEFAULT_CHUNKER, blocks: [] }
  return encodeStub(crypto, keys.stubMac, s, name + '.f')
}

function index (rels: string[]): FolderIndex {
  const files: IndexFile[] = rels.map(rel => ({ folder: 0, rel, state: 'stubbed', size: 0, mtimeMs: 1, stub: stubFor(rel.split('/').pop() ?? rel) }))
  return {
    peers: [{ key: Buffer.alloc(32, 3), host: '127.0.0.1', port: 4000 }],
    folders: [{ label: 'Fotos ü', path: '/home/zoë/Fotos ü' }],
    files,
    blocks: [{ id: Buffer.alloc(32, 9), stored: 100, k: 4, m: 2, shards: [{ idx: 0, shardId: Buffer.alloc(32, 5), peer: 0, size: 25 }] }]
  }
}

test('index codec: round trip; truncation, trailing bytes, dangling references and bad versions are refused by name', () => {
  const ix = index(['a.txt', 'Ordner/b ✓.txt'])
  const buf = encodeIndex(ix, () => [Buffer.alloc(32, 9)])
  const back = decodeIndex(buf)
  assert.deepEqual(back.files.map(f => f.rel), ['a.txt', 'Ordner/b ✓.txt'])
  assert.equal(back.blocks.length, 1)
  assert.deepEqual(back.folders, ix.folders)
  assert.throws(() => decodeIndex(buf.subarray(0, buf.length - 3)), /INDEX_INVALID: folder index.*truncated/)
  assert.throws(() => decodeIndex(Buffer.concat([buf, Buffer.from([0])])), /INDEX_INVALID: folder index: 1 bytes after END/)
  const v3 = Buffer.from(buf); v3[4] = 3
  assert.throws(() => decodeIndex(v3), /INDEX_INVALID: folder index: version 3 is not supported/)
  const noPeers = encodeIndex({ ...ix, peers: [] }, () => [Buffer.alloc(32, 9)])
  assert.throws(() => decodeIndex(noPeers), /names peer 0, but only 0 peers were listed/)
})

test('index v2: vectors, older versions, deleted files and device certificates round trip; v1 streams still decode; v2 records in a v1 stream are refused', () => {
  const ix: FolderIndex = {
    ...index(['a.txt']),
    files: [{ folder: 0, rel: 'a.txt', state: 'hydrated', size: 0, mtimeMs: 1, stub: stubFor('a.txt'), vv: '0a1b2c3d:2', by: '0a1b2c3d' }],
    versions: [{ folder: 0, rel: 'a.txt', createdAt: 5, device: '0a1b2c3d', stub: stubFor('a.txt') }, { folder: 0, rel: 'weg.txt', createdAt: 6, device: '', stub: stubFor('weg.txt') }],
    deleted: [{ folder: 0, rel: 'weg.txt', deletedAt: 7, vv: '0a1b2c3d:3', by: '0a1b2c3d' }],
    devices: [Buffer.from('a fake certificate')]
  }
  const back = decodeIndex(encodeIndex(ix, () => [Buffer.alloc(32, 9)]))
  assert.deepEqual(back.files, ix.files)
  assert.deepEqual(back.versions, ix.versions)
  assert.deepEqual(back.deleted, ix.deleted)
  assert.deepEqual(back.devices, ix.devices)
  // A v1 stream (what agents before devices wrote): FILE without vector, no v2 records.
  const v1 = encodeIndex({ ...index(['a.txt']), versions: [], deleted: [], devices: [] }, () => [Buffer.alloc(32, 9)])
  const parts: Buffer[] = [v1.subarray(0, 5)]
  for (let off = 5; off < v1.length;) {
    const type = v1[off]
    const len = v1.readUInt32BE(off + 1)
    let body = v1.subarray(off + 5, off + 5 + len)
    if (type === 0x03) body = body.subarray(0, body.length - 3) // v1 FILE: no vector (u16 0) or device (u8 0)
    const hdr = Buffer.alloc(5); hdr[0] = type; hdr.writeUInt32BE(body.length, 1)
    parts.push(hdr, body)
    off += 5 + len
  }
  const old = Buffer.concat(parts); old[4] = 1
  const o = decodeIndex(old)
  assert.equal(o.files[0].rel, 'a.txt')
  assert.equal(o.files[0].vv, undefined)
  assert.deepEqual(o.versions, [])
  const withDeleted = encodeIndex({ ...index(['a.txt']), deleted: [{ folder: 0, rel: 'x', deletedAt: 1, vv: '', by: '' }] }, () => [])
  withDeleted[4] = 1
  assert.throws(() => decodeIndex(withDeleted), /record type 0x3 is not allowed|truncated|trailing|0x7 is not allowed in a version 1 index/)
  const badFolder = encodeIndex({ ...index(['a.txt']), versions: [{ folder: 3, rel: 'a.txt', createdAt: 1, device: '', stub: stubFor('a.txt') }] }, () => [])
  assert.throws(() => decodeIndex(badFolder), /names folder 3, but only 1 folders were listed/)
})

test('index root: sealed to the owner; a forged (wrong key) or altered root is refused; the pointer codec is strict', () => {
  const stream = encodeIndex(index(['x']), () => [])
  const plain = encodeRoot({ seq: 7, createdAt: 1, device: '', indexBytes: 10, indexHash: indexHash(keys.index, stream), peers: [], chunks: [{ id: Buffer.alloc(32, 1), ph: Buffer.alloc(32, 2), size: 10, stored: 60, k: 1, m: 0, shards: [] }] })
  const sealed = sealRoot(keys.index, keys.identity.publicKey, 7, plain)
  const open = openRoot(keys.index, keys.identity.publicKey, sealed, 'test')
  assert.equal(open.seq, 7)
  assert.equal(decodeRoot(open.plain).seq, 7)
  assert.throws(() => openRoot(other.index, keys.identity.publicKey, sealed, 'peer abcd'), /^AgentError: INDEX_INVALID: the index root from peer abcd does not decrypt with this identity's key/)
  const forged = sealRoot(other.index, keys.identity.publicKey, 7, plain)
  assert.throws(() => openRoot(keys.index, keys.identity.publicKey, forged, 'peer abcd'), /INDEX_INVALID/)
  const raised = Buffer.from(sealed); raised.writeBigUInt64BE(8n, 1)
  assert.throws(() => openRoot(keys.index, keys.identity.publicKey, raised, 'peer abcd'), /INDEX_INVALID/, 'a seq raised outside the seal does not open')
  const p = { seq: 3, shardId: Buffer.alloc(32, 4), size: 500, holders: [Buffer.alloc(32, 5), Buffer.alloc(32, 6)] }
  assert.deepEqual(decodeRootPointer(encodeRootPointer(p)), p)
  assert.throws(() => decodeRootPointer(Buffer.concat([encodeRootPointer(p), Buffer.from([1])])), /trailing bytes/)
})

test('a stale root (older than the DHT pointer) is refused with a clear error', async () => {
  const plain = encodeRoot({ seq: 4, createdAt: 1, device: '', indexBytes: 0, indexHash: Buffer.alloc(32), peers: [], chunks: [] })
  const old = sealRoot(keys.index, keys.identity.publicKey, 4, plain)
  const { shardIdOf } = await import('../net/index.js')
  const payload = encodeRootPointer({ seq: 5, shardId: shardIdOf(old), size: old.length, holders: [Buffer.alloc(32, 5)] })
  const r = new Restorer({
    db: null as never,
    fetcher: null as never,
    crypto,
    keys,
    open: async () => {},
    discovery: { getPointer: async () => ({ seq: 9, payload, source: 'dht' }) } as never,
    peers: { connect: async () => ({ get: async () => old }) } as never
  })
  await assert.rejects(r.findRoot(), /INDEX_NOT_FOUND: the pointer names root 5, but none of its 1 holders gave a valid copy \(05050505: INDEX_STALE: peer 05050505 holds root 4, older than the pointer's 5\)/)
})

test('hostile index entries: "../", absolute paths, names too long and foreign stubs are refused by name; nothing is written outside', async (t) => {
  const home = await tempDir(t, 'dustbox-home-')
  const base = await tempDir(t, 'dustbox-restore ü-')
  const to = join(base, 'ziel')
  const db = new IndexDb(home)
  t.after(() => db.close())
  const long = 'ä'.repeat(150) // 300 bytes
  const ix = index(['gut/ok ✓.txt', '../entkommen.txt', '/etc/dustbox-evil', 'a/../../b.txt', `${long}.txt`, 'nul\u0000.txt'])
  const foreignStub = encodeStub(crypto, other.stubMac, { owner: other.ownerId, name: 'fremd.txt', size: 0, mode: 0o644, mtimeNs: 1n, hash: Buffer.alloc(32), chunker: DEFAULT_CHUNKER, blocks: [] }, 'fremd.txt.f')
  const withForeign: FolderIndex = { ...ix, files: [...ix.files, { folder: 0, rel: 'fremd.txt', state: 'stubbed', size: 0, mtimeMs: 1, stub: foreignStub }] }
  const r = new Restorer({ db, fetcher: null as never, peers: null as never, discovery: null as never, crypto, keys, open: async () => {} })
  const out = await r.writeTree(withForeign, to)
  assert.equal(out.files, 1)
  const refused = new Map(out.refused.map(x => [x.entry, x.error]))
  assert.match(refused.get('Fotos ü/../entkommen.txt') ?? '', /^UNSAFE_PATH: path leaves its folder/)
  assert.match(refused.get('Fotos ü//etc/dustbox-evil') ?? '', /^UNSAFE_PATH: absolute path/)
  assert.match(refused.get('Fotos ü/a/../../b.txt') ?? '', /^UNSAFE_PATH: path leaves its folder/)
  assert.match(refused.get(`Fotos ü/${long}.txt`) ?? '', /name too long for the file system/)
  assert.match(refused.get('Fotos ü/nul\u0000.txt') ?? '', /NUL/)
  assert.match(refused.get('Fotos ü/fremd.txt') ?? '', /STUB_FOREIGN|STUB_INVALID/)
  assert.equal(out.refused.length, 6)
  // Only the good stub exists, inside its folder; nothing next to the target or in /etc.
  assert.deepEqual((await fsp.readdir(base)).sort(), ['ziel'])
  assert.deepEqual((await fsp.readdir(join(to, 'Fotos ü', 'gut'))), ['ok ✓.txt.f'])
  await assert.rejects(fsp.lstat('/etc/dustbox-evil'))
  assert.equal(relProblem('Ünïcödé/日本語 🎉.txt'), null)
})
