// Test fixtures: temporary directories removed after the test, a fresh engine on a temporary home,
// declarative file trees (Unicode names welcome), deterministic pseudo-random bytes.

import { promises as fsp, createWriteStream } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { createHash, createCipheriv, randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import type { TestContext } from 'node:test'
import { StubEngine, createSecret, loadCrypto, type EngineOptions } from '../../stubs/index.js'

export const LONG = process.env.DUSTBOX_LONG === '1'

export async function tempDir (t: TestContext, prefix = 'dustbox-test-'): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), prefix))
  t.after(async () => { await fsp.rm(dir, { recursive: true, force: true }) })
  return dir
}

/** A new home with a fresh identity, and an engine on it closed after the test. */
export async function engineFor (t: TestContext, opts: Partial<EngineOptions> = {}): Promise<{ engine: StubEngine, home: string, dir: string }> {
  const dir = await tempDir(t)
  const home = join(dir, 'home')
  const crypto = await loadCrypto()
  if (opts.secret === undefined) await createSecret(crypto, home)
  const engine = await StubEngine.open({ home, workers: 2, ...opts })
  t.after(async () => { await engine.close() })
  return { engine, home, dir }
}

export type Tree = Record<string, string | Uint8Array>

/** Write a declarative tree: { 'a/b/ünï.txt': 'text', 'big.bin': bytes }. Returns absolute paths. */
export async function writeTree (root: string, tree: Tree): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const [rel, content] of Object.entries(tree)) {
    const p = join(root, rel)
    await fsp.mkdir(dirname(p), { recursive: true })
    await fsp.writeFile(p, content)
    out[rel] = p
  }
  return out
}

/** Deterministic pseudo-random bytes (AES-256-CTR keystream of a seed). */
export function prng (seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest()
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  return c.update(Buffer.alloc(size))
}

/** Deterministic compressible text-like bytes. */
export function textLike (seed: string, size: number): Buffer {
  const words = ['dustbox', 'peer', 'block', 'stub', 'encrypted', 'folder', 'the', 'and', 'of', 'Grüße', 'données', '数据']
  const r = prng(seed, Math.ceil(size / 4) + 16)
  const parts: string[] = []
  let n = 0
  let i = 0
  while (n < size) {
    const w = words[r[i++ % r.length] % words.length] + (r[i++ % r.length] % 9 === 0 ? '\n' : ' ')
    parts.push(w)
    n += Buffer.byteLength(w)
  }
  return Buffer.from(parts.join('')).subarray(0, size)
}

export function sha256 (b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex')
}


export async function exists (path: string): Promise<boolean> {
  try { await fsp.lstat(path); return true } catch { return false }
}

/** A tmpfs of `size` on a new directory; unmounted, then removed, after the test (in that order). */
export async function smallDisk (t: TestContext, size: string): Promise<string | null> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'dustbox-disk-'))
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' })
  t.after(async () => {
    if (r.status === 0) spawnSync('umount', ['-l', dir])
    await fsp.rm(dir, { recursive: true, force: true })
  })
  return r.status === 0 ? dir : null
}

/** SHA-256 (hex) of a file, streamed. */
export async function fileSha256 (path: string): Promise<string> {
  const h = createHash('sha256')
  const fh = await fsp.open(path)
  try { for await (const b of fh.createReadStream()) h.update(b as Buffer) } finally { await fh.close().catch(() => {}) }
  return h.digest('hex')
}

/** A file of `size` random (incompressible) bytes, written 4 MiB at a time. */
export async function writeRandom (path: string, size: number): Promise<void> {
  const ws = createWriteStream(path)
  for (let done = 0; done < size;) {
    const n = Math.min(4 * 1024 * 1024, size - done)
    if (!ws.write(randomBytes(n))) await new Promise<void>(resolve => ws.once('drain', () => resolve()))
    done += n
  }
  await new Promise<void>((resolve, reject) => ws.end((err?: Error | null) => err ? reject(err) : resolve()))
}

