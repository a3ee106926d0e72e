// Placement: puts each encrypted block on the network as k+m Reed-Solomon shards on k+m distinct
// storage peers, and records where they went. It picks the least-loaded peers that offer room for
// this owner, keeps the network busy within a byte budget (the backpressure the ingest feels),
// replaces a peer that fails a PUT by another one not already holding a shard of that block, waits
// (saying why) while fewer than k+m peers can take a shard, refuses to take more from the network
// than this node gives plus a grace allowance, and reads a sample back before a file may be stubbed.

import { EventEmitter } from 'node:events'
import { randomInt } from 'node:crypto'
import type { NetNode, Peer } from '../net/index.js'
import { shardIdOf, shortId } from '../net/index.js'
import { encodeShards } from '../stubs/erasure.js'
import { Semaphore } from '../stubs/semaphore.js'
import { equalBytes } from '../stubs/crypto.js'
import { MAX_PEER_OWNERS, type IndexDb, type ShardRow } from './index-db.js'
import { AgentError, AgentCodes } from './errors.js'
import { humanBytes } from './format.js'

/** Devices of one owner counted in its quota (an owner with more is counted for these). */
export const MAX_DEVICES_PER_OWNER = 64
/** Largest donation another device's SPACE answer is taken to say (1 PiB). */
export const MAX_DEVICE_DONATED = 2n ** 50n
/** Bytes of shards being uploaded at once: the ingest waits when the network is this far behind. */
export const UPLOAD_BUDGET_BYTES = 96 * 1024 * 1024
/** Attempts to place one shard (each on a different peer) before the block fails. */
export const PUT_ATTEMPTS = 6
/** Times one shard's PUT follows its peer to a new connection (the one it went on was lost) before that counts as a failed attempt. */
export const PUT_MOVES = 12
/**
 * A PUT whose connection was lost (closed under it, or silent and closed by its idle timeout) waits this
 * long for the peer's new connection before trying another peer: the peer is redialled at once, and a
 * NAT that changed its mapping or a dial race may take a few seconds to settle.
 */
export const REPLACE_WAIT_MS = 10_000
export const PUT_TIMEOUT_MS = 60_000
/** A read-back GET not answered within this is given up, and another shard of the blocks is read instead. */
export const READBACK_TIMEOUT_MS = 10_000
/** Shard rows synced from another device are counted this long after they arrive (one re-read per burst). */
export const RELOAD_DELAY_MS = 2_000
/** Most naps of one shard waiting for a peer to take it (each ends at a peer change or after WAIT_RECHECK_MS). */
export const MAX_NAPS = 10_000
/** A peer that failed a PUT is not chosen again for this long. */
export const PEER_BACKOFF_MS = 30_000
/** How often a placement waiting for peers looks again (it also wakes on any peer change). */
export const WAIT_RECHECK_MS = 2_000
/** Bytes a new owner may take from the network beyond what it gives (docs/agent.md § Fair exchange). */
export const GRACE_BYTES = 1024 * 1024 * 1024
export const SPACE_REFRESH_MS = 60_000

export interface PlacementOptions {
  /** After a hold: drop what the index says about another device's copies of this block (they are gone). */
  readonly forgetRemote?: (id: Uint8Array) => void
  readonly net: NetNode
  readonly db: IndexDb
  readonly k: number
  readonly m: number
  /** What this node donates to others; it takes from the network at most this plus grace. */
  readonly donatedBytes: number
  readonly graceBytes?: number
  readonly uploadBudgetBytes?: number
  readonly putTimeoutMs?: number
  readonly readBackTimeoutMs?: number
  readonly reloadDelayMs?: number
  readonly peerBackoffMs?: number
  readonly waitRecheckMs?: number
  readonly replaceWaitMs?: number
  readonly spaceRefreshMs?: number
  /** May this peer get new shards (the monitor says no for lost and untrusted peers)? */
  readonly accept?: (keyHex: string) => boolean
  /** Does the index hold every shard of this block on a good copy? (default: the block has a row) */
  readonly intact?: (id: Uint8Array) => boolean
  /** Audit answers to record with a new shard copy (docs/audits.md), or null. */
  readonly proofsFor?: (shardId: Buffer, shard: Buffer) => Buffer | null
  /** New copies get their first audit spread over this period. */
  readonly auditPeriodMs?: number
}

