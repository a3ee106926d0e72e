// The ingest benchmark. For each corpus set: copy it to a fresh work folder (untimed), stub every file
// with StubEngine.stubMany (timed), hydrate every stub with hydrateMany (timed), check every big file
// and a sample of small files byte-exact against the corpus; on the small set, then measure the
// file-system floor of stubbing those files (floor.ts). Then peak RSS while stubbing (and hydrating)
// one huge file (4 GiB x SCALE, see huge.ts), then restic on the same sets as the reference.
// Prints a table, then the one-line JSON summary. Work folders are removed; the corpus is kept.

import { promises as fsp, rmSync } from 'node:fs'
import { join, relative } from 'node:path'
import { StubEngine, createSecret, loadCrypto, type Crypto, type Outcome } from '../stubs/index.js'
import { ensureCorpus, type Corpus, type SetName } from './corpus.js'
import { runHuge, type HugeResult, type Step } from './huge.js'
import { BENCH_DIR, PROFILE_DIR, RESTIC_BIN, RSS_SAMPLE_MS, SCALE, SETS, VERIFY_SAMPLE } from './config.js'
import { measure, type Measured } from './measure.js'
import { copyTree, listFiles, sha256File, syncDisks } from './tree.js'
import { resticVersion, runRestic, type ResticResult } from './restic.js'
import { runFloor } from './floor.js'
import { MB, MiB, cell, printJsonLine, round, table } from './report.js'

/** Targets of the ingest issue (2x restic backup big, 1x restic small files/s, 1.5x restic restore big). */
export const TARGET_BIG_MBPS = 196
export const TARGET_SMALL_FILES_PER_S = 1905
export const TARGET_HYDRATE_MBPS = 177
export const TARGET_HUGE_RSS_MIB = 256

interface SetResult {
  readonly set: SetName
  readonly files: number
  readonly bytes: number
  readonly stub: Measured<unknown>
  readonly hydrate: Measured<unknown>
  readonly storedBytes: number
  readonly blocks: number
  readonly verified: number
  /** Small set: the same files replaced by stand-in stubs with no crypto and no blocks. */
  readonly floor: Measured<number> | null
}

const log = (s: string): void => { process.stderr.write(`# ${s}\n`) }

function results<T> (outs: Array<Outcome<T>>, what: string): T[] {
  const bad = outs.filter(o => !o.ok)
  if (bad.length > 0) {
    const first = bad[0] as { path: string, error: Error }
    throw new Error(`${what}: ${bad.length} of ${outs.length} failed; first: ${first.path}: ${first.error.message}`)
  }
  return outs.map(o => (o as { result: T }).result)
}

async function openEngine (crypto: Crypto, home: string): Promise<StubEngine> {
  await createSecret(crypto, home)
  return await StubEngine.open({ home, crypto })
}

const opts = (name: string): { sampleMs: number, profileDir: string, name: string } => ({ sampleMs: RSS_SAMPLE_MS, profileDir: PROFILE_DIR, name })

