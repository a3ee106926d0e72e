// FolderWatcher: tells the agent which regular files of the watched folders are new or changed and
// have been stable for the settle period, including the changes made while the agent was down
// (@parcel/watcher snapshots), which watched files disappeared, and which `.f` stubs appeared.
// Backends: @parcel/watcher (primary), chokidar 5 (fallback). Eligibility: ignore-rules.ts;
// stability: settle.ts. Every failure is a `warning` event, never a throw out of a callback.

import { EventEmitter } from 'node:events'
import { promises as fsp, realpathSync, type Stats } from 'node:fs'
import { createHash } from 'node:crypto'
import { isAbsolute, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { FSWatcher } from 'chokidar'
import { AgentError, AgentCodes, type AgentCode } from './errors.js'
import { isStubName } from '../stubs/names.js'
import { fsyncDir, tempPathFor, writeFileAtomic } from '../stubs/fsutil.js'
import { SettleTracker, SETTLE_MS, MAX_PENDING, quietByCtime } from './settle.js'
import { IgnoreRules, IGNORE_FILE_NAME, walkEligible, type WalkEntry } from './ignore-rules.js'

export { SETTLE_MS, MAX_PENDING } from './settle.js'
export { IGNORE_FILE_NAME, isBuiltinExcluded } from './ignore-rules.js'

/** Upper bound of the settle tracker's check interval (default: settleMs / 4, within [10, this]). */
export const CHECK_INTERVAL_MS = 250
/** How often snapshots are written while running (0 disables; close() always writes). */
export const SNAPSHOT_INTERVAL_MS = 60_000
/** How often each folder is re-listed for files whose ctime moved since the last listing (0 disables). */
export const RESCAN_INTERVAL_MS = 3_600_000
/** Minimum time between two re-subscriptions of a folder with @parcel/watcher (see refresh()). */
export const REFRESH_MIN_INTERVAL_MS = 30_000
/** ctime-filtered rescans look this much further back, for coarse or skewed clocks. */
export const RESCAN_CTIME_SLACK_MS = 60_000
/** After writing a snapshot, wait this long so events @parcel/watcher saw before it reach us (its debounce is 500 ms at most). */
export const SNAPSHOT_FLUSH_MS = 600
export const CHOKIDAR_READY_TIMEOUT_MS = 120_000
/** Bound on queued directory walks; past it the folder gets one full rescan instead. */
export const MAX_WALK_JOBS = 10_000
export const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
export const MAX_SIDE_FILE_BYTES = 64 * 1024 * 1024
export const MAX_WARNINGS_PER_MINUTE = 100
/** How many recent reports are remembered so overlapping listings do not report an unchanged file twice. */
export const MAX_RECENT_REPORTS = 20_000
/** Sub-directory of the state dir holding the snapshots. */
export const WATCH_DIR = 'watch'

export type WatchBackend = 'parcel' | 'chokidar' | 'auto'
/** new/changed: from events (a hint: the agent decides by its index); startup: first listing; rescan: a re-listing. */
export type FileReason = 'new' | 'changed' | 'startup' | 'rescan'
export type RescanWhy = 'overflow' | 'ignore-changed' | 'watch-error' | 'refresh' | 'periodic' | 'restart'

export interface FileEvent { folder: string, path: string, size: number, mtimeMs: number, ino: number, reason: FileReason }
export interface PathEvent { folder: string, path: string }
export interface RescanEvent { folder: string, path: string, why: RescanWhy }
export interface WalkedFile { path: string, size: number, mtimeMs: number, ino: number, stub: boolean }

export interface WatcherEvents {
  file: [e: FileEvent]
  removed: [e: PathEvent]
  stub: [e: PathEvent]
  warning: [w: { error: AgentError }]
  ready: []
  rescan: [e: RescanEvent]
}

interface ParcelEvent { path: string, type: 'create' | 'update' | 'delete' }
interface ParcelSubscription { unsubscribe: () => Promise<void> }
type ParcelCallback = (err: Error | null, events: ParcelEvent[]) => unknown
/** The part of @parcel/watcher we use. */
export interface ParcelApi {
  subscribe: (dir: string, fn: ParcelCallback, opts?: { ignore?: string[] }) => Promise<ParcelSubscription>
  writeSnapshot: (dir: string, snapshot: string, opts?: { ignore?: string[] }) => Promise<string>
  getEventsSince: (dir: string, snapshot: string, opts?: { ignore?: string[] }) => Promise<ParcelEvent[]>
}

export interface FolderWatcherOptions {
  /** Absolute paths of existing directories; none inside another nor inside stateDir. */
  folders: string[]
  /** Snapshots go in `${stateDir}/watch/`; nothing under stateDir is ever reported. */
  stateDir: string
  settleMs?: number
  backend?: WatchBackend
  checkIntervalMs?: number
  maxPending?: number
  snapshotIntervalMs?: number
  rescanIntervalMs?: number
  refreshMinIntervalMs?: number
  /** Closes the watcher when aborted. */
  signal?: AbortSignal
  /** How @parcel/watcher is loaded (tests make it fail to check the fallback). */
  loadParcel?: () => Promise<ParcelApi>
}

interface Folder {
  path: string
  prefix: string
  key: string
  rules: IgnoreRules
  parcelOpts: { ignore: string[] }
  backend: 'parcel' | 'chokidar' | null
  sub: ParcelSubscription | null
  chokidar: FSWatcher | null
  startupDone: boolean
  overflowSince: number | null
  refreshTimer: NodeJS.Timeout | null
  refreshSince: number | null
  refreshing: Promise<void> | null
  lastRefresh: number
  lastRescan: number
}

interface Pending { f: Folder, reason: FileReason, walkIfDir: boolean }
interface Job { f: Folder, rel: string, reason: FileReason, since?: number, why?: RescanWhy, refreshIfSubdirs?: boolean, restartChokidar?: boolean }
interface SideFile { v: 1, folder: string, paths: string[], dirs: string[], rescan: number | null }

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const codeOf = (err: unknown): string => (err as { code?: string })?.code ?? (err as Error)?.message ?? String(err)

async function importParcel (): Promise<ParcelApi> {
  const m = await import('@parcel/watcher') as unknown as ParcelApi & { default?: ParcelApi }
  return m.default ?? m
}

function positive (name: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new AgentError(AgentCodes.CONFIG_INVALID, `watcher option ${name} must be a number >= ${min}, got ${String(v)}`)
  return v
}

function inside (path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir + '/')
}

