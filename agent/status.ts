// The agent's status as the control API returns it (`dustbox status [--json]`): identity, ports,
// DHT, peers (with what each holds for the other), folders (files by state, bytes), the ingest
// queue, placement (why it waits, bytes sent, fair-exchange balance) and the cache. Plain JSON:
// numbers and strings only, no keys beyond public ones. Also what the dashboard shows: each peer's
// address, transport and RTT, running transfers, byte totals in and out, and files by redundancy.

import type { Agent } from './agent.js'
import { GRACE_BYTES } from './placement.js'
import type { TransferStatus } from './activity.js'
import type { PeerState } from './monitor.js'
import type { RepairStatus } from './repair.js'
import type { IndexStatus } from './index-publisher.js'
import type { UnrecoverableFile } from './repair-db.js'

export interface PeerStatus {
  readonly id: string
  readonly short: string
  readonly connected: boolean
  readonly holdsForMe: number
  readonly iHoldForThem: number
  readonly offersSpace: boolean
  readonly freeForMe: number
  /** host:port of the open channel, else the last known address; null when never seen. */
  readonly address: string | null
  readonly transport: 'utp' | 'tcp' | 'relay' | null
  /** How the connection reached the peer (docs/reachability.md): direct, punched or relayed. */
  readonly path: 'direct' | 'punched' | 'relayed' | null
  readonly rttMs: number | null
  /** Monitored state (docs/audits.md §6): online, suspect, offline, lost; null for a peer holding nothing of mine. */
  readonly state: PeerState | null
  /** Audit score from 0 to 1 (1: every answer right), and why the peer is lost. */
  readonly score: number | null
  readonly lostWhy: string | null
  readonly audits: { readonly ok: number, readonly failed: number }
  /** The last proof-of-storage audit of this peer, or null when never audited. */
  readonly lastAudit: { readonly at: number, readonly ok: boolean } | null
}

/** Placed files (stubbed, or hydrated with a version) by the shards reachable on connected peers. */
export interface HealthStatus {
  readonly files: number
  readonly full: number
  readonly degraded: number
  readonly atRisk: number
  readonly unavailable: number
  /** Blocks queued or being repaired. */
  readonly repairing: number
  /** Placed files with a block that has fewer than k good copies anywhere (the `repair` method lists them). */
  readonly unrecoverable: number
  readonly checkedAt: number
}

export interface FolderStatus {
  readonly path: string
  readonly files: Record<string, number>
  readonly bytes: Record<string, number>
}

import type { SyncServiceStatus } from './sync-service.js'
import type { Reachability, PortMappingStatus } from '../net/index.js'
import { portMappingStatus } from './port-mapping.js'

export interface AgentStatus {
  readonly version: 1
  /** This device and the owner's other devices, conflicts, held deletions, the last collection (docs/sync.md). */
  readonly sync?: SyncServiceStatus
  /** What peers say of this node's reachability: NAT type, public address (docs/reachability.md). */
  readonly reachability?: Reachability
  /** The router's port mapping for this node's port: state, method, external address (docs/reachability.md §3). */
  readonly portMapping?: PortMappingStatus
  /** Relaying for others (opt-in): circuits open, circuits opened and bytes forwarded since start. */
  readonly relay?: { readonly enabled: boolean, readonly circuits: number, readonly opened: number, readonly bytes: number }
  readonly identity: string
  readonly home: string
  readonly uptimeMs: number
  readonly host: string
  readonly port: number
  readonly dhtPort: number
  readonly dht: { readonly nodes: number, readonly ready: boolean }
  /** Where the DHT is joined: the public routers, the given nodes, or none (first node of a network). */
  readonly network: { readonly bootstrap: 'public' | 'none' | string[] }
  readonly redundancy: { readonly k: number, readonly m: number }
  readonly peers: PeerStatus[]
  readonly folders: FolderStatus[]
  readonly queue: { readonly pending: number, readonly active: number, readonly stubbed: number, readonly failed: number }
  readonly placement: { readonly waiting: string | null, readonly bytesSent: number, readonly shardsSent: number, readonly taken: number, readonly donated: number, readonly devicesDonated?: number, readonly grace: number, readonly given: number }
  readonly cache: { readonly bytes: number, readonly limit: number }
  readonly fetchedBytes: number
  /** Bytes over all peer channels since the agent started (encrypted, on the wire). */
  readonly traffic: { readonly bytesIn: number, readonly bytesOut: number }
  readonly transfers: TransferStatus[]
  readonly health: HealthStatus
  readonly repair: RepairStatus
  /** The folder index on the peers (docs/index-format.md): root seq, when, size, copies, pointer put. */
  readonly index: IndexStatus
  readonly audits: { readonly rounds: number, readonly challenges: number, readonly wireBytes: number }
  /** Up to 100 files that cannot be recovered now (see health.unrecoverable for the count). */
  readonly unrecoverable: UnrecoverableFile[]
}

export function buildStatus (a: Agent): AgentStatus {
  const usage = a.net.usage()
  const info = a.placement.peerInfo()
  const ids = new Set<string>([...usage.keys(), ...a.net.peers().map(p => p.key.toString('hex')), ...a.monitor.keys()])
  const peers: PeerStatus[] = []
  for (const hex of ids) {
    const p = a.net.peer(Buffer.from(hex, 'hex'))
    const i = info.get(hex)
    const seen = p === undefined ? a.db.peer(Buffer.from(hex, 'hex')) : null
    const h = a.monitor.health(hex)
    peers.push({
      id: p?.id ?? hex,
      short: hex.slice(0, 8),
      connected: p?.isOpen === true,
      holdsForMe: a.placement.takenOn(hex),
      iHoldForThem: usage.get(hex)?.heldForThem ?? 0,
      offersSpace: i?.offers === true,
      freeForMe: i?.free ?? 0,
      address: p !== undefined ? `${p.remote.host}:${p.remote.port}` : seen !== null ? `${seen.host}:${seen.port}` : null,
      transport: p?.transport ?? null,
      path: p?.isOpen === true ? p.path : null,
      rttMs: p?.rtt ?? null,
      state: h?.state ?? null,
      score: h?.score ?? null,
      lostWhy: h?.lostWhy ?? null,
      audits: { ok: h?.auditsOk ?? 0, failed: h?.auditsFailed ?? 0 },
      lastAudit: h?.lastAudit ?? null
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
    network: { bootstrap: a.config.bootstrap === undefined ? 'public' : a.config.bootstrap === false ? 'none' : [...a.config.bootstrap] },
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
      devicesDonated: a.placement.devicesDonated,
      grace: a.config.tunables.graceBytes ?? GRACE_BYTES,
      given: a.net.store?.used ?? 0
    },
    cache: { bytes: a.db.cacheBytes(), limit: a.config.cache },
    fetchedBytes: a.fetcher.bytesFetched,
    traffic: a.activity.traffic(a.net.peers()),
    transfers: a.activity.list(),
    health: a.health(),
    repair: a.repair.status(),
    index: a.index.status(),
    audits: { rounds: a.auditor.rounds, challenges: a.auditor.challenges, wireBytes: a.auditor.wireBytes },
    unrecoverable: a.health().unrecoverable > 0 ? a.repair.unrecoverable(100) : [],
    sync: a.sync.status(),
    reachability: a.net.reachability(),
    portMapping: portMappingStatus(a),
    relay: { enabled: a.net.reach.relay.enabled, ...a.net.relayStats() }
  }
}
