// Activity: what is moving right now, for status and the dashboard. Follows the agent's file events
// to keep the files being uploaded or hydrated (with their progress) and adds up the bytes of
// peer channels that have closed, so that totals in and out never go backwards. Bounded: at most
// MAX_TRANSFERS entries (the oldest are dropped from the view, not from the work).

import type { FileEvent } from './ingest-queue.js'

/** Transfers kept for status; more running at once are still done, only not all listed. */
export const MAX_TRANSFERS = 256

export interface TransferStatus {
  readonly folder: string
  readonly rel: string
  readonly direction: 'up' | 'down'
  readonly size: number
  readonly bytes: number
  readonly startedAt: number
  readonly updatedAt: number
}

export class Activity {
  private readonly transfers = new Map<string, TransferStatus>()
  private closedIn = 0
  private closedOut = 0
  private readonly now: () => number

  constructor (now: () => number = Date.now) {
    this.now = now
  }

  /** Feed one file event. */
  onFile (e: FileEvent): void {
    const key = e.path
    if (e.state === 'uploading' || e.state === 'hydrating') {
      const direction = e.state === 'uploading' ? 'up' : 'down'
      const prev = this.transfers.get(key)
      const t = this.now()
      const startedAt = prev !== undefined && prev.direction === direction ? prev.startedAt : t
      this.transfers.delete(key) // re-insert: the map stays in least-recently-updated order
      this.transfers.set(key, { folder: e.folder, rel: e.rel, direction, size: e.size ?? prev?.size ?? 0, bytes: e.bytes ?? prev?.bytes ?? 0, startedAt, updatedAt: t })
      if (this.transfers.size > MAX_TRANSFERS) this.transfers.delete(this.transfers.keys().next().value as string)
    } else if (e.state !== 'queued') {
      this.transfers.delete(key)
    }
  }

  /** A peer channel closed: keep its byte counts in the totals. */
  onPeerClosed (bytesIn: number, bytesOut: number): void {
    this.closedIn += bytesIn
    this.closedOut += bytesOut
  }

  /** Totals in and out: closed channels plus the open ones given. */
  traffic (open: Iterable<{ bytesIn: number, bytesOut: number }>): { bytesIn: number, bytesOut: number } {
    let bytesIn = this.closedIn
    let bytesOut = this.closedOut
    for (const p of open) { bytesIn += p.bytesIn; bytesOut += p.bytesOut }
    return { bytesIn, bytesOut }
  }

  /** Running transfers, oldest first. */
  list (): TransferStatus[] {
    return [...this.transfers.values()].sort((a, b) => a.startedAt - b.startedAt)
  }
}
