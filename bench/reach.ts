// The reach bench (`npm run bench -- reach`): the figures of reachability (docs/reachability.md,
// issue 9) in the NAT lab of the tests (test/helpers/natlab.ts: network namespaces, nftables NATs).
// On the "internet": an introducer and relay C (10.77.0.10, relaying opted in, its rate cap lifted)
// and a public storage node P (10.77.0.11). Behind NATs: a client A (endpoint-independent NAT #1), a
// storage node B (endpoint-independent NAT #2) and a storage node S (symmetric NAT #3, which no hole
// punching gets through). Each node is a NetNode (uTP only) in its own process (bench/reach-node.ts)
// in its namespace, driven over stdin/stdout. B, S and A connect to C; A to P. Then:
//   connect  = 5 × the time to a connection, from the call to the authenticated Peer: A → P direct
//              (the reference), A → B through C's introduction and a punched hole
//              (reach.connectIndirect), A → S through a circuit over C (reach.relayTo); between two
//              runs the connection is closed and the far end has seen it go;
//   transfer = A puts N MiB (default 64, `--mib N`) as distinct 4 MiB random shards, 4 in flight, to
//              P direct, to B punched, to S relayed, and gets them back (byte-exact); 3 rounds of
//              the three, interleaved: MB/s of all rounds together, and each round's;
//   CPU      = process CPU (user + system) of each side and of the relay C during each transfer, per
//              MB of payload, and C's per MB it forwarded (both directions, ciphertext and framing);
//   cap      = C is stopped, a relay C2 with the default rate cap (RELAY_RATE_BYTES, net/relay.ts)
//              takes its place (10.77.0.12) and A puts 16 MiB to S through it: the cap holds.
// Peak RSS (VmHWM) of every node. Without root or network namespaces it prints why, and the JSON
// line with "skipped". Every wait is bounded; the namespaces, processes and stores are removed at the
// end and on SIGINT / SIGTERM.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, promises as fsp, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { natLab, type NatLab } from '../test/helpers/natlab.js'
import { RELAY_RATE_BYTES } from '../net/relay.js'
import { MIB } from './config.js'
import { MB, MiB, cell, printJsonLine, round, table } from './report.js'

const CHILD = fileURLToPath(new URL('./reach-node.js', import.meta.url))
const SHARD = 4 * MiB
const PARALLEL = 4
const DEFAULT_MIB = 64
const CAPPED_MIB = 16
const CONNECT_REPS = 10
/** Rounds of the three transfers, interleaved (the machine is shared: one slow moment hits all paths alike). */
const ROUNDS = 3
const WANT_SOCKET_BUFFER = 4 * 1024 * 1024
const CMD_TIMEOUT_MS = 60_000
const TRANSFER_TIMEOUT_MS = 180_000
/** Every child exits by itself after this long, whatever happens to this process. */
const CHILD_MAX_S = 600
const IPS = { C: '10.77.0.10', P: '10.77.0.11', C2: '10.77.0.12' }

const log = (s: string): void => { process.stderr.write(`# ${s}\n`) }
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  return n === 0 ? NaN : n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}

// ---- the child nodes --------------------------------------------------------------------------

interface Ready { id: string, key: string, port: number, rmemMax: number | null, wmemMax: number | null }
interface Stats { cpuUs: number, relay: { circuits: number, bytes: number, opened: number }, rss: number | null, hwm: number | null, warnings: number }
interface Timed { ms: number, path?: string, transport?: string }
interface Transfer { ms: number, bytes: number, cpuUs: number }

class Child {
  readonly proc: ChildProcess
  readonly tail: string[] = []
  private nextId = 1
  private readonly waiting = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()
  private readyWaiter: { resolve: (r: Ready) => void, reject: (e: Error) => void } | null = null
  ready: Ready | null = null
  exited = false

