// What ingest and hydrate share: the crypto backend, the owner's keys, the block store, the worker
// pool, chunker parameters and the memory budget. Built and owned by StubEngine.

import type { Crypto } from './crypto.js'
import type { Keys } from './keys.js'
import type { BlockStore } from './block-store.js'
import type { BlockPool } from './block-pool.js'
import type { ChunkerParams } from './chunker.js'
import type { Semaphore } from './semaphore.js'

export interface EngineContext {
  readonly crypto: Crypto
  readonly keys: Keys
  readonly store: BlockStore
  readonly pool: BlockPool
  readonly chunker: ChunkerParams
  /** The owner's keyed gear table. */
  readonly gear: Int32Array
  /** Bytes of blocks in flight (read but not yet stored / decoded but not yet written). */
  readonly budget: Semaphore
}

export interface Progress {
  readonly file: string
  readonly state: 'stubbing' | 'verifying' | 'stubbed' | 'hydrating' | 'hydrated'
  readonly bytes: number
  readonly total: number
}

export interface OpOptions {
  signal?: AbortSignal
  onProgress?: (p: Progress) => void
}
