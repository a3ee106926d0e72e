// The KRPC guard: the UDP socket under bittorrent-dht. Every datagram is size-checked, rate-limited
// (per source address and in total), scanned for strict bencode (bencode-check.ts), decoded and validated against the schema of docs/discovery.md
// §5 before the library sees it, so no field a remote controls can reach the library with a type or
// size it does not expect. Addresses learned from replies (`nodes`, `values`) are filtered through
// the address policy, and nothing is ever sent to an address the policy refuses.

import dgram from 'node:dgram'
import { EventEmitter } from 'node:events'
import { isIPv4 } from 'node:net'
import bencode from 'bencode'
import { checkBencode } from './bencode-check.js'
import { BoundedMap, KeyedLimiter, TokenBucket } from './rate.js'

export const MAX_PACKET_BYTES = 2048
export const MAX_TOKEN_BYTES = 64
export const MAX_TID_BYTES = 16
export const MAX_NODES_PER_REPLY = 64
export const MAX_VALUES_PER_REPLY = 200
export const MAX_V_BYTES = 1000
export const MAX_SALT_BYTES = 64
/** Inbound datagrams per source address (ip:port) per second, and the burst allowed. */
export const RATE_PER_ENDPOINT = 50
export const BURST_PER_ENDPOINT = 200
/** Inbound datagrams per source IP per second (many ports of one host), and the burst. */
export const RATE_PER_IP = 1000
export const BURST_PER_IP = 2000
/** Inbound datagrams in total per second, and the burst. */
export const RATE_TOTAL = 4000
export const BURST_TOTAL = 8000
/** Outbound datagrams per second in total, and the burst. */
export const RATE_OUT = 2000
export const BURST_OUT = 4000
export const MAX_TRACKED_ADDRESSES = 4096
/**
 * A source address may change its node id at most once per this period: a datagram with yet another
 * id sooner is dropped. A node that restarts without its state gets in at once; an address cycling
 * through ids, which would otherwise fill the routing table with entries nobody answers for and
 * eclipse our lookups (seen in test), gets one new id a minute.
 */
export const ID_CHANGE_MIN_MS = 60_000
const NODE_BYTES = 26

export type DropReason = 'too-large' | 'malformed' | 'rate-limited' | 'address-blocked' | 'id-changed'

export interface GuardStats {
  received: number
  passed: number
  dropped: Record<DropReason, number>
  filteredAddresses: number
  sent: number
  blockedSends: number
  droppedSends: number
}

export interface GuardOptions {
  /** May we talk to this address, or accept it from a reply? Default: `defaultAddressPolicy(false)`. */
  readonly allowAddress?: (host: string, port: number) => boolean
  readonly maxPacketBytes?: number
  readonly ratePerEndpoint?: number
  readonly burstPerEndpoint?: number
  readonly ratePerIp?: number
  readonly burstPerIp?: number
  readonly rateTotal?: number
  readonly burstTotal?: number
  readonly rateOut?: number
  readonly burstOut?: number
  readonly idChangeMinMs?: number
}

export interface GuardDrop { reason: DropReason, from: string, detail: string }

/**
 * Public IPv4 unicast and private ranges; no unspecified (0/8), multicast (224/4), reserved or
 * broadcast (240/4) addresses, no port 0. Loopback (127/8) only when `loopback` (tests, the demo,
 * a bootstrap node on this host): otherwise a remote could make us send datagrams to local services.
 */
export function defaultAddressPolicy (loopback: boolean): (host: string, port: number) => boolean {
  return (host, port) => {
    if (!Number.isInteger(port) || port < 1 || port > 65535 || !isIPv4(host)) return false
    const a = Number(host.slice(0, host.indexOf('.')))
    if (a === 0 || a >= 224) return false
    if (a === 127) return loopback
    return true
  }
}

const isBytes = (x: unknown, min: number, max: number): x is Uint8Array =>
  x instanceof Uint8Array && x.byteLength >= min && x.byteLength <= max
const isInt = (x: unknown, min: number, max: number): x is number =>
  typeof x === 'number' && Number.isSafeInteger(x) && x >= min && x <= max