  constructor (readonly name: string, readonly ns: string, readonly host: string, args: string[]) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, CHILD, '--name', name, '--host', host, '--max-s', String(CHILD_MAX_S), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    createInterface({ input: this.proc.stdout! }).on('line', line => this.onLine(line))
    createInterface({ input: this.proc.stderr! }).on('line', line => {
      this.tail.push(line)
      if (this.tail.length > 30) this.tail.shift()
      process.stderr.write(`${line.startsWith('#') ? '' : `# ${name}: `}${line}\n`)
    })
    this.proc.stdin!.on('error', () => {})
    this.proc.once('exit', (code, sig) => {
      this.exited = true
      const err = new Error(`${name} exited (${code ?? sig}): ${this.tail.slice(-5).join(' | ')}`)
      this.readyWaiter?.reject(err)
      for (const w of this.waiting.values()) w.reject(err)
      this.waiting.clear()
    })
  }

  private onLine (line: string): void {
    let m: any
    try { m = JSON.parse(line) } catch { log(`${this.name}: ${line}`); return }
    if (m.ready === true) { this.ready = m as Ready; this.readyWaiter?.resolve(m as Ready); return }
    const w = this.waiting.get(m.id)
    if (w === undefined) return
    this.waiting.delete(m.id)
    if (m.ok === true) w.resolve(m)
    else w.reject(new Error(`${this.name}: ${String(m.error)}`))
  }

