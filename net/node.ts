// NetNode: one node of the dustbox network. Listens on uTP and TCP (same port number), runs the
// handshake on every connection, keeps at most one authenticated connection per peer, serves other
// owners from its ShardStore, and dials peers by racing its transports (the first to finish the
// handshake wins; on a LAN usually TCP, across NATs uTP). Everything a peer sends is untrusted: bad
// input closes that connection with a `warning` event and never affects the others. A node may run
// as one device of a multi-device owner: its own key plus a certificate from the owner's identity
// (device-cert.ts); `owner` is then that identity, and peers see every device of it as one owner.

import { EventEmitter } from 'node:events'
import { NetError, NetCodes } from './errors.js'
import { initiate, respond, Caps, HANDSHAKE_TIMEOUT_MS, PROTOCOL_VERSION, MIN_PROTOCOL_VERSION, type HandshakeResult, type Identity } from './handshake.js'
import { x25519FromEd25519, type X25519KeyPair } from './noise.js'
import { SecureChannel } from './channel.js'
import { RecvBudget, RECV_BUDGET_BYTES } from './budget.js'
import { Peer, BANNABLE, type PeerOptions } from './peer.js'
import { StorageService } from './service.js'
import { DeviceService, type DeviceHandler, type KeepPointerHandler } from './device-service.js'
import { verifyDeviceCert } from './device-cert.js'
import { ShardStore, type ShardStoreOptions } from './shard-store.js'
import { Ledger } from './ledger.js'
import { peerIdFromKey, parsePeerId, shortId } from './peer-id.js'
import { MAX_FRAME_BYTES, encodeGoodbye } from './messages.js'
import { WireErrorCodes } from './errors.js'
import type { Endpoint, PathName, RawConnection, Transport, TransportName } from './transport.js'
import { UtpTransport } from './transport-utp.js'
import { TcpTransport } from './transport-tcp.js'
import { NatObserver, type Reachability } from './nat-observer.js'
import { AddressProbe } from './address-probe.js'
import { Reach, type ReachOptions } from './reach.js'
import type { RelayStats } from './relay.js'
import { networkInterfaces } from 'node:os'

export const MAX_CONNECTIONS = 256
/** A peer that sent bad input is refused for this long (by identity; addresses are not trusted). */
export const BAN_MS = 10 * 60_000
export const MAX_BANS = 10_000
export const AGENT = 'dustbox/0.1'
/** connect() to a peer reached over a relay waits this long for a direct dial before answering with the relayed one. */
export const RELAYED_DIAL_WAIT_MS = 2_000
const PATH_RANK: Readonly<Record<PathName, number>> = { direct: 0, punched: 1, relayed: 2 }

export interface NetNodeOptions {
  /** This node's transport key pair (a device's own key when `certificate` is given). */
  readonly identity: Identity
  /**
   * A device certificate (device-cert.ts) by which the owner's identity certifies `identity`'s
   * public key; sent in every handshake. Absent: the node is its own owner.
   */
  readonly certificate?: Uint8Array
  /** DEVICE requests from other devices of this node's owner (absent: refused). */
  readonly onDevice?: DeviceHandler
  /** KEEP_POINTER requests: an owner's signed BEP 44 item to re-put (absent: refused). */
  readonly onKeepPointer?: KeepPointerHandler
  /** Bind address (default 0.0.0.0; tests use 127.0.0.1). */
  readonly host?: string
  /** Port for both transports (0 picks one). */
  readonly port?: number
  readonly transports?: readonly TransportName[]
  /** Storage donated to others; null or absent: this node stores nothing for anyone. */
  readonly store?: ShardStoreOptions | null
  /** Where ledger.json lives (null: kept in memory only). */
  readonly stateDir?: string | null
  readonly agent?: string
  /** Decide on an authenticated inbound peer: return a refusal reason, or null to accept. */
  readonly accept?: (key: Buffer, remote: Endpoint, owner: Buffer) => string | null
  readonly maxConnections?: number
  readonly banMs?: number
  readonly recvBudgetBytes?: number
  readonly handshakeTimeoutMs?: number
  readonly connectTimeoutMs?: number
  readonly requestTimeoutMs?: number
  readonly keepaliveMs?: number
  readonly idleTimeoutMs?: number
  readonly frameTimeoutMs?: number
  readonly minFrameRate?: number
  readonly maxInflight?: number
  readonly maxHandlers?: number
  /** Tests: speak another version range. */
  readonly minVersion?: number
  readonly maxVersion?: number
  /** Options passed to each transport (socket buffer sizes...). */
  readonly transportOptions?: Record<string, unknown>
  /** Introductions, hole punching and relays (docs/reachability.md §4-§5); relaying is opt-in. */
  readonly reach?: ReachOptions
}

