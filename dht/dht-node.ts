// DhtNode: one BEP 5 / BEP 44 mainline DHT node (bittorrent-dht) behind the KRPC guard, with the
// bounded announce store, a routing table saved in the state dir and reloaded at start, and a
// promise API (lookup, announce, mutable put/get) with AbortSignals. It knows nothing of topics,
// identities or transports: discovery.ts builds on it, and `dustbox dht-node` runs it alone.
//
// Equal-seq refresh (docs/discovery.md §4 and §4.1): bittorrent-dht 11 answers a mutable `put`
// whose seq is not greater than the stored one with error 302 and leaves the stored item's age
// alone, so a re-put of an unchanged item (the owner's hourly re-put, a storage peer's kept pointer)
// would never extend its life here: it would expire VALUE_TTL_MS after the owner's last new put. BEP 44 only requires
// refusing a lower seq (and a cas mismatch). GuardedDHT therefore wraps the library's `_onput`: a put
// of the very item stored (same target, seq, v, sig and salt, a valid token, a cas if any equal to
// the stored seq, and a signature that verifies) re-sets the stored entry in the value LRU, which
// restarts its age, and is answered as a normal put. Only the entry already stored (verified when it
// was stored) is re-set: nothing from the query is stored. Everything else (a different v or sig
// under the same seq, a lower seq, a bad token, a cas mismatch, an immutable put) goes to the
// library's `_onput` unchanged, which refuses with 302 / 203 / 301 or stores a higher seq as before.

import { EventEmitter } from 'node:events'
import { isIPv4 } from 'node:net'
import sodium from 'sodium-native'
import DHT, { type MutableReply } from 'bittorrent-dht'
import bencode from 'bencode'
import { AnnounceStore, type AnnounceStoreOptions } from './announce-store.js'
import { DhtError, DhtCodes, asDhtError } from './errors.js'
import { GuardedSocket, defaultAddressPolicy, type GuardDrop, type GuardOptions, type GuardStats } from './krpc-guard.js'
import { WarningLimiter } from './rate.js'
import { loadRouting, saveRouting, MAX_SAVED_NODES } from './routing-file.js'

/** The public mainline routers, used when no --bootstrap is given. */
export const PUBLIC_BOOTSTRAP: readonly string[] = [
  'router.bittorrent.com:6881', 'router.utorrent.com:6881', 'dht.transmissionbt.com:6881', 'dht.libtorrent.org:25401'
]
export const DEFAULT_DHT_PORT = 6881
export const MAX_BOOTSTRAP_ENTRIES = 64
export const QUERY_TIMEOUT_MS = 2000
export const READY_TIMEOUT_MS = 20_000
/**
 * ready() resolves once this many nodes have answered (with a saved table: this many or half the
 * saved nodes), or when the first lookup of our own id is done, whichever comes first.
 */
export const READY_RESPONSES = 8
export const SAVE_INTERVAL_MS = 10 * 60_000
export const SWEEP_INTERVAL_MS = 60_000
/**
 * BEP 44 items stored for others: at most this many, each for at most two hours after its last put
 * (a put of a higher seq, or a re-put of the identical item: the equal-seq refresh above).
 */
export const MAX_VALUES = 1000
export const VALUE_TTL_MS = 2 * 3600_000
/** BEP 44's limit on a stored `v`, as the library checks it (error 205 above it). */
export const MAX_PUT_V_BYTES = 1000
export const MAX_TABLES = 256
export const MAX_LOOKUP_RESULTS = 512
export const WARNINGS_PER_MINUTE = 20

export interface Endpoint { readonly host: string, readonly port: number }

