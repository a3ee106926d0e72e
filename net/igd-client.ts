// IgdClient: port mapping on a UPnP Internet Gateway Device over SOAP (docs/reachability.md §3):
// fetch the device description at the LOCATION an SSDP answer gave (net/upnp-igd.ts), pick its
// WANIPConnection:2, WANIPConnection:1 or WANPPPConnection:1 service, then AddAnyPortMapping (IGDv2)
// or AddPortMapping (IGDv1), GetExternalIPAddress and DeletePortMapping. The router is hostile input
// like any peer: every HTTP answer is bounded in bytes and time, the control URL must be on the
// router that answered (no other host is ever sent a request), and every value read back is
// validated before use. Small on purpose: four SOAP actions and a scan of a description, no XML
// library (measured against @achingbrain/nat-port-mapper in §3.1).

import { request as httpRequest } from 'node:http'
import { isIPv4 } from 'node:net'
import { NetError, NetCodes } from './errors.js'

/** Largest device description read (miniupnpd's is ~3 KB, a Fritz!Box's ~10 KB). */
export const IGD_MAX_DESCRIPTION_BYTES = 64 * 1024
/** Largest SOAP answer read. */
export const IGD_MAX_SOAP_BYTES = 16 * 1024
/** Bound of one HTTP exchange when the caller gives no signal. */
export const IGD_HTTP_TIMEOUT_MS = 5000
/** Services a description may list (at most this many are looked at). */
export const IGD_MAX_SERVICES = 64
/** A router that grants only permanent mappings (IGDv1 error 725) is asked again this often (seconds). */
export const IGD_PERMANENT_RENEW_SECONDS = 3600
/** Other external ports tried when an IGDv1 router says the asked one is taken (error 718). */
export const IGD_V1_PORT_TRIES = 3

/** The connection services that map ports, best first. */
export const IGD_SERVICES = [
  { type: 'urn:schemas-upnp-org:service:WANIPConnection:2', version: 2 },
  { type: 'urn:schemas-upnp-org:service:WANIPConnection:1', version: 1 },
  { type: 'urn:schemas-upnp-org:service:WANPPPConnection:1', version: 1 }
] as const

/** UPnP error codes this client branches on (UPnP IGD WANIPConnection:2 §2.4). */
export const UpnpErrors = {
  invalidAction: 401,
  noSuchEntry: 714,
  conflict: 718,
  samePortRequired: 724,
  onlyPermanentLeases: 725
} as const

export type IgdProtocol = 'udp' | 'tcp'

export interface IgdService {
  readonly type: string
  readonly version: 1 | 2
  readonly controlURL: URL
}

type SoapResult = { ok: true, values: Map<string, string> } | { ok: false, code: number, description: string }

export class IgdClient {
  readonly location: URL
  readonly service: IgdService
  private readonly description: string

  private constructor (location: URL, service: IgdService, description: string) {
    this.location = location
    this.service = service
    this.description = description
  }

  /** Fetch and read the device description at `location` (an http URL on the router). */
  static async open (location: URL, o: { description?: string, signal?: AbortSignal }): Promise<IgdClient> {
    const what = `UPnP: device description at ${location.href}`
    let res
    try {
      res = await httpExchange(location, { method: 'GET', maxBytes: IGD_MAX_DESCRIPTION_BYTES, signal: o.signal })
    } catch (err) {
      throw igdError(what, err, o.signal)
    }
    if (res.status !== 200) throw new NetError(NetCodes.REFUSED, `${what}: HTTP ${res.status}`)
    return new IgdClient(location, parseDescription(res.body, location), o.description ?? 'dustbox')
  }

  /**
   * Map `externalPort` (the router may answer another) to internalHost:internalPort for
   * `leaseSeconds`. IGDv2: AddAnyPortMapping. IGDv1: AddPortMapping, another port when the asked one
   * is taken, a permanent lease when only those are granted (deleted at close like any other).
   */
  async map (protocol: IgdProtocol, internalPort: number, internalHost: string, externalPort: number, leaseSeconds: number, signal?: AbortSignal): Promise<{ externalPort: number, externalHost: string, lease: number }> {
    const what = `UPnP map ${protocol} ${internalHost}:${internalPort} at ${this.location.host}`
    const args = (port: number, lease: number): Array<[string, string | number]> => [
      ['NewRemoteHost', ''], ['NewExternalPort', port], ['NewProtocol', protocol.toUpperCase()], ['NewInternalPort', internalPort],
      ['NewInternalClient', internalHost], ['NewEnabled', 1], ['NewPortMappingDescription', this.description], ['NewLeaseDuration', lease]
    ]
    let port = externalPort
    let lease = leaseSeconds
    let got: number | null = null
    if (this.service.version === 2) {
      const r = await this.soap('AddAnyPortMapping', args(port, lease), what, signal)
      if (r.ok) {
        const raw = r.values.get('NewReservedPort') ?? ''
        got = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN
        if (!(got >= 1 && got <= 65535)) throw new NetError(NetCodes.BAD_MESSAGE, `${what}: the router answered external port ${JSON.stringify(raw.slice(0, 20))}`)
      } else if (r.code !== UpnpErrors.invalidAction) {
        throw fault(what, r)
      }
    }
    // IGDv1 (or a v2 router without AddAnyPortMapping): ask for a port, and adapt to what it refuses.
    for (let tries = 0; got === null; tries++) {
      const r = await this.soap('AddPortMapping', args(port, lease), what, signal)
      if (r.ok) { got = port; break }
      if (tries >= IGD_V1_PORT_TRIES + 2) throw fault(what, r)
      if (r.code === UpnpErrors.onlyPermanentLeases && lease !== 0) lease = 0
      else if (r.code === UpnpErrors.samePortRequired && port !== internalPort) port = internalPort
      else if (r.code === UpnpErrors.conflict && tries < IGD_V1_PORT_TRIES) port = 49152 + Math.floor(Math.random() * 16384)
      else throw fault(what, r)
    }
    const externalHost = await this.externalAddress(signal)
    return { externalPort: got, externalHost, lease: lease === 0 ? IGD_PERMANENT_RENEW_SECONDS : leaseSeconds }
  }