export interface NetWarning {
  readonly error: NetError
  readonly peer?: string
  readonly remote?: Endpoint
}

export interface NetNodeEvents {
  ready: []
  peer: [peer: Peer]
  'peer-close': [peer: Peer, err: NetError | null]
  warning: [w: NetWarning]
}

export interface DialTarget {
  readonly host: string
  /** Port of both transports, unless utpPort/tcpPort say otherwise. */
  readonly port?: number
  readonly utpPort?: number
  readonly tcpPort?: number
}

export interface ConnectOptions {
  /** The peer id (or raw key) the node at that address must have. */
  readonly expect?: string | Uint8Array
  readonly transports?: readonly TransportName[]
  readonly signal?: AbortSignal
}

export class NetNode extends EventEmitter<NetNodeEvents> {
  readonly identity: Identity
  readonly key: Buffer
  /** The owner this node acts for: its certificate's identity, or its own key without one. */
  readonly owner: Buffer
  /** Its own device certificate, or null. */
  readonly certificate: Buffer | null
  readonly id: string
  readonly shortId: string
  readonly store: ShardStore | null
  readonly ledger: Ledger
  private readonly opts: NetNodeOptions
  private readonly staticKey: X25519KeyPair
  private readonly transports = new Map<TransportName, Transport>()
  private readonly ports = { utp: 0, tcp: 0 }
  /** Where peers see this node's uTP socket from (docs/reachability.md §2). */
  readonly nat = new NatObserver(() => ({ hosts: localHosts(this.opts.host), port: this.ports.utp }), Date.now, by => this.byKey.has(by))
  /** Asks peers reached over TCP where they see the UDP socket (docs/reachability.md §2.1). */
  readonly probe = new AddressProbe({
    send: (buf, host, port) => { (this.transports.get('utp') as UtpTransport | undefined)?.sendDatagram(buf, host, port) },
    onObserved: (by, from, host, port) => { this.nat.observe(by, from, host, port) }
  })
  /** Introductions, hole punching, relays (reach.ts). */
  readonly reach: Reach
  private readonly budget: RecvBudget
  private readonly service: StorageService
  private readonly byKey = new Map<string, Peer>()
  private readonly raws = new Set<RawConnection>()
  private readonly dials = new Map<string, Promise<Peer>>()
  /** key hex → ban expiry (ms since epoch); oldest first, at most MAX_BANS. */
  private readonly bans = new Map<string, number>()
  private readyPromise: Promise<void> | null = null
  private portMapped: Endpoint | null = null
  private closing: Promise<void> | null = null

  constructor (opts: NetNodeOptions) {
    super()
    this.opts = opts
    this.identity = opts.identity
    this.key = Buffer.from(opts.identity.publicKey)
    if (opts.certificate !== undefined) {
      let cert
      try {
        cert = verifyDeviceCert(opts.certificate, this.key, 'this node')
      } catch (err) {
        throw new NetError(NetCodes.CONFIG_INVALID, (err as Error).message.replace(/^[A-Z_]+: /, ''), { cause: err })
      }
      this.certificate = cert.raw
      this.owner = Buffer.from(cert.identity)
    } else {
      this.certificate = null
      this.owner = this.key
    }
    this.id = peerIdFromKey(this.key)
    this.shortId = shortId(this.id)
    this.staticKey = x25519FromEd25519(opts.identity)
    this.budget = new RecvBudget(opts.recvBudgetBytes ?? RECV_BUDGET_BYTES)
    this.store = opts.store == null ? null : new ShardStore(opts.store)
    this.reach = new Reach({
      key: this.key,
      peers: () => this.peers(),
      peer: key => this.peer(key),
      publicAddress: () => this.portMapped ?? this.nat.status().publicAddress,
      sendDatagram: (buf, host, port) => { (this.transports.get('utp') as UtpTransport | undefined)?.sendDatagram(buf, host, port) },
      dialUtp: async (to, key, signal, path) => {
        const t = this.transports.get('utp')
        if (t === undefined) throw new NetError(NetCodes.CONFIG_INVALID, 'uTP is not enabled')
        return await this.dialOne(t, to, key, signal, path)
      },
      handshakeOut: async (raw, key, signal) => { this.track(raw); return await this.handshakeOut(raw, `relay:${raw.remote.host}:${raw.remote.port}`, key, signal, 'relayed') },
      incoming: raw => this.onIncoming(raw),
      warn: (err, peer) => this.warn(err, { peer: peer?.id, remote: peer?.remote })
    }, opts.reach)
    this.service = new StorageService(this.store, new DeviceService({
      onDevice: opts.onDevice,
      onKeepPointer: opts.onKeepPointer,
      onError: (err, peer) => this.warn(err, { peer: peer.id, remote: peer.remote })
    }), this.reach)
    this.ledger = new Ledger(opts.stateDir ?? null)
    const names = opts.transports ?? ['utp', 'tcp']
    if (names.length === 0) throw new NetError(NetCodes.CONFIG_INVALID, 'at least one transport is needed')
    for (const name of names) {
      const onConnection = (raw: RawConnection): void => this.onIncoming(raw)
      const t = name === 'utp' ? new UtpTransport({ onConnection, onDatagram: this.onDatagram, ...opts.transportOptions }) : new TcpTransport({ onConnection, ...opts.transportOptions })
      this.transports.set(name, t)
    }
  }

