// Local content-addressed block store (docs/stub-format.md, "Block store"): one file per encrypted
// block at <root>/<first 2 hex digits of id>/<64 hex id>. Writes are atomic (temp in <root>/tmp,
// fsync, rename) and read back; syncDirsOf() makes the renames durable; get() verifies
// BLAKE2b-256(bytes) = id. It is the local cache and the outbox that the network layers use.

import { promises as fsp, constants as fsc } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Crypto } from './crypto.js'
import { HASH_BYTES, toHex, equalBytes } from './crypto.js'
import { StubError, StubCodes, ioError } from './errors.js'
import { MAX_PLAIN_BLOCK, BLOCK_OVERHEAD } from './block-codec.js'
import { BufferPool } from './buffer-pool.js'
import { DirSyncer } from './dir-sync.js'
import { writeAt } from './fsutil.js'

export const MAX_STORED_BLOCK = MAX_PLAIN_BLOCK + BLOCK_OVERHEAD
/** Temp files older than this in <root>/tmp are leftovers of a crash and are removed at ready(). */
export const STALE_TEMP_MS = 60 * 60 * 1000

export interface BlockStoreOptions {
  /** fsync each block file before rename (default true; tests of other layers may turn it off). */
  durable?: boolean
  /** Buffers for reading blocks back (default: a small pool of the store's own). */
  buffers?: BufferPool
  /** Shared coalescing directory fsyncs (default: the store's own). */
  dirSync?: DirSyncer
}

export class BlockStore {
  readonly root: string
  private readonly crypto: Crypto
  private readonly durable: boolean
  private readonly tmpDir: string
  private readonly buffers: BufferPool
  private readonly dirSync: DirSyncer
  private readyPromise: Promise<void> | null = null

  constructor (crypto: Crypto, root: string, opts: BlockStoreOptions = {}) {
    this.crypto = crypto
    this.root = root
    this.tmpDir = join(root, 'tmp')
    this.durable = opts.durable ?? true
    this.buffers = opts.buffers ?? new BufferPool(16 * 1024 * 1024)
    this.dirSync = opts.dirSync ?? new DirSyncer()
  }

  ready (): Promise<void> {
    if (this.readyPromise === null) {
      this.readyPromise = (async () => {
        await fsp.mkdir(this.tmpDir, { recursive: true, mode: 0o700 })
        const shards: Array<Promise<unknown>> = []
        for (let i = 0; i < 256; i++) shards.push(fsp.mkdir(join(this.root, i.toString(16).padStart(2, '0')), { recursive: true, mode: 0o700 }))
        await Promise.all(shards)
        await this.sweepTemps()
      })()
    }
    return this.readyPromise
  }

  /** Remove temp files a crashed writer left (only old ones: another process may be writing). */
  private async sweepTemps (): Promise<void> {
    const now = Date.now()
    let names: string[] = []
    try { names = await fsp.readdir(this.tmpDir) } catch { return }
    for (const n of names) {
      const p = join(this.tmpDir, n)
      try {
        const st = await fsp.lstat(p)
        if (st.isFile() && now - st.mtimeMs > STALE_TEMP_MS) await fsp.unlink(p)
      } catch {}
    }
  }

  pathOf (id: Uint8Array | string): string {
    const hex = typeof id === 'string' ? id : toHex(id)
    return join(this.root, hex.slice(0, 2), hex)
  }

  async has (id: Uint8Array): Promise<boolean> {
    try {
      await fsp.access(this.pathOf(id), fsc.F_OK)
      return true
    } catch {
      return false
    }
  }

