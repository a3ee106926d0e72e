// Relays (docs/reachability.md §5): a last resort for two nodes that cannot reach each other even by
// hole punching (a symmetric NAT on one side). A node that volunteers (opt-in: `relay.enabled`)
// joins a circuit between two of its peers: RELAY_OPEN from the dialling node names the target's key,
// the relay asks the target with RELAY_ACCEPT, and RELAY_DATA requests then carry opaque chunks each
// way, every chunk acknowledged by its reply (that is the flow control: a window of RELAY_WINDOW
// chunks per direction). The two ends run the ordinary handshake and secure channel *inside* the
// circuit, so the relay forwards only ciphertext of a channel whose keys it never had: it learns who
// talks to whom and how much, never a byte of content. Caps: circuits at once, bytes per second over
// all circuits (a token bucket), bytes per circuit.
//
// RelayService is the relay's side; RelayEnds is an end's side (its circuits as RelayStreams, the
// Duplex the handshake runs over).

import { Duplex } from 'node:stream'
import { NetError, NetCodes } from './errors.js'
import { MAX_RELAY_CHUNK, type Reply, type Request } from './messages.js'
import type { Peer } from './peer.js'
import type { RawConnection } from './transport.js'

export const RELAY_MAX_CIRCUITS = 16
/** Bytes per second the relay forwards over all its circuits. */
export const RELAY_RATE_BYTES = 2 * 1024 * 1024
/** Bytes one circuit may carry before the relay closes it (the ends open another if they must). */
export const RELAY_CIRCUIT_BYTES = 1024 * 1024 * 1024
/** Chunks in flight per direction of a circuit. */
export const RELAY_WINDOW = 4
export const RELAY_REQUEST_TIMEOUT_MS = 20_000
/** Circuits an end keeps open at once (relayed connections in and out). */
export const MAX_RELAYED = 32

export interface RelayServiceOptions {
  readonly enabled: boolean
  readonly maxCircuits?: number
  readonly rateBytes?: number
  readonly circuitBytes?: number
  /** Test hook: every forwarded chunk, as the relay sees it (only ciphertext may ever appear). */
  readonly tap?: (data: Buffer) => void
}

interface Circuit {
  readonly id: number
  readonly a: Peer
  readonly b: Peer
  bytes: number
  /** Chunks are forwarded in the order they came, per direction (waiting for the rate may not reorder them). */
  order: { ab: Promise<void>, ba: Promise<void> }
}

export interface RelayStats { readonly circuits: number, readonly bytes: number, readonly opened: number }

/** A relay's side: circuits between two of its peers, forwarding chunks under the caps. */
export class RelayService {
  private readonly circuits = new Map<number, Circuit>()
  private nextId = 1
  private tokens: number
  private refilledAt = Date.now()
  private totalBytes = 0
  private opened = 0

  constructor (private readonly opts: RelayServiceOptions, private readonly peerByKey: (key: Buffer) => Peer | undefined) {
    this.tokens = this.rate
  }

  get enabled (): boolean { return this.opts.enabled }
  private get rate (): number { return this.opts.rateBytes ?? RELAY_RATE_BYTES }

  stats (): RelayStats { return { circuits: this.circuits.size, bytes: this.totalBytes, opened: this.opened } }

  async open (from: Peer, target: Buffer): Promise<Reply> {
    if (!this.opts.enabled) throw new NetError(NetCodes.REFUSED, 'this node does not relay')
    if (target.equals(from.key)) throw new NetError(NetCodes.REFUSED, 'a circuit to yourself')
    if (this.circuits.size >= (this.opts.maxCircuits ?? RELAY_MAX_CIRCUITS)) throw new NetError(NetCodes.BUSY, `already relaying ${this.circuits.size} circuits`)
    const to = this.peerByKey(target)
    if (to === undefined || !to.isOpen) throw new NetError(NetCodes.NOT_FOUND, 'not connected to that peer')
    const id = this.nextId
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1
    const c: Circuit = { id, a: from, b: to, bytes: 0, order: { ab: Promise.resolve(), ba: Promise.resolve() } }
    this.circuits.set(id, c)
    try {
      await to.request({ kind: 'RELAY_ACCEPT', circuit: id, from: from.key }, { timeoutMs: RELAY_REQUEST_TIMEOUT_MS, signal: from.signal })
    } catch (err) {
      this.circuits.delete(id)
      throw new NetError(NetCodes.REFUSED, `${to.shortId} did not take the circuit: ${(err as Error).message.replace(/^[A-Z_]+: /, '')}`)
    }
    if (!from.isOpen || !to.isOpen) { this.drop(c, null); throw new NetError(NetCodes.CLOSED, 'an end went away') }
    const onClose = (): void => this.drop(c, null)
    for (const p of [from, to]) if (p.getMaxListeners() < 64) p.setMaxListeners(64)
    from.once('close', onClose)
    to.once('close', onClose)
    this.opened++
    return { kind: 'RELAY_OPEN', circuit: id }
  }

