// OpenWatcher: notices when any program opens a `.f` stub on Linux, so the agent can hydrate it.
// Backends, best first: our inotify addon (agent/native, built by scripts/build-native.js); an
// `inotifywait -m -r -e open` child process; none (`available` false, `reason` says why). It owns the
// watch budget, the tree bookkeeping (new, renamed and deleted subdirectories), suppression of the
// agent's own opens, coalescing of repeated opens, and `flush()`, a fence through the event queue.
// docs/agent-open-watch.md is the spec.

import { createRequire } from 'node:module'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { accessSync, constants as fsc, promises as fsp, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AgentCodes, AgentError } from './errors.js'

/** Only opens of names ending in this are reported. */
export const STUB_SUFFIX = '.f'
/** Opens of one path within this window after a reported one are folded into it. */
export const COALESCE_MS = 1000
/** ignoreNextOpen() tokens not used within this time lapse. */
export const SUPPRESS_MS = 2000
/** flush() resolves after this even if its marker event never came (queue overflow, dead child). */
export const FENCE_TIMEOUT_MS = 2000
/** Without a marker directory, flush() can only wait this long. */
export const FENCE_FALLBACK_MS = 100
/** Share of the user's inotify watches (/proc/sys/fs/inotify/max_user_watches) we may take. */
export const WATCH_SHARE = 0.5
/** Warn when this share of our budget is in use. */
export const WATCH_WARN_RATIO = 0.9
/** The kernel's historical default, used when /proc cannot be read. */
export const DEFAULT_MAX_USER_WATCHES = 8192
export const MAX_TABLE_ENTRIES = 10_000
/** After an event-queue overflow, rescan the trees for missed subdirectories at most this often. */
export const RESCAN_MIN_INTERVAL_MS = 5000
/** inotifywait: a record longer than this (a path is at most 4096 bytes) is garbage. */
export const MAX_RECORD_BYTES = 16_384
export const INOTIFYWAIT_READY_TIMEOUT_MS = 60_000
export const INOTIFYWAIT_RESTART_DEBOUNCE_MS = 50
export const INOTIFYWAIT_MAX_FAILURES = 5
/** Where the compiled addon lies, from dist/agent/open-watch.js. */
export const ADDON_PATH = fileURLToPath(new URL('../../agent/native/build/Release/dustbox_inotify.node', import.meta.url))

export type OpenWatchBackend = 'addon' | 'inotifywait'

export interface OpenWatcherOptions {
  /** A program opened the stub at this absolute path (called at most once per path per coalesce window). */
  readonly onOpen: (path: string) => void
  /** Non-fatal trouble: watch limits, overflow, unreadable directories, a dead child. */
  readonly onWarning?: (warning: AgentError) => void
  /** 'auto' (default): the addon, else inotifywait, else none. */
  readonly backend?: 'auto' | OpenWatchBackend | 'none'
  readonly addonPath?: string
  /** The inotifywait program (default: `inotifywait` looked up on PATH). */
  readonly inotifywaitPath?: string
  readonly suffix?: string
  readonly coalesceMs?: number
  readonly suppressMs?: number
  readonly fenceTimeoutMs?: number
  /** Upper bound on our watches; default WATCH_SHARE of max_user_watches. */
  readonly maxWatches?: number
}

export interface TreeOptions {
  /** Directory base names to skip (e.g. '.git'), or a predicate on a subdirectory's absolute path. */
  readonly exclude?: readonly string[] | ((dir: string) => boolean)
}

export interface TreeResult { readonly dirs: number, readonly skipped: number }

export interface OpenWatchStats {
  readonly backend: OpenWatchBackend | null
  readonly watches: number
  readonly budget: number
  readonly maxUserWatches: number
}

// ---- the addon's shape (agent/native/inotify.c) ----

export interface InotifyEvent { readonly wd: number, readonly mask: number, readonly cookie: number, readonly name: string | Buffer }
export interface InotifyHandle {
  addWatch: (path: string | Buffer, mask: number) => number
  rmWatch: (wd: number) => boolean
  close: () => void
  ref: () => void
  unref: () => void
}
export interface InotifyAddon {
  Inotify: new (cb: (err: Error | null, events: InotifyEvent[]) => void) => InotifyHandle
  constants: Record<string, number>
}

