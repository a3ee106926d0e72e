// Which paths of a watched folder are eligible: built-in exclusions (dustbox's own temp files, the
// partial and lock files of common programs, OS litter, excluded subtrees such as the state
// directory) and the user's `.dustboxignore` files (gitignore syntax, one per directory if wanted,
// each applying relative to its own directory, like git). Also the walk that lists the eligible
// regular files of a folder or subtree without descending into excluded directories.

import { promises as fsp, openSync, readSync, fstatSync, closeSync, constants as fsc } from 'node:fs'
import { join } from 'node:path'
import ignore from 'ignore'
import { AgentError, AgentCodes } from './errors.js'
import { isStubName, isTempName, nameProblem } from '../stubs/names.js'

export const IGNORE_FILE_NAME = '.dustboxignore'
/** A larger `.dustboxignore` is refused (warning, treated as empty). */
export const MAX_IGNORE_FILE_BYTES = 1024 * 1024
/** Bound on the directories whose rules (or lack of a rules file) are cached; past it the cache restarts. */
export const MAX_CACHED_RULE_DIRS = 100_000
/** Walks do not go deeper than this many directory levels below the folder (warning). */
export const MAX_WALK_DEPTH = 256
/** Bound on the warnings one walk emits about unreadable directories or bad names. */
export const MAX_WALK_WARNINGS = 20

/** Exact names never ingested: OS litter and file-system internals. */
export const EXCLUDED_NAMES: readonly string[] = ['.DS_Store', 'Thumbs.db', 'ehthumbs.db', '.Trashes', '.Spotlight-V100', '.fseventsd', 'lost+found']
/** Name endings (any case) of partial downloads, swap and temp files. */
export const EXCLUDED_SUFFIXES: readonly string[] = ['.part', '.partial', '.crdownload', '.tmp', '.swp', '.swo', '.swx', '.kate-swp', '.crswap', '~']
/** Name beginnings of lock, owner and temp files (and dustbox's own TEMP_PREFIX). */
export const EXCLUDED_PREFIXES: readonly string[] = ['.#', '~$', '.goutputstream-', '.fuse_hidden', '.Trash-']

/**
 * Whether a file or directory name is excluded by the built-in rules: dustbox temp files
 * (TEMP_PREFIX), EXCLUDED_NAMES, EXCLUDED_SUFFIXES, EXCLUDED_PREFIXES, LibreOffice locks
 * (`.~lock.NAME#`) and NFS silly-rename files (`.nfsXXXXXXXX…`).
 */
export function isBuiltinExcluded (name: string): boolean {
  if (isTempName(name) || EXCLUDED_NAMES.includes(name)) return true
  const lower = name.toLowerCase()
  for (const s of EXCLUDED_SUFFIXES) if (lower.endsWith(s)) return true
  for (const p of EXCLUDED_PREFIXES) if (name.startsWith(p)) return true
  if (name.startsWith('.~lock.') && name.endsWith('#')) return true
  return /^\.nfs[0-9a-f]{8,}/i.test(name)
}

type Rules = ReturnType<typeof ignore>

export interface IgnoreRulesOptions {
  /** Subtrees (paths relative to the folder, `/`-separated) never eligible nor watched: the state dir. */
  excluded?: string[]
  onWarning?: (err: AgentError) => void
  maxCachedDirs?: number
}

export class IgnoreRules {
  readonly root: string
  private readonly excludedRels = new Set<string>()
  private readonly onWarning: (err: AgentError) => void
  private readonly maxCached: number
  /** Directory (relative, '' = root) → its parsed `.dustboxignore`, or null when it has none usable. */
  private readonly rules = new Map<string, Rules | null>()
  /** Directory → whether it is excluded (itself or through an ancestor). */
  private readonly dirVerdicts = new Map<string, boolean>()
  private readonly ignoreCase = process.platform === 'darwin' || process.platform === 'win32'

  constructor (root: string, opts: IgnoreRulesOptions = {}) {
    this.root = root
    this.onWarning = opts.onWarning ?? (() => {})
    this.maxCached = opts.maxCachedDirs ?? MAX_CACHED_RULE_DIRS
    for (const rel of opts.excluded ?? []) this.addExcluded(rel)
  }

  addExcluded (rel: string): void {
    if (rel !== '') this.excludedRels.add(rel)
    this.dirVerdicts.clear()
  }

