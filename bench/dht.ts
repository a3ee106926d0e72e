// DHT bench (`npm run bench -- dht`), all on 127.0.0.1, with plain bittorrent-dht (no guard, the
// library's own record cache) in the same run as the reference:
//  1. first peer: on a 20-node testnet a node announces a random infohash; a new (21st) node
//     bootstrapped from a random testnet node is timed from its construction to the first peer of
//     a lookup for it; repeated, median and max;
//  2. announce flood: a victim node in a child process (--expose-gc) takes fake announces from 32
//     hostile UDP sockets (get_peers for a token, then announce_peer; half on the topic of a real peer
//     announced before the flood, half on random topics); its heap and RSS growth, what it stored, and
//     whether another node still finds the real peer afterwards; then a second wave on the real peer's
//     topic alone, past the ~8,180 peers one UDP datagram of get_peers reply can carry;
//  3. rejoin: a node that saved its routing table restarts while the bootstrap node is dead; time to
//     ready() and to the first peer of a lookup, against a fresh start with a live bootstrap.
// Prints tables; the last line is one JSON object.

import { fork, type ChildProcess } from 'node:child_process'
import dgram from 'node:dgram'
import { randomBytes, randomInt } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import bencode from 'bencode'
import DHT from 'bittorrent-dht'
import { DhtNode } from '../dht/index.js'
import { SCALE, RSS_SAMPLE_MS } from './config.js'
import { MiB, cell, round, table, printJsonLine } from './report.js'
import type { VictimMem } from './dht-flood.js'

const CHILD = fileURLToPath(new URL('./dht-flood.js', import.meta.url))
const NODES = 20
const RUNS = Math.max(3, Math.round(10 * Math.min(SCALE, 1)))
/** Runs with one departed (dead) node in the routing tables: each waits out a query timeout. */
const CHURN_RUNS = Math.max(2, Math.round(3 * Math.min(SCALE, 1)))
const ANNOUNCES = Math.max(200, Math.round(10_000 * SCALE))
const HOSTILE_SOCKETS = 32
/**
 * The second wave, on the real peer's topic alone: enough to push a plain node's topic past ~8,180
 * peers, the most a get_peers reply can carry in one 65,507-byte UDP datagram.
 */
const OVERFLOW_ANNOUNCES = Math.max(1000, 9000 - Math.floor(ANNOUNCES / 2))
const REJOIN_RUNS = Math.max(2, Math.round(5 * Math.min(SCALE, 1)))
/** Bounds: one lookup for a first peer, one for the real peer after a flood, one node start or announce, the whole flood, the victim child. */
const LOOKUP_MS = 10_000
const CHECK_MS = 5000
const STEP_MS = 30_000
const FLOOD_MS = 40_000
const QUERY_MS = 1000
const CHILD_SECONDS = 120
const REAL_PORT = 7777
/** ready() timeout of the fresh node whose only bootstrap is dead. */
const DEAD_READY_MS = 3000
const loopback = (host: string): boolean => host === '127.0.0.1'
/**
 * The dustbox victim's guard limits, raised: on loopback every hostile socket shares 127.0.0.1, and
 * its per-IP limit (1000 datagrams/s) alone would slow the flood to 500 announces/s. Raised, the
 * flood goes as fast as the victim answers, and the announce store is what has to hold.
 */
const VICTIM_GUARD = { ratePerEndpoint: 1e5, burstPerEndpoint: 1e5, ratePerIp: 1e6, burstPerIp: 1e6, rateTotal: 1e6, burstTotal: 1e6, rateOut: 1e6, burstOut: 1e6 }
/**
 * The real peer's announcer shares 127.0.0.1 with the flood, so the per-IP cap (32 per topic) would
 * evict it with the fakes; raised, it stands for an attacker on another address than the real peer.
 */
const VICTIM_STORE = { maxPerIp: 1e9 }

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const max = (xs: number[]): number | null => xs.length === 0 ? null : Math.max(...xs)
const yes = (b: boolean): string => b ? 'yes' : 'no'

async function bounded<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms) })])
  } finally { clearTimeout(timer) }
}

// ---- one DHT node, dustbox or plain bittorrent-dht ----

type Kind = 'dustbox' | 'plain'

