// A broken or hostile home router for test/port-mapping.test.ts, run in a NAT lab router namespace:
// it answers every PCP / NAT-PMP request on UDP 5351 and every SSDP search with malformed datagrams
// (empty, truncated, wrong nonce, oversized, headers missing, LOCATION elsewhere), then with one
// well-formed IGD answer whose device description is fine but whose SOAP answers are nonsense
// (external port 99999, external address "not-an-ip"). argv: the router's LAN address. Prints
// {"event":"ready"} when listening; exits by itself after 60 s.

import { createSocket } from 'node:dgram'
import { createServer } from 'node:http'
import { randomBytes } from 'node:crypto'

const lan = process.argv[2] ?? '192.168.2.1'
const IGD2 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'
const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2'
setTimeout(() => { process.exit(0) }, 60_000)

const http = createServer((req, res) => {
  req.resume()
  if (req.url === '/rootDesc.xml') {
    res.writeHead(200, { 'content-type': 'text/xml' })
    res.end(`<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>${IGD2}</deviceType><UDN>uuid:bad</UDN><serviceList><service><serviceType>${WANIP2}</serviceType><controlURL>/ctl</controlURL><SCPDURL>/scpd.xml</SCPDURL></service></serviceList></device></root>`)
    return
  }
  const action = String(req.headers.soapaction ?? '').replace(/"/g, '').split('#')[1] ?? 'X'
  const body = action === 'GetExternalIPAddress' ? '<NewExternalIPAddress>not-an-ip</NewExternalIPAddress>' : '<NewReservedPort>99999</NewReservedPort>'
  res.writeHead(200, { 'content-type': 'text/xml' })
  res.end(`<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:${action}Response xmlns:u="${WANIP2}">${body}</u:${action}Response></s:Body></s:Envelope>`)
})
await new Promise<void>(resolve => http.listen(0, lan, resolve))
const httpPort = (http.address() as { port: number }).port

const pmp = createSocket('udp4')
pmp.on('message', (msg, r) => {
  const pcpAnswer = (len: number, nonce: Buffer): Buffer => {
    const b = Buffer.alloc(len)
    b[0] = 2
    b[1] = 0x81
    if (len >= 36) nonce.copy(b, 24)
    return b
  }
  const junk = [
    Buffer.alloc(0),
    Buffer.from([0]),
    Buffer.from([0, 0x81, 0, 0]),
    Buffer.from([0, 128 + (msg[1] ?? 1), 0, 0, 0, 0, 0, 1]), // a NAT-PMP answer cut short
    pcpAnswer(30, randomBytes(12)), // a PCP answer cut short
    pcpAnswer(60, randomBytes(12)), // someone else's nonce
    randomBytes(2000)
  ]
  for (const j of junk) pmp.send(j, r.port, r.address, () => {})
})
pmp.bind(5351)

const ssdp = createSocket({ type: 'udp4', reuseAddr: true })
ssdp.on('message', (msg, r) => {
  if (!msg.toString('latin1').startsWith('M-SEARCH')) return
  const answers = [
    'FOO * HTTP/1.1\r\n\r\n',
    `HTTP/1.1 200 OK\r\nST: ${IGD2}\r\n\r\n`,
    `HTTP/1.1 200 OK\r\nST: ${IGD2}\r\nLOCATION: http://10.77.0.5:80/rootDesc.xml\r\n\r\n`,
    `HTTP/1.1 200 OK\r\nST: ${IGD2}\r\nLOCATION: ${'x'.repeat(3000)}\r\n\r\n`,
    `HTTP/1.1 200 OK\r\nST: ${IGD2}\r\nLOCATION: file:///etc/passwd\r\n\r\n`,
    `HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: ${IGD2}\r\nUSN: uuid:bad::${IGD2}\r\nLOCATION: http://${lan}:${httpPort}/rootDesc.xml\r\n\r\n`
  ]
  for (const a of answers) ssdp.send(a, r.port, r.address, () => {})
})
await new Promise<void>(resolve => ssdp.bind(1900, () => { resolve() }))
ssdp.addMembership('239.255.255.250', lan)
process.stdout.write(JSON.stringify({ event: 'ready' }) + '\n')