  async started (timeoutMs = 30_000): Promise<Ready> {
    if (this.ready !== null) return this.ready
    return await new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not start within ${timeoutMs} ms: ${this.tail.slice(-5).join(' | ')}`)), timeoutMs)
      this.readyWaiter = { resolve: r => { clearTimeout(timer); resolve(r) }, reject: e => { clearTimeout(timer); reject(e) } }
    })
  }

  get key (): string { return this.ready!.key }

  async call<T> (cmd: string, params: Record<string, unknown> = {}, timeoutMs = CMD_TIMEOUT_MS): Promise<T> {
    if (this.exited) throw new Error(`${this.name} is not running: ${this.tail.slice(-5).join(' | ')}`)
    const id = this.nextId++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(id); reject(new Error(`${this.name}: no answer to ${cmd} within ${timeoutMs} ms`)) }, timeoutMs)
      this.waiting.set(id, { resolve: v => { clearTimeout(timer); resolve(v as T) }, reject: e => { clearTimeout(timer); reject(e) } })
      this.proc.stdin!.write(JSON.stringify({ id, cmd, ...params }) + '\n')
    })
  }

  async stats (): Promise<Stats> { return await this.call<Stats>('stats') }

  /** Ask it to exit; kill it if it has not within 3 s. */
  async stop (): Promise<void> {
    if (this.exited) return
    this.call('exit', {}, 3000).catch(() => {})
    const gone = new Promise<void>(resolve => this.proc.once('exit', () => resolve()))
    await Promise.race([gone, sleep(3000)])
    this.kill()
  }

  kill (): void {
    if (!this.exited && this.proc.pid !== undefined) { try { this.proc.kill('SIGKILL') } catch {} }
  }
}

// ---- the namespaces' socket buffers -------------------------------------------------------------

/** net.core.{r,w}mem_max in each namespace that runs a node: raised to 4 MiB where lower (and allowed). */
function socketBuffers (namespaces: string[]): { before: number, after: number, note: string } {
  const read = (ns: string, k: string): number => Number(execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-n', k], { encoding: 'utf8' }).trim())
  let before = Infinity
  let after = Infinity
  const raised: string[] = []
  const failed: string[] = []
  for (const ns of namespaces) {
    const low = Math.min(read(ns, 'net.core.rmem_max'), read(ns, 'net.core.wmem_max'))
    before = Math.min(before, low)
    if (low < WANT_SOCKET_BUFFER) {
      try {
        execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `net.core.rmem_max=${WANT_SOCKET_BUFFER}`, `net.core.wmem_max=${WANT_SOCKET_BUFFER}`], { stdio: 'ignore' })
        raised.push(ns)
      } catch { failed.push(ns) }
    }
    after = Math.min(after, read(ns, 'net.core.rmem_max'), read(ns, 'net.core.wmem_max'))
  }
  const note = raised.length === 0 && failed.length === 0
    ? `net.core.rmem_max/wmem_max already ≥ ${WANT_SOCKET_BUFFER} in every node's namespace (${after})`
    : `net.core.rmem_max/wmem_max was ${before}: raised to ${WANT_SOCKET_BUFFER} in ${raised.length} namespaces${failed.length > 0 ? `, could not in ${failed.length} (uTP will be slow there)` : ''}`
  return { before, after, note }
}

// ---- the bench --------------------------------------------------------------------------------

interface ConnectRow { name: string, path: string, ms: number[] }
interface TransferRow {
  name: string
  path: string
  put: Transfer
  get: Transfer | null
  /** CPU µs of the receiving node during the put / get. */
  recvPutUs: number
  recvGetUs: number | null
  /** The relay's CPU µs and bytes forwarded during the put / get (relayed rows only). */
  relayPut: { cpuUs: number, bytes: number } | null
  relayGet: { cpuUs: number, bytes: number } | null
  /** MB/s of each round's put / get. */
  putRounds: number[]
  getRounds: number[]
}

/** Rounds of one path as one row: bytes, times and CPU summed (MB/s = all bytes / all time). */
function combine (xs: TransferRow[]): TransferRow {
  const sum = (f: (x: TransferRow) => number): number => xs.reduce((n, x) => n + f(x), 0)
  const sumT = (f: (x: TransferRow) => Transfer | null): Transfer | null => xs.some(x => f(x) === null) ? null : { ms: sum(x => f(x)!.ms), bytes: sum(x => f(x)!.bytes), cpuUs: sum(x => f(x)!.cpuUs) }
  const sumR = (f: (x: TransferRow) => { cpuUs: number, bytes: number } | null): { cpuUs: number, bytes: number } | null => xs.some(x => f(x) === null) ? null : { cpuUs: sum(x => f(x)!.cpuUs), bytes: sum(x => f(x)!.bytes) }
  return {
    name: xs[0].name,
    path: xs[0].path,
    put: sumT(x => x.put)!,
    get: sumT(x => x.get),
    recvPutUs: sum(x => x.recvPutUs),
    recvGetUs: xs.some(x => x.recvGetUs === null) ? null : sum(x => x.recvGetUs!),
    relayPut: sumR(x => x.relayPut),
    relayGet: sumR(x => x.relayGet),
    putRounds: xs.flatMap(x => x.putRounds),
    getRounds: xs.flatMap(x => x.getRounds)
  }
}

interface Capped {
  mib: number
  /** The put's figures; null when it failed. */
  put: Transfer | null
  error: string | null
  /** Over the whole put (or until it failed): bytes the relay forwarded, its CPU µs, wall ms. */
  forwarded: number
  cpuUs: number
  ms: number
  /** Forwarded bytes per second after the first second (the token bucket starts with one second's worth). */
  steadyBps: number | null
}

/**
 * A puts `n` shards to `to` through the capped relay; the relay's counters are polled every 250 ms
 * for its steady rate. A failure (the circuit breaking) is reported, not thrown: the cap is a figure.
 */
async function cappedTransfer (A: Child, to: Child, relay: Child, n: number): Promise<Capped> {
  const c0 = await relay.stats()
  const samples: Array<{ t: number, bytes: number }> = []
  let polling = true
  const t0 = performance.now()
  const poller = (async () => {
    while (polling) {
      await sleep(250)
      if (!polling) break
      try { samples.push({ t: performance.now() - t0, bytes: (await relay.stats()).relay.bytes - c0.relay.bytes }) } catch { break }
    }
  })()
  let put: Transfer | null = null
  let error: string | null = null
  try {
    put = await A.call<Transfer>('put', { key: to.key, count: n, bytes: SHARD, parallel: PARALLEL, tag: 4 }, TRANSFER_TIMEOUT_MS)
  } catch (err) {
    error = (err as Error).message
  }
  const ms = performance.now() - t0
  polling = false
  await poller
  const c1 = await relay.stats()
  const later = samples.filter(x => x.t >= 1000)
  const steadyBps = later.length >= 2 ? (later[later.length - 1].bytes - later[0].bytes) / ((later[later.length - 1].t - later[0].t) / 1000) : null
  const r: Capped = { mib: n * SHARD / MiB, put, error, forwarded: c1.relay.bytes - c0.relay.bytes, cpuUs: c1.cpuUs - c0.cpuUs, ms: put?.ms ?? ms, steadyBps }
  if (put !== null) log(`capped relay: put ${(put.bytes / MiB).toFixed(0)} MiB in ${(put.ms / 1000).toFixed(2)} s = ${(put.bytes / MB / (put.ms / 1000)).toFixed(2)} MB/s; forwarded after the first second ${steadyBps === null ? '-' : (steadyBps / MB).toFixed(2)} MB/s`)
  else log(`capped relay: the put FAILED after ${(ms / 1000).toFixed(2)} s, ${(r.forwarded / MB).toFixed(2)} MB forwarded: ${error}`)
  return r
}

function skip (why: string): void {
  process.stdout.write(`reach: skipped: ${why}\n`)
  printJsonLine({ bench: 'reach', skipped: why })
}

export async function runReachBench (): Promise<void> {
  const t00 = performance.now()
  const mib = MIB > 0 ? MIB : DEFAULT_MIB
  const count = Math.max(1, Math.ceil(mib * MiB / SHARD))
  if (process.platform !== 'linux') { skip(`network namespaces need Linux (this is ${process.platform})`); return }
  if (process.getuid?.() !== 0) { skip('the NAT lab needs root (ip netns, nftables); run as root'); return }
  if (!existsSync(CHILD)) { skip(`${CHILD} is missing (npm run build)`); return }

  // Cleanup: children first, then the stores, then the namespaces (natLab registers its teardown here).
  const cleanups: Array<() => void | Promise<void>> = []
  const children: Child[] = []
  let storeRoot = ''
  const killAll = (): void => { for (const c of children) c.kill() }
  const syncCleanup = (): void => {
    killAll()
    if (storeRoot !== '') { try { rmSync(storeRoot, { recursive: true, force: true }) } catch {} }
    for (const fn of cleanups.splice(0).reverse()) { try { void fn() } catch {} }
  }
  const onSignal = (): void => { log('interrupted: removing the lab'); syncCleanup(); process.exit(130) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  const unhook = (): void => { process.removeListener('SIGINT', onSignal); process.removeListener('SIGTERM', onSignal) }
  let lab: NatLab
  try {
    const built = natLab({ after: fn => { cleanups.push(fn) } }, ['endpoint-independent', 'endpoint-independent', 'symmetric'])
    if (built.lab === null) { syncCleanup(); unhook(); skip(built.why); return }
    lab = built.lab
  } catch (err) {
    syncCleanup()
    unhook()
    skip(`the NAT lab could not be built: ${(err as Error).message.split('\n')[0]}`)
    return
  }

  let report: Report | null = null
  let failure: Error | null = null
  try {
    for (const ip of Object.values(IPS)) lab.addPublic(ip)
    const [natA, natB, natS] = lab.nats
    const buffers = socketBuffers([lab.inet, natA.host, natB.host, natS.host])
    log(buffers.note)
    storeRoot = await fsp.mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'dustbox-reach-'))
    const start = (name: string, ns: string, host: string, args: string[]): Child => { const c = new Child(name, ns, host, args); children.push(c); return c }
    const C = start('C', lab.inet, IPS.C, ['--relay', 'uncapped'])
    const P = start('P', lab.inet, IPS.P, ['--store', join(storeRoot, 'P')])
    const B = start('B', natB.host, natB.lan, ['--store', join(storeRoot, 'B')])
    const S = start('S', natS.host, natS.lan, ['--store', join(storeRoot, 'S')])
    const A = start('A', natA.host, natA.lan, [])
    await Promise.all(children.map(async c => await c.started()))
    log(`nodes up: C ${IPS.C}:${C.ready!.port} (relay, uncapped), P ${IPS.P}, A ${natA.lan} behind NAT #1 (${natA.kind}, WAN ${natA.wan}), B ${natB.lan} behind NAT #2 (${natB.kind}, WAN ${natB.wan}), S ${natS.lan} behind NAT #3 (${natS.kind}, WAN ${natS.wan})`)
    const dial = async (from: Child, to: Child, host: string): Promise<Timed> => await from.call<Timed>('connect', { host, port: to.ready!.port, key: to.key })
    await dial(B, C, IPS.C)
    await dial(S, C, IPS.C)
    await dial(A, C, IPS.C)

    // ---- time to a connection: direct (reference), punched, relayed ------------------------------
    const connects: ConnectRow[] = []
    const reps = async (name: string, far: Child, open: () => Promise<Timed>): Promise<ConnectRow> => {
      const row: ConnectRow = { name, path: '', ms: [] }
      for (let i = 0; i < CONNECT_REPS; i++) {
        const r = await open()
        row.ms.push(r.ms)
        row.path = r.path ?? '?'
        log(`${name} ${i + 1}/${CONNECT_REPS}: ${r.ms.toFixed(1)} ms (${r.path}, ${r.transport})`)
        if (i < CONNECT_REPS - 1) {
          await A.call('close', { key: far.key })
          await far.call('waitGone', { key: A.key, timeoutMs: 10_000 })
          await sleep(200)
        }
      }
      connects.push(row)
      return row
    }
    await reps('A → P direct', P, async () => await dial(A, P, IPS.P))
    const punched = await reps('A → B punched', B, async () => await A.call<Timed>('punch', { key: B.key, host: natB.wan }))
    const relayed = await reps('A → S relayed', S, async () => await A.call<Timed>('relay', { key: S.key }))
    if (punched.path !== 'punched') throw new Error(`A's connection to B is ${punched.path}, not punched`)
    if (relayed.path !== 'relayed') throw new Error(`A's connection to S is ${relayed.path}, not relayed`)

    // ---- throughput and CPU -------------------------------------------------------------------
    const transfer = async (name: string, to: Child, tag: number, n: number, withGet: boolean, relay: Child | null): Promise<TransferRow> => {
      const [r0, c0] = [await to.stats(), relay === null ? null : await relay.stats()]
      const put = await A.call<Transfer & { path: string }>('put', { key: to.key, count: n, bytes: SHARD, parallel: PARALLEL, tag }, TRANSFER_TIMEOUT_MS)
      const [r1, c1] = [await to.stats(), relay === null ? null : await relay.stats()]
      log(`${name}: put ${(put.bytes / MiB).toFixed(0)} MiB in ${(put.ms / 1000).toFixed(2)} s = ${(put.bytes / MB / (put.ms / 1000)).toFixed(1)} MB/s (${put.path})`)
      let get: Transfer | null = null
      let r2: Stats | null = null
      let c2: Stats | null = null
      if (withGet) {
        get = await A.call<Transfer>('get', { key: to.key, parallel: PARALLEL }, TRANSFER_TIMEOUT_MS)
        r2 = await to.stats()
        c2 = relay === null ? null : await relay.stats()
        log(`${name}: get ${(get.bytes / MiB).toFixed(0)} MiB in ${(get.ms / 1000).toFixed(2)} s = ${(get.bytes / MB / (get.ms / 1000)).toFixed(1)} MB/s, byte-exact`)
      }
      const relayDelta = (x: Stats | null, y: Stats | null): { cpuUs: number, bytes: number } | null => x === null || y === null ? null : { cpuUs: y.cpuUs - x.cpuUs, bytes: y.relay.bytes - x.relay.bytes }
      return {
        name,
        path: put.path,
        put,
        get,
        recvPutUs: r1.cpuUs - r0.cpuUs,
        recvGetUs: r2 === null ? null : r2.cpuUs - r1.cpuUs,
        relayPut: relayDelta(c0, c1),
        relayGet: relayDelta(c1, c2),
        putRounds: [put.bytes / MB / (put.ms / 1000)],
        getRounds: get === null ? [] : [get.bytes / MB / (get.ms / 1000)]
      }
    }
    const perPath: TransferRow[][] = [[], [], []]
    for (let round = 0; round < ROUNDS; round++) {
      log(`transfers, round ${round + 1}/${ROUNDS}`)
      perPath[0].push(await transfer('direct (A → P)', P, 16 + round, count, true, null))
      perPath[1].push(await transfer('punched (A → B)', B, 32 + round, count, true, null))
      perPath[2].push(await transfer('relayed (A → S via C)', S, 48 + round, count, true, C))
    }
    const rows = perPath.map(combine)
    const hwm: Record<string, number | null> = {}
    const warnings: Record<string, number> = {}
    for (const c of children) { const s = await c.stats(); hwm[c.name] = s.hwm; warnings[c.name] = s.warnings }

    // ---- the default rate cap: C gone, C2 (default cap) relays ----------------------------------
    await C.stop()
    const C2 = start('C2', lab.inet, IPS.C2, ['--relay', 'default'])
    await C2.started()
    await S.call('waitGone', { key: A.key, timeoutMs: 10_000 }).catch(() => {})
    await dial(S, C2, IPS.C2)
    await dial(A, C2, IPS.C2)
    const again = await A.call<Timed>('relay', { key: S.key })
    log(`A → S relayed again, through C2 (default cap ${(RELAY_RATE_BYTES / MiB).toFixed(0)} MiB/s): ${again.ms.toFixed(1)} ms`)
    const cappedCount = Math.max(1, Math.min(count, Math.ceil(CAPPED_MIB * MiB / SHARD)))
    const capped = await cappedTransfer(A, S, C2, cappedCount)
    for (const c of [A, B, S, P, C2]) { const s = await c.stats(); hwm[c.name] = s.hwm; warnings[c.name] = s.warnings }

    report = {
      mib: count * SHARD / MiB,
      buffers,
      nats: { A: natA.kind, B: natB.kind, S: natS.kind },
      connects,
      rows,
      capped,
      hwm,
      warnings,
      runS: 0
    }
  } catch (err) {
    failure = err as Error
  } finally {
    await Promise.all(children.map(async c => await c.stop()))
    syncCleanup()
    unhook()
  }
  if (failure !== null || report === null) throw failure ?? new Error('no report')
  report.runS = (performance.now() - t00) / 1000
  printReport(report)
}