interface Member {
  readonly port: number
  announce: (ih: Buffer, port: number) => Promise<void>
  /**
   * Looks `ih` up until `want(port)` holds for a peer (then stops the lookup), the lookup ends, or
   * `ms` pass; resolves with the time from `t0` to that peer (null: none) and the peers seen.
   */
  find: (ih: Buffer, t0: number, ms: number, want?: (port: number) => boolean) => Promise<{ ms: number | null, peers: number }>
  close: () => Promise<void>
}

interface StartOptions { stateDir?: string, port?: number, readyTimeoutMs?: number }

/** Starts a node now (construction happens before the first await) and resolves once it is ready. */
async function startMember (kind: Kind, bootstrap: string[] | false, o: StartOptions = {}): Promise<Member> {
  return kind === 'dustbox' ? await startDustbox(bootstrap, o) : await startPlain(bootstrap)
}

async function startDustbox (bootstrap: string[] | false, o: StartOptions): Promise<Member> {
  const node = new DhtNode({ host: '127.0.0.1', port: o.port ?? 0, bootstrap, allowAddress: loopback, stateDir: o.stateDir ?? null, readyTimeoutMs: o.readyTimeoutMs })
  node.on('warning', () => {})
  try {
    await bounded(node.ready(), STEP_MS, 'DhtNode.ready')
  } catch (err) { await node.close(); throw err }
  return {
    port: node.port,
    announce: async (ih, port) => await bounded(node.announce(ih, port), STEP_MS, 'DhtNode.announce'),
    find: async (ih, t0, ms, want = () => true) => await new Promise(resolve => {
      const ac = new AbortController()
      let peers = 0
      let settled = false
      const finish = (at: number | null): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        ac.abort()
        resolve({ ms: at, peers })
      }
      const timer = setTimeout(() => finish(null), ms)
      node.lookup(ih, { signal: ac.signal, onPeer: (e) => { peers++; if (want(e.port)) finish(performance.now() - t0) } })
        .then(() => finish(null), () => finish(null))
    }),
    close: async () => await node.close()
  }
}

async function startPlain (bootstrap: string[] | false): Promise<Member> {
  const d = new DHT({ bootstrap })
  d.on('warning', () => {})
  d.on('error', () => {})
  const ready = new Promise<void>(resolve => { if (d.ready) resolve(); else d.once('ready', () => resolve()) })
  const listening = new Promise<void>(resolve => d.listen(0, '127.0.0.1', () => resolve()))
  try {
    await bounded(Promise.all([ready, listening]), STEP_MS, 'bittorrent-dht ready')
  } catch (err) { await new Promise<void>(resolve => d.destroy(() => resolve())); throw err }
  return {
    port: d.address().port,
    announce: async (ih, port) => await bounded(new Promise<void>((resolve, reject) => d.announce(ih, port, err => err != null ? reject(err) : resolve())), STEP_MS, 'bittorrent-dht announce'),
    find: async (ih, t0, ms, want = () => true) => await new Promise(resolve => {
      const seen = new Set<string>()
      let settled = false
      const onpeer = (peer: { host: string, port: number }, infoHash: Buffer): void => {
        if (!infoHash.equals(ih) || !loopback(peer.host)) return
        seen.add(`${peer.host}:${peer.port}`)
        if (want(peer.port)) finish(performance.now() - t0)
      }
      const finish = (at: number | null): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        d.removeListener('peer', onpeer)
        abort()
        resolve({ ms: at, peers: seen.size })
      }
      const timer = setTimeout(() => finish(null), ms)
      d.on('peer', onpeer)
      const abort = d.lookup(ih, () => finish(null))
    }),
    close: async () => await new Promise<void>(resolve => d.destroy(() => resolve()))
  }
}

interface Testnet { nodes: Member[], bootstrap: string[] }

async function startTestnet (kind: Kind): Promise<Testnet> {
  const first = await startMember(kind, false)
  const bootstrap = [`127.0.0.1:${first.port}`]
  const started = await Promise.allSettled(Array.from({ length: NODES - 1 }, async () => await startMember(kind, bootstrap)))
  const rest = started.flatMap(s => s.status === 'fulfilled' ? [s.value] : [])
  if (rest.length < started.length) {
    await closeAll([first, ...rest])
    throw new Error(`${started.length - rest.length} of ${NODES} ${kind} testnet nodes did not start: ${String((started.find(s => s.status === 'rejected') as PromiseRejectedResult).reason)}`)
  }
  return { nodes: [first, ...rest], bootstrap }
}

