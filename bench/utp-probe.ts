// utp-probe: throughput of the byte transports between two processes on 127.0.0.1. For each case the
// parent forks a receiver and a sender (child processes of this same file), the sender pushes BYTES
// in WRITE-byte buffers honouring backpressure, and each side reports MB/s, CPU time (process.cpuUsage)
// per GB, peak RSS and its longest event-loop stall; the parent reads the UDP RcvbufErrors delta of
// /proc/net/snmp around the case. Every case is bounded in time (--seconds): a slow case reports the
// bytes it moved by then. Prints a table, then one JSON line {"bench":"utp-probe",...}.
//
//   node dist/bench/utp-probe.js [--bytes=268435456] [--seconds=30] [--repeat=1] [--all] [--verify] [--cases=a,b]
//
// With --repeat=N each case runs N times and the table shows the run with the median MB/s (and the range).
// --all adds the investigation cases (raw utp-native, buffer sizes, write sizes, read coalescing).

import { fork, type ChildProcess } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import { fileURLToPath } from 'node:url'
import UTP from 'utp-native'
import { TcpTransport } from '../net/transport-tcp.js'
import { UtpTransport } from '../net/transport-utp.js'

const MiB = 1024 * 1024

type Kind = 'raw-tcp' | 'tcp' | 'raw-utp' | 'utp'

interface Case {
  readonly name: string
  readonly kind: Kind
  /** SO_RCVBUF/SO_SNDBUF for uTP (0 = kernel default). */
  readonly buffer: number
  /** Apply the buffer on the receiver only / sender only (default both). */
  readonly side?: 'recv' | 'send'
  readonly write: number
  readonly coalesce?: boolean
  /** raw-utp only: utp-native setPacketSize on the receiver (JS callback per N bytes instead of per datagram). */
  readonly packetSize?: number
}

interface Job { readonly c: Case, readonly bytes: number, readonly seconds: number, readonly verify: boolean, readonly role: 'recv' | 'send', readonly port?: number }

interface SideReport {
  readonly bytes: number
  readonly seconds: number
  readonly cpuSeconds: number
  readonly rssMB: number
  readonly stallMs: number
  readonly sockBuf: string
  readonly digest?: string
  readonly partial?: boolean
}

interface Result {
  readonly name: string
  readonly MBps: number
  readonly bytes: number
  readonly recvCpuSPerGB: number
  readonly sendCpuSPerGB: number
  readonly recvRssMB: number
  readonly sendRssMB: number
  readonly udpRcvbufErrors: number
  readonly recvStallMs: number
  readonly sendStallMs: number
  readonly partial: boolean
  readonly verified?: boolean
  readonly runsMBps?: number[]
}

const BASE: readonly Case[] = [
  { name: 'raw-tcp', kind: 'raw-tcp', buffer: 0, write: 64 * 1024 },
  { name: 'tcp-transport', kind: 'tcp', buffer: 0, write: 64 * 1024 },
  { name: 'utp-default-buf', kind: 'utp', buffer: 0, write: 64 * 1024 },
  { name: 'utp-best', kind: 'utp', buffer: 4 * MiB, write: 64 * 1024 }
]

const EXTRA: readonly Case[] = [
  { name: 'raw-utp-default-buf', kind: 'raw-utp', buffer: 0, write: 64 * 1024 },
  { name: 'raw-utp-4M', kind: 'raw-utp', buffer: 4 * MiB, write: 64 * 1024 },
  { name: 'raw-utp-4M-pkt64k', kind: 'raw-utp', buffer: 4 * MiB, write: 64 * 1024, packetSize: 65536 },
  { name: 'utp-4M-recv-only', kind: 'utp', buffer: 4 * MiB, side: 'recv', write: 64 * 1024 },
  { name: 'utp-4M-send-only', kind: 'utp', buffer: 4 * MiB, side: 'send', write: 64 * 1024 },
  { name: 'utp-1M', kind: 'utp', buffer: 1 * MiB, write: 64 * 1024 },
  { name: 'utp-2M', kind: 'utp', buffer: 2 * MiB, write: 64 * 1024 },
  { name: 'utp-4M-w16k', kind: 'utp', buffer: 4 * MiB, write: 16 * 1024 },
  { name: 'utp-4M-w1M', kind: 'utp', buffer: 4 * MiB, write: 1 * MiB },
  { name: 'utp-4M-w4M', kind: 'utp', buffer: 4 * MiB, write: 4 * MiB },
  { name: 'utp-4M-no-coalesce', kind: 'utp', buffer: 4 * MiB, write: 64 * 1024, coalesce: false }
]

