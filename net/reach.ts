// Reach: how a node gets to a peer it cannot dial directly (docs/reachability.md §4–§5), and its
// part in helping others do so. Client side: when a direct dial has not answered within
// INDIRECT_AFTER_MS, ask up to INTRODUCE_FANOUT connected peers to INTRODUCE this node to the target
// (by key, or by the address discovery gave); the introducer sends the target a PUNCH notice with
// both public addresses and a fresh nonce; both sides punch (hole-punch.ts) and this side dials uTP
// to the address the target's PUNCH came from. If that fails, open a circuit through a peer that
// volunteers as a relay (relay.ts). Connections over a relay are retried as punched ones every
// UPGRADE_INTERVAL_MS. Server side: answer INTRODUCE (as the third node), PUNCH (as the target), and
// the RELAY_* requests (as a relay or as an end). All of it bounded and rate-limited: a hostile peer
// gets this node to send at most a few small datagrams to a host it is connected from.

import { randomBytes } from 'node:crypto'
import { NetError, NetCodes } from './errors.js'
import { Caps } from './handshake.js'
import { HolePuncher, PUNCH_WINDOW_MS } from './hole-punch.js'
import { RelayEnds, RelayService, type RelayServiceOptions, type RelayStats } from './relay.js'
import type { ObservedAddress, Reply, Request } from './messages.js'
import { PerMinute } from './rate-limit.js'
import type { Peer } from './peer.js'
import type { Endpoint, PathName, RawConnection } from './transport.js'

/** A direct dial still unanswered after this long is raced by the indirect ways. */
export const INDIRECT_AFTER_MS = 1_500
export const INTRODUCE_FANOUT = 4
export const INTRODUCE_TIMEOUT_MS = 5_000
/** INTRODUCE requests answered per asking peer per minute, and PUNCH notices taken per minute. */
export const INTRODUCES_PER_PEER_PER_MIN = 20
export const PUNCHES_PER_MIN = 60
/** Relays tried, one after the other, for one connection. */
export const RELAY_TRIES = 3
/** How often connections over a relay try to become punched ones (a peer that failed waits twice as long each time)... */
export const UPGRADE_INTERVAL_MS = 60_000
/** ...up to this long between two tries for one peer (behind a symmetric NAT it may never work). */
export const UPGRADE_MAX_GAP_MS = 30 * 60_000

export type ReachKind = 'introduce' | 'punch' | 'relay' | 'data'

/** What Reach needs of its node. */
export interface ReachHost {
  readonly key: Buffer
  peers: () => Peer[]
  peer: (key: Buffer) => Peer | undefined
  /** This node's public uTP address as its peers see it (NAT observer), if known. */
  publicAddress: () => ObservedAddress | null
  sendDatagram: (buf: Buffer, host: string, port: number) => void
  /** Dial uTP at exactly this address and run the handshake (expecting `key`). */
  dialUtp: (to: Endpoint, key: Buffer, signal: AbortSignal, path: PathName) => Promise<Peer>
  /** Run the initiator's handshake over a raw connection (a relay circuit). */
  handshakeOut: (raw: RawConnection, key: Buffer, signal: AbortSignal) => Promise<Peer>
  /** An inbound raw connection (a relay circuit a relay offered): run the responder's handshake. */
  incoming: (raw: RawConnection) => void
  /** Tell the node's warnings. */
  warn: (err: NetError, peer?: Peer) => void
}

export interface ReachOptions {
  readonly relay?: RelayServiceOptions
  /** Try introductions, punching and relays at all (default true). */
  readonly indirect?: boolean
  readonly indirectAfterMs?: number
  readonly upgradeIntervalMs?: number
  readonly punchWindowMs?: number
}

export interface DialGoal {
  readonly key?: Buffer
  readonly host: string
  readonly port?: number
}

export class Reach {
  readonly puncher: HolePuncher
  readonly relay: RelayService
  readonly ends: RelayEnds
  private readonly introduces = new PerMinute(INTRODUCES_PER_PEER_PER_MIN)
  private readonly punches = new PerMinute(PUNCHES_PER_MIN)
  private readonly upgrader: NodeJS.Timeout
  /** Per relayed peer (key hex): when to try it again, and the gap after the next failure. */
  private readonly upgradeAt = new Map<string, { at: number, gap: number }>()
  private readonly abort = new AbortController()

