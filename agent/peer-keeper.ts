// PeerKeeper: keeps the agent connected to the peers it met. Every proven peer's address goes into
// the index; a peer whose connection drops is dialled again at its last address, soon at first, then
// with a growing backoff (bounded count of timers, all cleared at close); a peer needed to fetch a
// shard is found at its last address first and through the DHT (its owner topic) second. A
// connection that went silent (a NAT that lost its mapping, a peer gone without a reset) is closed by
// the channel's idle timeout (net/channel.ts IDLE_TIMEOUT_MS) and redialled from here.

import type { NetNode, Peer } from '../net/index.js'
import type { Discovery } from '../dht/index.js'
import type { IndexDb } from './index-db.js'
import { AgentError, AgentCodes } from './errors.js'

export const RECONNECT_MIN_MS = 2_000
export const RECONNECT_MAX_MS = 5 * 60_000
export const CONNECT_TIMEOUT_MS = 10_000
export const MAX_RECONNECTS = 1024
/** First redial of a connection that dropped: this soon (jittered), so work waiting on it resumes; then the backoff. */
export const REDIAL_FIRST_MS = 250
/** A connection that lived less than this and dropped is redialled twice as late as last time, not soon again (no dial storms). */
export const FLAP_MS = 5_000

export interface PeerKeeperOptions {
  readonly net: NetNode
  readonly db: IndexDb
  readonly discovery: Discovery | null
  readonly reconnectMinMs?: number
  readonly reconnectMaxMs?: number
  readonly connectTimeoutMs?: number
}

export class PeerKeeper {
  private readonly opts: PeerKeeperOptions
  private readonly timers = new Map<string, { timer: NodeJS.Timeout, delay: number }>()
  /** Per peer (key hex, at most MAX_RECONNECTS): the delay of the last redial after a drop. */
  private readonly lastDelay = new Map<string, number>()
  private closed = false

  constructor (opts: PeerKeeperOptions) {
    this.opts = opts
    opts.net.on('peer-close', (p) => this.dropped(p))
    opts.net.on('peer', (p) => {
      const t = this.timers.get(p.key.toString('hex'))
      if (t !== undefined) { clearTimeout(t.timer); this.timers.delete(p.key.toString('hex')) }
    })
  }

  /**
   * A connection closed: redial its peer soon, so that work waiting on it (a PUT, a fetch) goes on,
   * and twice as late as last time when the connection had only just opened (it flaps: a storm of
   * dials would not help). A failed dial backs off from reconnectMinMs (schedule). A connection
   * replaced by a newer one to the same peer needs no redial: the timer finds that one open.
   */
  private dropped (p: Peer): void {
    const hex = p.key.toString('hex')
    const prev = this.lastDelay.get(hex)
    const d = prev !== undefined && Date.now() - p.connectedAt < FLAP_MS
      ? Math.min(Math.max(prev * 2, REDIAL_FIRST_MS), this.opts.reconnectMaxMs ?? RECONNECT_MAX_MS)
      : REDIAL_FIRST_MS / 5 + Math.floor(Math.random() * REDIAL_FIRST_MS)
    this.lastDelay.delete(hex)
    this.lastDelay.set(hex, d)
    if (this.lastDelay.size > MAX_RECONNECTS) this.lastDelay.delete(this.lastDelay.keys().next().value as string)
    this.schedule(p.key, d)
  }

  /** A peer proven at an address (by discovery or by us dialling it). */
  noteAddress (key: Uint8Array, host: string, port: number): void {
    this.opts.db.notePeer(key, host, port)
  }

  private schedule (key: Buffer, delay?: number): void {
    if (this.closed) return
    const hex = key.toString('hex')
    if (this.opts.db.peer(key) === null) return
    const prev = this.timers.get(hex)
    if (prev !== undefined) return
    if (this.timers.size >= MAX_RECONNECTS) return
    const min = this.opts.reconnectMinMs ?? RECONNECT_MIN_MS
    const d = delay ?? min
    const timer = setTimeout(() => {
      this.timers.delete(hex)
      if (this.closed || this.opts.net.peer(key)?.isOpen === true) return
      this.connect(key).catch(() => {
        this.schedule(key, Math.min(Math.max(d * 2, min), this.opts.reconnectMaxMs ?? RECONNECT_MAX_MS))
      })
    }, d)
    timer.unref()
    this.timers.set(hex, { timer, delay: d })
  }

  /** Keep dialling this peer (at its last address, with backoff) until it is connected: holders of my shards. */
  keep (key: Buffer): void {
    if (this.opts.net.peer(key)?.isOpen === true) return
    // Not sooner than the redial after its last drop: the monitor asks at every drop of a flapping peer.
    this.schedule(key, this.lastDelay.get(key.toString('hex')) ?? 50 + Math.floor(Math.random() * 200))
  }

  /** An open connection to this identity: the existing one, its last address, or the DHT. */
  async connect (key: Buffer, signal?: AbortSignal): Promise<Peer> {
    const { net, db, discovery } = this.opts
    const open = net.peer(key)
    if (open !== undefined && open.isOpen) return open
    const timeout = AbortSignal.timeout(this.opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS)
    const sig = signal === undefined ? timeout : AbortSignal.any([signal, timeout])
    const row = db.peer(key)
    let lastError: unknown = null
    if (row !== null) {
      try {
        return await net.connect({ host: row.host, port: row.port }, { expect: key, signal: sig })
      } catch (err) {
        lastError = err
      }
    }
    if (discovery !== null) {
      try {
        const found = await discovery.findPeer(key, { signal, timeoutMs: this.opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS })
        for (const e of found) db.notePeer(key, e.host, e.port)
        const p = net.peer(key)
        if (p !== undefined && p.isOpen) return p
      } catch (err) {
        lastError = err
      }
    }
    throw new AgentError(AgentCodes.FETCH_FAILED, `peer ${key.toString('hex').slice(0, 12)} is unreachable: ${(lastError as Error | null)?.message ?? 'no known address'}`)
  }

  close (): void {
    this.closed = true
    for (const t of this.timers.values()) clearTimeout(t.timer)
    this.timers.clear()
    this.lastDelay.clear()
  }
}
