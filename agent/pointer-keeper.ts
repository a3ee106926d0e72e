// PointerKeeper: keeps other owners' BEP 44 pointers alive (docs/discovery.md §4.1). An owner whose
// index root this node holds hands over its signed item (KEEP_POINTER); the keeper checks it (size,
// strict format, signature, key = the owner who sent it, a higher seq than kept, an owner whose
// shards this node stores, at most MAX_KEPT_OWNERS owners), saves it in <home>/kept-pointers.json and
// re-puts it, as signed, every REPUT_MS ±10%, so `dustbox restore` still finds the index after the
// owner's machine is gone. Owners this node no longer holds anything for are dropped. Every refusal
// is a warning (rate limited), never a crash.

import { EventEmitter } from 'node:events'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { REPUT_INTERVAL_MS } from '../dht/discovery.js'
import { decodeSignedItem, MAX_SIGNED_ITEM_BYTES, type SignedItem } from '../dht/pointer.js'
import { NetError, NetCodes, MAX_KEEP_POINTER_BYTES } from '../net/index.js'
import { AgentError, AgentCodes, type AgentCode } from './errors.js'

export const KEPT_POINTERS_FILE = 'kept-pointers.json'
/** Owners whose pointer one node keeps at most. */
export const MAX_KEPT_OWNERS = 1000
/**
 * Largest signed item taken: what KEEP_POINTER carries (1024 bytes). A root pointer of 16 holders
 * encodes to 768 bytes; only a v near BEP 44's limit (MAX_SIGNED_ITEM_BYTES) would not fit.
 */
export const MAX_ITEM_BYTES = Math.min(MAX_SIGNED_ITEM_BYTES, MAX_KEEP_POINTER_BYTES)
/** Re-put every kept item this often (±10%): the owner's own period, within the DHT's ~2 h expiry. */
export const REPUT_MS = REPUT_INTERVAL_MS
/** After a failed re-put, try that item again this soon (±10%). */
export const RETRY_MS = 5 * 60_000
/** At start, items whose re-put is overdue go out this long after ready() (the DHT bootstraps first). */
export const START_DELAY_MS = 30_000
/** Re-puts in flight at once. */
export const REPUT_CONCURRENCY = 4
export const WARNINGS_PER_MINUTE = 20
const JITTER = 0.1
const FORMAT = 1
/** One JSON entry: owner and via (64 hex each), the item in hex, three timestamps, punctuation. */
const MAX_ENTRY_JSON = 2 * MAX_SIGNED_ITEM_BYTES + 400
const MAX_TIMER_MS = 2 ** 31 - 1

export interface PointerKeeperOptions {
  /** The agent's home: kept-pointers.json lives there. */
  readonly home: string
  /**
   * Does this node store shards for this key (hex)? Asked with the owner identity and with the
   * transport key the item came through (the store is keyed by the authenticated peer).
   */
  readonly holds: (keyHex: string) => boolean
  /** Puts a signed item as-is (Discovery.reputItem): true stored, false every node holds it or newer. */
  readonly reput: (item: Buffer) => Promise<boolean>
  readonly maxKeptOwners?: number
  readonly maxItemBytes?: number
  readonly reputMs?: number
  readonly retryMs?: number
  readonly startDelayMs?: number
  readonly concurrency?: number
  readonly warningsPerMinute?: number
  readonly now?: () => number
}

export interface KeptPointer {
  /** The owner (hex of its identity key, = the item's k). */
  readonly owner: string
  /** The transport key (hex) the item last came through. */
  readonly via: string
  readonly seq: number
  /** When the keeper accepted this item (ms). */
  readonly acceptedAt: number
  /** The last re-put some node stored or already held (ms), or null. */
  readonly putAt: number | null
}

interface Entry {
  owner: string
  via: string
  item: Buffer
  seq: number
  acceptedAt: number
  putAt: number | null
  due: number
}