/** Load the addon; never throws. */
export function loadInotifyAddon (path = ADDON_PATH): { addon: InotifyAddon } | { error: string } {
  if (process.platform !== 'linux') return { error: `inotify exists on Linux only (this is ${process.platform})` }
  try {
    const mod = createRequire(import.meta.url)(path) as Partial<InotifyAddon>
    if (typeof mod?.Inotify !== 'function' || typeof mod.constants?.IN_OPEN !== 'number') return { error: `${path} is not the dustbox inotify addon` }
    return { addon: mod as InotifyAddon }
  } catch (err) {
    let why = firstLine((err as Error).message)
    try {
      const log = readFileSync(join(dirname(dirname(path)), 'build-native.log'), 'utf8')
      why += `; the install-time build said: ${firstLine(log.trim()).slice(0, 300)}`
    } catch {}
    return { error: `the inotify addon does not load (${why})` }
  }
}

/** A program on PATH (or the path given), if executable. */
export function findProgram (name: string): string | null {
  const dirs = name.includes('/') ? [''] : (process.env.PATH ?? '').split(delimiter).filter(d => d !== '')
  for (const d of dirs) {
    const p = d === '' ? name : join(d, name)
    try { accessSync(p, fsc.X_OK); return p } catch {}
  }
  return null
}

// ---- inotifywait output ----

/**
 * Splits inotifywait's stdout into [events, path] records. 'nul' mode (--format '%e%0%w%f%0'
 * --no-newline) is exact for any name; 'line' mode (--format '%e %w%f', old inotifywait) cannot
 * represent a name holding a newline: such records come out mangled and are dropped unless a
 * fragment happens to look like a record (see docs/agent-open-watch.md).
 */
export class InotifywaitParser {
  private pending: Buffer = Buffer.alloc(0)
  private field: Buffer | null = null
  overlong = 0

  constructor (readonly mode: 'nul' | 'line') {}

  push (chunk: Buffer): Array<{ events: string, path: string }> {
    const out: Array<{ events: string, path: string }> = []
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    const sep = this.mode === 'nul' ? 0 : 0x0a
    for (;;) {
      const i = buf.indexOf(sep)
      if (i < 0) break
      const part = buf.subarray(0, i)
      buf = buf.subarray(i + 1)
      if (this.mode === 'line') {
        const s = decodeExact(part)
        const m = s === null ? null : /^([A-Z_,]+) (\/.*)$/s.exec(s)
        if (m !== null) out.push({ events: m[1], path: m[2] })
      } else if (this.field === null) {
        this.field = Buffer.from(part)
      } else {
        const events = decodeExact(this.field)
        const path = decodeExact(part)
        this.field = null
        if (events !== null && path !== null && /^[A-Z_,]+$/.test(events) && path.startsWith('/')) out.push({ events, path })
      }
    }
    if (buf.length > MAX_RECORD_BYTES) { this.overlong++; buf = Buffer.alloc(0); this.field = null }
    this.pending = Buffer.from(buf)
    return out
  }
}

function decodeExact (b: Buffer): string | null {
  const s = b.toString('utf8')
  return Buffer.byteLength(s) === b.length && !s.includes('\uFFFD') ? s : null
}

function firstLine (s: string): string {
  const i = s.indexOf('\n')
  return i < 0 ? s : s.slice(0, i)
}

// ---- the watcher ----

interface Tree { readonly root: string, readonly exclude: (dir: string) => boolean }
interface Entry { readonly wd: number, paths: string[], plain: boolean, tree: Tree | null }
interface Fence { readonly seq: number, readonly resolve: () => void, readonly timer: NodeJS.Timeout }
type AddResult = 'ok' | 'budget' | 'gone' | 'limit' | 'error'

export class OpenWatcher {
  private readonly suffix: string
  private readonly coalesceMs: number
  private readonly suppressMs: number
  private readonly fenceTimeoutMs: number
  private kind: OpenWatchBackend | null = null
  private why: string | undefined
  private readyPromise: Promise<void> | null = null
  private closed = false
  // suppression and coalescing
  private readonly scopes = new Map<string, number>()
  private readonly tokens = new Map<string, { count: number, until: number }>()
  private readonly lastFired = new Map<string, number>()
  // fences
  private markerDir: string | null = null
  private fenceSeq = 0
  private readonly fences = new Map<number, Fence>()
  // addon backend
  private C: Record<string, number> = {}
  private ino: InotifyHandle | null = null
  private fenceWd = -1
  private readonly dirs = new Map<number, Entry>()
  private readonly byPath = new Map<string, number>()
  private readonly trees = new Map<string, Tree>()
  private work: Promise<unknown> = Promise.resolve()
  private rescanTimer: NodeJS.Timeout | null = null
  private lastRescan = 0
  private nearWarned = false
  private limitWarned = false
  private nameWarned = false
  private readonly maxUserWatches: number
  private readonly budget: number
  // inotifywait backend
  private waitPath: string | null = null
  private waitMode: 'nul' | 'line' = 'nul'
  private child: ChildProcess | null = null
  private readonly children = new Map<ChildProcess, number>()
  private readonly readyWaiters: Array<() => void> = []
  private readonly plainRoots = new Set<string>()
  private restartTimer: NodeJS.Timeout | null = null
  private failures = 0
  private childGen = 0

