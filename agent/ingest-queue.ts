// IngestQueue: turns "this file is new or changed and has settled" into a placed version and a
// stub. A bounded queue (one entry per path, at most MAX_QUEUED) feeds INGEST_CONCURRENCY jobs. A job
// streams the file through the engine (chunk, compress, encrypt in worker threads), hands each
// encrypted block to Placement as it comes (whose upload budget holds the reading back when the
// network lags), and, before the stub is written, waits for every shard's acknowledgement, reads
// a sample back and records the version in the index. The original goes only after that (and only
// if it is still the very file that was read). Pinned and hydrated-and-changed files are placed
// but kept. A failed job is retried with a growing delay; a path that changes during its job runs
// again after it.

import { promises as fsp } from 'node:fs'
import { setMaxListeners } from 'node:events'
import { basename, relative, sep } from 'node:path'
import type { StubEngine, Stub } from '../stubs/index.js'
import { StubError, StubCodes, encodeStub, stubNameFor } from '../stubs/index.js'
import type { IndexDb, FileState } from './index-db.js'
import type { Placement } from './placement.js'
import { AgentError, AgentCodes, errorLine } from './errors.js'

export const INGEST_CONCURRENCY = 8
export const MAX_QUEUED = 1_000_000
export const RETRY_MIN_MS = 5_000
export const RETRY_MAX_MS = 10 * 60_000

/** ingest: a new or changed file; evict: stub a hydrated one; replace: place a hydrated file's blocks again (theirs were lost), keep the file. */
export type JobKind = 'ingest' | 'evict' | 'replace'

export interface FileEvent {
  readonly folder: string
  readonly path: string
  readonly rel: string
  readonly state: FileState | 'queued' | 'hydrating'
  readonly size?: number
  readonly bytes?: number
  readonly error?: string
}

export interface IngestQueueOptions {
  readonly engine: StubEngine
  readonly db: IndexDb
  readonly placement: Placement
  readonly concurrency?: number
  readonly retryMinMs?: number
  readonly retryMaxMs?: number
  readonly onEvent: (e: FileEvent) => void
  readonly onWarning: (e: Error) => void
  /** A new version of a file was placed and recorded (not called when the content did not change). */
  readonly onVersion?: (fileId: number) => void
  /** The id of this device, recorded with each version (docs/sync.md). */
  readonly device?: string
}

interface Job { folder: string, path: string, kind: JobKind, dirty: boolean, attempts: number }

export class IngestQueue {
  private readonly opts: IngestQueueOptions
  private readonly queue = new Map<string, Job>()
  private readonly running = new Map<string, Job>()
  private readonly retries = new Map<string, { timer: NodeJS.Timeout, attempts: number }>()
  private readonly abort = new AbortController()
  private readonly idleWaiters = new Set<() => void>()
  private closed = false
  stubbed = 0
  failed = 0

  constructor (opts: IngestQueueOptions) {
    this.opts = opts
    // Every request of every job listens on this one signal.
    setMaxListeners(0, this.abort.signal)
  }

  get pending (): number { return this.queue.size + this.retries.size }
  get active (): number { return this.running.size }
  get activePaths (): string[] { return [...this.running.keys()] }

  /** Queue a path (a repeat of a queued path is one job; of a running path, a rerun after it). */
  add (folder: string, path: string, kind: JobKind = 'ingest'): void {
    if (this.closed) return
    const run = this.running.get(path)
    if (run !== undefined) { run.dirty = true; if (kind === 'evict') run.kind = 'evict'; return }
    const q = this.queue.get(path)
    if (q !== undefined) { if (kind === 'evict') q.kind = 'evict'; return }
    if (this.queue.size >= MAX_QUEUED) {
      this.opts.onWarning(new AgentError(AgentCodes.INTERNAL, `ingest queue full (${MAX_QUEUED}); ${JSON.stringify(path)} waits for the next rescan`))
      return
    }
    const r = this.retries.get(path)
    if (r !== undefined) { clearTimeout(r.timer); this.retries.delete(path) }
    this.queue.set(path, { folder, path, kind, dirty: false, attempts: r?.attempts ?? 0 })
    this.emitState(folder, path, 'queued')
    this.pump()
  }

  private emitState (folder: string, path: string, state: FileEvent['state'], extra: Partial<FileEvent> = {}): void {
    this.opts.onEvent({ folder, path, rel: relative(folder, path), state, ...extra })
  }

  private pump (): void {
    const limit = this.opts.concurrency ?? INGEST_CONCURRENCY
    while (!this.closed && this.running.size < limit && this.queue.size > 0) {
      const [path, job] = this.queue.entries().next().value as [string, Job]
      this.queue.delete(path)
      this.running.set(path, job)
      void this.run(job).catch(err => this.opts.onWarning(err as Error)).finally(() => {
        this.running.delete(path)
        if (job.dirty && !this.closed) this.add(job.folder, job.path, job.kind)
        this.pump()
        if (this.running.size === 0 && this.queue.size === 0) for (const w of [...this.idleWaiters]) w()
      })
    }
  }

  /** True while `path` is queued or being ingested. */
  busy (path: string): boolean {
    return this.queue.has(path) || this.running.has(path)
  }

