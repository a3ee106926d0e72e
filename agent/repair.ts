// Repairer: keeps every placed block at full redundancy with no action from the user
// (docs/audits.md §6, docs/durability.md). A check lists the blocks in use whose good copies (not
// marked bad by an audit or a fetch, not on a lost peer) fell to the repair threshold k + MARGIN
// (at most k+m-1), most at risk first; a repair job fetches k good shards, decodes and verifies the
// block, re-encodes the missing shards and puts each on another peer holding no shard of that block,
// then records the new copies and drops the replaced ones in one transaction. Jobs run
// REPAIR_CONCURRENCY at a time under a byte-rate limit. Copies whose audit answers are used up get
// fresh ones (a new epoch) the same way, at the lowest priority. Checks run at start, every
// REPAIR_CHECK, when a peer is lost, after a failed audit and on `dustbox repair`.
// Crash safety: the index changes only after the new copies are acknowledged; a copy PUT but not
// yet recorded is an orphan (written before the PUT), deleted from its peer when next seen. So a
// restart simply checks again: the work left is whatever the index still shows as missing.

import { EventEmitter } from 'node:events'
import type { NetNode } from '../net/index.js'
import { shardIdOf, shortId } from '../net/index.js'
import { encodeShards } from '../stubs/erasure.js'
import { equalBytes } from '../stubs/crypto.js'
import type { IndexDb, ShardRow } from './index-db.js'
import type { RepairDb, AuditRow, UnrecoverableFile } from './repair-db.js'
import type { PeerMonitor } from './monitor.js'
import type { Placement } from './placement.js'
import type { Fetcher } from './fetcher.js'
import { makeProofs } from './audit-proofs.js'
import { AgentError, AgentCodes, errorLine } from './errors.js'

export const REPAIR_CHECK_MS = 10 * 60_000
/**
 * Repair a block once its good shards are at most k + this (and below k+m). The default repairs at
 * the first lost shard: docs/durability.md shows lazy repair costing orders of magnitude of
 * durability at 12+6 for the traffic it saves.
 */
export const REPAIR_MARGIN = 32
export const REPAIR_CONCURRENCY = 2
/** Bytes per second repair may move (fetched plus sent); 0: no limit. */
export const REPAIR_RATE_BYTES = 32 * 1024 * 1024
/** A block whose repair failed is not tried again before this. */
export const REPAIR_RETRY_MS = 60_000
/** Blocks taken from the index per check. */
export const REPAIR_BATCH = 4096
/** Orphan deletions sent per peer per visit. */
export const ORPHAN_BATCH = 1024

export interface RepairOptions {
  readonly db: IndexDb
  readonly rdb: RepairDb
  readonly net: NetNode
  readonly placement: Placement
  readonly fetcher: Fetcher
  readonly monitor: PeerMonitor
  readonly auditKey: Uint8Array
  readonly checkMs?: number
  readonly margin?: number
  readonly concurrency?: number
  readonly rateBytes?: number
  readonly retryMs?: number
}

export type RepairEventState = 'repairing' | 'repaired' | 'refreshed' | 'failed' | 'unrecoverable'

export interface RepairEvent {
  readonly state: RepairEventState
  readonly block: string
  readonly good: number
  readonly k: number
  readonly m: number
  /** Shards rebuilt (repaired) or still missing (failed). */
  readonly shards?: number
  readonly error?: string
  readonly files?: ReadonlyArray<{ folder: string, rel: string }>
}

export interface RepairStatus {
  readonly queued: number
  readonly active: number
  readonly repaired: number
  readonly refreshed: number
  readonly failed: number
  readonly shardsRebuilt: number
  readonly bytesFetched: number
  readonly bytesSent: number
  readonly lastCheckAt: number | null
  readonly unrecoverable: number
}

interface Job { readonly id: Buffer, readonly priority: number, readonly kind: 'repair' | 'refresh' }

