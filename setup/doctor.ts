// `dustbox doctor`: checks what makes dustbox work on this machine and explains each finding with a
// fix: identity, settings, key backup (header and owner only, no passphrase), service installed and
// running, agent answering, ports, DHT, inotify watch limit against the folders' directories,
// free space against the donated space. Read-only: it writes nothing.

import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { deriveKeys, loadCrypto, loadSecret, SECRET_FILE } from '../stubs/index.js'
import { loadSettings, settingsPath, type Settings } from '../agent/settings.js'
import type { AgentStatus } from '../agent/status.js'
import { humanBytes } from '../agent/format.js'
import { userDirs } from './files.js'
import { KEY_BACKUP_FILE, readKeyBackupFile } from './key-backup.js'
import { agentPorts, checkPortsFree, runningAgent, tcpConnects } from './ports.js'
import { UNIT_NAME, launchdPlistPath, runTool, systemdUnitPath } from './service.js'
import { reachabilityCheck } from './doctor-reach.js'

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip'

export interface Check {
  readonly id: string
  readonly status: CheckStatus
  readonly message: string
  /** What to do about it (warn and fail). */
  readonly hint?: string
}

export interface DoctorReport {
  /** No check failed. */
  readonly ok: boolean
  readonly home: string
  readonly checks: Check[]
}

export const INOTIFY_LIMIT_PATH = '/proc/sys/fs/inotify/max_user_watches'
/** Directories counted under the folders at most, and for at most this long. */
export const MAX_WALK_DIRS = 1_000_000
export const MAX_WALK_MS = 10_000
/** Below this much free space a file system is reported as failing. */
export const MIN_FREE_BYTES = 512 * 1024 * 1024
/** The watch limit suggested is at least this (the usual distribution value on big machines). */
export const SUGGESTED_MIN_WATCHES = 524_288

export interface DoctorOptions {
  readonly home: string
  readonly env?: NodeJS.ProcessEnv
  readonly platform?: NodeJS.Platform
  /** Replaces the kernel's max_user_watches (tests). */
  readonly inotifyLimit?: number
  readonly maxWalkDirs?: number
  readonly maxWalkMs?: number
}

/** The watch limit to suggest for `dirs` directories: twice as many (others use watches too), a power of two. */
export function suggestedWatches (dirs: number): number {
  let n = SUGGESTED_MIN_WATCHES
  for (let i = 0; i < 40 && n < dirs * 2; i++) n *= 2
  return n
}

export function inotifyHint (dirs: number): string {
  const n = suggestedWatches(dirs)
  return `sudo sysctl fs.inotify.max_user_watches=${n}, and to keep it after a reboot: echo fs.inotify.max_user_watches=${n} | sudo tee /etc/sysctl.d/90-dustbox-inotify.conf`
}

/** Directories under `roots` (the roots included), symbolic links not followed; bounded. */
export async function countDirectories (roots: readonly string[], maxDirs = MAX_WALK_DIRS, maxMs = MAX_WALK_MS): Promise<{ dirs: number, complete: boolean }> {
  const deadline = Date.now() + maxMs
  const stack = [...roots]
  let dirs = 0
  while (stack.length > 0) {
    if (dirs >= maxDirs || Date.now() > deadline) return { dirs, complete: false }
    const dir = stack.pop()!
    dirs++
    let entries: import('node:fs').Dirent[]
    try { entries = await fsp.readdir(dir, { withFileTypes: true }) } catch { continue }
    for (const e of entries) if (e.isDirectory()) stack.push(join(dir, e.name))
  }
  return { dirs, complete: true }
}

export class Doctor {
  private readonly o: DoctorOptions
  private readonly env: NodeJS.ProcessEnv
  private readonly platform: NodeJS.Platform

  constructor (o: DoctorOptions) {
    this.o = o
    this.env = o.env ?? process.env
    this.platform = o.platform ?? process.platform
  }

