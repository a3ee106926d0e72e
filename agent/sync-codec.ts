// Wire codec of device sync (docs/sync.md §4): the bodies of the DEVICE requests and replies that
// devices of one owner exchange over their authenticated channel. PULL asks for the changes after a
// sequence number and gets file records (with their stubs and where their blocks' shards are) and
// block placement updates; NOTIFY says "I have new changes"; GC_CHECK asks which of some blocks a
// device still needs before they are deleted. Decoding is strict and bounded: anything else throws
// SYNC_INVALID naming the part.

import { AgentError, AgentCodes } from './errors.js'
import { parseVector, MAX_VECTOR_TEXT } from './version-vector.js'

export const SyncOps = { PULL: 0x01, NOTIFY: 0x02, GC_CHECK: 0x03 } as const
export const BlockFlags = { AUTHORITATIVE: 0x01 } as const

export const MAX_SYNC_BODY = 4 * 1024 * 1024
/** A reply is filled up to about this many bytes (the rest comes with the next PULL). */
export const SYNC_REPLY_TARGET = 2 * 1024 * 1024
export const MAX_PULL_ENTRIES = 4096
export const MAX_STUB_BYTES = 3 * 1024 * 1024
export const MAX_LABEL_BYTES = 255
export const MAX_REL_BYTES = 4096
export const MAX_GC_IDS = 4096
export const MAX_SHARDS = 255

export interface SyncShard { readonly idx: number, readonly shardId: Buffer, readonly peer: Buffer, readonly size: number }
export interface SyncBlock { readonly id: Buffer, readonly stored: number, readonly k: number, readonly m: number, readonly shards: readonly SyncShard[], readonly authoritative: boolean }
export interface SyncFile {
  readonly label: string
  readonly rel: string
  /** Version vector, text form (version-vector.ts). */
  readonly vv: string
  /** Device id that made this version (or the deletion). */
  readonly by: string
  readonly deleted: boolean
  readonly mtimeMs: number
  readonly size: number
  /** The encoded .f stub of this version (empty when deleted). */
  readonly stub: Buffer
}

export type SyncRequest =
  | { op: 'PULL', since: number, max: number }
  | { op: 'NOTIFY', head: number }
  | { op: 'GC_CHECK', holdUntil: number, ids: Buffer[] }

export type SyncReply =
  | { op: 'PULL', head: number, upTo: number, more: boolean, blocks: SyncBlock[], files: SyncFile[] }
  | { op: 'NOTIFY' }
  | { op: 'GC_CHECK', needed: Buffer[] }

function bad (text: string): AgentError {
  return new AgentError(AgentCodes.SYNC_INVALID, text)
}

class W {
  readonly parts: Buffer[] = []
  bytes = 0
  push (b: Buffer): this { this.parts.push(b); this.bytes += b.length; return this }
  u8 (n: number): this { return this.push(Buffer.from([n])) }
  u16 (n: number): this { const b = Buffer.alloc(2); b.writeUInt16BE(n); return this.push(b) }
  u32 (n: number): this { const b = Buffer.alloc(4); b.writeUInt32BE(n); return this.push(b) }
  u64 (n: number): this { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return this.push(b) }
  f64 (n: number): this { const b = Buffer.alloc(8); b.writeDoubleBE(n); return this.push(b) }
  str8 (s: string): this { const b = Buffer.from(s, 'utf8'); return this.u8(b.length).push(b) }
  str16 (s: string): this { const b = Buffer.from(s, 'utf8'); return this.u16(b.length).push(b) }
  done (): Buffer { return Buffer.concat(this.parts) }
}

