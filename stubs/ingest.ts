// stub: file -> encrypted blocks in the store, each read back -> `.f` stub -> original removed.
// The original is removed only after every block is durable and read back, the stub is durable, and
// the file is still exactly what was read. A crash at any instant leaves the original or a valid stub.

import { promises as fsp, constants as fsc } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import type { EngineContext, OpOptions } from './context.js'
import { chunkFile, readBufferSize } from './chunker.js'
import { StubError, StubCodes, ioError } from './errors.js'
import { encodeStub, isStubBytes, MAX_BLOCKS, type Stub, type StubBlock } from './stub-format.js'
import { nameProblem, stubNameFor, isTempName } from './names.js'
import { writeFileAtomic } from './fsutil.js'
import { readStubFile } from './stub-io.js'
import { BufferPool } from './buffer-pool.js'
import { BLOCK_OVERHEAD } from './block-codec.js'
import { equalBytes } from './crypto.js'

export interface StubResult {
  readonly path: string
  readonly stubPath: string
  readonly size: number
  readonly blocks: number
  /** Blocks written to the store by this call (the rest were already there). */
  readonly newBlocks: number
  readonly storedBytes: number
}

export interface StubOptions extends OpOptions {
  /**
   * Called once every block is durable in the local store and the file was read unchanged, before
   * the stub is written (the agent places the blocks on peers here). Throwing leaves the original.
   */
  beforeStub?: (stub: Stub, path: string) => Promise<void>
  /**
   * Called with each block as it is encoded (the bytes are valid until the returned promise
   * settles; awaiting it holds the read back: the agent's backpressure). A rejection fails the stub.
   */
  onBlock?: (block: StubBlock, encrypted: Uint8Array) => Promise<void>
  /** Write the blocks to the local block store (default true; the agent places them on peers instead). */
  store?: boolean
  /** Store the blocks (and run beforeStub) but write no stub and keep the original. */
  keep?: boolean
  /**
   * A valid stub of ours for other content at the stub's name is replaced (the agent keeps the old
   * version in its index) instead of refused with TARGET_EXISTS.
   */
  replaceOtherVersion?: boolean
}

interface Identity { dev: bigint, ino: bigint, size: bigint, mtimeNs: bigint, ctimeNs: bigint }

function identityOf (st: { dev: bigint, ino: bigint, size: bigint, mtimeNs: bigint, ctimeNs: bigint }): Identity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }
}

function sameFile (a: Identity, b: Identity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs
}

export async function stubFile (ctx: EngineContext, file: string, opts: StubOptions = {}): Promise<StubResult> {
  const path = resolve(file)
  const dir = dirname(path)
  const name = basename(path)
  const where = JSON.stringify(path)
  const problem = nameProblem(name)
  if (problem !== null) throw new StubError(StubCodes.NAME_INVALID, `${where}: ${problem}`)
  if (isTempName(name)) throw new StubError(StubCodes.NAME_INVALID, `${where} is a dustbox temporary file`)
  const stubPath = join(dir, stubNameFor(name))

  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new StubError(StubCodes.NOT_A_FILE, `${where} does not exist`)
    if (code === 'ELOOP') throw new StubError(StubCodes.NOT_A_FILE, `${where} is a symbolic link; dustbox stubs regular files only`)
    throw ioError('open', path, err)
  }
  let before: Identity
  let mode: number
  const blocks: StubBlock[] = []
  let newBlocks = 0
  let storedBytes = 0
  let hash: Uint8Array
  let existing: Stub | null
  try {
    const st = await fh.stat({ bigint: true })
    if (!st.isFile()) throw new StubError(StubCodes.NOT_A_FILE, `${where} is not a regular file`)
    before = identityOf(st)
    mode = Number(st.mode & 0o7777n)
    existing = await checkExistingStub(ctx, stubPath)

    const total = Number(st.size)
    // A file of at most `min` bytes is one chunk (or none), and the whole-file hash of a one-block
    // file is that block's ph (both are H32(K_plain-hash, the bytes)), which the worker computes: no
    // second pass here. Should the file grow meanwhile, it is refused below (FILE_CHANGED) anyway.
    const oneChunk = total > 0 && total <= ctx.chunker.min
    const hasher = oneChunk ? null : ctx.crypto.hasher(ctx.keys.plainHash)
    let readBytes = 0
    let first = true
    const pending = new Set<Promise<void>>()
    let failure: unknown = null
    const reading = await ctx.readBudget.acquire(BufferPool.classOf(readBufferSize(ctx.chunker, total)))
    try {
      for await (const chunk of chunkFile(fh, { params: ctx.chunker, gear: ctx.gear, sizeHint: total, buffers: ctx.buffers, shortReadIsEof: true, signal: opts.signal, onData: b => { hasher?.update(b); readBytes += b.byteLength } })) {
        if (first) {
          first = false
          if (isStubBytes(chunk)) throw new StubError(StubCodes.NOT_A_FILE, `${where} is already a dustbox stub`)
        }
        if (failure !== null) { ctx.buffers.give(chunk); break }
        const index = blocks.length
        if (index >= MAX_BLOCKS) throw new StubError(StubCodes.FILE_TOO_LARGE, `${where} needs more than ${MAX_BLOCKS} blocks`)
        blocks.push(null as unknown as StubBlock)
        // Wait for room in the budget before reading on: this is what keeps memory flat.
        const taken = await ctx.budget.acquire(chunkCost(chunk.byteLength))
        const p = storeChunk(ctx, chunk, taken, path, opts).then(r => {
          blocks[index] = r.block
          if (r.written) newBlocks++
          storedBytes += r.block.stored
          opts.onProgress?.({ file: path, state: 'stubbing', bytes: readBytes, total })
        }).catch(err => { failure ??= err })
        pending.add(p)
        void p.finally(() => pending.delete(p))
      }
    } finally {
      ctx.readBudget.release(reading)
      await Promise.all(pending)
    }
    if (failure !== null) throw failure
    const after = identityOf(await fh.stat({ bigint: true }))
    if (!sameFile(before, after) || BigInt(readBytes) !== after.size || (oneChunk && blocks.length !== 1)) {
      throw new StubError(StubCodes.FILE_CHANGED, `${where} changed while it was being read; left as it is`)
    }
    hash = hasher !== null ? hasher.digest() : blocks[0].ph
  } finally {
    await fh.close()
  }

  // Every block was read back as it was stored; now make their directory entries durable.
  if (opts.store !== false) await ctx.store.syncDirsOf(blocks.map(b => b.id))

  if (existing !== null && !equalBytes(existing.hash, hash) && opts.replaceOtherVersion !== true) {
    throw new StubError(StubCodes.TARGET_EXISTS, `${JSON.stringify(stubPath)} is the stub of another version of ${where}; hydrate or move it away first`)
  }
  const stub: Stub = { owner: ctx.keys.ownerId, name, size: Number(before.size), mode, mtimeNs: before.mtimeNs, hash, chunker: ctx.chunker, blocks }
  if (opts.beforeStub !== undefined) await opts.beforeStub(stub, path)
  if (opts.keep === true) return { path, stubPath, size: Number(before.size), blocks: blocks.length, newBlocks, storedBytes }
  const bytes = encodeStub(ctx.crypto, ctx.keys.stubMac, stub, basename(stubPath))
  try {
    // A stub of this very content (left by a crash before the original was removed) may be
    // replaced; otherwise never overwrite whatever appeared at the stub's name meanwhile.
    await writeFileAtomic(stubPath, bytes, { mode: mode & 0o666, noClobber: existing === null, syncDir: false })
    await ctx.dirSync.sync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new StubError(StubCodes.TARGET_EXISTS, `${JSON.stringify(stubPath)} appeared while stubbing; not overwriting it`)
    throw ioError('write stub', stubPath, err)
  }
  // Last check before the original goes: it must still be the very file whose blocks we stored.
  let now: Identity | null = null
  try { now = identityOf(await fsp.lstat(path, { bigint: true })) } catch {}
  if (now === null || !sameFile(before, now)) {
    await fsp.unlink(stubPath).catch(() => {})
    throw new StubError(StubCodes.FILE_CHANGED, `${where} changed while it was being stubbed; left as it is`)
  }
  // No directory fsync after this unlink: if a crash undoes it, the original is back next to a
  // valid stub of the same content, a safe state that the next stub run completes.
  try {
    await fsp.unlink(path)
  } catch (err) {
    throw ioError('remove original', path, err)
  }
  opts.onProgress?.({ file: path, state: 'stubbed', bytes: Number(before.size), total: Number(before.size) })
  return { path, stubPath, size: Number(before.size), blocks: blocks.length, newBlocks, storedBytes }
}