  /** GetExternalIPAddress: the router's public IPv4 address. */
  async externalAddress (signal?: AbortSignal): Promise<string> {
    const what = `UPnP external address at ${this.location.host}`
    const r = await this.soap('GetExternalIPAddress', [], what, signal)
    if (!r.ok) throw fault(what, r)
    const host = r.values.get('NewExternalIPAddress') ?? ''
    if (!isIPv4(host)) throw new NetError(NetCodes.BAD_MESSAGE, `${what}: the router answered external address ${JSON.stringify(host.slice(0, 60))}`)
    return host
  }

  /** DeletePortMapping of the external port for that protocol; a mapping already gone is no error. */
  async unmap (protocol: IgdProtocol, externalPort: number, _internalPort: number, signal?: AbortSignal): Promise<void> {
    const what = `UPnP delete ${protocol} ${externalPort} at ${this.location.host}`
    const r = await this.soap('DeletePortMapping', [['NewRemoteHost', ''], ['NewExternalPort', externalPort], ['NewProtocol', protocol.toUpperCase()]], what, signal)
    if (!r.ok && r.code !== UpnpErrors.noSuchEntry) throw fault(what, r)
  }

  /** One SOAP action on the service's control URL: its out-arguments, or the UPnP error. `what` names the router. */
  private async soap (action: string, args: Array<[string, string | number]>, what: string, signal?: AbortSignal): Promise<SoapResult> {
    const type = this.service.type
    const body = '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
      `<u:${action} xmlns:u="${type}">${args.map(([k, v]) => `<${k}>${xmlEscape(String(v))}</${k}>`).join('')}</u:${action}></s:Body></s:Envelope>\r\n`
    let res
    try {
      res = await httpExchange(this.service.controlURL, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: `"${type}#${action}"` },
        body,
        maxBytes: IGD_MAX_SOAP_BYTES,
        signal
      })
    } catch (err) {
      throw igdError(what, err, signal)
    }
    return parseSoapAnswer(res.status, res.body, action, what)
  }
}

/** Pick the best port-mapping service of a device description; its control URL must be on `location`'s host. */
export function parseDescription (xml: string, location: URL): IgdService {
  const what = `UPnP: device description at ${location.href}`
  const text = xml.replace(/<!--[\s\S]*?-->/g, '')
  let base = location
  const urlBase = tagText(text, 'URLBase')
  if (urlBase !== null && urlBase !== '') {
    try { base = new URL(urlBase, location) } catch { /* the description's own location then */ }
  }
  const found = new Map<string, string>()
  const re = /<(?:[\w-]+:)?service\b[^>]*>([\s\S]*?)<\/(?:[\w-]+:)?service>/g
  for (let m = re.exec(text), n = 0; m !== null && n < IGD_MAX_SERVICES; m = re.exec(text), n++) {
    const type = tagText(m[1], 'serviceType')
    const control = tagText(m[1], 'controlURL')
    if (type !== null && control !== null && !found.has(type)) found.set(type, control)
  }
  for (const s of IGD_SERVICES) {
    const control = found.get(s.type)
    if (control === undefined) continue
    let url: URL
    try { url = new URL(control, base) } catch { throw new NetError(NetCodes.BAD_MESSAGE, `${what}: control URL ${JSON.stringify(control.slice(0, 80))} is not a URL`) }
    if (url.protocol !== 'http:' || url.hostname !== location.hostname || url.username !== '' || url.password !== '') {
      throw new NetError(NetCodes.BAD_MESSAGE, `${what}: control URL ${JSON.stringify(url.href.slice(0, 80))} is not on the router ${location.hostname}`)
    }
    return { type: s.type, version: s.version, controlURL: url }
  }
  throw new NetError(NetCodes.REFUSED, `${what}: no WANIPConnection or WANPPPConnection service (found: ${[...found.keys()].slice(0, 4).join(', ') || 'none'})`)
}