interface PeerInfo {
  /** Room this peer says it has for me (quota for me minus what I use), as of its last reply. */
  free: number
  offers: boolean
  spaceAt: number
  backoffUntil: number
  failures: number
  /** Bytes of my shards in flight to it. */
  inflight: number
}

export interface PlacementEvents {
  waiting: [reason: string | null]
  placed: [p: { blockId: Uint8Array, bytes: number }]
  warning: [err: AgentError]
}

export class Placement extends EventEmitter<PlacementEvents> {
  readonly k: number
  readonly m: number
  private readonly net: NetNode
  private readonly db: IndexDb
  private readonly opts: PlacementOptions
  private readonly budget: Semaphore
  private readonly info = new Map<string, PeerInfo>()
  private readonly inflight = new Map<string, Promise<void>>()
  /** Blocks another device of this owner is deleting (garbage collection), by hex: until when. */
  private readonly holds = new Map<string, number>()
  private readonly wakers = new Set<() => void>()
  private pendingBytes = 0
  /** Bytes of my shards in the index, in total and by peer (kept in memory, read once at start). */
  private placedBytes: number
  private readonly onPeer = new Map<string, number>()
  /** Space my own other devices donate (key hex → bytes), from their SPACE answers (kept in the index). */
  private readonly deviceSpace = new Map<string, number>()
  /** Other devices (key hex) of each owner (hex) met, for the fair-exchange quota (takenByOwner). */
  private readonly devicesOf = new Map<string, Set<string>>()
  private waitingReason: string | null = null
  private reloadTimer: NodeJS.Timeout | null = null
  /** Bytes of shards sent to peers since start (new shards only). */
  bytesSent = 0
  shardsSent = 0

  constructor (opts: PlacementOptions) {
    super()
    this.opts = opts
    this.net = opts.net
    this.db = opts.db
    this.k = opts.k
    this.m = opts.m
    this.budget = new Semaphore(opts.uploadBudgetBytes ?? UPLOAD_BUDGET_BYTES)
    this.placedBytes = 0
    this.readTotals()
    for (const r of this.db.peerOwners()) this.noteDevice(r.key.toString('hex'), r.owner.toString('hex'))
    for (const r of this.db.deviceSpace()) this.deviceSpace.set(r.key.toString('hex'), r.donated)
    this.net.on('peer', p => {
      if (!p.owner.equals(p.key)) {
        this.noteDevice(p.key.toString('hex'), p.owner.toString('hex'))
        this.db.notePeerOwner(p.key, p.owner)
      }
      void this.refresh(p).finally(() => this.wake())
    })
    this.net.on('peer-close', () => this.wake())
  }

  /** Why placement cannot go on right now, or null. */
  get reason (): string | null { return this.waitingReason }

  private wake (): void {
    for (const w of [...this.wakers]) w()
  }

  private infoOf (p: Peer): PeerInfo {
    const hex = p.key.toString('hex')
    let i = this.info.get(hex)
    if (i === undefined) {
      i = { free: 0, offers: false, spaceAt: 0, backoffUntil: 0, failures: 0, inflight: 0 }
      this.info.set(hex, i)
    }
    return i
  }

  /** Ask a peer how much room it offers me. */
  async refresh (p: Peer): Promise<void> {
    const i = this.infoOf(p)
    try {
      const s = await p.space({ timeoutMs: 10_000 })
      if (p.isOwnDevice) {
        // What my other device gives counts towards what this owner may take (docs/agent.md § Fair exchange).
        const donated = Number(s.donated > MAX_DEVICE_DONATED ? MAX_DEVICE_DONATED : s.donated)
        if (this.deviceSpace.get(p.key.toString('hex')) !== donated) this.db.noteDeviceSpace(p.key, donated)
        this.deviceSpace.set(p.key.toString('hex'), donated)
      }
      i.free = Math.max(0, Number(s.quotaForYou - s.usedByYou))
      i.offers = s.donated > 0n && s.maxShard > 0
      i.spaceAt = Date.now()
    } catch {
      i.spaceAt = Date.now()
    }
  }

