// Version vectors (docs/sync.md §3): for each file, how many changes each device made to it, as
// `device:counter` pairs. Comparing two vectors says whether one change saw the other (one vector
// dominates) or whether they were made concurrently (a conflict). Text form, sorted by device id:
// `0a1b2c3d:3,9f8e7d6c:1` (empty string = no change recorded yet).

import { AgentError, AgentCodes } from './errors.js'

export type VersionVector = ReadonlyMap<string, number>
export type Order = 'equal' | 'greater' | 'less' | 'concurrent'

/** A device id in a vector: 8 lowercase hex characters (the first 4 bytes of its device key). */
export const DEVICE_ID_RE = /^[0-9a-f]{8}$/
export const MAX_VECTOR_DEVICES = 64
export const MAX_VECTOR_TEXT = MAX_VECTOR_DEVICES * 24

export function parseVector (text: string, what = 'version vector'): Map<string, number> {
  const out = new Map<string, number>()
  if (text === '') return out
  if (text.length > MAX_VECTOR_TEXT) throw new AgentError(AgentCodes.BAD_PARAMS, `${what} is ${text.length} characters long (at most ${MAX_VECTOR_TEXT})`)
  let last = ''
  for (const part of text.split(',')) {
    const i = part.indexOf(':')
    const id = part.slice(0, i)
    const n = Number(part.slice(i + 1))
    if (i < 0 || !DEVICE_ID_RE.test(id) || !/^[1-9][0-9]{0,14}$/.test(part.slice(i + 1)) || !Number.isSafeInteger(n)) throw new AgentError(AgentCodes.BAD_PARAMS, `${what} has a bad entry ${JSON.stringify(part.slice(0, 40))}`)
    if (id <= last) throw new AgentError(AgentCodes.BAD_PARAMS, `${what} is not sorted by device, or lists ${id} twice`)
    last = id
    out.set(id, n)
  }
  if (out.size > MAX_VECTOR_DEVICES) throw new AgentError(AgentCodes.BAD_PARAMS, `${what} lists ${out.size} devices (at most ${MAX_VECTOR_DEVICES})`)
  return out
}

export function formatVector (v: VersionVector): string {
  return [...v.entries()].filter(([, n]) => n > 0).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([id, n]) => `${id}:${n}`).join(',')
}

export function compareVectors (a: VersionVector, b: VersionVector): Order {
  let aMore = false
  let bMore = false
  for (const id of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(id) ?? 0
    const y = b.get(id) ?? 0
    if (x > y) aMore = true
    else if (y > x) bMore = true
  }
  return aMore ? (bMore ? 'concurrent' : 'greater') : (bMore ? 'less' : 'equal')
}

export function mergeVectors (a: VersionVector, b: VersionVector): Map<string, number> {
  const out = new Map(a)
  for (const [id, n] of b) out.set(id, Math.max(n, out.get(id) ?? 0))
  return out
}

export function bumpVector (v: VersionVector, device: string): Map<string, number> {
  const out = new Map(v)
  out.set(device, (out.get(device) ?? 0) + 1)
  return out
}