async function benchSet (crypto: Crypto, corpus: Corpus, set: SetName, work: string): Promise<SetResult> {
  const src = join(corpus.root, set)
  const dst = join(work, set)
  const home = join(work, `home-${set}`)
  log(`${set}: copying corpus to ${dst}`)
  await copyTree(src, dst)
  syncDisks()
  const files = await listFiles(dst)
  const want = corpus.sets[set]
  if (files.length !== want.files) throw new Error(`corpus ${src} has ${files.length} files, its marker says ${want.files}: delete ${corpus.root} and rerun`)
  const engine = await openEngine(crypto, home)
  try {
    log(`${set}: stubbing ${files.length} files (${(want.bytes / MB).toFixed(0)} MB)`)
    const stub = await measure(opts(`${set}-stub`), async () => await engine.stubMany(files))
    const stubbed = results(stub.value, `${set}: stub`)
    log(`${set}: stub ${stub.seconds.toFixed(2)} s`)
    syncDisks()
    log(`${set}: hydrating ${stubbed.length} stubs`)
    const hydrate = await measure(opts(`${set}-hydrate`), async () => await engine.hydrateMany(stubbed.map(r => r.stubPath)))
    results(hydrate.value, `${set}: hydrate`)
    log(`${set}: hydrate ${hydrate.seconds.toFixed(2)} s`)
    const verified = await verifyTree(src, dst, files, set === 'big' ? files.length : VERIFY_SAMPLE)
    log(`${set}: ${verified} files verified byte-exact`)
    let floor: Measured<number> | null = null
    if (set === 'small') {
      syncDisks()
      log(`${set}: file-system floor (read, stand-in stub, unlink; no crypto, no blocks)`)
      floor = await runFloor(files)
      log(`${set}: floor ${floor.seconds.toFixed(2)} s`)
    }
    return {
      set,
      files: files.length,
      bytes: want.bytes,
      stub,
      hydrate,
      storedBytes: stubbed.reduce((a, r) => a + r.storedBytes, 0),
      blocks: stubbed.reduce((a, r) => a + r.blocks, 0),
      verified,
      floor
    }
  } finally {
    await engine.close()
    await fsp.rm(dst, { recursive: true, force: true })
    await fsp.rm(home, { recursive: true, force: true })
  }
}

/** The hydrated tree has exactly the corpus's files; `sample` of them (evenly spread) match by sha256. */
async function verifyTree (src: string, dst: string, files: readonly string[], sample: number): Promise<number> {
  const now = await listFiles(dst)
  if (now.length !== files.length || now.some((f, i) => f !== files[i])) {
    throw new Error(`hydrated tree ${dst} differs from the corpus file list (${now.length} files, want ${files.length})`)
  }
  const n = Math.min(sample, files.length)
  for (let k = 0; k < n; k++) {
    const f = files[Math.floor(k * files.length / n)]
    const [a, b] = await Promise.all([sha256File(f), sha256File(join(src, relative(dst, f)))])
    if (a !== b) throw new Error(`hydrated ${f} does not match the corpus`)
  }
  return n
}

export async function runIngestBench (): Promise<void> {
  const corpus = await ensureCorpus(SCALE, BENCH_DIR, log)
  log(`corpus ${corpus.root}${corpus.reused ? ' (reused)' : ''}: big ${corpus.sets.big.files} files / ${corpus.sets.big.bytes} B, small ${corpus.sets.small.files} files / ${corpus.sets.small.bytes} B`)
  if (PROFILE_DIR) await fsp.mkdir(PROFILE_DIR, { recursive: true })
  const work = join(BENCH_DIR, `work-${process.pid}`)
  const cleanup = (): void => { rmSync(work, { recursive: true, force: true }); process.exit(130) }
  process.once('SIGINT', cleanup)
  process.once('SIGTERM', cleanup)
  const crypto = await loadCrypto()
  log(`crypto backend: ${crypto.name}`)
  const sets: SetResult[] = []
  let huge: HugeResult
  let restic: ResticResult | null = null
  let resticNote: string
  try {
    await fsp.mkdir(work, { recursive: true })
    for (const s of SETS) sets.push(await benchSet(crypto, corpus, s, work))
    huge = await runHuge(work)
    const version = await resticVersion(RESTIC_BIN)
    if (version === null) {
      resticNote = RESTIC_BIN === 'off' ? 'restic: skipped (--restic=off)' : `restic: not found (${JSON.stringify(RESTIC_BIN)} is not on PATH); reference figures are null`
    } else {
      restic = await runRestic(RESTIC_BIN, version, corpus.root, join(work, 'restic'), SETS, log)
      resticNote = `restic ${version}: fresh repo + RESTIC_CACHE_DIR per run, input warmed, as in anchors/restic.sh`
    }
  } finally {
    await fsp.rm(work, { recursive: true, force: true })
    process.removeListener('SIGINT', cleanup)
    process.removeListener('SIGTERM', cleanup)
  }
  printReport(corpus, crypto, sets, huge, restic, resticNote)
}

