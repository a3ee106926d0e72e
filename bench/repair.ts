// The repair bench: time from a storage peer's death to full redundancy restored, for 1 GiB of data.
// A real local swarm (bootstrap DHT node + 8 storage peers, all `dustbox` processes on 127.0.0.1)
// and an owner agent started on a folder of 4 random files (1 GiB in all by default;
// DUSTBOX_BENCH_REPAIR_MB = total MiB, else 1024 x --scale), redundancy 4+2. Once every file is
// stubbed and at full redundancy, the peer holding the most bytes of the owner's shards is
// SIGKILLed; the owner's status is polled every 200 ms until that peer is 'lost' (detection) and
// then until every file is back at full redundancy with nothing left to repair (repair). Then a
// second holder is killed and the same is measured again. The monitor declares a peer lost after
// 5 s of absence here (tunable lostAfterMs; the default is 3 days), so the figure is the repair,
// not the detection. Also: the ingest rate of the initial placement, as a reference, and the
// owner's peak RSS (VmHWM, reset before each phase where the kernel allows it). Everything is
// removed at the end.

import { alive, killOnSignal, vmHwm } from './proc.js'
import { createCipheriv, randomBytes } from 'node:crypto'
import { promises as fsp, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalSwarm, agentStatus, sleep, type SwarmChild } from '../agent/swarm.js'
import type { AgentStatus } from '../agent/status.js'
import { SCALE } from './config.js'
import { MB, MiB, cell, printJsonLine, round, table } from './report.js'
import { syncDisks } from './tree.js'

const PEERS = 8
const FILES = 4
const DONATE = '4G'
const POLL_MS = 200
const WAIT_MS = 15 * 60_000
const PIECE = 8 << 20
const LOST_AFTER_MS = 5000

/** The monitor, repair and audit timers of this bench (on top of LocalSwarm's LOCAL_TUNABLES). */
const TUNABLES: Record<string, number> = {
  keepaliveMs: 500,
  monitorTickMs: 250,
  suspectAfterMs: 2000,
  offlineAfterMs: 1000,
  lostAfterMs: LOST_AFTER_MS,
  startGraceMs: 1000,
  repairCheckMs: 1000,
  repairRetryMs: 1000,
  repairRateBytes: 0,
  auditRoundMs: 60_000
}

const log = (s: string): void => { process.stderr.write(`# ${s}\n`) }

function dataMiB (): number {
  const v = process.env.DUSTBOX_BENCH_REPAIR_MB
  if (v === undefined || v === '') return Math.max(1, Math.round(1024 * SCALE))
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new Error(`DUSTBOX_BENCH_REPAIR_MB=${JSON.stringify(v)}: want a positive integer (MiB)`)
  return n
}

/** FILES files of random data (an AES-128-CTR keystream), totalBytes in all; returns the bytes written. */
async function makeData (dir: string, totalBytes: number): Promise<number> {
  await fsp.mkdir(dir, { recursive: true })
  const per = Math.max(4096, Math.floor(totalBytes / FILES / 4096) * 4096)
  for (let i = 0; i < FILES; i++) {
    const c = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16))
    const fh = await fsp.open(join(dir, `data-${i}.bin`), 'w')
    try {
      for (let left = per; left > 0; left -= PIECE) await fh.write(c.update(Buffer.alloc(Math.min(PIECE, left))))
    } finally { await fh.close() }
  }
  return per * FILES
}


/** Reset a process's peak-RSS mark to its current RSS (Linux >= 4.0); false when not allowed. */
function resetHwm (pid: number | undefined): boolean {
  if (pid === undefined) return false
  try { writeFileSync(`/proc/${pid}/clear_refs`, '5'); return true } catch { return false }
}

const stubbed = (s: AgentStatus): number => s.folders.reduce((a, f) => a + (f.files.stubbed ?? 0), 0)

function brief (s: AgentStatus | null): string {
  if (s === null) return 'no status'
  return `stubbed ${stubbed(s)}, health ${JSON.stringify(s.health)}, repair ${JSON.stringify(s.repair)}, peers ${s.peers.map(p => `${p.short}:${p.state ?? '-'}:${p.connected ? 'c' : 'd'}:${(p.holdsForMe / MiB).toFixed(0)}M`).join(' ')}`
}

