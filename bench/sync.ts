// The sync bench: how fast a change made on one device of an owner shows up on another
// (docs/sync.md). A real local swarm (bootstrap DHT node + 6 storage peers, `dustbox` processes on
// 127.0.0.1, redundancy 4+2) and two devices of one owner: device A (a fresh home; its identity is
// made at start) and device B (A's secret.key copied, plus a device key of its own, as
// `dustbox key import` makes), each watching a folder named "Sync". Sync runs with its default
// timers (NOTIFY 200 ms after a change, DELETE_SETTLE_MS 2 s); ingest with --settle 0.3 (as the
// tests; the product default is 2 s). Phases, after a warm-up file has gone from A to B:
//   single  = 10 × a 4 KiB file written on A: (a) write → its .f stub on A (watcher, settle,
//             ingest, placement on the peers), (b) stub on A → stub on B (sync), and the total;
//             polled every 10 ms;
//   change  = 5 × a file hydrated on both devices is rewritten on A: write → A recorded the new
//             version (control `versions`), → B's file holds the new bytes (B pulls the stub and
//             hydrates it again from the peers);
//   delete  = 5 × a stub is deleted on A: unlink → A tombstoned it (after DELETE_SETTLE_MS, by
//             design), → the stub is gone on B;
//   bulk    = N files (default 1,000, 1–64 KiB, random, 25 per folder) written on A at once:
//             last write → all N stubs on A (ingest reference) and on B; the sync tail (A has all →
//             B has all) and B's own rate (B's first stub → B's last); polled every 50 ms;
//   catch-up = B stopped, N more files stubbed on A, B started again: B's start → all N on B
//             (sync alone, with nothing else running on A).
// Peak RSS (VmHWM) of both device processes. `--files N` (or DUSTBOX_BENCH_FILES). Every wait
// is bounded; the temp dir and every child process are removed at the end.

import { alive, cpuSeconds, killOnSignal, vmHwm } from './proc.js'
import { createCipheriv, randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalSwarm, agentStatus, sleep, type SwarmChild } from '../agent/swarm.js'
import { ControlClient } from '../agent/control-client.js'
import { createDeviceKey } from '../agent/device.js'
import { MiB, cell, printJsonLine, round, table } from './report.js'
import { FILES } from './config.js'
import { prng } from './tree.js'

const PEERS = 6
const FOLDER = 'Sync'
const SETTLE_S = '0.3'
const SMALL = 4096
const SINGLE_REPS = 10
const CHANGE_REPS = 5
const DELETE_REPS = 5
const BULK_MIN = 1024
const BULK_MAX = 64 * 1024
const PER_DIR = 25
const FAST_POLL_MS = 10
const BULK_POLL_MS = 50
const ONE_WAIT_MS = 60_000
const BULK_WAIT_MS = 10 * 60_000
const DEFAULT_FILES = 1000

const log = (s: string): void => { process.stderr.write(`# ${s}\n`) }

// ---- options: `--files N` (bench/config.ts) --------------------------------------------------------

function filesOption (): number {
  return FILES > 0 ? FILES : DEFAULT_FILES
}

// ---- helpers ----------------------------------------------------------------------------------




async function exists (p: string): Promise<boolean> {
  return await fsp.lstat(p).then(() => true, () => false)
}

async function call<T> (home: string, method: string, params: Record<string, unknown> = {}): Promise<T> {
  const c = await ControlClient.connect(home, { timeoutMs: 3000 })
  try { return await c.call<T>(method, params, { timeoutMs: 60_000 }) } finally { await c.close() }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  return n === 0 ? NaN : n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}


/** .f stubs under dir (recursively); 0 while dir does not exist. */
async function countStubs (dir: string): Promise<number> {
  try {
    let n = 0
    for (const e of await fsp.readdir(dir, { recursive: true })) if (e.endsWith('.f')) n++
    return n
  } catch { return 0 }
}

