// The dashboard under load: a real local swarm (DHT node + 6 storage peers) and an owner agent
// ingesting 20,000 small files (DUSTBOX_BENCH_TUI_FILES; --scale multiplies), with two clients
// attached to its control socket from the start: the real dashboard (Ink rendering into a fake
// 120×40 terminal) and, as the reference, a bare subscriber that only receives the same events.
// Reports the CPU time of the agent, the dashboard and the subscriber over the ingest (from
// /proc/PID/stat and the children's own counters), frames drawn per second, bytes drawn, and the
// dashboard's peak RSS. The bar: the dashboard uses less CPU than the ingest.

import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promises as fsp, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LocalSwarm, agentStatus, sleep } from '../agent/swarm.js'
import { BENCH_DIR, SCALE } from './config.js'
import { MiB, cell, printJsonLine, round, table } from './report.js'

const CHILD = fileURLToPath(new URL('./tui-child.js', import.meta.url))
const FILES = Math.max(100, Math.round(Number(process.env.DUSTBOX_BENCH_TUI_FILES ?? 20_000) * SCALE))
const WAIT_MS = 30 * 60_000
const log = (s: string): void => { process.stderr.write(`# ${s}\n`) }

/** utime + stime of a live process, seconds. */
function cpuSeconds (pid: number | undefined): number {
  if (pid === undefined) return NaN
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / 100 // fields 14 and 15, in USER_HZ (100 on Linux)
}

async function attach (home: string, reference: boolean): Promise<{ proc: ChildProcess, result: Promise<Record<string, number>> }> {
  // As `dustbox tui` runs: React's production build (bin/dustbox.js sets it), not under CI (where Ink draws only the last frame).
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production' }
  delete env.CI
  delete env.CONTINUOUS_INTEGRATION
  const proc = spawn(process.execPath, [CHILD, home, ...(reference ? ['--reference'] : [])], { stdio: ['ignore', 'pipe', 'inherit'], env })
  let out = ''
  let readyResolve: () => void = () => {}
  const ready = new Promise<void>(resolve => { readyResolve = resolve })
  const result = new Promise<Record<string, number>>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('ready\n')) readyResolve()
      const line = out.split('\n').find(l => l.startsWith('{'))
      if (line !== undefined) resolve(JSON.parse(line) as Record<string, number>)
    })
    proc.once('exit', code => reject(new Error(`${reference ? 'subscriber' : 'dashboard'} exited with ${code}: ${out.slice(-300)}`)))
  })
  await Promise.race([ready, result.then(() => {}), sleep(30_000).then(() => { throw new Error('child not ready in 30 s') })])
  return { proc, result }
}

export async function runTuiBench (): Promise<void> {
  const base = join(BENCH_DIR, `tui-${process.pid}`)
  const folder = join(base, 'folder')
  const swarm = new LocalSwarm(base)
  try {
    await fsp.mkdir(folder, { recursive: true })
    log(`writing ${FILES} files of 1-4 KiB`)
    for (let d = 0; d < Math.ceil(FILES / 100); d++) {
      const sub = join(folder, `d${d}`)
      await fsp.mkdir(sub)
      await Promise.all(Array.from({ length: Math.min(100, FILES - d * 100) }, async (_, i) => await fsp.writeFile(join(sub, `f${i}.bin`), randomBytes(1024 + (i * 37 % 3072)))))
    }
    await swarm.startBootstrap()
    await swarm.startPeers(6)
    // The owner starts on an empty view of the folder: hold ingest until both clients are attached.
    const home = join(base, 'owner')
    const hidden = `${folder}.hold`
    await fsp.rename(folder, hidden)
    await fsp.mkdir(folder)
    const owner = await swarm.startAgent({ name: 'owner', home, folders: [folder], extraArgs: ['--settle', '0.2', '--cache', '0'] })
    const dash = await attach(home, false)
    const ref = await attach(home, true)
    const cpu0 = cpuSeconds(owner.proc.pid)
    const t0 = performance.now()
    // Move the files in (one rename per directory): the watcher sees them arrive.
    for (const d of await fsp.readdir(hidden)) await fsp.rename(join(hidden, d), join(folder, d))
    log(`ingesting ${FILES} files with the dashboard attached`)
    const deadline = Date.now() + WAIT_MS
    let lastLog = 0
    for (;;) {
      const st = await agentStatus(home).catch(() => null)
      const done = st?.folders.reduce((n, f) => n + (f.files.stubbed ?? 0), 0) ?? 0
      if (done >= FILES) break
      if (Date.now() - lastLog > 15_000) { lastLog = Date.now(); log(`${done}/${FILES} stubbed after ${((performance.now() - t0) / 1000).toFixed(0)} s`) }
      if (Date.now() > deadline) throw new Error(`not all stubbed in ${WAIT_MS / 1000} s (${done}/${FILES})`)
      await sleep(500)
    }
    const seconds = (performance.now() - t0) / 1000
    const agentCpu = cpuSeconds(owner.proc.pid) - cpu0
    dash.proc.kill('SIGTERM')
    ref.proc.kill('SIGTERM')
    const d = await dash.result
    const r = await ref.result
    const tuiCpu = d.cpuMs / 1000
    const refCpu = r.cpuMs / 1000
    process.stdout.write(`\ntui bench: ${FILES} files ingested in ${seconds.toFixed(1)} s (${(FILES / seconds).toFixed(0)} files/s), 6 loopback peers\n`)
    process.stdout.write(table(['process', 'CPU s', 'CPU % of agent', 'events', 'frames', 'frames/s', 'drawn MB', 'peak RSS MiB'], [
      ['agent (ingest)', cell(agentCpu, 1), '100', '-', '-', '-', '-', '-'],
      ['dashboard', cell(tuiCpu, 1), cell(100 * tuiCpu / agentCpu, 1), String(d.events), String(d.renders), cell(d.renders / seconds, 1), cell(d.bytes / 1e6, 1), cell(d.peakRss / MiB, 0)],
      ['reference: bare subscriber', cell(refCpu, 1), cell(100 * refCpu / agentCpu, 1), String(r.events), '-', '-', '-', cell(r.peakRss / MiB, 0)]
    ]) + '\n')
    printJsonLine({
      bench: 'tui',
      files: FILES,
      ingest_s: round(seconds, 1),
      files_per_s: round(FILES / seconds, 0),
      agent_cpu_s: round(agentCpu, 1),
      tui_cpu_s: round(tuiCpu, 2),
      tui_cpu_share_of_agent: round(tuiCpu / agentCpu, 3),
      subscriber_cpu_s: round(refCpu, 2),
      events: d.events,
      frames: d.renders,
      frames_per_s: round(d.renders / seconds, 1),
      tui_peak_rss_MiB: round(d.peakRss / MiB, 0)
    })
  } finally {
    await swarm.close()
    rmSync(base, { recursive: true, force: true })
  }
}