  /** Whether `rel` is the state directory (or another excluded subtree) or inside one. */
  inExcludedSubtree (rel: string): boolean {
    for (const x of this.excludedRels) if (rel === x || rel.startsWith(x + '/')) return true
    return false
  }

  /** The `.dustboxignore` of directory `dirRel` changed: forget its rules and every cached verdict. */
  invalidate (dirRel: string): void {
    this.rules.delete(dirRel)
    this.dirVerdicts.clear()
  }

  /**
   * Whether `rel` (relative to the folder, `/`-separated) is excluded, as a directory or as a file:
   * inside an excluded subtree or an excluded directory, a built-in exclusion, or ignored by the
   * `.dustboxignore` files above it. A `.dustboxignore` file itself counts as excluded (it is
   * configuration, never ingested) unless `watching` (the watch backend must still see it).
   */
  excluded (rel: string, isDir: boolean, watching = false): boolean {
    if (rel === '') return false
    const slash = rel.lastIndexOf('/')
    const parent = slash < 0 ? '' : rel.slice(0, slash)
    if (parent !== '' && this.dirExcluded(parent)) return true
    return this.excludedIn(parent, rel.slice(slash + 1), isDir, watching)
  }

  /** `excluded` for an entry `name` of directory `parentRel`, whose ancestors are known to be eligible. */
  excludedIn (parentRel: string, name: string, isDir: boolean, watching = false): boolean {
    const rel = parentRel === '' ? name : parentRel + '/' + name
    if (this.inExcludedSubtree(rel)) return true
    if (isBuiltinExcluded(name)) return true
    if (!isDir && !watching && name === IGNORE_FILE_NAME) return true
    return this.userIgnored(rel, isDir)
  }

  private dirExcluded (dirRel: string): boolean {
    const known = this.dirVerdicts.get(dirRel)
    if (known !== undefined) return known
    const v = this.excluded(dirRel, true, true)
    if (this.dirVerdicts.size >= this.maxCached) this.dirVerdicts.clear()
    this.dirVerdicts.set(dirRel, v)
    return v
  }

  /**
   * git's precedence: the deepest `.dustboxignore` with a rule matching the path decides (the last
   * matching rule of that file, `!` re-includes); higher files only when deeper ones say nothing.
   */
  private userIgnored (rel: string, isDir: boolean): boolean {
    const parts = rel.split('/')
    for (let i = parts.length - 1; i >= 0; i--) {
      const rules = this.rulesFor(parts.slice(0, i).join('/'))
      if (rules === null) continue
      try {
        const r = rules.test(parts.slice(i).join('/') + (isDir ? '/' : ''))
        if (r.ignored) return true
        if (r.unignored) return false
      } catch {
        // A name the ignore package refuses as a path is simply not matched by any rule.
      }
    }
    return false
  }

  /** The parsed rules of `dirRel`'s `.dustboxignore` (read once, synchronously, then cached). */
  rulesFor (dirRel: string): Rules | null {
    const cached = this.rules.get(dirRel)
    if (cached !== undefined) return cached
    const r = this.load(dirRel)
    if (this.rules.size >= this.maxCached) this.rules.clear()
    this.rules.set(dirRel, r)
    return r
  }

  private load (dirRel: string): Rules | null {
    const file = join(this.root, dirRel, IGNORE_FILE_NAME)
    const bad = (why: string, cause?: unknown): null => {
      this.onWarning(new AgentError(AgentCodes.IGNORE_INVALID, `${JSON.stringify(file)} ${why}; its rules are not applied`, { cause }))
      return null
    }
    let fd: number
    try {
      // Synchronous on purpose: chokidar's `ignored` callback is synchronous. O_NONBLOCK so a FIFO
      // named .dustboxignore cannot hang us; O_NOFOLLOW so a link cannot point the read elsewhere.
      fd = openSync(file, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOFOLLOW)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') return null
      if (code === 'ELOOP') return bad('is a symbolic link')
      return bad(`cannot be read (${code ?? String(err)})`, err)
    }
    try {
      const st = fstatSync(fd)
      if (!st.isFile()) return bad('is not a regular file')
      if (st.size > MAX_IGNORE_FILE_BYTES) return bad(`is larger than ${MAX_IGNORE_FILE_BYTES} bytes`)
      const buf = Buffer.alloc(st.size)
      let n = 0
      while (n < buf.length) {
        const got = readSync(fd, buf, n, buf.length - n, n)
        if (got === 0) break
        n += got
      }
      let text: string
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, n))
      } catch (err) {
        return bad('is not valid UTF-8', err)
      }
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      return ignore({ ignorecase: this.ignoreCase }).add(text)
    } catch (err) {
      return bad(`cannot be parsed (${(err as Error).message})`, err)
    } finally {
      closeSync(fd)
    }
  }
}