function realOr (p: string): string {
  try { return realpathSync(p) } catch { return p }
}

export class FolderWatcher extends EventEmitter<WatcherEvents> {
  readonly stateDir: string
  readonly settleMs: number
  readonly backend: WatchBackend
  private readonly opts: FolderWatcherOptions
  private readonly folders: Folder[] = []
  private readonly tracker: SettleTracker<Pending>
  private readonly watchDir: string
  private readonly snapshotIntervalMs: number
  private readonly rescanIntervalMs: number
  private readonly refreshMinIntervalMs: number
  private readonly abort = new AbortController()
  private parcel: ParcelApi | null = null
  private snapshotsOk = true
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly jobs = new Map<string, Job>()
  private jobsActive = false
  private jobsDone: Promise<void> = Promise.resolve()
  private saveChain: Promise<void> = Promise.resolve()
  private readyPromise: Promise<void> | null = null
  private closePromise: Promise<void> | null = null
  private closing = false
  private closed = false
  /** Path → signature of its last report (bounded, oldest dropped first). */
  private readonly recent = new Map<string, string>()
  private warnWindow = 0
  private warnCount = 0

  constructor (opts: FolderWatcherOptions) {
    super()
    this.opts = opts
    const bad = (text: string): never => { throw new AgentError(AgentCodes.CONFIG_INVALID, text) }
    if (!Array.isArray(opts.folders) || opts.folders.length === 0) bad('the watcher needs at least one folder')
    if (typeof opts.stateDir !== 'string' || !isAbsolute(opts.stateDir)) bad(`state directory ${JSON.stringify(opts.stateDir)} is not an absolute path`)
    this.stateDir = resolve(opts.stateDir)
    this.watchDir = join(this.stateDir, WATCH_DIR)
    this.settleMs = positive('settleMs', opts.settleMs, SETTLE_MS, 0)
    const maxPending = positive('maxPending', opts.maxPending, MAX_PENDING)
    const checkIntervalMs = positive('checkIntervalMs', opts.checkIntervalMs, Math.min(CHECK_INTERVAL_MS, Math.max(10, Math.round(this.settleMs / 4))))
    this.snapshotIntervalMs = positive('snapshotIntervalMs', opts.snapshotIntervalMs, SNAPSHOT_INTERVAL_MS, 0)
    this.rescanIntervalMs = positive('rescanIntervalMs', opts.rescanIntervalMs, RESCAN_INTERVAL_MS, 0)
    this.refreshMinIntervalMs = positive('refreshMinIntervalMs', opts.refreshMinIntervalMs, REFRESH_MIN_INTERVAL_MS, 0)
    this.backend = opts.backend ?? 'auto'
    if (!['auto', 'parcel', 'chokidar'].includes(this.backend)) bad(`unknown watcher backend ${JSON.stringify(this.backend)}`)
    const stateReal = realOr(this.stateDir)
    for (const raw of opts.folders) {
      if (typeof raw !== 'string' || !isAbsolute(raw)) bad(`folder ${JSON.stringify(raw)} is not an absolute path`)
      const path = resolve(raw)
      if (path === '/') bad('the root directory cannot be a watched folder')
      const real = realOr(path)
      if (inside(path, this.stateDir) || inside(real, stateReal)) bad(`folder ${JSON.stringify(path)} is inside the state directory ${JSON.stringify(this.stateDir)}`)
      for (const other of this.folders) {
        if (inside(path, other.path) || inside(other.path, path)) bad(`folders ${JSON.stringify(other.path)} and ${JSON.stringify(path)} overlap`)
      }
      // The state directory inside the folder, by the path as given and by the real path.
      const excluded = new Set<string>()
      if (inside(this.stateDir, path)) excluded.add(this.stateDir.slice(path.length + 1))
      if (inside(stateReal, real)) excluded.add(stateReal.slice(real.length + 1))
      const rules = new IgnoreRules(path, { excluded: [...excluded], onWarning: e => this.warnError(e) })
      this.folders.push({
        path, prefix: path + '/', key: createHash('sha256').update(path).digest('hex').slice(0, 32), rules,
        parcelOpts: { ignore: [...excluded].sort().map(r => join(path, r)) },
        backend: null, sub: null, chokidar: null, startupDone: false, overflowSince: null,
        refreshTimer: null, refreshSince: null, refreshing: null, lastRefresh: -Infinity, lastRescan: Date.now()
      })
    }
    this.tracker = new SettleTracker<Pending>({
      settleMs: this.settleMs,
      maxPending,
      checkIntervalMs,
      settled: (key, d, st) => this.onSettled(key, d, st),
      onError: err => this.warn(AgentCodes.WATCH_FAILED, `checking a changed file failed: ${codeOf(err)}`, err),
      afterTick: () => this.afterTick()
    })
    opts.signal?.addEventListener('abort', () => { void this.close() }, { once: true })
  }

