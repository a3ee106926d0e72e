// The agent's status as the control API returns it (`dustbox status [--json]`): identity, ports,
// DHT, peers (with what each holds for the other), folders (files by state, bytes), the ingest
// queue, placement (why it waits, bytes sent, fair-exchange balance) and the cache. Plain JSON:
// numbers and strings only, no keys beyond public ones.

import type { Agent } from './agent.js'
import { GRACE_BYTES } from './placement.js'

export interface PeerStatus {
  readonly id: string
  readonly short: string
  readonly connected: boolean
  readonly holdsForMe: number
  readonly iHoldForThem: number
  readonly offersSpace: boolean
  readonly freeForMe: number
}

export interface FolderStatus {
  readonly path: string
  readonly files: Record<string, number>
  readonly bytes: Record<string, number>
}

export interface AgentStatus {
  readonly version: 1
  readonly identity: string
  readonly home: string
  readonly uptimeMs: number
  readonly host: string
  readonly port: number
  readonly dhtPort: number
  readonly dht: { readonly nodes: number, readonly ready: boolean }
  readonly redundancy: { readonly k: number, readonly m: number }
  readonly peers: PeerStatus[]
  readonly folders: FolderStatus[]
  readonly queue: { readonly pending: number, readonly active: number, readonly stubbed: number, readonly failed: number }
  readonly placement: { readonly waiting: string | null, readonly bytesSent: number, readonly shardsSent: number, readonly taken: number, readonly donated: number, readonly grace: number, readonly given: number }
  readonly cache: { readonly bytes: number, readonly limit: number }
  readonly fetchedBytes: number
}

export function buildStatus (a: Agent): AgentStatus {
  const usage = a.net.usage()
  const info = a.placement.peerInfo()
  const ids = new Set<string>([...usage.keys(), ...a.net.peers().map(p => p.key.toString('hex'))])
  const peers: PeerStatus[] = []
  for (const hex of ids) {
    const p = a.net.peer(Buffer.from(hex, 'hex'))
    const i = info.get(hex)
    peers.push({
      id: p?.id ?? hex,
      short: hex.slice(0, 8),
      connected: p?.isOpen === true,
      holdsForMe: a.placement.takenOn(hex),
      iHoldForThem: usage.get(hex)?.heldForThem ?? 0,
      offersSpace: i?.offers === true,
      freeForMe: i?.free ?? 0
    })
  }
  peers.sort((x, y) => Number(y.connected) - Number(x.connected) || x.short.localeCompare(y.short))
  const folders = new Map<string, FolderStatus>()
  for (const f of a.config.folders) folders.set(f, { path: f, files: {}, bytes: {} })
  for (const c of a.db.counts()) {
    const f = folders.get(c.folder)
    if (f === undefined) continue
    f.files[c.state] = c.n
    f.bytes[c.state] = c.bytes
  }
  const dhtStats = a.discovery?.stats()
  return {
    version: 1,
    identity: a.engine.keys.ownerId,
    home: a.config.home,
    uptimeMs: Date.now() - a.startedAt,
    host: a.config.host,
    port: a.net.port,
    dhtPort: a.discovery?.address().port ?? 0,
    dht: { nodes: dhtStats?.nodes ?? 0, ready: (dhtStats?.nodes ?? 0) > 0 },
    redundancy: { k: a.config.k, m: a.config.m },
    peers,
    folders: [...folders.values()],
    queue: { pending: a.queue.pending, active: a.queue.active, stubbed: a.queue.stubbed, failed: a.queue.failed },
    placement: {
      waiting: a.placement.reason,
      bytesSent: a.placement.bytesSent,
      shardsSent: a.placement.shardsSent,
      taken: a.placement.taken,
      donated: a.config.donate,
      grace: a.config.tunables.graceBytes ?? GRACE_BYTES,
      given: a.net.store?.used ?? 0
    },
    cache: { bytes: a.db.cacheBytes(), limit: a.config.cache },
    fetchedBytes: a.fetcher.bytesFetched
  }
}
