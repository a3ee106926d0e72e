// Wire codec of the folder index (docs/index-format.md): the record stream that lists every watched
// folder, every placed file with its stub (and, from v2, its version vector, its older kept versions,
// deleted files and the owner's device certificates), every block with where its shards live, and
// the peers they live on; and the index root that lists the stream's own blocks. Encode and decode
// only. v2 writes; v1 and v2 read.
// Decoding trusts nothing: every length is bounded before it is read, references must point to
// records already seen, trailing bytes and unknown record types are refused, errors name the record.

import { AgentError, AgentCodes } from './errors.js'

export const INDEX_MAGIC = Buffer.from('DBXI', 'ascii')
export const ROOT_MAGIC = Buffer.from('DBXR', 'ascii')
export const INDEX_VERSION = 2
/** Oldest stream version this agent reads. */
export const MIN_INDEX_VERSION = 1

export const RecordTypes = {
  PEER: 0x01,
  FOLDER: 0x02,
  FILE: 0x03,
  BLOCK: 0x04,
  CHUNK: 0x05,
  /** v2: an older kept version of a file (docs/sync.md §7). */
  VERSION: 0x06,
  /** v2: a deleted file (tombstone) whose versions are still kept. */
  DELETED: 0x07,
  /** v2: a device certificate of the owner (net/device-cert.ts). */
  DEVICE: 0x08,
  END: 0xff
} as const

export const FileStates = { stubbed: 0, hydrated: 1 } as const
export type IndexFileState = keyof typeof FileStates

/** Bounds every decoder enforces. */
export const MAX_INDEX_BYTES = 1024 * 1024 * 1024
export const MAX_ROOT_BYTES = 4 * 1024 * 1024
export const MAX_RECORD_BYTES = 64 * 1024 * 1024 + 8192
export const MAX_PEERS = 65_535
export const MAX_FOLDERS = 4096
export const MAX_LABEL_BYTES = 255
export const MAX_PATH_BYTES = 4096
export const MAX_HOST_BYTES = 255
export const MAX_SHARDS = 255
export const MAX_DEVICES = 256
export const MAX_CERT_BYTES = 1024
export const MAX_VV_BYTES = 2048
const ID = 32

export interface IndexPeer { readonly key: Buffer, readonly host: string, readonly port: number }
export interface IndexFolder { readonly label: string, readonly path: string }
export interface IndexShard { readonly idx: number, readonly shardId: Buffer, readonly peer: number, readonly size: number }
export interface IndexBlock { readonly id: Buffer, readonly stored: number, readonly k: number, readonly m: number, readonly shards: readonly IndexShard[] }
export interface IndexFile {
  readonly folder: number
  readonly rel: string
  readonly state: IndexFileState
  readonly size: number
  readonly mtimeMs: number
  readonly stub: Buffer
  /** v2: version vector (sync.md §3) and the device that made this version ('' in v1). */
  readonly vv?: string
  readonly by?: string
}
/** v2: an older kept version of the file at (folder, rel), live or deleted. */
export interface IndexVersion { readonly folder: number, readonly rel: string, readonly createdAt: number, readonly device: string, readonly stub: Buffer }
/** v2: a deleted file; its versions are VERSION records. */
export interface IndexDeleted { readonly folder: number, readonly rel: string, readonly deletedAt: number, readonly vv: string, readonly by: string }
/** One block of the index stream itself (in the root): a block plus what decrypts it. */
export interface IndexChunk extends IndexBlock { readonly ph: Buffer, readonly size: number }

export interface FolderIndex {
  readonly peers: readonly IndexPeer[]
  readonly folders: readonly IndexFolder[]
  readonly files: readonly IndexFile[]
  readonly blocks: readonly IndexBlock[]
  /** v2 (empty when reading v1). */
  readonly versions?: readonly IndexVersion[]
  readonly deleted?: readonly IndexDeleted[]
  readonly devices?: readonly Buffer[]
}

export interface IndexRoot {
  readonly seq: number
  readonly createdAt: number
  /** Device that wrote it (hex of its key, or '' before devices exist). */
  readonly device: string
  /** Bytes of the index stream and its keyed BLAKE2b-256 (checked after the chunks are joined). */
  readonly indexBytes: number
  readonly indexHash: Buffer
  readonly peers: readonly IndexPeer[]
  readonly chunks: readonly IndexChunk[]
}

function bad (what: string, text: string): AgentError {
  return new AgentError(AgentCodes.INDEX_INVALID, `${what}: ${text}`)
}