export interface PointerKeeperEvents {
  warning: [e: AgentError]
  kept: [k: { owner: string, seq: number }]
  reput: [r: { owner: string, seq: number, stored: boolean }]
  dropped: [d: { owner: string, why: string }]
}

const HEX64 = /^[0-9a-f]{64}$/

export class PointerKeeper extends EventEmitter<PointerKeeperEvents> {
  private readonly opts: PointerKeeperOptions
  private readonly file: string
  private readonly now: () => number
  private readonly entries = new Map<string, Entry>()
  private timer: NodeJS.Timeout | null = null
  private round: Promise<void> | null = null
  private saveLoop: Promise<void> | null = null
  private dirty = false
  private savedAt = 0
  private readyPromise: Promise<void> | null = null
  private closePromise: Promise<void> | null = null
  private started = false
  private closed = false
  private warnWindow = 0
  private warnCount = 0
  private warnHeld = 0

  constructor (opts: PointerKeeperOptions) {
    super()
    for (const [name, v] of [['maxKeptOwners', opts.maxKeptOwners], ['maxItemBytes', opts.maxItemBytes], ['reputMs', opts.reputMs], ['retryMs', opts.retryMs], ['concurrency', opts.concurrency]] as const) {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw new AgentError(AgentCodes.CONFIG_INVALID, `pointer keeper: ${name} ${v} is not a positive integer`)
    }
    if (opts.startDelayMs !== undefined && (!Number.isSafeInteger(opts.startDelayMs) || opts.startDelayMs < 0)) throw new AgentError(AgentCodes.CONFIG_INVALID, `pointer keeper: startDelayMs ${opts.startDelayMs} is not a non-negative integer`)
    this.opts = opts
    this.file = join(opts.home, KEPT_POINTERS_FILE)
    this.now = opts.now ?? Date.now
  }

  private get maxOwners (): number { return this.opts.maxKeptOwners ?? MAX_KEPT_OWNERS }
  private get maxBytes (): number { return this.opts.maxItemBytes ?? MAX_ITEM_BYTES }
  private get reputMs (): number { return this.opts.reputMs ?? REPUT_MS }
  private get retryMs (): number { return Math.min(this.opts.retryMs ?? RETRY_MS, this.reputMs) }

  /** Loads kept-pointers.json (a bad file or entry is a warning) and starts the re-put timer. */
  async ready (): Promise<void> {
    this.readyPromise ??= (async () => {
      await this.load()
      if (this.closed) return
      this.started = true
      const first = this.now() + (this.opts.startDelayMs ?? START_DELAY_MS)
      for (const e of this.entries.values()) e.due = Math.max(e.due, first)
      this.schedule()
    })()
    return await this.readyPromise
  }

  /** The items kept, by owner. */
  list (): KeptPointer[] {
    return [...this.entries.values()].map(e => ({ owner: e.owner, via: e.via, seq: e.seq, acceptedAt: e.acceptedAt, putAt: e.putAt }))
  }

  /** The kept signed item of an owner (encodeSignedItem's bytes), or null. */
  item (ownerHex: string): Buffer | null {
    const e = this.entries.get(ownerHex)
    return e === undefined ? null : Buffer.from(e.item)
  }

  get size (): number { return this.entries.size }

  /**
   * An owner's signed item, handed over through KEEP_POINTER by the peer `transportHex` proving owner
   * `ownerHex`. Resolves true when it is kept (and saved), or is the very item kept already; false
   * when refused, with a warning saying why. Never throws.
   */
  async accept (ownerHex: string, transportHex: string, item: Uint8Array): Promise<boolean> {
    return (await this.admit(ownerHex, transportHex, item)) === null
  }

  /**
   * The NetNode's onKeepPointer: accept() for the requesting peer (its owner identity and transport
   * key); a refusal is answered to the owner as REFUSED (TOO_LARGE for an oversized item) saying why.
   */
  async onKeepPointer (peer: { readonly owner: Buffer, readonly key: Buffer }, item: Buffer): Promise<void> {
    const refused = await this.admit(peer.owner.toString('hex'), peer.key.toString('hex'), item)
    if (refused !== null) throw new NetError(refused.code === 'TOO_LARGE' ? NetCodes.TOO_LARGE : NetCodes.REFUSED, refused.why)
  }

