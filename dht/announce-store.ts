// The announce store: the peers other nodes announce to this node (BEP 5 announce_peer), in place
// of the library's unbounded-by-topic record cache. Bounded in topics, in peers per topic, in peers
// per announcing endpoint and per announcing IP; entries expire; replies carry a bounded sample that
// favours long-standing entries, so a flood of fresh fake announces cannot push real peers out of
// every reply (docs/discovery.md §6).

export const MAX_TOPICS = 1024
export const MAX_PEERS_PER_TOPIC = 256
/** Peers one announcing DHT endpoint (ip:port) may hold in one topic; a new one replaces its oldest. */
export const MAX_PER_ANNOUNCER = 2
/** Peers one announcing IP may hold in one topic; a new one replaces that IP's oldest. */
export const MAX_PER_IP = 32
/** BEP 5 leaves it open; libtorrent keeps announces 30 minutes, and peers re-announce every 15. */
export const PEER_TTL_MS = 30 * 60_000
/** Peers in one get_peers reply (50 × 8 bytes keeps the datagram far under the MTU). */
export const VALUES_PER_REPLY = 50

export interface AnnounceStoreOptions {
  readonly maxTopics?: number
  readonly maxPeersPerTopic?: number
  readonly maxPerAnnouncer?: number
  readonly maxPerIp?: number
  readonly ttlMs?: number
  readonly valuesPerReply?: number
  readonly now?: () => number
}

interface Entry { peer: Buffer, announcer: string, ip: string, first: number, last: number }

export class AnnounceStore {
  private readonly topics = new Map<string, Map<string, Entry>>()
  private readonly o: Required<Omit<AnnounceStoreOptions, 'now'>>
  private readonly now: () => number
  private count = 0

  constructor (opts: AnnounceStoreOptions = {}) {
    this.o = {
      maxTopics: opts.maxTopics ?? MAX_TOPICS,
      maxPeersPerTopic: opts.maxPeersPerTopic ?? MAX_PEERS_PER_TOPIC,
      maxPerAnnouncer: opts.maxPerAnnouncer ?? MAX_PER_ANNOUNCER,
      maxPerIp: opts.maxPerIp ?? MAX_PER_IP,
      ttlMs: opts.ttlMs ?? PEER_TTL_MS,
      valuesPerReply: opts.valuesPerReply ?? VALUES_PER_REPLY
    }
    this.now = opts.now ?? Date.now
  }

  get size (): number { return this.count }
  get topicCount (): number { return this.topics.size }

  /** Records `peer` (6 bytes: IPv4 + port) announced by `announcer` (`ip:port` of its DHT socket). */
  add (topic: string, peer: Buffer, announcer = 'self:0'): void {
    if (peer.byteLength !== 6) return
    const now = this.now()
    const ip = announcer.slice(0, announcer.lastIndexOf(':'))
    let t = this.topics.get(topic)
    if (t === undefined) {
      if (this.topics.size >= this.o.maxTopics) this.evictTopic()
      t = new Map()
      this.topics.set(topic, t)
    } else {
      this.topics.delete(topic) // most recently announced topic last: the eviction order
      this.topics.set(topic, t)
    }
    const key = peer.toString('hex')
    const old = t.get(key)
    if (old !== undefined && old.announcer === announcer) {
      old.last = now
      return
    }
    // Announced again by someone else: it moves to that announcer, within that announcer's caps.
    if (old !== undefined) { t.delete(key); this.count-- }
    this.expire(t, now)
    this.makeRoom(t, (e) => e.announcer === announcer, this.o.maxPerAnnouncer, 'stalest')
    this.makeRoom(t, (e) => e.ip === ip, this.o.maxPerIp, 'stalest')
    // A full topic keeps its long-standing peers: the newest arrival makes way, so a flood only churns itself.
    this.makeRoom(t, () => true, this.o.maxPeersPerTopic, 'newest')
    t.set(key, { peer: Buffer.from(peer), announcer, ip, first: old?.first ?? now, last: now })
    this.count++
  }

  /**
   * Up to `n` fresh peers of a topic: half the longest-standing ones, the rest a random sample of the
   * others. The library calls this `get(key, n)`.
   */
  get (topic: string, n = this.o.valuesPerReply): Buffer[] {
    const t = this.topics.get(topic)
    if (t === undefined) return []
    this.expire(t, this.now())
    if (t.size === 0) { this.topics.delete(topic); return [] }
    const all = [...t.values()]
    const want = Math.min(n, this.o.valuesPerReply, all.length)
    if (all.length <= want) return all.map(e => e.peer)
    all.sort((a, b) => a.first - b.first)
    const old = Math.ceil(want / 2)
    const out = all.slice(0, old)
    const rest = all.slice(old)
    for (let i = 0; i < want - old; i++) {
      const j = i + Math.floor(Math.random() * (rest.length - i))
      const tmp = rest[i]; rest[i] = rest[j]; rest[j] = tmp
      out.push(rest[i])
    }
    return out.map(e => e.peer)
  }

  destroy (): void {
    this.topics.clear()
    this.count = 0
  }

  /** Drops expired entries everywhere (a periodic sweep, so idle topics do not hold memory). */
  sweep (): void {
    const now = this.now()
    for (const [k, t] of this.topics) {
      this.expire(t, now)
      if (t.size === 0) this.topics.delete(k)
    }
  }

  private expire (t: Map<string, Entry>, now: number): void {
    for (const [k, e] of t) {
      if (now - e.last > this.o.ttlMs) { t.delete(k); this.count-- }
    }
  }

  /**
   * If `match` entries number `max` or more, drops one of them: the least recently announced
   * (`stalest`) or the one first seen most recently (`newest`).
   */
  private makeRoom (t: Map<string, Entry>, match: (e: Entry) => boolean, max: number, which: 'stalest' | 'newest'): void {
    let n = 0
    let victim: string | null = null
    let best = -Infinity
    for (const [k, e] of t) {
      if (!match(e)) continue
      n++
      const score = which === 'stalest' ? -e.last : e.first
      if (score > best) { best = score; victim = k }
    }
    if (n >= max && victim !== null) { t.delete(victim); this.count-- }
  }

  /** Drops the topic announced least recently. */
  private evictTopic (): void {
    const first = this.topics.keys().next().value
    if (first === undefined) return
    this.count -= this.topics.get(first)!.size
    this.topics.delete(first)
  }
}