async function closeAll (ms: readonly Member[]): Promise<void> {
  await Promise.all(ms.map(async m => await m.close().catch(() => {})))
}

// ---- 1. first peer on a 20-node testnet ----

interface FirstPeer { kind: Kind, churn: boolean, runs: number, readyMs: number[], firstMs: number[], netUpMs: number[] }

/**
 * Each run on a new testnet, so no run sees the nodes of the previous ones. With `churn`, one more
 * node joins and leaves before the new node starts: it stays in the routing tables, dead.
 */
async function firstPeer (kind: Kind, churn: boolean, runs: number): Promise<FirstPeer> {
  const out: FirstPeer = { kind, churn, runs, readyMs: [], firstMs: [], netUpMs: [] }
  for (let run = 0; run < runs; run++) {
    const t = performance.now()
    const net = await startTestnet(kind)
    out.netUpMs.push(performance.now() - t)
    try {
      const ih = randomBytes(20)
      await net.nodes[randomInt(NODES)].announce(ih, 10_000 + run)
      if (churn) await (await startMember(kind, net.bootstrap)).close()
      const entry = net.nodes[randomInt(NODES)]
      const t0 = performance.now()
      const m = await startMember(kind, [`127.0.0.1:${entry.port}`])
      out.readyMs.push(performance.now() - t0)
      const r = await m.find(ih, t0, LOOKUP_MS)
      await m.close()
      if (r.ms !== null) out.firstMs.push(r.ms)
      process.stderr.write(`dht: ${kind}${churn ? ', one node departed' : ''}, run ${run + 1}/${runs}: ready ${cell(out.readyMs[run], 0)} ms, first peer ${r.ms === null ? 'not found' : `${cell(r.ms, 0)} ms`}\n`)
    } finally {
      await closeAll(net.nodes)
    }
  }
  return out
}

// ---- 2. announce flood ----

/** A hostile UDP socket on 127.0.0.1 with one query in flight at a time. */
class Hostile {
  readonly sock = dgram.createSocket('udp4')
  largestReply = 0
  private waiting: { t: string, resolve: (r: { m: any, bytes: number } | null) => void } | null = null
  private tid = 0

  async open (): Promise<this> {
    this.sock.on('error', () => {})
    this.sock.on('message', (buf) => {
      this.largestReply = Math.max(this.largestReply, buf.byteLength)
      let m: any
      try { m = bencode.decode(buf) } catch { return }
      if (this.waiting === null || !(m?.t instanceof Uint8Array) || Buffer.from(m.t).toString('hex') !== this.waiting.t) return
      const w = this.waiting
      this.waiting = null
      w.resolve({ m, bytes: buf.byteLength })
    })
    await new Promise<void>(resolve => this.sock.bind(0, '127.0.0.1', resolve))
    return this
  }

  async query (port: number, q: string, a: Record<string, unknown>, ms = QUERY_MS): Promise<{ m: any, bytes: number } | null> {
    const t = Buffer.alloc(2)
    t.writeUInt16BE(this.tid = (this.tid + 1) & 0xffff)
    return await new Promise(resolve => {
      const timer = setTimeout(() => { this.waiting = null; resolve(null) }, ms)
      this.waiting = { t: t.toString('hex'), resolve: (r) => { clearTimeout(timer); resolve(r) } }
      this.sock.send(Buffer.from(bencode.encode({ t, y: 'q', q, a })), port, '127.0.0.1')
    })
  }

  close (): void { try { this.sock.close() } catch {} }
}

const replyType = (r: { m: any } | null): string => r !== null && r.m?.y instanceof Uint8Array ? String.fromCharCode(r.m.y[0]) : ''

interface FloodResult { sent: number, tokens: number, accepted: number, refused: number, timeouts: number, seconds: number, largestReply: number }

/**
 * `total` announces to the victim at `port`, half on `hot`. With `hotOnly`, all on `hot`, and the
 * token comes from a get_peers for a random infohash: both kinds of node give a token per source
 * address, not per topic, so an attacker need not fetch the topic's (large) reply first.
 */
