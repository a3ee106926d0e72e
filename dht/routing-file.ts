// The saved routing table (`dht.json` in the state dir): the node id and the nodes of the routing
// table, written atomically on close and every few minutes, read back at start so a restarted node
// rejoins through the nodes it knew instead of the bootstrap routers. The file is input like any
// other: bounded in size, every entry checked, a bad file costs a warning and a fresh start.

import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { isIPv4 } from 'node:net'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { DhtError, DhtCodes } from './errors.js'

export const ROUTING_FILE = 'dht.json'
export const MAX_ROUTING_FILE_BYTES = 1024 * 1024
export const MAX_SAVED_NODES = 2000
export const ROUTING_FORMAT = 1

export interface SavedNode { id: Buffer, host: string, port: number }
export interface RoutingState { nodeId: Buffer, nodes: SavedNode[], skipped: number }

export function routingPath (stateDir: string): string {
  return join(stateDir, ROUTING_FILE)
}

/**
 * Reads the saved table; null if there is none. A file that is not a valid table throws
 * STATE_INVALID naming it; single bad entries are skipped and counted.
 */
/**
 * Reads a JSON state file of at most `maxBytes` (checked before reading); null if it does not exist.
 * Too large or not JSON: STATE_INVALID naming the file; unreadable: IO_ERROR.
 */
export async function readStateJson (file: string, maxBytes: number): Promise<unknown> {
  let text: string
  try {
    const fh = await fsp.open(file, 'r')
    try {
      const { size } = await fh.stat()
      if (size > maxBytes) throw new DhtError(DhtCodes.STATE_INVALID, `${file} is ${size} bytes, more than the ${maxBytes} it may take`)
      text = await fh.readFile('utf8')
    } finally { await fh.close() }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    if (err instanceof DhtError) throw err
    throw new DhtError(DhtCodes.IO_ERROR, `cannot read ${file}: ${(err as Error).message}`)
  }
  try { return JSON.parse(text) } catch { throw new DhtError(DhtCodes.STATE_INVALID, `${file} is not JSON`) }
}

export async function loadRouting (stateDir: string, allow: (host: string, port: number) => boolean): Promise<RoutingState | null> {
  const file = routingPath(stateDir)
  const doc: any = await readStateJson(file, MAX_ROUTING_FILE_BYTES)
  if (doc === null) return null
  if (typeof doc !== 'object' || doc === null || doc.format !== ROUTING_FORMAT) throw new DhtError(DhtCodes.STATE_INVALID, `${file} is not a format ${ROUTING_FORMAT} routing table`)
  if (typeof doc.nodeId !== 'string' || !/^[0-9a-f]{40}$/.test(doc.nodeId)) throw new DhtError(DhtCodes.STATE_INVALID, `${file}: nodeId must be 40 lowercase hex digits`)
  if (!Array.isArray(doc.nodes)) throw new DhtError(DhtCodes.STATE_INVALID, `${file}: nodes must be a list`)
  const nodes: SavedNode[] = []
  let skipped = 0
  for (const n of doc.nodes.slice(0, MAX_SAVED_NODES)) {
    if (typeof n === 'object' && n !== null && typeof n.id === 'string' && /^[0-9a-f]{40}$/.test(n.id) &&
        typeof n.host === 'string' && isIPv4(n.host) && Number.isInteger(n.port) && allow(n.host, n.port) && n.id !== doc.nodeId) {
      nodes.push({ id: Buffer.from(n.id, 'hex'), host: n.host, port: n.port })
    } else skipped++
  }
  skipped += Math.max(0, doc.nodes.length - MAX_SAVED_NODES)
  return { nodeId: Buffer.from(doc.nodeId, 'hex'), nodes, skipped }
}

export async function saveRouting (stateDir: string, nodeId: Buffer, nodes: readonly SavedNode[]): Promise<void> {
  const doc = {
    format: ROUTING_FORMAT,
    nodeId: nodeId.toString('hex'),
    savedAt: new Date().toISOString(),
    nodes: nodes.slice(0, MAX_SAVED_NODES).map(n => ({ id: n.id.toString('hex'), host: n.host, port: n.port }))
  }
  await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 })
  await writeFileAtomic(routingPath(stateDir), Buffer.from(JSON.stringify(doc, null, 1) + '\n'), { mode: 0o600 })
}
