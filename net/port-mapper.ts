// PortMapper: asks the home router to forward the node's port (UDP for uTP, TCP) from its external
// address, renews the mapping before it expires and deletes it at close (docs/reachability.md §3).
// Tries PCP, then NAT-PMP (net/nat-pmp.ts) on the default gateway, then UPnP-IGD (net/upnp-igd.ts);
// the first that maps the port is kept. Renewal repeats the same request at half the granted lifetime
// (at most every `renewMs`); when it fails the whole search starts again. With no gateway answering
// the state is `unavailable`, with a gateway refusing `failed`; both are retried every `retryMs`.
// Nothing here throws into the caller or the event loop: every answer from the LAN is validated,
// every step is bounded in time by an AbortSignal, every timer is unref'd, every promise is caught.

import { createSocket } from 'node:dgram'
import { promises as fsp } from 'node:fs'
import { endianness } from 'node:os'
import { isIPv4 } from 'node:net'
import { NetError, NetCodes } from './errors.js'
import { pcpMap, pcpNonce, pmpMap, pmpExternalAddress, PMP_FIRST_WAIT_MS, PMP_ATTEMPTS, type PmpProtocol } from './nat-pmp.js'
import { ssdpSearch, IgdClient } from './upnp-igd.js'

/** Lifetime asked for (seconds; RFC 6886 recommends two hours). */
export const TTL_SECONDS = 7200
/** Renew at most this long after a grant (and at half the granted lifetime when that is sooner). */
export const RENEW_MS = 30 * 60_000
/** Never renew more often than this, whatever lifetime the router grants. */
export const RENEW_MIN_MS = 1000
/** After `unavailable` or `failed`, search again after this long. */
export const RETRY_MS = 5 * 60_000
/** SSDP search for an IGD. */
export const SEARCH_TIMEOUT_MS = 3000
/** One SOAP request to the IGD (description, map, delete). */
export const REQUEST_TIMEOUT_MS = 5000
/** One whole search (every method) or renewal. */
export const CYCLE_TIMEOUT_MS = 30_000
/** close(): deleting the mappings takes at most this long. */
export const CLOSE_TIMEOUT_MS = 3000
/** Default method order. */
export const METHODS = ['pcp', 'nat-pmp', 'upnp'] as const

export type PortMappingMethod = 'upnp' | 'nat-pmp' | 'pcp'
export type PortMappingState = 'off' | 'searching' | 'mapped' | 'unavailable' | 'failed'
export type PortMappingProtocol = PmpProtocol

export interface PortMappingStatus {
  readonly state: PortMappingState
  readonly method?: PortMappingMethod
  /** The router's LAN address that answered. */
  readonly gateway?: string
  readonly externalHost?: string
  /** External port of the first mapped protocol (UDP, for uTP, unless only TCP is mapped). */
  readonly externalPort?: number
  /** External TCP port when TCP is mapped (normally the same as externalPort). */
  readonly tcpExternalPort?: number
  /** When the mapping expires unless renewed (ms since the epoch). */
  readonly expiresAt?: number
  readonly renewals?: number
  /** Why the state is `failed` or `unavailable` (or the last renewal failed). */
  readonly error?: string
}

export interface PortMapperOptions {
  /** The node's port (the same number for UDP and TCP). */
  readonly port: number
  readonly protocols?: readonly PortMappingProtocol[]
  readonly methods?: readonly PortMappingMethod[]
  /** The address the node is bound to; a wildcard (or none) means the address facing the gateway. */
  readonly host?: string
  /** The default gateway (IPv4); default: read from the routing table. */
  readonly gateway?: string
  readonly ttlSeconds?: number
  readonly renewMs?: number
  readonly renewMinMs?: number
  readonly retryMs?: number
  readonly searchTimeoutMs?: number
  readonly requestTimeoutMs?: number
  readonly cycleTimeoutMs?: number
  readonly closeTimeoutMs?: number
  readonly pmpFirstWaitMs?: number
  readonly pmpAttempts?: number
  /** Shown in the router's UPnP mapping list. */
  readonly description?: string
  /** A router that refused, a renewal or a delete that failed (never thrown). */
  readonly onWarning?: (err: NetError) => void
  readonly onChange?: (s: PortMappingStatus) => void
  readonly signal?: AbortSignal
}

interface Held {
  readonly protocol: PortMappingProtocol
  externalPort: number
  readonly nonce?: Buffer
}