/** Poll the owner every POLL_MS until `done` holds; `tick` sees every status. Bounded by WAIT_MS. */
async function pollOwner (owner: SwarmChild, what: string, done: (s: AgentStatus) => boolean, tick: (s: AgentStatus) => void = () => {}): Promise<AgentStatus> {
  const deadline = Date.now() + WAIT_MS
  let last: AgentStatus | null = null
  let lastLog = Date.now()
  for (;;) {
    if (!alive(owner)) throw new Error(`the owner exited (${owner.proc.exitCode ?? owner.proc.signalCode}) while waiting for ${what}: ${owner.output.slice(-8).join(' | ')}`)
    try {
      last = await agentStatus(owner.home)
      tick(last)
      if (done(last)) return last
    } catch (err) { log(`${what}: status failed: ${(err as Error).message}`) }
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now()
      log(`${what}: ${brief(last)}`)
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS / 60_000} min waiting for ${what}; last status: ${brief(last)}; owner log: ${owner.output.slice(-8).join(' | ')}`)
    await sleep(POLL_MS)
  }
}

interface RepairRun {
  victim: string
  victimHeldBytes: number
  /** Transport of the owner's channel to the victim when it was killed (uTP: no FIN, the channel stays open until libutp times out). */
  victimTransport: string
  /** SIGKILL → the owner reports the victim not connected. */
  disconnectSeconds: number | null
  detectSeconds: number
  repairSeconds: number
  totalSeconds: number
  bytesSent: number
  bytesFetched: number
  shardsRebuilt: number
  blocksRepaired: number
  failedAttempts: number
  peakRssBytes: number | null
}

/** SIGKILL the live storage peer holding the most of the owner's bytes and time the repair. */
async function killAndRepair (label: string, swarm: LocalSwarm, owner: SwarmChild, peers: SwarmChild[], ids: Map<SwarmChild, string>): Promise<RepairRun> {
  const before = await agentStatus(owner.home)
  const held = (c: SwarmChild): number => before.peers.find(p => p.short === ids.get(c))?.holdsForMe ?? 0
  const victim = peers.filter(alive).sort((a, b) => held(b) - held(a))[0]
  if (victim === undefined || held(victim) === 0) throw new Error(`${label}: no live peer holds shards of the owner (${brief(before)})`)
  const victimId = ids.get(victim)!
  const victimHeld = held(victim)
  const victimTransport = before.peers.find(p => p.short === victimId)?.transport ?? '-'
  const hwmReset = resetHwm(owner.proc.pid)
  log(`${label}: SIGKILL ${victim.name} (${victimId}, ${victimTransport}), holding ${(victimHeld / MiB).toFixed(1)} MiB of the owner's shards`)
  const t0 = performance.now()
  await swarm.stop(victim, 'SIGKILL')
  let lostAt: number | null = null
  let goneAt: number | null = null
  const after = await pollOwner(owner, `${label}: ${victimId} lost, then full redundancy`, s => {
    if (lostAt === null) return false
    return s.health.files > 0 && s.health.full === s.health.files && s.health.repairing === 0 && s.repair.shardsRebuilt > before.repair.shardsRebuilt
  }, s => {
    const v = s.peers.find(p => p.short === victimId)
    if (goneAt === null && v?.connected !== true) goneAt = performance.now()
    if (lostAt === null && s.peers.find(p => p.short === victimId)?.state === 'lost') {
      lostAt = performance.now()
      log(`${label}: ${victimId} lost after ${((lostAt - t0) / 1000).toFixed(2)} s; health ${JSON.stringify(s.health)}`)
    }
  })
  const t1 = performance.now()
  const detect = (lostAt! - t0) / 1000
  const run: RepairRun = {
    victim: victimId,
    victimHeldBytes: victimHeld,
    victimTransport,
    disconnectSeconds: goneAt === null ? null : (goneAt - t0) / 1000,
    detectSeconds: detect,
    repairSeconds: (t1 - lostAt!) / 1000,
    totalSeconds: (t1 - t0) / 1000,
    bytesSent: after.repair.bytesSent - before.repair.bytesSent,
    bytesFetched: after.repair.bytesFetched - before.repair.bytesFetched,
    shardsRebuilt: after.repair.shardsRebuilt - before.repair.shardsRebuilt,
    blocksRepaired: after.repair.repaired - before.repair.repaired,
    failedAttempts: after.repair.failed - before.repair.failed,
    peakRssBytes: hwmReset ? vmHwm(owner.proc.pid) : null
  }
  const left = after.peers.find(p => p.short === victimId)?.holdsForMe ?? 0
  log(`${label}: full redundancy ${run.repairSeconds.toFixed(2)} s after the loss (${run.totalSeconds.toFixed(2)} s after the kill): ${run.shardsRebuilt} shards / ${(run.bytesSent / MiB).toFixed(1)} MiB rebuilt, ${(run.bytesFetched / MiB).toFixed(1)} MiB fetched; ${(left / MiB).toFixed(1)} MiB still recorded on ${victimId}`)
  return run
}