  async run (): Promise<DoctorReport> {
    const home = this.o.home
    const checks: Check[] = []
    const add = (c: Check): void => { checks.push(c) }

    // Identity.
    let ownerId: string | null = null
    try {
      const root = await loadSecret(home)
      ownerId = deriveKeys(await loadCrypto(), root).ownerId
      root.fill(0)
      add({ id: 'identity', status: 'ok', message: `identity ${ownerId.slice(0, 16)}… in ${join(home, SECRET_FILE)}` })
    } catch (err) {
      add({ id: 'identity', status: 'fail', message: firstLine(err), hint: 'dustbox setup (creates one, or restores yours with --import-backup FILE)' })
    }

    // Settings.
    let settings: Settings | null = null
    try {
      settings = await loadSettings(home)
      if (settings === null) add({ id: 'settings', status: 'warn', message: `no ${settingsPath(home)}: dustbox start runs on its defaults and flags`, hint: 'dustbox setup' })
      else add({ id: 'settings', status: 'ok', message: `${settingsPath(home)}: ${settings.folders?.length ?? 0} folder(s), donating ${humanBytes(settings.donate ?? 0)}, port ${settings.port ?? 0}` })
    } catch (err) {
      add({ id: 'settings', status: 'fail', message: firstLine(err), hint: 'dustbox setup (rewrites it), or fix the field named' })
    }

    // Key backup.
    const backup = settings?.keyBackup ?? join(home, KEY_BACKUP_FILE)
    try {
      const b = await readKeyBackupFile(backup)
      if (ownerId !== null && b.ownerId !== ownerId) add({ id: 'key-backup', status: 'fail', message: `${backup} is the backup of another identity (${b.ownerId.slice(0, 16)}…)`, hint: 'move it away, then run dustbox setup to write this identity\'s backup' })
      else add({ id: 'key-backup', status: 'ok', message: `${backup} (Argon2id ${b.fields.opslimit} pass${b.fields.opslimit === 1 ? '' : 'es'}, ${humanBytes(b.fields.memlimitKib * 1024)}${ownerId !== null ? ', this identity' : ''}); keep a copy away from this computer` })
    } catch (err) {
      const absent = /does not exist/.test((err as Error).message)
      add(absent
        ? { id: 'key-backup', status: 'warn', message: `no key backup at ${backup}: if this computer is lost, your data is gone`, hint: 'dustbox setup (asks for a passphrase and writes it)' }
        : { id: 'key-backup', status: 'fail', message: firstLine(err), hint: 'move it away, then run dustbox setup to write a new one' })
    }

    // Service and agent.
    add(await this.serviceCheck())
    const status = await runningAgent(home, 3000)
    if (status !== null) add({ id: 'agent', status: 'ok', message: `agent running on ${home}, up ${Math.round(status.uptimeMs / 1000)} s` })
    else add({ id: 'agent', status: 'fail', message: `no agent answers on ${home}`, hint: this.platform === 'linux' ? `systemctl --user start ${UNIT_NAME} (or run: dustbox start)` : 'dustbox start' })

    // Ports.
    add(await this.portsCheck(status, settings))

    // DHT.
    if (status === null) add({ id: 'dht', status: 'skip', message: 'not checked: the agent is not running' })
    else if (status.dht.nodes > 0) add({ id: 'dht', status: 'ok', message: `DHT connected: ${status.dht.nodes} node(s) known, udp ${status.dhtPort}` })
    else add({ id: 'dht', status: 'warn', message: `DHT not connected yet (0 nodes, udp ${status.dhtPort})`, hint: `wait a minute; if it stays so, let UDP port ${status.dhtPort} through the firewall and check the bootstrap nodes (--bootstrap)` })

    // Reachability from the internet: the router's port mapping and what peers see.
    add(reachabilityCheck(status))

    // inotify and space.
    const folders = status?.folders.map(f => f.path) ?? [...(settings?.folders ?? [])]
    add(await this.inotifyCheck(folders))
    add(await this.spaceCheck(home, folders, status?.placement.donated ?? settings?.donate ?? 0, status?.placement.given ?? 0))

    return { ok: !checks.some(c => c.status === 'fail'), home, checks }
  }

  private async serviceCheck (): Promise<Check> {
    const dirs = userDirs(this.env)
    if (this.platform === 'darwin') {
      const plist = launchdPlistPath(dirs)
      const there = await fsp.stat(plist).then(() => true, () => false)
      return there ? { id: 'service', status: 'ok', message: `launchd agent ${plist}` } : { id: 'service', status: 'warn', message: 'no launchd agent: the agent does not start at login', hint: 'dustbox setup' }
    }
    if (this.platform !== 'linux') return { id: 'service', status: 'skip', message: `no service support on ${this.platform}` }
    const unit = systemdUnitPath(dirs)
    const there = await fsp.stat(unit).then(() => true, () => false)
    if (!there) return { id: 'service', status: 'warn', message: `no systemd user unit ${unit}: the agent does not start at login`, hint: 'dustbox setup' }
    const r = await runTool('systemctl', ['--user', 'is-active', UNIT_NAME], this.env, 10_000)
    const state = r.out.split('\n')[0]
    if (r.ok) return { id: 'service', status: 'ok', message: `${unit} installed, ${state}` }
    if (r.missing || !/^(inactive|failed|activating|deactivating|unknown)$/.test(state)) {
      return { id: 'service', status: 'warn', message: `${unit} installed; its state is unknown (no systemd user manager answers)`, hint: `systemctl --user enable --now ${UNIT_NAME} in your desktop session` }
    }
    return { id: 'service', status: 'fail', message: `${unit} installed but ${state}`, hint: `systemctl --user enable --now ${UNIT_NAME}; see why with: journalctl --user -u ${UNIT_NAME}` }
  }