  /** Folders being watched (as given, resolved) and the backend each one uses (null: not watched). */
  status (): Array<{ folder: string, backend: 'parcel' | 'chokidar' | null, pending: number }> {
    const counts = new Map<Folder, number>()
    for (const [, d] of this.tracker.pending()) counts.set(d.f, (counts.get(d.f) ?? 0) + 1)
    return this.folders.map(f => ({ folder: f.path, backend: f.backend, pending: counts.get(f) ?? 0 }))
  }

  /**
   * Catch up and subscribe: for each folder, what changed since its snapshot (or, without a usable
   * snapshot, every eligible file, reason 'startup') is reported or waiting to settle when this
   * resolves; then 'ready' is emitted. A folder that cannot be watched is a warning.
   */
  async ready (): Promise<void> {
    if (this.closing) throw new AgentError(AgentCodes.CLOSED, 'the folder watcher is closed')
    this.readyPromise ??= this.start()
    await this.readyPromise
  }

  private async start (): Promise<void> {
    try {
      await fsp.mkdir(this.watchDir, { recursive: true, mode: 0o700 })
    } catch (err) {
      this.snapshotsOk = false
      this.warn(AgentCodes.WATCH_FAILED, `cannot create ${JSON.stringify(this.watchDir)} (${codeOf(err)}); no snapshots will be kept`, err)
    }
    if (this.backend !== 'chokidar') {
      try {
        this.parcel = await (this.opts.loadParcel ?? importParcel)()
      } catch (err) {
        const then = this.backend === 'auto' ? 'watching with chokidar instead (no snapshots: changes made while stopped are found by listing the folders)' : 'folders are not watched'
        this.warn(AgentCodes.WATCH_FAILED, `@parcel/watcher could not be loaded (${(err as Error).message}); ${then}`, err)
      }
    }
    this.tracker.start()
    for (const f of this.folders) {
      if (this.closing) return
      try {
        await this.startFolder(f)
      } catch (err) {
        this.warn(AgentCodes.WATCH_FAILED, `watching ${JSON.stringify(f.path)} failed: ${codeOf(err)}`, err)
      }
    }
    if (this.closing) return
    if (this.snapshotIntervalMs > 0) this.every(this.snapshotIntervalMs, async () => { await this.saveSnapshots() })
    if (this.rescanIntervalMs > 0) this.every(this.rescanIntervalMs, () => { this.periodicRescan() })
    this.safeEmit('ready')
  }

  private async startFolder (f: Folder): Promise<void> {
    let st: Stats
    try {
      st = await fsp.stat(f.path)
    } catch (err) {
      this.warn(AgentCodes.WATCH_FAILED, `folder ${JSON.stringify(f.path)} cannot be watched (${codeOf(err)})`, err)
      return
    }
    if (!st.isDirectory()) {
      this.warn(AgentCodes.WATCH_FAILED, `folder ${JSON.stringify(f.path)} is not a directory`)
      return
    }
    if (this.parcel !== null) {
      try {
        f.sub = await this.parcel.subscribe(f.path, this.parcelCallback(f), f.parcelOpts)
        f.backend = 'parcel'
      } catch (err) {
        if (this.backend === 'parcel') throw err
        this.warn(AgentCodes.WATCH_FAILED, `@parcel/watcher cannot watch ${JSON.stringify(f.path)} (${(err as Error).message}); watching it with chokidar instead`, err)
      }
    }
    if (f.backend === null) {
      if (this.backend === 'parcel') return
      f.chokidar = await this.startChokidar(f)
      f.backend = 'chokidar'
    }
    f.lastRescan = Date.now()
    if (f.backend === 'parcel' && await this.catchUp(f)) {
      f.startupDone = true
      return
    }
    if (await this.walkInto(f, '', 'startup')) f.startupDone = true
  }

  // ---- events from the backends --------------------------------------------------------------

  private parcelCallback (f: Folder): ParcelCallback {
    return (err, events) => {
      if (this.closed) return
      if (err !== null && err !== undefined) {
        this.warn(AgentCodes.WATCH_FAILED, `watching ${JSON.stringify(f.path)}: ${err.message}; it will be re-listed`, err)
        this.queueJob({ f, rel: '', reason: 'rescan', since: Date.now() - RESCAN_CTIME_SLACK_MS, why: 'watch-error' })
      }
      for (const e of Array.isArray(events) ? events : []) this.onRaw(f, e.type, e.path, undefined, true)
    }
  }

