// Port mapping against a real router (docs/reachability.md §3): in the NAT lab (test/helpers/natlab.ts)
// one router runs miniupnpd (UPnP-IGD, PCP, NAT-PMP; test/helpers/igd-lab.ts). Behind it a PortMapper
// in its own process maps its port by each method in turn; from the lab's internet a fresh UDP flow and
// a fresh TCP connection reach the host at the mapped external address and port; the mapping is renewed
// (lifetimes of seconds outlived several times over) and, at close, deleted: the same listening sockets
// are no longer reachable. Behind a second router with no IGD the mapper says `unavailable`; behind a
// router answering nonsense it says `failed`, and neither crashes it. Skips, saying why, where
// namespaces, nftables or miniupnpd are not available.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { natLab, type NatLab } from './helpers/natlab.js'
import { startIgd, type Igd } from './helpers/igd-lab.js'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import type { PortMappingStatus } from '../net/index.js'
import { LocalSwarm, agentStatus } from '../agent/swarm.js'
import { parseSsdpAnswer, IGD_V1, IGD_V2 } from '../net/upnp-igd.js'
import { portMappingLine } from '../agent/format.js'
import { saveSettings, SETTINGS_VERSION } from '../agent/settings.js'

const helper = (name: string): string => fileURLToPath(new URL(`./helpers/${name}.js`, import.meta.url))
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

interface Line { event: string, status?: PortMappingStatus, port?: number, code?: string, message?: string }

class Child {
  readonly lines: Line[] = []
  readonly proc: ChildProcess
  stderr = ''
  private readonly exited: Promise<number | null>