export class Repairer extends EventEmitter<{ event: [e: RepairEvent], warning: [e: AgentError] }> {
  private readonly opts: RepairOptions
  private readonly queue = new Map<string, Job>()
  private readonly active = new Set<string>()
  private readonly activeKind = new Map<string, Job['kind']>()
  private readonly retryAfter = new Map<string, number>()
  private readonly idleWaiters = new Set<() => void>()
  private readonly abort = new AbortController()
  private timer: NodeJS.Timeout | null = null
  private checkPending: NodeJS.Timeout | null = null
  private closed = false
  private bucketAt = Date.now()
  private bucket = 0
  private unrecoverableCount = 0
  /** Copies being PUT by a running repair (peer hex + shard hex): never deleted as orphans meanwhile. */
  private readonly putting = new Set<string>()
  private readonly counts = { repaired: 0, refreshed: 0, failed: 0, shardsRebuilt: 0, bytesFetched: 0, bytesSent: 0 }
  lastCheckAt: number | null = null

  constructor (opts: RepairOptions) {
    super()
    this.opts = opts
    opts.monitor.on('state', e => { if (e.state === 'lost') this.soon() })
    opts.net.on('peer', p => { void this.cleanOrphans(p.key).catch(() => {}) })
  }

  start (): void {
    if (this.closed || this.timer !== null) return
    this.timer = setInterval(() => { try { this.check() } catch (err) { this.warn(err) } }, this.opts.checkMs ?? REPAIR_CHECK_MS)
    this.timer.unref()
    this.soon()
  }

  private warn (err: unknown): void {
    this.emit('warning', err instanceof AgentError ? err : new AgentError(AgentCodes.INTERNAL, errorLine(err)))
  }

  /** A check shortly (coalesces bursts of audit failures and lost peers). */
  soon (): void {
    if (this.closed || this.checkPending !== null) return
    this.checkPending = setTimeout(() => { this.checkPending = null; try { this.check() } catch (err) { this.warn(err) } }, 200)
    this.checkPending.unref()
  }

  /** Look at the index now and queue what needs repair (most at risk first) or fresh audit answers. */
  check (): { queued: number, unrecoverable: number } {
    if (this.closed) return { queued: 0, unrecoverable: 0 }
    const { rdb } = this.opts
    const now = Date.now()
    this.lastCheckAt = now
    for (const c of rdb.toRepair(this.opts.margin ?? REPAIR_MARGIN, REPAIR_BATCH)) {
      const hex = c.id.toString('hex')
      if (this.active.has(hex) || (this.retryAfter.get(hex) ?? 0) > now) continue
      this.queue.set(hex, { id: c.id, priority: c.good - c.k, kind: 'repair' })
    }
    if (this.queue.size < REPAIR_BATCH) {
      for (const id of rdb.toRefresh(REPAIR_BATCH - this.queue.size)) {
        const hex = id.toString('hex')
        if (this.active.has(hex) || this.queue.has(hex) || (this.retryAfter.get(hex) ?? 0) > now) continue
        this.queue.set(hex, { id, priority: 1000, kind: 'refresh' })
      }
    }
    const lost = rdb.unrecoverable(1)
    this.unrecoverableCount = lost.length === 0 ? 0 : rdb.unrecoverable(100_000).length
    this.pump()
    return { queued: this.queue.size + this.active.size, unrecoverable: this.unrecoverableCount }
  }

  /** Files that cannot be recovered now: a block of theirs has fewer than k good copies anywhere. */
  unrecoverable (limit = 10_000): UnrecoverableFile[] {
    return this.opts.rdb.unrecoverable(limit)
  }

  private pump (): void {
    const limit = this.opts.concurrency ?? REPAIR_CONCURRENCY
    while (!this.closed && this.active.size < limit && this.queue.size > 0) {
      let best: [string, Job] | null = null
      for (const e of this.queue) if (best === null || e[1].priority < best[1].priority) best = e
      const [hex, job] = best!
      this.queue.delete(hex)
      this.active.add(hex)
      this.activeKind.set(hex, job.kind)
      void this.run(job).catch(err => {
        if (this.closed) return
        this.counts.failed++
        this.retryAfter.set(hex, Date.now() + (this.opts.retryMs ?? REPAIR_RETRY_MS))
        const b = this.opts.db.block(job.id)
        this.emit('event', { state: 'failed', block: hex.slice(0, 12), good: this.opts.rdb.goodCount(job.id), k: b?.k ?? 0, m: b?.m ?? 0, error: errorLine(err) })
        this.warn(new AgentError(AgentCodes.REPAIR_FAILED, `block ${hex.slice(0, 12)}: ${errorLine(err)}`))
      }).finally(() => {
        this.active.delete(hex)
        this.pump()
        this.activeKind.delete(hex)
        if (this.repairsLeft() === 0) for (const w of [...this.idleWaiters]) w()
      })
    }
  }