  private async startChokidar (f: Folder): Promise<FSWatcher> {
    const { watch } = await import('chokidar')
    const w = watch(f.path, {
      ignoreInitial: true, // we list the folder ourselves, through the same rules
      followSymlinks: false,
      awaitWriteFinish: false, // our settle tracker does that
      ignored: (p: string, st?: Stats) => this.chokidarIgnored(f, p, st)
    })
    w.on('add', p => this.onRaw(f, 'create', p, false, true))
    w.on('addDir', p => this.onRaw(f, 'create', p, true, true))
    w.on('change', p => this.onRaw(f, 'update', p, false, true))
    w.on('unlink', p => this.onRaw(f, 'delete', p, false, true))
    w.on('unlinkDir', p => this.onRaw(f, 'delete', p, true, true))
    w.on('error', err => this.warn(AgentCodes.WATCH_FAILED, `watching ${JSON.stringify(f.path)} (chokidar): ${(err as Error).message}`, err))
    await new Promise<void>(resolve => {
      const done = (): void => { clearTimeout(timer); this.abort.signal.removeEventListener('abort', done); resolve() }
      const timer = setTimeout(() => {
        this.warn(AgentCodes.WATCH_FAILED, `chokidar did not finish setting up ${JSON.stringify(f.path)} in ${CHOKIDAR_READY_TIMEOUT_MS} ms; going on`)
        done()
      }, CHOKIDAR_READY_TIMEOUT_MS)
      w.once('ready', done)
      this.abort.signal.addEventListener('abort', done)
    })
    return w
  }

  private chokidarIgnored (f: Folder, p: string, st?: Stats): boolean {
    try {
      if (!p.startsWith(f.prefix)) return false
      const rel = p.slice(f.prefix.length)
      if (st !== undefined) return f.rules.excluded(rel, st.isDirectory(), true)
      return f.rules.excluded(rel, false, true) && f.rules.excluded(rel, true, true)
    } catch {
      return false
    }
  }

  /** One event: `isDir` when the backend knows; `live` for events as they happen (not catch-up). */
  private onRaw (f: Folder, type: ParcelEvent['type'], abs: string, isDir: boolean | undefined, live: boolean): void {
    try {
      if (this.closed || f.backend === null) return
      if (abs === f.path) {
        if (type === 'delete') this.warn(AgentCodes.WATCH_FAILED, `the watched folder ${JSON.stringify(f.path)} was removed or moved away`)
        return
      }
      if (!abs.startsWith(f.prefix)) return
      const rel = abs.slice(f.prefix.length)
      if (f.rules.inExcludedSubtree(rel)) return
      const slash = rel.lastIndexOf('/')
      const name = rel.slice(slash + 1)
      const parentRel = slash < 0 ? '' : rel.slice(0, slash)
      if (name === IGNORE_FILE_NAME && isDir !== true) {
        f.rules.invalidate(parentRel)
        this.queueJob({ f, rel: parentRel, reason: 'rescan', why: 'ignore-changed', restartChokidar: f.backend === 'chokidar' })
        return
      }
      const excludedBoth = (): boolean => f.rules.excluded(rel, false) && f.rules.excluded(rel, true)
      if (type === 'delete') {
        this.tracker.delete(abs)
        this.recent.delete(abs)
        // A stub's removal is reported too: with its file gone as well, it is a deletion (docs/sync.md §6).
        if (isDir !== true && isStubName(name)) { this.safeEmit('removed', { folder: f.path, path: abs }); return }
        if (isDir === true ? f.rules.excluded(rel, true) : excludedBoth()) return
        this.safeEmit('removed', { folder: f.path, path: abs })
        return
      }
      if (isDir === true ? f.rules.excluded(rel, true) : excludedBoth()) return
      // An update inside a directory that is itself new and still settling is new too: a file created
      // before the backend watched that directory shows up first as an update (its create was missed).
      const inNewDir = slash >= 0 && this.tracker.get(f.prefix + parentRel)?.reason === 'new'
      const data: Pending = { f, reason: type === 'create' || inNewDir ? 'new' : 'changed', walkIfDir: live && isDir !== false }
      // 'new' wins over 'changed' for the same reason.
      const merge = (old: Pending, next: Pending): Pending => ({ f, reason: next.reason === 'new' ? 'new' : old.reason, walkIfDir: old.walkIfDir || next.walkIfDir })
      if (!this.tracker.touch(abs, data, merge)) this.overflow(f, Date.now())
    } catch (err) {
      this.warn(AgentCodes.WATCH_FAILED, `handling a change of ${JSON.stringify(abs)} failed: ${codeOf(err)}`, err)
    }
  }

  private onSettled (key: string, d: Pending, st: Stats | null): void {
    const f = d.f
    if (st === null || f.backend === null || !key.startsWith(f.prefix)) return
    const rel = key.slice(f.prefix.length)
    if (st.isDirectory()) {
      if (d.walkIfDir && !f.rules.excluded(rel, true)) this.queueJob({ f, rel, reason: 'new', refreshIfSubdirs: f.backend === 'parcel' })
      return
    }
    if (!st.isFile() || f.rules.excluded(rel, false)) return
    this.report(f, { path: key, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs, stub: isStubName(rel.slice(rel.lastIndexOf('/') + 1)) }, d.reason)
  }

