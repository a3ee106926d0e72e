// A sandbox for running `dustbox setup` / `doctor` as a user would, in real child processes, without
// touching the real ~: a temp dir (with a space and Unicode in its name) holding the user's HOME, the
// dustbox home, a runtime dir with no session bus (so `systemctl --user` cannot reach any user
// manager), small Argon2id parameters, a passphrase file, and a free port on 127.0.0.1.

import type { TestContext } from 'node:test'
import { promises as fsp } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import { bindProbe } from '../../setup/index.js'

export const BIN = fileURLToPath(new URL('../../../bin/dustbox.js', import.meta.url))
export const PASSPHRASE = 'correct horse battery staple ü'
/** Small Argon2id parameters for tests (the defaults take ~0.5 s and 256 MiB per seal). */
export const TEST_TUNABLES = JSON.stringify({ kdfOpslimit: 1, kdfMemlimitKib: 64 })

export interface RunResult { code: number, out: string, err: string }

export interface Sandbox {
  readonly dir: string
  /** The user's home ($HOME). */
  readonly userHome: string
  /** The dustbox home ($DUSTBOX_HOME). */
  readonly dbx: string
  readonly passFile: string
  readonly env: NodeJS.ProcessEnv
  run: (args: string[], opts?: { input?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number }) => RunResult
  /** Run `fn` at teardown before the sandbox is removed (stop child processes writing into it). */
  defer: (fn: () => Promise<void>) => void
}

const CLEARED = ['XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_STATE_HOME', 'XDG_RUNTIME_DIR', 'DBUS_SESSION_BUS_ADDRESS', 'DUSTBOX_HOME', 'DUSTBOX_TUNABLES', 'DISPLAY', 'WAYLAND_DISPLAY']

export async function sandbox (t: TestContext): Promise<Sandbox> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'dustbox setup ü-'))
  const deferred: Array<() => Promise<void>> = []
  t.after(async () => {
    for (const fn of deferred.reverse()) await fn().catch(() => {})
    await fsp.rm(dir, { recursive: true, force: true })
  })
  const userHome = join(dir, 'home of Zoë')
  const dbx = join(dir, 'dustbox home ü')
  const run = join(dir, 'run')
  await fsp.mkdir(userHome, { recursive: true })
  await fsp.mkdir(run, { recursive: true, mode: 0o700 })
  const passFile = join(dir, 'passphrase.txt')
  await fsp.writeFile(passFile, PASSPHRASE + '\n', { mode: 0o600 })
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const k of CLEARED) delete env[k]
  Object.assign(env, {
    HOME: userHome,
    XDG_RUNTIME_DIR: run,
    DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(run, 'no-bus')}`,
    DUSTBOX_HOME: dbx,
    DUSTBOX_TUNABLES: TEST_TUNABLES
  })
  return {
    dir,
    userHome,
    dbx,
    passFile,
    env,
    defer: fn => { deferred.push(fn) },
    run: (args, opts = {}) => {
      const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...env, ...opts.env }, input: opts.input ?? '', timeout: opts.timeoutMs ?? 60_000 })
      return { code: r.status ?? -1, out: r.stdout, err: r.stderr }
    }
  }
}

/** A port p with p/tcp, p/udp and (p+1)/udp free on 127.0.0.1 (bounded search). */
export async function freePort (): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const p = 20000 + Math.floor(Math.random() * 40000)
    if (await bindProbe('127.0.0.1', p, 'tcp') === null && await bindProbe('127.0.0.1', p, 'udp') === null && await bindProbe('127.0.0.1', p + 1, 'udp') === null) return p
  }
  throw new Error('no free port found')
}

/** Bytes and nanosecond mtimes of files (null when absent). */
export async function snapshot (paths: string[]): Promise<Record<string, { data: string, mtimeNs: bigint } | null>> {
  const out: Record<string, { data: string, mtimeNs: bigint } | null> = {}
  for (const p of paths) {
    try {
      const st = await fsp.stat(p, { bigint: true })
      out[p] = { data: (await fsp.readFile(p)).toString('hex'), mtimeNs: st.mtimeNs }
    } catch {
      out[p] = null
    }
  }
  return out
}