  /** Open the store and ledger, bind the transports. */
  async ready (): Promise<void> {
    this.readyPromise ??= this.start()
    await this.readyPromise
  }

  private async start (): Promise<void> {
    await this.store?.open()
    await this.ledger.load()
    const host = this.opts.host ?? '0.0.0.0'
    const want = this.opts.port ?? 0
    let lastErr: unknown
    for (let attempt = 0; attempt < (want === 0 ? 8 : 1); attempt++) {
      // Fresh transports on each attempt (a failed attempt closed the last ones).
      const list = [...this.transports.values()]
      let port = want
      try {
        for (const t of list) {
          port = await t.listen(port, host)
          this.ports[t.name] = port
        }
        this.checkUtpBuffers()
        this.emit('ready')
        return
      } catch (err) {
        lastErr = err
        // Port 0: the first transport's port was taken for the other; start over with fresh ones.
        for (const t of list) await t.close().catch(() => {})
        if (want !== 0) break
        this.recreateTransports()
      }
    }
    throw new NetError(NetCodes.CONFIG_INVALID, `cannot listen on ${host}:${want}: ${(lastErr as Error)?.message ?? String(lastErr)}`, { cause: lastErr })
  }

  /**
   * uTP needs large UDP socket buffers (docs/protocol.md §9): with the kernel's usual 208 KiB cap it
   * drops packets on every burst and crawls at 2-5 MB/s. Say so, once, with the fix.
   */
  private checkUtpBuffers (): void {
    const t = this.transports.get('utp')
    if (!(t instanceof UtpTransport)) return
    const got = t.socketBuffers().recv
    // Linux reports twice the size it grants; anything under 2 MiB granted is too small.
    if (got > 0 && got < 4 * 1024 * 1024) {
      this.warn(new NetError(NetCodes.CONFIG_INVALID, `the kernel capped the uTP receive buffer at ${Math.round(got / 2048)} KiB, so uTP transfers will be slow (a few MB/s); raise the cap with: sysctl -w net.core.rmem_max=4194304 net.core.wmem_max=4194304`))
    }
  }

  private recreateTransports (): void {
    for (const name of [...this.transports.keys()]) {
      const onConnection = (raw: RawConnection): void => this.onIncoming(raw)
      this.transports.set(name, name === 'utp' ? new UtpTransport({ onConnection, onDatagram: this.onDatagram, ...this.opts.transportOptions }) : new TcpTransport({ onConnection, ...this.opts.transportOptions }))
    }
  }

  /** A datagram on the uTP socket that is not uTP: an address probe or a PUNCH. */
  private readonly onDatagram = (buf: Buffer, from: { address: string, port: number }): void => {
    if (!this.reach.puncher.onDatagram(buf, from)) this.probe.onDatagram(buf, from)
  }

  get utpPort (): number { return this.ports.utp }
  get tcpPort (): number { return this.ports.tcp }
  /** The port of the first transport (both share it when both run). */
  get port (): number { return this.ports.utp || this.ports.tcp }