async function flood (port: number, hot: Buffer, total: number, hotOnly = false): Promise<FloodResult> {
  const socks = await Promise.all(Array.from({ length: HOSTILE_SOCKETS }, async () => await new Hostile().open()))
  const r: FloodResult = { sent: 0, tokens: 0, accepted: 0, refused: 0, timeouts: 0, seconds: 0, largestReply: 0 }
  const t0 = performance.now()
  const deadline = t0 + FLOOD_MS
  try {
    await Promise.all(socks.map(async (s, si) => {
      // One node id per socket: the guard drops a source address whose id changes ('id-changed').
      const id = randomBytes(20)
      for (let i = si; i < total && performance.now() < deadline; i += socks.length) {
        const ih = hotOnly || Math.floor(i / socks.length) % 2 === 0 ? hot : randomBytes(20) // every socket on both halves
        const gp = await s.query(port, 'get_peers', { id, info_hash: hotOnly ? randomBytes(20) : ih })
        const token = replyType(gp) === 'r' && gp!.m.r?.token instanceof Uint8Array ? gp!.m.r.token as Uint8Array : null
        if (token === null) { r.timeouts++; continue }
        r.tokens++
        let fake = randomInt(1024, 65536)
        if (fake === REAL_PORT) fake++
        const ann = await s.query(port, 'announce_peer', { id, info_hash: ih, port: fake, token })
        r.sent++
        const y = replyType(ann)
        if (y === 'r') r.accepted++
        else if (y === 'e') r.refused++
        else r.timeouts++
      }
    }))
  } finally {
    r.seconds = (performance.now() - t0) / 1000
    r.largestReply = Math.max(...socks.map(s => s.largestReply))
    for (const s of socks) s.close()
  }
  return r
}