  /** Resolves when nothing is queued or running (retries pending do not count). */
  async idle (): Promise<void> {
    if (this.running.size === 0 && this.queue.size === 0) return
    await new Promise<void>(resolve => {
      const w = (): void => { this.idleWaiters.delete(w); resolve() }
      this.idleWaiters.add(w)
    })
  }

  private async run (job: Job): Promise<void> {
    const { db } = this.opts
    const { folder, path } = job
    const rel = relative(folder, path)
    let st: import('node:fs').Stats
    try {
      st = await fsp.lstat(path)
    } catch {
      return // gone meanwhile (the watcher reports removals)
    }
    if (!st.isFile()) return
    const row = db.file(folder, rel)
    const unchanged = row !== null && row.size === st.size && row.mtimeMs === st.mtimeMs
    let keep = row?.pinned === true
    if (row !== null && row.state === 'hydrated' && job.kind !== 'evict') {
      // Our own hydrate placed this file, or the user changed a hydrated file: place the new
      // version (a backup) but keep the file; it is stubbed after --evict-after without change.
      if (unchanged && job.kind !== 'replace') return
      keep = true
    }
    const fileId = db.touchFile(folder, rel, keep && row?.state === 'hydrated' ? 'hydrated' : 'uploading', st.size, st.mtimeMs)
    this.emitState(folder, path, 'uploading', { size: st.size, bytes: 0 })
    const signal = this.abort.signal
    const uploads: Array<Promise<void>> = []
    let versionId: number | null = null
    try {
      await this.opts.engine.stub(path, {
        signal,
        store: false,
        keep,
        replaceOtherVersion: true,
        onBlock: async (b, encrypted) => { uploads.push((await this.opts.placement.start(b.id, encrypted, signal)).done) },
        beforeStub: async (stub: Stub) => {
          const results = await Promise.allSettled(uploads)
          const bad = results.find(r => r.status === 'rejected')
          if (bad !== undefined) throw (bad as PromiseRejectedResult).reason
          await this.opts.placement.readBack(stub.blocks.map(b => b.id), signal)
          const bytes = encodeStub(this.opts.engine.crypto, this.opts.engine.keys.stubMac, stub, stubNameFor(basename(path)))
          versionId = db.addVersion(fileId, { hash: stub.hash, size: stub.size, mtimeNs: stub.mtimeNs, mode: stub.mode, stub: bytes, blocks: stub.blocks.map(b => b.id), device: this.opts.device ?? '' }, keep ? (row?.state === 'hydrated' ? 'hydrated' : 'uploading') : 'uploading', st.mtimeMs)
        },
        onProgress: p => { if (p.state === 'stubbing') this.emitState(folder, path, 'uploading', { size: p.total, bytes: p.bytes }) }
      })
      if (keep) {
        if (row?.state === 'hydrated') db.setHydrated(fileId, st.size, st.mtimeMs)
        else db.setState(fileId, 'hydrated')
        this.emitState(folder, path, 'hydrated', { size: st.size })
      } else {
        db.setState(fileId, 'stubbed')
        this.stubbed++
        this.emitState(folder, path, 'stubbed', { size: st.size })
      }
      if (versionId !== null && (versionId !== row?.versionId || row?.state === 'deleted' || row?.state === 'removed')) this.opts.onVersion?.(fileId)
      this.retries.delete(path)
    } catch (err) {
      if (this.closed) return
      await Promise.allSettled(uploads)
      if (err instanceof StubError && err.code === StubCodes.FILE_CHANGED) {
        db.setState(fileId, 'pending', errorLine(err))
        this.emitState(folder, path, 'pending', { error: errorLine(err) })
        return // the watcher reports it again once it settles
      }
      if (err instanceof StubError && err.code === StubCodes.NOT_A_FILE) { db.setState(fileId, 'failed', errorLine(err)); return }
      this.failed++
      db.setState(fileId, 'failed', errorLine(err))
      this.emitState(folder, path, 'failed', { error: errorLine(err) })
      this.opts.onWarning(err as Error)
      this.retry(job)
    }
  }

  private retry (job: Job): void {
    const attempts = job.attempts + 1
    const delay = Math.min((this.opts.retryMinMs ?? RETRY_MIN_MS) * 2 ** Math.min(attempts - 1, 20), this.opts.retryMaxMs ?? RETRY_MAX_MS)
    const timer = setTimeout(() => {
      this.retries.delete(job.path)
      this.add(job.folder, job.path, job.kind)
      const q = this.queue.get(job.path)
      if (q !== undefined) q.attempts = attempts
    }, delay)
    timer.unref()
    this.retries.set(job.path, { timer, attempts })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.abort.abort(new AgentError(AgentCodes.CLOSED, 'the agent is stopping'))
    for (const r of this.retries.values()) clearTimeout(r.timer)
    this.retries.clear()
    this.queue.clear()
    if (this.running.size > 0) await this.idle()
  }
}

/** True when `path` is inside `folder` (or is it). */
export function isInside (path: string, folder: string): boolean {
  return path === folder || path.startsWith(folder.endsWith(sep) ? folder : folder + sep)
}