const isDict = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && !Array.isArray(x)
const str = (x: Uint8Array): string => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('latin1')

/** Checks the optional BEP 44 fields shared by `put` queries and `get` replies; null if fine. */
function checkItem (d: Record<string, unknown>, where: string): string | null {
  if (d.v !== undefined && !isBytes(d.v, 0, MAX_V_BYTES)) return `${where}.v must be a byte string of at most ${MAX_V_BYTES} bytes`
  const mutable = d.k !== undefined || d.sig !== undefined
  if (mutable) {
    if (!isBytes(d.k, 32, 32)) return `${where}.k must be 32 bytes`
    if (!isBytes(d.sig, 64, 64)) return `${where}.sig must be 64 bytes`
    if (!isInt(d.seq, 0, Number.MAX_SAFE_INTEGER)) return `${where}.seq must be a non-negative integer`
  } else if (d.seq !== undefined && !isInt(d.seq, 0, Number.MAX_SAFE_INTEGER)) return `${where}.seq must be a non-negative integer`
  if (d.salt !== undefined && !isBytes(d.salt, 0, MAX_SALT_BYTES)) return `${where}.salt must be at most ${MAX_SALT_BYTES} bytes`
  if (d.cas !== undefined && !isInt(d.cas, 0, Number.MAX_SAFE_INTEGER)) return `${where}.cas must be a non-negative integer`
  return null
}

/** Validates a decoded KRPC message; returns null if it may reach the library, or what is wrong. */
export function checkMessage (m: unknown): string | null {
  if (!isDict(m)) return 'not a dictionary'
  if (!isBytes(m.t, 1, MAX_TID_BYTES)) return 't must be 1..16 bytes'
  if (!isBytes(m.y, 1, 1)) return 'y must be one byte'
  const y = str(m.y)
  if (y === 'q') {
    if (!isBytes(m.q, 1, 32)) return 'q must be 1..32 bytes'
    const a = m.a
    if (!isDict(a)) return 'a must be a dictionary'
    if (!isBytes(a.id, 20, 20)) return 'a.id must be 20 bytes'
    const q = str(m.q)
    switch (q) {
      case 'ping': return null
      case 'find_node': return isBytes(a.target, 20, 20) ? null : 'find_node a.target must be 20 bytes'
      case 'get_peers': return isBytes(a.info_hash, 20, 20) ? null : 'get_peers a.info_hash must be 20 bytes'
      case 'announce_peer': {
        if (!isBytes(a.info_hash, 20, 20)) return 'announce_peer a.info_hash must be 20 bytes'
        if (!isBytes(a.token, 1, MAX_TOKEN_BYTES)) return `announce_peer a.token must be 1..${MAX_TOKEN_BYTES} bytes`
        if (a.implied_port !== undefined && !isInt(a.implied_port, 0, 1)) return 'announce_peer a.implied_port must be 0 or 1'
        if (a.implied_port !== 1 && !isInt(a.port, 1, 65535)) return 'announce_peer a.port must be 1..65535'
        return null
      }
      case 'get': {
        if (!isBytes(a.target, 20, 20)) return 'get a.target must be 20 bytes'
        if (a.seq !== undefined && !isInt(a.seq, 0, Number.MAX_SAFE_INTEGER)) return 'get a.seq must be a non-negative integer'
        return null
      }
      case 'put': {
        if (!isBytes(a.token, 1, MAX_TOKEN_BYTES)) return `put a.token must be 1..${MAX_TOKEN_BYTES} bytes`
        if (a.v === undefined) return 'put a.v is missing'
        return checkItem(a, 'put a')
      }
      default: return null // unknown methods: the library ignores them (BEP 5 allows that)
    }
  }
  if (y === 'r') {
    if (m.t.byteLength !== 2) return 'reply t must be 2 bytes (ours are)'
    const r = m.r
    if (!isDict(r)) return 'r must be a dictionary'
    if (!isBytes(r.id, 20, 20)) return 'r.id must be 20 bytes'
    if (r.nodes !== undefined && (!isBytes(r.nodes, 0, NODE_BYTES * MAX_NODES_PER_REPLY) || r.nodes.byteLength % NODE_BYTES !== 0)) {
      return `r.nodes must be a multiple of ${NODE_BYTES} bytes, at most ${MAX_NODES_PER_REPLY} nodes`
    }
    if (r.token !== undefined && !isBytes(r.token, 1, MAX_TOKEN_BYTES)) return `r.token must be 1..${MAX_TOKEN_BYTES} bytes`
    if (r.values !== undefined) {
      if (!Array.isArray(r.values) || r.values.length > MAX_VALUES_PER_REPLY) return `r.values must be a list of at most ${MAX_VALUES_PER_REPLY}`
      for (const v of r.values) if (!(v instanceof Uint8Array)) return 'r.values entries must be byte strings'
    }
    return checkItem(r, 'r')
  }
  if (y === 'e') {
    if (m.t.byteLength !== 2) return 'error t must be 2 bytes (ours are)'
    const e = m.e
    if (!Array.isArray(e) || e.length < 1 || e.length > 2 || !isInt(e[0], 0, 65535) || (e.length === 2 && !isBytes(e[1], 0, 256))) {
      return 'e must be [code, message]'
    }
    return null
  }
  return `unknown message type ${JSON.stringify(y)}`
}