  constructor (t: TestContext, wrap: string[], script: string, args: string[]) {
    this.proc = spawn(wrap[0], [...wrap.slice(1), process.execPath, helper(script), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.exited = new Promise(resolve => { this.proc.once('exit', code => { resolve(code) }) })
    createInterface({ input: this.proc.stdout! }).on('line', l => { try { this.lines.push(JSON.parse(l)) } catch { this.lines.push({ event: 'text', message: l }) } })
    this.proc.stderr!.on('data', d => { this.stderr = (this.stderr + String(d)).slice(-8000) })
    t.after(async () => { if (this.proc.exitCode === null) { this.proc.kill('SIGKILL'); await this.exited } })
  }

  send (cmd: string): void { this.proc.stdin!.write(cmd + '\n') }

  async waitFor (what: string, pred: (l: Line) => boolean, ms: number): Promise<Line> {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      const l = this.lines.find(pred)
      if (l !== undefined) return l
      if (this.proc.exitCode !== null) break
      await sleep(50)
    }
    throw new Error(`timed out waiting for ${what}; exit ${this.proc.exitCode}; lines ${JSON.stringify(this.lines.slice(-6))}; stderr ${this.stderr.slice(-1500)}`)
  }

  /** The newest status line. */
  status (): PortMappingStatus | undefined {
    for (let i = this.lines.length - 1; i >= 0; i--) if (this.lines[i].event === 'status') return this.lines[i].status
    return undefined
  }

  async exit (): Promise<number | null> {
    this.send('exit')
    return await Promise.race([this.exited, sleep(10_000).then(() => -1)])
  }
}

/** From the lab's internet, is host:port reachable by a new UDP flow and a new TCP connection? */
async function probe (lab: NatLab, host: string, port: number): Promise<{ udp: boolean, tcp: boolean }> {
  const c = spawn(lab.wrap(lab.inet)[0], [...lab.wrap(lab.inet).slice(1), process.execPath, helper('port-probe'), host, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  c.stdout.on('data', d => { out += String(d) })
  const code = await Promise.race([new Promise(resolve => c.once('exit', resolve)), sleep(10_000).then(() => { c.kill('SIGKILL'); return 'timeout' })])
  assert.equal(code, 0, `probe failed: ${out}`)
  return JSON.parse(out)
}

/** Map by `method` behind the miniupnpd router, check the mapping lets in, is renewed, is deleted. */
async function mapRenewDelete (t: TestContext, lab: NatLab, igd: Igd, method: 'upnp' | 'pcp' | 'nat-pmp', n = 0, soapAdd = 'AddAnyPortMapping'): Promise<void> {
  const c = new Child(t, lab.wrap(lab.nats[n].host), 'port-mapper-child', [JSON.stringify({ methods: [method], ttlSeconds: 2, renewMs: 1000, searchTimeoutMs: 2000, requestTimeoutMs: 3000 })])
  const port = (await c.waitFor('the child to listen', l => l.event === 'listening', 10_000)).port as number
  assert.deepEqual(await probe(lab, igd.extIp, port), { udp: false, tcp: false }, 'before mapping, the router lets nothing in')
  c.send('start')
  const m = (await c.waitFor(`a mapping by ${method}`, l => l.event === 'status' && l.status?.state !== 'searching', 20_000)).status as PortMappingStatus
  assert.equal(m.state, 'mapped', `mapped by ${method}: ${JSON.stringify(m)}`)
  assert.equal(m.method, method)
  assert.equal(m.gateway, `192.168.${n + 1}.1`)
  assert.equal(m.externalHost, igd.extIp)
  assert.equal(m.externalPort, port, 'miniupnpd keeps the port when it is free')
  assert.equal(m.tcpExternalPort, port)
  assert.ok((m.expiresAt ?? 0) > Date.now())
  assert.match(igd.rules(), new RegExp(`dport ${port}\\b`))
  assert.deepEqual(await probe(lab, m.externalHost!, m.externalPort!), { udp: true, tcp: true }, 'the mapped port is reachable from the internet')

  // Renewed: several renewals, past the lifetime granted at first (2 s), still in.
  const firstExpiry = m.expiresAt as number
  await c.waitFor('two renewals', l => l.event === 'status' && (l.status?.renewals ?? 0) >= 2, 15_000)
  while (Date.now() < firstExpiry + 1500) await sleep(100)
  const r = c.status() as PortMappingStatus
  assert.equal(r.state, 'mapped')
  assert.ok((r.expiresAt ?? 0) > firstExpiry, 'the expiry moved on')
  assert.deepEqual(await probe(lab, m.externalHost!, m.externalPort!), { udp: true, tcp: true }, 'still reachable after the first lifetime ran out')
  if (method === 'upnp') assert.ok((igd.log().match(new RegExp(`#${soapAdd}\\b`, 'g')) ?? []).length >= 6, `the router saw the renewals (${soapAdd}: 2 protocols, 3 times)`)

  // Deleted at close, while the sockets still listen.
  c.send('close')
  const closed = await c.waitFor('close', l => l.event === 'closed', 10_000)
  assert.equal(closed.status?.state, 'off')
  assert.doesNotMatch(igd.rules(), new RegExp(`dport ${port}\\b`), 'the router\'s forwarding rules are gone')
  assert.deepEqual(await probe(lab, m.externalHost!, m.externalPort!), { udp: false, tcp: false }, 'not reachable once deleted')
  assert.deepEqual(c.lines.filter(l => l.event === 'warning'), [], 'no warnings')
  assert.equal(await c.exit(), 0)
}

test('port mapping through a real router: UPnP-IGD, PCP and NAT-PMP map, renew and delete; no router or a hostile one', async (t) => {
  const { lab, why } = natLab(t, ['endpoint-independent', 'endpoint-independent'])
  if (lab === null) { t.skip(why); return }
  const { igd, why: igdWhy } = await startIgd(t, lab, 0)
  if (igd === null) { t.skip(igdWhy); return }
  lab.addPublic('10.77.0.5')

  await t.test('UPnP-IGD', async (st) => { await mapRenewDelete(st, lab, igd, 'upnp') })
  await t.test('PCP', async (st) => { await mapRenewDelete(st, lab, igd, 'pcp') })
  await t.test('NAT-PMP', async (st) => { await mapRenewDelete(st, lab, igd, 'nat-pmp') })
  await t.test('UPnP-IGD v1 (a router describing itself as InternetGatewayDevice:1: AddPortMapping)', async (st) => {
    const { igd: v1, why: v1Why } = await startIgd(st, lab, 1, { igdV1: true })
    if (v1 === null) { st.skip(v1Why); return }
    await mapRenewDelete(st, lab, v1, 'upnp', 1, 'AddPortMapping')
  })

  await t.test('an agent with mapPort maps its port while it runs and deletes the mapping when it stops', async (st) => {
    const base = await fsp.mkdtemp(join(tmpdir(), 'dustbox-map-'))
    const swarm = new LocalSwarm(base)
    st.after(async () => { await swarm.close(); await fsp.rm(base, { recursive: true, force: true, maxRetries: 3 }) })
    lab.addPublic('10.77.0.254')
    await swarm.startBootstrap({ host: '10.77.0.254', wrap: lab.wrap(lab.inet) })
    const home = join(base, 'behind')
    await fsp.mkdir(home, { recursive: true, mode: 0o700 })
    await saveSettings(home, { version: SETTINGS_VERSION, mapPort: true }) // what `dustbox setup --map-port` writes
    const agent = await swarm.startAgent({ name: 'behind', home, host: '0.0.0.0', wrap: lab.wrap(lab.nats[0].host) })
    const deadline = Date.now() + 20_000
    let s = await agentStatus(home)
    while (s.portMapping?.state !== 'mapped' && Date.now() < deadline) { await sleep(200); s = await agentStatus(home) }
    assert.equal(s.portMapping?.state, 'mapped', `the agent maps its port (agent.ts starts the mapper after net.ready() when config.mapPort): ${JSON.stringify(s.portMapping)}`)
    assert.equal(s.portMapping?.externalHost, igd.extIp)
    assert.equal(s.portMapping?.externalPort, s.port)
    assert.deepEqual(s.reachability?.portMapped, { host: igd.extIp, port: s.port }, 'the node gives the mapped address in introductions')
    assert.match(igd.rules(), new RegExp(`dport ${s.port}\\b`))
    await swarm.stop(agent)
    assert.doesNotMatch(igd.rules(), new RegExp(`dport ${s.port}\\b`), 'deleted when the agent stops')
  })

  await t.test('no router that maps ports: unavailable, in bounded time', async (st) => {
    const c = new Child(st, lab.wrap(lab.nats[1].host), 'port-mapper-child', [JSON.stringify({ searchTimeoutMs: 1500, pmpFirstWaitMs: 100 })])
    await c.waitFor('the child to listen', l => l.event === 'listening', 10_000)
    c.send('start')
    // Bounded: the search gives up by itself (searchTimeoutMs 1.5 s); the wait only caps the test.
    const s = (await c.waitFor('a result', l => l.event === 'status' && l.status?.state !== 'searching', 15_000)).status as PortMappingStatus
    assert.equal(s.state, 'unavailable', JSON.stringify(s))
    assert.match(s.error ?? '', /no PCP, NAT-PMP or UPnP-IGD router answered/)
    c.send('close')
    assert.equal((await c.waitFor('close', l => l.event === 'closed', 10_000)).status?.state, 'off')
    assert.equal(await c.exit(), 0)
  })

  await t.test('a router answering nonsense: failed, never a crash', async (st) => {
    const hostile = new Child(st, lab.wrap(lab.nats[1].router), 'hostile-router', ['192.168.2.1'])
    await hostile.waitFor('the hostile router', l => l.event === 'ready', 10_000)
    const c = new Child(st, lab.wrap(lab.nats[1].host), 'port-mapper-child', [JSON.stringify({ searchTimeoutMs: 2000, pmpFirstWaitMs: 100, requestTimeoutMs: 3000 })])
    await c.waitFor('the child to listen', l => l.event === 'listening', 10_000)
    c.send('start')
    const s = (await c.waitFor('a result', l => l.event === 'status' && l.status?.state !== 'searching', 20_000)).status as PortMappingStatus
    assert.equal(s.state, 'failed', JSON.stringify(s))
    assert.match(s.error ?? '', /external port "99999"/)
    assert.ok(c.lines.some(l => l.event === 'warning' && l.code === 'BAD_MESSAGE'), 'one warning says what the router did')
    assert.equal(c.proc.exitCode, null, 'still running')
    c.send('close')
    assert.equal((await c.waitFor('close', l => l.event === 'closed', 10_000)).status?.state, 'off')
    assert.equal(await c.exit(), 0)
    hostile.proc.kill()
  })
})

test('SSDP answers: only a well-formed IGD answer whose LOCATION is on its sender counts; random bytes never throw', () => {
  const answer = (st: string, location: string, first = 'HTTP/1.1 200 OK'): Buffer => Buffer.from(`${first}\r\nCACHE-CONTROL: max-age=120\r\nST: ${st}\r\nLOCATION: ${location}\r\n\r\n`)
  const ok = parseSsdpAnswer(answer(IGD_V2, 'http://192.168.1.1:5000/rootDesc.xml'), '192.168.1.1')
  assert.equal(ok?.version, 2)
  assert.equal(ok?.location.href, 'http://192.168.1.1:5000/rootDesc.xml')
  assert.equal(parseSsdpAnswer(answer(IGD_V1, 'http://192.168.1.1:5000/d.xml'), '192.168.1.1')?.version, 1)
  assert.equal(parseSsdpAnswer(answer(IGD_V2, 'http://192.168.1.66:5000/d.xml'), '192.168.1.1'), null, 'LOCATION on another host')
  assert.equal(parseSsdpAnswer(answer(IGD_V2, 'https://192.168.1.1/d.xml'), '192.168.1.1'), null, 'not http')
  assert.equal(parseSsdpAnswer(answer(IGD_V2, 'http://u:p@192.168.1.1/d.xml'), '192.168.1.1'), null, 'credentials')
  assert.equal(parseSsdpAnswer(answer('upnp:rootdevice', 'http://192.168.1.1/d.xml'), '192.168.1.1'), null, 'not an IGD')
  assert.equal(parseSsdpAnswer(answer(IGD_V2, 'http://192.168.1.1/d.xml', 'NOTIFY * HTTP/1.1'), '192.168.1.1'), null)
  assert.equal(parseSsdpAnswer(Buffer.concat([answer(IGD_V2, 'http://192.168.1.1/d.xml'), Buffer.alloc(3000, 32)]), '192.168.1.1'), null, 'too big')
  for (let i = 0; i < 2000; i++) parseSsdpAnswer(randomBytes(i % 300), '192.168.1.1')
})

test('dustbox status: the port mapping line', () => {
  const now = 1_000_000
  assert.equal(portMappingLine({ state: 'mapped', method: 'upnp', externalHost: '203.0.113.7', externalPort: 51000, tcpExternalPort: 51000, expiresAt: now + 30 * 60_000, renewals: 3 }, now), 'port mapping: mapped by UPnP-IGD at 203.0.113.7:51000, renewed 3 times, lease 30 min left')
  assert.equal(portMappingLine({ state: 'mapped', method: 'pcp', externalHost: '203.0.113.7', externalPort: 51000, tcpExternalPort: 51001, expiresAt: now, renewals: 1 }, now), 'port mapping: mapped by PCP at 203.0.113.7:51000 (TCP at port 51001), renewed 1 time, lease 0 min left')
  assert.equal(portMappingLine({ state: 'searching' }), 'port mapping: asking the router…')
  assert.match(portMappingLine({ state: 'unavailable', error: 'no IPv4 default gateway' }), /^port mapping: unavailable, .*\(no IPv4 default gateway\)$/)
  assert.equal(portMappingLine({ state: 'failed', error: 'pcp: refused' }), 'port mapping FAILED: pcp: refused')
})
