// The single-huge-file memory test: write one HUGE_BYTES keystream file (4 GiB x SCALE; untimed),
// stub it, hydrate it, check it by sha256, and report wall time, CPU and peak RSS of each step. It runs
// in a fresh child process (forked from this same file) so that its peak RSS starts from a clean
// process, not from what earlier phases left allocated. Skipped unless 5x its size is free on disk.

import { fork } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { StubEngine, createSecret, loadCrypto } from '../stubs/index.js'
import { writeKeystreamFile, anchorKey } from './corpus.js'
import { BENCH_DIR, HUGE_BYTES, PROFILE_DIR, RSS_SAMPLE_MS } from './config.js'
import { measure } from './measure.js'
import { freeBytes, sha256File, syncDisks } from './tree.js'
import { MiB } from './report.js'

/** The test runs only with this many times the file's size free on disk (20 GiB for 4 GiB). */
export const HUGE_FREE_FACTOR = 5
/** AES key index of the huge file's keystream (distinct from the corpus files'). */
const HUGE_KEY = 0xb16
const WORK_ENV = 'DUSTBOX_BENCH_HUGE_WORK'

export interface Step { readonly seconds: number, readonly cpuSeconds: number, readonly peakRssBytes: number, readonly hwmReset: boolean }

export type HugeResult =
  | { readonly bytes: number, readonly baselineRssBytes: number, readonly stub: Step, readonly hydrate: Step }
  | { readonly skipped: string }

const log = (s: string): void => { process.stderr.write(`# huge: ${s}\n`) }

/** Run the test in a child process, with `work` as its scratch folder (removed afterwards). */
export async function runHuge (work: string): Promise<HugeResult> {
  if (HUGE_BYTES === 0) return { skipped: 'disabled (--huge-bytes=0)' }
  const free = await freeBytes(BENCH_DIR)
  if (free < HUGE_FREE_FACTOR * HUGE_BYTES) {
    return { skipped: `only ${(free / 2 ** 30).toFixed(1)} GiB free, need ${(HUGE_FREE_FACTOR * HUGE_BYTES / 2 ** 30).toFixed(1)} GiB` }
  }
  const flags = process.argv.slice(2).filter(a => a.startsWith('--'))
  const child = fork(fileURLToPath(import.meta.url), flags, { env: { ...process.env, [WORK_ENV]: work }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  type Reply = { ok: true, result: HugeResult } | { ok: false, error: string }
  const replies: Reply[] = []
  child.on('message', m => { replies.push(m as Reply) })
  const code = await new Promise<number | null>(resolve => child.on('exit', c => resolve(c)))
  const r = replies[0]
  if (r === undefined) throw new Error(`huge-file child exited (${code}) without a result`)
  if (!r.ok) throw new Error(`huge-file test failed: ${r.error}`)
  return r.result
}

const step = (m: Step): Step => ({ seconds: m.seconds, cpuSeconds: m.cpuSeconds, peakRssBytes: m.peakRssBytes, hwmReset: m.hwmReset })

async function child (work: string): Promise<HugeResult> {
  const dir = join(work, 'huge')
  const home = join(work, 'home-huge')
  const file = join(dir, 'huge.bin')
  const opts = (name: string): { sampleMs: number, profileDir: string, name: string } => ({ sampleMs: RSS_SAMPLE_MS, profileDir: PROFILE_DIR, name })
  await fsp.mkdir(dir, { recursive: true })
  try {
    log(`writing ${(HUGE_BYTES / MiB).toFixed(0)} MiB of keystream`)
    const sha = await writeKeystreamFile(file, HUGE_BYTES, anchorKey(HUGE_KEY))
    syncDisks()
    const crypto = await loadCrypto()
    await createSecret(crypto, home)
    const engine = await StubEngine.open({ home, crypto })
    try {
      await new Promise(resolve => setTimeout(resolve, 300)) // let the workers finish starting
      const baselineRssBytes = process.memoryUsage.rss()
      log(`stubbing one file (process RSS before: ${(baselineRssBytes / MiB).toFixed(0)} MiB)`)
      const stub = await measure(opts('huge-stub'), async () => await engine.stubMany([file]))
      const [s] = stub.value
      if (!s.ok) throw s.error
      log(`stub ${stub.seconds.toFixed(2)} s, peak RSS ${(stub.peakRssBytes / MiB).toFixed(0)} MiB`)
      syncDisks()
      const hydrate = await measure(opts('huge-hydrate'), async () => await engine.hydrateMany([s.result.stubPath]))
      const [h] = hydrate.value
      if (!h.ok) throw h.error
      log(`hydrate ${hydrate.seconds.toFixed(2)} s, peak RSS ${(hydrate.peakRssBytes / MiB).toFixed(0)} MiB`)
      if (await sha256File(file) !== sha) throw new Error(`hydrated ${file} does not match what was written`)
      return { bytes: HUGE_BYTES, baselineRssBytes, stub: step(stub), hydrate: step(hydrate) }
    } finally {
      await engine.close()
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true })
    await fsp.rm(home, { recursive: true, force: true })
  }
}

const work = process.env[WORK_ENV]
if (process.send !== undefined && work !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  child(work).then(
    result => process.send!({ ok: true, result }, () => process.exit(0)),
    err => process.send!({ ok: false, error: (err as Error)?.stack ?? String(err) }, () => process.exit(1))
  )
}