// ------------------------------------------------------------------------------------------ writer

class Writer {
  private readonly parts: Buffer[] = []
  count = 0
  record (type: number, body: Buffer[]): void {
    const len = body.reduce((n, b) => n + b.length, 0)
    const h = Buffer.alloc(5)
    h[0] = type
    h.writeUInt32BE(len, 1)
    this.parts.push(h, ...body)
    if (type !== RecordTypes.END) this.count++
  }

  done (): Buffer { return Buffer.concat(this.parts) }
}

function u8 (n: number): Buffer { return Buffer.from([n]) }
function u16 (n: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b }
function u32 (n: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b }
function u64 (n: number): Buffer { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b }
function f64 (n: number): Buffer { const b = Buffer.alloc(8); b.writeDoubleBE(n); return b }
function str16 (s: string): Buffer[] { const b = Buffer.from(s, 'utf8'); return [u16(b.length), b] }
function str8 (s: string): Buffer[] { const b = Buffer.from(s, 'utf8'); return [u8(b.length), b] }


function peerBody (no: number, p: IndexPeer): Buffer[] {
  return [u16(no), p.key, ...str8(p.host), u16(p.port)]
}

function blockBody (b: IndexBlock): Buffer[] {
  const out: Buffer[] = [b.id, u32(b.stored), u8(b.k), u8(b.m), u8(b.shards.length)]
  for (const s of b.shards) out.push(u8(s.idx), s.shardId, u16(s.peer), u32(s.size))
  return out
}

/**
 * The index stream: header, PEER*, FOLDER*, DEVICE*, then each FILE, VERSION or DELETED followed by
 * the BLOCKs it is first to use, END.
 */
export function encodeIndex (ix: FolderIndex, blocksOf: (f: IndexFile | IndexVersion) => readonly Buffer[]): Buffer {
  const w = new Writer()
  ix.peers.forEach((p, i) => w.record(RecordTypes.PEER, peerBody(i, p)))
  ix.folders.forEach((f, i) => w.record(RecordTypes.FOLDER, [u16(i), ...str16(f.label), ...str16(f.path)]))
  for (const c of ix.devices ?? []) w.record(RecordTypes.DEVICE, [u16(c.length), c])
  const byId = new Map(ix.blocks.map(b => [b.id.toString('hex'), b]))
  const emitted = new Set<string>()
  const blocksFor = (f: IndexFile | IndexVersion): void => {
    for (const id of blocksOf(f)) {
      const hex = id.toString('hex')
      const b = byId.get(hex)
      if (b === undefined || emitted.has(hex)) continue
      emitted.add(hex)
      w.record(RecordTypes.BLOCK, blockBody(b))
    }
  }
  for (const f of ix.files) {
    w.record(RecordTypes.FILE, [u16(f.folder), ...str16(f.rel), u8(FileStates[f.state]), u64(f.size), f64(f.mtimeMs), u32(f.stub.length), f.stub, ...str16(f.vv ?? ''), ...str8(f.by ?? '')])
    blocksFor(f)
  }
  for (const d of ix.deleted ?? []) w.record(RecordTypes.DELETED, [u16(d.folder), ...str16(d.rel), u64(d.deletedAt), ...str16(d.vv), ...str8(d.by)])
  for (const v of ix.versions ?? []) {
    w.record(RecordTypes.VERSION, [u16(v.folder), ...str16(v.rel), u64(v.createdAt), ...str8(v.device), u32(v.stub.length), v.stub])
    blocksFor(v)
  }
  // Blocks no file lists (never, when built from a consistent local index) still go out.
  for (const b of ix.blocks) if (!emitted.has(b.id.toString('hex'))) w.record(RecordTypes.BLOCK, blockBody(b))
  w.record(RecordTypes.END, [u32(w.count)])
  return Buffer.concat([INDEX_MAGIC, u8(INDEX_VERSION), w.done()])
}

/** The root's plaintext: header, seq, device, index size and hash, PEER*, CHUNK*, END. */
export function encodeRoot (r: IndexRoot): Buffer {
  const w = new Writer()
  r.peers.forEach((p, i) => w.record(RecordTypes.PEER, peerBody(i, p)))
  for (const c of r.chunks) w.record(RecordTypes.CHUNK, [c.ph, u32(c.size), ...blockBody(c)])
  w.record(RecordTypes.END, [u32(w.count)])
  return Buffer.concat([ROOT_MAGIC, u8(INDEX_VERSION), u64(r.createdAt), u64(r.seq), ...str8(r.device), u64(r.indexBytes), r.indexHash, w.done()])
}