  async data (from: Peer, circuit: number, data: Buffer): Promise<Reply> {
    const c = this.circuits.get(circuit)
    if (c === undefined || (c.a !== from && c.b !== from)) throw new NetError(NetCodes.NOT_FOUND, `no circuit ${circuit}`)
    c.bytes += data.length
    if (c.bytes > (this.opts.circuitBytes ?? RELAY_CIRCUIT_BYTES)) {
      this.drop(c, null)
      throw new NetError(NetCodes.QUOTA_EXCEEDED, `circuit ${circuit} carried its ${this.opts.circuitBytes ?? RELAY_CIRCUIT_BYTES} bytes`)
    }
    const other = c.a === from ? c.b : c.a
    const dir = c.a === from ? 'ab' : 'ba'
    // Take the rate and issue the forward in arrival order; then wait for the other end's answer.
    const issued = c.order[dir].then(async () => {
      await this.take(data.length, from.signal)
      this.totalBytes += data.length
      try { this.opts.tap?.(data) } catch {}
      return { answer: other.request({ kind: 'RELAY_DATA', circuit, data }, { timeoutMs: RELAY_REQUEST_TIMEOUT_MS, signal: from.signal }) }
    })
    c.order[dir] = issued.then(() => {}, () => {})
    try {
      await (await issued).answer
    } catch (err) {
      this.drop(c, null) // a lost chunk would corrupt the stream: the circuit ends instead
      throw err
    }
    return { kind: 'RELAY_DATA' }
  }

  close (from: Peer, circuit: number): Reply {
    const c = this.circuits.get(circuit)
    if (c !== undefined && (c.a === from || c.b === from)) this.drop(c, from)
    return { kind: 'RELAY_CLOSE' }
  }

  /** End a circuit; tell the end that did not ask (best effort). */
  private drop (c: Circuit, by: Peer | null): void {
    if (this.circuits.get(c.id) !== c) return
    this.circuits.delete(c.id)
    for (const end of [c.a, c.b]) {
      if (end === by || !end.isOpen) continue
      end.request({ kind: 'RELAY_CLOSE', circuit: c.id }, { timeoutMs: 5_000 }).catch(() => {})
    }
  }

  /** Wait until `n` bytes fit the rate (a token bucket of one second's worth). */
  private async take (n: number, signal: AbortSignal): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      const now = Date.now()
      this.tokens = Math.min(this.rate, this.tokens + (now - this.refilledAt) * this.rate / 1000)
      this.refilledAt = now
      if (this.tokens >= n || this.tokens >= this.rate) { this.tokens -= n; return }
      if (signal.aborted) throw new NetError(NetCodes.ABORTED, 'the end went away')
      await new Promise(resolve => setTimeout(resolve, Math.max(5, Math.ceil((n - this.tokens) * 1000 / this.rate))))
    }
    throw new NetError(NetCodes.BUSY, 'relay rate exhausted')
  }
}

/** One end of a circuit, as a byte stream: what the handshake and secure channel run over. */
export class RelayStream extends Duplex {
  private inflight = 0
  private waiting: (() => void) | null = null
  private readWaiters: Array<() => void> = []
  private closedRemote = false

  constructor (readonly relay: Peer, readonly circuit: number, private readonly onGone: () => void) {
    super({ allowHalfOpen: false, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 256 * 1024 })
    if (relay.getMaxListeners() < 64) relay.setMaxListeners(64)
    relay.once('close', () => { this.closedRemote = true; this.destroy(new NetError(NetCodes.CLOSED, `relay ${relay.shortId} went away`)) })
  }

  /** A chunk from the other end (through the relay): resolves once the reader has room again. */
  async deliver (data: Buffer): Promise<void> {
    if (this.destroyed) throw new NetError(NetCodes.CLOSED, `circuit ${this.circuit} is closed`)
    if (this.push(data)) return
    await new Promise<void>(resolve => {
      this.readWaiters.push(resolve)
      setTimeout(resolve, RELAY_REQUEST_TIMEOUT_MS / 2).unref()
    })
  }

