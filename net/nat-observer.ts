// NatObserver: what this node learns of its own reachability from the peers it talks to
// (docs/reachability.md §2). Every peer's HELLO says the address it sees this node's packets come
// from. Over uTP that is the mapping of this node's one UDP socket, so comparing what several peers
// on different hosts see tells whether the node is reachable as it is (open), behind a NAT that keeps
// one mapping for every destination (endpoint-independent: hole punching works), or behind one that
// makes a new mapping per destination (symmetric: it needs a relay). Observations are hostile input:
// bounded, one per observer, and the answer is what the majority says.

import { isIP } from 'node:net'

/** Observations kept (one per observing peer key, newest replace oldest). */
export const MAX_OBSERVATIONS = 64
/** Distinct observer hosts needed before the mapping behaviour is named (else 'nat'). */
export const MIN_OBSERVER_HOSTS = 2
/** Observations older than this are forgotten (a mapping may change: a new router, a new network). */
export const OBSERVATION_TTL_MS = 30 * 60_000

export const NatTypes = {
  /** Not known yet: no peer has said where it sees us from. */
  unknown: 'unknown',
  /** Seen at our own address and port: reachable directly. */
  open: 'open',
  /** Behind a NAT, mapping behaviour not known yet (peers on one host only). */
  nat: 'nat',
  /** Behind a NAT that keeps one public address and port for every destination. */
  endpointIndependent: 'endpoint-independent',
  /** Behind a NAT that maps each destination to another port: punching needs luck; relays work. */
  symmetric: 'symmetric'
} as const
export type NatType = (typeof NatTypes)[keyof typeof NatTypes]

export interface Observation {
  /** Key (hex) of the peer that reported it. */
  readonly by: string
  /** Address of that peer, as this node sees it. */
  readonly from: string
  readonly host: string
  readonly port: number
  readonly at: number
}

export interface Reachability {
  readonly natType: NatType
  /** Where most peers see this node's UDP socket, or null. */
  readonly publicAddress: { readonly host: string, readonly port: number } | null
  /** Peers and distinct peer hosts that reported. */
  readonly observers: number
  readonly observerHosts: number
  /** Distinct public ports reported (1 for open and endpoint-independent NATs). */
  readonly mappedPorts: number
  /** The port the router maps to this node (UPnP-IGD / NAT-PMP / PCP, docs/reachability.md §3), or absent. */
  readonly portMapped?: { readonly host: string, readonly port: number }
}

export class NatObserver {
  private readonly obs = new Map<string, Observation>()

  /**
   * `live(by)` says whether the peer that reported is connected now. Reports of connected peers
   * decide once they come from MIN_OBSERVER_HOSTS hosts, or at once when they show a public host
   * no older report has as its best (the router got a new address): otherwise reports of peers
   * that left would outvote the new mapping for up to OBSERVATION_TTL_MS (docs/reachability.md §2.2).
   */
  constructor (private readonly local: () => { hosts: readonly string[], port: number }, private readonly now: () => number = Date.now, private readonly live: (by: string) => boolean = () => true) {}

  /** A peer (key hex, address) says it sees this node's uTP socket at host:port. Invalid input is ignored. */
  observe (by: string, from: string, host: unknown, port: unknown): void {
    if (typeof host !== 'string' || isIP(host) === 0 || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return
    if (!/^[0-9a-f]{64}$/.test(by) || from.length > 64) return
    this.obs.delete(by)
    this.obs.set(by, { by, from, host, port, at: this.now() })
    if (this.obs.size > MAX_OBSERVATIONS) this.obs.delete(this.obs.keys().next().value as string)
  }

  observations (): Observation[] {
    const cutoff = this.now() - OBSERVATION_TTL_MS
    for (const [k, o] of this.obs) if (o.at < cutoff) this.obs.delete(k)
    return [...this.obs.values()]
  }

  status (): Reachability {
    const all = this.observations()
    const local = this.local()
    const overall = classify(all, local)
    const live = all.filter(o => this.live(o.by))
    if (live.length === 0 || live.length === all.length) return overall
    const liveHosts = new Set(live.map(o => o.from)).size
    const moved = !live.some(o => o.host === overall.publicAddress?.host)
    return liveHosts >= MIN_OBSERVER_HOSTS || moved ? classify(live, local) : overall
  }
}

/** The reachability a set of observations says (pure: docs/reachability.md §2.2). */
export function classify (obs: readonly Observation[], local: { hosts: readonly string[], port: number }): Reachability {
  if (obs.length === 0) return { natType: NatTypes.unknown, publicAddress: null, observers: 0, observerHosts: 0, mappedPorts: 0 }
  const votes = new Map<string, number>()
  for (const o of obs) votes.set(`${o.host}|${o.port}`, (votes.get(`${o.host}|${o.port}`) ?? 0) + 1)
  const [best] = [...votes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]
  const [host, port] = [best.slice(0, best.lastIndexOf('|')), Number(best.slice(best.lastIndexOf('|') + 1))]
  const observerHosts = new Set(obs.map(o => o.from)).size
  const ports = new Set(obs.filter(o => o.host === host).map(o => o.port))
  const base = { publicAddress: { host, port }, observers: obs.length, observerHosts, mappedPorts: ports.size }
  if (port === local.port && local.hosts.includes(host)) return { natType: NatTypes.open, ...base }
  if (observerHosts < MIN_OBSERVER_HOSTS) return { natType: NatTypes.nat, ...base }
  // Endpoint-independent: every peer, or a strict majority of them (a lying minority cannot flip
  // it), sees the same mapping; a symmetric NAT shows each destination another port.
  const majority = votes.get(best) ?? 0
  return { natType: ports.size === 1 || majority * 2 > obs.length ? NatTypes.endpointIndependent : NatTypes.symmetric, ...base }
}