  private report (f: Folder, e: WalkEntry, reason: FileReason): void {
    const sig = `${e.size}:${e.mtimeMs}:${e.ino}:${e.ctimeMs}`
    if (this.recent.get(e.path) === sig) return // reported already and the inode did not change since
    this.recent.delete(e.path)
    this.recent.set(e.path, sig)
    if (this.recent.size > MAX_RECENT_REPORTS) this.recent.delete(this.recent.keys().next().value as string)
    if (e.stub) this.safeEmit('stub', { folder: f.path, path: e.path })
    else this.safeEmit('file', { folder: f.path, path: e.path, size: e.size, mtimeMs: e.mtimeMs, ino: e.ino, reason })
  }

  /** The tracker is full: drop this path and re-list the folder (ctime since `since`) once there is room. */
  private overflow (f: Folder, since: number): void {
    if (f.overflowSince === null) {
      this.warn(AgentCodes.WATCH_FAILED, `more than ${this.tracker.size} changed paths are waiting to settle; ${JSON.stringify(f.path)} will be re-listed once they have`)
    }
    f.overflowSince = Math.min(f.overflowSince ?? Infinity, since - RESCAN_CTIME_SLACK_MS)
  }

  private afterTick (): void {
    if (this.closing || this.tracker.size > this.tracker.maxPending / 2) return
    for (const f of this.folders) {
      if (f.overflowSince === null) continue
      this.queueJob({ f, rel: '', reason: 'rescan', since: f.overflowSince, why: 'overflow' })
      f.overflowSince = null
    }
  }

  private periodicRescan (): void {
    for (const f of this.folders) {
      if (f.backend === null) continue
      const since = f.lastRescan - RESCAN_CTIME_SLACK_MS
      f.lastRescan = Date.now()
      this.queueJob({ f, rel: '', reason: 'rescan', since, why: 'periodic' })
    }
  }

  // ---- walks ---------------------------------------------------------------------------------

  /**
   * List the eligible files under `rel` into the tracker (or report them at once when their ctime
   * says they have been quiet for the settle period). Returns false when interrupted by close().
   */
  private async walkInto (f: Folder, rel: string, reason: FileReason, since?: number, onDir?: (rel: string) => void): Promise<boolean> {
    const signal = this.abort.signal
    for await (const e of walkEligible(f.rules, rel, { signal, stubs: true, ctimeSince: since, onWarning: w => this.warnError(w), onDir })) {
      if (signal.aborted) return false
      const waiting = this.tracker.get(e.path)
      if (waiting !== undefined) {
        // Found by the walk of a new directory: it is new, whatever event parcel gave it first.
        if (reason === 'new') waiting.reason = 'new'
        continue
      }
      if (e.ctimeMs <= Date.now() - this.settleMs) {
        this.report(f, e, reason)
        continue
      }
      if (this.tracker.full) await this.tracker.waitForRoom(signal)
      if (signal.aborted) return false
      if (!this.tracker.touch(e.path, { f, reason, walkIfDir: false })) this.overflow(f, Date.now())
    }
    return !signal.aborted
  }

  private queueJob (job: Job): void {
    if (this.closing) return
    const key = `${job.f.key}\0${job.rel}\0${job.reason}\0${job.why ?? ''}`
    const old = this.jobs.get(key)
    if (old !== undefined) {
      // Same walk already queued: keep the widest one.
      old.since = old.since === undefined || job.since === undefined ? undefined : Math.min(old.since, job.since)
      old.refreshIfSubdirs = old.refreshIfSubdirs === true || job.refreshIfSubdirs === true
      old.restartChokidar = old.restartChokidar === true || job.restartChokidar === true
      return
    }
    if (this.jobs.size >= MAX_WALK_JOBS) {
      this.overflow(job.f, job.since ?? 0)
      return
    }
    this.jobs.set(key, job)
    if (this.jobsActive) return
    this.jobsActive = true
    this.jobsDone = this.runJobs().catch(err => {
      this.warn(AgentCodes.WATCH_FAILED, `a folder listing failed: ${codeOf(err)}`, err)
    })
  }

  private async runJobs (): Promise<void> {
    try {
      while (!this.closing) {
        const first = this.jobs.entries().next()
        if (first.done === true) break
        const [key, job] = first.value
        this.jobs.delete(key)
        if (job.why !== undefined) this.safeEmit('rescan', { folder: job.f.path, path: job.rel === '' ? job.f.path : join(job.f.path, job.rel), why: job.why })
        if (job.restartChokidar === true && job.f.backend === 'chokidar') await this.restartChokidar(job.f)
        let subdirs = 0
        const complete = await this.walkInto(job.f, job.rel, job.reason, job.since, () => { subdirs++ })
        // Interrupted by close(): keep it queued so the snapshot's side file records it.
        if (!complete) { this.jobs.set(key, job); break }
        // @parcel/watcher (inotify) does not watch the sub-directories of a directory moved or
        // renamed into the folder: re-subscribe, which walks the whole tree again.
        if (job.refreshIfSubdirs === true && subdirs > 0) this.scheduleRefresh(job.f)
      }
    } finally {
      this.jobsActive = false
    }
  }

