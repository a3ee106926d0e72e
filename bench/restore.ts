// The restore bench: restore from the key alone, as `dustbox restore` does it on a new machine. A
// real local swarm (bootstrap DHT node + 6 storage peers, `dustbox` processes on 127.0.0.1) and an
// owner agent started on a folder holding N small files (default 2,000 of 1–64 KiB, random data,
// Unicode names, nested folders) and one big file (default 256 MiB), redundancy 4+2. Once every file
// is stubbed and the folder index is published (control `index {publish:true}`), the owner's home
// seals its key backup (`dustbox setup`) and the owner stops for good. Then, twice, a fresh home gets
// nothing but that backup (`dustbox setup --import-backup`) and runs `dustbox restore --to DIR`:
//   stubs   = without --hydrate: every file comes back as a .f stub (files/s);
//   hydrate = with --hydrate: every file comes back byte-exact (MB/s; checked by sha256).
// restore's result carries no timings, so the phases are observed from outside, on the restoring
// process (`dustbox restore` runs its own agent in-process when none runs in the home):
//   agent start   = spawn → its "looking up the folder index" line (agent ready: DB, net, DHT);
//   find root     = that line → DIR created (DHT pointer, root from a holder, index chunks fetched
//                   and decrypted; writeTree's first step is mkdir DIR), polled every 10 ms;
//   record index  = DIR created → first stub's birth time (folders made, placements into the DB);
//   write stubs   = → last stub's ctime (stubs run) / first hydrated file's birth time (hydrate run:
//                   hydration starts after the last stub; a hydrated file keeps its temp file's inode);
//   hydrate       = first hydrated file's birth → last hydrated file's ctime (statx times, ms);
//   close         = → the process's exit (agent close, settings saved, result printed).
// Peak RSS is the restoring process's VmHWM, read from /proc every 100 ms until it exits; CPU s from
// /proc/PID/stat. References in the same run: the owner's ingest (spawn → every file stubbed) of
// the same data, and a plain fs.cp of the source tree (page cache; then `sync`) as the floor.
// Sizes: `--files N --mib M` (or --files=N, DUSTBOX_BENCH_FILES / _MIB); `--files 200
// --mib 32` is a quick run. DUSTBOX_BENCH_RESTORE_TRACE=1 logs, once a second during each restore,
// the stubs and files on disk and what the restoring agent reports (fetched bytes, peers) to stderr.
// Every wait is bounded; temp dirs and child processes are removed.

import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, promises as fsp, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative } from 'node:path'
import { BIN, LocalSwarm, agentStatus, sleep, type SwarmChild } from '../agent/swarm.js'
import { ControlClient } from '../agent/control-client.js'
import type { AgentStatus } from '../agent/status.js'
import { MB, MiB, cell, printJsonLine, round, table } from './report.js'
import { FILES, MIB } from './config.js'
import { listFiles, prng, sha256File, syncDisks } from './tree.js'

const PEERS = 6
const SMALL_MIN = 1024
const SMALL_MAX = 64 * 1024
const PER_DIR = 25
const POLL_MS = 200
const PIECE = 8 << 20
const PASSPHRASE = 'correct horse battery staple ü'
/** Small Argon2id parameters (the seal and unseal are not what is measured). */
const KDF_TUNABLES = JSON.stringify({ kdfOpslimit: 1, kdfMemlimitKib: 64 })
const CLEARED_ENV = ['XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_STATE_HOME', 'XDG_RUNTIME_DIR', 'DBUS_SESSION_BUS_ADDRESS', 'DUSTBOX_HOME', 'DUSTBOX_TUNABLES', 'DISPLAY', 'WAYLAND_DISPLAY']
const CLK_TCK = 100

const log = (s: string): void => { process.stderr.write(`# ${s}\n`) }

// ---- options: `--files N --mib M` (bench/config.ts) ---------------------------------------------

// ---- the data ---------------------------------------------------------------------------------


const TOP = ['Ünïcödé', '日本語のフォルダ', 'émoji 🎉', 'Ελληνικά', 'plain', 'space name', 'Кириллица']
const MID = ['Fotos 2024', 'Übersicht', 'données', '写真']
const FILE = ['datei ✓', 'ファイル', 'fichier é', 'файл', 'photo 📷', 'notes']
const EXT = ['bin', 'txt', 'jpg', 'dat']

