// Small durable-file helpers: fsync a directory, write a file atomically (temp, fsync, rename or
// no-clobber link), write a whole buffer at an offset, random temp names, existence without
// following links. Every durable write in dustbox goes through these.

import { promises as fsp, constants as fsc } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname, join, basename } from 'node:path'
import { TEMP_PREFIX, truncateUtf8 } from './names.js'

export async function fsyncDir (dir: string): Promise<void> {
  const fh = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY)
  try { await fh.sync() } finally { await fh.close() }
}

/** A fresh temporary path next to `target` (same directory, so rename stays atomic). */
export function tempPathFor (target: string): string {
  const base = truncateUtf8(basename(target), 64)
  return join(dirname(target), `${TEMP_PREFIX}${base}.${randomBytes(6).toString('hex')}`)
}

/**
 * Write `data` to `target` durably: temp file, fsync, then rename (replace) or link (no clobber:
 * fails with EEXIST when `target` exists), then fsync the directory unless `syncDir` is false.
 */
export async function writeFileAtomic (target: string, data: Uint8Array, opts: { mode?: number, noClobber?: boolean, syncDir?: boolean } = {}): Promise<void> {
  const tmp = tempPathFor(target)
  const fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, opts.mode ?? 0o644)
  try {
    try {
      await fh.writeFile(data)
      if (opts.mode !== undefined) await fh.chmod(opts.mode)
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (opts.noClobber === true) {
      await placeNoClobber(tmp, target)
    } else {
      await fsp.rename(tmp, target)
    }
  } catch (err) {
    await fsp.unlink(tmp).catch(() => {})
    throw err
  }
  if (opts.syncDir !== false) await fsyncDir(dirname(target))
}

/** Whether anything is at `path` (lstat: a dangling symbolic link counts). */
export async function exists (path: string): Promise<boolean> {
  try {
    await fsp.lstat(path)
    return true
  } catch {
    return false
  }
}

/**
 * Move tmp to target without ever replacing an existing target: a hard link (fails with EEXIST),
 * then unlink tmp. On file systems without hard links, a checked rename (a narrow race remains).
 */
export async function placeNoClobber (tmp: string, target: string): Promise<void> {
  try {
    await fsp.link(tmp, target)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK' && code !== 'ENOSYS') throw err
    if (await exists(target)) throw Object.assign(new Error(`EEXIST: ${target} exists`), { code: 'EEXIST' })
    await fsp.rename(tmp, target)
    return
  }
  await fsp.unlink(tmp)
}

/** Write all of `bytes` at `position` (write may write less than asked: loop until done). */
export async function writeAt (fh: fsp.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let off = 0
  while (off < bytes.byteLength) {
    const { bytesWritten } = await fh.write(bytes, off, bytes.byteLength - off, position + off)
    off += bytesWritten
  }
}