interface Active {
  readonly method: PortMappingMethod
  readonly gateway: string
  readonly localAddress: string
  externalHost: string
  held: Held[]
  igd?: IgdClient
  location?: URL
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '::0'])

/** The IPv4 default gateway from /proc/net/route (Linux); null when there is none or no such file. */
export async function defaultGateway (): Promise<string | null> {
  let text: string
  try { text = await fsp.readFile('/proc/net/route', 'utf8') } catch { return null }
  let best: { ip: string, metric: number } | null = null
  for (const line of text.split('\n').slice(1, 200)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 8 || f[1] !== '00000000' || f[7] !== '00000000') continue
    const flags = parseInt(f[3], 16)
    if ((flags & 0x3) !== 0x3) continue // RTF_UP | RTF_GATEWAY
    const n = parseInt(f[2], 16)
    if (!Number.isFinite(n) || n === 0) continue
    const b = Buffer.alloc(4)
    if (endianness() === 'LE') b.writeUInt32LE(n >>> 0); else b.writeUInt32BE(n >>> 0)
    const metric = parseInt(f[6], 10) || 0
    if (best === null || metric < best.metric) best = { ip: [...b].join('.'), metric }
  }
  return best?.ip ?? null
}

/** The local address the kernel would send from to reach `host` (no packet is sent). */
export async function localAddressTo (host: string): Promise<string | null> {
  return await new Promise(resolve => {
    const s = createSocket('udp4')
    const done = (v: string | null): void => { try { s.close() } catch { /* closed */ } resolve(v) }
    s.on('error', () => { done(null) })
    try { s.connect(9, host, () => { try { done(s.address().address) } catch { done(null) } }) } catch { done(null) }
  })
}

export class PortMapper {
  readonly port: number
  private readonly o: PortMapperOptions
  private readonly protocols: readonly PortMappingProtocol[]
  private readonly methods: readonly PortMappingMethod[]
  private readonly ac = new AbortController()
  private st: PortMappingStatus = { state: 'off' }
  private active: Active | null = null
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private first: Promise<void> | null = null
  private closing: Promise<void> | null = null
  private closed = false
  private renewals = 0
  private lastWarning = ''

  constructor (o: PortMapperOptions) {
    if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new NetError(NetCodes.CONFIG_INVALID, `port mapping: port ${o.port} is not 1-65535`)
    if (o.gateway !== undefined && !isIPv4(o.gateway)) throw new NetError(NetCodes.CONFIG_INVALID, `port mapping: gateway ${JSON.stringify(o.gateway)} is not an IPv4 address`)
    this.port = o.port
    this.o = o
    this.protocols = [...new Set<PortMappingProtocol>(o.protocols ?? ['udp', 'tcp'])].sort((a, b) => a === 'udp' ? -1 : b === 'udp' ? 1 : 0)
    this.methods = [...new Set(o.methods ?? METHODS)]
    if (this.protocols.length === 0 || this.methods.length === 0) throw new NetError(NetCodes.CONFIG_INVALID, 'port mapping: no protocol or no method')
    if (o.signal !== undefined) {
      if (o.signal.aborted) this.closed = true
      else o.signal.addEventListener('abort', () => { this.close().catch(() => {}) }, { once: true })
    }
  }

  /** Start searching (once); resolves when the first search is over (mapped, unavailable or failed). Never rejects. */
  async ready (): Promise<void> {
    this.first ??= this.closed ? Promise.resolve() : this.run()
    return await this.first
  }

  /** Start in the background (the same as ready() without waiting). */
  start (): void {
    this.ready().catch(() => {})
  }

  status (): PortMappingStatus {
    return this.st
  }