interface Report {
  mib: number
  buffers: { before: number, after: number, note: string }
  nats: { A: string, B: string, S: string }
  connects: ConnectRow[]
  rows: TransferRow[]
  capped: Capped
  hwm: Record<string, number | null>
  warnings: Record<string, number>
  runS: number
}

function printReport (r: Report): void {
  const out = (s: string): void => { process.stdout.write(s + '\n') }
  const mbps = (t: Transfer | null): number | null => t === null ? null : t.bytes / MB / (t.ms / 1000)
  /** CPU ms per MB of payload. */
  const perMB = (us: number | null, bytes: number | undefined): number | null => us === null || bytes === undefined ? null : (us / 1000) / (bytes / MB)
  const [direct, punched, relayed] = r.rows
  const [cd, cpn, cr] = r.connects
  out(`reach: NAT lab in network namespaces (nftables): A behind NAT #1 (${r.nats.A}), B behind NAT #2 (${r.nats.B}), S behind NAT #3 (${r.nats.S}); C (introducer, relay) and P on the "internet"; NetNodes over uTP, one process each`)
  out(`socket buffers: ${r.buffers.note}`)
  out('')
  out(table(
    ['time to a connection (ms)', 'runs', 'first', 'median', 'max', 'how'],
    r.connects.map(c => [c.name, String(c.ms.length), cell(c.ms[0], 1), cell(median(c.ms), 1), cell(Math.max(...c.ms), 1), c === cd ? 'uTP dial + handshake (reference)' : c === cpn ? 'INTRODUCE via C, PUNCH both ways, uTP dial + handshake' : 'RELAY_OPEN via C, handshake inside the circuit'])
  ))
  out('')
  const cp = r.capped
  const cappedRow: TransferRow | null = cp.put === null ? null : { name: 'relayed, default cap (A → S via C2)', path: 'relayed', put: cp.put, get: null, recvPutUs: NaN, recvGetUs: null, relayPut: { cpuUs: cp.cpuUs, bytes: cp.forwarded }, relayGet: null, putRounds: [], getRounds: [] }
  const range = (xs: number[]): string => xs.length < 2 ? '-' : `${cell(Math.min(...xs), 0)}–${cell(Math.max(...xs), 0)}`
  const rows = cappedRow === null ? r.rows : [...r.rows, cappedRow]
  out(table(
    ['transfer (A puts / gets)', 'MiB in all', 'put MB/s', 'rounds', 'get MB/s', 'rounds', 'x direct', 'A CPU ms/MB', 'far end CPU ms/MB', 'relay CPU ms/MB'],
    rows.map(x => [
      x.name,
      cell(x.put.bytes / MiB, 0),
      cell(mbps(x.put), 1),
      range(x.putRounds),
      cell(mbps(x.get), 1),
      range(x.getRounds),
      cell((mbps(x.put) ?? NaN) / (mbps(direct.put) ?? NaN), 2),
      cell(perMB(x.put.cpuUs, x.put.bytes), 2),
      x === cappedRow ? '-' : cell(perMB(x.recvPutUs, x.put.bytes), 2),
      x.relayPut === null ? '-' : cell(perMB(x.relayPut.cpuUs, x.put.bytes), 2)
    ])
  ))
  out('')
  const fwd = (x: { cpuUs: number, bytes: number } | null): number | null => x === null ? null : perMB(x.cpuUs, x.bytes)
  out(`relay CPU: ${cell(fwd(relayed.relayPut), 2)} ms per MB forwarded during the put (${cell((relayed.relayPut?.bytes ?? NaN) / MB, 1)} MB forwarded for ${cell(relayed.put.bytes / MB, 1)} MB of payload), ${cell(fwd(relayed.relayGet), 2)} ms per MB during the get; with the default cap ${cell(perMB(cp.cpuUs, cp.forwarded), 2)} ms per MB`)
  out(cp.put !== null
    ? `relay cap: RELAY_RATE_BYTES = ${cell(RELAY_RATE_BYTES / MB, 2)} MB/s; through the capped relay A put ${cell(cp.mib, 0)} MiB at ${cell(mbps(cp.put), 2)} MB/s of payload (the bucket starts with one second's worth), forwarded after the first second ${cell(cp.steadyBps === null ? null : cp.steadyBps / MB, 2)} MB/s; uncapped ${cell(mbps(relayed.put), 1)} MB/s`
    : `relay cap: RELAY_RATE_BYTES = ${cell(RELAY_RATE_BYTES / MB, 2)} MB/s; through the capped relay the put of ${cell(cp.mib, 0)} MiB FAILED after ${cell(cp.ms / 1000, 2)} s and ${cell(cp.forwarded / MB, 2)} MB forwarded (after the first second ${cell(cp.steadyBps === null ? null : cp.steadyBps / MB, 2)} MB/s): ${cp.error}`)
  out(`peak RSS (VmHWM, MiB): ${Object.entries(r.hwm).map(([k, v]) => `${k} ${cell(v === null ? null : v / MiB, 0)}`).join(', ')}`)
  const warned = Object.entries(r.warnings).filter(([, n]) => n > 0)
  if (warned.length > 0) out(`node warnings: ${warned.map(([k, n]) => `${k} ${n}`).join(', ')} (see stderr)`)
  out(`whole run ${r.runS.toFixed(0)} s`)
  printJsonLine({
    bench: 'reach',
    nat_A: r.nats.A,
    nat_B: r.nats.B,
    nat_S: r.nats.S,
    rmem_max: r.buffers.after,
    rmem_max_before: r.buffers.before,
    connect_runs: cd.ms.length,
    connect_direct_ms_first: round(cd.ms[0], 1),
    connect_direct_ms_median: round(median(cd.ms), 1),
    connect_direct_ms_max: round(Math.max(...cd.ms), 1),
    connect_punched_ms_first: round(cpn.ms[0], 1),
    connect_punched_ms_median: round(median(cpn.ms), 1),
    connect_punched_ms_max: round(Math.max(...cpn.ms), 1),
    connect_relayed_ms_first: round(cr.ms[0], 1),
    connect_relayed_ms_median: round(median(cr.ms), 1),
    connect_relayed_ms_max: round(Math.max(...cr.ms), 1),
    transfer_MiB_per_round: r.mib,
    rounds: ROUNDS,
    shard_MiB: SHARD / MiB,
    parallel: PARALLEL,
    put_direct_MBps: round(mbps(direct.put), 1),
    put_punched_MBps: round(mbps(punched.put), 1),
    put_relayed_MBps: round(mbps(relayed.put), 1),
    get_direct_MBps: round(mbps(direct.get), 1),
    get_punched_MBps: round(mbps(punched.get), 1),
    get_relayed_MBps: round(mbps(relayed.get), 1),
    put_MBps_rounds: { direct: direct.putRounds.map(x => round(x, 1)), punched: punched.putRounds.map(x => round(x, 1)), relayed: relayed.putRounds.map(x => round(x, 1)) },
    A_cpu_ms_per_MB_direct: round(perMB(direct.put.cpuUs, direct.put.bytes), 2),
    A_cpu_ms_per_MB_punched: round(perMB(punched.put.cpuUs, punched.put.bytes), 2),
    A_cpu_ms_per_MB_relayed: round(perMB(relayed.put.cpuUs, relayed.put.bytes), 2),
    recv_cpu_ms_per_MB_direct: round(perMB(direct.recvPutUs, direct.put.bytes), 2),
    recv_cpu_ms_per_MB_punched: round(perMB(punched.recvPutUs, punched.put.bytes), 2),
    recv_cpu_ms_per_MB_relayed: round(perMB(relayed.recvPutUs, relayed.put.bytes), 2),
    relay_cpu_ms_per_MB_forwarded_put: round(fwd(relayed.relayPut), 2),
    relay_cpu_ms_per_MB_forwarded_get: round(fwd(relayed.relayGet), 2),
    relay_cpu_ms_per_payload_MB_put: round(perMB(relayed.relayPut?.cpuUs ?? null, relayed.put.bytes), 2),
    relay_forwarded_MB_put: round((relayed.relayPut?.bytes ?? NaN) / MB, 1),
    relay_cap_MBps: round(RELAY_RATE_BYTES / MB, 2),
    capped_MiB: cp.mib,
    put_relayed_capped_MBps: round(mbps(cp.put), 2),
    relay_capped_forwarded_MB: round(cp.forwarded / MB, 2),
    relay_capped_steady_MBps: round(cp.steadyBps === null ? null : cp.steadyBps / MB, 2),
    relay_capped_cpu_ms_per_MB_forwarded: round(perMB(cp.cpuUs, cp.forwarded), 2),
    capped_error: cp.error,
    ...Object.fromEntries(Object.entries(r.hwm).map(([k, v]) => [`peak_rss_${k}_MiB`, round(v === null ? null : v / MiB, 0)])),
    node_warnings: Object.values(r.warnings).reduce((a, b) => a + b, 0),
    run_s: round(r.runS, 0)
  })
}
