// Transport bench (`npm run bench -- transport`): 1 GiB of 1 MiB shards PUT from one process to another
// over dustbox's secure channel on uTP and on TCP (the receiver verifies each shard's id and stores it
// in a ShardStore on tmpfs, so the disk is not what is measured), with raw TCP on loopback (no crypto,
// no protocol) in the same run as the reference. Prints MB/s, CPU seconds per GB of each side and peak
// RSS of each side; the last line is one JSON object.

import { fork, type ChildProcess } from 'node:child_process'
import { promises as fsp, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SCALE } from './config.js'
import { MB, MiB, cell, round, table, printJsonLine } from './report.js'

const CHILD = fileURLToPath(new URL('./transport-child.js', import.meta.url))
const BYTES = Math.max(16 * MiB, Math.round(1024 * MiB * SCALE / MiB) * MiB)
const SHARD = MiB
const SECONDS = 300

interface Side { cpuS: number, wallS: number, peakRssMiB: number }
interface Row { name: string, MBps: number, recv: Side, send: Side }

function start (job: Record<string, unknown>): ChildProcess {
  return fork(CHILD, [JSON.stringify({ seconds: SECONDS, bytes: BYTES, shard: SHARD, ...job })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] })
}

async function next<T> (c: ChildProcess, key: string): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no ${key} from the bench child within ${SECONDS + 30} s`)) }, (SECONDS + 30) * 1000)
    const onMsg = (m: any): void => { if (m !== null && typeof m === 'object' && key in m) { cleanup(); resolve(m[key] as T) } }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`bench child exited (${String(code)}) before sending ${key}`)) }
    const cleanup = (): void => { clearTimeout(timer); c.off('message', onMsg); c.off('exit', onExit) }
    c.on('message', onMsg)
    c.on('exit', onExit)
  })
}

async function stop (...cs: ChildProcess[]): Promise<void> {
  await Promise.all(cs.map(async c => {
    if (c.exitCode !== null) return
    c.send('stop')
    await new Promise(resolve => { const t = setTimeout(() => { c.kill('SIGKILL'); resolve(null) }, 3000); c.once('exit', () => { clearTimeout(t); resolve(null) }) })
  }))
}

async function raw (): Promise<Row> {
  const sink = start({ role: 'raw-sink' })
  const port = await next<number>(sink, 'port')
  const src = start({ role: 'raw-source', port })
  const [recv, send] = await Promise.all([next<Side>(sink, 'done'), next<Side>(src, 'done')])
  await stop(sink, src)
  return { name: 'raw TCP (reference)', MBps: BYTES / MB / recv.wallS, recv, send }
}

async function dustbox (transport: 'utp' | 'tcp', storeRoot: string): Promise<Row> {
  const storeDir = join(storeRoot, `store-${transport}`)
  const recvChild = start({ role: 'node-recv', transport, storeDir })
  const port = await next<number>(recvChild, 'port')
  const sendChild = start({ role: 'node-send', transport, port, parallel: 8 })
  const send = await next<Side>(sendChild, 'done')
  recvChild.send('report')
  const recv = await next<Side>(recvChild, 'done')
  await stop(recvChild, sendChild)
  await fsp.rm(storeDir, { recursive: true, force: true })
  return { name: `dustbox over ${transport === 'utp' ? 'uTP' : 'TCP'}`, MBps: BYTES / MB / send.wallS, recv, send }
}

export async function runTransportBench (): Promise<void> {
  const storeRoot = await fsp.mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'dustbox-transport-'))
  try {
    process.stderr.write(`transport: ${BYTES / MiB} MiB of ${SHARD / MiB} MiB shards, receiver store in ${storeRoot}\n`)
    const rows: Row[] = []
    rows.push(await raw())
    rows.push(await dustbox('tcp', storeRoot))
    rows.push(await dustbox('utp', storeRoot))
    const perGB = (s: Side): number => s.cpuS / (BYTES / 1e9)
    console.log(table(['path', 'MB/s', 'x raw TCP', 'recv CPU s/GB', 'send CPU s/GB', 'recv peak RSS MiB', 'send peak RSS MiB'],
      rows.map(r => [r.name, cell(r.MBps, 0), cell(r.MBps / rows[0].MBps, 2), cell(perGB(r.recv), 2), cell(perGB(r.send), 2), cell(r.recv.peakRssMiB, 0), cell(r.send.peakRssMiB, 0)])))
    const [rawRow, tcp, utp] = rows
    printJsonLine({
      bench: 'transport',
      bytes: BYTES,
      shard_bytes: SHARD,
      utp_MBps: round(utp.MBps),
      tcp_MBps: round(tcp.MBps),
      raw_tcp_MBps: round(rawRow.MBps),
      tcp_ratio_raw: round(tcp.MBps / rawRow.MBps, 3),
      utp_cpu_s_per_GB: { recv: round(perGB(utp.recv), 2), send: round(perGB(utp.send), 2) },
      tcp_cpu_s_per_GB: { recv: round(perGB(tcp.recv), 2), send: round(perGB(tcp.send), 2) },
      raw_cpu_s_per_GB: { recv: round(perGB(rawRow.recv), 2), send: round(perGB(rawRow.send), 2) },
      peak_rss_MiB: { utp_recv: round(utp.recv.peakRssMiB, 0), utp_send: round(utp.send.peakRssMiB, 0), tcp_recv: round(tcp.recv.peakRssMiB, 0), tcp_send: round(tcp.send.peakRssMiB, 0) }
    })
  } finally {
    await fsp.rm(storeRoot, { recursive: true, force: true })
  }
}
