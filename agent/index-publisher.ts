// IndexPublisher: keeps the owner's encrypted folder index on the peers (docs/index-format.md §4).
// After changes (debounced) it serialises the local index, cuts it into content-defined chunks,
// places only the chunks not placed yet (ordinary encrypted, erasure-coded blocks, so audits and
// repair cover them), seals a new root listing them, puts the root whole on several peers, and
// publishes a pointer to it in the owner's BEP 44 item. The root's seq only grows (kept in
// index-root.json, written before the root leaves this machine).

import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { promises as fsp } from 'node:fs'
import type { IndexDb } from './index-db.js'
import type { Placement } from './placement.js'
import type { NetNode } from '../net/index.js'
import { shardIdOf } from '../net/index.js'
import type { Discovery } from '../dht/index.js'
import type { Crypto } from '../stubs/crypto.js'
import type { Keys } from '../stubs/keys.js'
import { encodeBlock } from '../stubs/block-codec.js'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { encodeRoot, encodeRootPointer, type IndexChunk } from './index-codec.js'
import { indexStream, indexChunks, indexHash, sealRoot, PeerTable } from './folder-index.js'
import { AgentError, AgentCodes } from './errors.js'

export const INDEX_DEBOUNCE_MS = 5_000
/** Re-publish at least this often even without changes (repair moves shards; keeps the pointer fresh). */
export const INDEX_REFRESH_MS = 6 * 3600_000
/** Whole copies of the root, each on a different peer. */
export const ROOT_COPIES = 5
export const ROOT_STATE_FILE = 'index-root.json'
const MAX_STATE_BYTES = 64 * 1024

export interface IndexStatus {
  readonly seq: number
  readonly publishedAt: number | null
  readonly files: number
  readonly indexBytes: number
  readonly chunks: number
  readonly chunksPlaced: number
  readonly rootCopies: number
  readonly pointer: boolean
  readonly lastError: string | null
}

interface RootState { seq: number, hash: string, shard: string, size: number, holders: string[], at: number, prev: { shard: string, holders: string[] } | null }

export interface IndexPublisherOptions {
  /** Id of this device, written in the root (docs/sync.md §2). */
  readonly device?: string
  /** This device's certificate, listed in the index (none for the identity's own key). */
  readonly deviceCert?: Buffer | null
  readonly home: string
  readonly db: IndexDb
  readonly placement: Placement
  readonly net: NetNode
  readonly discovery: Discovery
  readonly crypto: Crypto
  readonly keys: Keys
  readonly gear: Int32Array
  readonly debounceMs?: number
  readonly refreshMs?: number
  readonly rootCopies?: number
}

export class IndexPublisher extends EventEmitter<{ published: [IndexStatus], warning: [AgentError] }> {
  private readonly opts: IndexPublisherOptions
  private state: RootState | null = null
  private timer: NodeJS.Timeout | null = null
  private refresh: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private again = false
  private closed = false
  private readonly abort = new AbortController()
  private last: IndexStatus = { seq: 0, publishedAt: null, files: 0, indexBytes: 0, chunks: 0, chunksPlaced: 0, rootCopies: 0, pointer: false, lastError: null }

  constructor (opts: IndexPublisherOptions) {
    super()
    this.opts = opts
  }

  async ready (): Promise<void> {
    this.state = await this.loadState()
    if (this.state !== null) this.last = { ...this.last, seq: this.state.seq, publishedAt: this.state.at, rootCopies: this.state.holders.length }
    const every = this.opts.refreshMs ?? INDEX_REFRESH_MS
    this.refresh = setInterval(() => { this.soon(0) }, every)
    this.refresh.unref()
  }

  status (): IndexStatus { return this.last }