// ---------------------------------------------------------------- child side

function sideStats (t0: number, cpu0: NodeJS.CpuUsage): { seconds: number, cpuSeconds: number, rssMB: number } {
  const cpu = process.cpuUsage(cpu0)
  return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, rssMB: process.resourceUsage().maxRSS / 1024 }
}

function bufferFor (c: Case, role: 'recv' | 'send'): number {
  return c.side === undefined || c.side === role ? c.buffer : 0
}

function payloads (write: number): Buffer[] {
  // A few distinct buffers so that lost, duplicated or reordered data changes the digest.
  const out: Buffer[] = []
  for (let i = 0; i < 5; i++) out.push(randomFillSync(Buffer.allocUnsafe(write)))
  return out
}

async function runChild (job: Job): Promise<void> {
  const send = (m: unknown): void => { process.send?.(m) }
  const stall = monitorEventLoopDelay({ resolution: 10 })
  stall.enable()
  const c = job.c
  const buf = bufferFor(c, job.role)
  const closers: Array<() => unknown> = []
  process.on('message', (m: unknown) => {
    if (m !== 'stop') return
    for (const close of closers) { try { void Promise.resolve(close()).catch(() => undefined) } catch { /* exiting */ } }
    setTimeout(() => process.exit(0), 200).unref()
  })
  const deadline = setTimeout(() => process.exit(3), (job.seconds + 20) * 1000)
  deadline.unref()

  if (job.role === 'recv') {
    let reported = false
    const onStream = (stream: Duplex | UTP.Connection, sockBuf: string): void => {
      const t0 = performance.now()
      const cpu0 = process.cpuUsage()
      const hash = job.verify ? createHash('sha256') : null
      let n = 0
      const report = (partial: boolean): void => {
        if (reported) return
        reported = true
        send({ report: { bytes: n, ...sideStats(t0, cpu0), stallMs: stall.max / 1e6, sockBuf, digest: hash?.digest('hex'), partial } satisfies SideReport })
      }
      const timer = setTimeout(() => report(true), job.seconds * 1000)
      stream.on('data', (d: Buffer) => { n += d.length; hash?.update(d) })
      stream.on('end', () => { clearTimeout(timer); report(false) })
      stream.on('error', (err: Error) => { process.stderr.write(`receiver: ${err.message}\n`); clearTimeout(timer); report(true) })
    }
    let port: number
    let sockBuf = '-'
    if (c.kind === 'raw-tcp') {
      const server = net.createServer({ noDelay: true }, s => onStream(s, '-'))
      closers.push(() => server.close())
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      port = (server.address() as net.AddressInfo).port
    } else if (c.kind === 'tcp') {
      const t = new TcpTransport({ onConnection: conn => onStream(conn.stream, '-') })
      closers.push(() => t.close())
      port = await t.listen(0, '127.0.0.1')
    } else if (c.kind === 'raw-utp') {
      const u = UTP.createServer({ allowHalfOpen: true }, conn => {
        if (c.packetSize !== undefined) conn.setPacketSize(c.packetSize)
        onStream(conn, sockBuf)
      })
      closers.push(() => u.close())
      await new Promise<void>(resolve => u.listen(0, '127.0.0.1', resolve))
      if (buf > 0) { u.setRecvBufferSize(buf); u.setSendBufferSize(buf) }
      sockBuf = `${u.getRecvBufferSize()}/${u.getSendBufferSize()}`
      port = u.address().port
    } else {
      const t: UtpTransport = new UtpTransport({ socketBufferBytes: buf, coalesceReads: c.coalesce, onConnection: conn => onStream(conn.stream, sockBuf) })
      closers.push(() => t.close())
      port = await t.listen(0, '127.0.0.1')
      const b = t.socketBuffers()
      sockBuf = `${b.recv}/${b.send}`
    }
    send({ port })
    return
  }

  // sender
  const port = job.port ?? 0
  let stream: Duplex | UTP.Connection
  let sockBuf = '-'
  if (c.kind === 'raw-tcp') {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true })
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
    stream = s
  } else if (c.kind === 'tcp') {
    const t = new TcpTransport({ onConnection: () => undefined })
    closers.push(() => t.close())
    stream = (await t.connect({ host: '127.0.0.1', port })).stream
  } else if (c.kind === 'raw-utp') {
    const u = UTP({ allowHalfOpen: true })
    await new Promise<void>(resolve => u.bind(0, '127.0.0.1', resolve))
    if (buf > 0) { u.setRecvBufferSize(buf); u.setSendBufferSize(buf) }
    sockBuf = `${u.getRecvBufferSize()}/${u.getSendBufferSize()}`
    closers.push(() => u.close())
    const conn = u.connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => { conn.once('connect', resolve); conn.once('error', reject) })
    stream = conn
  } else {
    const t = new UtpTransport({ socketBufferBytes: buf, onConnection: () => undefined })
    closers.push(() => t.close())
    stream = (await t.connect({ host: '127.0.0.1', port })).stream
    const b = t.socketBuffers()
    sockBuf = `${b.recv}/${b.send}`
  }
  stream.on('error', (err: Error) => process.stderr.write(`sender: ${err.message}\n`))
  const bufs = payloads(c.write)
  const hash = job.verify ? createHash('sha256') : null
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const tEnd = t0 + job.seconds * 1000
  let sent = 0
  let i = 0
  await new Promise<void>(resolve => {
    const pump = (): void => {
      // Bounded: at most bytes/write iterations in all, and stops at the case's time limit.
      while (sent < job.bytes && performance.now() < tEnd) {
        const b = bufs[i++ % bufs.length]
        const chunk = sent + b.length <= job.bytes ? b : b.subarray(0, job.bytes - sent)
        hash?.update(chunk)
        sent += chunk.length
        if (!stream.write(chunk)) { stream.once('drain', pump); return }
      }
      // A case stopped at its time limit may not flush its queue in time (lossy cases back off for
      // seconds): report after at most 5 s more rather than not at all.
      setTimeout(resolve, 5000).unref()
      stream.end(() => resolve())
    }
    pump()
  })
  send({ report: { bytes: sent, ...sideStats(t0, cpu0), stallMs: stall.max / 1e6, sockBuf, digest: hash?.digest('hex') } satisfies SideReport })
}