  private async restartChokidar (f: Folder): Promise<void> {
    // chokidar set no watch on directories that were ignored when it listed them: a new instance
    // (started before the old one stops, so nothing is missed) watches what the new rules allow.
    const old = f.chokidar
    try {
      f.chokidar = await this.startChokidar(f)
    } catch (err) {
      this.warn(AgentCodes.WATCH_FAILED, `restarting chokidar on ${JSON.stringify(f.path)} failed: ${codeOf(err)}`, err)
      return
    }
    await old?.close().catch(() => {})
    if (this.closing) await f.chokidar.close().catch(() => {})
  }

  private scheduleRefresh (f: Folder): void {
    if (this.closing || f.backend !== 'parcel') return
    f.refreshSince = Math.min(f.refreshSince ?? Infinity, Date.now())
    if (f.refreshTimer !== null || f.refreshing !== null) return
    const wait = Math.max(0, f.lastRefresh + this.refreshMinIntervalMs - performance.now())
    f.refreshTimer = setTimeout(() => {
      f.refreshTimer = null
      f.refreshing = this.refresh(f)
        .catch(err => this.warn(AgentCodes.WATCH_FAILED, `re-subscribing ${JSON.stringify(f.path)} failed: ${codeOf(err)}`, err))
        .finally(() => {
          f.refreshing = null
          if (f.refreshSince !== null) this.scheduleRefresh(f) // asked for again meanwhile
        })
    }, wait)
    f.refreshTimer.unref()
  }

  /** Unsubscribe and subscribe again (a fresh tree with every directory watched), then re-list what changed meanwhile. */
  private async refresh (f: Folder): Promise<void> {
    if (this.closing || this.parcel === null || f.backend !== 'parcel') return
    const since = (f.refreshSince ?? Date.now()) - RESCAN_CTIME_SLACK_MS
    f.refreshSince = null
    f.lastRefresh = performance.now()
    const old = f.sub
    f.sub = null
    await old?.unsubscribe().catch(() => {})
    if (this.closing) return
    try {
      f.sub = await this.parcel.subscribe(f.path, this.parcelCallback(f), f.parcelOpts)
    } catch (err) {
      if (this.backend === 'parcel') {
        f.refreshSince = since + RESCAN_CTIME_SLACK_MS // try again after refreshMinIntervalMs
        throw err
      }
      this.warn(AgentCodes.WATCH_FAILED, `@parcel/watcher cannot watch ${JSON.stringify(f.path)} any more (${(err as Error).message}); watching it with chokidar instead`, err)
      f.backend = 'chokidar'
      f.chokidar = await this.startChokidar(f)
      if (this.closing) return
      this.queueJob({ f, rel: '', reason: 'rescan', since, why: 'refresh' })
      return
    }
    if (this.closing) {
      await f.sub.unsubscribe().catch(() => {})
      f.sub = null
      return
    }
    this.queueJob({ f, rel: '', reason: 'rescan', since, why: 'refresh' })
  }

  /**
   * Every eligible regular file of `folder` (one of the watched folders), depth first; with
   * `stubs: true` the `.f` stubs too. The agent uses it at startup to reconcile with its index
   * (see docs/agent-watcher.md: snapshots alone may skip events it saw but had not processed).
   */
  async * walk (folder: string, opts: { signal?: AbortSignal, stubs?: boolean } = {}): AsyncGenerator<WalkedFile> {
    if (this.closing) throw new AgentError(AgentCodes.CLOSED, 'the folder watcher is closed')
    const path = resolve(folder)
    const f = this.folders.find(x => x.path === path)
    if (f === undefined) throw new AgentError(AgentCodes.NOT_WATCHED, `${JSON.stringify(folder)} is not a watched folder`)
    for await (const e of walkEligible(f.rules, '', { signal: opts.signal, stubs: opts.stubs === true, onWarning: w => this.warnError(w) })) {
      yield { path: e.path, size: e.size, mtimeMs: e.mtimeMs, ino: e.ino, stub: e.stub }
    }
  }

  // ---- snapshots -----------------------------------------------------------------------------

  private snapshotPath (f: Folder): string { return join(this.watchDir, `${f.key}.snapshot`) }
  private sidePath (f: Folder): string { return join(this.watchDir, `${f.key}.pending.json`) }

  /** Report what changed since the folder's snapshot. False when there is no usable snapshot. */
  private async catchUp (f: Folder): Promise<boolean> {
    const snap = this.snapshotPath(f)
    const parcel = this.parcel as ParcelApi
    let problem: string | null
    try {
      problem = await snapshotProblem(snap, f.path)
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return false
      problem = `cannot be read (${codeOf(err)})`
    }
    let events: ParcelEvent[] = []
    if (problem === null) {
      try {
        events = await parcel.getEventsSince(f.path, snap, f.parcelOpts)
      } catch (err) {
        problem = `was refused by @parcel/watcher (${(err as Error).message})`
      }
    }
    if (problem !== null) {
      this.warn(AgentCodes.WATCH_FAILED, `snapshot ${JSON.stringify(snap)} of ${JSON.stringify(f.path)} ${problem}; listing the whole folder instead`)
      return false
    }
    for (const e of events) {
      if (this.tracker.full) await this.tracker.waitForRoom(this.abort.signal)
      if (this.closing) return false
      this.onRaw(f, e.type, e.path, undefined, false)
    }
    await this.applySideFile(f)
    return true
  }

