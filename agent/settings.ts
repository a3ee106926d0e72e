// The user's settings file `<home>/settings.json`, written by `dustbox setup` (or by hand) and read by
// `dustbox start` as its defaults: flags > settings > built-in defaults (docs/setup.md § Settings).
// Codec (strict: unknown fields and wrong types are errors naming the file and field), bounded
// read, deterministic encoding (same settings, same bytes) and atomic write. No secrets in it.

import { promises as fsp } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { AgentError, AgentCodes } from './errors.js'
import { MAX_FOLDERS, parseBootstrapFlag, parseHost, parseSize } from './config.js'

export const SETTINGS_FILE = 'settings.json'
export const SETTINGS_VERSION = 1
export const MAX_SETTINGS_BYTES = 64 * 1024
export const MAX_SETTINGS_PATH_BYTES = 4096

export interface Settings {
  readonly version: typeof SETTINGS_VERSION
  /** Absolute paths of the watched folders. */
  readonly folders?: readonly string[]
  /** IPv4 bind address. */
  readonly host?: string
  /** uTP and TCP port (0: any free port). */
  readonly port?: number
  /** DHT UDP port (default port+1). */
  readonly dhtPort?: number
  /** DHT bootstrap `host:port,...` or `none`. */
  readonly bootstrap?: string
  /** Bytes donated to other owners. */
  readonly donate?: number
  /** Ask the router for a port mapping (UPnP / NAT-PMP); applied by the agent from issue 9 on. */
  readonly mapPort?: boolean
  /** Bytes per second relayed for other peers (0 or absent: off). */
  readonly relay?: number
  /** Absolute path of the passphrase-sealed key backup. */
  readonly keyBackup?: string
}

/** Field order of the encoding (and the set of known fields). */
const FIELDS = ['version', 'folders', 'host', 'port', 'dhtPort', 'bootstrap', 'donate', 'mapPort', 'relay', 'keyBackup'] as const

export function settingsPath (home: string): string {
  return join(home, SETTINGS_FILE)
}

/** Deterministic JSON: fixed field order, two-space indent, final LF. */
export function encodeSettings (s: Settings): Uint8Array {
  const o: Record<string, unknown> = {}
  for (const k of FIELDS) if (s[k] !== undefined) o[k] = s[k]
  return Buffer.from(JSON.stringify(o, null, 2) + '\n', 'utf8')
}