  peers (): Peer[] {
    return [...this.byKey.values()]
  }

  peer (idOrKey: string | Uint8Array): Peer | undefined {
    const key = typeof idOrKey === 'string' ? parsePeerId(idOrKey) : idOrKey
    return this.byKey.get(Buffer.from(key).toString('hex'))
  }

  /** Bytes I hold for each peer (from the store) and bytes each peer holds for me (ledger), by key hex. */
  usage (): Map<string, { heldForThem: number, heldByThem: number, reportedByThem: number }> {
    const out = new Map<string, { heldForThem: number, heldByThem: number, reportedByThem: number }>()
    for (const [k, u] of this.store?.owners() ?? []) out.set(k, { heldForThem: u.bytes, heldByThem: 0, reportedByThem: 0 })
    for (const [k, e] of this.ledger.all()) {
      const o = out.get(k) ?? { heldForThem: 0, heldByThem: 0, reportedByThem: 0 }
      o.heldByThem = e.stored
      o.reportedByThem = e.reported
      out.set(k, o)
    }
    return out
  }

  private handshakeOpts (label: string, signal?: AbortSignal, expectKey?: Uint8Array): Parameters<typeof initiate>[1] {
    return {
      identity: this.identity,
      staticKey: this.staticKey,
      caps: (this.store !== null ? Caps.STORAGE : 0) | this.reach.caps,
      minVersion: this.opts.minVersion ?? MIN_PROTOCOL_VERSION,
      maxVersion: this.opts.maxVersion ?? PROTOCOL_VERSION,
      timeoutMs: this.opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
      remoteLabel: label,
      signal,
      expectKey,
      certificate: this.certificate ?? undefined
    }
  }

  private warn (error: NetError, extra: { peer?: string, remote?: Endpoint } = {}): void {
    this.emit('warning', { error, ...extra })
  }

  // ------------------------------------------------------------------------------------- inbound

  private onIncoming (raw: RawConnection): void {
    const label = `${raw.transport}:${raw.remote.host}:${raw.remote.port}`
    if (this.closing !== null || this.raws.size >= (this.opts.maxConnections ?? MAX_CONNECTIONS)) {
      raw.stream.on('error', () => {})
      raw.stream.destroy()
      if (this.closing === null) this.warn(new NetError(NetCodes.BUSY, `${label}: refused, already ${this.raws.size} connections`), { remote: raw.remote })
      return
    }
    this.track(raw)
    respond(raw.stream, this.handshakeOpts(label)).then(hs => {
      const refusal = this.bannedReason(hs.remoteKey) ?? this.opts.accept?.(hs.remoteKey, raw.remote, hs.remoteOwner) ?? null
      this.adopt(raw, hs, false, refusal, raw.transport === 'relay' ? 'relayed' : 'direct')
    }, (err: unknown) => {
      const e = err instanceof NetError ? err : new NetError(NetCodes.HANDSHAKE_FAILED, `${label}: ${String(err)}`)
      this.warn(e, { remote: raw.remote })
      // Let a version refusal (already written) reach the peer before the socket goes.
      raw.stream.end()
      setTimeout(() => raw.stream.destroy(), 1000).unref()
    }).catch(err => this.warn(new NetError(NetCodes.INTERNAL, `${label}: ${String(err)}`)))
  }

  /** Whether this key is banned for bad input (refusal reason), or null. */
  bannedReason (key: Uint8Array): string | null {
    const k = Buffer.from(key).toString('hex')
    const until = this.bans.get(k)
    if (until === undefined) return null
    if (until <= Date.now()) { this.bans.delete(k); return null }
    return `banned for ${Math.ceil((until - Date.now()) / 1000)} s after sending bad data`
  }

  private ban (keyHex: string): void {
    const ms = this.opts.banMs ?? BAN_MS
    if (ms <= 0) return
    this.bans.delete(keyHex)
    this.bans.set(keyHex, Date.now() + ms)
    if (this.bans.size > MAX_BANS) this.bans.delete(this.bans.keys().next().value as string)
  }

  private track (raw: RawConnection): void {
    this.raws.add(raw)
    raw.stream.on('error', () => {})
    raw.stream.once('close', () => this.raws.delete(raw))
  }