  /**
   * Store an encrypted block under its id (the caller computed id = BLAKE2b-256(bytes)) and read it
   * back: when this resolves, the file at the block's path holds exactly `bytes` (its directory entry
   * is made durable by syncDirsOf). An existing identical copy is kept (dedupe); any other file there
   * (a copy a crash cut short, a corrupt one) is replaced atomically. Returns true if written. A
   * read-back that differs is BLOCK_CORRUPT.
   *
   * A new block is created directly at its path (O_EXCL), not through a temporary file: that saves
   * the shared temp directory and a cross-directory rename (both serialize concurrent writers in the
   * kernel), and is still safe, because no stub names a block before its put has resolved, and a file
   * that a crash left short fails both this comparison and every reader's hash check.
   */
  async put (id: Uint8Array, bytes: Uint8Array): Promise<boolean> {
    await this.ready()
    const path = this.pathOf(id)
    let fh: fsp.FileHandle | null = null
    try {
      fh = await fsp.open(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('write block', path, err)
    }
    if (fh === null) {
      if (await this.holds(path, bytes)) return false
      return await this.replace(id, path, bytes)
    }
    try {
      await writeAt(fh, bytes, 0)
      if (this.durable) await fh.sync()
      if (!await this.readsBackAs(fh, bytes)) throw corrupt(id, path, 'it reads back differently from what was written')
    } catch (err) {
      await removeIfStill(fh, path)
      await fh.close().catch(() => {})
      throw err instanceof StubError ? err : ioError('write block', path, err)
    }
    await fh.close()
    return true
  }

  /** Replace whatever is at `path` by `bytes`: temp file, fsync, read back, rename. */
  private async replace (id: Uint8Array, path: string, bytes: Uint8Array): Promise<boolean> {
    const tmp = join(this.tmpDir, `${toHex(id).slice(0, 16)}.${randomBytes(6).toString('hex')}`)
    let fh: fsp.FileHandle | null = null
    try {
      fh = await fsp.open(tmp, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600)
      await writeAt(fh, bytes, 0)
      if (this.durable) await fh.sync()
      if (!await this.readsBackAs(fh, bytes)) throw corrupt(id, path, 'it reads back differently from what was written')
      await fsp.rename(tmp, path)
    } catch (err) {
      await fsp.unlink(tmp).catch(() => {})
      throw err instanceof StubError ? err : ioError('write block', path, err)
    } finally {
      await fh?.close().catch(() => {})
    }
    return true
  }

  /**
   * True when `path` is a file holding exactly `bytes` (read and compared), then made durable: a copy
   * another writer is still completing, or one whose writer died before its fsync, may be complete
   * in the page cache but not yet on disk (the fsync costs nothing when it already is).
   */
  private async holds (path: string, bytes: Uint8Array): Promise<boolean> {
    let fh: fsp.FileHandle
    try {
      fh = await fsp.open(path, fsc.O_RDONLY)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw ioError('read block', path, err)
    }
    try {
      const st = await fh.stat()
      if (!st.isFile() || st.size !== bytes.byteLength || !await this.readsBackAs(fh, bytes)) return false
      if (this.durable) await fh.sync()
      return true
    } catch (err) {
      throw ioError('read block', path, err)
    } finally {
      await fh.close()
    }
  }

  /** Read the file from offset 0 and compare with `bytes`, in pieces of a pooled buffer. */
  private async readsBackAs (fh: fsp.FileHandle, bytes: Uint8Array): Promise<boolean> {
    const expected = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const piece = this.buffers.take(Math.min(Math.max(expected.byteLength, 1), READ_BACK_PIECE))
    try {
      const buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)
      let off = 0
      while (true) {
        const { bytesRead } = await fh.read(buf, 0, buf.byteLength, off)
        if (bytesRead === 0) return off === expected.byteLength
        if (off + bytesRead > expected.byteLength || !buf.subarray(0, bytesRead).equals(expected.subarray(off, off + bytesRead))) return false
        off += bytesRead
      }
    } finally {
      this.buffers.give(piece)
    }
  }

  /**
   * Make the blocks' directory entries durable: fsync the shard directories of these ids. Each
   * operation syncs its own blocks' directories (also for blocks it found already present, which a
   * crashed writer may have renamed but never synced).
   */
  async syncDirsOf (ids: Iterable<Uint8Array | string>): Promise<void> {
    if (!this.durable) return
    const dirs = new Set<string>()
    for (const id of ids) dirs.add(join(this.root, (typeof id === 'string' ? id : toHex(id)).slice(0, 2)))
    await Promise.all([...dirs].map(async d => await this.dirSync.sync(d).catch(err => { throw ioError('fsync', d, err) })))
  }

