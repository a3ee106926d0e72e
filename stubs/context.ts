// What ingest and hydrate share: the crypto backend, the owner's keys, the block store, the worker
// pool, chunker parameters, the buffer pool, the memory budgets and the directory-fsync coalescer.
// Built and owned by StubEngine.

import type { Crypto } from './crypto.js'
import type { Keys } from './keys.js'
import type { BlockStore } from './block-store.js'
import type { BlockPool } from './block-pool.js'
import type { ChunkerParams } from './chunker.js'
import type { Semaphore } from './semaphore.js'
import type { BufferPool } from './buffer-pool.js'
import type { DirSyncer } from './dir-sync.js'

export interface EngineContext {
  readonly crypto: Crypto
  readonly keys: Keys
  readonly store: BlockStore
  readonly pool: BlockPool
  readonly chunker: ChunkerParams
  /** The owner's keyed gear table. */
  readonly gear: Int32Array
  /**
   * Bytes of block buffers in flight (read but not yet stored / decoded but not yet written), counted
   * in pooled buffer capacities.
   */
  readonly budget: Semaphore
  /** Bytes of chunker read buffers: bounds how many files are read at once. */
  readonly readBudget: Semaphore
  /** Where every block, chunk and read buffer comes from and goes back to. */
  readonly buffers: BufferPool
  readonly dirSync: DirSyncer
}

export interface Progress {
  readonly file: string
  readonly state: 'stubbing' | 'stubbed' | 'hydrating' | 'hydrated'
  readonly bytes: number
  readonly total: number
}

/**
 * Where hydrate and verify read encrypted blocks from: the local block store by default; the agent
 * passes one that fetches shards from peers. It fills `out` with exactly the block's stored bytes;
 * what it returns is checked by the decoder (AEAD and plaintext hash), never trusted.
 */
export interface BlockSource {
  readInto: (id: Uint8Array, what: string, out: Uint8Array) => Promise<void>
}

export interface OpOptions {
  signal?: AbortSignal
  onProgress?: (p: Progress) => void
  /** hydrate/verify: read blocks from here instead of the local store. */
  source?: BlockSource
  /** hydrate/verify: blocks fetched and decoded ahead (default 2 per worker + 2). */
  readAhead?: number
}