  /** Turn a finished handshake into a Peer (or refuse it). Returns the peer now serving this key. */
  private adopt (raw: RawConnection, hs: HandshakeResult, initiator: boolean, refusal: string | null = null, path: PathName = 'direct'): Peer {
    const label = `${shortId(hs.remoteId)} (${raw.transport}:${raw.remote.host}:${raw.remote.port})`
    const channel = new SecureChannel(raw, hs, hs.leftover, {
      label,
      budget: this.budget,
      maxFrameBytes: MAX_FRAME_BYTES,
      frameTimeoutMs: this.opts.frameTimeoutMs,
      minFrameRate: this.opts.minFrameRate,
      idleTimeoutMs: this.opts.idleTimeoutMs
    })
    if (refusal !== null) {
      this.warn(new NetError(NetCodes.REFUSED, `${label}: refused: ${refusal}`), { peer: hs.remoteId, remote: raw.remote })
      channel.close(new NetError(NetCodes.REFUSED, refusal), encodeGoodbye(WireErrorCodes.REFUSED, refusal))
      throw new NetError(NetCodes.REFUSED, `${label}: refused: ${refusal}`)
    }
    // A uTP connection with an address this node just punched towards (or got a PUNCH from) crossed
    // the NATs thanks to that punch, whichever dial completed it.
    if (path === 'direct' && raw.transport === 'utp' && this.reach.puncher.wasPunched(raw.remote)) path = 'punched'
    const keyHex = hs.remoteKey.toString('hex')
    const popts: PeerOptions = {
      key: hs.remoteKey,
      id: hs.remoteId,
      owner: hs.remoteOwner,
      cert: hs.remoteCert,
      localKey: this.key,
      localOwner: this.owner,
      version: hs.version,
      caps: hs.remoteCaps,
      initiator,
      path,
      handler: this.service,
      localHello: { agent: this.opts.agent ?? AGENT, utpPort: this.ports.utp, tcpPort: this.ports.tcp, observed: raw.remote, maxFrame: MAX_FRAME_BYTES, maxRequests: this.opts.maxHandlers ?? 8 },
      requestTimeoutMs: this.opts.requestTimeoutMs,
      keepaliveMs: this.opts.keepaliveMs,
      maxInflight: this.opts.maxInflight,
      maxHandlers: this.opts.maxHandlers,
      onHeldByPeer: (added, reported) => this.ledger.record(keyHex, added, reported),
      reportedByPeer: BigInt(this.ledger.get(keyHex).reported)
    }
    const existing = this.byKey.get(keyHex)
    if (existing !== undefined && existing.isOpen) {
      // Both sides dialed at once: keep the connection dialed by the smaller key, on both sides alike.
      // The same side dialing again means its end of the old one is gone (it restarted, or lost it
      // without a reset, as uTP can): the new one replaces the stale one.
      // A better path wins whoever dialled: direct over punched over relayed (docs/reachability.md §5).
      const dialerOf = (p: { initiator: boolean }): Buffer => p.initiator ? this.key : hs.remoteKey
      const keepNew = PATH_RANK[path] !== PATH_RANK[existing.path]
        ? PATH_RANK[path] < PATH_RANK[existing.path]
        : existing.initiator === initiator
          ? true
          : Buffer.compare(dialerOf({ initiator }), dialerOf(existing)) < 0
      if (!keepNew) {
        channel.close(null, encodeGoodbye(WireErrorCodes.CLOSED, 'duplicate connection'))
        return existing
      }
      existing.close(NetCodes.CLOSED, 'duplicate connection')
    }
    const peer = new Peer(channel, popts)
    this.byKey.set(keyHex, peer)
    peer.on('warning', err => {
      // Over a relay, a record that fails authentication may be the relay's doing, not the peer's:
      // only what decrypted and still made no sense (BAD_MESSAGE) is the peer's own.
      if (BANNABLE.has(err.code) && (peer.path !== 'relayed' || err.code === NetCodes.BAD_MESSAGE)) this.ban(keyHex)
      this.warn(err, { peer: peer.id, remote: peer.remote })
    })
    peer.once('close', err => {
      if (this.byKey.get(keyHex) === peer) this.byKey.delete(keyHex)
      this.emit('peer-close', peer, err)
    })
    // Over uTP the peer sees this node's one UDP socket: its HELLO says at which public address. Over
    // TCP it sees an ephemeral port: the node asks its uTP port instead (the address probe).
    const seen = (h: { observed: { host: string, port: number } | null, utpPort: number }): void => {
      if (peer.transport === 'utp') { if (h.observed !== null) this.nat.observe(keyHex, peer.remote.host, h.observed.host, h.observed.port) } else if (h.utpPort > 0 && this.transports.has('utp')) this.probe.ask(keyHex, peer.remote.host, h.utpPort)
    }
    if (peer.hello !== null) seen(peer.hello)
    else peer.once('hello', seen)
    this.emit('peer', peer)
    return peer
  }