  /**
   * Read a block and check its hash. `what` names the file or stub the block belongs to, for errors.
   * BLOCK_MISSING when absent, BLOCK_CORRUPT when its bytes do not hash to its id.
   */
  async get (id: Uint8Array, what: string): Promise<Uint8Array> {
    const bytes = await this.readRaw(id, what)
    if (!equalBytes(this.crypto.hash(bytes), id)) throw corrupt(id, what, 'its bytes do not match its id')
    return bytes
  }

  /** Read a block without verifying it (the caller verifies, e.g. in a worker). */
  async readRaw (id: Uint8Array, what: string): Promise<Uint8Array> {
    return await this.withBlockFile(id, what, async (fh, size) => {
      const out = new Uint8Array(size)
      await readFull(fh, out, this.pathOf(id))
      return out
    })
  }

  /**
   * Read a block of exactly `out.byteLength` bytes into `out`, without verifying it (the caller
   * does, in a worker). BLOCK_MISSING when absent, BLOCK_CORRUPT when its length differs.
   */
  async readInto (id: Uint8Array, what: string, out: Uint8Array): Promise<void> {
    await this.withBlockFile(id, what, async (fh, size) => {
      if (size !== out.byteLength) throw corrupt(id, what, `it is ${size} bytes, the stub says ${out.byteLength}`)
      await readFull(fh, out, this.pathOf(id))
    })
  }

  private async withBlockFile<T> (id: Uint8Array, what: string, fn: (fh: fsp.FileHandle, size: number) => Promise<T>): Promise<T> {
    const path = this.pathOf(id)
    let fh: fsp.FileHandle
    try {
      fh = await fsp.open(path, fsc.O_RDONLY)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw missing(id, what)
      throw ioError('open block', path, err)
    }
    try {
      const st = await fh.stat()
      if (!st.isFile()) throw corrupt(id, what, 'it is not a regular file')
      if (st.size > MAX_STORED_BLOCK) throw corrupt(id, what, `it is ${st.size} bytes, over the ${MAX_STORED_BLOCK}-byte limit`)
      return await fn(fh, st.size)
    } finally {
      await fh.close()
    }
  }

  async delete (id: Uint8Array): Promise<void> {
    await fsp.unlink(this.pathOf(id)).catch(err => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('delete block', this.pathOf(id), err)
    })
  }

  /** Every block id in the store (hex), shard by shard. */
  async * ids (): AsyncGenerator<string> {
    for (let i = 0; i < 256; i++) {
      const dir = join(this.root, i.toString(16).padStart(2, '0'))
      let names: string[] = []
      try { names = await fsp.readdir(dir) } catch {}
      for (const n of names) if (n.length === HASH_BYTES * 2) yield n
    }
  }
}

/**
 * Remove the file we failed to write, if `path` still names it: a concurrent put of the same block
 * may have replaced it meanwhile with a complete copy, which must stay.
 */
async function removeIfStill (fh: fsp.FileHandle, path: string): Promise<void> {
  try {
    const [mine, now] = await Promise.all([fh.stat(), fsp.lstat(path)])
    if (mine.dev === now.dev && mine.ino === now.ino) await fsp.unlink(path)
  } catch {}
}

/** Read-back comparison piece size. */
const READ_BACK_PIECE = 1024 * 1024

/** Fill `out` from offset 0; a file that ends early (it shrank meanwhile) is an I/O error. */
async function readFull (fh: fsp.FileHandle, out: Uint8Array, path: string): Promise<void> {
  let off = 0
  while (off < out.byteLength) {
    const { bytesRead } = await fh.read(out, off, out.byteLength - off, off)
    if (bytesRead === 0) throw ioError('read block', path, new Error(`ended after ${off} of ${out.byteLength} bytes`))
    off += bytesRead
  }
}

export function missing (id: Uint8Array, what: string): StubError {
  return new StubError(StubCodes.BLOCK_MISSING, `block ${toHex(id)} of ${JSON.stringify(what)} is not in the block store`)
}

export function corrupt (id: Uint8Array, what: string, why: string): StubError {
  return new StubError(StubCodes.BLOCK_CORRUPT, `block ${toHex(id)} of ${JSON.stringify(what)} is corrupt: ${why}`)
}