  constructor (readonly opts: OpenWatcherOptions) {
    if (typeof opts?.onOpen !== 'function') throw new AgentError(AgentCodes.BAD_PARAMS, 'OpenWatcher needs an onOpen function')
    this.suffix = opts.suffix ?? STUB_SUFFIX
    this.coalesceMs = opts.coalesceMs ?? COALESCE_MS
    this.suppressMs = opts.suppressMs ?? SUPPRESS_MS
    this.fenceTimeoutMs = opts.fenceTimeoutMs ?? FENCE_TIMEOUT_MS
    this.maxUserWatches = readMaxUserWatches()
    const share = Math.max(1, Math.floor(this.maxUserWatches * WATCH_SHARE))
    this.budget = Math.max(1, Math.min(opts.maxWatches ?? share, share))
  }

  /** Which backend runs (null: none). Valid after ready(). */
  get backend (): OpenWatchBackend | null { return this.kind }
  get available (): boolean { return this.kind !== null && !this.closed }
  /** Why no backend runs (after ready()), or why it stopped. */
  get reason (): string | undefined { return this.why }

  stats (): OpenWatchStats {
    const watches = this.kind === 'addon' ? this.dirs.size : this.trees.size + this.plainRoots.size
    return { backend: this.kind, watches, budget: this.budget, maxUserWatches: this.maxUserWatches }
  }

  /** Picks the backend. Never rejects for lack of one: check `available` and `reason`. */
  async ready (): Promise<void> {
    this.readyPromise ??= this.start()
    return await this.readyPromise
  }

  private async start (): Promise<void> {
    const want = this.opts.backend ?? 'auto'
    const whys: string[] = []
    try {
      this.markerDir = await fsp.mkdtemp(join(tmpdir(), 'dustbox-openwatch-'))
    } catch (err) {
      this.warn(AgentCodes.WATCH_FAILED, `no marker directory for flush() (${(err as Error).message}); own-open suppression falls back to a ${FENCE_FALLBACK_MS} ms grace`)
    }
    if (want === 'auto' || want === 'addon') {
      const r = loadInotifyAddon(this.opts.addonPath)
      if ('addon' in r) {
        try {
          this.startAddon(r.addon)
          this.kind = 'addon'
        } catch (err) { whys.push(`the inotify addon failed to start (${(err as Error).message})`) }
      } else whys.push(r.error)
    }
    if (this.kind === null && (want === 'auto' || want === 'inotifywait')) {
      const p = findProgram(this.opts.inotifywaitPath ?? 'inotifywait')
      if (p === null) whys.push('inotifywait (inotify-tools) is not installed')
      else {
        this.waitPath = p
        this.waitMode = probeInotifywait(p)
        this.kind = 'inotifywait'
        await this.restartAndWait()
      }
    }
    if (want === 'none') whys.push('disabled by configuration')
    if (this.closed) { this.kind = null; return }
    if (this.kind === null) {
      this.why = whys.join('; ')
      this.warn(AgentCodes.OPEN_WATCH_UNAVAILABLE, `opening a .f stub from another program will not restore it (double-click and \`dustbox open\` still do): ${this.why}`)
      await this.removeMarker()
    }
  }

  // ---- public watching API ----

  /** Watch one directory (not its subdirectories) for opens of stubs in it. */
  async watchDir (dir: string): Promise<void> {
    await this.ready()
    if (this.closed) throw new AgentError(AgentCodes.CLOSED, 'the open watcher is closed')
    const path = resolve(dir)
    if (!this.available) return
    if (this.kind === 'inotifywait') { this.plainRoots.add(path); return await this.restartAndWait() }
    await this.serial(async () => {
      const r = this.addDir(path, null, true)
      if (r === 'budget') throw new AgentError(AgentCodes.WATCH_FAILED, `${path}: the watch budget of ${this.budget} directories is used up`)
      if (r === 'limit') throw new AgentError(AgentCodes.WATCH_FAILED, `${path}: the system's inotify watch limit is reached (fs.inotify.max_user_watches = ${this.maxUserWatches})`)
      if (r === 'gone') throw new AgentError(AgentCodes.WATCH_FAILED, `${path} is not a directory`)
      if (r === 'error') throw new AgentError(AgentCodes.WATCH_FAILED, `${path} cannot be watched`)
    })
  }