/** Parse and check settings text; `path` names the file in errors. */
export function decodeSettings (text: string, path: string): Settings {
  const bad = (field: string, what: string): AgentError =>
    new AgentError(AgentCodes.CONFIG_INVALID, `${JSON.stringify(path)}: ${field === '' ? what : `field "${field}" ${what}`}`)
  let v: unknown
  try { v = JSON.parse(text) } catch (err) { throw bad('', `is not valid JSON (${(err as Error).message})`) }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad('', 'must hold a JSON object')
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (!(FIELDS as readonly string[]).includes(k)) throw bad(k, `is unknown (known fields: ${FIELDS.join(', ')})`)
  }
  if (o.version !== SETTINGS_VERSION) throw bad('version', `must be ${SETTINGS_VERSION} (found ${JSON.stringify(o.version)})`)
  const path1 = (x: unknown, field: string): string => {
    if (typeof x !== 'string' || x === '' || x.includes('\0') || Buffer.byteLength(x) > MAX_SETTINGS_PATH_BYTES || !isAbsolute(x)) {
      throw bad(field, `must be an absolute path (a non-empty string of at most ${MAX_SETTINGS_PATH_BYTES} bytes)`)
    }
    return x
  }
  const port = (x: unknown, field: string): number => {
    if (!Number.isInteger(x) || (x as number) < 0 || (x as number) > 65535) throw bad(field, 'must be an integer 0-65535')
    return x as number
  }
  const out: { -readonly [K in keyof Settings]: Settings[K] } = { version: SETTINGS_VERSION }
  if (o.folders !== undefined) {
    if (!Array.isArray(o.folders) || o.folders.length > MAX_FOLDERS) throw bad('folders', `must be a list of at most ${MAX_FOLDERS} absolute paths`)
    out.folders = o.folders.map((f, i) => path1(f, `folders[${i}]`))
  }
  if (o.host !== undefined) {
    if (typeof o.host !== 'string') throw bad('host', 'must be an IPv4 address string')
    try { out.host = parseHost(o.host) } catch { throw bad('host', `${JSON.stringify(o.host)} is not an IPv4 address`) }
  }
  if (o.port !== undefined) out.port = port(o.port, 'port')
  if (o.dhtPort !== undefined) out.dhtPort = port(o.dhtPort, 'dhtPort')
  if (o.bootstrap !== undefined) {
    if (typeof o.bootstrap !== 'string') throw bad('bootstrap', 'must be a string "host:port,..." or "none"')
    try { parseBootstrapFlag(o.bootstrap) } catch (err) { throw bad('bootstrap', (err as Error).message.replace(/^[A-Z_]+: --bootstrap: /, '')) }
    out.bootstrap = o.bootstrap
  }
  if (o.donate !== undefined) {
    if (typeof o.donate === 'string') {
      try { out.donate = parseSize(o.donate, 'donate') } catch { throw bad('donate', `${JSON.stringify(o.donate)} is not a size (bytes, or a string like "10G")`) }
    } else if (Number.isSafeInteger(o.donate) && (o.donate as number) >= 0) {
      out.donate = o.donate as number
    } else {
      throw bad('donate', 'must be a number of bytes or a size string like "10G"')
    }
  }
  if (o.relay !== undefined) {
    if (typeof o.relay === 'string') {
      try { out.relay = parseSize(o.relay, 'relay') } catch { throw bad('relay', `${JSON.stringify(o.relay)} is not a rate (bytes per second, or a string like "2M")`) }
    } else if (Number.isSafeInteger(o.relay) && (o.relay as number) >= 0) {
      out.relay = o.relay as number
    } else {
      throw bad('relay', 'must be a number of bytes per second or a string like "2M"')
    }
  }
  if (o.mapPort !== undefined) {
    if (typeof o.mapPort !== 'boolean') throw bad('mapPort', 'must be true or false')
    out.mapPort = o.mapPort
  }
  if (o.keyBackup !== undefined) out.keyBackup = path1(o.keyBackup, 'keyBackup')
  return out
}

/** The settings file, or null when absent; a damaged or oversized one is CONFIG_INVALID naming it. */
export async function loadSettings (home: string): Promise<Settings | null> {
  const path = settingsPath(home)
  let text: string
  try {
    const fh = await fsp.open(path, 'r')
    try {
      const st = await fh.stat()
      if (!st.isFile()) throw new AgentError(AgentCodes.CONFIG_INVALID, `${JSON.stringify(path)} is not a regular file`)
      if (st.size > MAX_SETTINGS_BYTES) throw new AgentError(AgentCodes.CONFIG_INVALID, `${JSON.stringify(path)} is larger than ${MAX_SETTINGS_BYTES} bytes`)
      text = await fh.readFile('utf8')
    } finally { await fh.close() }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    if (err instanceof AgentError) throw err
    throw new AgentError(AgentCodes.CONFIG_INVALID, `cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (Buffer.byteLength(text) > MAX_SETTINGS_BYTES) throw new AgentError(AgentCodes.CONFIG_INVALID, `${JSON.stringify(path)} is larger than ${MAX_SETTINGS_BYTES} bytes`)
  return decodeSettings(text, path)
}

/**
 * Write the settings atomically (0600) unless the file already holds exactly these bytes.
 * Returns what happened: 'created', 'updated' or 'unchanged' (file not touched).
 */
export async function saveSettings (home: string, s: Settings): Promise<'created' | 'updated' | 'unchanged'> {
  const path = settingsPath(home)
  const data = encodeSettings(s)
  let old: Buffer | null = null
  try {
    const st = await fsp.stat(path)
    old = st.isFile() && st.size <= MAX_SETTINGS_BYTES ? await fsp.readFile(path) : Buffer.alloc(0)
  } catch {}
  if (old !== null && old.equals(data)) return 'unchanged'
  await fsp.mkdir(home, { recursive: true, mode: 0o700 })
  await writeFileAtomic(path, data, { mode: 0o600 })
  return old === null ? 'created' : 'updated'
}
