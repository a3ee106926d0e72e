// The FastCDC gear table: 256 32-bit values, derived (not random) so any implementation can rebuild
// it. dustbox chunks an owner's files with a table keyed by the owner's K_chunker, so block sizes are
// no public fingerprint of known files (as restic keys its chunker polynomial per repository):
//   GEAR_K[i] = first 4 bytes, little-endian, of BLAKE2b-512(key = K_chunker, ASCII "dustbox/v1/gear" || byte i)
// The unkeyed table (no key) is the default for tests and tools that have no owner.

import { createHash } from 'node:crypto'
import type { Crypto } from './crypto.js'

export const GEAR_LABEL = 'dustbox/v1/gear'

export function gearTable (crypto?: Crypto, key?: Uint8Array): Int32Array {
  const table = new Int32Array(256)
  const label = Buffer.from(GEAR_LABEL, 'ascii')
  for (let i = 0; i < 256; i++) {
    const msg = Buffer.concat([label, Buffer.from([i])])
    const digest = crypto !== undefined && key !== undefined
      ? Buffer.from(crypto.hash(msg, key, 64))
      : createHash('blake2b512').update(msg).digest()
    table[i] = digest.readInt32LE(0)
  }
  return table
}

/** The unkeyed table. */
export const GEAR: Int32Array = gearTable()