  /** null: kept; else why not (after a warning). */
  private async admit (ownerHex: string, transportHex: string, item: Uint8Array): Promise<{ code: 'TOO_LARGE' | 'REFUSED', why: string } | null> {
    if (this.closed) return { code: 'REFUSED', why: 'the pointer keeper is closed' }
    const refuse = (code: AgentCode, why: string, wire: 'TOO_LARGE' | 'REFUSED' = 'REFUSED'): { code: 'TOO_LARGE' | 'REFUSED', why: string } => {
      this.warn(new AgentError(code, `refused the DHT pointer from ${short(transportHex)} for owner ${short(ownerHex)}: ${why}`))
      return { code: wire, why }
    }
    if (typeof ownerHex !== 'string' || !HEX64.test(ownerHex) || typeof transportHex !== 'string' || !HEX64.test(transportHex)) {
      return refuse(AgentCodes.BAD_PARAMS, 'owner and transport keys must be 64 lowercase hex digits')
    }
    if (!(item instanceof Uint8Array)) return refuse(AgentCodes.INDEX_INVALID, 'the item is not bytes')
    if (item.byteLength > this.maxBytes) return refuse(AgentCodes.INDEX_INVALID, `the item is ${item.byteLength} bytes, more than the ${this.maxBytes} kept`, 'TOO_LARGE')
    let it: SignedItem
    try {
      it = decodeSignedItem(item, { maxBytes: this.maxBytes })
    } catch (err) {
      return refuse(AgentCodes.INDEX_INVALID, (err as Error).message)
    }
    if (it.k.toString('hex') !== ownerHex) return refuse(AgentCodes.INDEX_INVALID, `it is signed by key ${short(it.k.toString('hex'))}, not by the owner who sent it`)
    if (!this.held(ownerHex, transportHex)) return refuse(AgentCodes.BAD_PARAMS, 'this node stores no shards for that owner')
    const old = this.entries.get(ownerHex)
    const bytes = Buffer.from(item)
    if (old !== undefined) {
      if (it.seq < old.seq) return refuse(AgentCodes.INDEX_STALE, `its seq ${it.seq} is older than the seq ${old.seq} kept`)
      if (it.seq === old.seq) {
        if (old.item.equals(bytes)) return null
        return refuse(AgentCodes.INDEX_STALE, `another item with the same seq ${it.seq} is kept already`)
      }
    } else if (this.entries.size >= this.maxOwners) {
      return refuse(AgentCodes.BAD_PARAMS, `this node keeps the pointers of ${this.maxOwners} owners already`)
    }
    const now = this.now()
    // The owner has just put it: the first re-put is one period away.
    this.entries.set(ownerHex, { owner: ownerHex, via: transportHex, item: bytes, seq: it.seq, acceptedAt: now, putAt: null, due: now + jitter(this.reputMs) })
    this.emit('kept', { owner: ownerHex, seq: it.seq })
    try {
      await this.save()
    } catch (err) {
      if (!this.closed) this.warn(new AgentError(AgentCodes.INTERNAL, `kept the DHT pointer of ${short(ownerHex)} seq ${it.seq} in memory, but could not save ${this.file}: ${(err as Error).message}`))
    }
    this.schedule()
    return null
  }

  /** Forgets an owner's item (the agent stopped holding its shards). */
  async drop (ownerHex: string, why = 'dropped'): Promise<void> {
    if (this.closed || !this.entries.delete(ownerHex)) return
    this.emit('dropped', { owner: ownerHex, why })
    await this.save()
  }

  /** Re-puts every item due now (tests: every item, `all`). Drops owners no longer held first. */
  async reputNow (all = false): Promise<void> {
    if (this.closed) return
    if (this.round !== null) { await this.round; if (!all) return }
    const run = this.runRound(all)
    this.round = run
    try { await run } finally { if (this.round === run) this.round = null; this.schedule() }
  }