  /** Repair jobs (not proof refreshes) queued or running. */
  private repairsLeft (): number {
    let n = 0
    for (const j of this.queue.values()) if (j.kind === 'repair') n++
    for (const hex of this.active) if (this.activeKind.get(hex) === 'repair') n++
    return n
  }

  /** Resolves when no repair is queued or running (fresh audit answers may still be in the works), or the signal aborts. */
  async idle (signal?: AbortSignal): Promise<void> {
    if (this.repairsLeft() === 0) return
    await new Promise<void>(resolve => {
      const w = (): void => { this.idleWaiters.delete(w); signal?.removeEventListener('abort', w); resolve() }
      this.idleWaiters.add(w)
      signal?.addEventListener('abort', w, { once: true })
    })
  }

  /** Wait for the byte budget (token bucket refilled at rateBytes per second). */
  private async spend (bytes: number): Promise<void> {
    const rate = this.opts.rateBytes ?? REPAIR_RATE_BYTES
    if (rate <= 0) return
    const now = Date.now()
    this.bucket = Math.min(rate, this.bucket + (now - this.bucketAt) * rate / 1000)
    this.bucketAt = now
    this.bucket -= bytes
    if (this.bucket < 0) {
      const wait = Math.min(60_000, Math.ceil(-this.bucket * 1000 / rate))
      await new Promise<void>(resolve => { const t = setTimeout(resolve, wait); t.unref(); this.abort.signal.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true }) })
    }
  }

  private isGood (c: { bad?: string | null, peer: Buffer }): boolean {
    return (c.bad ?? null) === null && !this.opts.monitor.isLost(c.peer.toString('hex'))
  }

  private async run (job: Job): Promise<void> {
    const { db, rdb, placement, fetcher, auditKey } = this.opts
    const signal = this.abort.signal
    const block = db.block(job.id)
    if (block === null) return
    const { k, m } = block
    const hex = job.id.toString('hex')
    const copies = rdb.copies(job.id)
    const good = copies.filter(c => this.isGood(c))
    const goodIdx = new Set(good.map(c => c.idx))
    const missing: number[] = []
    for (let i = 0; i < k + m; i++) if (!goodIdx.has(i)) missing.push(i)
    const stale = good.filter(c => c.proofs === null || c.proofNext * 8 >= c.proofs.byteLength)
    const dropped = (idxDone: Set<number>): AuditRow[] => copies.filter(c => !this.isGood(c) && idxDone.has(c.idx))
    if (goodIdx.size < k) {
      const files = rdb.filesOfBlock(job.id, 20)
      this.emit('event', { state: 'unrecoverable', block: hex.slice(0, 12), good: goodIdx.size, k, m, files })
      return
    }
    if (missing.length === 0 && stale.length === 0) {
      rdb.replaceCopies([], dropped(goodIdx))
      return
    }
    if (missing.length > 0) this.emit('event', { state: 'repairing', block: hex.slice(0, 12), good: goodIdx.size, k, m, shards: missing.length })
    // Only good copies on peers connected now: a repair does not wait on peers that are away.
    const reachable = good.filter(c => this.opts.net.peer(c.peer)?.isOpen === true)
    if (new Set(reachable.map(c => c.idx)).size < k) {
      throw new AgentError(AgentCodes.NOT_ENOUGH_PEERS, `block ${hex.slice(0, 12)}: ${new Set(reachable.map(c => c.idx)).size} of its ${goodIdx.size} good shards are on connected peers, ${k} are needed to rebuild it; waiting for its holders to come back`)
    }
    const out = Buffer.allocUnsafe(block.stored)
    await fetcher.readBlock(job.id, out, {
      signal,
      accept: r => this.isGood(r) && this.opts.net.peer(r.peer)?.isOpen === true,
      onBadCopy: (r, why) => rdb.markBad(r, why)
    })
    this.counts.bytesFetched += Math.ceil(block.stored / k) * k
    await this.spend(Math.ceil(block.stored / k) * k)
    const shards = await encodeShards(out, k, m)
    for (const c of good) {
      if (!equalBytes(shardIdOf(shards[c.idx]), c.shardId)) {
        rdb.markBad(c, 'its id does not match the shard rebuilt from the block')
        throw new AgentError(AgentCodes.REPAIR_FAILED, `block ${hex.slice(0, 12)}: the copy of shard ${c.idx} on ${shortId(c.peer.toString('hex'))} is not the shard the block encodes to`)
      }
    }
    // Fresh audit answers for copies that used theirs up.
    for (const c of stale) {
      const epoch = c.proofs === null ? 0 : c.epoch + 1
      rdb.setProofs(c, makeProofs(auditKey, c.shardId, shards[c.idx], epoch), epoch)
    }
    if (missing.length === 0) { this.counts.refreshed++; this.emit('event', { state: 'refreshed', block: hex.slice(0, 12), good: goodIdx.size, k, m }); return }
    // Each missing shard on a peer holding no shard of this block (its good or lost copies alike), and
    // not where a copy of the same id waits to be deleted as an orphan (a DELETE racing the new PUT
    // would remove the new copy while the index records it).
    const exclude = new Set([...copies.map(c => c.peer.toString('hex')), ...rdb.orphanPeers(missing.map(idx => shardIdOf(shards[idx])))])
    const added: ShardRow[] = []
    const mine: string[] = []
    try {
      await Promise.all(missing.map(async idx => {
        const row = await placement.placeShard(job.id, idx, shards[idx], exclude, {
          signal,
          onAttempt: (peer, shardId) => {
            const key = peer.toString('hex') + shardId.toString('hex')
            this.putting.add(key)
            mine.push(key)
            rdb.addOrphan(peer, shardId)
          }
        })
        if (row === null) return
        added.push(row)
        this.counts.bytesSent += row.size
        await this.spend(row.size)
      }))
    } finally {
      // Record what was placed even when another shard failed (never leave a stored copy unrecorded).
      const done = new Set<number>([...goodIdx, ...added.map(r => r.idx)])
      if (added.length > 0) {
        rdb.replaceCopies(added, dropped(done))
        placement.forget(dropped(done))
      }
      for (const key of mine) this.putting.delete(key)
    }
    const done = new Set<number>([...goodIdx, ...added.map(r => r.idx)])
    placement.forget(dropped(done))
    this.counts.shardsRebuilt += added.length
    const still = missing.length - added.length
    if (still > 0) throw new AgentError(AgentCodes.NOT_ENOUGH_PEERS, `${still} of ${missing.length} missing shards found no peer to take them (each must go to a peer holding no shard of this block)`)
    this.counts.repaired++
    this.emit('event', { state: 'repaired', block: hex.slice(0, 12), good: done.size, k, m, shards: added.length })
  }

  /** Tell a peer to delete the copies no row references any more (replaced, or never recorded). */
  async cleanOrphans (peerKey: Buffer): Promise<number> {
    const { rdb, net } = this.opts
    const hex = peerKey.toString('hex')
    const ids = rdb.orphansOf(peerKey, ORPHAN_BATCH).filter(id => !this.putting.has(hex + id.toString('hex')))
    if (ids.length === 0 || this.closed) return 0
    const peer = net.peer(peerKey)
    if (peer === undefined || !peer.isOpen) return 0
    const r = await peer.delete(ids, { timeoutMs: 30_000 })
    for (const id of ids) rdb.dropOrphan(peerKey, id)
    return r.deleted.filter(Boolean).length
  }

  status (): RepairStatus {
    return { queued: this.queue.size, active: this.active.size, ...this.counts, lastCheckAt: this.lastCheckAt, unrecoverable: this.unrecoverableCount }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    if (this.checkPending !== null) clearTimeout(this.checkPending)
    this.abort.abort()
    this.queue.clear()
    for (const w of [...this.idleWaiters]) w()
    this.removeAllListeners('event')
  }
}
