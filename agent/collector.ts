// Collector: versions kept and garbage collected (docs/sync.md §7). Keeps the newest KEEP_VERSIONS
// versions of every file and the versions of deleted files for UNDELETE_MS; a block that no kept
// version (of any device, as synced here) and no index chunk lists is garbage once GC_GRACE_MS has
// passed. Before deleting the copies of a block it placed, this device asks every other device of
// the owner which of those blocks it still needs; all must answer (else nothing is deleted this
// round), and those that do not need them hold them out of their placement until the deletes are
// done. Deletes go only to connected holders, before the hold ends; a copy not deleted by then is
// left where it is (space leaked on that peer, never a copy another device relies on).

import { EventEmitter } from 'node:events'
import type { NetNode } from '../net/index.js'
import type { SyncDb } from './sync-db.js'
import type { DeviceSync } from './sync.js'
import { errorLine } from './errors.js'

export const KEEP_VERSIONS = 10
export const UNDELETE_MS = 30 * 86_400_000
export const GC_GRACE_MS = 3_600_000
export const GC_INTERVAL_MS = 3_600_000
/** Other devices keep collected blocks out of their placement this long. */
export const GC_HOLD_MS = 10 * 60_000
export const GC_BATCH = 1024

export interface CollectorOptions {
  readonly sdb: SyncDb
  readonly sync: DeviceSync
  readonly net: NetNode
  readonly keep?: number
  readonly undeleteMs?: number
  readonly graceMs?: number
  readonly intervalMs?: number
  readonly holdMs?: number
}

export interface GcResult { readonly pruned: number, readonly collected: number, readonly deletedCopies: number, readonly leftCopies: number, readonly neededElsewhere: number, readonly waitingForDevices: boolean }

export class Collector extends EventEmitter<{ warning: [e: Error], done: [r: GcResult] }> {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<GcResult> | null = null
  private closed = false
  last: (GcResult & { at: number }) | null = null

  constructor (private readonly o: CollectorOptions) {
    super()
  }

  start (): void {
    this.timer = setInterval(() => { this.run().catch(err => this.emit('warning', err as Error)) }, this.o.intervalMs ?? GC_INTERVAL_MS)
    this.timer.unref()
  }

  async run (): Promise<GcResult> {
    this.running ??= this.collectOnce().finally(() => { this.running = null })
    return await this.running
  }

  private async collectOnce (): Promise<GcResult> {
    const { sdb } = this.o
    const now = Date.now()
    const pruned = sdb.prune(this.o.keep ?? KEEP_VERSIONS, now - (this.o.undeleteMs ?? UNDELETE_MS))
    let collected = 0
    let deletedCopies = 0
    let leftCopies = 0
    let neededElsewhere = 0
    let waitingForDevices = false
    const garbage = sdb.garbage(Date.now() - (this.o.graceMs ?? GC_GRACE_MS), GC_BATCH)
    // Another device's blocks: only this device's rows go (their manager deletes the copies).
    for (const g of garbage.filter(g => g.remote)) if (sdb.collect(g.id) !== null) collected++
    const mine = garbage.filter(g => !g.remote).map(g => g.id)
    if (mine.length > 0 && !this.closed) {
      const holdUntil = Date.now() + (this.o.holdMs ?? GC_HOLD_MS)
      const needed = await this.o.sync.stillNeeded(mine, holdUntil)
      if (needed === null) {
        waitingForDevices = true
      } else {
        const byPeer = new Map<string, Buffer[]>()
        for (const id of mine) {
          if (needed.has(id.toString('hex'))) { neededElsewhere++; continue }
          const copies = sdb.collect(id)
          if (copies === null) continue
          collected++
          for (const c of copies) {
            const hex = c.peer.toString('hex')
            byPeer.set(hex, [...(byPeer.get(hex) ?? []), c.shardId])
          }
        }
        const peers = new Map(this.o.net.peers().filter(p => p.isOpen).map(p => [p.key.toString('hex'), p]))
        for (const [hex, ids] of byPeer) {
          const p = peers.get(hex)
          if (p === undefined || this.closed) { leftCopies += ids.length; continue }
          for (let i = 0; i < ids.length; i += 512) {
            const batch = ids.slice(i, i + 512)
            // Past the hold, another device may place these ids again: never delete then.
            if (Date.now() >= holdUntil - 5_000) { leftCopies += batch.length; continue }
            try {
              const r = await p.delete(batch, { signal: AbortSignal.timeout(Math.max(1000, holdUntil - 5_000 - Date.now())) })
              deletedCopies += r.deleted.length // deleted, or already gone
            } catch (err) {
              leftCopies += batch.length
              this.emit('warning', new Error(`GC: deleting ${batch.length} copies on peer ${hex.slice(0, 8)} failed: ${errorLine(err)}`))
            }
          }
        }
      }
    }
    const r = { pruned, collected, deletedCopies, leftCopies, neededElsewhere, waitingForDevices }
    this.last = { ...r, at: Date.now() }
    this.emit('done', r)
    return r
  }

  close (): void {
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
  }
}