  async unwatchDir (dir: string): Promise<void> {
    await this.ready()
    if (this.closed) return
    const path = resolve(dir)
    if (this.kind === 'inotifywait') { if (this.plainRoots.delete(path)) await this.restartAndWait(); return }
    await this.serial(async () => {
      const wd = this.byPath.get(path)
      const e = wd === undefined ? undefined : this.dirs.get(wd)
      if (e === undefined) return
      e.plain = false
      if (e.tree === null) this.dropEntry(e)
    })
  }

  /**
   * Watch a directory and every subdirectory (skipping `exclude` and symbolic links), following new,
   * renamed and deleted subdirectories, within the watch budget. Resolves when the walk is done.
   */
  async watchTree (root: string, opts: TreeOptions = {}): Promise<TreeResult> {
    await this.ready()
    if (this.closed) throw new AgentError(AgentCodes.CLOSED, 'the open watcher is closed')
    const path = resolve(root)
    const ex = opts.exclude
    const names = Array.isArray(ex) ? new Set<string>(ex) : null
    const tree: Tree = { root: path, exclude: typeof ex === 'function' ? ex : (d) => names !== null && names.has(basename(d)) }
    if (!this.available) return { dirs: 0, skipped: 0 }
    this.trees.set(path, tree)
    if (this.kind === 'inotifywait') { await this.restartAndWait(); return { dirs: 1, skipped: 0 } }
    return await this.serial(async () => await this.walk(tree, path, true))
  }

  async unwatchTree (root: string): Promise<void> {
    await this.ready()
    if (this.closed) return
    const path = resolve(root)
    const tree = this.trees.get(path)
    if (tree === undefined) return
    this.trees.delete(path)
    if (this.kind === 'inotifywait') return await this.restartAndWait()
    await this.serial(async () => {
      for (const e of [...this.dirs.values()]) {
        if (e.tree !== tree) continue
        e.tree = null
        if (!e.plain) this.dropEntry(e)
      }
      // trees nested in the removed one lost their watches: walk them again
      for (const t of this.trees.values()) if (isUnder(t.root, path)) await this.walk(t, t.root, true)
    })
  }

  // ---- own opens ----

  /**
   * The next `count` opens of `path` (within suppressMs) are the agent's own: not reported. Prefer
   * withOwnOpen(), which needs no count and no expiry.
   */
  ignoreNextOpen (path: string, count = 1): void {
    if (!Number.isInteger(count) || count < 1 || count > 1000) throw new AgentError(AgentCodes.BAD_PARAMS, `ignoreNextOpen count ${count} is not 1..1000`)
    const key = resolve(path)
    const now = Date.now()
    const t = this.tokens.get(key)
    const left = t !== undefined && t.until > now ? t.count : 0
    this.tokens.delete(key)
    this.tokens.set(key, { count: left + count, until: now + this.suppressMs })
    prune(this.tokens, (v) => v.until <= now)
  }

  /**
   * Run `fn` (which opens `path` itself) with opens of `path` not reported, until every event its
   * opens queued has been read (a flush() fence after `fn` settles).
   */
  async withOwnOpen<T> (path: string, fn: () => T | Promise<T>): Promise<T> {
    const key = resolve(path)
    this.scopes.set(key, (this.scopes.get(key) ?? 0) + 1)
    try {
      return await fn()
    } finally {
      try { await this.flush() } finally {
        const n = (this.scopes.get(key) ?? 1) - 1
        if (n <= 0) this.scopes.delete(key); else this.scopes.set(key, n)
      }
    }
  }