function forkVictim (kind: Kind): ChildProcess {
  const job = { kind, seconds: CHILD_SECONDS, guard: VICTIM_GUARD, store: VICTIM_STORE }
  return fork(CHILD, [JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc'] })
}

async function next<T> (c: ChildProcess, key: string, ms = STEP_MS): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no ${key} from the flood victim within ${ms} ms`)) }, ms)
    const onMsg = (m: any): void => { if (m !== null && typeof m === 'object' && key in m) { cleanup(); resolve(m[key] as T) } }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`flood victim exited (${String(code)}) before sending ${key}`)) }
    const cleanup = (): void => { clearTimeout(timer); c.off('message', onMsg); c.off('exit', onExit) }
    c.on('message', onMsg)
    c.on('exit', onExit)
  })
}

async function askMem (c: ChildProcess): Promise<VictimMem> {
  const p = next<VictimMem>(c, 'mem')
  c.send('mem')
  return await p
}

async function stop (c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return
  const exited = new Promise(resolve => c.once('exit', resolve))
  c.send('stop')
  const t = setTimeout(() => c.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(t)
}

interface Check {
  /** A get_peers reply for the flooded topic: its datagram size (null: no reply) and the peers in it. */
  replyBytes: number | null
  replyValues: number
  /** The real peer found by a node of the victim's kind, and by one of the other kind. */
  found: boolean
  foundByOther: boolean
}

interface FloodRow {
  kind: Kind
  flood: FloodResult
  before: VictimMem
  after: VictimMem
  check: Check
  /** The second wave, on the real peer's topic only, and what it left. */
  overflow: FloodResult
  afterOverflow: VictimMem
  overflowCheck: Check
}

async function check (kind: Kind, port: number, hot: Buffer): Promise<Check> {
  const probe = await new Hostile().open()
  const reply = await probe.query(port, 'get_peers', { id: randomBytes(20), info_hash: hot }, 2000)
  probe.close()
  // The victim is the searchers' only source: it answers within the query timeout or not at all.
  const lookFor = async (k: Kind): Promise<boolean> => {
    const m = await startMember(k, [`127.0.0.1:${port}`])
    try { return (await m.find(hot, performance.now(), CHECK_MS, p => p === REAL_PORT)).ms !== null } finally { await m.close() }
  }
  const [found, foundByOther] = await Promise.all([lookFor(kind), lookFor(kind === 'dustbox' ? 'plain' : 'dustbox')])
  return {
    replyBytes: reply?.bytes ?? null,
    replyValues: replyType(reply) === 'r' && Array.isArray(reply!.m.r?.values) ? reply!.m.r.values.length as number : 0,
    found,
    foundByOther
  }
}

async function floodRun (kind: Kind): Promise<FloodRow> {
  const child = forkVictim(kind)
  try {
    const port = await next<number>(child, 'port')
    const hot = randomBytes(20)
    const announcer = await startMember(kind, [`127.0.0.1:${port}`])
    await announcer.announce(hot, REAL_PORT).finally(async () => await announcer.close())
    const before = await askMem(child)
    process.stderr.write(`dht: flooding the ${kind} victim with ${ANNOUNCES} announces from ${HOSTILE_SOCKETS} sockets\n`)
    const f = await flood(port, hot, ANNOUNCES)
    await sleep(200)
    const after = await askMem(child)
    const c = await check(kind, port, hot)
    process.stderr.write(`dht: ${kind} victim: ${f.accepted} announces accepted in ${cell(f.seconds, 1)} s, ${after.stored} stored; real peer ${c.found ? 'found' : 'NOT found'}; ` +
      `then ${OVERFLOW_ANNOUNCES} more on its topic alone\n`)
    const o = await flood(port, hot, OVERFLOW_ANNOUNCES, true)
    await sleep(200)
    const afterOverflow = await askMem(child)
    const oc = await check(kind, port, hot)
    process.stderr.write(`dht: ${kind} victim: ${afterOverflow.largestTopic} peers on the topic, reply ${oc.replyBytes ?? 'none'}; real peer ${oc.found ? 'found' : 'NOT found'}\n`)
    return { kind, flood: f, before, after, check: c, overflow: o, afterOverflow, overflowCheck: oc }
  } finally {
    await stop(child)
  }
}

// ---- 3. rejoin with a saved routing table ----

interface Start { readyMs: number, firstMs: number | null }

/** Announces a new topic from one of `announcers`, then times a node start to its first peer for it. */
async function timedStart (bootstrap: string[], o: StartOptions, announcers: Member[]): Promise<Start> {
  const ih = randomBytes(20)
  await announcers[randomInt(announcers.length)].announce(ih, 20_000 + randomInt(1000))
  const t0 = performance.now()
  let m: Member
  try {
    m = await startMember('dustbox', bootstrap, o)
  } catch (err) {
    if (o.port === undefined) throw err
    m = await startMember('dustbox', bootstrap, { ...o, port: 0 }) // the old port was taken meanwhile
  }
  const readyMs = performance.now() - t0
  const r = await m.find(ih, t0, LOOKUP_MS)
  await m.close()
  return { readyMs, firstMs: r.ms }
}

interface Rejoin { fresh: Start[], rejoin: Start[], savedNodes: number[], lost: Start | null }

/**
 * Each run: on a new testnet, a fresh node (no saved table, live bootstrap) is timed; on another,
 * a node with a state dir joins and closes, the bootstrap node closes, a topic is announced, and the
 * node restarts (same state dir and port, the dead bootstrap) and is timed. Once, a fresh node with
 * only the dead bootstrap (its ready() resolves once that query times out, DEAD_READY_MS at most).
 */
async function rejoin (root: string): Promise<Rejoin> {
  const out: Rejoin = { fresh: [], rejoin: [], savedNodes: [], lost: null }
  for (let run = 0; run < REJOIN_RUNS; run++) {
    const clean = await startTestnet('dustbox')
    try {
      out.fresh.push(await timedStart(clean.bootstrap, {}, clean.nodes))
    } finally { await closeAll(clean.nodes) }
    const net = await startTestnet('dustbox')
    try {
      const dir = join(root, `state-${run}`)
      const m = await startMember('dustbox', net.bootstrap, { stateDir: dir })
      const port = m.port
      await m.close()
      out.savedNodes.push((JSON.parse(await fsp.readFile(join(dir, 'dht.json'), 'utf8')) as { nodes: unknown[] }).nodes.length)
      await net.nodes[0].close() // the bootstrap node is gone
      out.rejoin.push(await timedStart(net.bootstrap, { stateDir: dir, port }, net.nodes.slice(1)))
      if (run === REJOIN_RUNS - 1) out.lost = await timedStart(net.bootstrap, { readyTimeoutMs: DEAD_READY_MS }, net.nodes.slice(1))
    } finally { await closeAll(net.nodes) }
    const f = out.fresh[run]
    const r = out.rejoin[run]
    process.stderr.write(`dht: run ${run + 1}/${REJOIN_RUNS}: fresh start ready ${cell(f.readyMs, 0)} ms, first peer ${cell(f.firstMs, 0)} ms; ` +
      `rejoin (${out.savedNodes[run]} saved nodes) ready ${cell(r.readyMs, 0)} ms, first peer ${cell(r.firstMs, 0)} ms\n`)
  }
  return out
}

// ---- the bench ----

export async function runDhtBench (): Promise<void> {
  let peak = process.memoryUsage.rss()
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, RSS_SAMPLE_MS)
  sampler.unref()
  const root = await fsp.mkdtemp(join(tmpdir(), 'dustbox-dht-bench-'))
  const t0 = performance.now()
  try {
    process.stderr.write(`dht: ${NODES}-node loopback testnets, ${RUNS} first-peer runs each, flood of ${ANNOUNCES} announces, ${REJOIN_RUNS} rejoin runs\n`)
    const phase = (what: string): void => { process.stderr.write(`dht: ${what} at ${cell((performance.now() - t0) / 1000, 1)} s\n`) }
    const fp = [await firstPeer('dustbox', false, RUNS), await firstPeer('plain', false, RUNS), await firstPeer('dustbox', true, CHURN_RUNS), await firstPeer('plain', true, CHURN_RUNS)]
    phase('first-peer runs done')
    const fl = [await floodRun('dustbox'), await floodRun('plain')]
    phase('floods done')
    const rj = await rejoin(root)
    peak = Math.max(peak, process.memoryUsage.rss())
    const name = (k: Kind): string => k === 'dustbox' ? 'dustbox DhtNode' : 'bittorrent-dht (reference)'

    console.log(`First peer: a new node joins a ${NODES}-node testnet through a random node and looks up an announced infohash (ms from construction; a new testnet each run)`)
    console.log(table(['node', 'testnet', 'testnet up ms', 'runs', 'found', 'ready median', 'first peer median', 'first peer max'],
      fp.map(r => [name(r.kind), r.churn ? 'one node departed' : 'all alive', cell(median(r.netUpMs), 0), String(r.runs), String(r.firstMs.length), cell(median(r.readyMs), 0), cell(median(r.firstMs), 0), cell(max(r.firstMs), 0)])))
    console.log('')
    console.log(`Announce flood: ${ANNOUNCES} fake announces (get_peers + announce_peer) from ${HOSTILE_SOCKETS} sockets, half on a real peer's topic; victim in a child, heap/RSS after gc`)
    const reply = (c: Check): string => c.replyBytes === null ? 'none' : String(c.replyBytes)
    console.log(table(['victim', 'seconds', 'accepted', 'stored', 'topics', 'on the topic', 'heap +MiB', 'RSS +MiB', 'peak RSS MiB', 'topic reply bytes', 'values', 'real peer found', 'by other node kind'],
      fl.map(r => [name(r.kind), cell(r.flood.seconds, 1), String(r.flood.accepted), String(r.after.stored), String(r.after.topics), String(r.after.largestTopic),
        cell((r.after.heapUsed - r.before.heapUsed) / MiB, 1), cell((r.after.rss - r.before.rss) / MiB, 1), cell(r.after.peakRss / MiB, 0),
        reply(r.check), String(r.check.replyValues), yes(r.check.found), yes(r.check.foundByOther)])))
    console.log('')
    console.log(`Then ${OVERFLOW_ANNOUNCES} more on the real peer's topic alone (past ~8,180 peers a get_peers reply no longer fits in one 65,507-byte UDP datagram)`)
    console.log(table(['victim', 'seconds', 'accepted', 'stored', 'on the topic', 'heap +MiB', 'topic reply bytes', 'values', 'real peer found', 'by other node kind'],
      fl.map(r => [name(r.kind), cell(r.overflow.seconds, 1), String(r.overflow.accepted), String(r.afterOverflow.stored), String(r.afterOverflow.largestTopic),
        cell((r.afterOverflow.heapUsed - r.before.heapUsed) / MiB, 1), reply(r.overflowCheck), String(r.overflowCheck.replyValues), yes(r.overflowCheck.found), yes(r.overflowCheck.foundByOther)])))
    const dbx = fl[0]
    const guard = dbx.afterOverflow.stats?.guard as { dropped: Record<string, number>, droppedSends: number } | undefined
    console.log(`(dustbox victim: guard limits and per-IP announce cap raised; guard drops ${JSON.stringify(guard?.dropped ?? {})}, dropped sends ${guard?.droppedSends ?? '-'}, routing table ${String(dbx.afterOverflow.stats?.nodes ?? '-')} nodes)`)
    console.log('')
    console.log('Rejoin: a node restarts with its saved routing table while the bootstrap node is dead, against a fresh start with a live bootstrap (ms from construction)')
    const rjRow = (label: string, s: Start[]): string[] => {
      const found = s.flatMap(x => x.firstMs === null ? [] : [x.firstMs])
      return [label, String(s.length), String(found.length), cell(median(s.map(x => x.readyMs)), 0), cell(max(s.map(x => x.readyMs)), 0), cell(median(found), 0), cell(max(found), 0)]
    }
    console.log(table(['start', 'runs', 'found', 'ready median', 'ready max', 'first peer median', 'first peer max'],
      [rjRow('saved table, dead bootstrap', rj.rejoin), rjRow('fresh, live bootstrap (reference)', rj.fresh), rjRow('fresh, dead bootstrap', rj.lost === null ? [] : [rj.lost])]))
    process.stderr.write(`dht: done in ${cell((performance.now() - t0) / 1000, 1)} s\n`)

    const [d, p, dc, pc] = fp
    const [fd, fpl] = fl
    const ms = (x: number | null): number | null => round(x, 0)
    printJsonLine({
      bench: 'dht',
      nodes: NODES,
      runs: RUNS,
      first_peer_found: d.firstMs.length,
      first_peer_ms_median: ms(median(d.firstMs)),
      first_peer_ms_max: ms(max(d.firstMs)),
      first_peer_ms_ref_median: ms(median(p.firstMs)),
      first_peer_ms_ref_max: ms(max(p.firstMs)),
      first_peer_ref_found: p.firstMs.length,
      first_peer_churn_ms_median: ms(median(dc.firstMs)),
      first_peer_churn_ms_ref_median: ms(median(pc.firstMs)),
      flood_announces: ANNOUNCES,
      flood_accepted: fd.flood.accepted,
      flood_seconds: round(fd.flood.seconds, 1),
      flood_heap_delta_MiB: round((fd.after.heapUsed - fd.before.heapUsed) / MiB, 1),
      flood_rss_delta_MiB: round((fd.after.rss - fd.before.rss) / MiB, 1),
      flood_stored: fd.after.stored,
      flood_topics: fd.after.topics,
      flood_ref_accepted: fpl.flood.accepted,
      flood_ref_seconds: round(fpl.flood.seconds, 1),
      flood_ref_heap_delta_MiB: round((fpl.after.heapUsed - fpl.before.heapUsed) / MiB, 1),
      flood_ref_rss_delta_MiB: round((fpl.after.rss - fpl.before.rss) / MiB, 1),
      flood_ref_stored: fpl.after.stored,
      flood_ref_topics: fpl.after.topics,
      flood_reply_bytes: fd.check.replyBytes,
      flood_ref_reply_bytes: fpl.check.replyBytes,
      flood_real_peer_found: fd.check.found,
      flood_ref_real_peer_found: fpl.check.found,
      flood_ref_real_peer_found_by_dustbox: fpl.check.foundByOther,
      overflow_announces: OVERFLOW_ANNOUNCES,
      overflow_on_topic: fd.afterOverflow.largestTopic,
      overflow_ref_on_topic: fpl.afterOverflow.largestTopic,
      overflow_ref_reply_bytes: fpl.overflowCheck.replyBytes,
      overflow_real_peer_found: fd.overflowCheck.found,
      overflow_ref_real_peer_found: fpl.overflowCheck.found,
      rejoin_first_peer_ms: ms(median(rj.rejoin.flatMap(x => x.firstMs === null ? [] : [x.firstMs]))),
      rejoin_ready_ms: ms(median(rj.rejoin.map(x => x.readyMs))),
      rejoin_found: rj.rejoin.filter(x => x.firstMs !== null).length,
      fresh_first_peer_ms: ms(median(rj.fresh.flatMap(x => x.firstMs === null ? [] : [x.firstMs]))),
      fresh_ready_ms: ms(median(rj.fresh.map(x => x.readyMs))),
      dead_bootstrap_found: rj.lost !== null && rj.lost.firstMs !== null,
      peak_rss_MiB: round(peak / MiB, 0),
      flood_peak_rss_MiB: { victim: round(fd.after.peakRss / MiB, 0), ref_victim: round(fpl.after.peakRss / MiB, 0) }
    })
  } finally {
    clearInterval(sampler)
    await fsp.rm(root, { recursive: true, force: true })
  }
}