  /** Stop renewing and delete the mappings (bounded by closeTimeoutMs). Idempotent, never rejects. */
  async close (): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true
      if (this.timer !== null) clearTimeout(this.timer)
      this.timer = null
      this.ac.abort()
      const limit = this.o.closeTimeoutMs ?? CLOSE_TIMEOUT_MS
      const deadline = AbortSignal.timeout(limit)
      await Promise.race([this.running?.catch(() => {}), new Promise(resolve => { const t = setTimeout(resolve, limit); t.unref() })])
      const a = this.active
      this.active = null
      if (a !== null) await this.release(a, deadline)
      this.set({ state: 'off' })
    })()
    return await this.closing
  }

  private get ttl (): number {
    return Math.max(1, Math.floor(this.o.ttlSeconds ?? TTL_SECONDS))
  }

  private set (s: PortMappingStatus): void {
    const before = this.st
    this.st = s
    if (JSON.stringify(before) !== JSON.stringify(s)) {
      try { this.o.onChange?.(s) } catch { /* a listener's problem */ }
    }
  }

  private warn (err: NetError): void {
    if (err.message === this.lastWarning) return
    this.lastWarning = err.message
    try { this.o.onWarning?.(err) } catch { /* a listener's problem */ }
  }

  private schedule (ms: number): void {
    if (this.closed) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      this.run().catch(() => {})
    }, Math.max(0, ms))
    this.timer.unref()
  }

  /** One renewal or search, never two at once. */
  private async run (): Promise<void> {
    if (this.closed) return
    if (this.running !== null) return await this.running
    this.running = this.cycle().catch(err => {
      if (this.closed) return
      this.warn(err instanceof NetError ? err : new NetError(NetCodes.INTERNAL, `port mapping: ${(err as Error)?.message ?? String(err)}`))
      this.set({ state: 'failed', error: String((err as Error)?.message ?? err) })
      this.schedule(this.o.retryMs ?? RETRY_MS)
    }).finally(() => { this.running = null })
    return await this.running
  }

  private async cycle (): Promise<void> {
    const signal = AbortSignal.any([this.ac.signal, AbortSignal.timeout(this.o.cycleTimeoutMs ?? CYCLE_TIMEOUT_MS)])
    if (this.active !== null) {
      const a = this.active
      try {
        const lifetime = await this.renew(a, signal)
        this.renewals++
        this.mapped(a, lifetime)
        return
      } catch (err) {
        if (this.closed) return
        this.warn(asNetError(err, `port mapping: renewing by ${a.method} at ${a.gateway}`))
        await this.drop(a) // perhaps gone already (router restarted): search again, from scratch
      }
    }
    if (this.closed) return
    this.set({ state: 'searching' })
    const gateway = this.o.gateway ?? await defaultGateway()
    const host = this.o.host !== undefined && !WILDCARDS.has(this.o.host) ? this.o.host : null
    if (host !== null && (!isIPv4(host) || host.startsWith('127.'))) {
      this.set({ state: 'unavailable', error: `the node is bound to ${host}, not to an IPv4 address of the LAN` })
      return
    }
    const errors: NetError[] = []
    let refused: NetError | null = null
    let pmpAbsent = false
    for (const method of this.methods) {
      if (this.closed) return
      try {
        if (method !== 'upnp') {
          if (gateway === null) throw new NetError(NetCodes.CONNECT_FAILED, `${method}: no IPv4 default gateway`)
          if (pmpAbsent) throw new NetError(NetCodes.TIMEOUT, `${method}: nothing answers on ${gateway}:5351`)
        }
        const a = method === 'upnp' ? await this.viaUpnp(gateway, host, signal) : await this.viaPmp(method, gateway as string, host, signal)
        this.lastWarning = ''
        this.mapped(a.active, a.lifetime)
        return
      } catch (err) {
        if (this.closed) return
        const e = asNetError(err, `port mapping by ${method}`)
        errors.push(e)
        if (method !== 'upnp' && (e.code === NetCodes.TIMEOUT || e.code === NetCodes.CONNECT_FAILED)) pmpAbsent = true
        if (e.code !== NetCodes.TIMEOUT && e.code !== NetCodes.CONNECT_FAILED && e.code !== NetCodes.ABORTED) {
          // PCP refused with "the gateway speaks NAT-PMP" is expected when NAT-PMP follows.
          if (!(method === 'pcp' && this.methods.includes('nat-pmp') && e.message.includes('speaks NAT-PMP'))) refused ??= e
        }
      }
    }
    if (this.closed) return
    const why = (refused ?? errors[errors.length - 1])?.message ?? 'no method'
    if (refused !== null) {
      this.warn(refused)
      this.set({ state: 'failed', error: why })
    } else {
      this.set({ state: 'unavailable', error: gateway === null ? 'no IPv4 default gateway' : `no PCP, NAT-PMP or UPnP-IGD router answered (${errors.map(e => e.message).join('; ').slice(0, 400)})` })
    }
    this.schedule(this.o.retryMs ?? RETRY_MS)
  }

  private mapped (a: Active, lifetime: number): void {
    if (this.closed) return
    this.active = a
    const udp = a.held.find(h => h.protocol === 'udp')
    const tcp = a.held.find(h => h.protocol === 'tcp')
    const lifeMs = lifetime * 1000
    this.set({
      state: 'mapped',
      method: a.method,
      gateway: a.gateway,
      externalHost: a.externalHost,
      externalPort: (udp ?? tcp)?.externalPort,
      ...(tcp !== undefined ? { tcpExternalPort: tcp.externalPort } : {}),
      expiresAt: Date.now() + lifeMs,
      renewals: this.renewals
    })
    this.schedule(Math.max(this.o.renewMinMs ?? RENEW_MIN_MS, Math.min(this.o.renewMs ?? RENEW_MS, lifeMs / 2)))
  }

  private pmpOptions (gateway: string, local: string | null, signal: AbortSignal): { gateway: string, localAddress: string | null, firstWaitMs: number, attempts: number, signal: AbortSignal } {
    return { gateway, localAddress: local, firstWaitMs: this.o.pmpFirstWaitMs ?? PMP_FIRST_WAIT_MS, attempts: this.o.pmpAttempts ?? PMP_ATTEMPTS, signal }
  }

  /** PCP or NAT-PMP: map each protocol, TCP at the external port UDP got. */
  private async viaPmp (method: 'pcp' | 'nat-pmp', gateway: string, host: string | null, signal: AbortSignal): Promise<{ active: Active, lifetime: number }> {
    const local = host ?? await localAddressTo(gateway)
    if (local === null) throw new NetError(NetCodes.CONNECT_FAILED, `${method}: no route to the gateway ${gateway}`)
    const a: Active = { method, gateway, localAddress: local, externalHost: '', held: [] }
    this.hold(a)
    try {
      let lifetime = Infinity
      let want = this.port
      for (const protocol of this.protocols) {
        const nonce = method === 'pcp' ? pcpNonce() : undefined
        const m = method === 'pcp'
          ? await pcpMap({ ...this.pmpOptions(gateway, host, signal), protocol, internalPort: this.port, externalPort: want, lifetime: this.ttl, nonce: nonce as Buffer })
          : await pmpMap({ ...this.pmpOptions(gateway, host, signal), protocol, internalPort: this.port, externalPort: want, lifetime: this.ttl })
        a.held.push({ protocol, externalPort: m.externalPort, ...(nonce !== undefined ? { nonce } : {}) })
        if ('externalHost' in m && typeof m.externalHost === 'string') a.externalHost = m.externalHost
        lifetime = Math.min(lifetime, m.lifetime)
        want = m.externalPort
      }
      if (method === 'nat-pmp') a.externalHost = (await pmpExternalAddress(this.pmpOptions(gateway, host, signal))).host
      if (!isIPv4(a.externalHost)) throw new NetError(NetCodes.BAD_MESSAGE, `${method}: the gateway ${gateway} gave no external IPv4 address`)
      return { active: a, lifetime }
    } catch (err) {
      await this.drop(a)
      throw err
    }
  }

  /** UPnP-IGD: find the IGD, map each protocol, TCP at the external port UDP got. */
  private async viaUpnp (gateway: string | null, host: string | null, signal: AbortSignal): Promise<{ active: Active, lifetime: number }> {
    const local0 = host ?? (gateway !== null ? await localAddressTo(gateway) : null)
    const answer = await ssdpSearch({ gateway, localAddress: local0, timeoutMs: this.o.searchTimeoutMs ?? SEARCH_TIMEOUT_MS, signal })
    if (signal.aborted) throw new NetError(NetCodes.ABORTED, 'upnp: stopped')
    if (answer === null) throw new NetError(NetCodes.TIMEOUT, `upnp: no Internet Gateway Device answered${gateway !== null ? ` at ${gateway}` : ''}`)
    const local = local0 ?? await localAddressTo(answer.from)
    if (local === null) throw new NetError(NetCodes.CONNECT_FAILED, `upnp: no route to ${answer.from}`)
    const igd = await IgdClient.open(answer.location, { description: this.o.description, signal: this.step(signal) })
    const a: Active = { method: 'upnp', gateway: answer.from, localAddress: local, externalHost: '', held: [], igd, location: answer.location }
    this.hold(a)
    try {
      let lifetime = Infinity
      let want = this.port
      for (const protocol of this.protocols) {
        const m = await igd.map(protocol, this.port, local, want, this.ttl, this.step(signal))
        a.held.push({ protocol, externalPort: m.externalPort })
        a.externalHost = m.externalHost
        lifetime = Math.min(lifetime, m.lease)
        want = m.externalPort
      }
      return { active: a, lifetime }
    } catch (err) {
      await this.drop(a)
      throw err
    }
  }

  /** A signal for one request: the cycle's, and at most requestTimeoutMs. */
  private step (signal: AbortSignal): AbortSignal {
    return AbortSignal.any([signal, AbortSignal.timeout(this.o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS)])
  }

  /** The same requests again; resolves with the granted lifetime. Throws when any is not renewed. */
  private async renew (a: Active, signal: AbortSignal): Promise<number> {
    let lifetime = Infinity
    if (a.method === 'upnp') {
      const igd = await IgdClient.open(a.location as URL, { description: this.o.description, signal: this.step(signal) })
      a.igd = igd
      for (const h of a.held) {
        const m = await igd.map(h.protocol, this.port, a.localAddress, h.externalPort, this.ttl, this.step(signal))
        if (m.externalPort !== h.externalPort) this.warn(new NetError(NetCodes.REFUSED, `upnp: renewing ${h.protocol} ${h.externalPort}, the router moved it to ${m.externalPort}`))
        h.externalPort = m.externalPort
        a.externalHost = m.externalHost
        lifetime = Math.min(lifetime, m.lease)
      }
      return lifetime
    }
    const host = this.o.host !== undefined && !WILDCARDS.has(this.o.host) ? this.o.host : null
    for (const h of a.held) {
      const m = a.method === 'pcp'
        ? await pcpMap({ ...this.pmpOptions(a.gateway, host, signal), protocol: h.protocol, internalPort: this.port, externalPort: h.externalPort, lifetime: this.ttl, nonce: h.nonce as Buffer })
        : await pmpMap({ ...this.pmpOptions(a.gateway, host, signal), protocol: h.protocol, internalPort: this.port, externalPort: h.externalPort, lifetime: this.ttl })
      if (m.externalPort !== h.externalPort) this.warn(new NetError(NetCodes.REFUSED, `${a.method}: renewing ${h.protocol} ${h.externalPort}, the router moved it to ${m.externalPort}`))
      h.externalPort = m.externalPort
      if ('externalHost' in m && typeof m.externalHost === 'string') a.externalHost = m.externalHost
      lifetime = Math.min(lifetime, m.lifetime)
    }
    return lifetime
  }

  /** From now on close() deletes whatever `a` maps. */
  private hold (a: Active): void {
    if (this.closed) throw new NetError(NetCodes.ABORTED, 'port mapping: closed')
    this.active = a
  }

  /** A mapping given up while running: delete it now (after close(), close() deletes it). */
  private async drop (a: Active): Promise<void> {
    if (this.closed) return
    await this.release(a, AbortSignal.timeout(this.o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS))
    if (this.active === a) this.active = null
  }

  /** Delete every held mapping (bounded by `signal`); failures are warnings. */
  private async release (a: Active, signal: AbortSignal): Promise<void> {
    const host = this.o.host !== undefined && !WILDCARDS.has(this.o.host) ? this.o.host : null
    const held = a.held
    a.held = []
    await Promise.all(held.map(async h => {
      try {
        if (a.method === 'upnp') await a.igd?.unmap(h.protocol, h.externalPort, this.port, signal)
        else if (a.method === 'pcp') await pcpMap({ ...this.pmpOptions(a.gateway, host, signal), protocol: h.protocol, internalPort: this.port, externalPort: 0, lifetime: 0, nonce: h.nonce as Buffer })
        else await pmpMap({ ...this.pmpOptions(a.gateway, host, signal), protocol: h.protocol, internalPort: this.port, externalPort: 0, lifetime: 0 })
      } catch (err) {
        this.warn(asNetError(err, `port mapping: deleting ${h.protocol} ${h.externalPort} by ${a.method} at ${a.gateway}`))
      }
    }))
  }
}

function asNetError (err: unknown, what: string): NetError {
  if (err instanceof NetError) return err
  return new NetError(NetCodes.INTERNAL, `${what}: ${String((err as Error)?.message ?? err).slice(0, 200)}`, { cause: err })
}