  /** What the peers say of this node's reachability: NAT type and public address (docs/reachability.md). */
  reachability (): Reachability {
    const s = this.nat.status()
    return this.portMapped === null ? s : { ...s, portMapped: this.portMapped }
  }

  /**
   * The router maps this external address to the node's port (port-mapper.ts), or no longer (null).
   * Introductions then give it as this node's address: peers dial it directly (docs/reachability.md §3).
   */
  setPortMapped (addr: Endpoint | null): void {
    this.portMapped = addr === null ? null : { host: addr.host, port: addr.port }
  }

  /** What this node relays for others (circuits open, bytes forwarded). */
  relayStats (): RelayStats {
    return this.reach.relayStats()
  }

  // ------------------------------------------------------------------------------------ outbound

  /**
   * Connect to a node (or return the open connection to it). All transports are tried at once; the
   * first to finish the handshake (and get the peer's HELLO) wins and the others are dropped.
   */
  async connect (target: DialTarget, opts: ConnectOptions = {}): Promise<Peer> {
    await this.ready()
    if (this.closing !== null) throw new NetError(NetCodes.CLOSED, 'the node is closing')
    const expectKey = opts.expect === undefined ? undefined : typeof opts.expect === 'string' ? parsePeerId(opts.expect) : opts.expect
    const dialKey = expectKey !== undefined ? Buffer.from(expectKey).toString('hex') : `${target.host}:${target.port ?? ''}:${target.utpPort ?? ''}:${target.tcpPort ?? ''}`
    if (expectKey !== undefined) {
      const open = this.byKey.get(dialKey)
      if (open?.isOpen === true && open.path !== 'relayed') return open
      // Over a relay: try for a direct path (it replaces the circuit when it wins), but answer with
      // the relayed connection if that takes more than a moment.
      if (open?.isOpen === true) {
        const better = this.dials.get(dialKey) ?? this.dial(target, expectKey, opts)
        if (!this.dials.has(dialKey)) { this.dials.set(dialKey, better); better.catch(() => {}).finally(() => this.dials.delete(dialKey)) }
        const moment = new Promise<Peer>(resolve => setTimeout(() => resolve(open), RELAYED_DIAL_WAIT_MS).unref())
        return await Promise.race([better.catch(() => open), moment])
      }
    }
    const running = this.dials.get(dialKey)
    if (running !== undefined) return await running
    // Not answered directly in time: an introduction and a punched hole, or a relay (reach.ts).
    const p = this.reach.race(this.dial(target, expectKey, opts), { key: expectKey === undefined ? undefined : Buffer.from(expectKey), host: target.host, port: target.utpPort ?? target.port }, opts.signal)
    this.dials.set(dialKey, p)
    try {
      return await p
    } finally {
      this.dials.delete(dialKey)
    }
  }

  private async dial (target: DialTarget, expectKey: Uint8Array | undefined, opts: ConnectOptions): Promise<Peer> {
    const names = (opts.transports ?? [...this.transports.keys()]).filter(n => this.transports.has(n))
    if (names.length === 0) throw new NetError(NetCodes.CONFIG_INVALID, `none of the transports ${String(opts.transports)} is enabled`)
    const race = new AbortController()
    const onAbort = (): void => race.abort()
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    const attempts = names.map(async name => {
      const port = name === 'utp' ? (target.utpPort ?? target.port) : (target.tcpPort ?? target.port)
      if (port === undefined || !(port > 0 && port < 65536)) throw new NetError(NetCodes.CONFIG_INVALID, `no ${name} port for ${target.host}`)
      return await this.dialOne(this.transports.get(name)!, { host: target.host, port }, expectKey, race.signal)
    })
    try {
      const peer = await Promise.any(attempts)
      race.abort()
      // The others stop at once, unless one already finished its handshake: the peer adopted that one
      // as the newest from this dialler, and so does this node (adopt()); both keep the same one.
      // Answer with the connection the node holds once they have settled.
      await Promise.allSettled(attempts)
      const now = this.byKey.get(peer.key.toString('hex'))
      return now !== undefined && now.isOpen ? now : peer
    } catch (err) {
      const errors = (err as AggregateError).errors as unknown[]
      throw pickError(errors, `${target.host}`)
    } finally {
      opts.signal?.removeEventListener('abort', onAbort)
    }
  }

