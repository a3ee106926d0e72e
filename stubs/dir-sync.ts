// Coalesced directory fsyncs. Many files stubbed at once each need their directory (and the block
// store's shard directories) made durable; one fsync of a directory covers every entry changed in it
// before that fsync started. A request joins the fsync queued after the running one (which may have
// started before the caller's change), so N concurrent requests cost at most two fsyncs.

import { fsyncDir } from './fsutil.js'

interface Entry {
  running: Promise<void> | null
  queued: Promise<void> | null
}

const ignore = (): void => {}

export class DirSyncer {
  private readonly entries = new Map<string, Entry>()

  /** `fsync` is the directory fsync to run (tests count the calls). */
  constructor (private readonly fsync: (dir: string) => Promise<void> = fsyncDir) {}

  /** Resolves once an fsync of `dir` that started after this call has completed. */
  sync (dir: string): Promise<void> {
    const e = this.entries.get(dir)
    if (e === undefined || e.running === null) return this.start(dir)
    if (e.queued === null) e.queued = e.running.then(ignore, ignore).then(async () => await this.start(dir))
    return e.queued
  }

  private start (dir: string): Promise<void> {
    let e = this.entries.get(dir)
    if (e === undefined) this.entries.set(dir, e = { running: null, queued: null })
    const entry = e
    entry.queued = null
    const p: Promise<void> = this.fsync(dir).finally(() => {
      if (entry.running === p) entry.running = null
      if (entry.running === null && entry.queued === null) this.entries.delete(dir)
    })
    entry.running = p
    return p
  }
}
