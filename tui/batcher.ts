// EventBatcher: the dashboard's brake. The agent may publish thousands of events a second (an ingest
// of 20,000 files); the dashboard folds them into one reducer action at most every FLUSH_MS, so it
// redraws at most ~10 times a second however busy the agent is. Progress events of the same file
// within one batch are coalesced (only the newest matters); past BATCH_MAX pending events the
// oldest progress events are dropped and counted (state changes are kept).

import type { DashEvent } from './state.js'

export const FLUSH_MS = 100
export const BATCH_MAX = 10_000

export class EventBatcher {
  private pending: DashEvent[] = []
  /** path → index in `pending` of its progress event. */
  private progress = new Map<string, number>()
  private timer: NodeJS.Timeout | null = null
  private dropped = 0
  private closed = false
  private readonly flushFn: (events: DashEvent[]) => void
  private readonly intervalMs: number
  private readonly max: number
  private readonly now: () => number

  constructor (flush: (events: DashEvent[]) => void, opts: { intervalMs?: number, max?: number, now?: () => number } = {}) {
    this.flushFn = flush
    this.intervalMs = opts.intervalMs ?? FLUSH_MS
    this.max = opts.max ?? BATCH_MAX
    this.now = opts.now ?? Date.now
  }

  push (event: string, data: unknown): void {
    if (this.closed) return
    const ev: DashEvent = { event, data, at: this.now() }
    const d = data as { state?: unknown, path?: unknown } | null
    const isProgress = event === 'file' && d !== null && typeof d === 'object' && (d.state === 'uploading' || d.state === 'hydrating') && typeof d.path === 'string'
    if (isProgress) {
      const i = this.progress.get(d.path as string)
      if (i !== undefined) { this.pending[i] = ev; this.arm(); return }
    } else if (event === 'file' && d !== null && typeof d === 'object' && typeof d.path === 'string') {
      this.progress.delete(d.path) // a state change after the progress: keep both, in order
    }
    if (this.pending.length >= this.max && !this.shed()) { this.dropped++; this.arm(); return }
    if (isProgress) this.progress.set((d as { path: string }).path, this.pending.length)
    this.pending.push(ev)
    this.arm()
  }

  /** Drop every pending progress event to make room; false when there were none. */
  private shed (): boolean {
    const before = this.pending.length
    const keep = new Set<number>()
    this.pending.forEach((_, i) => keep.add(i))
    for (const i of this.progress.values()) keep.delete(i)
    this.pending = this.pending.filter((_, i) => keep.has(i))
    this.dropped += before - this.pending.length
    this.progress.clear()
    return this.pending.length < before
  }

  private arm (): void {
    if (this.timer !== null || this.closed) return
    this.timer = setTimeout(() => { this.timer = null; this.flush() }, this.intervalMs)
  }

  /** Hand over what is pending now. */
  flush (): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    if (this.dropped > 0) {
      this.pending.push({ event: 'dropped', data: { count: this.dropped }, at: this.now() })
      this.dropped = 0
    }
    if (this.pending.length === 0) return
    const batch = this.pending
    this.pending = []
    this.progress.clear()
    this.flushFn(batch)
  }

  close (): void {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.pending = []
    this.progress.clear()
  }
}
