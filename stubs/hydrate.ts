// hydrate: `.f` stub -> blocks fetched and verified -> decrypted in workers -> temp file -> whole-file
// hash checked -> mode and mtime set -> renamed (never over an existing file) -> stub removed.
// verify: the same path without writing anything.

import { promises as fsp, constants as fsc } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import type { EngineContext, OpOptions } from './context.js'
import { StubError, StubCodes, ioError } from './errors.js'
import { readStubFile } from './stub-io.js'
import type { Stub } from './stub-format.js'
import { targetNameFor } from './names.js'
import { tempPathFor, placeNoClobber, writeAt, exists } from './fsutil.js'
import { BufferPool } from './buffer-pool.js'
import { WorkerTaskError } from './block-pool.js'
import { corrupt, missing } from './block-store.js'
import { equalBytes } from './crypto.js'

/**
 * While restoring, flush to disk in the background every this many bytes (one flush at a time), so
 * the disk writes while the cores decode, and the final fsync has only the rest to do.
 */
export const FLUSH_BYTES = 32 * 1024 * 1024

export interface HydrateResult {
  readonly stubPath: string
  readonly path: string
  readonly size: number
  readonly blocks: number
}

/**
 * Fetch, verify and decode a stub's blocks, yielding plaintexts in file order. Up to `window`
 * blocks are read and decoded ahead, within the context's memory budget. Each plaintext is a pooled
 * buffer, valid until the consumer asks for the next one.
 */
export async function * decodeBlocks (ctx: EngineContext, stub: Stub, what: string, opts: OpOptions = {}): AsyncGenerator<Uint8Array> {
  const { signal } = opts
  const source = opts.source ?? ctx.store
  const window = Math.max(1, opts.readAhead ?? ctx.pool.size * 2 + 2)
  type Decoded = { plain: Uint8Array, taken: number }
  const tasks: Array<Promise<Decoded>> = []
  let next = 0
  const done = (d: Decoded): void => {
    ctx.buffers.give(d.plain)
    ctx.budget.release(d.taken)
  }
  const start = (i: number): Promise<Decoded> => {
    const b = stub.blocks[i]
    const task = (async () => {
      const taken = await ctx.budget.acquire(BufferPool.classOf(b.stored) + BufferPool.classOf(b.size))
      const raw = ctx.buffers.take(b.stored)
      try {
        await source.readInto(b.id, what, raw)
        const out = ctx.buffers.take(b.size)
        const r = await ctx.pool.run({ type: 'decode', block: raw, out, id: b.id, ph: b.ph, size: b.size }, [raw.buffer as ArrayBuffer, out.buffer as ArrayBuffer])
        ctx.buffers.give(r.block)
        return { plain: r.plain, taken }
      } catch (err) {
        ctx.buffers.give(raw) // ignored when it went to the worker
        ctx.budget.release(taken)
        if (err instanceof WorkerTaskError) {
          if (err.failure.kind === 'missing') throw missing(b.id, what)
          throw corrupt(b.id, what, err.failure.message)
        }
        throw err
      }
    })()
    task.catch(() => {}) // awaited in order below; this only stops an early rejection counting as unhandled
    return task
  }
  try {
    while (next < stub.blocks.length && tasks.length < window) tasks.push(start(next++))
    while (tasks.length > 0) {
      signal?.throwIfAborted()
      const d = await tasks.shift()!
      if (next < stub.blocks.length) tasks.push(start(next++))
      try {
        yield d.plain
      } finally {
        done(d)
      }
    }
  } finally {
    // On early exit, let started tasks settle and give their buffers and budget back.
    for (const t of tasks) void t.then(done, () => {})
  }
}