  /** Publish after the debounce (changes keep coming: the last one starts the clock). */
  soon (delayMs = this.opts.debounceMs ?? INDEX_DEBOUNCE_MS): void {
    if (this.closed) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      void this.publish().catch(() => {})
    }, delayMs)
    this.timer.unref()
  }

  /** Publish now (or after the running publish, once more). Resolves when this call's publish is done. */
  async publish (opts: { force?: boolean } = {}): Promise<IndexStatus> {
    if (this.running !== null) {
      this.again = true
      await this.running.catch(() => {})
      if (this.running !== null) { await this.running.catch(() => {}); return this.last }
    }
    this.again = false
    const run = this.run(opts.force === true)
    this.running = run
    try {
      await run
    } catch (err) {
      const e = err instanceof AgentError ? err : new AgentError(AgentCodes.INDEX_FAILED, `publishing the folder index: ${(err as Error).message}`)
      this.last = { ...this.last, lastError: e.message }
      if (!this.closed) this.emit('warning', e)
      throw e
    } finally {
      this.running = null
      if (this.again && !this.closed) this.soon(0)
    }
    return this.last
  }

  private async run (force: boolean): Promise<void> {
    const { db, placement, crypto, keys, discovery } = this.opts
    const signal = this.abort.signal
    const stream = indexStream(db, this.opts.deviceCert ?? null)
    const hash = indexHash(keys.index, stream)
    const files = db.raw.prepare("SELECT count(*) AS n FROM files WHERE state IN ('stubbed', 'hydrated')").get() as { n: number }
    if (!force && this.state !== null && this.state.hash === hash.toString('hex')) return
    // 1. The chunks, each an ordinary block under the index key; only new ones are placed.
    const chunks: IndexChunk[] = []
    let placed = 0
    const bkeys = { data: keys.index, plainHash: keys.plainHash }
    const ids: Buffer[] = []
    for (const plain of indexChunks(stream, this.opts.gear)) {
      const enc = encodeBlock(crypto, bkeys, plain)
      const id = Buffer.from(enc.id)
      ids.push(id)
      if (!placement.isPlaced(id)) {
        await placement.place(id, Buffer.from(enc.block), signal)
        placed++
      }
      db.markIndexBlocks([id], false)
      const b = db.block(id)
      if (b === null) throw new AgentError(AgentCodes.INDEX_FAILED, `index chunk ${id.toString('hex').slice(0, 12)} was placed but is not in the local index`)
      chunks.push({ id, ph: Buffer.from(enc.ph), size: plain.byteLength, stored: b.stored, k: b.k, m: b.m, shards: [] })
    }
    db.markIndexBlocks(ids, true)
    // 2. The root: the chunks with where their shards are, and those peers' addresses.
    const table = new PeerTable(db)
    const withShards = chunks.map(c => ({
      ...c,
      shards: db.shards(c.id).filter(s => s.bad == null).map(s => ({ idx: s.idx, shardId: s.shardId, peer: table.numberOf(s.peer), size: s.size }))
    }))
    // Several devices publish under one pointer: the seq is at least the time in seconds, so the
    // newest root of any device has the highest seq (docs/index-format.md §4).
    const seq = Math.max(Math.max(this.state?.seq ?? 0, this.last.seq) + 1, Math.floor(Date.now() / 1000))
    const plain = encodeRoot({ seq, createdAt: Date.now(), device: this.opts.device ?? '', indexBytes: stream.length, indexHash: hash, peers: table.peers, chunks: withShards })
    const owner = keys.identity.publicKey
    const sealed = sealRoot(keys.index, owner, seq, plain)
    const shardId = shardIdOf(sealed)
    // 3. The seq is on disk before the root leaves (a crash never makes it go back).
    const prev = this.state
    const next: RootState = { seq, hash: hash.toString('hex'), shard: shardId.toString('hex'), size: sealed.length, holders: [], at: Date.now(), prev: prev === null ? null : { shard: prev.shard, holders: prev.holders } }
    await this.saveState(next)
    this.state = next
    // 4. Whole copies of the root on distinct peers (the best-scored first, as placement orders them).
    const want = this.opts.rootCopies ?? ROOT_COPIES
    const holders: Buffer[] = []
    const exclude = new Set<string>()
    for (let i = 0; i < want; i++) {
      const row = await placement.placeShard(shardId, 0, sealed, exclude, { signal }).catch(() => null)
      if (row === null) break
      holders.push(row.peer)
    }
    if (holders.length === 0) throw new AgentError(AgentCodes.NOT_ENOUGH_PEERS, 'no peer took a copy of the folder index root; retrying later')
    next.holders = holders.map(h => h.toString('hex'))
    await this.saveState(next)
    // 5. The pointer (BEP 44), then the root before last is dropped from its holders.
    let pointer = false
    try {
      await discovery.putPointer(encodeRootPointer({ seq, shardId, size: sealed.length, holders }))
      pointer = true
    } catch (err) {
      this.emit('warning', new AgentError(AgentCodes.INDEX_FAILED, `the folder index root ${seq} is on ${holders.length} peers, but its DHT pointer was not put: ${(err as Error).message}`))
    }
    if (pointer) await this.handOverPointer(holders)
    if (prev?.prev != null) await this.dropCopies(prev.prev.shard, prev.prev.holders, new Set([next.shard, prev.shard]))
    this.last = { seq, publishedAt: next.at, files: files.n, indexBytes: stream.length, chunks: chunks.length, chunksPlaced: placed, rootCopies: holders.length, pointer, lastError: null }
    this.emit('published', this.last)
  }

  /**
   * The root's holders keep the signed pointer and re-put it in the DHT (docs/discovery.md §4.1), so
   * it outlives this machine. Connected holders only; a failure is a warning, never a failed publish.
   */
  private async handOverPointer (holders: Buffer[]): Promise<void> {
    const item = this.opts.discovery.signedPointer()
    if (item === null) return
    const failed: string[] = []
    await Promise.all(holders.map(async (h) => {
      const peer = this.opts.net.peer(h)
      if (peer === undefined || !peer.isOpen) return
      await peer.keepPointer(item, { timeoutMs: 30_000, signal: this.abort.signal }).catch((err: Error) => { failed.push(`${h.toString('hex').slice(0, 8)}: ${err.message}`) })
    }))
    if (failed.length > 0 && !this.closed) this.emit('warning', new AgentError(AgentCodes.INDEX_FAILED, `${failed.length} of ${holders.length} index root holders did not take the DHT pointer to keep (${failed.join('; ')})`))
  }

  private async dropCopies (shard: string, holders: string[], keep: Set<string>): Promise<void> {
    if (keep.has(shard)) return
    for (const h of holders) {
      const peer = this.opts.net.peer(Buffer.from(h, 'hex'))
      if (peer === undefined || !peer.isOpen) continue
      await peer.delete([Buffer.from(shard, 'hex')], { timeoutMs: 30_000 }).catch(() => {})
    }
  }

  private async loadState (): Promise<RootState | null> {
    const file = join(this.opts.home, ROOT_STATE_FILE)
    try {
      const st = await fsp.stat(file)
      if (st.size > MAX_STATE_BYTES) throw new Error(`over ${MAX_STATE_BYTES} bytes`)
      const j = JSON.parse(await fsp.readFile(file, 'utf8')) as Partial<RootState> & { format?: number }
      const hex = (s: unknown, n: number): boolean => typeof s === 'string' && s.length === n && /^[0-9a-f]*$/.test(s)
      if (j.format !== 1 || !Number.isSafeInteger(j.seq) || (j.seq as number) < 1 || !hex(j.hash, 64) || !hex(j.shard, 64) ||
        !Array.isArray(j.holders) || !j.holders.every(h => hex(h, 64))) throw new Error('not a valid root state')
      return { seq: j.seq as number, hash: j.hash as string, shard: j.shard as string, size: Number(j.size ?? 0), holders: j.holders, at: Number(j.at ?? 0), prev: j.prev ?? null }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      this.emit('warning', new AgentError(AgentCodes.CONFIG_INVALID, `${file}: ${(err as Error).message}; the next index root starts above the DHT's`))
      return null
    }
  }

  private async saveState (s: RootState): Promise<void> {
    await writeFileAtomic(join(this.opts.home, ROOT_STATE_FILE), Buffer.from(JSON.stringify({ format: 1, ...s }) + '\n'), { mode: 0o600 })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    if (this.refresh !== null) clearInterval(this.refresh)
    this.abort.abort()
    await this.running?.catch(() => {})
    this.removeAllListeners()
  }
}