  /** Re-queue what the last run had seen but not reported yet (written next to its snapshot). */
  private async applySideFile (f: Folder): Promise<void> {
    const file = this.sidePath(f)
    let side: SideFile
    try {
      const fh = await fsp.open(file, 'r')
      let text: string
      try {
        const st = await fh.stat()
        if (st.size > MAX_SIDE_FILE_BYTES) throw new Error('too large')
        text = await fh.readFile('utf8')
      } finally {
        await fh.close()
      }
      side = JSON.parse(text) as SideFile
      const okRel = (r: unknown): boolean => typeof r === 'string' && !r.startsWith('/') && !r.split('/').includes('..')
      if (side?.v !== 1 || side.folder !== f.path || !Array.isArray(side.paths) || !Array.isArray(side.dirs) ||
        !side.paths.every(p => typeof p === 'string' && p.startsWith(f.prefix)) || !side.dirs.every(okRel) ||
        (side.rescan !== null && (typeof side.rescan !== 'number' || !Number.isFinite(side.rescan)))) throw new Error('unexpected content')
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return
      this.warn(AgentCodes.WATCH_FAILED, `${JSON.stringify(file)} is unusable (${(err as Error).message}); ${JSON.stringify(f.path)} will be re-listed`, err)
      this.queueJob({ f, rel: '', reason: 'rescan', why: 'restart' })
      return
    }
    for (const p of side.paths) {
      if (this.tracker.full) await this.tracker.waitForRoom(this.abort.signal)
      if (this.closing) return
      this.onRaw(f, 'update', p, undefined, false)
    }
    for (const rel of side.dirs) this.queueJob({ f, rel, reason: 'new' })
    if (side.rescan !== null) this.queueJob({ f, rel: '', reason: 'rescan', since: side.rescan > 0 ? side.rescan : undefined, why: 'restart' })
  }

  private sideOf (f: Folder): SideFile {
    const paths: string[] = []
    for (const [key, d] of this.tracker.pending()) if (d.f === f) paths.push(key)
    const dirs: string[] = []
    let rescan: number | null = f.startupDone ? f.overflowSince : 0
    const widen = (since: number): void => { rescan = rescan === null ? since : Math.min(rescan, since) }
    for (const j of this.jobs.values()) {
      if (j.f !== f) continue
      if (j.why === undefined) dirs.push(j.rel)
      else widen(j.rel === '' && j.since !== undefined ? j.since : 0)
    }
    if (f.refreshSince !== null) widen(f.refreshSince - RESCAN_CTIME_SLACK_MS)
    return { v: 1, folder: f.path, paths, dirs, rescan }
  }

  /**
   * Write each @parcel/watcher folder's snapshot: "everything before this instant was seen". Paths
   * still settling and walks still queued go in a side file read back at the next ready(). Events
   * already emitted count as seen: call this after processing them, and reconcile with walk() at
   * startup (see docs/agent-watcher.md). Chokidar folders have no snapshot. Never throws.
   */
  async saveSnapshots (): Promise<void> {
    if (this.closing) return
    const run = this.saveChain.then(async () => { await this.saveAll(false) })
    this.saveChain = run.catch(() => {})
    await this.saveChain
  }