  private async dialOne (t: Transport, remote: Endpoint, expectKey: Uint8Array | undefined, signal: AbortSignal, path: PathName = 'direct'): Promise<Peer> {
    const raw = await t.connect(remote, signal)
    this.track(raw)
    return await this.handshakeOut(raw, `${t.name}:${remote.host}:${remote.port}`, expectKey, signal, path)
  }

  /** The initiator's handshake over a connected raw stream, then the peer's HELLO. */
  private async handshakeOut (raw: RawConnection, label: string, expectKey: Uint8Array | undefined, signal: AbortSignal, path: PathName): Promise<Peer> {
    let hs: HandshakeResult
    try {
      hs = await initiate(raw.stream, this.handshakeOpts(label, signal, expectKey))
    } catch (err) {
      raw.stream.destroy()
      throw err
    }
    // Even when the race was lost meanwhile, a finished handshake is adopted: the responder has adopted
    // it already, and dropping it here would leave each side holding a different connection (dead).
    const banned = this.bannedReason(hs.remoteKey)
    if (banned !== null) {
      raw.stream.destroy()
      throw new NetError(NetCodes.REFUSED, `${label}: ${peerIdFromKey(hs.remoteKey)} is ${banned}`)
    }
    const peer = this.adopt(raw, hs, true, null, path)
    if (peer.hello !== null || !peer.isOpen) return peer
    // Wait for the peer's HELLO: a node that refuses us (after the handshake) says why in a GOODBYE.
    await new Promise<void>((resolve, reject) => {
      const ms = this.opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS
      const timer = setTimeout(() => { cleanup(); peer.close(NetCodes.TIMEOUT, 'no HELLO'); reject(new NetError(NetCodes.TIMEOUT, `${label}: no HELLO within ${ms} ms`)) }, ms)
      const onHello = (): void => { cleanup(); resolve() }
      const onClose = (err: NetError | null): void => { cleanup(); reject(err ?? new NetError(NetCodes.CLOSED, `${label}: closed before its HELLO`)) }
      const cleanup = (): void => { clearTimeout(timer); peer.off('hello', onHello); peer.off('close', onClose) }
      peer.on('hello', onHello)
      peer.on('close', onClose)
    })
    return peer
  }

  /** Close every connection, the transports, the store and the ledger. Idempotent. */
  async close (): Promise<void> {
    this.closing ??= (async () => {
      await this.readyPromise?.catch(() => {})
      this.reach.close()
      for (const p of this.byKey.values()) p.close(NetCodes.CLOSED, 'node shutting down')
      await Promise.allSettled([...this.transports.values()].map(async t => await t.close()))
      for (const r of this.raws) r.stream.destroy()
      await this.store?.close().catch(() => {})
      await this.ledger.close().catch(() => {})
    })()
    await this.closing
  }
}

/** The most telling of several dial errors: identity and version problems before connection failures. */
function pickError (errors: unknown[], what: string): NetError {
  const rank = (e: unknown): number => {
    if (!(e instanceof NetError)) return 9
    switch (e.code) {
      case NetCodes.PEER_MISMATCH: return 0
      case NetCodes.VERSION_MISMATCH: return 1
      case NetCodes.REFUSED: return 2
      case NetCodes.HANDSHAKE_FAILED: return 3
      case NetCodes.TIMEOUT: return 5
      case NetCodes.ABORTED: return 8
      default: return 6
    }
  }
  const best = [...errors].sort((a, b) => rank(a) - rank(b))[0]
  if (best instanceof NetError) return best
  return new NetError(NetCodes.CONNECT_FAILED, `${what}: ${String((best as Error)?.message ?? best)}`)
}

/** This machine's own addresses (the bound one and every interface's). */
function localHosts (bound: string | undefined): string[] {
  const out = new Set<string>(bound !== undefined && bound !== '0.0.0.0' && bound !== '::' ? [bound] : [])
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.add(i.address)
  return [...out]
}
