// Settle tracker: holds the paths that changed until they have been quiet and unchanged for the
// settle period, then hands each one over once. One interval timer checks the entries that are due
// (never a timer per path); the number of entries is bounded and the caller learns when it is full.
//
// A path is settled when no event arrived for it for `settleMs` AND either its (size, mtime, ino,
// ctime) did not change between two looks `settleMs` apart, or the kernel's ctime (which every write,
// truncate, rename, chmod or utimes moves forward) says the inode has not changed for `settleMs`.

import { promises as fsp, type Stats } from 'node:fs'
import { performance } from 'node:perf_hooks'

/**
 * Default settle period. 2 s covers the pauses between the writes of ordinary writers (copy tools,
 * browsers flushing downloads, editors' write-fsync-rename-chmod sequences, archive extractors) on a
 * local disk, while a saved file still starts uploading within a few seconds.
 */
export const SETTLE_MS = 2000
/** Default bound on the paths waiting to settle. */
export const MAX_PENDING = 100_000
/** At most this many due entries are looked at per tick; the rest wait for the next tick. */
export const MAX_CHECKS_PER_TICK = 2000
/** lstat calls in flight at once during a tick. */
export const CHECK_CONCURRENCY = 32

export interface Signature { size: number, mtimeMs: number, ino: number, ctimeMs: number }

interface Entry<T> {
  key: string
  data: T
  /** Monotonic time (performance.now()) at which the entry is looked at next. */
  dueAt: number
  /** Bumped by every touch, so a look that raced an event is discarded. */
  gen: number
  /** What the last look saw, or null before the first look. */
  sig: Signature | null
}

export interface SettleOptions<T> {
  settleMs: number
  maxPending: number
  checkIntervalMs: number
  /** Called with the path's lstat once it is settled; null when it vanished, or a non-file (dir, link...). */
  settled: (key: string, data: T, st: Stats | null) => void
  onError: (err: unknown) => void
  /** Called after every tick (the watcher uses it to start rescans once there is room again). */
  afterTick?: () => void
  /** lstat by default; tests may replace it. Resolves null when the path does not exist. */
  probe?: (key: string) => Promise<Stats | null>
}

export function signatureOf (st: Stats): Signature {
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs }
}

function sameSignature (a: Signature, b: Signature): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.ctimeMs === b.ctimeMs
}

/** Whether the kernel says the inode has not changed for `settleMs` (its ctime is that old). */
export function quietByCtime (st: Stats, settleMs: number, nowMs = Date.now()): boolean {
  return st.ctimeMs <= nowMs - settleMs
}

async function lstatOrNull (path: string): Promise<Stats | null> {
  try {
    return await fsp.lstat(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return null
    throw err
  }
}

export class SettleTracker<T> {
  private readonly opts: SettleOptions<T>
  private readonly probe: (key: string) => Promise<Stats | null>
  /** Insertion order is dueAt order: every (re)schedule sets dueAt = now + settleMs and moves the entry last. */
  private readonly entries = new Map<string, Entry<T>>()
  private timer: NodeJS.Timeout | null = null
  private busy = false
  private stopped = false

  constructor (opts: SettleOptions<T>) {
    this.opts = opts
    this.probe = opts.probe ?? lstatOrNull
  }

  get size (): number { return this.entries.size }
  get maxPending (): number { return this.opts.maxPending }
  get full (): boolean { return this.entries.size >= this.opts.maxPending }

  has (key: string): boolean { return this.entries.has(key) }

  /** The data of `key` while it waits (mutable; does not restart its quiet period). */
  get (key: string): T | undefined { return this.entries.get(key)?.data }

  /** The keys and data of everything still waiting (for the snapshot's side file). */
  * pending (): IterableIterator<[string, T]> {
    for (const e of this.entries.values()) yield [e.key, e.data]
  }

  /**
   * An event for `key`: (re)start its quiet period. `merge` combines the data of an entry already
   * waiting with the new data (default: keep the old). Returns false, doing nothing, when the tracker
   * is full and `key` is not already in it.
   */
  touch (key: string, data: T, merge?: (old: T, next: T) => T): boolean {
    const now = performance.now()
    const old = this.entries.get(key)
    if (old !== undefined) {
      this.entries.delete(key)
      old.data = merge !== undefined ? merge(old.data, data) : old.data
      old.dueAt = now + this.opts.settleMs
      old.gen++
      this.entries.set(key, old)
      return true
    }
    // Still accepted after stop(): what arrives while closing goes in the snapshot's side file.
    if (this.full) return false
    this.entries.set(key, { key, data, dueAt: now + this.opts.settleMs, gen: 0, sig: null })
    return true
  }

  delete (key: string): void {
    this.entries.delete(key)
  }

  /** Drop every entry whose data matches (a folder that stops being watched). */
  deleteWhere (pred: (data: T) => boolean): void {
    for (const [k, e] of this.entries) if (pred(e.data)) this.entries.delete(k)
  }

  start (): void {
    if (this.timer !== null || this.stopped) return
    this.timer = setInterval(() => { void this.tick() }, this.opts.checkIntervalMs)
    this.timer.unref()
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** Resolves once there is room for another entry (or the tracker stopped, or `signal` aborted). */
  async waitForRoom (signal?: AbortSignal): Promise<void> {
    while (this.full && !this.stopped && signal?.aborted !== true) {
      await new Promise(resolve => setTimeout(resolve, this.opts.checkIntervalMs))
    }
  }

  /** One pass over the due entries. Public so tests and close() can drive it; never throws. */
  async tick (): Promise<void> {
    if (this.busy || this.stopped) return
    this.busy = true
    try {
      const now = performance.now()
      const due: Array<Entry<T>> = []
      for (const e of this.entries.values()) {
        if (e.dueAt > now || due.length >= MAX_CHECKS_PER_TICK) break
        due.push(e)
      }
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < due.length && !this.stopped) {
          const e = due[next++]
          try {
            await this.check(e)
          } catch (err) {
            this.opts.onError(err)
            // Look again later rather than spin on a path that cannot be looked at.
            this.reschedule(e)
          }
        }
      }
      await Promise.all(Array.from({ length: Math.min(CHECK_CONCURRENCY, due.length) }, worker))
    } catch (err) {
      this.opts.onError(err)
    } finally {
      this.busy = false
    }
    try {
      this.opts.afterTick?.()
    } catch (err) {
      this.opts.onError(err)
    }
  }

  private reschedule (e: Entry<T>): void {
    if (this.entries.get(e.key) !== e) return
    this.entries.delete(e.key)
    e.dueAt = performance.now() + this.opts.settleMs
    this.entries.set(e.key, e)
  }

  private async check (e: Entry<T>): Promise<void> {
    const gen = e.gen
    const st = await this.probe(e.key)
    // An event arrived while we looked, or the entry was dropped: its new schedule stands.
    if (this.stopped || this.entries.get(e.key) !== e || e.gen !== gen) return
    if (st === null || !st.isFile()) {
      this.entries.delete(e.key)
      this.opts.settled(e.key, e.data, st)
      return
    }
    const sig = signatureOf(st)
    if ((e.sig !== null && sameSignature(e.sig, sig)) || quietByCtime(st, this.opts.settleMs)) {
      this.entries.delete(e.key)
      this.opts.settled(e.key, e.data, st)
      return
    }
    e.sig = sig
    this.reschedule(e)
  }
}
