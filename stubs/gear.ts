// The FastCDC gear table: 256 fixed 32-bit values, derived (not random) so any implementation can
// rebuild it: GEAR[i] = first 4 bytes, little-endian, of BLAKE2b-512(ASCII "dustbox/v1/gear" || byte i).

import { createHash } from 'node:crypto'

export const GEAR_LABEL = 'dustbox/v1/gear'

function buildGear (): Int32Array {
  const table = new Int32Array(256)
  const label = Buffer.from(GEAR_LABEL, 'ascii')
  for (let i = 0; i < 256; i++) {
    const digest = createHash('blake2b512').update(label).update(Buffer.from([i])).digest()
    table[i] = digest.readInt32LE(0)
  }
  return table
}

export const GEAR: Int32Array = buildGear()