// ---------------------------------------------------------------- parent side

function udpRcvbufErrors (): number {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter(l => l.startsWith('Udp:'))
    const head = lines[0].split(/\s+/)
    const vals = lines[1].split(/\s+/)
    return Number(vals[head.indexOf('RcvbufErrors')])
  } catch {
    return NaN
  }
}

const SELF = fileURLToPath(import.meta.url)

function spawnChild (job: Job): ChildProcess {
  return fork(SELF, [`--child=${JSON.stringify(job)}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
}

function nextMessage<T> (child: ChildProcess, key: string, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no ${key} from child within ${ms} ms`)) }, ms)
    const onMessage = (m: unknown): void => {
      if (typeof m === 'object' && m !== null && key in m) { cleanup(); resolve((m as Record<string, T>)[key]) }
    }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`child exited (${code}) before ${key}`)) }
    const cleanup = (): void => { clearTimeout(timer); child.off('message', onMessage); child.off('exit', onExit) }
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  try { child.send('stop') } catch { /* already gone */ }
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
  await exited
  clearTimeout(timer)
}

async function runCase (c: Case, bytes: number, seconds: number, verify: boolean): Promise<Result & { recvBuf: string, sendBuf: string }> {
  const drops0 = udpRcvbufErrors()
  const limitMs = (seconds + 15) * 1000
  const recv = spawnChild({ c, bytes, seconds, verify, role: 'recv' })
  let sender: ChildProcess | null = null
  try {
    const port = await nextMessage<number>(recv, 'port', 10_000)
    const recvReport = nextMessage<SideReport>(recv, 'report', limitMs)
    sender = spawnChild({ c, bytes, seconds, verify, role: 'send', port })
    const sendReport = nextMessage<SideReport>(sender, 'report', limitMs)
    const [r, s] = await Promise.all([recvReport, sendReport])
    const drops = udpRcvbufErrors() - drops0
    const gb = r.bytes / 1e9
    return {
      name: c.name,
      MBps: r.bytes / 1e6 / r.seconds,
      bytes: r.bytes,
      recvCpuSPerGB: r.cpuSeconds / gb,
      sendCpuSPerGB: s.cpuSeconds / gb,
      recvRssMB: r.rssMB,
      sendRssMB: s.rssMB,
      udpRcvbufErrors: drops,
      recvStallMs: r.stallMs,
      sendStallMs: s.stallMs,
      partial: r.partial === true || r.bytes < bytes,
      ...(verify ? { verified: r.digest !== undefined && r.digest === s.digest && r.bytes === s.bytes } : {}),
      recvBuf: r.sockBuf,
      sendBuf: s.sockBuf
    }
  } finally {
    await Promise.all([stopChild(recv), sender !== null ? stopChild(sender) : Promise.resolve()])
  }
}