/** Relative path of small file i: 1 to 3 levels of folders, PER_DIR files per folder. */
function smallRel (i: number): string {
  const j = Math.floor(i / PER_DIR)
  let dir = `${TOP[j % TOP.length]} ${j % 5}`
  if (j % 3 >= 1) dir += `/${MID[j % MID.length]} ${j}`
  if (j % 3 === 2) dir += `/tief ${j % 2}`
  return `${dir}/${FILE[i % FILE.length]} ${i}.${EXT[i % EXT.length]}`
}

const BIG_REL = 'große Datei 🎞.bin'

interface Tree { files: number, bytes: number, smallBytes: number, bigBytes: number, dirs: number, hashes: Map<string, string> }

async function makeTree (root: string, files: number, mib: number): Promise<Tree> {
  const c = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16))
  const rnd = prng(0x5eed)
  const hashes = new Map<string, string>()
  const dirs = new Set<string>()
  let smallBytes = 0
  for (let i = 0; i < files; i++) {
    const rel = smallRel(i)
    const size = SMALL_MIN + Math.floor(rnd() * (SMALL_MAX - SMALL_MIN + 1))
    const data = c.update(Buffer.alloc(size))
    const d = dirname(rel)
    if (!dirs.has(d)) { await fsp.mkdir(join(root, d), { recursive: true }); dirs.add(d) }
    await fsp.writeFile(join(root, rel), data)
    hashes.set(rel, createHash('sha256').update(data).digest('hex'))
    smallBytes += size
  }
  const bigBytes = mib * MiB
  const h = createHash('sha256')
  const fh = await fsp.open(join(root, BIG_REL), 'w')
  try {
    for (let left = bigBytes; left > 0; left -= PIECE) {
      const b = c.update(Buffer.alloc(Math.min(PIECE, left)))
      h.update(b)
      await fh.write(b)
    }
  } finally { await fh.close() }
  hashes.set(BIG_REL, h.digest('hex'))
  return { files: files + 1, bytes: smallBytes + bigBytes, smallBytes, bigBytes, dirs: dirs.size, hashes }
}

// ---- processes ---------------------------------------------------------------------------------

/** The environment of a user's shell that has never seen dustbox: its own HOME, no session bus. */
async function sandboxEnv (dir: string): Promise<{ env: NodeJS.ProcessEnv, passFile: string }> {
  const userHome = join(dir, 'home of Zoë')
  const run = join(dir, 'run')
  await fsp.mkdir(userHome, { recursive: true })
  await fsp.mkdir(run, { recursive: true, mode: 0o700 })
  const passFile = join(dir, 'passphrase.txt')
  await fsp.writeFile(passFile, PASSPHRASE + '\n', { mode: 0o600 })
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const k of CLEARED_ENV) delete env[k]
  Object.assign(env, { HOME: userHome, XDG_RUNTIME_DIR: run, DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(run, 'no-bus')}`, DUSTBOX_TUNABLES: KDF_TUNABLES, NODE_ENV: 'production' })
  return { env, passFile }
}

/** Children of this bench outside the swarm (setup, restore): killed on exit or signal. */
const loose = new Set<ChildProcess>()

/** `dustbox ARGS` to completion, bounded. */
async function runCli (args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number, out: string, err: string }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    loose.add(p)
    let out = ''
    let err = ''
    p.stdout.on('data', d => { out += String(d) })
    p.stderr.on('data', d => { err += String(d) })
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`dustbox ${args[0]} did not finish in ${timeoutMs / 1000} s: ${err.slice(-2000)}`)) }, timeoutMs)
    p.on('error', e => { clearTimeout(timer); loose.delete(p); reject(e) })
    p.on('close', code => { clearTimeout(timer); loose.delete(p); resolve({ code: code ?? -1, out, err }) })
  })
}

interface ProcSample { hwm: number | null, rss: number | null, cpuS: number | null }

function procSample (pid: number | undefined): ProcSample {
  if (pid === undefined) return { hwm: null, rss: null, cpuS: null }
  let hwm: number | null = null
  let rss: number | null = null
  let cpuS: number | null = null
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8')
    const h = /^VmHWM:\s+(\d+)\s+kB/m.exec(s)
    const r = /^VmRSS:\s+(\d+)\s+kB/m.exec(s)
    if (h !== null) hwm = Number(h[1]) * 1024
    if (r !== null) rss = Number(r[1]) * 1024
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
    cpuS = (Number(f[11]) + Number(f[12])) / CLK_TCK // utime, stime: fields 14 and 15
  } catch {}
  return { hwm, rss, cpuS }
}

const stubbedCount = (s: AgentStatus): number => s.folders.reduce((a, f) => a + (f.files.stubbed ?? 0), 0)

/** Poll the owner until `done` holds; bounded. */
async function pollOwner (owner: SwarmChild, what: string, timeoutMs: number, done: (s: AgentStatus) => boolean): Promise<AgentStatus> {
  const deadline = Date.now() + timeoutMs
  let last: AgentStatus | null = null
  let lastLog = Date.now()
  for (;;) {
    if (owner.proc.exitCode !== null || owner.proc.signalCode !== null) throw new Error(`the owner exited while waiting for ${what}: ${owner.output.slice(-8).join(' | ')}`)
    try {
      last = await agentStatus(owner.home)
      if (done(last)) return last
    } catch (err) { log(`${what}: status failed: ${(err as Error).message}`) }
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now()
      log(`${what}: stubbed ${last === null ? '?' : stubbedCount(last)}, queue ${JSON.stringify(last?.queue)}, health ${JSON.stringify(last?.health)}, index ${JSON.stringify(last?.index)}`)
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; queue ${JSON.stringify(last?.queue)}, index ${JSON.stringify(last?.index)}; owner log: ${owner.output.slice(-8).join(' | ')}`)
    await sleep(POLL_MS)
  }
}

