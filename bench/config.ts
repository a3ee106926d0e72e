// Benchmark tunables. Each UPPER_CASE setting is read from a `--flag=value` (or `--flag value`)
// argument, else from its DUSTBOX_BENCH_* environment variable, else its default. Also splits argv
// into bench names and flags.

import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface Setting {
  readonly flag: string
  readonly env: string
  readonly def: string
}

const SETTINGS = {
  scale: { flag: 'scale', env: 'DUSTBOX_BENCH_SCALE', def: '1' },
  dir: { flag: 'dir', env: 'DUSTBOX_BENCH_DIR', def: join(tmpdir(), 'dustbox-bench') },
  sets: { flag: 'sets', env: 'DUSTBOX_BENCH_SETS', def: 'big,small' },
  verifySample: { flag: 'verify-sample', env: 'DUSTBOX_BENCH_VERIFY_SAMPLE', def: '200' },
  rssSampleMs: { flag: 'rss-sample-ms', env: 'DUSTBOX_BENCH_RSS_SAMPLE_MS', def: '50' },
  hugeBytes: { flag: 'huge-bytes', env: 'DUSTBOX_BENCH_HUGE_BYTES', def: '' },
  restic: { flag: 'restic', env: 'DUSTBOX_BENCH_RESTIC', def: 'restic' },
  profile: { flag: 'profile', env: 'DUSTBOX_BENCH_PROFILE', def: '' },
  files: { flag: 'files', env: 'DUSTBOX_BENCH_FILES', def: '' },
  mib: { flag: 'mib', env: 'DUSTBOX_BENCH_MIB', def: '' }
} as const satisfies Record<string, Setting>

const args = process.argv.slice(2)
const flags = new Map<string, string>()
const unknownFlags: string[] = []
const names: string[] = []
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (!a.startsWith('--')) { names.push(a); continue }
  const eq = a.indexOf('=')
  const name = eq < 0 ? a.slice(2) : a.slice(2, eq)
  if (!Object.values(SETTINGS).some(s => s.flag === name)) unknownFlags.push(a)
  else if (eq >= 0) flags.set(name, a.slice(eq + 1))
  else if (i + 1 < args.length && !args[i + 1].startsWith('--')) flags.set(name, args[++i])
  else unknownFlags.push(a)
}
/** Positional arguments: the names of the benches to run. */
export const BENCH_NAMES: readonly string[] = names
/** Arguments that are not `--known-flag=value`; index.ts rejects them. */
export const UNKNOWN_FLAGS: readonly string[] = unknownFlags

export const FLAGS_USAGE = Object.values(SETTINGS).map(s => `[--${s.flag}=…]`).join(' ')

function raw (s: Setting): string {
  return flags.get(s.flag) ?? process.env[s.env] ?? s.def
}

function num (s: Setting): number {
  const v = Number(raw(s))
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`--${s.flag} / ${s.env} must be a non-negative number, got ${JSON.stringify(raw(s))}`)
  return v
}

/** Multiplies big-file sizes, the small-file count and the huge file (0.02 = smoke run). */
export const SCALE = num(SETTINGS.scale)
if (SCALE === 0) throw new RangeError('--scale must be > 0')
/** Corpus cache (kept) and work folders (removed after each run). */
export const BENCH_DIR = raw(SETTINGS.dir)
/** Corpus sets the ingest bench runs, comma separated. */
export const SETS: ReadonlyArray<'big' | 'small'> = raw(SETTINGS.sets).split(',').filter(s => s !== '').map(s => {
  if (s !== 'big' && s !== 'small') throw new RangeError(`unknown set ${JSON.stringify(s)} (big, small)`)
  return s
})
/** Small files checked byte-exact after hydrate (every big file is checked). */
export const VERIFY_SAMPLE = Math.floor(num(SETTINGS.verifySample))
/** Period of the RSS sampler. */
export const RSS_SAMPLE_MS = Math.max(1, num(SETTINGS.rssSampleMs))
/** Size of the single-file memory test (4 GiB x SCALE by default, whole 4 KiB pages); 0 skips it. */
export const HUGE_BYTES = raw(SETTINGS.hugeBytes) === ''
  ? Math.max(4096, Math.floor(4 * 1024 ** 3 * SCALE / 4096) * 4096)
  : Math.floor(num(SETTINGS.hugeBytes))
/** restic binary for the reference figures; "off" skips them. */
export const RESTIC_BIN = raw(SETTINGS.restic)
/** When set, a directory that receives a main-thread .cpuprofile of every timed phase. */
export const PROFILE_DIR = raw(SETTINGS.profile)
/** Files of the multi-agent benches (restore, sync); 0 = each bench's default. */
export const FILES = raw(SETTINGS.files) === '' ? 0 : Math.floor(num(SETTINGS.files))
/** MiB of the big file of the restore bench; 0 = its default. */
export const MIB = raw(SETTINGS.mib) === '' ? 0 : Math.floor(num(SETTINGS.mib))