export interface DhtNodeOptions {
  /** UDP port (0: any free port). */
  readonly port?: number
  /** Address to bind (default 0.0.0.0). */
  readonly host?: string
  /** `host:port` entries; false: none (the first node of a network). Default PUBLIC_BOOTSTRAP. */
  readonly bootstrap?: readonly string[] | false
  /** Where dht.json (the routing table) lives; null: not saved. */
  readonly stateDir?: string | null
  /** Address policy; default: no loopback unless bootstrap or bind address is loopback. */
  readonly allowAddress?: (host: string, port: number) => boolean
  readonly guard?: Omit<GuardOptions, 'allowAddress'>
  readonly store?: AnnounceStoreOptions
  /** How long a stored BEP 44 item lives after its last put (default VALUE_TTL_MS; tests shrink it). */
  readonly valueTtlMs?: number
  readonly queryTimeoutMs?: number
  readonly readyTimeoutMs?: number
  readonly saveIntervalMs?: number
  readonly concurrency?: number
  readonly warningsPerMinute?: number
}

export interface DhtWarning { readonly error: DhtError, readonly from?: string }

export interface DhtNodeEvents {
  ready: []
  warning: [w: DhtWarning]
  close: []
}

export interface DhtStats {
  nodes: number
  announces: number
  announceTopics: number
  values: number
  tables: number
  pendingQueries: number
  inflight: number
  guard: GuardStats
}