// ---- one restore ---------------------------------------------------------------------------------

interface RestoreRun {
  hydrate: boolean
  code: number
  summary: string
  refused: string[]
  retries: number
  /** Other lines the restoring process wrote to stderr. */
  stderr: string[]
  files: number
  hydrated: number | null
  /** Seconds from the spawn. */
  readyS: number | null
  toS: number | null
  firstStubS: number | null
  stubsEndS: number | null
  hydrateEndS: number | null
  exitS: number
  peakRss: number | null
  cpuS: number | null
  bigFileS: number | null
  /** Files on disk, checked: stubs (stubs run) or byte-exact files (hydrate run). */
  checked: number
  problems: string[]
}

async function restoreOnce (o: { hydrate: boolean, home: string, to: string, backup: string, env: NodeJS.ProcessEnv, passFile: string, bootstrap: string, tree: Tree, timeoutMs: number }): Promise<RestoreRun> {
  const label = o.hydrate ? 'restore --hydrate' : 'restore (stubs)'
  const env = { ...o.env, DUSTBOX_HOME: o.home }
  const imp = await runCli(['setup', '--yes', '--port', '0', '--no-desktop', '--no-service', '--import-backup', o.backup, '--passphrase-file', o.passFile], env, 120_000)
  if (imp.code !== 0) throw new Error(`setup --import-backup failed (${imp.code}): ${imp.err.slice(-2000)}`)
  syncDisks()
  log(`${label}: new home ${o.home} made from the key backup alone; restoring into ${o.to}`)

  const args = ['restore', '--to', o.to, '--bootstrap', o.bootstrap, '--host', '127.0.0.1', '--port', '0']
  if (o.hydrate) args.push('--hydrate')
  const now = (): number => performance.timeOrigin + performance.now()
  const t0 = now()
  const p = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  loose.add(p)
  let out = ''
  let err = ''
  let readyAt: number | null = null
  let toAt: number | null = null
  let sample: ProcSample = { hwm: null, rss: null, cpuS: null }
  p.stdout.on('data', d => {
    out += String(d)
    if (readyAt === null && out.includes('looking up the folder index')) readyAt = now()
  })
  p.stderr.on('data', d => { err += String(d) })
  const watchTo = setInterval(() => { if (toAt === null && existsSync(o.to)) toAt = now() }, 10)
  const watchProc = setInterval(() => {
    const s = procSample(p.pid)
    if (s.hwm !== null) sample = s
  }, 100)
  let lastLog = Date.now()
  const progress = setInterval(() => {
    if (Date.now() - lastLog < 10_000) return
    lastLog = Date.now()
    log(`${label}: ${((now() - t0) / 1000).toFixed(0)} s, ready ${readyAt !== null}, dir ${toAt !== null}, RSS ${sample.rss === null ? '?' : (sample.rss / MiB).toFixed(0)} MiB, peak ${sample.hwm === null ? '?' : (sample.hwm / MiB).toFixed(0)} MiB, cpu ${sample.cpuS ?? '?'} s`)
  }, 1000)
  // DUSTBOX_BENCH_RESTORE_TRACE=1: once a second, what is on disk and what the restoring agent reports.
  let tracing = false
  const trace = process.env.DUSTBOX_BENCH_RESTORE_TRACE === '1'
    ? setInterval(() => {
      if (tracing) return
      tracing = true
      void (async () => {
        let stubsOnDisk = 0
        let plain = 0
        if (existsSync(o.to)) {
          for (const e of await fsp.readdir(o.to, { withFileTypes: true, recursive: true }).catch(() => [])) {
            if (!e.isFile()) continue
            if (e.name.endsWith('.f')) stubsOnDisk++
            else if (!e.name.startsWith('.dustbox-tmp.')) plain++
          }
        }
        const st = await agentStatus(o.home).catch(() => null)
        log(`trace ${label} ${((now() - t0) / 1000).toFixed(1)} s: ${stubsOnDisk} stubs, ${plain} files on disk; agent: fetched ${st === null ? '?' : (st.fetchedBytes / MB).toFixed(1)} MB, peers ${st === null ? '?' : st.peers.filter(x => x.connected).map(x => `${x.short}:${x.transport ?? '-'}`).join(' ')}, transfers ${st?.transfers.length ?? '?'}, cpu ${procSample(p.pid).cpuS ?? '?'} s`)
      })().finally(() => { tracing = false })
    }, 1000)
    : null
  let code: number
  try {
    code = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${label} did not finish in ${o.timeoutMs / 1000} s; stderr: ${err.slice(-2000)}`)) }, o.timeoutMs)
      p.on('error', e => { clearTimeout(timer); reject(e) })
      p.on('close', c => { clearTimeout(timer); resolve(c ?? -1) })
    })
  } finally {
    clearInterval(watchTo)
    clearInterval(watchProc)
    clearInterval(progress)
    if (trace !== null) clearInterval(trace)
    loose.delete(p)
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
  }
  const exitAt = now()
  if (toAt === null && existsSync(o.to)) toAt = exitAt
  const summary = out.split('\n').find(l => l.startsWith('restored ')) ?? ''
  const refused = err.split('\n').filter(l => l.startsWith('refused '))
  const retries = err.split('\n').filter(l => l.includes('asking again')).length
  if (code !== 0) log(`${label}: exit ${code}; stderr: ${err.slice(-2000)}`)

  // What is on disk, and when each file was made (statx birth, ctime).
  const problems: string[] = []
  const sec = (t: number | null): number | null => t === null ? null : (t - t0) / 1000
  let firstStub: number | null = null
  let stubsEnd: number | null = null
  let hydrateEnd: number | null = null
  let bigFileS: number | null = null
  let checked = 0
  const tops = existsSync(o.to) ? await fsp.readdir(o.to) : []
  if (tops.length !== 1) problems.push(`${o.to} holds ${tops.length} folders (${tops.slice(0, 3).join(', ')}), want 1`)
  const root = tops.length === 0 ? o.to : join(o.to, tops[0])
  const files = existsSync(root) ? await listFiles(root) : []
  const rels = files.map(f => relative(root, f))
  if (!o.hydrate) {
    const want = new Set([...o.tree.hashes.keys()].map(r => join(dirname(r), `${basename(r)}.f`)))
    for (const [i, f] of files.entries()) {
      if (!want.has(rels[i])) { problems.push(`unexpected ${rels[i]}`); continue }
      const st = await fsp.stat(f)
      firstStub = Math.min(firstStub ?? Infinity, st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs)
      stubsEnd = Math.max(stubsEnd ?? 0, st.ctimeMs)
      checked++
    }
    if (checked !== want.size) problems.push(`${checked} stubs on disk, want ${want.size}`)
  } else {
    let firstHydrated: number | null = null
    for (const [i, f] of files.entries()) {
      const want = o.tree.hashes.get(rels[i])
      if (want === undefined) { problems.push(`unexpected ${rels[i]}`); continue }
      const st = await fsp.stat(f)
      if (st.birthtimeMs > 0) firstHydrated = Math.min(firstHydrated ?? Infinity, st.birthtimeMs)
      hydrateEnd = Math.max(hydrateEnd ?? 0, st.ctimeMs)
      if (rels[i] === BIG_REL && st.birthtimeMs > 0) bigFileS = (st.ctimeMs - st.birthtimeMs) / 1000
      if (await sha256File(f) !== want) problems.push(`${rels[i]}: content differs`)
      else checked++
    }
    if (checked !== o.tree.hashes.size) problems.push(`${checked} files byte-exact, want ${o.tree.hashes.size}`)
    stubsEnd = firstHydrated
  }
  const m = /^restored (\d+) files?(?: \((\d+) hydrated\))?/.exec(summary)
  const run: RestoreRun = {
    hydrate: o.hydrate,
    code,
    summary,
    refused,
    retries,
    stderr: err.split('\n').filter(l => l.trim() !== '' && !l.startsWith('refused ') && !l.includes('asking again')),
    files: m === null ? -1 : Number(m[1]),
    hydrated: m?.[2] === undefined ? null : Number(m[2]),
    readyS: sec(readyAt),
    toS: sec(toAt),
    firstStubS: sec(firstStub),
    stubsEndS: sec(stubsEnd),
    hydrateEndS: sec(hydrateEnd),
    exitS: (exitAt - t0) / 1000,
    peakRss: sample.hwm,
    cpuS: sample.cpuS,
    bigFileS,
    checked,
    problems
  }
  log(`${label}: exit ${code} after ${run.exitS.toFixed(2)} s: ${summary}${problems.length > 0 ? `; PROBLEMS: ${problems.slice(0, 5).join('; ')}` : ''}`)
  return run
}

// ---- the bench -----------------------------------------------------------------------------------

export async function runRestoreBench (): Promise<void> {
  const files = FILES > 0 ? FILES : 2000
  const mib = MIB > 0 ? MIB : 256
  const waitMs = Math.min(60 * 60_000, 5 * 60_000 + files * 200 + mib * 2000)
  const base = await fsp.mkdtemp(join(tmpdir(), 'dustbox-restore-'))
  const folder = join(base, 'Quelle ü')
  const swarm = new LocalSwarm(join(base, 'swarm'))
  const killAll = (): void => {
    for (const c of swarm.children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL')
    for (const p of loose) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
  }
  const onSignal = (): void => {
    killAll()
    void fsp.rm(base, { recursive: true, force: true, maxRetries: 3 }).finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let report: Report | null = null
  try {
    log(`data in ${folder}: ${files} files of 1–64 KiB and one ${mib} MiB file`)
    const tree = await makeTree(folder, files, mib)
    syncDisks()

    // The floor: a plain copy of the same tree (from the page cache), then its write-back.
    const cpDir = join(base, 'cp copy')
    const c0 = performance.now()
    await fsp.cp(folder, cpDir, { recursive: true })
    const cpS = (performance.now() - c0) / 1000
    syncDisks()
    const cpSyncS = (performance.now() - c0) / 1000
    await fsp.rm(cpDir, { recursive: true, force: true })
    syncDisks()
    log(`fs.cp: ${(tree.bytes / MB / cpS).toFixed(0)} MB/s, with sync ${(tree.bytes / MB / cpSyncS).toFixed(0)} MB/s`)

    log(`swarm: bootstrap + ${PEERS} storage peers`)
    await swarm.startBootstrap()
    await swarm.startPeers(PEERS)

    log(`owner: starting on ${folder} (${tree.files} files, ${(tree.bytes / MB).toFixed(0)} MB)`)
    const ownerHome = join(base, 'owner')
    const o0 = performance.now()
    const owner = await swarm.startAgent({ name: 'owner', home: ownerHome, folders: [folder], extraArgs: ['--settle', '0.3'], tunables: { indexDebounceMs: 500 } })
    const placed = await pollOwner(owner, 'owner: every file stubbed', waitMs, s => stubbedCount(s) >= tree.files)
    const ingestS = (performance.now() - o0) / 1000
    const ownerRss = procSample(owner.proc.pid).hwm
    log(`owner: ${tree.files} files stubbed in ${ingestS.toFixed(2)} s (${(tree.bytes / MB / ingestS).toFixed(1)} MB/s); ${(placed.placement.bytesSent / MB).toFixed(0)} MB of shards sent`)
    await pollOwner(owner, 'owner: full redundancy', waitMs, s => s.health.files >= tree.files && s.health.full === s.health.files)
    const fullS = (performance.now() - o0) / 1000
    const i0 = performance.now()
    const client = await ControlClient.connect(ownerHome, { timeoutMs: 3000 })
    try { await client.call('index', { publish: true }, { timeoutMs: 300_000 }) } catch (e) { log(`index publish: ${(e as Error).message} (waiting for the debounced one)`) } finally { await client.close() }
    const ix = await pollOwner(owner, 'owner: folder index published with every file', 300_000, s => s.index.files === tree.files && s.index.pointer && s.index.rootCopies >= 1)
    const publishS = (performance.now() - i0) / 1000
    log(`owner: index root ${ix.index.seq} published (${ix.index.indexBytes} B in ${ix.index.chunks} chunks, ${ix.index.rootCopies} root copies) in ${publishS.toFixed(2)} s`)

    // The old machine seals its key backup, then is gone for good.
    const sb = join(base, 'sandbox ü')
    const { env, passFile } = await sandboxEnv(sb)
    const sealed = await runCli(['setup', '--yes', '--port', '0', '--no-desktop', '--no-service', '--passphrase-file', passFile, '--folder', folder], { ...env, DUSTBOX_HOME: ownerHome }, 120_000)
    if (sealed.code !== 0) throw new Error(`setup (seal the key backup) failed (${sealed.code}): ${sealed.err.slice(-2000)}`)
    const backup = join(sb, 'the only thing kept.dustkey')
    await fsp.copyFile(join(ownerHome, 'key-backup.dustkey'), backup)
    const ownerErrors = owner.output.filter(l => /error|fail|exception/i.test(l))
    await swarm.stop(owner)
    log('owner: stopped for good')

    const common = { backup, env, passFile, bootstrap: swarm.bootstrap, tree, timeoutMs: waitMs }
    const stubs = await restoreOnce({ ...common, hydrate: false, home: join(sb, 'new home stubs'), to: join(base, 'restored stubs') })
    await fsp.rm(join(base, 'restored stubs'), { recursive: true, force: true })
    syncDisks()
    const hyd = await restoreOnce({ ...common, hydrate: true, home: join(sb, 'new home hydrate'), to: join(base, 'restored hydrate') })
    report = { tree, k: placed.redundancy.k, m: placed.redundancy.m, cpS, cpSyncS, ingestS, fullS, publishS, ownerRss, indexBytes: ix.index.indexBytes, indexChunks: ix.index.chunks, ownerErrors, stubs, hyd }
  } finally {
    try { await swarm.close() } catch (err) { log(`swarm close: ${(err as Error).message}`) }
    killAll()
    await fsp.rm(base, { recursive: true, force: true, maxRetries: 3 })
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
  if (report === null) throw new Error('no report')
  printReport(report)
}

interface Report {
  tree: Tree
  k: number
  m: number
  cpS: number
  cpSyncS: number
  ingestS: number
  fullS: number
  publishS: number
  ownerRss: number | null
  indexBytes: number
  indexChunks: number
  ownerErrors: string[]
  stubs: RestoreRun
  hyd: RestoreRun
}

const diff = (a: number | null, b: number | null): number | null => a === null || b === null ? null : a - b

function phases (r: RestoreRun): { start: number | null, find: number | null, record: number | null, stubs: number | null, hydrate: number | null, close: number | null } {
  const end = r.hydrate ? r.hydrateEndS : r.stubsEndS
  return {
    start: r.readyS,
    find: diff(r.toS, r.readyS),
    record: r.hydrate ? null : diff(r.firstStubS, r.toS),
    // hydrate run: DIR created → first hydration (record + stubs; stubs are gone, no birth time left).
    stubs: r.hydrate ? diff(r.stubsEndS, r.toS) : diff(r.stubsEndS, r.firstStubS),
    hydrate: r.hydrate ? diff(r.hydrateEndS, r.stubsEndS) : null,
    close: diff(r.exitS, end)
  }
}

function printReport (r: Report): void {
  const { tree, stubs, hyd } = r
  const ps = phases(stubs)
  const ph = phases(hyd)
  const small = tree.files - 1
  const stubRate = ps.stubs === null ? null : tree.files / ps.stubs
  const stubsFromDirS = diff(stubs.stubsEndS, stubs.toS)
  const hydMBps = ph.hydrate === null ? null : tree.bytes / MB / ph.hydrate
  const e2eMBps = tree.bytes / MB / hyd.exitS
  const bigMBps = hyd.bigFileS === null ? null : tree.bigBytes / MB / hyd.bigFileS
  const ingestMBps = tree.bytes / MB / r.ingestS
  const cpMBps = tree.bytes / MB / r.cpS
  const cpSyncMBps = tree.bytes / MB / r.cpSyncS
  const rss = (x: number | null): string => x === null ? '-' : cell(x / MiB, 0)

  process.stdout.write(`restore: ${small} small files (1–64 KiB, random data, Unicode names, ${tree.dirs} nested folders) + one ${(tree.bigBytes / MiB).toFixed(0)} MiB file = ${(tree.bytes / MB).toFixed(1)} MB in ${tree.files} files; ${PEERS} storage peers, redundancy ${r.k}+${r.m}, all on 127.0.0.1; a new home made from the key backup alone runs \`dustbox restore\` (its own agent, default settings)\n`)
  process.stdout.write(table(
    ['phase (s from spawn, deltas)', 'restore (stubs)', 'restore --hydrate'],
    [
      ['agent start (→ "looking up")', cell(ps.start, 2), cell(ph.start, 2)],
      ['find root + fetch index (→ DIR)', cell(ps.find, 2), cell(ph.find, 2)],
      ['record index (→ first stub)', cell(ps.record, 2), '-'],
      ['write stubs', cell(ps.stubs, 2), cell(ph.stubs, 2)],
      ['hydrate', '-', cell(ph.hydrate, 2)],
      ['close (→ exit)', cell(ps.close, 2), cell(ph.close, 2)],
      ['total', cell(stubs.exitS, 2), cell(hyd.exitS, 2)],
      ['peak RSS MiB (VmHWM)', rss(stubs.peakRss), rss(hyd.peakRss)],
      ['CPU s', cell(stubs.cpuS, 2), cell(hyd.cpuS, 2)],
      ['find-root retries (5 s each)', String(stubs.retries), String(hyd.retries)]
    ]
  ) + '\n\n')
  process.stdout.write(table(
    ['throughput', 'value', 'unit', 'note'],
    [
      ['restore as stubs', cell(stubRate, 0), 'files/s', `${tree.files} stubs, first stub → last (${cell(tree.files / (stubsFromDirS ?? NaN), 0)} files/s from DIR created)`],
      ['restore --hydrate', cell(hydMBps, 1), 'MB/s', `first hydration → last file written, ${tree.files} files byte-exact: ${hyd.checked === tree.files ? 'yes' : 'NO'}`],
      ['  its big file alone', cell(bigMBps, 1), 'MB/s', `${(tree.bigBytes / MiB).toFixed(0)} MiB, temp file birth → placed`],
      ['  end to end', cell(e2eMBps, 1), 'MB/s', 'spawn → exit, with agent start and find root'],
      ['owner ingest (reference)', cell(ingestMBps, 1), 'MB/s', `${cell(tree.files / r.ingestS, 0)} files/s; owner spawn → all stubbed ${r.ingestS.toFixed(2)} s, full redundancy ${r.fullS.toFixed(2)} s, peak RSS ${rss(r.ownerRss)} MiB`],
      ['fs.cp of the tree (floor)', cell(cpMBps, 1), 'MB/s', `${cell(tree.files / r.cpS, 0)} files/s; page cache, no fsync; with sync ${cell(cpSyncMBps, 1)} MB/s`]
    ]
  ) + '\n')
  process.stdout.write(`index: ${r.indexBytes} B in ${r.indexChunks} chunks, published in ${r.publishS.toFixed(2)} s after the ask; phases are seen from outside (stdout line, DIR polled every 10 ms, statx birth/ctime of the files written): restore's result carries no timings\n`)
  for (const run of [stubs, hyd]) {
    const name = run.hydrate ? 'restore --hydrate' : 'restore (stubs)'
    if (run.code !== 0) process.stdout.write(`${name}: exit code ${run.code}\n`)
    if (run.refused.length > 0) process.stdout.write(`${name}: ${run.refused.length} refused, first: ${run.refused.slice(0, 3).join(' | ')}\n`)
    if (run.stderr.length > 0) process.stdout.write(`${name}: ${run.stderr.length} other stderr lines, first: ${run.stderr.slice(0, 3).join(' | ').slice(0, 600)}\n`)
    if (run.problems.length > 0) process.stdout.write(`${name}: PROBLEMS: ${run.problems.slice(0, 5).join('; ')}\n`)
  }
  if (r.ownerErrors.length > 0) process.stdout.write(`owner: ${r.ownerErrors.length} error lines in its log, first: ${r.ownerErrors.slice(0, 3).join(' | ').slice(0, 600)}\n`)
  const ok = stubs.code === 0 && hyd.code === 0 && stubs.problems.length === 0 && hyd.problems.length === 0
  if (!ok) process.exitCode = 1
  printJsonLine({
    bench: 'restore',
    files: tree.files,
    small_files: small,
    big_MiB: round(tree.bigBytes / MiB, 0),
    data_MB: round(tree.bytes / MB, 1),
    peers: PEERS,
    k: r.k,
    m: r.m,
    stub_agent_start_s: round(ps.start, 2),
    stub_find_root_s: round(ps.find, 2),
    stub_record_s: round(ps.record, 2),
    stub_write_s: round(ps.stubs, 2),
    stub_files_per_s: round(stubRate, 0),
    stub_total_s: round(stubs.exitS, 2),
    stub_peak_rss_MiB: stubs.peakRss === null ? null : round(stubs.peakRss / MiB, 0),
    stub_cpu_s: round(stubs.cpuS, 2),
    hyd_agent_start_s: round(ph.start, 2),
    hyd_find_root_s: round(ph.find, 2),
    hyd_stubs_s: round(ph.stubs, 2),
    hydrate_s: round(ph.hydrate, 2),
    hydrate_MBps: round(hydMBps, 1),
    big_file_MBps: round(bigMBps, 1),
    hyd_total_s: round(hyd.exitS, 2),
    hyd_e2e_MBps: round(e2eMBps, 1),
    hyd_peak_rss_MiB: hyd.peakRss === null ? null : round(hyd.peakRss / MiB, 0),
    hyd_cpu_s: round(hyd.cpuS, 2),
    owner_ingest_MBps: round(ingestMBps, 1),
    owner_ingest_files_per_s: round(tree.files / r.ingestS, 0),
    owner_ingest_s: round(r.ingestS, 2),
    owner_full_s: round(r.fullS, 2),
    owner_peak_rss_MiB: r.ownerRss === null ? null : round(r.ownerRss / MiB, 0),
    index_publish_s: round(r.publishS, 2),
    cp_MBps: round(cpMBps, 1),
    cp_sync_MBps: round(cpSyncMBps, 1),
    cp_files_per_s: round(tree.files / r.cpS, 0),
    hydrate_vs_ingest: round(hydMBps === null ? null : hydMBps / ingestMBps, 2),
    hydrate_vs_cp_sync: round(hydMBps === null ? null : hydMBps / cpSyncMBps, 2),
    find_root_retries: stubs.retries + hyd.retries,
    refused: stubs.refused.length + hyd.refused.length,
    verified: ok
  })
}