export interface WalkEntry {
  /** Absolute path. */
  path: string
  size: number
  mtimeMs: number
  ino: number
  ctimeMs: number
  /** A `.f` stub (only listed when asked for). */
  stub: boolean
}

export interface WalkOptions {
  signal?: AbortSignal
  /** List `.f` stubs too (stub: true). Default false. */
  stubs?: boolean
  /**
   * Only list files whose ctime is at or after this wall-clock time (ms), and everything under a
   * directory whose ctime is (a directory renamed or moved in keeps its files' ctimes).
   */
  ctimeSince?: number
  maxDepth?: number
  onWarning?: (err: AgentError) => void
  /** Called for each directory below the start that is walked into. */
  onDir?: (rel: string) => void
}

/**
 * The eligible regular files under `startRel` of the folder of `rules`, depth first. Never follows
 * symbolic links, never descends into excluded directories, skips what vanishes under it; an
 * unreadable directory is a warning (at most MAX_WALK_WARNINGS per walk), never an error.
 */
export async function * walkEligible (rules: IgnoreRules, startRel: string, opts: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const maxDepth = opts.maxDepth ?? MAX_WALK_DEPTH
  let warnings = 0
  const warn = (text: string, cause?: unknown): void => {
    if (++warnings > MAX_WALK_WARNINGS) return
    const suffix = warnings === MAX_WALK_WARNINGS ? ' (further warnings of this walk are not shown)' : ''
    opts.onWarning?.(new AgentError(AgentCodes.WATCH_FAILED, text + suffix, { cause }))
  }
  if (startRel !== '' && rules.excluded(startRel, true)) return
  const since = opts.ctimeSince
  const aborted = (): boolean => opts.signal?.aborted === true
  const stack: Array<{ rel: string, depth: number, all: boolean }> = [{ rel: startRel, depth: 0, all: since === undefined }]
  while (stack.length > 0) {
    if (aborted()) return
    const { rel: dirRel, depth, all: parentAll } = stack.pop() as { rel: string, depth: number, all: boolean }
    const abs = dirRel === '' ? rules.root : join(rules.root, dirRel)
    let all = parentAll
    let dir
    try {
      if (!all) {
        const st = await fsp.lstat(abs)
        if (!st.isDirectory()) continue
        all = st.ctimeMs >= (since as number)
      }
      dir = await fsp.opendir(abs, { bufferSize: 128 })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR') warn(`cannot list ${JSON.stringify(abs)} (${code ?? String(err)})`, err)
      continue
    }
    if (depth > 0) opts.onDir?.(dirRel)
    try {
      for await (const d of dir) {
        if (aborted()) return
        const name = d.name
        const problem = nameProblem(name)
        if (problem !== null) {
          warn(`skipping an entry of ${JSON.stringify(abs)}: ${problem}`)
          continue
        }
        const rel = dirRel === '' ? name : dirRel + '/' + name
        if (d.isDirectory()) {
          if (rules.excludedIn(dirRel, name, true)) continue
          if (depth + 1 > maxDepth) {
            warn(`not walking into ${JSON.stringify(join(abs, name))}: deeper than ${maxDepth} levels`)
            continue
          }
          stack.push({ rel, depth: depth + 1, all })
          continue
        }
        if (!d.isFile()) continue // symbolic links, FIFOs, sockets, devices
        const stub = isStubName(name)
        if (stub && opts.stubs !== true) continue
        if (rules.excludedIn(dirRel, name, false)) continue
        let st
        try {
          st = await fsp.lstat(join(abs, name))
        } catch {
          continue // vanished (or became unreadable) since the listing
        }
        if (!st.isFile()) continue
        if (!all && st.ctimeMs < (since as number)) continue
        yield { path: join(abs, name), size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs, stub }
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR') warn(`cannot list ${JSON.stringify(abs)} (${code ?? String(err)})`, err)
    }
  }
}