  constructor (private readonly host: ReachHost, private readonly opts: ReachOptions = {}) {
    this.puncher = new HolePuncher(host.sendDatagram)
    this.relay = new RelayService(opts.relay ?? { enabled: false }, key => host.peer(key))
    this.ends = new RelayEnds(raw => host.incoming(raw))
    this.upgrader = setInterval(() => { this.upgrade().catch(() => {}) }, opts.upgradeIntervalMs ?? UPGRADE_INTERVAL_MS)
    this.upgrader.unref()
  }

  get indirect (): boolean { return this.opts.indirect !== false }
  /** The caps bit this node announces in its handshake. */
  get caps (): number { return this.relay.enabled ? Caps.RELAY : 0 }
  relayStats (): RelayStats { return this.relay.stats() }

  // ------------------------------------------------------------------------------------ client

  /**
   * Race a running direct dial with the indirect ways (introduction + punch, then a relay), started
   * when the direct one has not answered within INDIRECT_AFTER_MS or has failed. The first peer wins.
   */
  async race (direct: Promise<Peer>, goal: DialGoal, signal?: AbortSignal): Promise<Peer> {
    if (!this.indirect || isLoopback(goal.host)) return await direct
    const stop = new AbortController()
    const sig = AbortSignal.any(signal === undefined ? [stop.signal, this.abort.signal] : [signal, stop.signal, this.abort.signal])
    let indirect: Promise<Peer> | null = null
    const startIndirect = (): Promise<Peer> => {
      indirect ??= (async () => {
        if (this.host.peers().every(p => !p.isOpen)) throw new NetError(NetCodes.CONNECT_FAILED, `${goal.host}: no peer to introduce this node`)
        return await this.connectIndirect(goal, sig)
      })()
      return indirect
    }
    const later = new Promise<Peer>((resolve, reject) => {
      const timer = setTimeout(() => { startIndirect().then(resolve, reject) }, this.opts.indirectAfterMs ?? INDIRECT_AFTER_MS)
      timer.unref()
      direct.then(() => clearTimeout(timer), (err: unknown) => {
        clearTimeout(timer)
        // Who answered was the wrong peer, or refused us: no other way will do better.
        if (err instanceof NetError && (err.code === NetCodes.PEER_MISMATCH || err.code === NetCodes.VERSION_MISMATCH || err.code === NetCodes.REFUSED || err.code === NetCodes.ABORTED)) { reject(err); return }
        startIndirect().then(resolve, reject)
      })
    })
    try {
      return await Promise.any([direct, later])
    } catch (err) {
      const errors = (err as AggregateError).errors as unknown[]
      throw errors.find(e => e instanceof NetError && e.code !== NetCodes.CONNECT_FAILED && e.code !== NetCodes.TIMEOUT) ?? errors[errors.length - 1]
    } finally {
      stop.abort()
    }
  }

  /** Introduction and punch, then relays. */
  async connectIndirect (goal: DialGoal, signal: AbortSignal): Promise<Peer> {
    const errors: unknown[] = []
    let key = goal.key
    try {
      const intro = await this.introduce(goal, signal)
      key ??= intro.key
      const found = await this.puncher.punch(intro.nonce, intro.addr.host, intro.addr.port, { signal, windowMs: this.opts.punchWindowMs ?? PUNCH_WINDOW_MS })
      if (found === null) throw new NetError(NetCodes.CONNECT_FAILED, `${intro.addr.host}:${intro.addr.port}: no PUNCH came back (a symmetric NAT?)`)
      return await this.host.dialUtp(found, intro.key, signal, 'punched')
    } catch (err) {
      errors.push(err)
    }
    if (key !== undefined) {
      try { return await this.relayTo(key, signal) } catch (err) { errors.push(err) }
    }
    const why = errors.map(e => (e as Error).message).join('; ')
    throw new NetError(NetCodes.CONNECT_FAILED, `${goal.host}: not reachable directly, by punching or through a relay: ${why}`)
  }