/**
 * A stub already at the stub path may be replaced only when it is a valid stub of ours of the same
 * content (left by a stub run that crashed before removing the original; the caller compares the
 * hash). Anything else is the user's file or another version: TARGET_EXISTS.
 */
async function checkExistingStub (ctx: EngineContext, stubPath: string): Promise<Stub | null> {
  try {
    await fsp.lstat(stubPath)
  } catch {
    return null
  }
  try {
    return await readStubFile(ctx, stubPath)
  } catch (err) {
    throw new StubError(StubCodes.TARGET_EXISTS, `${JSON.stringify(stubPath)} already exists and is not a valid stub of this identity; not overwriting it`, { cause: err })
  }
}

/** Carries an error of the caller's onBlock hook through storeChunk's wrapping unchanged. */
class HookError extends Error {
  constructor (readonly inner: unknown) { super('hook failed') }
}

/** Budget a chunk of `size` bytes takes while in flight: its buffer and its encrypted block's. */
function chunkCost (size: number): number {
  return BufferPool.classOf(size) + BufferPool.classOf(size + BLOCK_OVERHEAD)
}

/**
 * Encode one chunk in a worker and put it in the store (which reads it back). The chunk and the
 * encrypted block are pooled buffers, given back here with the budget `taken` for them.
 */
async function storeChunk (ctx: EngineContext, chunk: Uint8Array, taken: number, path: string, opts: StubOptions): Promise<{ block: StubBlock, written: boolean }> {
  const size = chunk.byteLength
  let encoded: Uint8Array | null = null
  try {
    const out = ctx.buffers.take(size + BLOCK_OVERHEAD)
    const r = await ctx.pool.run({ type: 'encode', plain: chunk, out }, [chunk.buffer as ArrayBuffer, out.buffer as ArrayBuffer])
    ctx.buffers.give(r.plain)
    encoded = r.block
    const written = opts.store === false ? true : await ctx.store.put(r.id, r.block)
    const block: StubBlock = { id: r.id, ph: r.ph, size, stored: r.block.byteLength }
    if (opts.onBlock !== undefined) {
      try {
        await opts.onBlock(block, r.block)
      } catch (err) {
        throw new HookError(err)
      }
    }
    return { block, written }
  } catch (err) {
    if (err instanceof HookError) throw err.inner
    if (err instanceof StubError) throw err
    throw new StubError(StubCodes.WORKER_FAILED, `encoding a block of ${JSON.stringify(path)} failed: ${(err as Error).message}`, { cause: err })
  } finally {
    if (encoded !== null) ctx.buffers.give(encoded)
    ctx.buffers.give(chunk)
    ctx.budget.release(taken)
  }
}
