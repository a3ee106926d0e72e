// UPnP-IGD discovery (docs/reachability.md §3): find the router's Internet Gateway Device with an
// SSDP M-SEARCH. The search is ours (so is the SOAP client, net/igd-client.ts): an answer counts only
// when it is small, well formed, for an IGD, and comes from the default gateway with a LOCATION on that
// same address (no other LAN host feeds us XML). Every call takes an AbortSignal.

import { createSocket } from 'node:dgram'
import { isIPv4 } from 'node:net'
export { IgdClient, type IgdProtocol } from './igd-client.js'

export const SSDP_ADDRESS = '239.255.255.250'
export const SSDP_PORT = 1900
/** Largest SSDP answer looked at. */
export const SSDP_MAX_BYTES = 2048
/** M-SEARCH is sent again this often while searching (UDP may be lost). */
export const SSDP_RESEND_MS = 1000
export const IGD_V2 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'
export const IGD_V1 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'
/** After an IGDv1 answer, a v2 answer from the same router is awaited this long more. */
export const SSDP_V1_GRACE_MS = 500

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
 * Search for an IGD: resolves with the first IGDv2 answer, or with an IGDv1 answer when no v2 one
 * follows within SSDP_V1_GRACE_MS (a router may answer both searches), or null at the timeout.
 * Never rejects.
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
      if (a.version === 2) { finish(a); return }
      if (v1 !== null) return
      v1 = a
      const g = setTimeout(() => { finish(v1) }, SSDP_V1_GRACE_MS)
      g.unref()
      timers.push(g)
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
