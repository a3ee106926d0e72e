// The parts of device sync without a network (docs/sync.md): version vectors, conflict names, the
// DEVICE body codec against its golden vectors (docs/vectors/sync-v1.json) and hostile bodies, and
// the dashboard's health line showing held deletions and conflicts.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { compareVectors, formatVector, mergeVectors, parseVector, bumpVector } from '../agent/version-vector.js'
import { conflictName, deviceIdOf } from '../agent/sync.js'
import { decodeSyncReply, decodeSyncRequest, encodeSyncReply, encodeSyncRequest, type SyncReply } from '../agent/sync-codec.js'
import { healthLine, healthLevel } from '../tui/rows.js'
import { initialState, reducer } from '../tui/state.js'
import { status } from './helpers/tui-fixtures.js'

const V = JSON.parse(readFileSync(fileURLToPath(new URL('../../docs/vectors/sync-v1.json', import.meta.url)), 'utf8'))

test('version vectors: parse, format, compare, merge, bump; bad text refused', () => {
  const a = parseVector('0a1b2c3d:2,9f8e7d6c:1')
  assert.equal(formatVector(a), '0a1b2c3d:2,9f8e7d6c:1')
  assert.equal(compareVectors(a, a), 'equal')
  assert.equal(compareVectors(bumpVector(a, '0a1b2c3d'), a), 'greater')
  assert.equal(compareVectors(a, bumpVector(a, '11111111')), 'less')
  const x = bumpVector(a, '0a1b2c3d')
  const y = bumpVector(a, '9f8e7d6c')
  assert.equal(compareVectors(x, y), 'concurrent')
  assert.equal(formatVector(mergeVectors(x, y)), '0a1b2c3d:3,9f8e7d6c:2')
  assert.equal(compareVectors(parseVector(''), a), 'less')
  for (const bad of ['x:1', '0a1b2c3d:0', '0a1b2c3d:01', '9f8e7d6c:1,0a1b2c3d:1', '0a1b2c3d:1,0a1b2c3d:2', '0A1B2C3D:1', '0a1b2c3d:1:2', '0a1b2c3d:99999999999999999']) {
    assert.throws(() => parseVector(bad), /BAD_PARAMS/, bad)
  }
})

test('conflict copies are named the syncthing way, the same on every device', () => {
  const t = Date.UTC(2026, 10, 25, 16, 49, 6)
  assert.equal(conflictName('α ü.txt', t, '59b2e5db'), 'α ü.sync-conflict-20261125-164906-59b2e5db.txt')
  assert.equal(conflictName('archive.tar.gz', t, '59b2e5db'), 'archive.tar.sync-conflict-20261125-164906-59b2e5db.gz')
  assert.equal(conflictName('Makefile', t, 'aa'), 'Makefile.sync-conflict-20261125-164906-aa')
  assert.equal(conflictName('.bashrc', t, 'aa'), '.bashrc.sync-conflict-20261125-164906-aa')
  assert.equal(deviceIdOf(Buffer.from('59b2e5db00112233', 'hex')), '59b2e5db')
})

test('DEVICE bodies match the golden vectors and decode back', () => {
  const pull = V.pull_request
  assert.equal(encodeSyncRequest(pull.input).toString('hex'), pull.hex)
  assert.deepEqual(decodeSyncRequest(Buffer.from(pull.hex, 'hex')), pull.input)
  const gc = V.gc_check_request
  const gcIn = { op: 'GC_CHECK' as const, holdUntil: gc.input.holdUntil, ids: gc.input.ids.map((h: string) => Buffer.from(h, 'hex')) }
  assert.equal(encodeSyncRequest(gcIn).toString('hex'), gc.hex)
  assert.deepEqual(decodeSyncRequest(Buffer.from(gc.hex, 'hex')), gcIn)
  const r = V.pull_reply.input
  const reply: SyncReply = {
    op: 'PULL', head: r.head, upTo: r.upTo, more: r.more,
    blocks: r.blocks.map((b: any) => ({ ...b, id: Buffer.from(b.id, 'hex'), shards: b.shards.map((s: any) => ({ ...s, shardId: Buffer.from(s.shardId, 'hex'), peer: Buffer.from(s.peer, 'hex') })) })),
    files: r.files.map((f: any) => ({ ...f, stub: Buffer.from(f.stub, 'utf8') }))
  }
  assert.equal(encodeSyncReply(reply).toString('hex'), V.pull_reply.hex)
  assert.deepEqual(decodeSyncReply(Buffer.from(V.pull_reply.hex, 'hex')), reply)
})