/** A SOAP answer: the out-arguments of `<u:ACTIONResponse>`, or the UPnP error of a fault. */
export function parseSoapAnswer (status: number, xml: string, action: string, what: string): SoapResult {
  const text = xml.replace(/<!--[\s\S]*?-->/g, '')
  if (status === 200) {
    // <u:ACTIONResponse ...>out-arguments</u:ACTIONResponse>, or <u:ACTIONResponse .../> when there are none.
    const m = new RegExp(`<(?:[\\w-]+:)?${action}Response\\b[^>]*?(?:/>|>([\\s\\S]*?)</(?:[\\w-]+:)?${action}Response>)`).exec(text)
    if (m === null) throw new NetError(NetCodes.BAD_MESSAGE, `${what}: no ${action}Response in the router's answer`)
    const values = new Map<string, string>()
    for (const v of (m[1] ?? '').matchAll(/<(?:[\w-]+:)?(New\w{1,64})\b[^>]*>([^<]{0,1024})<\/(?:[\w-]+:)?\1>/g)) values.set(v[1], xmlUnescape(v[2].trim()))
    return { ok: true, values }
  }
  const code = tagText(text, 'errorCode')
  if (status === 500 && code !== null && /^\d{1,4}$/.test(code)) {
    return { ok: false, code: Number(code), description: (tagText(text, 'errorDescription') ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 100) }
  }
  throw new NetError(NetCodes.REFUSED, `${what}: HTTP ${status}`)
}

function fault (what: string, r: { code: number, description: string }): NetError {
  return new NetError(NetCodes.REFUSED, `${what}: UPnP error ${r.code}${r.description !== '' ? ` (${r.description})` : ''}`)
}

/** The text of the first `<name>` element (any namespace prefix), entities decoded, or null. */
function tagText (xml: string, name: string): string | null {
  const m = new RegExp(`<(?:[\\w-]+:)?${name}\\b[^>]*>([^<]{0,2048})</(?:[\\w-]+:)?${name}>`).exec(xml)
  return m === null ? null : xmlUnescape(m[1].trim())
}

function xmlEscape (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function xmlUnescape (s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d{1,7}|#x[0-9a-fA-F]{1,6});/g, (_, e: string) => {
    if (e === 'lt') return '<'
    if (e === 'gt') return '>'
    if (e === 'amp') return '&'
    if (e === 'quot') return '"'
    if (e === 'apos') return "'"
    const n = e.startsWith('#x') ? parseInt(e.slice(2), 16) : Number(e.slice(1))
    return n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : ''
  })
}

/** One HTTP/1.1 exchange, bounded: at most maxBytes of body, within the signal (or IGD_HTTP_TIMEOUT_MS). */
async function httpExchange (url: URL, o: { method: 'GET' | 'POST', headers?: Record<string, string>, body?: string, maxBytes: number, signal?: AbortSignal }): Promise<{ status: number, body: string }> {
  const signal = o.signal ?? AbortSignal.timeout(IGD_HTTP_TIMEOUT_MS)
  return await new Promise((resolve, reject) => {
    let settled = false
    const fail = (err: unknown): void => { if (!settled) { settled = true; req.destroy(); reject(err) } }
    const payload = o.body === undefined ? undefined : Buffer.from(o.body, 'utf8')
    const req = httpRequest({
      host: url.hostname,
      port: url.port === '' ? 80 : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: o.method,
      headers: { ...o.headers, host: url.host, connection: 'close', ...(payload !== undefined ? { 'content-length': String(payload.length) } : {}) },
      agent: false,
      maxHeaderSize: 8192,
      signal
    }, res => {
      const declared = Number(res.headers['content-length'])
      if (Number.isFinite(declared) && declared > o.maxBytes) { fail(new NetError(NetCodes.BAD_MESSAGE, `${url.href}: an answer of ${declared} bytes (at most ${o.maxBytes})`)); return }
      const chunks: Buffer[] = []
      let n = 0
      res.on('data', (c: Buffer) => {
        n += c.length
        if (n > o.maxBytes) { fail(new NetError(NetCodes.BAD_MESSAGE, `${url.href}: an answer over ${o.maxBytes} bytes`)); return }
        chunks.push(c)
      })
      res.on('end', () => { if (!settled) { settled = true; resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }) } })
      res.on('error', fail)
    })
    req.on('error', fail)
    req.end(payload)
  })
}

export function igdError (what: string, err: unknown, signal?: AbortSignal): NetError {
  if (err instanceof NetError) return err
  if (signal?.aborted === true) return new NetError(NetCodes.TIMEOUT, `${what}: no answer in time`, { cause: err })
  const text = String((err as Error)?.message ?? err).replace(/\s+/g, ' ').slice(0, 200)
  const e = err as { code?: string, cause?: { code?: string } }
  const net = e.cause?.code ?? e.code
  if (net === 'ECONNREFUSED' || net === 'EHOSTUNREACH' || net === 'ENETUNREACH' || net === 'ECONNRESET') return new NetError(NetCodes.CONNECT_FAILED, `${what}: ${net}`, { cause: err })
  return new NetError(NetCodes.REFUSED, `${what}: ${text}`, { cause: err })
}
