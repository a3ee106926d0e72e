// UPnP-IGD port mapping (docs/reachability.md §3): find the router's Internet Gateway Device with an
// SSDP M-SEARCH, then map, renew and delete ports over SOAP through @achingbrain/nat-port-mapper
// (device description, XML, SOAP). The SSDP search is ours: the library's discovery parses every
// datagram that reaches UDP 1900 inside a socket callback and throws on a malformed one, which ends
// the process. Here an answer counts only when it is small, well formed, for an IGD, and comes from the
// default gateway with a LOCATION on that same address (no other LAN host feeds us XML). Deletion is
// ours too: the library's unmap sends an empty protocol and the internal port, which miniupnpd reads
// as "TCP" and leaves the UDP mapping behind. Every call takes an AbortSignal; the library is loaded
// only when a mapping is asked for.

import { createSocket } from 'node:dgram'
import { isIPv4 } from 'node:net'
import type { Gateway } from '@achingbrain/nat-port-mapper'
import { NetError, NetCodes } from './errors.js'

export const SSDP_ADDRESS = '239.255.255.250'
export const SSDP_PORT = 1900
/** Largest SSDP answer looked at. */
export const SSDP_MAX_BYTES = 2048
/** M-SEARCH is sent again this often while searching (UDP may be lost). */
export const SSDP_RESEND_MS = 1000
export const IGD_V2 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'
export const IGD_V1 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'
const WAN_IP_CONNECTION_2 = 'urn:schemas-upnp-org:service:WANIPConnection:2'
/** The library grants UPnP leases of at least an hour (it raises shorter ones). */
export const UPNP_MIN_LEASE_SECONDS = 3600

export interface SsdpAnswer {
  /** Device description URL (http, on the answering address). */
  readonly location: URL
  readonly version: 1 | 2
  readonly from: string
}

/** Parse one SSDP search answer; null unless it is a well-formed IGD answer whose LOCATION is on `from`. */
export function parseSsdpAnswer (msg: Buffer, from: string): SsdpAnswer | null {
  if (msg.length === 0 || msg.length > SSDP_MAX_BYTES) return null
  const lines = msg.toString('latin1').split(/\r?\n/)
  if (!/^HTTP\/1\.[01] 200\b/.test(lines[0] ?? '')) return null
  const h = new Map<string, string>()
  for (const line of lines.slice(1, 40)) {
    const i = line.indexOf(':')
    if (i <= 0) continue
    h.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim())
  }
  const st = h.get('st')
  const version = st === IGD_V2 ? 2 : st === IGD_V1 ? 1 : null
  if (version === null) return null
  let location: URL
  try { location = new URL(h.get('location') ?? '') } catch { return null }
  if (location.protocol !== 'http:' || location.hostname !== from || location.username !== '' || location.password !== '') return null
  return { location, version, from }
}

export interface SsdpSearchOptions {
  /** Only answers from this address count (the default gateway); null: any sender (LOCATION still on it). */
  readonly gateway: string | null
  /** Send from this address (and out of its interface). */
  readonly localAddress: string | null
  readonly timeoutMs: number
  readonly resendMs?: number
  readonly signal?: AbortSignal
}

/**
 * Search for an IGD: resolves with the first IGDv2 answer, or at the timeout with an IGDv1 answer
 * (which the caller reports: the library speaks IGDv2 only), or null. Never rejects.
 */
export async function ssdpSearch (o: SsdpSearchOptions): Promise<SsdpAnswer | null> {
  return await new Promise<SsdpAnswer | null>(resolve => {
    const socket = createSocket({ type: 'udp4' })
    let v1: SsdpAnswer | null = null
    let done = false
    const timers: NodeJS.Timeout[] = []
    const finish = (r: SsdpAnswer | null): void => {
      if (done) return
      done = true
      for (const t of timers) clearTimeout(t)
      o.signal?.removeEventListener('abort', onAbort)
      try { socket.close() } catch { /* already closed */ }
      resolve(r)
    }
    const onAbort = (): void => { finish(null) }
    if (o.signal?.aborted === true) { finish(null); return }
    o.signal?.addEventListener('abort', onAbort, { once: true })
    socket.on('error', () => { finish(v1) })
    socket.on('message', (msg: Buffer, rinfo) => {
      if (done || (o.gateway !== null && rinfo.address !== o.gateway)) return
      let a: SsdpAnswer | null = null
      try { a = parseSsdpAnswer(msg, rinfo.address) } catch { a = null }
      if (a === null) return
      if (a.version === 2) finish(a); else v1 ??= a
    })
    const search = (st: string): Buffer => Buffer.from(`M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_ADDRESS}:${SSDP_PORT}\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ${st}\r\n\r\n`)
    const send = (): void => {
      if (done) return
      const targets = [SSDP_ADDRESS, ...(o.gateway !== null ? [o.gateway] : [])]
      for (const to of targets) {
        for (const st of [IGD_V2, IGD_V1]) {
          try { socket.send(search(st), SSDP_PORT, to, () => { /* errors come as 'error' or not at all */ }) } catch { finish(v1); return }
        }
      }
    }
    const t = setTimeout(() => { finish(v1) }, Math.max(1, o.timeoutMs))
    t.unref()
    timers.push(t)
    try {
      socket.bind(o.localAddress !== null ? { address: o.localAddress, port: 0 } : { port: 0 }, () => {
        if (done) return
        try {
          if (o.localAddress !== null) socket.setMulticastInterface(o.localAddress)
          socket.setMulticastTTL(2)
        } catch { /* the default interface then */ }
        send()
        const every = Math.max(100, o.resendMs ?? SSDP_RESEND_MS)
        for (let at = every; at < o.timeoutMs; at += every) {
          const r = setTimeout(send, at)
          r.unref()
          timers.push(r)
          if (timers.length > 20) break
        }
      })
    } catch {
      finish(null)
    }
  })
}

