// The agent's configuration: defaults (documented in docs/agent.md § Configuration), parsing and
// validation of the `dustbox start` flags (sizes, redundancy, durations, folders), the test-only
// tunables from DUSTBOX_TUNABLES, and agent.json: the effective settings saved in the state dir so
// that `dustbox open` without a running agent knows the bootstrap and ports.

import { promises as fsp } from 'node:fs'
import { join, resolve, sep } from 'node:path'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { parseBootstrap } from '../dht/index.js'
import { AgentError, AgentCodes } from './errors.js'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

/** Space donated to other owners when --donate is not given. */
export const DEFAULT_DONATE = 10 * GiB
/** Local block cache (blocks fetched by recent opens) when --cache is not given. */
export const DEFAULT_CACHE = 256 * MiB
/** A file must be unchanged this long before it is ingested (--settle). */
export const DEFAULT_SETTLE_S = 2
/** A hydrated file unchanged this long is stubbed again unless pinned (--evict-after). */
export const DEFAULT_EVICT_AFTER_S = 24 * 3600
/** 12+6 (1.5x): the most durable 1.5x code the erasure library allows; docs/durability.md § Defaults. Needs 18 peers, 20+ to repair well. */
export const DEFAULT_K = 12
export const DEFAULT_M = 6
export const MAX_SHARDS = 32
export const CONFIG_FILE = 'agent.json'
export const MAX_CONFIG_BYTES = 64 * KiB
export const MAX_FOLDERS = 64

export interface AgentConfig {
  readonly home: string
  readonly folders: readonly string[]
  readonly host: string
  readonly port: number
  readonly dhtPort: number
  /** DHT bootstrap nodes as host:port; false: the first node of a network; undefined: the public routers. */
  readonly bootstrap: readonly string[] | false | undefined
  readonly donate: number
  readonly k: number
  readonly m: number
  readonly cache: number
  readonly settleMs: number
  readonly evictAfterMs: number
  /** A peer holding shards and unreachable this long in total is lost: its shards are rebuilt elsewhere (--lost-after; default monitor.ts LOST_AFTER_MS). */
  readonly lostAfterMs?: number
  readonly watcher: 'auto' | 'parcel' | 'chokidar'
  /** Ask the router for a port mapping (settings.json `mapPort`, set by `dustbox setup`; applied from issue 9 on). */
  readonly mapPort?: boolean
  /**
   * Relay for peers that cannot reach each other (docs/reachability.md §5): bytes per second over all
   * circuits, 0 = off (the default: relaying is opt-in, --relay or settings.json `relay`).
   */
  readonly relayRate?: number
  /** Relay even when NetworkManager says the link is metered (--relay-on-metered). */
  readonly relayOnMetered?: boolean
  /** Test-only overrides of timers and sizes (DUSTBOX_TUNABLES). */
  readonly tunables: Readonly<Record<string, number>>
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: KiB, kb: KiB, kib: KiB, m: MiB, mb: MiB, mib: MiB, g: GiB, gb: GiB, gib: GiB, t: 1024 * GiB, tb: 1024 * GiB, tib: 1024 * GiB }

/** "10G", "512MiB", "1.5 GB", "0" → bytes (binary units: 1 G = 2^30). */
export function parseSize (text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text)
  const unit = m === null ? undefined : UNITS[m[2].toLowerCase()]
  if (m === null || unit === undefined) throw new AgentError(AgentCodes.USAGE, `${what} ${JSON.stringify(text)} is not a size (examples: 0, 512M, 10G, 1.5TiB)`)
  const n = Math.floor(Number(m[1]) * unit)
  if (!Number.isSafeInteger(n)) throw new AgentError(AgentCodes.USAGE, `${what} ${JSON.stringify(text)} is too large`)
  return n
}

/** "4+2" → { k: 4, m: 2 }. */
export function parseRedundancy (text: string): { k: number, m: number } {
  const m = /^\s*(\d{1,2})\s*\+\s*(\d{1,2})\s*$/.exec(text)
  if (m === null) throw new AgentError(AgentCodes.USAGE, `--redundancy ${JSON.stringify(text)} is not K+M (example: 4+2)`)
  const k = Number(m[1])
  const mm = Number(m[2])
  if (k < 1 || mm < 1 || k + mm > MAX_SHARDS) throw new AgentError(AgentCodes.USAGE, `--redundancy ${text}: need K ≥ 1, M ≥ 1 and K+M ≤ ${MAX_SHARDS}`)
  return { k, m: mm }
}

/** Seconds (decimals allowed) → ms. */
export function parseSeconds (text: string, what: string, max = 365 * 24 * 3600): number {
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text)) throw new AgentError(AgentCodes.USAGE, `${what} ${JSON.stringify(text)} is not a number of seconds`)
  const s = Number(text)
  if (s > max) throw new AgentError(AgentCodes.USAGE, `${what} ${text} is more than ${max} seconds`)
  return Math.round(s * 1000)
}

export function parsePortFlag (text: string, what = '--port'): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new AgentError(AgentCodes.USAGE, `${what} ${JSON.stringify(text)} is not a port (0-65535)`)
  return Number(text)
}