test('hostile DEVICE bodies are refused by name, never thrown past the codec as anything else', () => {
  const good = Buffer.from(V.pull_reply.hex, 'hex')
  for (let n = 0; n < good.length; n += 7) assert.throws(() => decodeSyncReply(good.subarray(0, n)), /SYNC_INVALID/, `truncated at ${n}`)
  assert.throws(() => decodeSyncReply(Buffer.concat([good, Buffer.from([0])])), /SYNC_INVALID: .*trailing/)
  assert.throws(() => decodeSyncRequest(Buffer.from('09', 'hex')), /SYNC_INVALID: .*unknown op/)
  assert.throws(() => decodeSyncRequest(encodeSyncRequest({ op: 'PULL', since: 0, max: 1 }).fill(0xff, 9)), /SYNC_INVALID: .*max/)
  // A file with a bad vector, a deleted file with a stub, a block with an index past k+m.
  const withFile = (f: object): Buffer => encodeSyncReply({ op: 'PULL', head: 1, upTo: 1, more: false, blocks: [], files: [{ label: 'L', rel: 'r', vv: '0a1b2c3d:1', by: '0a1b2c3d', deleted: false, mtimeMs: 1, size: 1, stub: Buffer.from('x'), ...f }] })
  assert.throws(() => decodeSyncReply(withFile({ vv: '0a1b2c3d:0' })), /bad entry/)
  assert.throws(() => decodeSyncReply(withFile({ deleted: true })), /SYNC_INVALID: .*deleted file has no stub/)
  const badBlock = encodeSyncReply({ op: 'PULL', head: 1, upTo: 1, more: false, files: [], blocks: [{ id: Buffer.alloc(32), stored: 1, k: 1, m: 1, shards: [{ idx: 2, shardId: Buffer.alloc(32), peer: Buffer.alloc(32), size: 1 }], authoritative: false }] })
  assert.throws(() => decodeSyncReply(badBlock), /SYNC_INVALID: .*shard index 2/)
  const badUtf8 = withFile({ rel: 'ok' })
  const i = badUtf8.indexOf(Buffer.from('ok'))
  badUtf8[i] = 0xff
  assert.throws(() => decodeSyncReply(badUtf8), /SYNC_INVALID: .*not valid UTF-8/)
})

test('the dashboard shows held deletions first, conflicts and devices, and turns health red while deletions are held', () => {
  const st = status({ sync: { device: { id: '59b2e5db', name: 'laptop' }, devices: [{ id: '0a1b2c3d', name: 'desk', online: true, lastSeen: 1, pulled: 3 }], head: 3, applied: 1, conflicts: 1, lastError: null, held: [{ folder: '/home/u/Fotos', files: 120, of: 130, since: 1 }], openConflicts: [{ folder: '/home/u/Fotos', rel: 'a.sync-conflict-20261125-164906-0a1b2c3d.jpg' }], gc: null } })
  const s = reducer(initialState(), { type: 'status', status: st, at: Date.now() })
  const line = healthLine(s, 300)
  assert.match(line, /^HELD: 120 of 130 files deleted at once in \/home\/u\/Fotos — dustbox sync confirm \| revert/)
  assert.match(line, /1 sync conflict \(dustbox sync\)/)
  assert.match(line, /devices 1\/1 online/)
  assert.equal(healthLevel(s), 'bad')
})

