// The folder index as data: build it from the local index (every placed file of every watched
// folder, its stub, its blocks and where their shards live), cut its stream into content-defined
// chunks, and seal / open the index root (docs/index-format.md). No network here: the publisher
// places what this builds, the restore reads what this opens.

import { basename } from 'node:path'
import sodium from 'sodium-native'
import type { IndexDb } from './index-db.js'
import { AgentError, AgentCodes } from './errors.js'
import { encodeIndex, type FolderIndex, type IndexBlock, type IndexFile, type IndexPeer, type IndexVersion, type IndexDeleted } from './index-codec.js'
import { chunkLengths, validateParams, type ChunkerParams } from '../stubs/chunker.js'

/** Index chunks: small, so a change to one file re-uploads about 64 KiB of index. */
export const INDEX_CHUNKER: ChunkerParams = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 }
export const ROOT_KEY_LABEL = 'dustbox/v1/index/root'
export const INDEX_HASH_LABEL = 'dustbox/v1/index/hash'
const ROOT_VERSION = 0x01
const NONCE = 24
const TAG = 16

function subkey (indexKey: Uint8Array, label: string): Buffer {
  const out = Buffer.alloc(32)
  sodium.crypto_generichash(out, Buffer.from(label, 'ascii'), Buffer.from(indexKey))
  return out
}

/** Keyed BLAKE2b-256 of the whole index stream (the root carries it; checked after the chunks are joined). */
export function indexHash (indexKey: Uint8Array, stream: Uint8Array): Buffer {
  const out = Buffer.alloc(32)
  sodium.crypto_generichash(out, stream, subkey(indexKey, INDEX_HASH_LABEL))
  return out
}

function rootAd (owner: Uint8Array, seq: number): Buffer {
  const b = Buffer.alloc(ROOT_KEY_LABEL.length + 32 + 8)
  b.write(ROOT_KEY_LABEL, 0, 'ascii')
  Buffer.from(owner).copy(b, ROOT_KEY_LABEL.length)
  b.writeBigUInt64BE(BigInt(seq), ROOT_KEY_LABEL.length + 32)
  return b
}

/** sealed = 0x01 || u64be seq || nonce(24) || XChaCha20-Poly1305(K_root, nonce, root, ad = label || owner || u64be seq). */
export function sealRoot (indexKey: Uint8Array, owner: Uint8Array, seq: number, plain: Uint8Array, nonce?: Uint8Array): Buffer {
  const n = nonce !== undefined ? Buffer.from(nonce) : Buffer.alloc(NONCE)
  if (nonce === undefined) sodium.randombytes_buf(n)
  const out = Buffer.alloc(1 + 8 + NONCE + plain.byteLength + TAG)
  out[0] = ROOT_VERSION
  out.writeBigUInt64BE(BigInt(seq), 1)
  n.copy(out, 9)
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out.subarray(9 + NONCE), Buffer.from(plain), rootAd(owner, seq), null, n, subkey(indexKey, ROOT_KEY_LABEL))
  return out
}

/** The root's plaintext and its seq; INDEX_INVALID when it is not this owner's (wrong key, altered, other version). */
export function openRoot (indexKey: Uint8Array, owner: Uint8Array, sealed: Uint8Array, from: string): { seq: number, plain: Buffer } {
  const b = Buffer.from(sealed)
  if (b.length < 1 + 8 + NONCE + TAG) throw new AgentError(AgentCodes.INDEX_INVALID, `the index root from ${from} is too short (${b.length} bytes)`)
  if (b[0] !== ROOT_VERSION) throw new AgentError(AgentCodes.INDEX_INVALID, `the index root from ${from} has version ${b[0]}, this agent reads ${ROOT_VERSION}`)
  const seq64 = b.readBigUInt64BE(1)
  if (seq64 > BigInt(Number.MAX_SAFE_INTEGER)) throw new AgentError(AgentCodes.INDEX_INVALID, `the index root from ${from} has an out-of-range seq`)
  const seq = Number(seq64)
  const plain = Buffer.alloc(b.length - 9 - NONCE - TAG)
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(plain, null, b.subarray(9 + NONCE), rootAd(owner, seq), b.subarray(9, 9 + NONCE), subkey(indexKey, ROOT_KEY_LABEL))
  } catch {
    throw new AgentError(AgentCodes.INDEX_INVALID, `the index root from ${from} does not decrypt with this identity's key (forged, altered, or another owner's)`)
  }
  return { seq, plain }
}

/** The PEER records of an index or root: each peer numbered in order of first use, with its last known address. */
export class PeerTable {
  readonly peers: IndexPeer[] = []
  private readonly no = new Map<string, number>()
  constructor (private readonly db: IndexDb) {}
  numberOf (key: Buffer): number {
    const hex = key.toString('hex')
    let n = this.no.get(hex)
    if (n === undefined) {
      const row = this.db.peer(key)
      n = this.peers.length
      this.no.set(hex, n)
      this.peers.push({ key, host: row?.host ?? '', port: row?.port ?? 0 })
    }
    return n
  }
}

/** Folder labels: each folder's base name, made unique with " (2)", " (3)"... in folder order. */
export function folderLabels (paths: readonly string[]): string[] {
  const seen = new Set<string>()
  return paths.map(p => {
    const base = basename(p) === '' ? 'folder' : basename(p)
    let label = base
    for (let i = 2; seen.has(label); i++) label = `${base} (${i})`
    seen.add(label)
    return label
  })
}

/**
 * Everything the index lists, read from the local index in one consistent snapshot: current files,
 * older kept versions, deleted files still kept, the owner's device certificates (`ownCert`: this
 * device's, when it has one), and the blocks all those versions list.
 */
