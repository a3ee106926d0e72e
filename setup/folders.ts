// Folder answers: expand `~`, resolve, and refuse what cannot or must not be watched (missing, not a
// directory, unreadable, `/`, the dustbox state directory or a folder inside it, overlapping
// folders); warn on the whole home folder, on a folder holding the state directory, and on network
// file systems (from /proc/self/mountinfo).
// Also the Tab completion of paths for the interactive prompt.

import { promises as fsp, constants as fsc, readdirSync, statSync, readFileSync } from 'node:fs'
import { dirname, join, resolve, sep, basename } from 'node:path'
import { MAX_FOLDERS } from '../agent/config.js'
import { SetupError, SetupCodes } from './errors.js'

/** File system types whose changes inotify cannot see when made by another machine. */
export const NETWORK_FS_TYPES = new Set([
  'nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', 'ncpfs', 'afs', 'coda', '9p', 'ceph', 'glusterfs', 'lustre', 'davfs',
  'sshfs', 'fuse.sshfs', 'fuse.glusterfs', 'fuse.davfs2', 'fuse.rclone', 'fuse.s3fs', 'fuse.gcsfuse', 'fuse.cephfs'
])
/** Most completions offered for one Tab press, and most directory entries read to find them. */
export const MAX_COMPLETIONS = 100
export const MAX_COMPLETION_SCAN = 5000
export const MOUNTINFO_PATH = '/proc/self/mountinfo'
export const MAX_MOUNTINFO_BYTES = 4 * 1024 * 1024

export interface FolderContext {
  /** The dustbox home (state directory). */
  readonly stateDir: string
  /** The user's home folder. */
  readonly userHome: string
  /** Folders already chosen in this run (real paths). */
  readonly chosen: readonly string[]
  /** Folders in the settings before this run (real or absolute paths). */
  readonly configured: readonly string[]
  /** /proc/self/mountinfo text ('' when unavailable). */
  readonly mountinfo: string
}

export interface FolderChoice {
  /** The real path (symbolic links resolved). */
  readonly path: string
  /** Reasons to think twice; the wizard asks to confirm each. */
  readonly warnings: string[]
  /** Informational notes (already configured). */
  readonly notes: string[]
}

/** `~` and `~/x` → the user's home; everything else resolved against the working directory. */
export function expandPath (text: string, userHome: string): string {
  const t = text.trim()
  if (t === '~') return userHome
  if (t.startsWith('~/')) return join(userHome, t.slice(2))
  return resolve(t)
}

const inside = (a: string, b: string): boolean => a === b || a.startsWith(b.endsWith(sep) ? b : b + sep)

/** Check one folder answer; FOLDER_INVALID with the reason, or the real path with warnings. */
export async function checkFolder (text: string, ctx: FolderContext): Promise<FolderChoice> {
  const shown = JSON.stringify(text)
  const fail = (why: string): SetupError => new SetupError(SetupCodes.FOLDER_INVALID, `folder ${shown} ${why}`)
  if (text.trim() === '' || text.includes('\0')) throw new SetupError(SetupCodes.FOLDER_INVALID, 'a folder path is empty or has a NUL byte')
  if (ctx.chosen.length >= MAX_FOLDERS) throw new SetupError(SetupCodes.FOLDER_INVALID, `at most ${MAX_FOLDERS} folders`)
  const abs = expandPath(text, ctx.userHome)
  let real: string
  try {
    real = await fsp.realpath(abs)
  } catch (err) {
    const c = (err as NodeJS.ErrnoException).code
    if (c === 'ENOENT') throw fail('does not exist')
    if (c === 'ENOTDIR') throw fail('is not a directory (a part of its path is a file)')
    if (c === 'EACCES') throw fail('cannot be reached: permission denied on a parent folder')
    if (c === 'ELOOP') throw fail('is a loop of symbolic links')
    throw fail(`cannot be resolved (${c ?? (err as Error).message})`)
  }
  if (real === '/') throw fail('is the root of the file system: refusing to turn the whole system into stubs; choose a folder of your own')
  const st = await fsp.stat(real).catch((err: NodeJS.ErrnoException) => { throw fail(`cannot be read (${err.code ?? err.message})`) })
  if (!st.isDirectory()) throw fail('is not a directory')
  try {
    await fsp.access(real, fsc.R_OK | fsc.W_OK | fsc.X_OK)
    const d = await fsp.opendir(real)
    await d.read()
    await d.close()
  } catch (err) {
    const c = (err as NodeJS.ErrnoException).code
    throw fail(c === 'EACCES' || c === 'EPERM' ? 'is not readable and writable by you (permission denied): dustbox must read its files and replace them by stubs' : `cannot be read (${c ?? (err as Error).message})`)
  }
  const state = await fsp.realpath(ctx.stateDir).catch(() => resolve(ctx.stateDir))
  if (inside(real, state)) throw fail(`is${real === state ? '' : ' inside'} the dustbox state directory ${JSON.stringify(state)}`)
  for (const c of ctx.chosen) {
    if (c === real) throw fail('is already in the list')
    if (inside(real, c) || inside(c, real)) throw fail(`overlaps ${JSON.stringify(c)}; choose one of them`)
  }
  const warnings: string[] = []
  const notes: string[] = []
  const userHome = await fsp.realpath(ctx.userHome).catch(() => ctx.userHome)
  // A folder holding the state dir (the home folder holds the default one) is allowed: the agent
  // never ingests its own state dir (docs/agent-watcher.md, built-in exclusions).
  if (inside(state, real) && real !== userHome) warnings.push(`${JSON.stringify(real)} contains the dustbox state directory ${JSON.stringify(state)}; the agent leaves that directory alone, but a folder that does not hold it is simpler`)
  if (real === userHome) warnings.push(`${JSON.stringify(real)} is your whole home folder: every file in it, application settings and dotfiles included, would be replaced by a .f stub once stored; a subfolder (Documents, Pictures) is safer`)
  const fs = mountFor(real, ctx.mountinfo)
  if (fs !== null && NETWORK_FS_TYPES.has(fs.fstype)) {
    warnings.push(`${JSON.stringify(real)} is on a network file system (${fs.fstype} at ${fs.mountPoint}): changes made from other machines are not noticed, and other users of the share would see stubs instead of files`)
  }
  if (ctx.configured.includes(real) || ctx.configured.includes(abs)) notes.push(`${JSON.stringify(real)} is already configured`)
  return { path: real, warnings, notes }
}