  /** The other end or the relay closed the circuit. */
  remoteClosed (): void {
    this.closedRemote = true
    this.push(null)
    this.destroy()
  }

  override _read (): void {
    for (const w of this.readWaiters.splice(0)) w()
  }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    let off = 0
    const next = (): void => {
      if (off >= chunk.length) { cb(); return }
      if (this.destroyed) { cb(new NetError(NetCodes.CLOSED, `circuit ${this.circuit} is closed`)); return }
      if (this.inflight >= RELAY_WINDOW) { this.waiting = next; return }
      const piece = chunk.subarray(off, off + MAX_RELAY_CHUNK)
      off += piece.length
      this.inflight++
      this.relay.request({ kind: 'RELAY_DATA', circuit: this.circuit, data: piece }, { timeoutMs: RELAY_REQUEST_TIMEOUT_MS }).then(() => {
        this.inflight--
        const w = this.waiting
        this.waiting = null
        w?.()
      }, (err: Error) => { this.destroy(err instanceof NetError ? err : new NetError(NetCodes.CLOSED, String(err))) })
      next()
    }
    next()
  }

  override _final (cb: (err?: Error | null) => void): void {
    cb()
    this.destroy()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    for (const w of this.readWaiters.splice(0)) w()
    const w = this.waiting
    this.waiting = null
    w?.()
    if (!this.closedRemote && this.relay.isOpen) this.relay.request({ kind: 'RELAY_CLOSE', circuit: this.circuit }, { timeoutMs: 5_000 }).catch(() => {})
    this.onGone()
    cb(err)
  }
}

/** An end's circuits: opens them through a relay, takes the ones a relay offers, feeds them data. */
export class RelayEnds {
  private readonly streams = new Map<string, RelayStream>()

  constructor (private readonly onIncoming: (raw: RawConnection) => void, private readonly maxRelayed = MAX_RELAYED) {}

  get size (): number { return this.streams.size }

  /** Whether this node is an end of `circuit` through `relay` (else the request is for its relay service). */
  has (relay: Peer, circuit: number): boolean { return this.streams.has(`${relay.key.toString('hex')}:${circuit}`) }

  /** Open a circuit to `target` through `relay`: the raw connection to run the handshake over. */
  async open (relay: Peer, target: Buffer, signal?: AbortSignal): Promise<RawConnection> {
    if (this.streams.size >= this.maxRelayed) throw new NetError(NetCodes.BUSY, `already ${this.streams.size} relayed connections`)
    const r = await relay.request({ kind: 'RELAY_OPEN', target }, { timeoutMs: RELAY_REQUEST_TIMEOUT_MS, signal })
    return this.adopt(relay, r.circuit)
  }

  async handle (from: Peer, req: Extract<Request, { kind: 'RELAY_ACCEPT' | 'RELAY_DATA' | 'RELAY_CLOSE' }>): Promise<Reply> {
    const key = `${from.key.toString('hex')}:${req.circuit}`
    switch (req.kind) {
      case 'RELAY_ACCEPT': {
        if (this.streams.has(key)) throw new NetError(NetCodes.BAD_MESSAGE, `circuit ${req.circuit} is already open`)
        if (this.streams.size >= this.maxRelayed) throw new NetError(NetCodes.BUSY, `already ${this.streams.size} relayed connections`)
        const raw = this.adopt(from, req.circuit)
        this.onIncoming(raw)
        return { kind: 'RELAY_ACCEPT' }
      }
      case 'RELAY_DATA': {
        const s = this.streams.get(key)
        if (s === undefined) throw new NetError(NetCodes.NOT_FOUND, `no circuit ${req.circuit}`)
        await s.deliver(req.data)
        return { kind: 'RELAY_DATA' }
      }
      case 'RELAY_CLOSE': {
        this.streams.get(key)?.remoteClosed()
        return { kind: 'RELAY_CLOSE' }
      }
    }
  }

  private adopt (relay: Peer, circuit: number): RawConnection {
    const key = `${relay.key.toString('hex')}:${circuit}`
    const stream = new RelayStream(relay, circuit, () => { if (this.streams.get(key) === stream) this.streams.delete(key) })
    stream.on('error', () => {})
    this.streams.set(key, stream)
    return { stream, transport: 'relay', remote: relay.remote }
  }

  close (): void {
    for (const s of [...this.streams.values()]) s.destroy()
    this.streams.clear()
  }
}