export function buildIndex (db: IndexDb, ownCert: Buffer | null = null): { index: FolderIndex, blocksOf: (f: IndexFile | IndexVersion) => readonly Buffer[] } {
  const raw = db.raw
  return raw.transaction(() => {
    const folderRows = raw.prepare('SELECT id, path FROM folders ORDER BY path').all() as Array<{ id: number, path: string }>
    const labels = folderLabels(folderRows.map(f => f.path))
    const folderNo = new Map(folderRows.map((f, i) => [f.id, i]))
    const byRel = (a: { folder: number, rel: string }, b: { folder: number, rel: string }): number => a.folder - b.folder || (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0)
    const versionOf = new Map<IndexFile | IndexVersion, number>()
    const files: IndexFile[] = []
    for (const r of raw.prepare(`SELECT f.folder_id AS folder, f.rel, f.state, f.version_id AS version, v.size, f.mtime_ms AS mtime, v.stub, f.vv, f.by_device
        FROM files f JOIN versions v ON v.id = f.version_id
        WHERE f.state IN ('stubbed', 'hydrated') ORDER BY f.folder_id, f.rel`).all() as Array<{ folder: number, rel: string, state: 'stubbed' | 'hydrated', version: number, size: number, mtime: number, stub: Buffer, vv: string, by_device: string }>) {
      const no = folderNo.get(r.folder)
      if (no === undefined) continue
      const f: IndexFile = { folder: no, rel: r.rel, state: r.state, size: r.size, mtimeMs: r.mtime, stub: r.stub, vv: r.vv, by: r.by_device }
      files.push(f)
      versionOf.set(f, r.version)
    }
    files.sort(byRel)
    const deleted: IndexDeleted[] = []
    for (const r of raw.prepare('SELECT folder_id AS folder, rel, deleted_at, vv, by_device FROM files WHERE state = \'deleted\'').all() as Array<{ folder: number, rel: string, deleted_at: number | null, vv: string, by_device: string }>) {
      const no = folderNo.get(r.folder)
      if (no !== undefined) deleted.push({ folder: no, rel: r.rel, deletedAt: r.deleted_at ?? 0, vv: r.vv, by: r.by_device })
    }
    deleted.sort(byRel)
    const versions: IndexVersion[] = []
    for (const r of raw.prepare(`SELECT v.id, f.folder_id AS folder, f.rel, v.created_at, v.device, v.stub FROM versions v JOIN files f ON f.id = v.file_id
        WHERE (f.state IN ('stubbed', 'hydrated') AND v.id <> f.version_id) OR f.state = 'deleted' ORDER BY f.folder_id, f.rel, v.id`).all() as Array<{ id: number, folder: number, rel: string, created_at: number, device: string, stub: Buffer }>) {
      const no = folderNo.get(r.folder)
      if (no === undefined) continue
      const v: IndexVersion = { folder: no, rel: r.rel, createdAt: r.created_at, device: r.device, stub: r.stub }
      versions.push(v)
      versionOf.set(v, r.id)
    }
    versions.sort(byRel) // stable: each file's versions stay oldest first
    const certs = (raw.prepare('SELECT cert FROM devices WHERE cert IS NOT NULL ORDER BY key').all() as Array<{ cert: Buffer }>).map(r => r.cert)
    if (ownCert !== null) certs.unshift(ownCert)
    const vb = raw.prepare('SELECT block_id FROM version_blocks WHERE version_id = ? ORDER BY seq')
    const blockIds = new Map<number, Buffer[]>()
    for (const id of versionOf.values()) if (!blockIds.has(id)) blockIds.set(id, (vb.all(id) as Array<{ block_id: Buffer }>).map(r => r.block_id))
    const table = new PeerTable(db)
    const blockRow = raw.prepare('SELECT stored, k, m FROM blocks WHERE id = ?')
    const shardRows = raw.prepare('SELECT idx, shard_id, peer, size FROM shards WHERE block_id = ? AND bad IS NULL ORDER BY idx, peer')
    const blocks: IndexBlock[] = []
    const seen = new Set<string>()
    for (const f of [...files, ...versions]) {
      for (const id of blockIds.get(versionOf.get(f)!) ?? []) {
        const hex = id.toString('hex')
        if (seen.has(hex)) continue
        seen.add(hex)
        const b = blockRow.get(id) as { stored: number, k: number, m: number } | undefined
        if (b === undefined) continue
        const shards = (shardRows.all(id) as Array<{ idx: number, shard_id: Buffer, peer: Buffer, size: number }>)
          .map(s => ({ idx: s.idx, shardId: s.shard_id, peer: table.numberOf(s.peer), size: s.size }))
        blocks.push({ id, stored: b.stored, k: b.k, m: b.m, shards })
      }
    }
    const index: FolderIndex = { peers: table.peers, folders: folderRows.map((f, i) => ({ label: labels[i], path: f.path })), files, blocks, versions, deleted, devices: certs }
    return { index, blocksOf: (f: IndexFile | IndexVersion) => blockIds.get(versionOf.get(f) ?? -1) ?? [] }
  })()
}

/** The index stream (what the root's hash covers): the same local index gives the same bytes. */
export function indexStream (db: IndexDb, ownCert: Buffer | null = null): Buffer {
  const { index, blocksOf } = buildIndex(db, ownCert)
  return encodeIndex(index, blocksOf)
}

/** Content-defined cut of the index stream (keyed gear: cut points are private to the owner). */
export function indexChunks (stream: Buffer, gear: Int32Array): Buffer[] {
  validateParams(INDEX_CHUNKER)
  const out: Buffer[] = []
  let off = 0
  for (const len of chunkLengths(stream, INDEX_CHUNKER, gear)) {
    out.push(stream.subarray(off, off + len))
    off += len
  }
  return out
}