function printReport (corpus: Corpus, crypto: Crypto, sets: readonly SetResult[], huge: HugeResult, restic: ResticResult | null, resticNote: string): void {
  const mbps = (bytes: number, s: number | undefined): number | null => s === undefined ? null : bytes / MB / s
  const fps = (files: number, s: number | undefined): number | null => s === undefined ? null : files / s
  const rss = (m: Step): string => cell(m.peakRssBytes / MiB, 0) + (m.hwmReset ? '' : '*')
  const cpu = (m: Step): string => cell(m.cpuSeconds / m.seconds * 100, 0)
  const big = sets.find(s => s.set === 'big')
  const small = sets.find(s => s.set === 'small')
  const target = (set: SetName, op: 'stub' | 'hydrate', r: SetResult): string => {
    if (set === 'big' && op === 'stub') return `>= ${TARGET_BIG_MBPS} MB/s ${r.bytes / MB / r.stub.seconds >= TARGET_BIG_MBPS ? 'ok' : 'MISSED'}`
    if (set === 'small' && op === 'stub') return `>= ${TARGET_SMALL_FILES_PER_S} files/s ${r.files / r.stub.seconds >= TARGET_SMALL_FILES_PER_S ? 'ok' : 'MISSED'}`
    if (set === 'big' && op === 'hydrate') return `>= ${TARGET_HYDRATE_MBPS} MB/s ${r.bytes / MB / r.hydrate.seconds >= TARGET_HYDRATE_MBPS ? 'ok' : 'MISSED'}`
    return ''
  }
  const rows: string[][] = []
  for (const r of sets) {
    for (const op of ['stub', 'hydrate'] as const) {
      const m = r[op]
      rows.push(['dustbox', op, r.set, String(r.files), cell(r.bytes / MB, 0), cell(m.seconds, 2), cell(r.bytes / MB / m.seconds), r.files >= 100 ? cell(r.files / m.seconds, 0) : '-', cpu(m), rss(m), target(r.set, op, r)])
    }
  }
  for (const r of sets) {
    if (r.floor === null) continue
    rows.push(['fs floor', 'stub', r.set, String(r.files), cell(r.bytes / MB, 0), cell(r.floor.seconds, 2), cell(r.bytes / MB / r.floor.seconds), cell(r.files / r.floor.seconds, 0), cpu(r.floor), '-', 'no crypto, no blocks'])
  }
  if ('skipped' in huge) {
    rows.push(['dustbox', 'stub', 'huge', '1', '-', '-', '-', '-', '-', '-', `skipped: ${huge.skipped}`])
  } else {
    const ok = huge.stub.peakRssBytes / MiB <= TARGET_HUGE_RSS_MIB ? 'ok' : 'MISSED'
    rows.push(['dustbox', 'stub', 'huge', '1', cell(huge.bytes / MB, 0), cell(huge.stub.seconds, 2), cell(huge.bytes / MB / huge.stub.seconds), '-', cpu(huge.stub), rss(huge.stub), `RSS <= ${TARGET_HUGE_RSS_MIB} MiB ${ok}`])
    rows.push(['dustbox', 'hydrate', 'huge', '1', cell(huge.bytes / MB, 0), cell(huge.hydrate.seconds, 2), cell(huge.bytes / MB / huge.hydrate.seconds), '-', cpu(huge.hydrate), rss(huge.hydrate), ''])
  }
  if (restic !== null) {
    for (const [op, times] of [['backup', restic.backupSeconds], ['restore', restic.restoreSeconds]] as const) {
      for (const s of SETS) {
        const t = times[s]
        const info = corpus.sets[s]
        rows.push([`restic ${restic.version}`, op, s, String(info.files), cell(info.bytes / MB, 0), cell(t, 2), cell(mbps(info.bytes, t)), info.files >= 100 ? cell(fps(info.files, t), 0) : '-', '-', '-', ''])
      }
    }
  }
  const bigMBps = big ? big.bytes / MB / big.stub.seconds : null
  const smallFps = small ? small.files / small.stub.seconds : null
  const hydMBps = big ? big.bytes / MB / big.hydrate.seconds : null
  const rBig = restic ? mbps(corpus.sets.big.bytes, restic.backupSeconds.big) : null
  const rSmall = restic ? fps(corpus.sets.small.files, restic.backupSeconds.small) : null
  const rRestore = restic ? mbps(corpus.sets.big.bytes, restic.restoreSeconds.big) : null
  const ratio = (a: number | null, b: number | null): number | null => a === null || b === null || b === 0 ? null : a / b
  const peakRss = sets.length === 0 ? null : Math.max(...sets.flatMap(s => [s.stub.peakRssBytes, s.hydrate.peakRssBytes])) / MiB

  const out: string[] = []
  out.push(`dustbox ingest benchmark — scale ${corpus.scale}, corpus ${corpus.root}, crypto ${crypto.name}, ${sets.length > 0 ? 'durable (fsync) block store' : ''}`)
  out.push('')
  out.push(table(['tool', 'op', 'set', 'files', 'MB', 's', 'MB/s', 'files/s', 'cpu%', 'peakRSS MiB', 'target'], rows))
  out.push('')
  out.push(table(['dustbox / restic', 'ratio'], [
    ['ingest big (MB/s)', cell(ratio(bigMBps, rBig), 2)],
    ['ingest small (files/s)', cell(ratio(smallFps, rSmall), 2)],
    ['hydrate big (MB/s)', cell(ratio(hydMBps, rRestore), 2)]
  ]))
  out.push('')
  for (const r of sets) out.push(`${r.set}: ${r.blocks} blocks, stored ${cell(r.storedBytes / MB, 0)} MB (${cell(r.storedBytes / r.bytes, 3)} of input), ${r.verified} files verified byte-exact (sha256 vs corpus)`)
  if (!('skipped' in huge)) out.push(`huge: one ${cell(huge.bytes / MiB, 0)} MiB keystream file, in a fresh child process; its RSS before stubbing (engine open, workers idle) was ${cell(huge.baselineRssBytes / MiB, 0)} MiB`)
  out.push('fs floor: each file read, replaced by a 900-byte stand-in stub written as stubs are (temp, fsync, link, shared dir fsync), then')
  out.push('       removed, with the engine\'s file concurrency: the fastest any stubbing of these files can be on this file system.')
  out.push('notes: MB = 10^6 B; files/s only for sets of 100+ files. Input is read from the page cache (the copy is synced first; caches cannot be dropped here).')
  out.push('       Hydrate reads blocks just written (warm cache). cpu% = (user+sys)/wall of the whole process, 200% = 2 cores.')
  out.push('       Peak RSS covers the block workers (threads of this process): max of a ' + RSS_SAMPLE_MS + ' ms sampler and the kernel high-water mark')
  out.push('       reset per phase via /proc/self/clear_refs' + ([...sets.flatMap(s => [s.stub, s.hydrate])].some(m => !m.hwmReset) ? ' (* = reset refused: sampler only)' : '') + '.')
  out.push(`       ${resticNote}`)
  process.stdout.write(out.join('\n') + '\n')
  printJsonLine({
    bench: 'ingest',
    scale: corpus.scale,
    big_MBps: round(bigMBps),
    small_MBps: round(small ? small.bytes / MB / small.stub.seconds : null),
    small_files_per_s: round(smallFps, 0),
    hydrate_MBps: round(hydMBps),
    hydrate_small_files_per_s: round(small ? small.files / small.hydrate.seconds : null, 0),
    floor_small_files_per_s: round(small?.floor ? small.files / small.floor.seconds : null, 0),
    peak_rss_MiB: round(peakRss, 0),
    peak_rss_4GiB_MiB: 'skipped' in huge ? null : round(huge.stub.peakRssBytes / MiB, 0),
    restic_big_MBps: round(rBig),
    restic_small_files_per_s: round(rSmall, 0),
    restic_restore_MBps: round(rRestore),
    ratio_big: round(ratio(bigMBps, rBig), 3),
    ratio_small: round(ratio(smallFps, rSmall), 3),
    ratio_hydrate: round(ratio(hydMBps, rRestore), 3)
  })
}