  /** Open peers with room for a shard of `size` bytes, least loaded first. */
  eligible (size: number, exclude: ReadonlySet<string> = new Set()): Peer[] {
    const now = Date.now()
    const out: Array<{ p: Peer, load: number }> = []
    for (const p of this.net.peers()) {
      // The owner's other devices are not storage for it (docs/sync.md §2).
      if (!p.isOpen || p.isOwnDevice) continue
      const hex = p.key.toString('hex')
      if (exclude.has(hex)) continue
      if (this.opts.accept !== undefined && !this.opts.accept(hex)) continue
      const i = this.infoOf(p)
      if (i.spaceAt === 0 || now - i.spaceAt > (this.opts.spaceRefreshMs ?? SPACE_REFRESH_MS)) void this.refresh(p).finally(() => this.wake())
      if (!i.offers || i.backoffUntil > now || i.free - i.inflight < size) continue
      out.push({ p, load: i.inflight + (this.onPeer.get(hex) ?? 0) + randomInt(1024) })
    }
    return out.sort((a, b) => a.load - b.load).map(x => x.p)
  }

  /** `own`: bytes of the asking placement already counted in pendingBytes. */
  private reasonFor (size: number, own: number): string | null {
    const n = this.k + this.m
    const devices = this.devicesDonated
    const limit = this.opts.donatedBytes + devices + (this.opts.graceBytes ?? GRACE_BYTES)
    const taken = this.placedBytes + this.pendingBytes - own
    if (taken + size * n > limit) {
      return `fair exchange: storing ${humanBytes(size * n)} more would take ${humanBytes(taken + size * n)} from peers, more than the ${humanBytes(this.opts.donatedBytes)} this node donates${devices > 0 ? ` plus ${humanBytes(devices)} by this owner's other devices` : ''} plus ${humanBytes(this.opts.graceBytes ?? GRACE_BYTES)} grace; donate more space (--donate)`
    }
    const open = this.net.peers().filter(p => p.isOpen).length
    const ok = this.eligible(size).length
    if (ok < n) return `waiting for peers: ${ok} of ${open} connected peers can take a shard, ${n} are needed for ${this.k}+${this.m} redundancy`
    return null
  }

  private setReason (r: string | null): void {
    if (r === this.waitingReason) return
    this.waitingReason = r
    this.emit('waiting', r)
  }

  /** Sleep until a peer change or one recheck period. */
  private async nap (signal?: AbortSignal): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => { clearTimeout(t); this.wakers.delete(done); signal?.removeEventListener('abort', done); resolve() }
      const t = setTimeout(done, this.opts.waitRecheckMs ?? WAIT_RECHECK_MS)
      this.wakers.add(done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  /** Wait until k+m peers can take a shard of `size` bytes (and fair exchange allows it). */
  private async waitForRoom (size: number, own: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted()
      const r = this.reasonFor(size, own)
      this.setReason(r)
      if (r === null) return
      await this.nap(signal)
    }
  }