// ------------------------------------------------------------------------------------------ reader

class Reader {
  off = 0
  constructor (readonly buf: Buffer, readonly what: string) {}
  need (n: number, field: string): void {
    if (this.off + n > this.buf.length) throw bad(this.what, `truncated in ${field} at byte ${this.off}`)
  }

  u8 (f: string): number { this.need(1, f); return this.buf[this.off++] }
  u16 (f: string): number { this.need(2, f); const v = this.buf.readUInt16BE(this.off); this.off += 2; return v }
  u32 (f: string): number { this.need(4, f); const v = this.buf.readUInt32BE(this.off); this.off += 4; return v }
  u64 (f: string): number {
    this.need(8, f)
    const v = this.buf.readBigUInt64BE(this.off)
    this.off += 8
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(this.what, `${f} ${v} is out of range`)
    return Number(v)
  }

  f64 (f: string): number {
    this.need(8, f)
    const v = this.buf.readDoubleBE(this.off)
    this.off += 8
    if (!Number.isFinite(v)) throw bad(this.what, `${f} is not a finite number`)
    return v
  }

  bytes (n: number, f: string): Buffer { this.need(n, f); const b = this.buf.subarray(this.off, this.off + n); this.off += n; return Buffer.from(b) }
  str (len: number, max: number, f: string): string {
    if (len > max) throw bad(this.what, `${f} is ${len} bytes, over ${max}`)
    const b = this.bytes(len, f)
    const s = b.toString('utf8')
    if (!Buffer.from(s, 'utf8').equals(b)) throw bad(this.what, `${f} is not valid UTF-8`)
    return s
  }

  get left (): number { return this.buf.length - this.off }
}

function readHeader (r: Reader, magic: Buffer): number {
  if (!r.bytes(4, 'magic').equals(magic)) throw bad(r.what, `not a dustbox ${magic.toString('ascii')} record stream (wrong magic)`)
  const v = r.u8('version')
  if (v < MIN_INDEX_VERSION || v > INDEX_VERSION) throw bad(r.what, `version ${v} is not supported (this agent reads versions ${MIN_INDEX_VERSION} to ${INDEX_VERSION})`)
  return v
}

interface Rec { type: number, body: Reader, n: number }

function * records (r: Reader): Generator<Rec> {
  let n = 0
  for (;;) {
    const type = r.u8('record type')
    const len = r.u32('record length')
    if (len > MAX_RECORD_BYTES) throw bad(r.what, `record ${n} is ${len} bytes, over ${MAX_RECORD_BYTES}`)
    const body = new Reader(r.bytes(len, `record ${n}`), `${r.what}, record ${n}`)
    if (type === RecordTypes.END) {
      const count = body.u32('count')
      if (body.left !== 0) throw bad(body.what, 'END has trailing bytes')
      if (count !== n) throw bad(r.what, `END says ${count} records, the stream has ${n}`)
      if (r.left !== 0) throw bad(r.what, `${r.left} bytes after END`)
      return
    }
    yield { type, body, n }
    n++
  }
}

function readPeer (b: Reader, expectNo: number): IndexPeer {
  const no = b.u16('peer number')
  if (no !== expectNo) throw bad(b.what, `peer number ${no} out of order (expected ${expectNo})`)
  const key = b.bytes(ID, 'peer key')
  const host = b.str(b.u8('host length'), MAX_HOST_BYTES, 'host')
  const port = b.u16('port')
  return { key, host, port }
}

function readBlock (b: Reader, peers: number): IndexBlock {
  const id = b.bytes(ID, 'block id')
  const stored = b.u32('stored size')
  const k = b.u8('k')
  const m = b.u8('m')
  const n = b.u8('shard count')
  if (k < 1 || k + m > MAX_SHARDS) throw bad(b.what, `k=${k} m=${m} is not a valid code`)
  const shards: IndexShard[] = []
  for (let i = 0; i < n; i++) {
    const idx = b.u8('shard index')
    if (idx >= k + m) throw bad(b.what, `shard index ${idx} is not below k+m=${k + m}`)
    const shardId = b.bytes(ID, 'shard id')
    const peer = b.u16('shard peer')
    if (peer >= peers) throw bad(b.what, `shard ${idx} names peer ${peer}, but only ${peers} peers were listed before it`)
    shards.push({ idx, shardId, peer, size: b.u32('shard size') })
  }
  return { id, stored, k, m, shards }
}