/** Parses `host:port,...` (or a list of them); errors name the bad entry. */
export function parseBootstrap (input: string | readonly string[]): Endpoint[] {
  const list = (typeof input === 'string' ? input.split(',') : [...input]).map(s => s.trim()).filter(s => s !== '')
  if (list.length > MAX_BOOTSTRAP_ENTRIES) throw new DhtError(DhtCodes.CONFIG_INVALID, `at most ${MAX_BOOTSTRAP_ENTRIES} bootstrap addresses, got ${list.length}`)
  return list.map((entry) => {
    const m = /^([A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(entry)
    const port = m === null ? NaN : Number(m[2])
    if (m === null || port < 1 || port > 65535 || (/^[\d.]+$/.test(m[1]) && !isIPv4(m[1]))) {
      throw new DhtError(DhtCodes.CONFIG_INVALID, `bootstrap address ${JSON.stringify(entry.slice(0, 80))} is not host:port (IPv4 address or host name, port 1..65535)`)
    }
    return { host: m[1], port }
  })
}

function verify (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  if (sig.byteLength !== 64 || pk.byteLength !== 32) return false
  return sodium.crypto_sign_verify_detached(sig, msg, pk)
}

function encodePeer (host: string, port: number): Buffer {
  const b = Buffer.alloc(6)
  const parts = host.split('.')
  for (let i = 0; i < 4; i++) b[i] = Number(parts[i]) & 0xff
  b.writeUInt16BE(port, 4)
  return b
}

function sameBytes (a: unknown, b: unknown): boolean {
  return a instanceof Uint8Array && b instanceof Uint8Array && a.byteLength === b.byteLength && Buffer.compare(a, b) === 0
}

/** The `put` arguments as k-rpc hands them to `_onput` (the guard has checked their types and sizes). */
interface PutArgs { id?: Uint8Array, token?: Uint8Array, v?: Uint8Array, k?: Uint8Array, sig?: Uint8Array, salt?: Uint8Array, seq?: number, cas?: number }
interface KrpcPeer { address?: string, host?: string, port: number }

/** The library internals the equal-seq refresh uses (bittorrent-dht 11 client.js `_onput` and its helpers). */
interface PutInternals {
  _onput (query: { a?: PutArgs }, peer: KrpcPeer): void
  _validateToken (host: string, token: Uint8Array): boolean
  _hash (data: Buffer): Buffer
}

const libOnput = (DHT.prototype as unknown as PutInternals)._onput

/** The bytes a mutable item's signature covers, exactly as the library builds them (client.js encodeSigData). */
function sigData (a: PutArgs): Uint8Array {
  const ref: Record<string, unknown> = { seq: a.seq ?? 0, v: a.v }
  if (a.salt !== undefined) ref.salt = a.salt
  return bencode.encode(ref).subarray(1, -1)
}

/**
 * bittorrent-dht with our announce store (it records who announced each peer, for the per-announcer
 * caps) and the equal-seq refresh of stored BEP 44 items (file header).
 */
class GuardedDHT extends DHT {
  store!: AnnounceStore

  override _addPeer (peer: { host: string, port: number }, infoHash: Buffer, from: { host: string, port: number }): void {
    if (!isIPv4(peer.host)) return
    this.store.add(infoHash.toString('hex'), encodePeer(peer.host, peer.port), `${from.host}:${from.port}`)
    this.emit('announce', peer, infoHash, from)
  }

  /** Called by the library for every incoming `put`: the equal-seq refresh, else the library's own handler. */
  _onput (query: { a?: PutArgs }, peer: KrpcPeer): void {
    if (this.refreshStored(query, peer)) return
    libOnput.call(this, query, peer)
  }

  /**
   * If `query` re-puts exactly the mutable item stored under its target, with a valid token, a cas
   * (if any) equal to the stored seq and a signature that verifies: re-sets the stored entry (its age
   * starts again), answers as a normal put and returns true. Otherwise returns false, answering nothing.
   */
  private refreshStored (query: { a?: PutArgs }, peer: KrpcPeer): boolean {
    const a = query.a
    if (a === undefined || a.id === undefined || a.token === undefined || a.k === undefined || a.sig === undefined) return false
    if (!(a.v instanceof Uint8Array) || a.v.byteLength > MAX_PUT_V_BYTES || typeof a.seq !== 'number') return false
    const lib = this as unknown as PutInternals
    if (!lib._validateToken(peer.address ?? peer.host ?? '', a.token)) return false
    const k = Buffer.from(a.k.buffer, a.k.byteOffset, a.k.byteLength)
    const key = lib._hash(a.salt !== undefined ? Buffer.concat([k, a.salt]) : k)
    const keyHex = key.toString('hex')
    const prev = this._values.get(keyHex)
    if (prev === undefined || prev === null || prev.seq !== a.seq) return false
    if (!sameBytes(prev.k, a.k) || !sameBytes(prev.sig, a.sig) || !sameBytes(prev.v, a.v)) return false
    if (!(prev.salt === undefined ? a.salt === undefined : sameBytes(prev.salt, a.salt))) return false
    if (typeof a.cas === 'number' && a.cas !== prev.seq) return false
    if (!verify(a.sig, sigData(a), a.k)) return false
    this.emit('put', key, a.v)
    this._values.set(keyHex, prev)
    this._rpc.response(peer, query, { id: this._rpc.id })
    return true
  }
}

export class DhtNode extends EventEmitter<DhtNodeEvents> {
  readonly bootstrap: Endpoint[]
  readonly allow: (host: string, port: number) => boolean
  private dht: GuardedDHT | null = null
  private guard: GuardedSocket | null = null
  private readyPromise: Promise<void> | null = null
  private closePromise: Promise<void> | null = null
  private timers: NodeJS.Timeout[] = []
  private readonly limiter: WarningLimiter
  private closed = false

  constructor (readonly opts: DhtNodeOptions = {}) {
    super()
    this.bootstrap = opts.bootstrap === false ? [] : parseBootstrap(opts.bootstrap ?? PUBLIC_BOOTSTRAP)
    const port = opts.port ?? DEFAULT_DHT_PORT
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new DhtError(DhtCodes.CONFIG_INVALID, `DHT port ${port} is not 0..65535`)
    if (opts.host !== undefined && !isIPv4(opts.host)) throw new DhtError(DhtCodes.CONFIG_INVALID, `DHT bind address ${JSON.stringify(opts.host)} is not an IPv4 address`)
    const loopback = (opts.host ?? '').startsWith('127.') || this.bootstrap.some(b => b.host.startsWith('127.') || b.host === 'localhost')
    this.allow = opts.allowAddress ?? defaultAddressPolicy(loopback)
    const ttl = opts.valueTtlMs ?? VALUE_TTL_MS
    if (!Number.isSafeInteger(ttl) || ttl < 1) throw new DhtError(DhtCodes.CONFIG_INVALID, `DHT value TTL ${ttl} ms is not a positive integer`)
    this.limiter = new WarningLimiter(opts.warningsPerMinute ?? WARNINGS_PER_MINUTE)
  }

  /** Binds, loads the saved table and bootstraps; resolves when the first lookup of our own id is done. */
  async ready (): Promise<void> {
    this.readyPromise ??= this.start()
    return await this.readyPromise
  }

  get nodeId (): Buffer { return this.need().nodeId }
  get port (): number { return this.need().address().port }

  address (): Endpoint {
    const a = this.need().address()
    return { host: a.address, port: a.port }
  }

  warn (error: DhtError, from?: string): void {
    if (this.closed || !this.limiter.allow()) return
    const held = this.limiter.flush()
    const w = held > 0 ? new DhtError(error.code, `${error.message.slice(error.code.length + 2)} (and ${held} more warnings held back)`) : error
    this.emit('warning', from === undefined ? { error: w } : { error: w, from })
  }

  private need (): GuardedDHT {
    if (this.closed) throw new DhtError(DhtCodes.CLOSED, 'the DHT node is closed')
    if (this.dht === null) throw new DhtError(DhtCodes.NOT_READY, 'the DHT node is not started: await ready() first')
    return this.dht
  }

  private async start (): Promise<void> {
    const o = this.opts
    let saved = null
    if (o.stateDir != null) {
      try {
        saved = await loadRouting(o.stateDir, this.allow)
        if (saved !== null && saved.skipped > 0) this.warn(new DhtError(DhtCodes.STATE_INVALID, `skipped ${saved.skipped} bad entries of the saved routing table in ${o.stateDir}`))
      } catch (err) {
        this.warn(asDhtError(err, DhtCodes.STATE_INVALID, 'saved routing table'))
      }
    }
    if (this.closed) throw new DhtError(DhtCodes.CLOSED, 'the DHT node was closed while starting')
    const guard = new GuardedSocket({ ...o.guard, allowAddress: this.allow })
    guard.on('drop', (d: GuardDrop) => {
      const code = d.reason === 'rate-limited' ? DhtCodes.RATE_LIMITED : d.reason === 'address-blocked' ? DhtCodes.ADDRESS_BLOCKED : DhtCodes.BAD_PACKET
      this.warn(new DhtError(code, `dropped a datagram from ${d.from}: ${d.detail}`), d.from)
    })
    this.guard = guard
    const dht = new GuardedDHT({
      nodeId: saved?.nodeId,
      bootstrap: this.bootstrap.map(b => ({ host: b.host, port: b.port })),
      socket: guard,
      verify,
      timeout: o.queryTimeoutMs ?? QUERY_TIMEOUT_MS,
      maxTables: MAX_TABLES,
      maxValues: { max: MAX_VALUES, maxAge: o.valueTtlMs ?? VALUE_TTL_MS },
      concurrency: o.concurrency
    })
    dht.setMaxListeners(0)
    dht._peers.destroy()
    dht.store = new AnnounceStore(o.store)
    dht._peers = dht.store
    this.dht = dht
    for (const n of saved?.nodes ?? []) dht.addNode({ id: n.id, host: n.host, port: n.port })
    // Late replies to timed-out queries ("Unexpected transaction id") are routine: not warnings.
    dht.on('warning', () => {})
    await new Promise<void>((resolve, reject) => {
      let settled = false
      const finish = (err?: Error): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (err !== undefined) reject(err); else resolve()
      }
      const timer = setTimeout(() => finish(), o.readyTimeoutMs ?? READY_TIMEOUT_MS)
      dht.once('ready', () => finish())
      let answered = 0
      // Do not wait out the timeouts of nodes that are gone: enough answers make the node ready.
      const enough = saved === null || saved.nodes.length === 0 ? READY_RESPONSES : Math.min(READY_RESPONSES, Math.ceil(saved.nodes.length / 2))
      const onresponse = (): void => { if (++answered >= enough) { (dht._rpc as any).socket.removeListener('response', onresponse); finish() } }
      ;(dht._rpc as any).socket.on('response', onresponse)
      dht.on('error', (err: NodeJS.ErrnoException) => {
        if (!settled) finish(new DhtError(DhtCodes.BIND_FAILED, `cannot bind the DHT to udp ${o.host ?? '0.0.0.0'}:${o.port ?? DEFAULT_DHT_PORT}: ${err.code ?? err.message}`))
        else this.warn(asDhtError(err, DhtCodes.IO_ERROR, 'DHT socket'))
      })
      dht.listen(o.port ?? DEFAULT_DHT_PORT, o.host ?? '0.0.0.0')
    }).catch(async (err) => { await this.close(); throw err })
    if (this.closed) throw new DhtError(DhtCodes.CLOSED, 'the DHT node was closed while starting')
    if (dht.nodes.count() === 0 && this.bootstrap.length > 0) {
      this.warn(new DhtError(DhtCodes.LOOKUP_FAILED, `no DHT node answered (bootstrap ${this.bootstrap.map(b => `${b.host}:${b.port}`).join(', ')}${saved !== null ? `, ${saved.nodes.length} saved nodes` : ''}); retrying in the background`))
    }
    const every = (ms: number, fn: () => void): void => { const t = setInterval(fn, ms); t.unref(); this.timers.push(t) }
    every(SWEEP_INTERVAL_MS, () => dht.store.sweep())
    if (o.stateDir != null) every(o.saveIntervalMs ?? SAVE_INTERVAL_MS, () => { this.save().catch(err => this.warn(asDhtError(err, DhtCodes.IO_ERROR, 'saving the routing table'))) })
    this.emit('ready')
  }

  /** Writes the routing table to the state dir now. */
  async save (): Promise<void> {
    const dht = this.dht
    if (dht === null || this.opts.stateDir == null) return
    const nodes = dht.nodes.toArray().filter(n => isIPv4(n.host)).slice(0, MAX_SAVED_NODES)
    await saveRouting(this.opts.stateDir, dht.nodeId, nodes.map(n => ({ id: n.id, host: n.host, port: n.port })))
  }

  /** get_peers over the DHT (and this node's own store): the addresses announced for `infoHash`. */
  async lookup (infoHash: Buffer, opts: { signal?: AbortSignal, max?: number, onPeer?: (e: Endpoint) => void } = {}): Promise<Endpoint[]> {
    const dht = this.need()
    const max = Math.min(opts.max ?? MAX_LOOKUP_RESULTS, MAX_LOOKUP_RESULTS)
    const found = new Map<string, Endpoint>()
    return await new Promise<Endpoint[]>((resolve, reject) => {
      const onpeer = (peer: Endpoint, ih: Buffer): void => {
        if (!ih.equals(infoHash) || found.size >= max) return
        if (!this.allow(peer.host, peer.port)) return
        const key = `${peer.host}:${peer.port}`
        if (found.has(key)) return
        const e = { host: peer.host, port: peer.port }
        found.set(key, e)
        opts.onPeer?.(e)
      }
      const done = (err: Error | null): void => {
        dht.removeListener('peer', onpeer)
        opts.signal?.removeEventListener('abort', onabort)
        if (err !== null) reject(asDhtError(err, DhtCodes.LOOKUP_FAILED, `lookup of ${infoHash.toString('hex').slice(0, 8)}`))
        else resolve([...found.values()])
      }
      const onabort = (): void => { abort(); done(new DhtError(DhtCodes.ABORTED, 'lookup aborted')) }
      dht.on('peer', onpeer)
      const abort = dht.lookup(infoHash, (err) => { if (opts.signal?.aborted !== true) done(err) }) // an abort has settled it
      opts.signal?.addEventListener('abort', onabort, { once: true })
      if (opts.signal?.aborted === true) onabort()
    })
  }

  /** announce_peer on the nodes closest to `infoHash` (after a get_peers for fresh tokens); resolves with how many took it. */
  async announce (infoHash: Buffer, port: number): Promise<void> {
    const dht = this.need()
    const once = async (): Promise<void> => await new Promise<void>((resolve, reject) => {
      dht.announce(infoHash, port, (err) => {
        if (err !== null && err !== undefined) reject(asDhtError(err, DhtCodes.ANNOUNCE_FAILED, `announce of ${infoHash.toString('hex').slice(0, 8)}`))
        else resolve()
      })
    })
    try {
      await once()
    } catch (err) {
      // bittorrent-dht reuses the tokens of its last lookup of this hash for minutes; tokens are bound
      // to the address they were given to, so after this node's public address changed (a NAT that
      // re-mapped) every announce fails until they expire. Forget them and announce once more, after
      // a fresh get_peers.
      const tables = (dht as unknown as { _tables?: { remove?: (k: string) => void } })._tables
      if (typeof tables?.remove !== 'function') throw err
      tables.remove(infoHash.toString('hex'))
      await once()
    }
  }

  /** BEP 44 mutable put of an item already signed (`sig`) or signed here (`sign`); resolves with how many nodes stored it. */
  async putMutable (item: { k: Buffer, v: Buffer, seq: number, salt?: Buffer, sig?: Buffer, sign?: (msg: Buffer) => Buffer }): Promise<{ nodes: number, stale: boolean }> {
    const dht = this.need()
    return await new Promise((resolve, reject) => {
      try {
        dht.put(item, (err, _hash, n) => {
          if (err === null || err === undefined) return resolve({ nodes: n, stale: false })
          // 302: every node that answered holds this seq or a newer one.
          if ((err as any).code === 302) return resolve({ nodes: 0, stale: true })
          reject(asDhtError(err, DhtCodes.PUT_FAILED, 'BEP 44 put'))
        })
      } catch (err) { reject(asDhtError(err, DhtCodes.PUT_FAILED, 'BEP 44 put')) }
    })
  }

  /** BEP 44 get: the verified item with the highest seq among the replies and this node's own copy, or null. */
  async getMutable (target: Buffer, salt: Buffer): Promise<MutableReply | null> {
    const dht = this.need()
    const fromNet = await new Promise<MutableReply | null>((resolve, reject) => {
      dht.get(target, { salt, cache: false }, (err, res) => {
        if (err !== null && err !== undefined) {
          if (/No nodes to query|All queries failed/.test(err.message)) return resolve(null)
          return reject(asDhtError(err, DhtCodes.LOOKUP_FAILED, 'BEP 44 get'))
        }
        resolve(res ?? null)
      })
    })
    const local = dht._values.get(target.toString('hex'))
    const mine = local?.sig !== undefined && local.k !== undefined ? { v: Buffer.from(local.v), k: Buffer.from(local.k), sig: Buffer.from(local.sig), seq: local.seq, salt } : null
    if (mine !== null && (fromNet === null || mine.seq > fromNet.seq)) return mine // verified when it was stored
    return fromNet
  }

  stats (): DhtStats {
    const dht = this.need()
    return {
      nodes: dht.nodes.count(),
      announces: dht.store.size,
      announceTopics: dht.store.topicCount,
      values: dht._values.length,
      tables: dht._tables.length,
      pendingQueries: dht._rpc.pending.length,
      inflight: dht._rpc.socket.inflight,
      guard: structuredClone(this.guard!.stats)
    }
  }

  /** Saves the routing table (if there is a state dir) and closes the socket. Idempotent. */
  async close (): Promise<void> {
    this.closePromise ??= (async () => {
      this.closed = true
      for (const t of this.timers) clearInterval(t)
      this.timers = []
      const dht = this.dht
      if (dht === null) return
      try { await this.save() } catch (err) { this.emit('warning', { error: asDhtError(err, DhtCodes.IO_ERROR, 'saving the routing table') }) }
      await new Promise<void>((resolve) => dht.destroy(() => resolve()))
      this.emit('close')
    })()
    return await this.closePromise
  }
}