export async function hydrateStub (ctx: EngineContext, stubFile: string, opts: OpOptions = {}): Promise<HydrateResult> {
  const stubPath = resolve(stubFile)
  const dir = dirname(stubPath)
  const stub = await readStubFile(ctx, stubPath)
  const target = join(dir, targetNameFor(basename(stubPath), stub.name))
  const where = JSON.stringify(target)
  if (await exists(target)) {
    if (!await isRestoredCopy(ctx, target, stub, opts.signal)) {
      throw new StubError(StubCodes.TARGET_EXISTS, `${where} already exists; move it away to hydrate ${JSON.stringify(stubPath)}`)
    }
    // A hydrate that crashed after placing the file left it next to its stub: finish it.
    await removeStub(ctx, dir, stubPath)
    opts.onProgress?.({ file: target, state: 'hydrated', bytes: stub.size, total: stub.size })
    return { stubPath, path: target, size: stub.size, blocks: stub.blocks.length }
  }

  const tmp = tempPathFor(target)
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600)
  } catch (err) {
    throw ioError('create', tmp, err)
  }
  let closed = false
  let flushing: Promise<void> | null = null
  try {
    const hasher = ctx.crypto.hasher(ctx.keys.plainHash)
    let written = 0
    let unflushed = 0
    for await (const plain of decodeBlocks(ctx, stub, stubPath, opts)) {
      // The write runs in libuv's thread pool while this thread hashes the same bytes (both only
      // read them); the buffer goes back to the pool when the loop moves on, after both.
      const writing = writeAt(fh, plain, written)
      hasher.update(plain)
      await writing
      written += plain.byteLength
      unflushed += plain.byteLength
      if (unflushed >= FLUSH_BYTES && flushing === null) {
        unflushed = 0
        const f: Promise<void> = fh.datasync().finally(() => { if (flushing === f) flushing = null })
        f.catch(() => {}) // awaited below (or after the loop): a failure fails the hydrate there
        flushing = f
      }
      opts.onProgress?.({ file: target, state: 'hydrating', bytes: written, total: stub.size })
    }
    if (flushing !== null) await flushing
    if (written !== stub.size || !equalBytes(hasher.digest(), stub.hash)) {
      throw new StubError(StubCodes.STUB_INVALID, `${JSON.stringify(stubPath)}: restored bytes do not match the stub's whole-file hash`)
    }
    await fh.chmod(stub.mode)
    // Node sets times with microsecond precision (the stub keeps nanoseconds). Seconds go as a
    // numeric string: Node replaces a negative number (a pre-1970 mtime) with the current time.
    await fh.utimes(new Date(), String(Number(stub.mtimeNs) / 1e9))
    await fh.sync()
    await fh.close()
    closed = true
    try {
      await placeNoClobber(tmp, target)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new StubError(StubCodes.TARGET_EXISTS, `${where} appeared while hydrating; not overwriting it`)
      throw err
    }
  } catch (err) {
    if (flushing !== null) await (flushing as Promise<void>).catch(() => {})
    if (!closed) await fh.close().catch(() => {})
    await fsp.unlink(tmp).catch(() => {})
    throw err instanceof StubError ? err : ioError('hydrate', target, err)
  }
  await removeStub(ctx, dir, stubPath)
  opts.onProgress?.({ file: target, state: 'hydrated', bytes: stub.size, total: stub.size })
  return { stubPath, path: target, size: stub.size, blocks: stub.blocks.length }
}

/** Check a stub: it authenticates, and every block is present, intact and decrypts to its hash. */
export async function verifyStub (ctx: EngineContext, stubFile: string, opts: OpOptions = {}): Promise<{ stubPath: string, size: number, blocks: number }> {
  const stubPath = resolve(stubFile)
  const stub = await readStubFile(ctx, stubPath)
  const hasher = ctx.crypto.hasher(ctx.keys.plainHash)
  let n = 0
  for await (const plain of decodeBlocks(ctx, stub, stubPath, opts)) { hasher.update(plain); n += plain.byteLength }
  if (n !== stub.size || !equalBytes(hasher.digest(), stub.hash)) {
    throw new StubError(StubCodes.STUB_INVALID, `${JSON.stringify(stubPath)}: blocks do not match the stub's whole-file hash`)
  }
  return { stubPath, size: stub.size, blocks: stub.blocks.length }
}

/** Make the restored file's directory entry durable, then remove the stub durably. */
async function removeStub (ctx: EngineContext, dir: string, stubPath: string): Promise<void> {
  try {
    await ctx.dirSync.sync(dir)
    await fsp.unlink(stubPath)
    await ctx.dirSync.sync(dir)
  } catch (err) {
    throw ioError('remove stub', stubPath, err)
  }
}

/**
 * True when `target` is a regular file holding exactly the stub's content (size and keyed whole-file
 * hash): the file a crashed hydrate already placed. Symbolic links and other types are never it. It
 * is fsynced before saying so, since the stub is about to go (nothing to do if it is durable).
 */
async function isRestoredCopy (ctx: EngineContext, target: string, stub: Stub, signal?: AbortSignal): Promise<boolean> {
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(target, fsc.O_RDONLY | fsc.O_NOFOLLOW)
  } catch {
    return false
  }
  try {
    const st = await fh.stat()
    if (!st.isFile() || st.size !== stub.size) return false
    const hasher = ctx.crypto.hasher(ctx.keys.plainHash)
    const buf = Buffer.allocUnsafe(Math.min(Math.max(stub.size, 1), COMPARE_BUFFER))
    let total = 0
    while (true) {
      signal?.throwIfAborted()
      const { bytesRead } = await fh.read(buf, 0, buf.byteLength, null)
      if (bytesRead === 0) break
      hasher.update(buf.subarray(0, bytesRead))
      total += bytesRead
    }
    if (total !== stub.size || !equalBytes(hasher.digest(), stub.hash)) return false
    await fh.sync()
    return true
  } finally {
    await fh.close()
  }
}

/** Read buffer for comparing an existing target with a stub's hash. */
const COMPARE_BUFFER = 1024 * 1024
