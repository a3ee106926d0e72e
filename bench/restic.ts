// Reference figures from restic on the same corpus in the same run, done the way
// /work/shared/anchors/restic.sh does it: RESTIC_PASSWORD from the environment, a fresh repository
// and a fresh RESTIC_CACHE_DIR in the scratch dir, the set read from the page cache (warmed first),
// `backup` run from inside the corpus dir, then `restore latest` of each set into a fresh dir.
// Only the restic command is timed; a `sync` after each one is not.

import { spawn } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { SetName } from './corpus.js'
import { syncDisks, warmTree } from './tree.js'

export const RESTIC_PASSWORD = 'anchors-benchmark-password'

export interface ResticResult {
  readonly version: string
  readonly backupSeconds: Partial<Record<SetName, number>>
  readonly restoreSeconds: Partial<Record<SetName, number>>
}

interface Run { code: number | null, output: string }

function run (bin: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise(resolve => {
    let child
    try {
      child = spawn(bin, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
    } catch (err) {
      resolve({ code: null, output: (err as Error).message })
      return
    }
    let output = ''
    const keep = (b: Buffer): void => { output = (output + b.toString()).slice(-8000) }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.on('error', err => resolve({ code: null, output: err.message }))
    child.on('close', code => resolve({ code, output }))
  })
}

/** restic's version string, or null when `bin` is not runnable. */
export async function resticVersion (bin: string): Promise<string | null> {
  if (bin === 'off' || bin === '') return null
  const r = await run(bin, ['version'])
  if (r.code !== 0) return null
  return r.output.trim().split(/\s+/)[1] ?? 'unknown'
}

async function timed (bin: string, args: string[], opts: { cwd?: string, env: NodeJS.ProcessEnv }): Promise<number> {
  const t0 = performance.now()
  const r = await run(bin, args, opts)
  const seconds = (performance.now() - t0) / 1000
  if (r.code !== 0) throw new Error(`restic ${args.join(' ')} failed (${r.code}):\n${r.output}`)
  syncDisks()
  return seconds
}

/** Backup of each set into one fresh repo under `scratch`, then restore of each; `scratch` is removed. */
export async function runRestic (bin: string, version: string, corpusRoot: string, scratch: string, sets: readonly SetName[], log: (s: string) => void): Promise<ResticResult> {
  await fsp.rm(scratch, { recursive: true, force: true })
  await fsp.mkdir(scratch, { recursive: true })
  const repo = join(scratch, 'repo')
  const env = { ...process.env, RESTIC_PASSWORD, RESTIC_CACHE_DIR: join(scratch, 'cache') }
  const backupSeconds: Partial<Record<SetName, number>> = {}
  const restoreSeconds: Partial<Record<SetName, number>> = {}
  try {
    const init = await run(bin, ['-r', repo, 'init'], { env })
    if (init.code !== 0) throw new Error(`restic init failed:\n${init.output}`)
    for (const s of sets) {
      await warmTree(join(corpusRoot, s))
      log(`restic ${version}: backup ${s}`)
      backupSeconds[s] = await timed(bin, ['-r', repo, 'backup', '--quiet', '--host', 'bench', '--tag', s, s], { cwd: corpusRoot, env })
    }
    for (const s of sets) {
      const target = join(scratch, `restore-${s}`)
      await fsp.mkdir(target, { recursive: true })
      log(`restic ${version}: restore ${s}`)
      restoreSeconds[s] = await timed(bin, ['-r', repo, 'restore', 'latest', '--host', 'bench', '--tag', s, '--target', target], { env })
      await fsp.rm(target, { recursive: true, force: true })
    }
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true })
  }
  return { version, backupSeconds, restoreSeconds }
}