interface Devices { A: SwarmChild, B: SwarmChild, dirA: string, dirB: string }

function tail (c: SwarmChild): string { return c.output.slice(-6).join(' | ') }

/** Throw when a device process died (with its last lines). */
function checkAlive (d: Devices): void {
  for (const c of [d.A, d.B]) if (!alive(c)) throw new Error(`${c.name} exited (${c.proc.exitCode ?? c.proc.signalCode}): ${tail(c)}`)
}

/**
 * Poll `probes` every pollMs until each has held once; returns, per probe, the ms after t0 at which
 * it was first seen true. Bounded by timeoutMs.
 */
async function firstTimes (what: string, d: Devices, t0: number, probes: Array<() => Promise<boolean>>, pollMs: number, timeoutMs: number): Promise<number[]> {
  const seen: Array<number | null> = probes.map(() => null)
  const deadline = t0 + timeoutMs
  for (;;) {
    checkAlive(d)
    for (let i = 0; i < probes.length; i++) {
      if (seen[i] === null && await probes[i]().catch(() => false)) seen[i] = performance.now() - t0
    }
    if (seen.every(s => s !== null)) return seen as number[]
    if (performance.now() > deadline) {
      let why = ''
      try {
        const [a, b] = [await agentStatus(d.A.home), await agentStatus(d.B.home)]
        why = `A queue ${JSON.stringify(a.queue)} placement ${a.placement.waiting ?? '-'} sync ${JSON.stringify(a.sync).slice(0, 300)}; B sync ${JSON.stringify(b.sync).slice(0, 300)}`
      } catch (err) { why = (err as Error).message }
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (seen ${JSON.stringify(seen)}): ${why}; A: ${tail(d.A)}; B: ${tail(d.B)}`)
    }
    await sleep(pollMs)
  }
}

async function versionsOf (home: string, path: string): Promise<{ state: string, n: number }> {
  const v = await call<{ state: string, versions: unknown[] }>(home, 'versions', { path })
  return { state: v.state, n: v.versions.length }
}

/** Hydrate a file on a device (control `open` of its stub) unless it is already there. */
async function hydrate (home: string, path: string): Promise<void> {
  if (!await exists(path)) await call(home, 'open', { path: path + '.f' })
}

/** N random files (1–64 KiB) under dir/<sub>/dNNN/, PER_DIR per folder; returns bytes and write times. */
async function writeBulk (dir: string, sub: string, n: number, seed: number): Promise<{ bytes: number, start: number, end: number }> {
  const rnd = prng(seed)
  const c = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16))
  // Data and folders first, so that the writes go as fast as they can.
  const files: Array<{ path: string, data: Buffer }> = []
  let bytes = 0
  for (let i = 0; i < n; i++) {
    const size = BULK_MIN + Math.floor(rnd() * (BULK_MAX - BULK_MIN + 1))
    const d = join(dir, sub, `d${String(Math.floor(i / PER_DIR)).padStart(3, '0')}`)
    files.push({ path: join(d, `file ${i}.bin`), data: c.update(Buffer.alloc(size)) })
    bytes += size
  }
  const start = performance.now()
  for (let j = 0; j * PER_DIR < n; j++) await fsp.mkdir(join(dir, sub, `d${String(j).padStart(3, '0')}`), { recursive: true })
  for (const f of files) await fsp.writeFile(f.path, f.data)
  return { bytes, start, end: performance.now() }
}

// ---- phases -------------------------------------------------------------------------------------

interface Single { ingestMs: number, syncMs: number, totalMs: number }
interface Change { recordedMs: number, totalMs: number }
interface Bulk {
  files: number
  bytes: number
  writeS: number
  /** first write → every stub on A (the ingest reference). */
  ingestS: number
  /** last write → every stub on A / on B. */
  lastToAS: number
  lastToBS: number
  /** every stub on A → every stub on B. */
  syncTailS: number
  /** B's first stub → B's last. */
  bSpanS: number
  /** B's first stub after A's first stub (s). */
  firstLagS: number
}
interface CatchUp { files: number, ingestS: number, startS: number, connectS: number, allS: number, syncS: number, cpuB: number | null }

async function singleFiles (d: Devices): Promise<Single[]> {
  const out: Single[] = []
  await fsp.mkdir(join(d.dirA, 'one'), { recursive: true })
  await sleep(500)
  for (let i = 0; i < SINGLE_REPS; i++) {
    const rel = join('one', `small ${i}.bin`)
    await fsp.writeFile(join(d.dirA, rel), randomBytes(SMALL))
    const t0 = performance.now()
    const [a, b] = await firstTimes(`the stub of ${rel} on A and B`, d, t0, [
      async () => await exists(join(d.dirA, rel + '.f')),
      async () => await exists(join(d.dirB, rel + '.f'))
    ], FAST_POLL_MS, ONE_WAIT_MS)
    const ingestMs = Math.min(a, b)
    out.push({ ingestMs, syncMs: b - ingestMs, totalMs: b })
    log(`single ${i + 1}/${SINGLE_REPS}: stub on A after ${ingestMs.toFixed(0)} ms, on B ${(b - ingestMs).toFixed(0)} ms later (${b.toFixed(0)} ms in all)`)
    await sleep(500)
  }
  return out
}

async function changes (d: Devices): Promise<Change[]> {
  const out: Change[] = []
  for (let i = 0; i < CHANGE_REPS; i++) {
    const rel = join('one', `small ${i}.bin`)
    const [pa, pb] = [join(d.dirA, rel), join(d.dirB, rel)]
    await hydrate(d.A.home, pa)
    await hydrate(d.B.home, pb)
    await sleep(1500) // the watchers report the hydrated files before the edit
    const before = await versionsOf(d.A.home, pa)
    const data = randomBytes(SMALL)
    await fsp.writeFile(pa, data)
    const t0 = performance.now()
    const [rec, tot] = await firstTimes(`the change of ${rel} on B`, d, t0, [
      async () => (await versionsOf(d.A.home, pa)).n > before.n,
      async () => (await fsp.readFile(pb)).equals(data)
    ], FAST_POLL_MS, ONE_WAIT_MS)
    out.push({ recordedMs: Math.min(rec, tot), totalMs: tot })
    log(`change ${i + 1}/${CHANGE_REPS}: recorded on A after ${Math.min(rec, tot).toFixed(0)} ms, new bytes on B after ${tot.toFixed(0)} ms`)
    await sleep(500)
  }
  return out
}

async function deletes (d: Devices): Promise<Change[]> {
  const out: Change[] = []
  for (let i = 0; i < DELETE_REPS; i++) {
    const rel = join('one', `small ${SINGLE_REPS - 1 - i}.bin`)
    const [pa, pb] = [join(d.dirA, rel), join(d.dirB, rel)]
    if (!await exists(pa + '.f') || !await exists(pb + '.f')) throw new Error(`${rel}: expected its stub on both devices before deleting it`)
    await fsp.unlink(pa + '.f')
    const t0 = performance.now()
    const [rec, tot] = await firstTimes(`the deletion of ${rel} on B`, d, t0, [
      async () => (await versionsOf(d.A.home, pa)).state === 'deleted',
      async () => !await exists(pb + '.f') && !await exists(pb)
    ], FAST_POLL_MS, ONE_WAIT_MS)
    out.push({ recordedMs: Math.min(rec, tot), totalMs: tot })
    log(`delete ${i + 1}/${DELETE_REPS}: tombstoned on A after ${Math.min(rec, tot).toFixed(0)} ms, gone on B after ${tot.toFixed(0)} ms`)
    await sleep(500)
  }
  return out
}

async function bulk (d: Devices, n: number): Promise<Bulk> {
  const [sa, sb] = [join(d.dirA, 'bulk'), join(d.dirB, 'bulk')]
  log(`bulk: writing ${n} files on A`)
  let firstA: number | null = null
  let firstB: number | null = null
  let lastLog = performance.now()
  const w = await writeBulk(d.dirA, 'bulk', n, 0xb01c)
  log(`bulk: ${n} files (${(w.bytes / MiB).toFixed(1)} MiB) written in ${((w.end - w.start) / 1000).toFixed(2)} s`)
  const [allA, allB] = await firstTimes(`all ${n} bulk stubs on A and B`, d, w.start, [
    async () => {
      const k = await countStubs(sa)
      if (k > 0 && firstA === null) firstA = performance.now()
      return k >= n
    },
    async () => {
      const k = await countStubs(sb)
      if (k > 0 && firstB === null) firstB = performance.now()
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now()
        log(`bulk: ${await countStubs(sa)} stubs on A, ${k} on B`)
      }
      return k >= n
    }
  ], BULK_POLL_MS, BULK_WAIT_MS)
  const at = (ms: number): number => w.start + ms
  const r: Bulk = {
    files: n,
    bytes: w.bytes,
    writeS: (w.end - w.start) / 1000,
    ingestS: allA / 1000,
    lastToAS: (at(allA) - w.end) / 1000,
    lastToBS: (at(allB) - w.end) / 1000,
    syncTailS: (allB - allA) / 1000,
    bSpanS: (at(allB) - firstB!) / 1000,
    firstLagS: (firstB! - firstA!) / 1000
  }
  log(`bulk: all on A ${r.lastToAS.toFixed(2)} s after the last write, all on B ${r.lastToBS.toFixed(2)} s after it`)
  return r
}

async function catchUp (d: Devices, swarm: LocalSwarm, startB: () => Promise<SwarmChild>, n: number): Promise<CatchUp> {
  await swarm.stop(d.B)
  log(`catch-up: B stopped; writing ${n} more files on A`)
  const w = await writeBulk(d.dirA, 'bulk2', n, 0xcafe)
  const [allA] = await firstTimes(`all ${n} bulk2 stubs on A`, { ...d, B: d.A }, w.start, [async () => await countStubs(join(d.dirA, 'bulk2')) >= n], BULK_POLL_MS, BULK_WAIT_MS)
  log(`catch-up: A stubbed them in ${(allA / 1000).toFixed(2)} s; starting B`)
  await sleep(1000)
  const t0 = performance.now()
  d.B = await startB()
  const started = performance.now() - t0
  const cpu0 = cpuSeconds(d.B.proc.pid)
  const [connected, all] = await firstTimes(`all ${n} bulk2 stubs on B after its restart`, d, t0, [
    async () => (await agentStatus(d.B.home)).sync?.devices.some(x => x.online) === true,
    async () => await countStubs(join(d.dirB, 'bulk2')) >= n
  ], BULK_POLL_MS, BULK_WAIT_MS)
  const cpu1 = cpuSeconds(d.B.proc.pid)
  const r: CatchUp = { files: n, ingestS: allA / 1000, startS: started / 1000, connectS: Math.min(connected, all) / 1000, allS: all / 1000, syncS: (all - started) / 1000, cpuB: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0 }
  log(`catch-up: B up after ${r.startS.toFixed(2)} s, sees A after ${r.connectS.toFixed(2)} s, has all ${n} after ${r.allS.toFixed(2)} s`)
  return r
}

// ---- the bench --------------------------------------------------------------------------------

export async function runSyncBench (): Promise<void> {
  const n = filesOption()
  const base = await fsp.mkdtemp(join(tmpdir(), 'dustbox-sync-'))
  const swarm = new LocalSwarm(join(base, 'swarm'))
  const unhook = killOnSignal(swarm, base)
  const homeA = join(base, 'deviceA')
  const homeB = join(base, 'deviceB')
  const dirA = join(base, 'A', FOLDER)
  const dirB = join(base, 'B', FOLDER)
  const t00 = performance.now()
  let single: Single[] = []
  let change: Change[] = []
  let del: Change[] = []
  let bk: Bulk | null = null
  let cu: CatchUp | null = null
  const rss = { A: 0, B: 0 }
  const noteRss = (d: Devices): void => {
    rss.A = Math.max(rss.A, vmHwm(d.A.proc.pid) ?? 0)
    rss.B = Math.max(rss.B, vmHwm(d.B.proc.pid) ?? 0)
  }
  let warnings: string[] = []
  let ids = { A: '', B: '' }
  let formS = 0
  try {
    await fsp.mkdir(dirA, { recursive: true })
    await fsp.mkdir(dirB, { recursive: true })
    log(`swarm: bootstrap + ${PEERS} storage peers in ${base}`)
    await swarm.startBootstrap()
    await swarm.startPeers(PEERS)
    const A = await swarm.startAgent({ name: 'deviceA', home: homeA, folders: [dirA], extraArgs: ['--settle', SETTLE_S] })
    // Device B: the owner's key and a device key of its own (what `dustbox key import` makes).
    await fsp.mkdir(homeB, { recursive: true, mode: 0o700 })
    await fsp.copyFile(join(homeA, 'secret.key'), join(homeB, 'secret.key'))
    await fsp.chmod(join(homeB, 'secret.key'), 0o600)
    await createDeviceKey(homeB)
    const startB = async (): Promise<SwarmChild> => await swarm.startAgent({ name: 'deviceB', home: homeB, folders: [dirB], extraArgs: ['--settle', SETTLE_S] })
    const d: Devices = { A, B: await startB(), dirA, dirB }
    const [sa, sb] = [await agentStatus(homeA), await agentStatus(homeB)]
    if (sa.identity !== sb.identity || sa.sync === undefined || sb.sync === undefined || sa.sync.device.id === sb.sync.device.id) throw new Error('expected two devices of one owner')
    ids = { A: sa.sync.device.id, B: sb.sync.device.id }
    log(`devices A ${ids.A}, B ${ids.B}: waiting until they see each other, then a warm-up file from A to B`)
    const t0 = performance.now()
    await firstTimes('A and B online to each other', d, t0, [
      async () => (await agentStatus(homeA)).sync?.devices.some(x => x.online) === true,
      async () => (await agentStatus(homeB)).sync?.devices.some(x => x.online) === true
    ], 200, ONE_WAIT_MS)
    await fsp.writeFile(join(dirA, 'warm-up.txt'), 'warm-up')
    await firstTimes('the warm-up stub on B', d, t0, [async () => await exists(join(dirB, 'warm-up.txt.f'))], 50, ONE_WAIT_MS)
    formS = (performance.now() - t0) / 1000
    log(`swarm formed and warm-up synced ${formS.toFixed(1)} s after B started`)

    single = await singleFiles(d)
    noteRss(d)
    change = await changes(d)
    del = await deletes(d)
    noteRss(d)
    bk = await bulk(d, n)
    noteRss(d)
    cu = await catchUp(d, swarm, startB, n)
    noteRss(d)
    const re = /warn|error|fail|refused|invalid/i
    warnings = [...d.A.output.filter(l => re.test(l)).map(l => `A: ${l}`), ...d.B.output.filter(l => re.test(l)).map(l => `B: ${l}`)]
    const [fa, fb] = [await agentStatus(homeA), await agentStatus(homeB)]
    if (fa.sync?.lastError != null) warnings.push(`A sync lastError: ${fa.sync.lastError}`)
    if (fb.sync?.lastError != null) warnings.push(`B sync lastError: ${fb.sync.lastError}`)
  } finally {
    try { await swarm.close() } catch (err) { log(`swarm close: ${(err as Error).message}`) }
    await fsp.rm(base, { recursive: true, force: true, maxRetries: 3 })
    unhook()
  }
  printReport({ n, single, change, del, bulk: bk!, catchUp: cu!, rss, warnings, ids, formS, runS: (performance.now() - t00) / 1000 })
}

interface Report {
  n: number
  single: Single[]
  change: Change[]
  del: Change[]
  bulk: Bulk
  catchUp: CatchUp
  rss: { A: number, B: number }
  warnings: string[]
  ids: { A: string, B: string }
  formS: number
  runS: number
}

function printReport (r: Report): void {
  const ms = (x: number): string => cell(x, 0)
  const med = (xs: number[]): string => ms(median(xs))
  const max = (xs: number[]): string => ms(Math.max(...xs))
  const b = r.bulk
  const c = r.catchUp
  const ingestRate = b.files / b.ingestS
  const tailRate = b.files / b.syncTailS
  const bRate = b.files / b.bSpanS
  const catchRate = c.files / c.syncS
  const out = (s: string): void => { process.stdout.write(s + '\n') }
  out(`sync: 2 devices of one owner (A ${r.ids.A}, B ${r.ids.B}) + ${PEERS} storage peers on 127.0.0.1, redundancy 4+2, default sync timers (notify 200 ms, delete settle 2 s), ingest --settle ${SETTLE_S} s; ${r.n} bulk files`)
  out('')
  out(table(
    ['latency (ms)', 'runs', 'median', 'max', 'what'],
    [
      ['one 4 KiB file: ingest on A', String(r.single.length), med(r.single.map(s => s.ingestMs)), max(r.single.map(s => s.ingestMs)), `write on A → .f stub on A (incl. ${Number(SETTLE_S) * 1000} ms settle)`],
      ['one 4 KiB file: sync A → B', String(r.single.length), med(r.single.map(s => s.syncMs)), max(r.single.map(s => s.syncMs)), 'stub on A → stub on B (incl. 200 ms notify delay)'],
      ['one 4 KiB file: total', String(r.single.length), med(r.single.map(s => s.totalMs)), max(r.single.map(s => s.totalMs)), 'write on A → stub on B'],
      ['change: recorded on A', String(r.change.length), med(r.change.map(s => s.recordedMs)), max(r.change.map(s => s.recordedMs)), 'rewrite of a file hydrated on A and B → new version on A'],
      ['change: new bytes on B', String(r.change.length), med(r.change.map(s => s.totalMs)), max(r.change.map(s => s.totalMs)), 'rewrite on A → B\'s hydrated file has the new bytes'],
      ['delete: tombstoned on A', String(r.del.length), med(r.del.map(s => s.recordedMs)), max(r.del.map(s => s.recordedMs)), 'unlink of a stub on A → deleted on A (incl. 2,000 ms settle)'],
      ['delete: gone on B', String(r.del.length), med(r.del.map(s => s.totalMs)), max(r.del.map(s => s.totalMs)), 'unlink on A → stub gone on B']
    ]
  ))
  out('')
  out(table(
    ['bulk', 'files', 'seconds', 'files/s', 'what'],
    [
      ['write on A', String(b.files), cell(b.writeS, 2), cell(b.files / b.writeS, 0), `${(b.bytes / MiB).toFixed(1)} MiB, 1–64 KiB each, written one after another`],
      ['ingest on A (reference)', String(b.files), cell(b.ingestS, 2), cell(ingestRate, 0), 'first write → every stub on A'],
      ['last write → all on A', String(b.files), cell(b.lastToAS, 2), '-', ''],
      ['last write → all on B', String(b.files), cell(b.lastToBS, 2), '-', ''],
      ['sync tail', String(b.files), cell(b.syncTailS, 2), cell(tailRate, 0), 'all on A → all on B'],
      ['B applying', String(b.files), cell(b.bSpanS, 2), cell(bRate, 0), `B's first stub → B's last (first stub ${cell(b.firstLagS, 2)} s after A's first)`],
      ['catch-up: ingest on A', String(c.files), cell(c.ingestS, 2), cell(c.files / c.ingestS, 0), 'B stopped; first write → every stub on A'],
      ['catch-up: B restart', String(c.files), cell(c.allS, 2), '-', `spawn → all on B (control up ${cell(c.startS, 2)} s, sees A ${cell(c.connectS, 2)} s)`],
      ['catch-up: sync alone', String(c.files), cell(c.syncS, 2), cell(catchRate, 0), `B's control up → all on B (B busy ${cell(c.cpuB, 2)} CPU s meanwhile)`]
    ]
  ))
  out('')
  out(`sync tail / ingest: ${(b.syncTailS / b.ingestS * 100).toFixed(1)}% of the ingest time; catch-up sync / catch-up ingest: ${(c.syncS / c.ingestS * 100).toFixed(1)}%`)
  out(`peak RSS (VmHWM): device A ${(r.rss.A / MiB).toFixed(0)} MiB, device B ${(r.rss.B / MiB).toFixed(0)} MiB (B: the larger of its two processes)`)
  out(`swarm formed and the warm-up file synced ${r.formS.toFixed(1)} s after B started; whole run ${r.runS.toFixed(0)} s`)
  if (r.warnings.length > 0) out(`devices: ${r.warnings.length} warning/error lines, first: ${r.warnings.slice(0, 3).join(' | ').slice(0, 600)}`)
  printJsonLine({
    bench: 'sync',
    peers: PEERS,
    k: 4,
    m: 2,
    settle_s: Number(SETTLE_S),
    single_runs: r.single.length,
    single_ingest_ms_median: round(median(r.single.map(s => s.ingestMs)), 0),
    single_ingest_ms_max: round(Math.max(...r.single.map(s => s.ingestMs)), 0),
    single_sync_ms_median: round(median(r.single.map(s => s.syncMs)), 0),
    single_sync_ms_max: round(Math.max(...r.single.map(s => s.syncMs)), 0),
    single_total_ms_median: round(median(r.single.map(s => s.totalMs)), 0),
    single_total_ms_max: round(Math.max(...r.single.map(s => s.totalMs)), 0),
    change_recorded_ms_median: round(median(r.change.map(s => s.recordedMs)), 0),
    change_ms_median: round(median(r.change.map(s => s.totalMs)), 0),
    change_ms_max: round(Math.max(...r.change.map(s => s.totalMs)), 0),
    delete_recorded_ms_median: round(median(r.del.map(s => s.recordedMs)), 0),
    delete_ms_median: round(median(r.del.map(s => s.totalMs)), 0),
    delete_ms_max: round(Math.max(...r.del.map(s => s.totalMs)), 0),
    bulk_files: b.files,
    bulk_MiB: round(b.bytes / MiB),
    bulk_write_s: round(b.writeS, 2),
    bulk_ingest_s: round(b.ingestS, 2),
    bulk_ingest_files_per_s: round(ingestRate, 0),
    bulk_last_write_to_all_A_s: round(b.lastToAS, 2),
    bulk_last_write_to_all_B_s: round(b.lastToBS, 2),
    bulk_sync_tail_s: round(b.syncTailS, 2),
    bulk_sync_tail_files_per_s: round(tailRate, 0),
    bulk_B_apply_s: round(b.bSpanS, 2),
    bulk_B_apply_files_per_s: round(bRate, 0),
    catchup_ingest_s: round(c.ingestS, 2),
    catchup_start_s: round(c.startS, 2),
    catchup_all_s: round(c.allS, 2),
    catchup_sync_s: round(c.syncS, 2),
    catchup_sync_files_per_s: round(catchRate, 0),
    catchup_B_cpu_s: round(c.cpuB, 2),
    peak_rss_A_MiB: round(r.rss.A / MiB, 0),
    peak_rss_B_MiB: round(r.rss.B / MiB, 0),
    device_warning_lines: r.warnings.length,
    run_s: round(r.runS, 0)
  })
}