export async function runRepairBench (): Promise<void> {
  const mib = dataMiB()
  const base = await fsp.mkdtemp(join(tmpdir(), 'dustbox-repair-'))
  const folder = join(base, 'data')
  const swarm = new LocalSwarm(join(base, 'swarm'))
  const unhook = killOnSignal(swarm, base)
  let bytes = 0
  let ingestSeconds = 0
  let fullSeconds = 0
  let ingestSent = 0
  let ingestRss: number | null = null
  let overallRss: number | null = null
  let k = 0
  let m = 0
  const runs: RepairRun[] = []
  let errorLines: string[] = []
  try {
    log(`data in ${folder}: ${FILES} files, ${mib} MiB in all`)
    bytes = await makeData(folder, mib * MiB)
    syncDisks()

    log(`swarm: bootstrap + ${PEERS} storage peers (donating ${DONATE} each)`)
    await swarm.startBootstrap()
    const peers = await swarm.startPeers(PEERS, { donate: DONATE, tunables: TUNABLES })
    const ids = new Map<SwarmChild, string>()
    for (const p of peers) ids.set(p, (await agentStatus(p.home)).identity.slice(0, 8))

    log(`owner: starting on ${folder} (${(bytes / MB).toFixed(0)} MB)`)
    const t0 = performance.now()
    const owner = await swarm.startAgent({ name: 'owner', home: join(base, 'owner'), folders: [folder], extraArgs: ['--settle', '0.2', '--cache', '0'], tunables: TUNABLES })
    let stubbedAt: number | null = null
    const placed = await pollOwner(owner, 'initial placement: every file stubbed, at full redundancy', s => {
      if (stubbedAt === null && stubbed(s) >= FILES) {
        stubbedAt = performance.now()
        ingestSent = s.placement.bytesSent
        log(`initial placement: all ${FILES} files stubbed in ${((stubbedAt - t0) / 1000).toFixed(2)} s`)
      }
      return stubbedAt !== null && s.health.files === FILES && s.health.full === s.health.files
    })
    fullSeconds = (performance.now() - t0) / 1000
    ingestSeconds = (stubbedAt! - t0) / 1000
    k = placed.redundancy.k
    m = placed.redundancy.m
    ingestRss = vmHwm(owner.proc.pid)
    overallRss = ingestRss
    log(`initial placement: full redundancy after ${fullSeconds.toFixed(2)} s; shards on ${placed.peers.filter(p => p.holdsForMe > 0).length} peers`)

    for (const label of ['repair 1', 'repair 2']) {
      const r = await killAndRepair(label, swarm, owner, peers, ids)
      runs.push(r)
      const h = vmHwm(owner.proc.pid)
      if (h !== null) overallRss = Math.max(overallRss ?? 0, h)
    }
    errorLines = owner.output.filter(l => /error|fail|exception|warn/i.test(l))
  } finally {
    try { await swarm.close() } catch (err) { log(`swarm close: ${(err as Error).message}`) }
    await fsp.rm(base, { recursive: true, force: true, maxRetries: 3 })
    unhook()
  }
  printReport({ mib, bytes, k, m, ingestSeconds, fullSeconds, ingestSent, ingestRss, overallRss, runs, errorLines })
}