  /** Ask connected peers to introduce this node to the goal; the first that can wins. */
  private async introduce (goal: DialGoal, signal: AbortSignal): Promise<{ key: Buffer, addr: ObservedAddress, nonce: Buffer }> {
    const helpers = shuffle(this.host.peers().filter(p => p.isOpen && p.path !== 'relayed' && (goal.key === undefined || !p.key.equals(goal.key)) && !(goal.port !== undefined && p.remote.host === goal.host && sameNode(p, goal.port)))).slice(0, INTRODUCE_FANOUT)
    if (helpers.length === 0) throw new NetError(NetCodes.NOT_FOUND, 'no connected peer to introduce this node')
    const req: Extract<Request, { kind: 'INTRODUCE' }> = {
      kind: 'INTRODUCE',
      target: goal.key ?? Buffer.alloc(32),
      targetAddr: goal.key === undefined && goal.port !== undefined ? { host: goal.host, port: goal.port } : null,
      self: this.host.publicAddress()
    }
    try {
      return await Promise.any(helpers.map(async p => await p.request(req, { timeoutMs: INTRODUCE_TIMEOUT_MS, signal })))
    } catch (err) {
      const errors = (err as AggregateError).errors as Error[]
      throw new NetError(NetCodes.NOT_FOUND, `none of ${helpers.length} peers could introduce this node: ${errors.map(e => e.message).join('; ')}`)
    }
  }

  /** A circuit through a volunteering relay to `key`, with the handshake run inside it. */
  async relayTo (key: Buffer, signal: AbortSignal): Promise<Peer> {
    const relays = shuffle(this.host.peers().filter(p => p.isOpen && (p.caps & Caps.RELAY) !== 0 && p.path !== 'relayed' && !p.key.equals(key))).slice(0, RELAY_TRIES)
    if (relays.length === 0) throw new NetError(NetCodes.NOT_FOUND, 'no connected peer relays')
    let last: unknown = null
    for (const r of relays) {
      if (signal.aborted) break
      try {
        const raw = await this.ends.open(r, key, signal)
        try {
          return await this.host.handshakeOut(raw, key, signal)
        } catch (err) {
          raw.stream.destroy()
          throw err
        }
      } catch (err) {
        last = err
      }
    }
    throw last instanceof NetError ? last : new NetError(NetCodes.CONNECT_FAILED, `no relay got through: ${String(last)}`)
  }

  /** Try to turn relayed connections into punched ones. */
  private async upgrade (): Promise<void> {
    const relayed = this.host.peers().filter(p => p.isOpen && p.path === 'relayed')
    const keys = new Set(relayed.map(p => p.key.toString('hex')))
    for (const k of [...this.upgradeAt.keys()]) if (!keys.has(k)) this.upgradeAt.delete(k)
    const every = this.opts.upgradeIntervalMs ?? UPGRADE_INTERVAL_MS
    for (const p of relayed) {
      if (this.abort.signal.aborted) return
      const k = p.key.toString('hex')
      const due = this.upgradeAt.get(k)
      if (due !== undefined && due.at > Date.now()) continue
      const sig = AbortSignal.any([this.abort.signal, AbortSignal.timeout(INTRODUCE_TIMEOUT_MS + PUNCH_WINDOW_MS + 10_000)])
      try {
        const intro = await this.introduce({ key: p.key, host: p.remote.host }, sig)
        const found = await this.puncher.punch(intro.nonce, intro.addr.host, intro.addr.port, { signal: sig, windowMs: this.opts.punchWindowMs })
        if (found === null) throw new NetError(NetCodes.CONNECT_FAILED, 'no PUNCH came back')
        await this.host.dialUtp(found, intro.key, sig, 'punched')
        this.upgradeAt.delete(k)
      } catch {
        // Stays relayed; tried again after a gap that doubles each time, up to UPGRADE_MAX_GAP_MS.
        const gap = Math.min(UPGRADE_MAX_GAP_MS, (due?.gap ?? every / 2) * 2)
        this.upgradeAt.set(k, { at: Date.now() + gap, gap })
      }
    }
  }

  // ------------------------------------------------------------------------------------ server