export function decodeIndex (buf: Buffer, what = 'folder index'): FolderIndex {
  if (buf.length > MAX_INDEX_BYTES) throw bad(what, `${buf.length} bytes, over ${MAX_INDEX_BYTES}`)
  const r = new Reader(buf, what)
  const version = readHeader(r, INDEX_MAGIC)
  const peers: IndexPeer[] = []
  const folders: IndexFolder[] = []
  const files: IndexFile[] = []
  const blocks: IndexBlock[] = []
  const versions: IndexVersion[] = []
  const deleted: IndexDeleted[] = []
  const devices: Buffer[] = []
  const folderOf = (body: Reader): number => {
    const folder = body.u16('folder number')
    if (folder >= folders.length) throw bad(body.what, `names folder ${folder}, but only ${folders.length} folders were listed`)
    return folder
  }
  const v2 = (body: Reader, type: number): void => { if (version < 2) throw bad(body.what, `record type 0x${type.toString(16)} is not allowed in a version ${version} index`) }
  for (const { type, body, n } of records(r)) {
    if (type === RecordTypes.PEER) {
      if (folders.length + files.length + blocks.length > 0) throw bad(body.what, 'PEER after other records')
      if (peers.length >= MAX_PEERS) throw bad(body.what, `over ${MAX_PEERS} peers`)
      peers.push(readPeer(body, peers.length))
    } else if (type === RecordTypes.FOLDER) {
      if (files.length + blocks.length > 0) throw bad(body.what, 'FOLDER after FILE or BLOCK records')
      if (folders.length >= MAX_FOLDERS) throw bad(body.what, `over ${MAX_FOLDERS} folders`)
      const no = body.u16('folder number')
      if (no !== folders.length) throw bad(body.what, `folder number ${no} out of order`)
      const label = body.str(body.u16('label length'), MAX_LABEL_BYTES, 'folder label')
      const path = body.str(body.u16('path length'), MAX_PATH_BYTES, 'folder path')
      folders.push({ label, path })
    } else if (type === RecordTypes.FILE) {
      const folder = body.u16('folder number')
      if (folder >= folders.length) throw bad(body.what, `file names folder ${folder}, but only ${folders.length} folders were listed`)
      const rel = body.str(body.u16('path length'), MAX_PATH_BYTES, 'file path')
      const st = body.u8('state')
      const state = (Object.keys(FileStates) as IndexFileState[]).find(k => FileStates[k] === st)
      if (state === undefined) throw bad(body.what, `state ${st} is unknown`)
      const size = body.u64('size')
      const mtimeMs = body.f64('mtime')
      const stub = body.bytes(body.u32('stub length'), 'stub')
      if (version >= 2) {
        const vv = body.str(body.u16('vector length'), MAX_VV_BYTES, 'version vector')
        const by = body.str(body.u8('device length'), 64, 'device')
        files.push({ folder, rel, state, size, mtimeMs, stub, vv, by })
      } else {
        files.push({ folder, rel, state, size, mtimeMs, stub })
      }
    } else if (type === RecordTypes.BLOCK) {
      blocks.push(readBlock(body, peers.length))
    } else if (type === RecordTypes.VERSION) {
      v2(body, type)
      const folder = folderOf(body)
      const rel = body.str(body.u16('path length'), MAX_PATH_BYTES, 'file path')
      const createdAt = body.u64('created-at')
      const device = body.str(body.u8('device length'), 64, 'device')
      versions.push({ folder, rel, createdAt, device, stub: body.bytes(body.u32('stub length'), 'stub') })
    } else if (type === RecordTypes.DELETED) {
      v2(body, type)
      const folder = folderOf(body)
      const rel = body.str(body.u16('path length'), MAX_PATH_BYTES, 'file path')
      const deletedAt = body.u64('deleted-at')
      const vv = body.str(body.u16('vector length'), MAX_VV_BYTES, 'version vector')
      deleted.push({ folder, rel, deletedAt, vv, by: body.str(body.u8('device length'), 64, 'device') })
    } else if (type === RecordTypes.DEVICE) {
      v2(body, type)
      if (files.length + blocks.length + versions.length + deleted.length > 0) throw bad(body.what, 'DEVICE after FILE, BLOCK, VERSION or DELETED records')
      if (devices.length >= MAX_DEVICES) throw bad(body.what, `over ${MAX_DEVICES} devices`)
      const n = body.u16('certificate length')
      if (n > MAX_CERT_BYTES) throw bad(body.what, `a device certificate of ${n} bytes, over ${MAX_CERT_BYTES}`)
      devices.push(body.bytes(n, 'device certificate'))
    } else {
      throw bad(body.what, `record type 0x${type.toString(16)} is not allowed in an index`)
    }
    if (body.left !== 0) throw bad(body.what, `${body.left} trailing bytes`)
    void n
  }
  return { peers, folders, files, blocks, versions, deleted, devices }
}

