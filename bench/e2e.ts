// The end-to-end benchmark: a real local swarm (bootstrap DHT node + 6 storage peers, all
// `dustbox` processes on 127.0.0.1) and an owner agent started on a folder that already holds the
// corpus, so its startup walk ingests everything: chunk, compress, encrypt, erasure-code, place on
// peers, verify, replace by `.f` stubs. Two runs, each with a fresh owner home and folder:
//   big   = 4 files of random data (192 MiB each by default, DUSTBOX_BENCH_E2E_MB = total MiB),
//   small = 20,000 files of 1-16 KiB, half text-like, half random (DUSTBOX_BENCH_E2E_SMALL = count).
// Timed from the owner's spawn to the status reporting every file stubbed (polled every 200 ms).
// Then the big stubs are opened through the control API (cache 0: every block comes from peers),
// timed, and checked byte-exact. Also: placement.bytesSent per input byte, the owner's peak RSS
// (VmHWM), a plain fs.cp of the same corpus (the disk's speed), and syncthing as the reference
// (run where installed; otherwise the anchors' figures). Everything is removed at the end.

import { vmHwm } from './proc.js'
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { promises as fsp, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { LocalSwarm, agentStatus, sleep, type SwarmChild } from '../agent/swarm.js'
import { ControlClient } from '../agent/control-client.js'
import type { AgentStatus } from '../agent/status.js'
import { MB, MiB, cell, printJsonLine, round, table } from './report.js'
import { sha256File, syncDisks } from './tree.js'

/** syncthing 1.19 A→B on this machine (../shared/anchors/README.md). */
export const SYNCTHING_BIG_S_REF = 5.0
export const SYNCTHING_BIG_MBPS_REF = 215
export const SYNCTHING_SMALL_S_REF = 44.5
export const SYNCTHING_SMALL_FILES_S_REF = 450

const PEERS = 6
const BIG_FILES = 4
const SMALL_MIN = 1024
const SMALL_MAX = 16 * 1024
const SMALL_PER_DIR = 100
const POLL_MS = 200
const WAIT_MS = 20 * 60_000
const OPEN_TIMEOUT_MS = 600_000
const PIECE = 8 << 20

const log = (s: string): void => { process.stderr.write(`# ${s}\n`) }

function envInt (name: string, dflt: number): number {
  const v = process.env[name]
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${JSON.stringify(v)}: want a positive integer`)
  return n
}

interface SetInfo { files: number, bytes: number, hashes: Map<string, string> }

/** Random bytes fast: an AES-128-CTR keystream with a random key. */
function keystream (): (n: number) => Buffer {
  const c = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16))
  return n => c.update(Buffer.alloc(n))
}

const WORDS = 'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when if so no out up into do can more time about other than then'.split(' ')

function textLike (n: number): Buffer {
  const parts: string[] = []
  let len = 0
  while (len < n) {
    const w = WORDS[Math.floor(Math.random() * WORDS.length)] + (Math.random() < 0.08 ? '.\n' : ' ')
    parts.push(w)
    len += w.length
  }
  return Buffer.from(parts.join('')).subarray(0, n)
}

async function makeBig (dir: string, totalBytes: number): Promise<SetInfo> {
  await fsp.mkdir(dir, { recursive: true })
  const per = Math.max(4096, Math.floor(totalBytes / BIG_FILES / 4096) * 4096)
  const hashes = new Map<string, string>()
  for (let i = 0; i < BIG_FILES; i++) {
    const path = join(dir, `big-${i}.bin`)
    const fh = await fsp.open(path, 'w')
    const rnd = keystream()
    const h = createHash('sha256')
    try {
      for (let left = per; left > 0; left -= PIECE) {
        const b = rnd(Math.min(PIECE, left))
        h.update(b)
        await fh.write(b)
      }
    } finally { await fh.close() }
    hashes.set(path, h.digest('hex'))
  }
  return { files: BIG_FILES, bytes: per * BIG_FILES, hashes }
}

async function makeSmall (dir: string, count: number): Promise<SetInfo> {
  const rnd = keystream()
  let bytes = 0
  for (let i = 0; i < count; i++) {
    const sub = join(dir, `d${String(Math.floor(i / SMALL_PER_DIR)).padStart(3, '0')}`)
    if (i % SMALL_PER_DIR === 0) await fsp.mkdir(sub, { recursive: true })
    const n = SMALL_MIN + Math.floor(Math.random() * (SMALL_MAX - SMALL_MIN + 1))
    const text = i % 2 === 0
    await fsp.writeFile(join(sub, `f${i}.${text ? 'txt' : 'bin'}`), text ? textLike(n) : rnd(n))
    bytes += n
  }
  return { files: count, bytes, hashes: new Map() }
}


const sum = (s: AgentStatus, state: string): number => s.folders.reduce((a, f) => a + (f.files[state] ?? 0), 0)

interface IngestRun {
  set: 'big' | 'small'
  files: number
  bytes: number
  seconds: number
  bytesSent: number
  shardsSent: number
  peakRssBytes: number | null
  rehydrateSeconds: number | null
  verified: number
  peersConnected: number
  errorLines: string[]
}

async function ingestRun (swarm: LocalSwarm, base: string, set: 'big' | 'small', folder: string, info: SetInfo): Promise<IngestRun> {
  const home = join(base, `owner-${set}`)
  log(`${set}: starting the owner on ${folder} (${info.files} files, ${(info.bytes / MB).toFixed(0)} MB)`)
  const t0 = performance.now()
  const owner: SwarmChild = await swarm.startAgent({ name: `owner-${set}`, home, folders: [folder], extraArgs: ['--settle', '0.2', '--cache', '0'] })
  const deadline = Date.now() + WAIT_MS
  let st: AgentStatus | null = null
  let lastLog = 0
  let lastFailed = 0
  for (;;) {
    if (owner.proc.exitCode !== null) throw new Error(`owner-${set} exited (${owner.proc.exitCode}): ${owner.output.slice(-5).join(' | ')}`)
    try { st = await agentStatus(home) } catch (err) { log(`${set}: status failed: ${(err as Error).message}`) }
    if (st !== null) {
      const done = sum(st, 'stubbed')
      const failed = sum(st, 'failed')
      if (failed !== lastFailed) { log(`${set}: ${failed} files failed`); lastFailed = failed }
      if (done >= info.files) break
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now()
        log(`${set}: ${done}/${info.files} stubbed after ${((performance.now() - t0) / 1000).toFixed(1)} s, queue ${JSON.stringify(st.queue)}, sent ${(st.placement.bytesSent / MB).toFixed(0)} MB, peers ${st.peers.filter(p => p.connected).length}${st.placement.waiting !== null ? `, waiting: ${st.placement.waiting}` : ''}`)
      }
    }
    if (Date.now() > deadline) throw new Error(`${set}: not all stubbed in ${WAIT_MS / 1000} s (${st === null ? '?' : sum(st, 'stubbed')}/${info.files}); last output: ${owner.output.slice(-5).join(' | ')}`)
    await sleep(POLL_MS)
  }
  const seconds = (performance.now() - t0) / 1000
  log(`${set}: all ${info.files} stubbed in ${seconds.toFixed(2)} s`)
  let rehydrateSeconds: number | null = null
  let verified = 0
  if (set === 'big') {
    const client = await ControlClient.connect(home)
    try {
      const r0 = performance.now()
      for (const path of info.hashes.keys()) {
        const r = await client.call<{ path: string, size: number }>('open', { path: `${path}.f` }, { timeoutMs: OPEN_TIMEOUT_MS })
        if (r.path !== path) throw new Error(`open ${path}.f restored ${r.path}`)
      }
      rehydrateSeconds = (performance.now() - r0) / 1000
    } finally { await client.close() }
    log(`big: rehydrated ${info.files} files in ${rehydrateSeconds.toFixed(2)} s`)
    for (const [path, want] of info.hashes) {
      if (await sha256File(path) !== want) throw new Error(`rehydrated ${path} does not match what was written`)
      verified++
    }
  }
  const peakRssBytes = vmHwm(owner.proc.pid)
  const errorLines = owner.output.filter(l => /error|fail|exception|warn/i.test(l))
  await swarm.stop(owner)
  return {
    set,
    files: info.files,
    bytes: info.bytes,
    seconds,
    bytesSent: st!.placement.bytesSent,
    shardsSent: st!.placement.shardsSent,
    peakRssBytes,
    rehydrateSeconds,
    verified,
    peersConnected: st!.peers.filter(p => p.connected).length,
    errorLines
  }
}

function onPath (bin: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); return true } catch { return false }
}

/** syncthing A→B, as ../shared/anchors/syncthing.sh drives it (one rep per set); seconds per set or null. */
function runSyncthing (corpusRoot: string, scratch: string, sets: Record<'big' | 'small', SetInfo>): Record<'big' | 'small', number> | null {
  const driver = join(process.cwd(), '..', 'shared', 'anchors', 'st_driver.py')
  const out: Record<string, number> = {}
  for (const s of ['big', 'small'] as const) {
    const work = join(scratch, `st-${s}`)
    const tsv = join(scratch, `st-${s}.tsv`)
    try {
      execFileSync('/usr/bin/python3', [driver, '--set', s, '--src', join(corpusRoot, s), '--work', work, '--mode', 'pipelined', '--rep', '1',
        '--bytes', String(sets[s].bytes), '--files', String(sets[s].files), '--tsv', tsv, '--logdir', scratch, '--scratch-fs', 'ext4', '--base-port', '28384'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: WAIT_MS })
      const rows = readFileSync(tsv, 'utf8').trim().split('\n').map(l => l.split('\t'))
      const secs = Number(rows[rows.length - 1][6]) // wall_s, as in anchors/common.sh
      if (!Number.isFinite(secs)) return null
      out[s] = secs
    } catch (err) {
      log(`syncthing ${s} failed: ${(err as Error).message}`)
      return null
    } finally { rmSync(work, { recursive: true, force: true }) }
  }
  return out as Record<'big' | 'small', number>
}

export async function runE2eBench (): Promise<void> {
  const bigMiB = envInt('DUSTBOX_BENCH_E2E_MB', BIG_FILES * 192)
  const smallCount = envInt('DUSTBOX_BENCH_E2E_SMALL', 20_000)
  const base = await fsp.mkdtemp(join(tmpdir(), 'dustbox-e2e-'))
  const corpus = join(base, 'corpus')
  const swarm = new LocalSwarm(join(base, 'swarm'))
  const cleanup = (): void => {
    for (const c of swarm.children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL')
    rmSync(base, { recursive: true, force: true })
    process.exit(130)
  }
  process.once('SIGINT', cleanup)
  process.once('SIGTERM', cleanup)
  const runs: IngestRun[] = []
  let cpSeconds = 0
  let cpBytes = 0
  let syncthing: Record<'big' | 'small', number> | null = null
  const haveSyncthing = onPath('syncthing')
  try {
    log(`corpus in ${corpus}: big ${BIG_FILES} files / ${bigMiB} MiB, small ${smallCount} files of ${SMALL_MIN}-${SMALL_MAX} B`)
    const g0 = performance.now()
    const big = await makeBig(join(corpus, 'big'), bigMiB * MiB)
    const small = await makeSmall(join(corpus, 'small'), smallCount)
    syncDisks()
    log(`corpus made in ${((performance.now() - g0) / 1000).toFixed(1)} s: ${((big.bytes + small.bytes) / MB).toFixed(0)} MB`)

    // The disk's speed: a plain copy of the same corpus (page cache warm, as for the agent).
    const c0 = performance.now()
    await fsp.cp(corpus, join(base, 'cp'), { recursive: true })
    syncDisks()
    cpSeconds = (performance.now() - c0) / 1000
    cpBytes = big.bytes + small.bytes
    await fsp.rm(join(base, 'cp'), { recursive: true, force: true })
    log(`fs.cp + sync: ${cpSeconds.toFixed(2)} s`)

    if (haveSyncthing) {
      log('syncthing: running the anchor driver (pipelined, 1 rep per set)')
      syncthing = runSyncthing(corpus, join(base, 'st'), { big, small })
    }

    log(`swarm: bootstrap + ${PEERS} peers`)
    await swarm.startBootstrap()
    await swarm.startPeers(PEERS)
    runs.push(await ingestRun(swarm, base, 'big', join(corpus, 'big'), big))
    runs.push(await ingestRun(swarm, base, 'small', join(corpus, 'small'), small))
  } finally {
    try { await swarm.close() } catch (err) { log(`swarm close: ${(err as Error).message}`) }
    await fsp.rm(base, { recursive: true, force: true })
    process.removeListener('SIGINT', cleanup)
    process.removeListener('SIGTERM', cleanup)
  }
  printReport(runs, cpSeconds, cpBytes, haveSyncthing, syncthing)
}

function printReport (runs: IngestRun[], cpSeconds: number, cpBytes: number, haveSyncthing: boolean, st: Record<'big' | 'small', number> | null): void {
  const big = runs.find(r => r.set === 'big')!
  const small = runs.find(r => r.set === 'small')!
  const bigMBps = big.bytes / MB / big.seconds
  const smallFps = small.files / small.seconds
  const hydMBps = big.rehydrateSeconds === null ? null : big.bytes / MB / big.rehydrateSeconds
  const stBig = st === null ? null : big.bytes / MB / st.big
  const stSmall = st === null ? null : small.files / st.small
  const rows = runs.map(r => [
    'dustbox', 'ingest', r.set, String(r.files), cell(r.bytes / MB, 0), cell(r.seconds, 2), cell(r.bytes / MB / r.seconds), cell(r.files / r.seconds, 0),
    cell(r.bytesSent / r.bytes, 2), r.peakRssBytes === null ? '-' : cell(r.peakRssBytes / MiB, 0), String(r.peersConnected)
  ])
  if (big.rehydrateSeconds !== null) rows.push(['dustbox', 'open', 'big', String(big.files), cell(big.bytes / MB, 0), cell(big.rehydrateSeconds, 2), cell(hydMBps), '-', '-', '-', '-'])
  rows.push(['fs.cp', 'copy', 'all', String(big.files + small.files), cell(cpBytes / MB, 0), cell(cpSeconds, 2), cell(cpBytes / MB / cpSeconds), cell((big.files + small.files) / cpSeconds, 0), '-', '-', '-'])
  if (st !== null) {
    rows.push(['syncthing', 'A→B', 'big', String(big.files), cell(big.bytes / MB, 0), cell(st.big, 2), cell(stBig), '-', '-', '-', '-'])
    rows.push(['syncthing', 'A→B', 'small', String(small.files), cell(small.bytes / MB, 0), cell(st.small, 2), cell(small.bytes / MB / st.small), cell(stSmall, 0), '-', '-', '-'])
  }
  process.stdout.write(table(['tool', 'op', 'set', 'files', 'MB', 's', 'MB/s', 'files/s', 'sent/in', 'RSS MiB', 'peers'], rows) + '\n')
  if (st === null) {
    process.stdout.write(haveSyncthing
      ? `syncthing: run failed; reference figures from ../shared/anchors (${SYNCTHING_BIG_S_REF.toFixed(1)} s / ${SYNCTHING_BIG_MBPS_REF} MB/s big set, ${SYNCTHING_SMALL_S_REF} s / ${SYNCTHING_SMALL_FILES_S_REF} files/s small set on this machine)\n`
      : `syncthing: not installed; reference figures from ../shared/anchors (${SYNCTHING_BIG_S_REF.toFixed(1)} s / ${SYNCTHING_BIG_MBPS_REF} MB/s big set, ${SYNCTHING_SMALL_S_REF} s / ${SYNCTHING_SMALL_FILES_S_REF} files/s small set on this machine)\n`)
  }
  const refBig = stBig ?? SYNCTHING_BIG_MBPS_REF
  const refSmall = stSmall ?? SYNCTHING_SMALL_FILES_S_REF
  process.stdout.write(`vs syncthing${st === null ? ' (reference)' : ''}: big ${(bigMBps / refBig).toFixed(2)}x, small ${(smallFps / refSmall).toFixed(2)}x; vs fs.cp: big ${(bigMBps / (cpBytes / MB / cpSeconds)).toFixed(2)}x\n`)
  for (const r of runs) {
    if (r.errorLines.length > 0) process.stdout.write(`owner-${r.set}: ${r.errorLines.length} error/warning lines, first: ${r.errorLines.slice(0, 3).join(' | ')}\n`)
  }
  printJsonLine({
    bench: 'e2e',
    peers: PEERS,
    big_files: big.files,
    big_MB: round(big.bytes / MB, 0),
    big_seconds: round(big.seconds, 2),
    big_MBps: round(bigMBps),
    big_sent_per_input_byte: round(big.bytesSent / big.bytes, 3),
    rehydrate_seconds: round(big.rehydrateSeconds, 2),
    rehydrate_MBps: round(hydMBps),
    rehydrate_verified: big.verified,
    small_files: small.files,
    small_MB: round(small.bytes / MB, 0),
    small_seconds: round(small.seconds, 2),
    small_MBps: round(small.bytes / MB / small.seconds),
    small_files_s: round(smallFps, 0),
    small_sent_per_input_byte: round(small.bytesSent / small.bytes, 3),
    owner_peak_rss_MiB_big: big.peakRssBytes === null ? null : round(big.peakRssBytes / MiB, 0),
    owner_peak_rss_MiB_small: small.peakRssBytes === null ? null : round(small.peakRssBytes / MiB, 0),
    cp_MBps: round(cpBytes / MB / cpSeconds),
    syncthing_installed: haveSyncthing,
    syncthing_big_MBps: round(stBig),
    syncthing_small_files_s: round(stSmall, 0),
    syncthing_big_MBps_ref: SYNCTHING_BIG_MBPS_REF,
    syncthing_big_seconds_ref: SYNCTHING_BIG_S_REF,
    syncthing_small_files_s_ref: SYNCTHING_SMALL_FILES_S_REF,
    syncthing_small_seconds_ref: SYNCTHING_SMALL_S_REF,
    ratio_big: round(bigMBps / refBig, 3),
    ratio_small: round(smallFps / refSmall, 3),
    owner_error_lines: big.errorLines.length + small.errorLines.length
  })
}