  /** The open connection that replaced `peer`'s closed one, waiting up to REPLACE_WAIT_MS for it. */
  private async replacement (peer: Peer, signal?: AbortSignal): Promise<Peer | undefined> {
    const until = Date.now() + (this.opts.replaceWaitMs ?? REPLACE_WAIT_MS)
    for (;;) {
      const p = this.net.peer(peer.key)
      if ((p !== undefined && p !== peer && p.isOpen) || Date.now() >= until || signal?.aborted === true) return p
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }

  /** Another device deletes copies of these blocks until `until` (docs/sync.md §7): do not place them before. */
  hold (ids: readonly Uint8Array[], until: number): void {
    const now = Date.now()
    for (const [h, t] of this.holds) if (t <= now) this.holds.delete(h)
    for (const id of ids) if (this.holds.size < 100_000) this.holds.set(Buffer.from(id).toString('hex'), until)
  }

  /** True while this block is being placed here. */
  placing (id: Uint8Array): boolean {
    return this.inflight.has(Buffer.from(id).toString('hex'))
  }

  /** True when the index already has this block at full redundancy. */
  isPlaced (id: Uint8Array): boolean {
    return this.opts.intact !== undefined ? this.opts.intact(id) : this.db.block(id) !== null
  }

  /**
   * Begin placing one encrypted block: encodes its shards (the caller may reuse `block` once this
   * resolves) and waits for room in the upload budget (the backpressure), then uploads in the
   * background. Resolves with `{ done }`, a promise of the upload (wrapped: an async function
   * would adopt it), settled once all k+m shards are acknowledged and recorded. A block already
   * placed, or being placed, is not placed twice.
   */
  async start (id: Uint8Array, block: Uint8Array, signal?: AbortSignal): Promise<{ done: Promise<void> }> {
    const hex = Buffer.from(id).toString('hex')
    const held = this.holds.get(hex)
    if (held !== undefined) {
      // Another device is deleting this block's copies: wait until it is done, then place it afresh.
      while (Date.now() < held) {
        signal?.throwIfAborted()
        await new Promise(resolve => setTimeout(resolve, Math.min(1000, held - Date.now())))
      }
      this.holds.delete(hex)
      this.opts.forgetRemote?.(id)
    }
    if (this.isPlaced(id)) return { done: Promise.resolve() }
    const running = this.inflight.get(hex)
    if (running !== undefined) return { done: running }
    let settle!: (p: Promise<void>) => void
    const upload = new Promise<void>(resolve => { settle = resolve as (p: Promise<void>) => void }).finally(() => this.inflight.delete(hex))
    upload.catch(() => {}) // the caller awaits it; a failure must not count as unhandled meanwhile
    this.inflight.set(hex, upload)
    let total = 0
    let taken = 0
    try {
      const shards = await encodeShards(block, this.k, this.m)
      total = shards[0].byteLength * shards.length
      this.pendingBytes += total
      taken = await this.budget.acquire(total)
      const stored = block.byteLength
      settle(this.upload(id, stored, shards, total, signal).finally(() => {
        this.budget.release(taken)
        this.pendingBytes -= total
      }))
    } catch (err) {
      if (taken > 0) this.budget.release(taken)
      this.pendingBytes -= total
      settle(Promise.reject(err))
    }
    return { done: upload }
  }

  /** Place one encrypted block and wait until it is placed. */
  async place (id: Uint8Array, block: Uint8Array, signal?: AbortSignal): Promise<void> {
    await (await this.start(id, block, signal)).done
  }

  private async upload (id: Uint8Array, stored: number, shards: Buffer[], total: number, signal?: AbortSignal): Promise<void> {
    const size = shards[0].byteLength
    const n = shards.length
    let chosen: Peer[] = []
    // Peers may go away between the wait and the choice: wait again (bounded by the caller's signal).
    while (chosen.length < n) {
      await this.waitForRoom(size, total, signal)
      chosen = this.eligible(size).slice(0, n)
    }
    const used = new Set<string>()
    for (const p of chosen) used.add(p.key.toString('hex'))
    const rows = await Promise.all(shards.map(async (shard, idx) => this.withProofs(await this.putShard(id, idx, shard, chosen[idx], used, signal), shard)))
    this.db.addPlacement({ id, stored, k: this.k, m: this.m }, rows)
    for (const r of rows) {
      const hex = r.peer.toString('hex')
      this.onPeer.set(hex, (this.onPeer.get(hex) ?? 0) + r.size)
      this.placedBytes += r.size
    }
    this.emit('placed', { blockId: id, bytes: total })
  }

  /** The row with its audit answers and a first audit time spread over the audit period. */
  private withProofs (row: ShardRow, shard: Buffer): ShardRow {
    const proofs = this.opts.proofsFor?.(row.shardId, shard) ?? null
    const period = this.opts.auditPeriodMs ?? 0
    return { ...row, proofs, auditedAt: Date.now() - (period > 1 ? randomInt(Math.min(period, 2 ** 47)) : 0) }
  }

  /**
   * Put one shard of a block on one more peer, not one of `exclude` (the peers holding any shard
   * of this block; the chosen one is added), for repair. `onAttempt` runs before each PUT (the
   * caller records the copy as an orphan until its row is written). Null when no peer can take it.
   */
  async placeShard (blockId: Uint8Array, idx: number, shard: Buffer, exclude: Set<string>, opts: { signal?: AbortSignal, onAttempt?: (peer: Buffer, shardId: Buffer) => void } = {}): Promise<ShardRow | null> {
    const first = this.eligible(shard.byteLength, exclude)[0]
    if (first === undefined) return null
    exclude.add(first.key.toString('hex'))
    const row = await this.putShard(blockId, idx, shard, first, exclude, opts.signal, opts.onAttempt)
    this.onPeer.set(row.peer.toString('hex'), (this.onPeer.get(row.peer.toString('hex')) ?? 0) + row.size)
    this.placedBytes += row.size
    return this.withProofs(row, shard)
  }

  private async putShard (blockId: Uint8Array, idx: number, shard: Buffer, first: Peer, used: Set<string>, signal?: AbortSignal, onAttempt?: (peer: Buffer, shardId: Buffer) => void): Promise<ShardRow> {
    const shardId = shardIdOf(shard)
    let peer: Peer | undefined = first
    let lastError: unknown = null
    // Attempts count the peers that failed a PUT; a PUT that follows its peer to a new connection
    // (the old one lost under it) counts apart, as a move. Between attempts a shard with no peer to go
    // to waits (naps) until a peer that failed is out of its backoff, and a little more, then gives
    // up: bounded in count and time.
    let attempt = 0
    let moves = 0
    let naps = 0
    let waitUntil = 0
    while (attempt < PUT_ATTEMPTS && naps < MAX_NAPS) {
      signal?.throwIfAborted()
      if (peer === undefined) {
        if (Date.now() >= waitUntil) break
        naps++
        await this.nap(signal)
        peer = this.eligible(shard.byteLength, used)[0]
        if (peer === undefined) continue
        used.add(peer.key.toString('hex'))
      }
      const i = this.infoOf(peer)
      i.inflight += shard.byteLength
      try {
        onAttempt?.(peer.key, shardId)
        const r = await peer.put(shardId, shard, { timeoutMs: this.opts.putTimeoutMs ?? PUT_TIMEOUT_MS, signal })
        i.free = Math.max(0, Number(r.quotaForYou - r.usedByYou))
        i.failures = 0
        if (r.stored) { this.bytesSent += shard.byteLength; this.shardsSent++ }
        return { blockId: Buffer.from(blockId), idx, shardId, peer: peer.key, size: shard.byteLength }
      } catch (err) {
        if (signal?.aborted === true) throw err
        lastError = err
        const hex = peer.key.toString('hex')
        // The connection was replaced (both sides dialled at once, or a redial): same peer, new
        // connection. A connection lost under the PUT (closed, reset, or found stale: a NAT that
        // changed its mapping) gets a moment for its replacement to open; the PUT goes on there.
        const lost: boolean = (err as { code?: string }).code === 'CLOSED' || !peer.isOpen
        const replaced: Peer | undefined = lost ? await this.replacement(peer, signal) : this.net.peer(peer.key)
        if (replaced !== undefined && replaced !== peer && replaced.isOpen && moves < PUT_MOVES) {
          moves++
          peer = replaced
          continue
        }
        attempt++
        // It holds no shard of this block: it may be chosen again for this one once its backoff ends.
        used.delete(hex)
        i.failures++
        i.backoffUntil = Date.now() + (this.opts.peerBackoffMs ?? PEER_BACKOFF_MS)
        waitUntil = i.backoffUntil + 2 * (this.opts.waitRecheckMs ?? WAIT_RECHECK_MS)
        this.emit('warning', new AgentError(AgentCodes.PLACEMENT_FAILED, `peer ${shortId(peer.id)} refused shard ${idx} of block ${Buffer.from(blockId).toString('hex').slice(0, 12)}: ${(err as Error).message}`))
        peer = undefined
      } finally {
        i.inflight -= shard.byteLength
      }
    }
    throw new AgentError(AgentCodes.PLACEMENT_FAILED, `shard ${idx} of block ${Buffer.from(blockId).toString('hex').slice(0, 12)} could not be placed (${attempt} peers failed, ${moves} lost connections followed): ${(lastError as Error | null)?.message ?? 'no peer'}`, { cause: lastError })
  }

  /**
   * Read one random shard of one of these blocks back from the peer holding it and check its
   * bytes hash to its id; another shard is tried when a peer does not answer within
   * READBACK_TIMEOUT_MS (a peer that acknowledges PUTs and never serves a GET held a file's stub
   * back by the 60 s PUT timeout).
   */
  async readBack (blockIds: readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
    if (blockIds.length === 0) return
    const blockId = blockIds[randomInt(blockIds.length)]
    const rows = this.db.shards(blockId)
    if (rows.length === 0) throw new AgentError(AgentCodes.PLACEMENT_FAILED, `block ${Buffer.from(blockId).toString('hex').slice(0, 12)} has no shards in the index`)
    const start = randomInt(rows.length)
    let lastError: unknown = null
    for (let j = 0; j < rows.length; j++) {
      signal?.throwIfAborted()
      const row = rows[(start + j) % rows.length]
      const peer = this.net.peer(row.peer)
      if (peer === undefined || !peer.isOpen) { lastError = new Error('peer not connected'); continue }
      try {
        const data = await peer.get(row.shardId, { timeoutMs: this.opts.readBackTimeoutMs ?? READBACK_TIMEOUT_MS, signal })
        if (!equalBytes(shardIdOf(data), row.shardId)) throw new Error('the bytes read back do not hash to the shard id')
        return
      } catch (err) {
        if (signal?.aborted === true) throw err
        lastError = err
      }
    }
    throw new AgentError(AgentCodes.PLACEMENT_FAILED, `read-back of block ${Buffer.from(blockId).toString('hex').slice(0, 12)} failed: ${(lastError as Error | null)?.message ?? 'no shard'}`)
  }

  /** Copies dropped from the index (replaced by a repair): no longer counted as taken. */
  forget (rows: ReadonlyArray<{ peer: Buffer, size: number }>): void {
    for (const r of rows) {
      const hex = r.peer.toString('hex')
      this.onPeer.set(hex, Math.max(0, (this.onPeer.get(hex) ?? 0) - r.size))
      this.placedBytes = Math.max(0, this.placedBytes - r.size)
    }
  }

  /** What this node takes from the network (bytes of its shards on peers), in total and on one peer. */
  get taken (): number { return this.placedBytes }
  takenOn (keyHex: string): number { return this.onPeer.get(keyHex) ?? 0 }

  /** Space this owner's other devices donate, as they last said. */
  get devicesDonated (): number {
    let n = 0
    for (const v of this.deviceSpace.values()) n += v
    return n
  }

  /**
   * What I placed on all of an owner's devices: its identity's key (a first device) and every key
   * it certified that I met. The fair-exchange quota I grant that owner (docs/agent.md §
   * Fair exchange): all its devices share one namespace on my store, so all of them count.
   */
  takenByOwner (ownerHex: string): number {
    let n = this.takenOn(ownerHex)
    for (const d of this.devicesOf.get(ownerHex) ?? []) n += this.takenOn(d)
    return n
  }

  private noteDevice (deviceHex: string, ownerHex: string): void {
    for (const [o, set] of this.devicesOf) if (o !== ownerHex && set.delete(deviceHex) && set.size === 0) this.devicesOf.delete(o)
    let set = this.devicesOf.get(ownerHex)
    if (set === undefined) {
      if (this.devicesOf.size >= MAX_PEER_OWNERS) return
      set = new Set()
      this.devicesOf.set(ownerHex, set)
    }
    if (set.size < MAX_DEVICES_PER_OWNER) set.add(deviceHex)
  }

  peerInfo (): Map<string, Readonly<PeerInfo>> {
    return this.info
  }

  /**
   * Re-read the bytes per peer from the index within RELOAD_DELAY_MS (once for a burst): another
   * device's records bring shard rows this placement did not write, and they count in what this
   * owner takes and in the quota this node grants (takenByOwner).
   */
  reloadSoon (): void {
    if (this.reloadTimer !== null) return
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null
      try { this.readTotals() } catch (err) { this.emit('warning', new AgentError(AgentCodes.INDEX_FAILED, `placement totals not re-read: ${(err as Error).message}`)) }
    }, this.opts.reloadDelayMs ?? RELOAD_DELAY_MS)
    this.reloadTimer.unref()
  }

  /** Bytes of my shards per peer and in total, from the index. */
  private readTotals (): void {
    const rows = this.db.shardsPerPeer()
    this.onPeer.clear()
    this.placedBytes = 0
    for (const r of rows) {
      this.onPeer.set(r.peer.toString('hex'), r.bytes)
      this.placedBytes += r.bytes
    }
  }

  close (): void {
    if (this.reloadTimer !== null) clearTimeout(this.reloadTimer)
    this.reloadTimer = null
    this.wake()
    this.removeAllListeners('waiting')
  }
}