  private held (ownerHex: string, via: string): boolean {
    try {
      return this.opts.holds(ownerHex) || (via !== ownerHex && this.opts.holds(via))
    } catch (err) {
      this.warn(new AgentError(AgentCodes.INTERNAL, `pointer keeper: asking the store about ${short(ownerHex)}: ${(err as Error).message}`))
      return true // unknown: keep it, ask again next round
    }
  }

  private async runRound (all: boolean): Promise<void> {
    const now = this.now()
    let dropped = false
    for (const e of [...this.entries.values()]) {
      if (!this.held(e.owner, e.via)) {
        this.entries.delete(e.owner)
        dropped = true
        this.emit('dropped', { owner: e.owner, why: 'no shards of this owner are held any more' })
      }
    }
    // Items coming due within the jitter window go now too: one round (and timer) for many owners.
    const horizon = now + Math.round(this.reputMs * JITTER)
    const due = [...this.entries.values()].filter(e => all || e.due <= horizon).sort((a, b) => a.due - b.due)
    let next = 0
    const worker = async (): Promise<void> => {
      while (!this.closed && next < due.length) {
        const e = due[next++]
        try {
          const stored = await this.opts.reput(e.item)
          if (this.entries.get(e.owner) !== e) continue // replaced or dropped meanwhile
          e.putAt = this.now()
          e.due = this.now() + jitter(this.reputMs)
          this.emit('reput', { owner: e.owner, seq: e.seq, stored })
        } catch (err) {
          if (this.closed) return
          if (this.entries.get(e.owner) === e) e.due = this.now() + jitter(this.retryMs)
          this.warn(new AgentError(AgentCodes.INDEX_FAILED, `re-putting the DHT pointer of owner ${short(e.owner)} (seq ${e.seq}) failed, retrying in ~${Math.ceil(this.retryMs / 1000)} s: ${(err as Error).message}`))
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency ?? REPUT_CONCURRENCY, due.length) }, worker))
    // putAt on disk only moves the first re-put after a restart earlier: saved once a period at most.
    if (!this.closed && (dropped || (due.length > 0 && this.now() - this.savedAt >= this.reputMs))) {
      await this.save().catch((err) => { if (!this.closed) this.warn(new AgentError(AgentCodes.INTERNAL, `could not save ${this.file}: ${(err as Error).message}`)) })
    }
  }

  /** One timer, at the earliest due item. */
  private schedule (): void {
    if (!this.started || this.closed) return
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    if (this.round !== null || this.entries.size === 0) return // the round reschedules when done
    let earliest = Infinity
    for (const e of this.entries.values()) earliest = Math.min(earliest, e.due)
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, earliest - this.now()))
    this.timer = setTimeout(() => {
      this.timer = null
      this.reputNow().catch((err) => { if (!this.closed) this.warn(new AgentError(AgentCodes.INTERNAL, `pointer keeper round: ${(err as Error).message}`)) })
    }, wait)
    this.timer.unref()
  }

  // ---- the file ----

  private async load (): Promise<void> {
    const maxFile = this.maxOwners * MAX_ENTRY_JSON + 1024
    let text: string
    try {
      const fh = await fsp.open(this.file, 'r')
      try {
        const { size } = await fh.stat()
        if (size > maxFile) throw new Error(`it is ${size} bytes, more than the ${maxFile} it may take`)
        text = await fh.readFile('utf8')
      } finally { await fh.close() }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      this.warn(new AgentError(AgentCodes.CONFIG_INVALID, `${this.file}: ${(err as Error).message}; keeping no pointers until owners hand them over again`))
      return
    }
    let doc: any
    try { doc = JSON.parse(text) } catch { doc = undefined }
    if (typeof doc !== 'object' || doc === null || doc.format !== FORMAT || !Array.isArray(doc.owners)) {
      this.warn(new AgentError(AgentCodes.CONFIG_INVALID, `${this.file} is not a format ${FORMAT} list of kept pointers; keeping no pointers until owners hand them over again`))
      return
    }
    let skipped = Math.max(0, doc.owners.length - this.maxOwners)
    const now = this.now()
    for (const o of doc.owners.slice(0, this.maxOwners)) {
      const e = this.parseEntry(o, now)
      if (e === null || this.entries.has(e.owner)) { skipped++; continue }
      this.entries.set(e.owner, e)
    }
    if (skipped > 0) this.warn(new AgentError(AgentCodes.CONFIG_INVALID, `${this.file}: skipped ${skipped} bad or surplus entries`))
  }

  private parseEntry (o: any, now: number): Entry | null {
    if (typeof o !== 'object' || o === null) return null
    if (typeof o.owner !== 'string' || !HEX64.test(o.owner) || typeof o.via !== 'string' || !HEX64.test(o.via)) return null
    if (typeof o.item !== 'string' || o.item.length > 2 * this.maxBytes || !/^([0-9a-f]{2})+$/.test(o.item)) return null
    const time = (t: unknown): boolean => Number.isSafeInteger(t) && (t as number) >= 0
    if (!time(o.acceptedAt) || (o.putAt !== null && !time(o.putAt))) return null
    const item = Buffer.from(o.item, 'hex')
    let it: SignedItem
    try { it = decodeSignedItem(item, { maxBytes: this.maxBytes }) } catch { return null }
    if (it.k.toString('hex') !== o.owner) return null
    const last = Math.min(now, o.putAt ?? o.acceptedAt)
    return { owner: o.owner, via: o.via, item, seq: it.seq, acceptedAt: o.acceptedAt, putAt: o.putAt, due: last + jitter(this.reputMs) }
  }

  /** Writes the file (atomically); concurrent calls share one writer that writes the latest state. */
  private async save (): Promise<void> {
    this.dirty = true
    this.saveLoop ??= (async () => {
      try {
        while (this.dirty) {
          this.dirty = false
          const owners = [...this.entries.values()].map(e => ({ owner: e.owner, via: e.via, seq: e.seq, item: e.item.toString('hex'), acceptedAt: e.acceptedAt, putAt: e.putAt }))
          await fsp.mkdir(this.opts.home, { recursive: true, mode: 0o700 })
          await writeFileAtomic(this.file, Buffer.from(JSON.stringify({ format: FORMAT, owners }) + '\n'), { mode: 0o600 })
          this.savedAt = this.now()
        }
      } finally { this.saveLoop = null }
    })()
    return await this.saveLoop
  }

  // ---- warnings ----

  private warn (e: AgentError): void {
    if (this.closed) return
    const now = this.now()
    if (now - this.warnWindow >= 60_000) { this.warnWindow = now; this.warnCount = 0 }
    if (this.warnCount >= (this.opts.warningsPerMinute ?? WARNINGS_PER_MINUTE)) { this.warnHeld++; return }
    this.warnCount++
    if (this.warnHeld > 0) {
      e = new AgentError(e.code, `${e.message.slice(e.code.length + 2)} (and ${this.warnHeld} more pointer warnings held back)`)
      this.warnHeld = 0
    }
    this.emit('warning', e)
  }

  /** Stops the timer; waits for a save in progress. Re-puts in flight finish unobserved. Idempotent. */
  async close (): Promise<void> {
    this.closePromise ??= (async () => {
      this.closed = true
      if (this.timer !== null) clearTimeout(this.timer)
      this.timer = null
      await this.readyPromise?.catch(() => {})
      await this.saveLoop?.catch(() => {})
    })()
    return await this.closePromise
  }
}

function jitter (ms: number): number {
  return Math.round(ms * (1 - JITTER + Math.random() * 2 * JITTER))
}

function short (hex: string): string {
  return typeof hex === 'string' ? hex.slice(0, 8) : '?'
}
