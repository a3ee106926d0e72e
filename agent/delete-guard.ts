// DeleteGuard: local deletions wait a moment and are counted per folder before they become
// deletions that other devices apply (docs/sync.md §6). When more than MASS_DELETE_SHARE of a
// folder's files (and at least MASS_DELETE_MIN of them) go at once — an unplugged drive, a mistaken
// `rm -r` — they are held instead, shown in status and the dashboard, until the user confirms them
// (`dustbox sync confirm`) or brings the files back as stubs (`dustbox sync revert`).

import { EventEmitter } from 'node:events'
import type { SyncDb } from './sync-db.js'

/** Deletions closer together than this count as one batch. */
export const DELETE_SETTLE_MS = 2_000
/** A batch deleting more than this share of a folder's files is held... */
export const MASS_DELETE_SHARE = 0.5
/** ...when it has at least this many files. */
export const MASS_DELETE_MIN = 10

export interface DeleteGuardOptions {
  readonly sdb: SyncDb
  /** A deletion goes through: tombstone it and tell the other devices. */
  readonly commit: (fileId: number) => void
  /** Checked when the batch is counted: the file and its stub are still both gone (not a rename by the agent itself). */
  readonly stillGone: (fileId: number) => Promise<boolean>
  readonly settleMs?: number
  readonly share?: number
  readonly min?: number
}

export interface HeldFolder { readonly folder: string, readonly files: number, readonly of: number, readonly since: number }

export interface DeleteGuardEvents {
  held: [h: HeldFolder]
  warning: [e: Error]
}

export class DeleteGuard extends EventEmitter<DeleteGuardEvents> {
  private readonly pending = new Map<string, { ids: Set<number>, before: number, timer: NodeJS.Timeout }>()
  private closed = false

  constructor (private readonly o: DeleteGuardOptions) {
    super()
  }

  /** A file of `folder` was deleted here (neither it nor its stub is on disk any more). */
  add (folder: string, fileId: number): void {
    if (this.closed) return
    let p = this.pending.get(folder)
    if (p === undefined) {
      // The folder's size before this batch: what the share is measured against.
      p = { ids: new Set(), before: this.o.sdb.liveCount(folder), timer: null as unknown as NodeJS.Timeout }
      this.pending.set(folder, p)
    } else {
      clearTimeout(p.timer)
    }
    p.ids.add(fileId)
    p.timer = setTimeout(() => this.flush(folder), this.o.settleMs ?? DELETE_SETTLE_MS)
    p.timer.unref()
  }

  private flush (folder: string): void {
    const p = this.pending.get(folder)
    if (p === undefined) return
    this.pending.delete(folder)
    this.count(folder, p.ids, p.before).catch(err => this.emit('warning', err as Error))
  }

  private async count (folder: string, batch: ReadonlySet<number>, before: number): Promise<void> {
    const ids: number[] = []
    for (const id of batch) if (await this.o.stillGone(id)) ids.push(id)
    if (this.closed) return
    const n = ids.length
    const of = Math.max(before, n)
    if (n >= (this.o.min ?? MASS_DELETE_MIN) && n > (this.o.share ?? MASS_DELETE_SHARE) * of) {
      for (const id of ids) this.o.sdb.hold(id)
      this.emit('held', { folder, files: n, of, since: Date.now() })
      return
    }
    for (const id of ids) this.o.commit(id)
  }

  /** Deletions held, by folder. */
  held (): HeldFolder[] {
    const by = new Map<string, { files: number, since: number }>()
    for (const h of this.o.sdb.held()) {
      const b = by.get(h.folder) ?? { files: 0, since: h.heldAt }
      b.files++
      b.since = Math.min(b.since, h.heldAt)
      by.set(h.folder, b)
    }
    return [...by].map(([folder, b]) => ({ folder, files: b.files, of: Math.max(b.files, this.o.sdb.liveCount(folder)), since: b.since }))
  }

  close (): void {
    this.closed = true
    for (const p of this.pending.values()) clearTimeout(p.timer)
    this.pending.clear()
  }
}