export interface MountEntry { readonly mountPoint: string, readonly fstype: string, readonly source: string }

/** Parse /proc/self/mountinfo (proc(5)): mount point is field 5 (octal-escaped), fstype follows " - ". */
export function parseMountinfo (text: string): MountEntry[] {
  const out: MountEntry[] = []
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  for (const line of text.split('\n')) {
    const sepAt = line.indexOf(' - ')
    if (sepAt < 0) continue
    const left = line.slice(0, sepAt).split(' ')
    const right = line.slice(sepAt + 3).split(' ')
    if (left.length < 5 || right.length < 2) continue
    out.push({ mountPoint: unescape(left[4]), fstype: right[0], source: unescape(right[1]) })
  }
  return out
}

/** The mount holding `path` (the longest mount point that contains it; the last one mounted wins). */
export function mountFor (path: string, mountinfo: string): MountEntry | null {
  let best: MountEntry | null = null
  for (const m of parseMountinfo(mountinfo)) {
    if (inside(path, m.mountPoint) || m.mountPoint === '/') {
      if (best === null || m.mountPoint.length >= best.mountPoint.length) best = m
    }
  }
  return best
}

export function readMountinfo (path = MOUNTINFO_PATH): string {
  try {
    const st = statSync(path)
    if (!st.isFile()) return ''
    const text = readFileSync(path, 'utf8')
    return text.length > MAX_MOUNTINFO_BYTES ? text.slice(0, MAX_MOUNTINFO_BYTES) : text
  } catch {
    return ''
  }
}

/**
 * readline completer for paths: completes the last path component among directories (and links to
 * directories; with `files`, other entries too), hidden ones only when the typed prefix starts with a dot. `~` is kept as
 * typed. Bounded: at most MAX_COMPLETION_SCAN entries read, MAX_COMPLETIONS offered.
 */
export function completePath (line: string, userHome: string, files = false): [string[], string] {
  const typed = line
  const expanded = typed === '~' ? userHome + sep : typed.startsWith('~/') ? join(userHome, typed.slice(2)) + (typed.endsWith('/') ? sep : '') : typed
  const dir = expanded === '' ? '.' : expanded.endsWith(sep) ? expanded : dirname(expanded)
  const prefix = expanded === '' || expanded.endsWith(sep) ? '' : basename(expanded)
  const typedDir = typed === '~' ? '~/' : typed.endsWith('/') ? typed : typed.slice(0, typed.length - prefix.length)
  let names: string[] = []
  try {
    const entries = readdirSync(dir === '' ? '.' : dir, { withFileTypes: true }).slice(0, MAX_COMPLETION_SCAN)
    for (const e of entries) {
      if (!e.name.startsWith(prefix)) continue
      if (e.name.startsWith('.') && !prefix.startsWith('.')) continue
      let isDir = e.isDirectory()
      if (!isDir && e.isSymbolicLink()) {
        try { isDir = statSync(join(dir, e.name)).isDirectory() } catch {}
      }
      if (isDir) names.push(e.name + '/')
      else if (files) names.push(e.name)
    }
  } catch {
    return [[], line]
  }
  names = names.sort().slice(0, MAX_COMPLETIONS)
  return [names.map(n => typedDir + n), line]
}