interface Report {
  mib: number
  bytes: number
  k: number
  m: number
  ingestSeconds: number
  fullSeconds: number
  ingestSent: number
  ingestRss: number | null
  overallRss: number | null
  runs: RepairRun[]
  errorLines: string[]
}

function printReport (r: Report): void {
  const [first, second] = r.runs
  const mbps = (run: RepairRun): number => run.bytesSent / MB / run.repairSeconds
  const rss = (x: number | null): string => x === null ? '-' : cell(x / MiB, 0)
  process.stdout.write(`repair: ${r.mib} MiB in ${FILES} files, redundancy ${r.k}+${r.m}, ${PEERS} storage peers; a peer is declared lost after ${LOST_AFTER_MS / 1000} s of absence here (tunable lostAfterMs; the default is 3 days), so these figures measure the repair, not the detection\n`)
  process.stdout.write(table(
    ['phase', 'killed', 'via', 'held MiB', 'closed s', 'detect s', 'repair s', 'total s', 'shards', 'rebuilt MiB', 'fetched MiB', 'MB/s', 'RSS MiB'],
    r.runs.map((run, i) => [`repair ${i + 1}`, run.victim, run.victimTransport, cell(run.victimHeldBytes / MiB), cell(run.disconnectSeconds, 2), cell(run.detectSeconds, 2), cell(run.repairSeconds, 2), cell(run.totalSeconds, 2),
      String(run.shardsRebuilt), cell(run.bytesSent / MiB), cell(run.bytesFetched / MiB), cell(mbps(run)), rss(run.peakRssBytes)])
  ) + '\n')
  process.stdout.write(`initial placement (reference): ${(r.bytes / MB).toFixed(0)} MB stubbed in ${r.ingestSeconds.toFixed(2)} s = ${(r.bytes / MB / r.ingestSeconds).toFixed(1)} MB/s (${(r.ingestSent / MB).toFixed(0)} MB of shards sent), full redundancy reported after ${r.fullSeconds.toFixed(2)} s; owner peak RSS ${rss(r.ingestRss)} MiB during ingest, ${rss(r.overallRss)} MiB over the whole run\n`)
  process.stdout.write(`via = the owner's channel to the killed peer; closed = SIGKILL → the owner reports it not connected; detect = SIGKILL → the owner reports the peer 'lost'; repair = lost → every file at full redundancy, nothing queued; MB/s = rebuilt shard bytes sent / repair s; RSS = owner VmHWM during that phase\n`)
  for (const [i, run] of r.runs.entries()) {
    if (run.failedAttempts > 0) process.stdout.write(`repair ${i + 1}: ${run.failedAttempts} block repair attempts failed and were retried\n`)
  }
  if (r.errorLines.length > 0) process.stdout.write(`owner: ${r.errorLines.length} error/warning lines, first: ${r.errorLines.slice(0, 3).join(' | ')}\n`)
  printJsonLine({
    bench: 'repair',
    data_MiB: r.mib,
    k: r.k,
    m: r.m,
    peers: PEERS,
    lost_after_s: LOST_AFTER_MS / 1000,
    detect_s: round(first.detectSeconds, 2),
    repair_s: round(first.repairSeconds, 2),
    total_s: round(first.totalSeconds, 2),
    rebuilt_MiB: round(first.bytesSent / MiB),
    repair_MBps: round(mbps(first)),
    ingest_MBps: round(r.bytes / MB / r.ingestSeconds),
    owner_peak_rss_MiB: r.overallRss === null ? null : round(r.overallRss / MiB, 0),
    second_repair_s: round(second.repairSeconds, 2),
    fetched_MiB: round(first.bytesFetched / MiB),
    shards_rebuilt: first.shardsRebuilt,
    via: first.victimTransport,
    closed_s: round(first.disconnectSeconds, 2),
    second_detect_s: round(second.detectSeconds, 2),
    second_via: second.victimTransport,
    second_closed_s: round(second.disconnectSeconds, 2),
    second_total_s: round(second.totalSeconds, 2),
    second_rebuilt_MiB: round(second.bytesSent / MiB),
    second_repair_MBps: round(mbps(second)),
    owner_error_lines: r.errorLines.length
  })
}