export type IgdProtocol = 'udp' | 'tcp'

interface DeviceInternals { gateway?: { run?: (service: string, action: string, args: Array<[string, string | number]>, o: { signal?: AbortSignal }) => Promise<unknown> } }

/** One IGD, through the library. Open it again for each renewal (the router may have restarted). */
export class IgdClient {
  readonly location: URL
  private readonly gw: Gateway
  private readonly description: string

  private constructor (location: URL, gw: Gateway, description: string) {
    this.location = location
    this.gw = gw
    this.description = description
  }

  /** Fetch the device description at `location` (the library checks it is an IGDv2). */
  static async open (location: URL, o: { description?: string, signal?: AbortSignal }): Promise<IgdClient> {
    const { upnpNat } = await import('@achingbrain/nat-port-mapper')
    const client = upnpNat({ autoRefresh: false })
    try {
      const gw = await client.getGateway(location, { signal: o.signal })
      return new IgdClient(location, gw, o.description ?? 'dustbox')
    } catch (err) {
      throw igdError(`UPnP: device description at ${location.href}`, err, o.signal)
    }
  }

  /** AddAnyPortMapping: the router may answer another external port than asked. Lease in seconds. */
  async map (protocol: IgdProtocol, internalPort: number, internalHost: string, externalPort: number, leaseSeconds: number, signal?: AbortSignal): Promise<{ externalPort: number, externalHost: string, lease: number }> {
    const what = `UPnP map ${protocol} ${internalHost}:${internalPort}`
    let m
    try {
      m = await this.gw.map(internalPort, internalHost, { protocol, externalPort, ttl: leaseSeconds * 1000, autoRefresh: false, description: this.description, signal })
    } catch (err) {
      throw igdError(`${what} at ${this.location.host}`, err, signal)
    }
    const port = Number(m?.externalPort)
    const host = String(m?.externalHost ?? '')
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new NetError(NetCodes.BAD_MESSAGE, `${what}: the router answered external port ${JSON.stringify(String(m?.externalPort)).slice(0, 40)}`)
    if (!isIPv4(host)) throw new NetError(NetCodes.BAD_MESSAGE, `${what}: the router answered external address ${JSON.stringify(host.slice(0, 60))}`)
    return { externalPort: port, externalHost: host, lease: Math.max(leaseSeconds, UPNP_MIN_LEASE_SECONDS) }
  }

  /** DeletePortMapping of the external port for that protocol. */
  async unmap (protocol: IgdProtocol, externalPort: number, internalPort: number, signal?: AbortSignal): Promise<void> {
    const what = `UPnP delete ${protocol} ${externalPort}`
    const run = (this.gw as unknown as DeviceInternals).gateway?.run
    try {
      if (typeof run === 'function') {
        await run.call((this.gw as unknown as DeviceInternals).gateway, WAN_IP_CONNECTION_2, 'DeletePortMapping', [['NewRemoteHost', ''], ['NewExternalPort', externalPort], ['NewProtocol', protocol.toUpperCase()]], { signal })
      } else {
        await this.gw.unmap(internalPort, { signal }) // another library version: its own (partial) delete
      }
    } catch (err) {
      throw igdError(`${what} at ${this.location.host}`, err, signal)
    }
  }
}

function igdError (what: string, err: unknown, signal?: AbortSignal): NetError {
  if (err instanceof NetError) return err
  if (signal?.aborted === true) return new NetError(NetCodes.TIMEOUT, `${what}: no answer in time`, { cause: err })
  const text = String((err as Error)?.message ?? err).replace(/\s+/g, ' ').slice(0, 200)
  const e = err as { code?: string, cause?: { code?: string } }
  const net = e.cause?.code ?? e.code
  if (net === 'ECONNREFUSED' || net === 'EHOSTUNREACH' || net === 'ENETUNREACH' || net === 'ECONNRESET') return new NetError(NetCodes.CONNECT_FAILED, `${what}: ${net}`, { cause: err })
  return new NetError(NetCodes.REFUSED, `${what}: ${text}`, { cause: err })
}