  private async saveAll (closing: boolean): Promise<void> {
    const parcel = this.parcel
    const targets = this.folders.filter(f => f.backend === 'parcel' && f.sub !== null)
    if (parcel === null || targets.length === 0 || !this.snapshotsOk) return
    const tmps = new Map<Folder, string>()
    for (const f of targets) {
      const tmp = tempPathFor(this.snapshotPath(f))
      try {
        await parcel.writeSnapshot(f.path, tmp, f.parcelOpts)
        const fh = await fsp.open(tmp, 'r')
        try { await fh.sync() } finally { await fh.close() }
        tmps.set(f, tmp)
      } catch (err) {
        await fsp.unlink(tmp).catch(() => {})
        this.warn(AgentCodes.WATCH_FAILED, `writing the snapshot of ${JSON.stringify(f.path)} failed: ${codeOf(err)}`, err)
      }
    }
    if (tmps.size === 0) return
    // Events @parcel/watcher saw before the snapshot are still in its debounce: let them arrive.
    await sleep(SNAPSHOT_FLUSH_MS)
    if (closing) await this.unsubscribeAll()
    for (const [f, tmp] of tmps) {
      try {
        await writeFileAtomic(this.sidePath(f), Buffer.from(JSON.stringify(this.sideOf(f))), { mode: 0o600, syncDir: false })
        await fsp.rename(tmp, this.snapshotPath(f))
      } catch (err) {
        await fsp.unlink(tmp).catch(() => {})
        this.warn(AgentCodes.WATCH_FAILED, `saving the snapshot of ${JSON.stringify(f.path)} failed: ${codeOf(err)}`, err)
      }
    }
    await fsyncDir(this.watchDir).catch(() => {})
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** Unsubscribe, write the snapshots, stop every timer. Idempotent; never throws. */
  async close (): Promise<void> {
    this.closePromise ??= this.shutdown()
    await this.closePromise
  }

  private async shutdown (): Promise<void> {
    this.closing = true
    this.abort.abort()
    for (const t of this.timers) clearInterval(t)
    this.timers.clear()
    for (const f of this.folders) if (f.refreshTimer !== null) clearTimeout(f.refreshTimer)
    await this.readyPromise?.catch(() => {})
    await this.jobsDone
    for (const f of this.folders) await f.refreshing
    this.tracker.stop()
    await this.saveChain
    try {
      await this.saveAll(true)
    } catch (err) {
      this.warn(AgentCodes.WATCH_FAILED, `saving snapshots on close failed: ${codeOf(err)}`, err)
    }
    await this.unsubscribeAll()
    this.closed = true
  }

  private async unsubscribeAll (): Promise<void> {
    for (const f of this.folders) {
      const sub = f.sub
      const ch = f.chokidar
      f.sub = null
      f.chokidar = null
      await sub?.unsubscribe().catch(err => this.warn(AgentCodes.WATCH_FAILED, `unsubscribing ${JSON.stringify(f.path)} failed: ${codeOf(err)}`, err))
      await ch?.close().catch(() => {})
    }
  }

  private every (ms: number, fn: () => unknown): void {
    const t = setInterval(() => {
      Promise.resolve().then(fn).catch(err => this.warn(AgentCodes.WATCH_FAILED, `periodic watcher task failed: ${codeOf(err)}`, err))
    }, ms)
    t.unref()
    this.timers.add(t)
  }

  private warn (code: AgentCode, text: string, cause?: unknown): void {
    this.warnError(new AgentError(code, text, cause === undefined ? undefined : { cause }))
  }

  /** Emit a warning, at most MAX_WARNINGS_PER_MINUTE a minute (a burst of bad names must not flood). */
  private warnError (error: AgentError): void {
    const now = Date.now()
    if (now - this.warnWindow > 60_000) { this.warnWindow = now; this.warnCount = 0 }
    if (++this.warnCount > MAX_WARNINGS_PER_MINUTE) return
    this.safeEmit('warning', { error })
  }

  private safeEmit<K extends keyof WatcherEvents> (name: K, ...args: WatcherEvents[K]): void {
    try {
      (this.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args)
    } catch (err) {
      if (name !== 'warning') this.warn(AgentCodes.INTERNAL, `a '${name}' listener of the folder watcher threw: ${(err as Error)?.message ?? String(err)}`, err)
    }
  }
}

/**
 * Why the @parcel/watcher snapshot at `file` is unusable for `folder`, or null when it is well
 * formed: `COUNT\n` then COUNT entries `LEN PATH MTIME ' ' ISDIR \n` (LEN and MTIME decimal, PATH
 * LEN bytes inside the folder, ISDIR 0 or 1), nothing after. @parcel/watcher 2.6 itself does not
 * check it: garbage reads as "no files" (every file reported new) or aborts with std::bad_alloc.
 */
export async function snapshotProblem (file: string, folder: string): Promise<string | null> {
  const fh = await fsp.open(file, 'r')
  try {
    const st = await fh.stat()
    if (!st.isFile()) return 'is not a regular file'
    if (st.size > MAX_SNAPSHOT_BYTES) return `is larger than ${MAX_SNAPSHOT_BYTES} bytes`
    const root = Buffer.from(folder)
    const prefix = Buffer.from(folder + '/')
    const ENTRY_MAX = 65_536 + 64
    let buf = Buffer.alloc(0)
    let pos = 0
    let filePos = 0
    let eof = false
    const fill = async (): Promise<void> => {
      while (!eof && buf.length - pos < ENTRY_MAX) {
        const chunk = Buffer.allocUnsafe(1024 * 1024)
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, filePos)
        filePos += bytesRead
        if (bytesRead === 0) eof = true
        buf = Buffer.concat([buf.subarray(pos), chunk.subarray(0, bytesRead)])
        pos = 0
      }
    }
    const digits = (max: number): number | null => {
      const start = pos
      while (pos < buf.length && buf[pos] >= 0x30 && buf[pos] <= 0x39 && pos - start <= max) pos++
      if (pos === start || pos - start > max) return null
      return Number(buf.toString('latin1', start, pos))
    }
    await fill()
    const count = digits(12)
    if (count === null || buf[pos++] !== 0x0a) return 'has no entry count'
    if (count > st.size) return 'announces more entries than it can hold'
    for (let i = 0; i < count; i++) {
      await fill()
      const len = digits(5)
      if (len === null || len > 65_536 || pos + len > buf.length) return `entry ${i} has a bad path length`
      const path = buf.subarray(pos, pos + len)
      if (!path.equals(root) && !(path.length > prefix.length && path.subarray(0, prefix.length).equals(prefix))) return `entry ${i} is not inside the folder`
      pos += len
      if (digits(20) === null || buf[pos++] !== 0x20) return `entry ${i} has a bad mtime`
      const d = buf[pos++]
      if ((d !== 0x30 && d !== 0x31) || buf[pos++] !== 0x0a) return `entry ${i} is malformed`
    }
    await fill()
    if (pos < buf.length) return 'has data after its last entry'
    return null
  } finally {
    await fh.close()
  }
}