function arg (name: string): string | undefined {
  const a = process.argv.find(x => x === `--${name}` || x.startsWith(`--${name}=`))
  if (a === undefined) return undefined
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : ''
}

async function main (): Promise<void> {
  const child = arg('child')
  if (child !== undefined) { await runChild(JSON.parse(child) as Job); return }

  const bytes = Number(arg('bytes') ?? 256 * MiB)
  const seconds = Number(arg('seconds') ?? 30)
  const verify = arg('verify') !== undefined
  const repeat = Number(arg('repeat') ?? 1)
  const all = [...BASE, ...EXTRA]
  const names = arg('cases')?.split(',')
  const cases = names !== undefined ? all.filter(c => names.includes(c.name)) : arg('all') !== undefined ? all : BASE
  if (!(bytes > 0) || !(seconds > 0) || !(repeat >= 1 && repeat <= 20) || cases.length === 0) {
    process.stderr.write(`USAGE: node dist/bench/utp-probe.js [--bytes=N] [--seconds=S] [--repeat=1..20] [--all] [--verify] [--cases=${all.map(c => c.name).join(',')}]\n`)
    process.exit(2)
  }

  const results: Array<Awaited<ReturnType<typeof runCase>>> = []
  const f = (n: number, d = 1): string => Number.isFinite(n) ? n.toFixed(d) : '-'
  console.log(`utp-probe: ${f(bytes / MiB, 0)} MiB per run, child → child on 127.0.0.1, ${seconds} s limit per run, ${repeat} run(s) per case (median shown)`)
  console.log('case                  MB/s   cpu s/GB recv/send   RSS MB recv/send   UDP drops   max stall ms recv/send   SO_RCVBUF/SO_SNDBUF recv | send')
  for (const c of cases) {
    process.stderr.write(`utp-probe: ${c.name}...\n`)
    try {
      const runs: Array<Awaited<ReturnType<typeof runCase>>> = []
      for (let k = 0; k < repeat; k++) runs.push(await runCase(c, bytes, seconds, verify))
      runs.sort((x, y) => x.MBps - y.MBps)
      const r = { ...runs[Math.floor((runs.length - 1) / 2)], ...(repeat > 1 ? { runsMBps: runs.map(x => Math.round(x.MBps)) } : {}) }
      results.push(r)
      console.log(`${r.name.padEnd(20)} ${f(r.MBps).padStart(6)}${r.partial ? '*' : ' '}  ${f(r.recvCpuSPerGB, 2).padStart(7)} / ${f(r.sendCpuSPerGB, 2).padEnd(7)}  ${f(r.recvRssMB, 0).padStart(8)} / ${f(r.sendRssMB, 0).padEnd(6)}  ${String(r.udpRcvbufErrors).padStart(9)}   ${f(r.recvStallMs).padStart(10)} / ${f(r.sendStallMs).padEnd(10)}  ${r.recvBuf} | ${r.sendBuf}${r.verified === false ? '  DIGEST MISMATCH' : r.verified === true ? '  verified' : ''}${r.runsMBps !== undefined ? `  runs ${r.runsMBps.join(',')}` : ''}`)
    } catch (err) {
      console.log(`${c.name.padEnd(20)} failed: ${(err as Error).message}`)
    }
  }
  console.log('* = stopped at the time limit (MB/s over the bytes moved by then). UDP drops: system-wide RcvbufErrors delta.')
  const round = (r: Result): Record<string, unknown> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 100) / 100 : v]))
  const utp = results.filter(r => r.name.startsWith('utp') || r.name.startsWith('raw-utp'))
  const best = utp.reduce<Result | null>((a, r) => a === null || r.MBps > a.MBps ? r : a, null)
  console.log(JSON.stringify({ bench: 'utp-probe', bytes, seconds, repeat, best: best?.name ?? null, bestMBps: best !== null ? Math.round(best.MBps) : null, utpReaches100: best !== null && best.MBps >= 100, cases: results.map(r => round(r)) }))
}

main().catch(err => {
  process.stderr.write(`utp-probe failed: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