function ipv4At (b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`
}

/**
 * A dgram socket with the interface k-rpc-socket uses (`on`, `send`, `bind`, `close`, `address`),
 * which passes on only datagrams that survive the checks.
 */
export class GuardedSocket extends EventEmitter {
  readonly socket: dgram.Socket
  readonly stats: GuardStats = {
    received: 0, passed: 0, sent: 0, blockedSends: 0, droppedSends: 0, filteredAddresses: 0,
    dropped: { 'too-large': 0, malformed: 0, 'rate-limited': 0, 'address-blocked': 0, 'id-changed': 0 }
  }

  private readonly ids = new BoundedMap<string, { id: string, changedAt: number }>(MAX_TRACKED_ADDRESSES)
  private readonly idChangeMinMs: number

  private readonly allow: (host: string, port: number) => boolean
  private readonly maxPacket: number
  private readonly perEndpoint: KeyedLimiter
  private readonly perIp: KeyedLimiter
  private readonly total: TokenBucket
  private readonly out: TokenBucket

  constructor (opts: GuardOptions = {}) {
    super()
    this.allow = opts.allowAddress ?? defaultAddressPolicy(false)
    this.maxPacket = opts.maxPacketBytes ?? MAX_PACKET_BYTES
    this.perEndpoint = new KeyedLimiter(opts.ratePerEndpoint ?? RATE_PER_ENDPOINT, opts.burstPerEndpoint ?? BURST_PER_ENDPOINT, MAX_TRACKED_ADDRESSES)
    this.perIp = new KeyedLimiter(opts.ratePerIp ?? RATE_PER_IP, opts.burstPerIp ?? BURST_PER_IP, MAX_TRACKED_ADDRESSES)
    this.total = new TokenBucket(opts.rateTotal ?? RATE_TOTAL, opts.burstTotal ?? BURST_TOTAL)
    this.out = new TokenBucket(opts.rateOut ?? RATE_OUT, opts.burstOut ?? BURST_OUT)
    this.idChangeMinMs = opts.idChangeMinMs ?? ID_CHANGE_MIN_MS
    this.socket = dgram.createSocket({ type: 'udp4' })
    this.socket.on('message', (buf, rinfo) => this.onMessage(buf, rinfo))
    this.socket.on('listening', () => this.emit('listening'))
    this.socket.on('error', (err) => this.emit('error', err))
    this.socket.on('close', () => this.emit('close'))
  }

  private drop (reason: DropReason, from: string, detail: string): void {
    this.stats.dropped[reason]++
    this.emit('drop', { reason, from, detail } satisfies GuardDrop)
  }

  private onMessage (buf: Buffer, rinfo: dgram.RemoteInfo): void {
    this.stats.received++
    const from = `${rinfo.address}:${rinfo.port}`
    if (!this.allow(rinfo.address, rinfo.port)) return this.drop('address-blocked', from, 'source address refused by the address policy')
    if (!this.total.take() || !this.perIp.take(rinfo.address) || !this.perEndpoint.take(from)) {
      return this.drop('rate-limited', from, 'over the datagram rate limit')
    }
    if (buf.byteLength > this.maxPacket) return this.drop('too-large', from, `${buf.byteLength} bytes, limit ${this.maxPacket}`)
    const bad = checkBencode(buf)
    if (bad !== null) return this.drop('malformed', from, `not bencode: ${bad}`)
    let m: any
    try {
      m = bencode.decode(buf)
    } catch (err) {
      return this.drop('malformed', from, `not bencode (${(err as Error).message.slice(0, 80)})`)
    }
    const wrong = checkMessage(m)
    if (wrong !== null) return this.drop('malformed', from, wrong)
    const nodeId: Uint8Array | undefined = m.a?.id ?? m.r?.id
    if (nodeId !== undefined) {
      const idHex = Buffer.from(nodeId).toString('hex')
      const now = Date.now()
      const known = this.ids.get(from)
      if (known === undefined) this.ids.set(from, { id: idHex, changedAt: -Infinity })
      else if (known.id !== idHex) {
        if (now - known.changedAt < this.idChangeMinMs) {
          return this.drop('id-changed', from, `node id changed again, from ${known.id.slice(0, 8)} to ${idHex.slice(0, 8)}, within ${this.idChangeMinMs / 1000} s`)
        }
        known.id = idHex
        known.changedAt = now
      }
    }
    let out = buf
    if (m.y[0] === 0x72 /* r */ && (m.r.nodes !== undefined || m.r.values !== undefined)) {
      const rewritten = this.filterAddresses(m.r)
      if (rewritten) out = Buffer.from(bencode.encode(m))
    }
    this.stats.passed++
    this.emit('message', out, rinfo)
  }

  /** Removes nodes and peers whose address the policy refuses, and malformed peer entries; true if any went. */
  private filterAddresses (r: Record<string, any>): boolean {
    let changed = false
    if (r.nodes !== undefined) {
      const nodes: Uint8Array = r.nodes
      const kept: Uint8Array[] = []
      for (let o = 0; o < nodes.byteLength; o += NODE_BYTES) {
        const port = (nodes[o + 24] << 8) | nodes[o + 25]
        if (this.allow(ipv4At(nodes, o + 20), port)) kept.push(nodes.subarray(o, o + NODE_BYTES))
      }
      if (kept.length * NODE_BYTES !== nodes.byteLength) {
        this.stats.filteredAddresses += nodes.byteLength / NODE_BYTES - kept.length
        r.nodes = Buffer.concat(kept)
        changed = true
      }
    }
    if (r.values !== undefined) {
      const values = (r.values as Uint8Array[]).filter(v => v.byteLength === 6 && this.allow(ipv4At(v, 0), (v[4] << 8) | v[5]))
      if (values.length !== r.values.length) {
        this.stats.filteredAddresses += r.values.length - values.length
        r.values = values
        changed = true
      }
    }
    return changed
  }

  send (buf: Uint8Array, offset: number, length: number, port: number, host: string, cb?: (err: Error | null) => void): void {
    if (!this.allow(host, port)) {
      this.stats.blockedSends++
      if (cb !== undefined) process.nextTick(cb, null)
      return
    }
    if (!this.out.take()) {
      this.stats.droppedSends++
      if (cb !== undefined) process.nextTick(cb, null)
      return
    }
    this.stats.sent++
    this.socket.send(buf, offset, length, port, host, (err) => { if (cb !== undefined) cb(err ?? null) })
  }

  bind (port: number, host: string, cb?: () => void): void {
    this.socket.bind(port, host, cb)
  }

  address (): { address: string, port: number, family: string } {
    return this.socket.address()
  }

  close (): void {
    try { this.socket.close() } catch { this.emit('close') }
  }
}