class R {
  private o = 0
  constructor (private readonly b: Buffer, private readonly what: string) {}
  need (n: number, part: string): void { if (this.o + n > this.b.length) throw bad(`${this.what}: truncated in ${part}`) }
  u8 (part: string): number { this.need(1, part); return this.b[this.o++] }
  u16 (part: string): number { this.need(2, part); const v = this.b.readUInt16BE(this.o); this.o += 2; return v }
  u32 (part: string): number { this.need(4, part); const v = this.b.readUInt32BE(this.o); this.o += 4; return v }
  u64 (part: string): number {
    this.need(8, part)
    const v = this.b.readBigUInt64BE(this.o)
    this.o += 8
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${this.what}: ${part} is out of range`)
    return Number(v)
  }

  f64 (part: string): number { this.need(8, part); const v = this.b.readDoubleBE(this.o); this.o += 8; if (!Number.isFinite(v)) throw bad(`${this.what}: ${part} is not a finite number`); return v }
  bytes (n: number, part: string): Buffer { this.need(n, part); const v = Buffer.from(this.b.subarray(this.o, this.o + n)); this.o += n; return v }
  str (n: number, part: string, max: number): string {
    if (n > max) throw bad(`${this.what}: ${part} is ${n} bytes (at most ${max})`)
    const raw = this.bytes(n, part)
    const s = raw.toString('utf8')
    if (!Buffer.from(s, 'utf8').equals(raw)) throw bad(`${this.what}: ${part} is not valid UTF-8`)
    return s
  }

  end (): void { if (this.o !== this.b.length) throw bad(`${this.what}: ${this.b.length - this.o} trailing bytes`) }
}

const opName = new Map<number, SyncRequest['op']>(Object.entries(SyncOps).map(([k, v]) => [v, k as SyncRequest['op']]))

export function encodeSyncRequest (r: SyncRequest): Buffer {
  const w = new W().u8(SyncOps[r.op])
  if (r.op === 'PULL') w.u64(r.since).u32(r.max)
  else if (r.op === 'NOTIFY') w.u64(r.head)
  else { w.u64(r.holdUntil).u32(r.ids.length); for (const id of r.ids) w.push(id) }
  return w.done()
}

export function decodeSyncRequest (b: Buffer, what = 'sync request'): SyncRequest {
  if (b.length > MAX_SYNC_BODY) throw bad(`${what} is ${b.length} bytes (at most ${MAX_SYNC_BODY})`)
  const r = new R(b, what)
  const op = opName.get(r.u8('op'))
  let out: SyncRequest
  if (op === 'PULL') {
    const since = r.u64('since')
    const max = r.u32('max')
    if (max < 1 || max > MAX_PULL_ENTRIES) throw bad(`${what}: max ${max} is not 1..${MAX_PULL_ENTRIES}`)
    out = { op, since, max }
  } else if (op === 'NOTIFY') {
    out = { op, head: r.u64('head') }
  } else if (op === 'GC_CHECK') {
    const holdUntil = r.u64('holdUntil')
    const n = r.u32('count')
    if (n > MAX_GC_IDS) throw bad(`${what}: ${n} block ids (at most ${MAX_GC_IDS})`)
    const ids: Buffer[] = []
    for (let i = 0; i < n; i++) ids.push(r.bytes(32, 'block id'))
    out = { op, holdUntil, ids }
  } else {
    throw bad(`${what}: unknown op`)
  }
  r.end()
  return out
}

export function encodeBlock (w: W, b: SyncBlock): void {
  w.push(b.id).u32(b.stored).u8(b.k).u8(b.m).u8(b.shards.length)
  for (const s of b.shards) w.u8(s.idx).push(s.shardId).push(s.peer).u32(s.size)
  w.u8(b.authoritative ? BlockFlags.AUTHORITATIVE : 0)
}

function decodeBlock (r: R): SyncBlock {
  const id = r.bytes(32, 'block id')
  const stored = r.u32('block stored size')
  const k = r.u8('block k')
  const m = r.u8('block m')
  const n = r.u8('shard count')
  if (k < 1 || k + m > MAX_SHARDS || n > k + m) throw bad(`block ${id.toString('hex').slice(0, 12)}: k ${k}, m ${m}, ${n} shards do not fit`)
  const shards: SyncShard[] = []
  for (let i = 0; i < n; i++) {
    const idx = r.u8('shard index')
    if (idx >= k + m) throw bad(`block ${id.toString('hex').slice(0, 12)}: shard index ${idx} ≥ k+m`)
    shards.push({ idx, shardId: r.bytes(32, 'shard id'), peer: r.bytes(32, 'shard peer'), size: r.u32('shard size') })
  }
  const flags = r.u8('block flags')
  if ((flags & ~BlockFlags.AUTHORITATIVE) !== 0) throw bad(`block ${id.toString('hex').slice(0, 12)}: unknown flags ${flags}`)
  return { id, stored, k, m, shards, authoritative: (flags & BlockFlags.AUTHORITATIVE) !== 0 }
}

export function encodeFile (w: W, f: SyncFile): void {
  w.str16(f.label).str16(f.rel).str16(f.vv).str8(f.by).u8(f.deleted ? 1 : 0).f64(f.mtimeMs).u64(f.size).u32(f.stub.length).push(f.stub)
}

function decodeFile (r: R): SyncFile {
  const label = r.str(r.u16('label length'), 'folder label', MAX_LABEL_BYTES)
  const rel = r.str(r.u16('path length'), 'path', MAX_REL_BYTES)
  const vv = r.str(r.u16('vector length'), 'version vector', MAX_VECTOR_TEXT)
  parseVector(vv, `version vector of ${JSON.stringify(rel.slice(0, 200))}`)
  const by = r.str(r.u8('device length'), 'device id', 64)
  const deleted = r.u8('deleted flag')
  if (deleted > 1) throw bad(`${JSON.stringify(rel.slice(0, 200))}: deleted flag ${deleted}`)
  const mtimeMs = r.f64('mtime')
  const size = r.u64('size')
  const n = r.u32('stub length')
  if (n > MAX_STUB_BYTES) throw bad(`${JSON.stringify(rel.slice(0, 200))}: stub of ${n} bytes (at most ${MAX_STUB_BYTES})`)
  const stub = r.bytes(n, 'stub')
  if ((deleted === 1) !== (n === 0)) throw bad(`${JSON.stringify(rel.slice(0, 200))}: a deleted file has no stub and a live one has one`)
  return { label, rel, vv, by, deleted: deleted === 1, mtimeMs, size, stub }
}

/** A PULL reply built incrementally, so the caller can stop adding once it is big enough. */
export class PullReplyWriter {
  private readonly blocks = new W()
  private readonly files = new W()
  private nBlocks = 0
  private nFiles = 0
  get bytes (): number { return this.blocks.bytes + this.files.bytes }
  addBlock (b: SyncBlock): void { encodeBlock(this.blocks, b); this.nBlocks++ }
  addFile (f: SyncFile): void { encodeFile(this.files, f); this.nFiles++ }
  finish (head: number, upTo: number, more: boolean): Buffer {
    return new W().u8(SyncOps.PULL).u64(head).u64(upTo).u8(more ? 1 : 0).u32(this.nBlocks).push(this.blocks.done()).u32(this.nFiles).push(this.files.done()).done()
  }
}

export function encodeSyncReply (r: SyncReply): Buffer {
  if (r.op === 'PULL') {
    const w = new PullReplyWriter()
    for (const b of r.blocks) w.addBlock(b)
    for (const f of r.files) w.addFile(f)
    return w.finish(r.head, r.upTo, r.more)
  }
  if (r.op === 'NOTIFY') return Buffer.from([SyncOps.NOTIFY])
  const w = new W().u8(SyncOps.GC_CHECK).u32(r.needed.length)
  for (const id of r.needed) w.push(id)
  return w.done()
}

export function decodeSyncReply (b: Buffer, what = 'sync reply'): SyncReply {
  if (b.length > MAX_SYNC_BODY) throw bad(`${what} is ${b.length} bytes (at most ${MAX_SYNC_BODY})`)
  const r = new R(b, what)
  const op = opName.get(r.u8('op'))
  let out: SyncReply
  if (op === 'PULL') {
    const head = r.u64('head')
    const upTo = r.u64('upTo')
    const more = r.u8('more')
    if (more > 1) throw bad(`${what}: more flag ${more}`)
    const nb = r.u32('block count')
    const blocks: SyncBlock[] = []
    for (let i = 0; i < nb; i++) blocks.push(decodeBlock(r))
    const nf = r.u32('file count')
    const files: SyncFile[] = []
    for (let i = 0; i < nf; i++) files.push(decodeFile(r))
    out = { op, head, upTo, more: more === 1, blocks, files }
  } else if (op === 'NOTIFY') {
    out = { op }
  } else if (op === 'GC_CHECK') {
    const n = r.u32('count')
    if (n > MAX_GC_IDS) throw bad(`${what}: ${n} block ids (at most ${MAX_GC_IDS})`)
    const needed: Buffer[] = []
    for (let i = 0; i < n; i++) needed.push(r.bytes(32, 'block id'))
    out = { op, needed }
  } else {
    throw bad(`${what}: unknown op`)
  }
  r.end()
  return out
}
