// File-tree helpers for the benchmarks: list a tree's files, copy a tree, read a tree into the page
// cache, sha256 a file, free disk space, and flush dirty pages to disk before a timed phase.

import { promises as fsp } from 'node:fs'
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { join, dirname, relative } from 'node:path'

const COPY_CONCURRENCY = 8
const READ_PIECE = 8 << 20

/** Every regular file under `root`, sorted (absolute paths). */
export async function listFiles (root: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await fsp.readdir(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath ?? e.path, e.name))
  }
  return out.sort()
}

/** Copy every file of `src` to the same relative path under `dst`. */
export async function copyTree (src: string, dst: string): Promise<void> {
  const files = await listFiles(src)
  const dirs = new Set(files.map(f => dirname(join(dst, relative(src, f)))))
  for (const d of [...dirs].sort()) await fsp.mkdir(d, { recursive: true })
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const f = files[next++]
      await fsp.copyFile(f, join(dst, relative(src, f)))
    }
  }
  await Promise.all(Array.from({ length: COPY_CONCURRENCY }, worker))
}

/** Read every file of `root` once so that it is served from the page cache (like anchors' warm). */
export async function warmTree (root: string): Promise<void> {
  const buf = Buffer.allocUnsafe(READ_PIECE)
  for (const f of await listFiles(root)) {
    const fh = await fsp.open(f, 'r')
    try {
      while ((await fh.read(buf, 0, buf.byteLength, null)).bytesRead > 0) {}
    } finally {
      await fh.close()
    }
  }
}

export async function sha256File (path: string): Promise<string> {
  const h = createHash('sha256')
  const buf = Buffer.allocUnsafe(READ_PIECE)
  const fh = await fsp.open(path, 'r')
  try {
    for (let n; (n = (await fh.read(buf, 0, buf.byteLength, null)).bytesRead) > 0;) h.update(buf.subarray(0, n))
  } finally {
    await fh.close()
  }
  return h.digest('hex')
}

/** Bytes available to this user on the file system holding `dir`. */
export async function freeBytes (dir: string): Promise<number> {
  const st = await fsp.statfs(dir)
  return st.bavail * st.bsize
}

/** Write back all dirty pages (so a timed phase does not pay for an earlier copy); best effort. */
export function syncDisks (): void {
  try { execFileSync('sync', { stdio: 'ignore' }) } catch {}
}

/** A deterministic pseudo-random stream in [0, 1) (mulberry32): sizes and names of bench trees. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
