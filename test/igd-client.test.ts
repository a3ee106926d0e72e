// The UPnP-IGD SOAP client (net/igd-client.ts, docs/reachability.md §3) against a scripted router on
// 127.0.0.1 (a real HTTP server): the service it picks (v2 over v1, WANPPPConnection, URLBase), the
// IGDv1 fallbacks (port taken, permanent leases only, same port required), and the router as hostile
// input: descriptions and answers over their bounds, control URLs on another host, nonsense values,
// faults, a router that never answers. Against a real miniupnpd: test/port-mapping.test.ts.

import test, { type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { IgdClient, parseDescription, IGD_MAX_DESCRIPTION_BYTES, IGD_PERMANENT_RENEW_SECONDS } from '../net/igd-client.js'
import { NetError } from '../net/errors.js'

const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2'
const WANIP1 = 'urn:schemas-upnp-org:service:WANIPConnection:1'
const WANPPP1 = 'urn:schemas-upnp-org:service:WANPPPConnection:1'

const desc = (services: Array<[string, string]>, extra = ''): string =>
  `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">${extra}<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>` +
  `<serviceList>${services.map(([t, c]) => `<service><serviceType>${t}</serviceType><serviceId>x</serviceId><controlURL>${c}</controlURL><SCPDURL>/s.xml</SCPDURL></service>`).join('')}</serviceList></device></root>`

const answer = (action: string, body: string): string =>
  `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:${action}Response xmlns:u="x">${body}</u:${action}Response></s:Body></s:Envelope>`

const faultXml = (code: number, text: string): string =>
  `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${code}</errorCode><errorDescription>${text}</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`

interface Call { action: string, body: string }
type Handler = (req: IncomingMessage, res: ServerResponse, body: string, calls: Call[]) => void

/** A scripted router on 127.0.0.1: GET /d.xml serves `description`, POST /ctl goes to `soap`. */
async function router (t: TestContext, description: string | Handler, soap: (action: string, body: string) => [number, string]): Promise<{ location: URL, calls: Call[] }> {
  const calls: Call[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      if (req.method === 'GET') {
        if (typeof description === 'function') { description(req, res, body, calls); return }
        res.writeHead(200, { 'content-type': 'text/xml' })
        res.end(description)
        return
      }
      const action = String(req.headers.soapaction ?? '').replace(/"/g, '').split('#')[1] ?? ''
      calls.push({ action, body })
      const [status, xml] = soap(action, body)
      res.writeHead(status, { 'content-type': 'text/xml; charset="utf-8"' })
      res.end(xml)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  return { location: new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/d.xml`), calls }
}

const code = async (p: Promise<unknown>): Promise<string> => await p.then(() => 'resolved', (err: unknown) => err instanceof NetError ? err.message : `not a NetError: ${String(err)}`)

test('descriptions: v2 over v1 over PPP, URLBase, comments and entities; a control URL on another host or no service is refused by name', () => {
  const loc = new URL('http://192.168.1.1:5000/rootDesc.xml')
  const both = parseDescription(desc([[WANIP1, '/ctl1'], [WANIP2, '/ctl2']]), loc)
  assert.equal(both.version, 2)
  assert.equal(both.controlURL.href, 'http://192.168.1.1:5000/ctl2')
  const ppp = parseDescription(desc([[WANPPP1, 'ctl?a=1&amp;b=2']], '<!-- <service><serviceType>' + WANIP2 + '</serviceType><controlURL>http://10.9.9.9/</controlURL></service> --><URLBase>http://192.168.1.1:49000/igd/</URLBase>'), loc)
  assert.equal(ppp.version, 1)
  assert.equal(ppp.type, WANPPP1)
  assert.equal(ppp.controlURL.href, 'http://192.168.1.1:49000/igd/ctl?a=1&b=2', 'relative to URLBase, entity decoded, the commented-out service ignored')
  const err = (xml: string): string => { try { parseDescription(xml, loc); return 'accepted' } catch (e) { return (e as Error).message } }
  assert.match(err(desc([[WANIP2, 'http://10.9.9.9/ctl']])), /^BAD_MESSAGE: .*rootDesc\.xml: control URL "http:\/\/10\.9\.9\.9\/ctl" is not on the router 192\.168\.1\.1/)
  assert.match(err(desc([[WANIP2, 'file:///etc/passwd']])), /^BAD_MESSAGE: .*not on the router/)
  assert.match(err(desc([[WANIP1, '/c']], '<URLBase>http://evil.example/</URLBase>')), /^BAD_MESSAGE: .*not on the router/, 'URLBase cannot move it either')
  assert.match(err(desc([['urn:schemas-upnp-org:service:Layer3Forwarding:1', '/l3f']])), /^REFUSED: .*no WANIPConnection or WANPPPConnection service \(found: urn:schemas-upnp-org:service:Layer3Forwarding:1\)/)
  assert.match(err('<<<not xml' + '\u0000'.repeat(100)), /^REFUSED: .*found: none/)
})

test('IGDv2: AddAnyPortMapping per protocol, the answered port and address; the description is escaped in the request', async (t) => {
  const r = await router(t, desc([[WANIP1, '/ctl1'], [WANIP2, '/ctl']]), action => {
    if (action === 'AddAnyPortMapping') return [200, answer(action, '<NewReservedPort>40001</NewReservedPort>')]
    if (action === 'GetExternalIPAddress') return [200, answer(action, '<NewExternalIPAddress>203.0.113.7</NewExternalIPAddress>')]
    if (action === 'DeletePortMapping') return [500, faultXml(714, 'NoSuchEntryInArray')]
    return [500, faultXml(401, 'Invalid Action')]
  })
  const igd = await IgdClient.open(r.location, { description: 'dustbox <5000> & co' })
  assert.equal(igd.service.version, 2)
  assert.deepEqual(await igd.map('udp', 5000, '192.168.1.5', 5000, 120), { externalPort: 40001, externalHost: '203.0.113.7', lease: 120 })
  const add = r.calls.find(c => c.action === 'AddAnyPortMapping')!
  assert.match(add.body, /<NewProtocol>UDP<\/NewProtocol>/)
  assert.match(add.body, /<NewInternalClient>192\.168\.1\.5<\/NewInternalClient>/)
  assert.match(add.body, /<NewLeaseDuration>120<\/NewLeaseDuration>/)
  assert.match(add.body, /<NewPortMappingDescription>dustbox &lt;5000&gt; &amp; co<\/NewPortMappingDescription>/)
  await igd.unmap('udp', 40001, 5000) // already gone (714): no error
  assert.match(r.calls.at(-1)!.body, /<NewExternalPort>40001<\/NewExternalPort><NewProtocol>UDP<\/NewProtocol>/)
})

test('IGDv1: AddPortMapping; a taken port moves, permanent-only leases and same-port routers are followed', async (t) => {
  let taken = 2
  const r = await router(t, desc([[WANIP1, '/ctl']]), (action, body) => {
    if (action === 'GetExternalIPAddress') return [200, answer(action, '<NewExternalIPAddress>198.51.100.2</NewExternalIPAddress>')]
    if (action !== 'AddPortMapping') return [500, faultXml(401, 'Invalid Action')]
    if (!body.includes('<NewLeaseDuration>0<')) return [500, faultXml(725, 'OnlyPermanentLeasesSupported')]
    if (taken-- > 0) return [500, faultXml(718, 'ConflictInMappingEntry')]
    // As miniupnpd answers an action without out-arguments: an empty element.
    return [200, '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:AddPortMappingResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"/></s:Body></s:Envelope>']
  })
  const igd = await IgdClient.open(r.location, {})
  assert.equal(igd.service.version, 1)
  const m = await igd.map('tcp', 6000, '192.168.1.5', 6000, 7200)
  assert.ok(m.externalPort >= 49152 && m.externalPort <= 65535, `moved to ${m.externalPort}`)
  assert.equal(m.lease, IGD_PERMANENT_RENEW_SECONDS)
  assert.equal(m.externalHost, '198.51.100.2')
  assert.deepEqual(r.calls.filter(c => c.action === 'AddPortMapping').length, 4)

  const same = await router(t, desc([[WANIP1, '/ctl']]), (action, body) => {
    if (action === 'GetExternalIPAddress') return [200, answer(action, '<NewExternalIPAddress>198.51.100.2</NewExternalIPAddress>')]
    return body.includes('<NewExternalPort>6000<') ? [200, answer(action, '')] : [500, faultXml(724, 'SamePortValuesRequired')]
  })
  assert.equal((await (await IgdClient.open(same.location, {})).map('udp', 6000, '192.168.1.5', 7000, 60)).externalPort, 6000)

  const full = await router(t, desc([[WANIP1, '/ctl']]), () => [500, faultXml(718, 'ConflictInMappingEntry')])
  assert.match(await code((await IgdClient.open(full.location, {})).map('udp', 6000, '192.168.1.5', 6000, 60)), /^REFUSED: UPnP map udp 192\.168\.1\.5:6000 at 127\.0\.0\.1:\d+: UPnP error 718 \(ConflictInMappingEntry\)/)
  assert.equal(full.calls.length, 4, 'the asked port and 3 others, then it gives up')
})

test('a hostile router: oversized descriptions and answers, nonsense values, bad statuses, silence: refused by name, bounded', async (t) => {
  // A description over the bound, declared or streamed without a length: the read stops there.
  let streamed = 0
  const big = await router(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/xml' })
    const chunk = Buffer.alloc(16 * 1024, 0x20)
    const more = (): void => {
      while (streamed < 64 * 1024 * 1024) {
        streamed += chunk.length
        if (!res.write(chunk)) { res.once('drain', more); return }
      }
      res.end()
    }
    res.on('close', () => { streamed = Math.max(streamed, 0) })
    more()
  }, () => [500, ''])
  assert.match(await code(IgdClient.open(big.location, {})), new RegExp(`^BAD_MESSAGE: .*an answer over ${IGD_MAX_DESCRIPTION_BYTES} bytes`))
  assert.ok(streamed < 16 * 1024 * 1024, `the router got to write ${streamed} bytes before the client hung up`)
  const declared = await router(t, (_req, res) => { res.writeHead(200, { 'content-type': 'text/xml', 'content-length': String(10 * 1024 * 1024) }); res.write('<root>') }, () => [500, ''])
  assert.match(await code(IgdClient.open(declared.location, {})), /^BAD_MESSAGE: .*an answer of 10485760 bytes/)
  const missing = await router(t, (_req, res) => { res.writeHead(404); res.end() }, () => [500, ''])
  assert.match(await code(IgdClient.open(missing.location, {})), /^REFUSED: UPnP: device description at .*: HTTP 404/)

  // SOAP answers: nonsense values, an oversized answer, no response element, a fault without a code.
  const answers: Record<string, [number, string]> = {
    AddAnyPortMapping: [200, answer('AddAnyPortMapping', '<NewReservedPort>99999</NewReservedPort>')],
    GetExternalIPAddress: [200, answer('GetExternalIPAddress', '<NewExternalIPAddress>not-an-ip</NewExternalIPAddress>')]
  }
  const r = await router(t, desc([[WANIP2, '/ctl']]), action => answers[action] ?? [500, ''])
  const igd = await IgdClient.open(r.location, {})
  assert.match(await code(igd.map('udp', 5000, '192.168.1.5', 5000, 60)), /^BAD_MESSAGE: UPnP map udp 192\.168\.1\.5:5000 at 127\.0\.0\.1:\d+: the router answered external port "99999"/)
  answers.AddAnyPortMapping = [200, answer('AddAnyPortMapping', '<NewReservedPort>5000</NewReservedPort>')]
  assert.match(await code(igd.map('udp', 5000, '192.168.1.5', 5000, 60)), /^BAD_MESSAGE: .*the router answered external address "not-an-ip"/)
  answers.GetExternalIPAddress = [200, answer('GetExternalIPAddress', `<NewExternalIPAddress>${'9'.repeat(20_000)}</NewExternalIPAddress>`)]
  assert.match(await code(igd.externalAddress()), /^BAD_MESSAGE: .*an answer over 16384 bytes/)
  answers.GetExternalIPAddress = [200, '<?xml version="1.0"?><nothing/>']
  assert.match(await code(igd.externalAddress()), /^BAD_MESSAGE: .*no GetExternalIPAddressResponse in the router's answer/)
  assert.match(await code(igd.unmap('tcp', 5000, 5000)), /^REFUSED: UPnP delete tcp 5000 at 127\.0\.0\.1:\d+: HTTP 500/)

  // Silence: the caller's signal ends it, as TIMEOUT.
  const silent = await router(t, () => { /* never answers */ }, () => [500, ''])
  assert.match(await code(IgdClient.open(silent.location, { signal: AbortSignal.timeout(300) })), /^TIMEOUT: UPnP: device description at .*: no answer in time/)
  // Nothing listening: CONNECT_FAILED.
  assert.match(await code(IgdClient.open(new URL('http://127.0.0.1:1/d.xml'), {})), /^CONNECT_FAILED: .*ECONNREFUSED/)
})