  private async portsCheck (status: AgentStatus | null, settings: Settings | null): Promise<Check> {
    if (status !== null) {
      const host = status.host === '0.0.0.0' ? '127.0.0.1' : status.host
      const ok = await tcpConnects(host, status.port)
      return ok
        ? { id: 'ports', status: 'ok', message: `port ${status.port}/tcp accepts connections on ${host}; uTP udp ${status.port} and DHT udp ${status.dhtPort} held by the agent` }
        : { id: 'ports', status: 'fail', message: `port ${status.port}/tcp does not accept connections on ${host}`, hint: 'restart the agent; check a firewall on this machine' }
    }
    const port = settings?.port ?? 0
    if (port === 0) return { id: 'ports', status: 'ok', message: 'the agent takes any free port at start (no fixed port set)' }
    const dht = settings?.dhtPort ?? port + 1
    try {
      await checkPortsFree(settings?.host ?? '0.0.0.0', agentPorts(port, dht))
      return { id: 'ports', status: 'ok', message: `port ${port} (tcp, udp) and DHT udp ${dht} are free for the agent` }
    } catch (err) {
      return { id: 'ports', status: 'fail', message: firstLine(err).replace(/^[A-Z_]+: /, ''), hint: 'stop the program holding it, or choose another port: dustbox setup --port N' }
    }
  }

  private async inotifyCheck (folders: readonly string[]): Promise<Check> {
    if (this.platform !== 'linux') return { id: 'inotify', status: 'skip', message: `not Linux (${this.platform})` }
    let limit = this.o.inotifyLimit
    if (limit === undefined) {
      try { limit = Number((await fsp.readFile(INOTIFY_LIMIT_PATH, 'utf8')).trim()) } catch {}
    }
    if (limit === undefined || !Number.isFinite(limit)) return { id: 'inotify', status: 'skip', message: `cannot read ${INOTIFY_LIMIT_PATH}` }
    if (folders.length === 0) return { id: 'inotify', status: 'ok', message: `no folder watched (limit ${limit} watches)` }
    const { dirs, complete } = await countDirectories(folders, this.o.maxWalkDirs ?? MAX_WALK_DIRS, this.o.maxWalkMs ?? MAX_WALK_MS)
    const n = `${complete ? '' : 'at least '}${dirs} director${dirs === 1 ? 'y' : 'ies'}`
    if (dirs > limit) return { id: 'inotify', status: 'fail', message: `the folders hold ${n}, more than the inotify watch limit ${limit}: changes in some are not noticed`, hint: inotifyHint(dirs) }
    if (dirs * 2 > limit) return { id: 'inotify', status: 'warn', message: `the folders hold ${n}, over half the inotify watch limit ${limit} (other programs need watches too)`, hint: inotifyHint(dirs) }
    return { id: 'inotify', status: 'ok', message: `the folders hold ${n}; inotify watch limit ${limit}` }
  }

  private async spaceCheck (home: string, folders: readonly string[], donate: number, given: number): Promise<Check> {
    const free = async (p: string): Promise<number | null> => {
      try { const s = await fsp.statfs(p); return s.bavail * s.bsize } catch { return null }
    }
    const homeFree = await free(home)
    const parts: string[] = []
    let status: CheckStatus = 'ok'
    let hint: string | undefined
    if (homeFree !== null) {
      const needed = Math.max(0, donate - given)
      parts.push(`home ${humanBytes(homeFree)} free (donating ${humanBytes(donate)}, ${humanBytes(given)} of it in use)`)
      if (homeFree < MIN_FREE_BYTES) { status = 'fail'; hint = 'free some space on the home\'s file system' } else if (homeFree < needed) {
        status = 'warn'
        hint = `free ${humanBytes(needed - homeFree)} there, or donate less: dustbox setup --donate SIZE`
      }
    }
    for (const f of folders.slice(0, 64)) {
      const ff = await free(f)
      if (ff === null) { parts.push(`${f}: cannot be read`); status = 'fail'; hint ??= `check that ${f} exists and is mounted`; continue }
      parts.push(`${f} ${humanBytes(ff)} free`)
      if (ff < MIN_FREE_BYTES && status !== 'fail') { status = 'warn'; hint ??= `restoring files needs room: free some space on the file system of ${f}` }
    }
    return { id: 'space', status, message: parts.join('; ') || 'nothing to check', ...(hint !== undefined ? { hint } : {}) }
  }
}

/** One line per check: `ok    identity    message  (fix: ...)`. */
export function formatReport (r: DoctorReport): string[] {
  const w = Math.max(10, ...r.checks.map(c => c.id.length))
  const lines = r.checks.map(c => `${c.status.padEnd(4)}  ${c.id.padEnd(w)}  ${c.message}${c.hint !== undefined && c.status !== 'ok' ? `  (fix: ${c.hint})` : ''}`)
  const fails = r.checks.filter(c => c.status === 'fail').length
  const warns = r.checks.filter(c => c.status === 'warn').length
  lines.push(fails === 0 && warns === 0 ? 'all good' : `${fails} failed, ${warns} warning(s)`)
  return lines
}

function firstLine (err: unknown): string {
  const m = (err as Error)?.message ?? String(err)
  const i = m.indexOf('\n')
  return i < 0 ? m : m.slice(0, i)
}