test('hostile sync records: "../", absolute paths, names too long, a foreign or renamed stub are refused by name; nothing is written outside the folder', async (t) => {
  const { promises: fsp } = await import('node:fs')
  const { join } = await import('node:path')
  const { tempDir } = await import('./helpers/fixtures.js')
  const { IndexDb } = await import('../agent/index-db.js')
  const { DeviceSync } = await import('../agent/sync.js')
  const { loadCrypto } = await import('../stubs/crypto.js')
  const { deriveKeys } = await import('../stubs/keys.js')
  const { encodeStub } = await import('../stubs/stub-format.js')
  const { DEFAULT_CHUNKER } = await import('../stubs/chunker.js')
  const crypto = await loadCrypto()
  const keys = deriveKeys(crypto, Buffer.alloc(32, 7))
  const other = deriveKeys(crypto, Buffer.alloc(32, 8))
  const stubFor = (name: string, k = keys): Buffer => encodeStub(crypto, k.stubMac, { owner: k.ownerId, name, size: 0, mode: 0o644, mtimeNs: 1_700_000_000_000_000_000n, hash: Buffer.alloc(32, 1), chunker: DEFAULT_CHUNKER, blocks: [] }, name + '.f')
  const dir = await tempDir(t, 'dustbox-sync-hostile-')
  const folder = join(dir, 'inside', 'Sync ü')
  await fsp.mkdir(folder, { recursive: true })
  await fsp.mkdir(join(dir, 'home-state'))
  const db = new IndexDb(join(dir, 'home-state'))
  t.after(() => db.close())
  db.addFolder(folder)
  const net = { on: () => {}, peers: () => [] } as never
  const sync = new DeviceSync({ db, net, crypto, keys, device: { id: '0a1b2c3d', key: Buffer.alloc(32, 1), name: 'test' }, folders: () => [folder], busy: () => false, ingest: () => {}, open: async () => {}, hold: () => {}, placing: () => false })
  const rec = (rel: string, stub: Buffer, label = 'Sync ü'): Parameters<typeof sync.apply>[0] => ({ label, rel, vv: '9f8e7d6c:1', by: '9f8e7d6c', deleted: false, mtimeMs: 1, size: 0, stub })
  const cases: Array<[string, Parameters<typeof sync.apply>[0], RegExp]> = [
    ['dot-dot', rec('../../escape.txt', stubFor('escape.txt')), /UNSAFE_PATH: path leaves its folder/],
    ['absolute', rec('/etc/passwd', stubFor('passwd')), /UNSAFE_PATH: absolute path/],
    ['too long', rec('x'.repeat(300) + '.txt', stubFor('x'.repeat(300) + '.txt')), /UNSAFE_PATH: .*name too long for the file system/],
    ['foreign stub', rec('fremd.txt', stubFor('fremd.txt', other)), /STUB_(FOREIGN|INVALID)/],
    ['stub for another name', rec('a.txt', stubFor('b.txt')), /SYNC_INVALID: its stub is for "b.txt", not this name/]
  ]
  for (const [what, r, re] of cases) await assert.rejects(sync.apply(r, 'device 9f8e7d6c'), re, what)
  assert.equal(await sync.apply(rec('other folder.txt', stubFor('other folder.txt'), 'Not synced here'), 'device 9f8e7d6c'), true, 'a folder this device does not sync is ignored')
  // A good record is applied: the stub is written inside the folder, and nothing anywhere else.
  assert.equal(await sync.apply(rec('neu ✓.txt', stubFor('neu ✓.txt')), 'device 9f8e7d6c'), true)
  const all = (await fsp.readdir(dir, { recursive: true })).map(String).filter(p => !p.startsWith('home-state'))
  assert.deepEqual(all.sort(), ['inside', join('inside', 'Sync ü'), join('inside', 'Sync ü', 'neu ✓.txt.f')].sort())
  assert.equal(db.file(folder, 'neu ✓.txt')?.state, 'stubbed')
  sync.close()
})