export function parseHost (text: string): string {
  if (!/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(text) || text.split('.').some(x => Number(x) > 255)) {
    throw new AgentError(AgentCodes.USAGE, `--host ${JSON.stringify(text)} is not an IPv4 address`)
  }
  return text
}

/** Validate the watched folders: existing directories, not `/`, not nested in one another or in the state dir. */
export async function checkFolders (folders: readonly string[], home: string): Promise<string[]> {
  if (folders.length > MAX_FOLDERS) throw new AgentError(AgentCodes.USAGE, `at most ${MAX_FOLDERS} folders`)
  const out: string[] = []
  for (const f of folders) {
    if (f.includes('\0') || f.trim() === '') throw new AgentError(AgentCodes.USAGE, 'a folder path is empty or has a NUL byte')
    const abs = resolve(f)
    let real: string
    try {
      real = await fsp.realpath(abs)
      if (!(await fsp.stat(real)).isDirectory()) throw new Error('not a directory')
    } catch (err) {
      throw new AgentError(AgentCodes.USAGE, `--folder ${JSON.stringify(f)}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message}`)
    }
    if (real === '/') throw new AgentError(AgentCodes.USAGE, '--folder /: refusing to watch the whole file system')
    const inside = (a: string, b: string): boolean => a === b || a.startsWith(b.endsWith(sep) ? b : b + sep)
    const realHome = await fsp.realpath(home).catch(() => resolve(home))
    if (inside(realHome, real) && realHome !== real) {
      // The state dir inside a folder is allowed (it is excluded from watching), the reverse is not.
    } else if (inside(real, realHome)) {
      throw new AgentError(AgentCodes.USAGE, `--folder ${JSON.stringify(f)} is inside the state directory ${JSON.stringify(home)}`)
    }
    for (const o of out) {
      if (inside(real, o) || inside(o, real)) throw new AgentError(AgentCodes.USAGE, `--folder ${JSON.stringify(f)} overlaps ${JSON.stringify(o)}; watch one of them`)
    }
    out.push(real)
  }
  return out
}

export function parseBootstrapFlag (text: string | undefined): string[] | false | undefined {
  if (text === undefined) return undefined
  if (text === 'none') return false
  try {
    return parseBootstrap(text).map(e => `${e.host}:${e.port}`)
  } catch (err) {
    throw new AgentError(AgentCodes.USAGE, `--bootstrap: ${(err as Error).message}`, { cause: err })
  }
}

const TUNABLE = /^[a-zA-Z][a-zA-Z0-9]{0,63}$/

/** DUSTBOX_TUNABLES: a JSON object of name → non-negative number (tests shrink timers with it). */
export function parseTunables (text: string | undefined): Record<string, number> {
  if (text === undefined || text === '') return {}
  let v: unknown
  try { v = JSON.parse(text) } catch { throw new AgentError(AgentCodes.CONFIG_INVALID, 'DUSTBOX_TUNABLES is not JSON') }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new AgentError(AgentCodes.CONFIG_INVALID, 'DUSTBOX_TUNABLES must be a JSON object')
  const out: Record<string, number> = {}
  for (const [k, n] of Object.entries(v as Record<string, unknown>)) {
    if (!TUNABLE.test(k) || typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new AgentError(AgentCodes.CONFIG_INVALID, `DUSTBOX_TUNABLES: ${JSON.stringify(k)} must be a non-negative number`)
    out[k] = n
  }
  return out
}

/** What agent.json keeps (no secrets). */
export interface SavedConfig {
  readonly folders: string[]
  readonly host: string
  readonly port: number
  readonly dhtPort: number
  readonly bootstrap: string | null
}

export async function saveConfig (home: string, c: SavedConfig): Promise<void> {
  await writeFileAtomic(join(home, CONFIG_FILE), Buffer.from(JSON.stringify(c, null, 2) + '\n'), { mode: 0o600 })
}

/** agent.json, or null when absent; a damaged file is an error naming it. */
export async function loadConfig (home: string): Promise<SavedConfig | null> {
  const path = join(home, CONFIG_FILE)
  let text: string
  try {
    const fh = await fsp.open(path, 'r')
    try {
      const st = await fh.stat()
      if (st.size > MAX_CONFIG_BYTES) throw new AgentError(AgentCodes.CONFIG_INVALID, `${JSON.stringify(path)} is larger than ${MAX_CONFIG_BYTES} bytes`)
      text = await fh.readFile('utf8')
    } finally { await fh.close() }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    if (err instanceof AgentError) throw err
    throw new AgentError(AgentCodes.CONFIG_INVALID, `cannot read ${JSON.stringify(path)}: ${(err as Error).message}`)
  }
  try {
    const v = JSON.parse(text) as Partial<SavedConfig>
    const ok = Array.isArray(v.folders) && v.folders.every(f => typeof f === 'string') && typeof v.host === 'string' &&
      Number.isInteger(v.port) && Number.isInteger(v.dhtPort) && (v.bootstrap === null || typeof v.bootstrap === 'string')
    if (!ok) throw new Error('fields missing or of the wrong type')
    return v as SavedConfig
  } catch (err) {
    throw new AgentError(AgentCodes.CONFIG_INVALID, `${JSON.stringify(path)} is damaged: ${(err as Error).message}`)
  }
}
