// Where setup writes (XDG base directories, the user's home, the default dustbox home) and how: files
// are written atomically and only when their bytes change, so that re-running setup leaves every
// file (and its mtime) untouched and can say "unchanged".

import { promises as fsp } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { fileError } from './errors.js'

export type WriteResult = 'created' | 'updated' | 'unchanged'

/** Files setup reads back to compare are small; a bigger one is simply rewritten. */
export const MAX_COMPARE_BYTES = 1024 * 1024

export interface UserDirs {
  /** The user's home ($HOME). */
  readonly home: string
  /** $XDG_CONFIG_HOME, else ~/.config. */
  readonly config: string
  /** $XDG_DATA_HOME, else ~/.local/share. */
  readonly data: string
  /** The dustbox home used when neither --home nor $DUSTBOX_HOME is given to the service. */
  readonly defaultDustboxHome: string
}

/** XDG base directories; relative values are ignored, as the XDG spec says. */
export function userDirs (env: NodeJS.ProcessEnv = process.env): UserDirs {
  const home = resolve(env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir())
  const xdg = (name: string, fallback: string): string => {
    const v = env[name]
    return v !== undefined && v !== '' && isAbsolute(v) ? resolve(v) : fallback
  }
  return {
    home,
    config: xdg('XDG_CONFIG_HOME', join(home, '.config')),
    data: xdg('XDG_DATA_HOME', join(home, '.local', 'share')),
    // A systemd user manager or launchd does not see the shell's XDG_STATE_HOME: only ~ is certain.
    defaultDustboxHome: join(home, '.local', 'state', 'dustbox')
  }
}

/** The file's bytes, or null when it is absent (or too big to be ours). */
export async function readSmall (path: string, max = MAX_COMPARE_BYTES): Promise<Buffer | null> {
  try {
    const st = await fsp.stat(path)
    if (!st.isFile() || st.size > max) return null
    return await fsp.readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null
    throw fileError('read', path, err)
  }
}

/** Write `data` to `path` (atomic, parents created) unless it already holds exactly these bytes. */
export async function writeIfChanged (path: string, data: Uint8Array, mode = 0o644): Promise<WriteResult> {
  const old = await readSmall(path)
  if (old !== null && old.equals(data)) return 'unchanged'
  const existed = old !== null || await fsp.lstat(path).then(() => true, () => false)
  try {
    await fsp.mkdir(dirname(path), { recursive: true, mode: 0o755 })
    await writeFileAtomic(path, data, { mode })
  } catch (err) {
    throw fileError('write', path, err)
  }
  return existed ? 'updated' : 'created'
}