  async handle (peer: Peer, req: Extract<Request, { kind: 'INTRODUCE' | 'PUNCH' | 'RELAY_OPEN' | 'RELAY_ACCEPT' | 'RELAY_DATA' | 'RELAY_CLOSE' }>): Promise<Reply> {
    switch (req.kind) {
      case 'INTRODUCE': return await this.onIntroduce(peer, req)
      case 'PUNCH': return this.onPunch(peer, req)
      case 'RELAY_OPEN': return await this.relay.open(peer, req.target)
      case 'RELAY_ACCEPT': return await this.ends.handle(peer, req)
      case 'RELAY_DATA': return this.ends.has(peer, req.circuit) ? await this.ends.handle(peer, req) : await this.relay.data(peer, req.circuit, req.data)
      case 'RELAY_CLOSE': return this.ends.has(peer, req.circuit) ? await this.ends.handle(peer, req) : this.relay.close(peer, req.circuit)
    }
  }

  /** As the third node: find the target among my peers and tell it to punch towards the asker. */
  private async onIntroduce (asker: Peer, req: Extract<Request, { kind: 'INTRODUCE' }>): Promise<Reply> {
    if (!this.introduces.allow(asker.key.toString('hex'))) throw new NetError(NetCodes.BUSY, `more than ${INTRODUCES_PER_PEER_PER_MIN} introductions a minute`)
    const byKey = !req.target.every(b => b === 0)
    const target = byKey
      ? this.host.peer(req.target)
      : this.host.peers().find(p => req.targetAddr !== null && p.remote.host === req.targetAddr.host && sameNode(p, req.targetAddr.port))
    if (target === undefined || !target.isOpen || target.path === 'relayed') throw new NetError(NetCodes.NOT_FOUND, 'not connected to that peer')
    if (target.key.equals(asker.key)) throw new NetError(NetCodes.REFUSED, 'that is you')
    const askerAddr = udpAddressOf(asker, req.self)
    const targetAddr = udpAddressOf(target, null)
    if (askerAddr === null || targetAddr === null) throw new NetError(NetCodes.NOT_FOUND, 'no UDP address known for one of you')
    const nonce = randomBytes(8)
    try {
      await target.request({ kind: 'PUNCH', from: asker.key, addr: askerAddr, nonce }, { timeoutMs: INTRODUCE_TIMEOUT_MS, signal: asker.signal })
    } catch (err) {
      throw new NetError(NetCodes.REFUSED, `${target.shortId} did not take the introduction: ${(err as Error).message.replace(/^[A-Z_]+: /, '')}`)
    }
    return { kind: 'INTRODUCE', key: target.key, addr: targetAddr, nonce }
  }

  /** As the target: a peer I trust enough to be connected to says `from` wants in; punch towards it. */
  private onPunch (by: Peer, req: Extract<Request, { kind: 'PUNCH' }>): Reply {
    if (req.from.equals(this.host.key)) throw new NetError(NetCodes.REFUSED, 'that is me')
    if (this.host.peer(req.from)?.isOpen === true) return { kind: 'PUNCH' } // already connected
    if (!this.punches.allow('all')) throw new NetError(NetCodes.BUSY, `more than ${PUNCHES_PER_MIN} punches a minute`)
    this.puncher.punch(req.nonce, req.addr.host, req.addr.port, { signal: this.abort.signal, windowMs: this.opts.punchWindowMs }).catch(() => {})
    void by
    return { kind: 'PUNCH' }
  }

  close (): void {
    this.abort.abort()
    clearInterval(this.upgrader)
    this.puncher.close()
    this.ends.close()
  }
}

/** Whether `port` is one of the peer's (its connection's, or its HELLO's uTP or TCP port). */
function sameNode (p: Peer, port: number): boolean {
  return p.remote.port === port || p.hello?.utpPort === port || p.hello?.tcpPort === port
}

/**
 * Where a peer's UDP socket is seen from: its uTP connection's address; over TCP, its host and the
 * uTP port it claims (or says it is seen at, when that is the host it connects from).
 */
function udpAddressOf (p: Peer, claimed: ObservedAddress | null): ObservedAddress | null {
  if (p.transport === 'utp') return { host: p.remote.host, port: p.remote.port }
  if (p.transport !== 'tcp') return null
  if (claimed !== null && claimed.host === p.remote.host) return claimed
  const port = p.hello?.utpPort ?? 0
  return port > 0 ? { host: p.remote.host, port } : null
}

function isLoopback (host: string): boolean {
  return host.startsWith('127.') || host === '::1' || host === 'localhost'
}

function shuffle<T> (a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]]
  }
  return a
}