export function decodeRoot (buf: Buffer, what = 'index root'): IndexRoot {
  if (buf.length > MAX_ROOT_BYTES) throw bad(what, `${buf.length} bytes, over ${MAX_ROOT_BYTES}`)
  const r = new Reader(buf, what)
  readHeader(r, ROOT_MAGIC)
  const createdAt = r.u64('created-at')
  const seq = r.u64('seq')
  const device = r.str(r.u8('device length'), 64, 'device')
  const indexBytes = r.u64('index size')
  if (indexBytes > MAX_INDEX_BYTES) throw bad(what, `the index is said to be ${indexBytes} bytes, over ${MAX_INDEX_BYTES}`)
  const indexHash = r.bytes(ID, 'index hash')
  const peers: IndexPeer[] = []
  const chunks: IndexChunk[] = []
  let total = 0
  for (const { type, body } of records(r)) {
    if (type === RecordTypes.PEER) {
      if (chunks.length > 0) throw bad(body.what, 'PEER after CHUNK records')
      if (peers.length >= MAX_PEERS) throw bad(body.what, `over ${MAX_PEERS} peers`)
      peers.push(readPeer(body, peers.length))
    } else if (type === RecordTypes.CHUNK) {
      const ph = body.bytes(ID, 'plain hash')
      const size = body.u32('plain size')
      total += size
      chunks.push({ ph, size, ...readBlock(body, peers.length) })
    } else {
      throw bad(body.what, `record type 0x${type.toString(16)} is not allowed in a root`)
    }
    if (body.left !== 0) throw bad(body.what, `${body.left} trailing bytes`)
  }
  if (total !== indexBytes) throw bad(what, `its chunks add up to ${total} bytes, not the ${indexBytes} it declares`)
  return { seq, createdAt, device, indexBytes, indexHash, peers, chunks }
}

// ------------------------------------------------------------------------------ pointer payload

export const POINTER_KIND_ROOT = 0x01
export const MAX_ROOT_HOLDERS = 16

/** What the owner's BEP 44 pointer says: the newest root's seq, its copy's shard id and size, and who holds it. */
export interface RootPointer { readonly seq: number, readonly shardId: Buffer, readonly size: number, readonly holders: readonly Buffer[] }

/** payload = 0x01 || u64be seq || shard id (32) || u32be size || u8 n || n × peer key (32); n ≤ 16 (≤ 558 bytes). */
export function encodeRootPointer (p: RootPointer): Buffer {
  if (p.holders.length < 1 || p.holders.length > MAX_ROOT_HOLDERS) throw new AgentError(AgentCodes.INDEX_FAILED, `a root pointer lists 1 to ${MAX_ROOT_HOLDERS} holders, not ${p.holders.length}`)
  return Buffer.concat([u8(POINTER_KIND_ROOT), u64(p.seq), p.shardId, u32(p.size), u8(p.holders.length), ...p.holders])
}

export function decodeRootPointer (buf: Buffer, what = 'index pointer'): RootPointer {
  const r = new Reader(buf, what)
  const kind = r.u8('kind')
  if (kind !== POINTER_KIND_ROOT) throw bad(what, `kind ${kind} is not an index root pointer`)
  const seq = r.u64('seq')
  const shardId = r.bytes(ID, 'root shard id')
  const size = r.u32('root size')
  if (size > MAX_ROOT_BYTES + 64) throw bad(what, `the root is said to be ${size} bytes, over ${MAX_ROOT_BYTES}`)
  const n = r.u8('holder count')
  if (n < 1 || n > MAX_ROOT_HOLDERS) throw bad(what, `${n} holders (1 to ${MAX_ROOT_HOLDERS} allowed)`)
  const holders: Buffer[] = []
  for (let i = 0; i < n; i++) holders.push(r.bytes(ID, 'holder key'))
  if (r.left !== 0) throw bad(what, `${r.left} trailing bytes`)
  return { seq, shardId, size, holders }
}
