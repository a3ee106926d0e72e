// UPnP-IGD client bench (`npm run bench -- igd`; docs/reachability.md §3.1): net/igd-client.ts against
// an IGD emulator on 127.0.0.1, cycles of description + map UDP + map TCP + delete both, beside a
// reference in the same process that makes the same HTTP exchanges with Node's fetch and reads each
// answer whole (what a client without bounds does, XML parsing left out). Then a hostile router's
// oversized description: how much memory each side spends on it (ours stops at 64 KiB).

import { createServer, type Server } from 'node:http'
import { IgdClient, IGD_MAX_DESCRIPTION_BYTES } from '../net/igd-client.js'
import { printJsonLine, round, table, cell } from './report.js'

const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2'
const CYCLES = 300
const WARMUP = 20
const HOSTILE_MB = 50

function emulator (bigMb: () => number): Server {
  const desc = `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><serviceList><service><serviceType>${WANIP2}</serviceType><controlURL>/ctl</controlURL></service></serviceList></device></root>`
  return createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/xml' })
        const mb = bigMb()
        if (mb === 0) { res.end(desc); return }
        const chunk = Buffer.alloc(1 << 20, 0x61)
        let sent = 0
        const more = (): void => {
          while (sent < mb) { sent++; if (!res.write(chunk)) { res.once('drain', more); return } }
          res.end()
        }
        res.write('<root><!--')
        more()
        return
      }
      const action = String(req.headers.soapaction ?? '').replace(/"/g, '').split('#')[1] ?? ''
      const out = action === 'GetExternalIPAddress' ? '<NewExternalIPAddress>203.0.113.7</NewExternalIPAddress>' : action === 'AddAnyPortMapping' ? '<NewReservedPort>40000</NewReservedPort>' : ''
      res.writeHead(200, { 'content-type': 'text/xml' })
      res.end(`<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:${action}Response xmlns:u="${WANIP2}">${out}</u:${action}Response></s:Body></s:Envelope>`)
    })
  })
}

async function ours (loc: URL): Promise<void> {
  const c = await IgdClient.open(loc, {})
  await c.map('udp', 5000, '192.168.1.5', 5000, 3600)
  await c.map('tcp', 5000, '192.168.1.5', 40000, 3600)
  await c.unmap('udp', 40000, 5000)
  await c.unmap('tcp', 40000, 5000)
}

/** The same exchanges with fetch and whole-body reads (the reference). */
async function reference (loc: URL): Promise<void> {
  await (await fetch(loc)).text()
  const ctl = new URL('/ctl', loc)
  const soap = async (action: string): Promise<void> => {
    await (await fetch(ctl, { method: 'POST', headers: { 'content-type': 'text/xml', soapaction: `"${WANIP2}#${action}"` }, body: `<s:Envelope><s:Body><u:${action} xmlns:u="${WANIP2}"/></s:Body></s:Envelope>` })).text()
  }
  for (const a of ['AddAnyPortMapping', 'GetExternalIPAddress', 'AddAnyPortMapping', 'GetExternalIPAddress', 'DeletePortMapping', 'DeletePortMapping']) await soap(a)
}

async function cycles (f: () => Promise<void>): Promise<{ msPerCycle: number, cpuMsPerCycle: number }> {
  for (let i = 0; i < WARMUP; i++) await f()
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  for (let i = 0; i < CYCLES; i++) await f()
  const c = process.cpuUsage(c0)
  return { msPerCycle: (performance.now() - t0) / CYCLES, cpuMsPerCycle: (c.user + c.system) / 1000 / CYCLES }
}

async function rssGrowth (f: () => Promise<unknown>): Promise<{ mb: number, outcome: string }> {
  global.gc?.()
  const base = process.memoryUsage().rss
  let peak = base
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 2)
  let outcome = 'accepted'
  try { await f() } catch (err) { outcome = String((err as Error).message).replace(/http:\/\/\S+?: /, '').slice(0, 60) }
  clearInterval(timer)
  peak = Math.max(peak, process.memoryUsage().rss)
  return { mb: (peak - base) / 1e6, outcome }
}

export async function runIgdBench (): Promise<void> {
  let big = 0
  const server = emulator(() => big)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const loc = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/d.xml`)
  try {
    process.stderr.write(`igd: ${CYCLES} cycles each (after ${WARMUP} to warm up)…\n`)
    const a = await cycles(async () => await ours(loc))
    const r = await cycles(async () => await reference(loc))
    big = HOSTILE_MB
    process.stderr.write(`igd: a ${HOSTILE_MB} MB description…\n`)
    const hostileOurs = await rssGrowth(async () => await IgdClient.open(loc, { signal: AbortSignal.timeout(30_000) }))
    const hostileRef = await rssGrowth(async () => await (await fetch(loc, { signal: AbortSignal.timeout(30_000) })).text())
    process.stdout.write(table(['client', 'ms/cycle', 'CPU ms/cycle', `${HOSTILE_MB} MB description: RSS +MB`, 'outcome'], [
      ['dustbox IgdClient', cell(a.msPerCycle, 2), cell(a.cpuMsPerCycle, 2), cell(hostileOurs.mb, 0), hostileOurs.outcome],
      ['fetch, whole reads (reference)', cell(r.msPerCycle, 2), cell(r.cpuMsPerCycle, 2), cell(hostileRef.mb, 0), hostileRef.outcome]
    ]) + '\n')
    process.stdout.write(`(a cycle: description, map UDP, map TCP, delete both; the reference makes the same 7 HTTP exchanges; ours refuses descriptions over ${IGD_MAX_DESCRIPTION_BYTES / 1024} KiB)\n`)
    printJsonLine({ bench: 'igd', cycles: CYCLES, ms_per_cycle: round(a.msPerCycle, 2), cpu_ms_per_cycle: round(a.cpuMsPerCycle, 2), ref_ms_per_cycle: round(r.msPerCycle, 2), ref_cpu_ms_per_cycle: round(r.cpuMsPerCycle, 2), hostile_description_mb: HOSTILE_MB, hostile_rss_growth_mb: round(hostileOurs.mb, 0), ref_hostile_rss_growth_mb: round(hostileRef.mb, 0) })
  } finally {
    server.closeAllConnections()
    server.close()
  }
}