  /**
   * Resolves once every open that completed before this call has been through the event queue (and
   * reported or dropped): opens a unique marker file in a private watched directory and waits for
   * its event, which the kernel queues behind them. Bounded by fenceTimeoutMs.
   */
  async flush (): Promise<void> {
    if (this.readyPromise !== null) await this.readyPromise
    if (!this.available) return
    if (this.markerDir === null) return await new Promise<void>(resolve => setTimeout(resolve, FENCE_FALLBACK_MS).unref())
    const seq = ++this.fenceSeq
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.fences.delete(seq); resolve() }, this.fenceTimeoutMs)
      timer.unref()
      this.fences.set(seq, { seq, resolve, timer })
    })
    const marker = join(this.markerDir, String(seq))
    try {
      const fh = await fsp.open(marker, 'w')
      await fh.close()
      await fsp.rm(marker, { force: true })
    } catch {
      this.resolveFence(seq)
    }
    return await done
  }

  /** flush(), then wait for the tree bookkeeping (walks of new subdirectories) it let in. */
  async idle (): Promise<void> {
    await this.flush()
    await this.work.catch(() => {})
  }

  private resolveFence (seq: number): void {
    const f = this.fences.get(seq)
    if (f === undefined) return
    this.fences.delete(seq)
    clearTimeout(f.timer)
    f.resolve()
  }

  // ---- the common event path ----

  private opened (dir: string, name: string): void {
    if (this.closed || !name.endsWith(this.suffix) || name.length === this.suffix.length) return
    const path = dir === '/' ? '/' + name : dir + '/' + name
    if (this.scopes.has(path)) return
    const now = Date.now()
    const t = this.tokens.get(path)
    if (t !== undefined) {
      if (t.until > now) {
        if (--t.count <= 0) this.tokens.delete(path)
        return
      }
      this.tokens.delete(path)
    }
    const last = this.lastFired.get(path)
    if (last !== undefined && now - last < this.coalesceMs) return
    this.lastFired.delete(path)
    this.lastFired.set(path, now)
    prune(this.lastFired, (v) => now - v >= this.coalesceMs)
    try {
      this.opts.onOpen(path)
    } catch (err) {
      this.warn(AgentCodes.INTERNAL, `onOpen(${path}) threw: ${(err as Error).message}`)
    }
  }

  private warn (code: (typeof AgentCodes)[keyof typeof AgentCodes], text: string): void {
    if (this.opts.onWarning === undefined) return
    try { this.opts.onWarning(new AgentError(code, text)) } catch {}
  }

  // ---- addon backend ----

  private startAddon (addon: InotifyAddon): void {
    this.C = addon.constants
    this.ino = new addon.Inotify((err, events) => {
      if (err !== null) return this.addonFailed(err)
      this.onEvents(events)
    })
    if (this.markerDir !== null) {
      try { this.fenceWd = this.ino.addWatch(this.markerDir, this.C.IN_OPEN | this.C.IN_ONLYDIR) } catch { this.markerDir = null }
    }
  }

  private addonFailed (err: Error): void {
    this.why = `reading inotify events failed (${err.message})`
    this.warn(AgentCodes.OPEN_WATCH_UNAVAILABLE, this.why)
    this.ino?.close()
    this.ino = null
    this.kind = null
    this.dirs.clear()
    this.byPath.clear()
    for (const f of [...this.fences.keys()]) this.resolveFence(f)
  }

  private onEvents (events: InotifyEvent[]): void {
    const C = this.C
    const movedFrom = new Map<number, { path: string }>()
    let overflow = false
    for (const ev of events) {
      if ((ev.mask & C.IN_Q_OVERFLOW) !== 0) { overflow = true; continue }
      if (ev.wd === this.fenceWd) {
        if (typeof ev.name === 'string' && /^\d{1,15}$/.test(ev.name)) this.resolveFence(Number(ev.name))
        continue
      }
      const e = this.dirs.get(ev.wd)
      if (e === undefined) continue
      if ((ev.mask & C.IN_IGNORED) !== 0) { this.forget(e); continue }
      if (typeof ev.name !== 'string') {
        if ((ev.mask & C.IN_OPEN) !== 0 && !this.nameWarned) {
          this.nameWarned = true
          this.warn(AgentCodes.WATCH_FAILED, `${e.paths[0]}: a file name that is not UTF-8 was opened; such stubs are not restored on open`)
        }
        continue
      }
      const isDir = (ev.mask & C.IN_ISDIR) !== 0
      if ((ev.mask & C.IN_OPEN) !== 0 && !isDir && ev.name !== '') { this.opened(e.paths[0], ev.name); continue }
      if (!isDir || e.tree === null || ev.name === '') continue
      const child = join(e.paths[0], ev.name)
      if ((ev.mask & C.IN_MOVED_FROM) !== 0) { movedFrom.set(ev.cookie, { path: child }); continue }
      const tree = e.tree
      if ((ev.mask & C.IN_MOVED_TO) !== 0) {
        const from = movedFrom.get(ev.cookie)
        movedFrom.delete(ev.cookie)
        if (from !== undefined && !tree.exclude(child)) { this.renameSubtree(from.path, child, tree); continue }
        if (from !== undefined) this.dropSubtree(from.path)
      }
      if ((ev.mask & (C.IN_CREATE | C.IN_MOVED_TO)) !== 0 && !tree.exclude(child)) {
        void this.serial(async () => await this.walk(tree, child, false)).catch(err => this.warn(AgentCodes.WATCH_FAILED, (err as Error).message))
      }
    }
    // moved out of every tree (or the pair spans two reads: the walk of the new name re-adds it)
    for (const m of movedFrom.values()) this.dropSubtree(m.path)
    if (overflow) this.onOverflow()
  }

  private onOverflow (): void {
    this.warn(AgentCodes.WATCH_FAILED, 'the inotify event queue overflowed: opens of stubs in that moment were missed (fs.inotify.max_queued_events)')
    // opens are lost for good; subdirectories created meanwhile are found by a rescan
    for (const f of [...this.fences.keys()]) this.resolveFence(f)
    if (this.rescanTimer !== null || this.trees.size === 0) return
    const wait = Math.max(0, this.lastRescan + RESCAN_MIN_INTERVAL_MS - Date.now())
    this.rescanTimer = setTimeout(() => {
      this.rescanTimer = null
      this.lastRescan = Date.now()
      void this.serial(async () => { for (const t of this.trees.values()) await this.walk(t, t.root, true) })
        .catch(err => this.warn(AgentCodes.WATCH_FAILED, (err as Error).message))
    }, wait)
    this.rescanTimer.unref()
  }

  /** Serialize tree work (walks, renames) so bookkeeping never interleaves. */
  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const p = this.work.then(fn)
    this.work = p.catch(() => {})
    return await p
  }

  private maskFor (tree: Tree | null, follow: boolean): number {
    const C = this.C
    let m = C.IN_OPEN | C.IN_ONLYDIR | C.IN_MASK_ADD
    if (tree !== null) m |= C.IN_CREATE | C.IN_MOVED_FROM | C.IN_MOVED_TO
    if (!follow) m |= C.IN_DONT_FOLLOW
    return m
  }

  private addDir (path: string, tree: Tree | null, follow: boolean): AddResult {
    if (this.ino === null) return 'error'
    const known = this.byPath.get(path)
    const had = known === undefined ? undefined : this.dirs.get(known)
    if (had !== undefined && (tree === null ? had.plain : had.tree !== null)) return 'ok'
    if (had === undefined && this.dirs.size >= this.budget) return 'budget'
    let wd: number
    try {
      wd = this.ino.addWatch(path, this.maskFor(tree, follow))
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return 'gone'
      if (code === 'ENOSPC') {
        if (!this.limitWarned) {
          this.limitWarned = true
          this.warn(AgentCodes.WATCH_FAILED, `the system's inotify watch limit is reached at ${path} (fs.inotify.max_user_watches = ${this.maxUserWatches}, shared by every program of this user)`)
        }
        return 'limit'
      }
      this.warn(AgentCodes.WATCH_FAILED, `${path}: ${(err as Error).message}`)
      return 'error'
    }
    let e = this.dirs.get(wd)
    if (e === undefined) {
      e = { wd, paths: [path], plain: false, tree: null }
      this.dirs.set(wd, e)
    } else if (!e.paths.includes(path)) {
      e.paths.push(path)  // the same directory under a second name (bind mount, a rename not yet seen)
    }
    this.byPath.set(path, wd)
    if (tree === null) e.plain = true; else e.tree ??= tree
    const used = this.dirs.size / this.budget
    if (used >= WATCH_WARN_RATIO && !this.nearWarned) {
      this.nearWarned = true
      this.warn(AgentCodes.WATCH_FAILED, `${this.dirs.size} of the ${this.budget} inotify watches allowed to dustbox are in use (fs.inotify.max_user_watches = ${this.maxUserWatches})`)
    } else if (used < WATCH_WARN_RATIO - 0.1) this.nearWarned = false
    return 'ok'
  }

  /** Breadth-first walk adding a watch to each directory before listing it (so nothing slips between). */
  private async walk (tree: Tree, start: string, follow: boolean): Promise<TreeResult> {
    const queue: Array<{ dir: string, follow: boolean }> = [{ dir: start, follow }]
    let dirs = 0
    let unreadable = 0
    let firstError = ''
    while (queue.length > 0 && !this.closed && this.trees.get(tree.root) === tree) {
      const next = queue.shift() as { dir: string, follow: boolean }
      const r = this.addDir(next.dir, tree, next.follow)
      if (r === 'budget' || r === 'limit') {
        const skipped = queue.length + 1
        if (r === 'budget') this.warn(AgentCodes.WATCH_FAILED, `the watch budget of ${this.budget} directories is used up: at least ${skipped} directories under ${tree.root} are not watched and opening stubs there will not restore them`)
        return { dirs, skipped }
      }
      if (r !== 'ok') continue
      dirs++
      try {
        const handle = await fsp.opendir(next.dir)
        for await (const d of handle) {
          if (!d.isDirectory()) continue
          const sub = join(next.dir, d.name)
          if (!tree.exclude(sub)) queue.push({ dir: sub, follow: false })
        }
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code !== 'ENOENT' && code !== 'ENOTDIR') { unreadable++; firstError ||= `${next.dir}: ${(err as Error).message}` }
      }
    }
    if (unreadable > 0) this.warn(AgentCodes.WATCH_FAILED, `${unreadable} directories under ${tree.root} could not be listed, their subdirectories are not watched (first: ${firstError})`)
    return { dirs, skipped: 0 }
  }

  private renameSubtree (from: string, to: string, tree: Tree): void {
    for (const e of this.dirs.values()) {
      let changed = false
      e.paths = e.paths.map(p => {
        if (!isUnder(p, from)) return p
        changed = true
        this.byPath.delete(p)
        return to + p.slice(from.length)
      })
      if (!changed) continue
      for (const p of e.paths) this.byPath.set(p, e.wd)
      if (e.tree !== null) e.tree = tree
    }
  }

  private dropSubtree (path: string): void {
    for (const e of [...this.dirs.values()]) {
      if (!e.paths.some(p => isUnder(p, path))) continue
      e.tree = null
      if (!e.plain) this.dropEntry(e)
    }
  }

  private dropEntry (e: Entry): void {
    try { this.ino?.rmWatch(e.wd) } catch {}
    this.forget(e)
  }

  private forget (e: Entry): void {
    this.dirs.delete(e.wd)
    for (const p of e.paths) if (this.byPath.get(p) === e.wd) this.byPath.delete(p)
  }

  // ---- inotifywait backend ----

  private restartAndWait (): Promise<void> {
    return new Promise<void>((resolve) => {
      this.readyWaiters.push(resolve)
      this.scheduleRestart(INOTIFYWAIT_RESTART_DEBOUNCE_MS)
    })
  }

  private scheduleRestart (ms: number): void {
    if (this.closed) return this.releaseWaiters(this.readyWaiters.splice(0))
    if (this.restartTimer !== null) return
    this.restartTimer = setTimeout(() => { this.restartTimer = null; this.spawnChild() }, ms)
  }

  private releaseWaiters (waiters: Array<() => void>): void {
    for (const w of waiters) w()
  }

  /**
   * One child watches every root, so the marker's event is ordered behind all others. A change of
   * roots starts a new child; the old one runs until the new one has its watches (no gap; the
   * doubled events in between are coalesced).
   */
  private spawnChild (): void {
    const waiters = this.readyWaiters.splice(0)
    if (this.closed || this.waitPath === null) return this.releaseWaiters(waiters)
    const roots: string[] = []
    for (const r of [...this.trees.keys(), ...this.plainRoots]) {
      if (isDirSync(r)) roots.push(r)
      else this.warn(AgentCodes.WATCH_FAILED, `${r} is not a directory: not watched`)
    }
    if (this.markerDir !== null) roots.push(this.markerDir)
    if (roots.length === 0) {
      for (const c of this.children.keys()) this.stopChild(c)
      this.child = null
      return this.releaseWaiters(waiters)
    }
    const args = ['-m', '-r', '-e', 'open']
    if (this.waitMode === 'nul') args.push('--format', '%e%0%w%f%0', '--no-newline')
    else args.push('--format', '%e %w%f')
    args.push('--', ...roots)
    const gen = ++this.childGen
    let child: ChildProcess
    try {
      child = spawn(this.waitPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } })
    } catch (err) {
      this.childFailed(`cannot start inotifywait (${(err as Error).message})`)
      return this.releaseWaiters(waiters)
    }
    this.child = child
    this.children.set(child, gen)
    const parser = new InotifywaitParser(this.waitMode)
    let established = false
    let stderr = ''
    const finishReady = (ok: boolean): void => {
      if (established) return
      established = true
      clearTimeout(readyTimer)
      if (ok) {
        this.failures = 0
        for (const [c, g] of this.children) if (g < gen) this.stopChild(c)
      }
      this.releaseWaiters(waiters)
    }
    const readyTimer = setTimeout(() => finishReady(true), INOTIFYWAIT_READY_TIMEOUT_MS)
    readyTimer.unref()
    child.stdout?.on('data', (chunk: Buffer) => {
      if (this.closed) return
      for (const r of parser.push(chunk)) this.onWaitRecord(r, gen)
      if (parser.overlong === 1) { parser.overlong++; this.warn(AgentCodes.WATCH_FAILED, 'inotifywait printed a record longer than any path: output skipped') }
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-MAX_RECORD_BYTES)
      let i: number
      while ((i = stderr.indexOf('\n')) >= 0) {
        const line = stderr.slice(0, i).trim()
        stderr = stderr.slice(i + 1)
        if (line === 'Watches established.') finishReady(true)
        else if (line !== '' && !line.startsWith('Setting up watches')) this.warn(AgentCodes.WATCH_FAILED, `inotifywait: ${line.slice(0, 500)}`)
      }
    })
    child.on('error', (err) => {
      this.children.delete(child)
      if (this.child === child && !this.closed) this.childFailed(`inotifywait failed (${err.message})`)
      finishReady(false)
    })
    child.on('exit', (code, signal) => {
      this.children.delete(child)
      if (this.child === child && !this.closed) this.childFailed(`inotifywait exited (${signal ?? `code ${String(code)}`})`)
      finishReady(false)
    })
  }

  private onWaitRecord (r: { events: string, path: string }, gen: number): void {
    const events = r.events.split(',')
    if (!events.includes('OPEN') || events.includes('ISDIR')) return
    const dir = dirname(r.path)
    const name = basename(r.path)
    if (dir === this.markerDir) {
      if (gen === this.childGen && /^\d{1,15}$/.test(name)) this.resolveFence(Number(name))
      return
    }
    if (this.plainRoots.has(dir)) return this.opened(dir, name)
    for (const t of this.trees.values()) {
      if (!isUnder(dir, t.root)) continue
      let d = dir
      let excluded = false
      while (d.length > t.root.length) {
        if (t.exclude(d)) { excluded = true; break }
        d = dirname(d)
      }
      if (!excluded) return this.opened(dir, name)
    }
  }

  private childFailed (why: string): void {
    this.child = null
    this.failures++
    if (this.failures >= INOTIFYWAIT_MAX_FAILURES) {
      this.why = `${why}; gave up after ${this.failures} attempts`
      this.kind = null
      this.warn(AgentCodes.OPEN_WATCH_UNAVAILABLE, this.why)
      for (const f of [...this.fences.keys()]) this.resolveFence(f)
      return
    }
    this.warn(AgentCodes.WATCH_FAILED, `${why}; restarting`)
    this.scheduleRestart(Math.min(30_000, 1000 * 2 ** (this.failures - 1)))
  }

  private stopChild (child: ChildProcess): void {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const t = setTimeout(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }, 2000)
    t.unref()
  }

  // ---- lifecycle ----

  /** Stops watching; idempotent. No onOpen after it resolves. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.restartTimer !== null) clearTimeout(this.restartTimer)
    if (this.rescanTimer !== null) clearTimeout(this.rescanTimer)
    this.restartTimer = null
    this.rescanTimer = null
    try { this.ino?.close() } catch {}
    this.ino = null
    this.child = null
    const exits = [...this.children.keys()].map(c => new Promise<void>(resolve => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve()
      c.once('exit', () => resolve())
      this.stopChild(c)
    }))
    if (exits.length > 0) await Promise.race([Promise.all(exits), new Promise<void>(resolve => setTimeout(resolve, 3000).unref())])
    for (const f of [...this.fences.keys()]) this.resolveFence(f)
    for (const w of this.readyWaiters.splice(0)) w()
    try { await this.readyPromise } catch {}
    await this.work.catch(() => {})
    this.dirs.clear()
    this.byPath.clear()
    await this.removeMarker()
  }

  private async removeMarker (): Promise<void> {
    const dir = this.markerDir
    this.markerDir = null
    if (dir !== null) await fsp.rm(dir, { recursive: true, force: true }).catch(() => {})
  }
}

// ---- helpers ----

function isUnder (path: string, root: string): boolean {
  return path === root || path.startsWith(root === '/' ? '/' : root + '/')
}

/** Keep a table bounded: drop stale entries, then the oldest, once it passes MAX_TABLE_ENTRIES. */
function prune<V> (map: Map<string, V>, stale: (v: V) => boolean): void {
  if (map.size <= MAX_TABLE_ENTRIES) return
  for (const [k, v] of map) if (stale(v)) map.delete(k)
  for (const k of map.keys()) { if (map.size <= MAX_TABLE_ENTRIES) break; map.delete(k) }
}

function isDirSync (path: string): boolean {
  try { return statSync(path).isDirectory() } catch { return false }
}

function readMaxUserWatches (): number {
  try {
    const n = Number.parseInt(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim(), 10)
    return Number.isSafeInteger(n) && n > 0 ? n : DEFAULT_MAX_USER_WATCHES
  } catch {
    return DEFAULT_MAX_USER_WATCHES
  }
}

/** 'nul' when this inotifywait knows --no-newline (and the %0 format that came with it). */
function probeInotifywait (path: string): 'nul' | 'line' {
  try {
    const r = spawnSync(path, ['--help'], { encoding: 'utf8', timeout: 5000, env: { ...process.env, LC_ALL: 'C' } })
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.includes('--no-newline') ? 'nul' : 'line'
  } catch {
    return 'line'
  }
}
