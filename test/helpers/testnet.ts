// testnet: N real NetNodes, each in its own child process, on 127.0.0.1, killed after the test.
// `node.call(op, args)` runs an operation of test/helpers/net-child.ts and resolves with its result,
// or rejects with an Error whose `code` and message are the child's.

import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { tempDir } from './fixtures.js'

const CHILD = fileURLToPath(new URL('./net-child.js', import.meta.url))
const CALL_TIMEOUT_MS = 120_000

export interface ChildNode {
  readonly id: string
  readonly port: number
  readonly seed: string
  readonly dir: string
  readonly proc: ChildProcess
  call: <T = any>(op: string, args?: Record<string, unknown>) => Promise<T>
}

export interface NodeSpec {
  /** NetNodeOptions except identity (JSON-able). */
  readonly opts?: Record<string, unknown>
  /** Donated bytes; 0 = no store. */
  readonly donate?: number
  readonly quota?: number
}

export interface Forked {
  readonly dir: string
  readonly proc: ChildProcess
  call: <T = any>(op: string, args?: Record<string, unknown>) => Promise<T>
}

/**
 * Forks a helper script that speaks the IPC protocol of net-child.ts (`{ready}` first, then
 * `{id, op, args}` → `{id, ok, result | error}`); closes and kills it after the test.
 */
export async function forkChild (t: TestContext, script: string, prefix = 'dustbox-net-'): Promise<Forked> {
  const dir = await tempDir(t, prefix)
  const proc = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] })
  const pending = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  let next = 1
  let exited = false
  proc.on('exit', () => {
    exited = true
    for (const p of pending.values()) { clearTimeout(p.timer); p.reject(new Error('child exited')) }
    pending.clear()
  })
  await new Promise<void>((resolve, reject) => {
    proc.once('message', () => resolve())
    proc.once('error', reject)
  })
  proc.on('message', (m: any) => {
    const p = pending.get(m.id)
    if (p === undefined) return
    pending.delete(m.id)
    clearTimeout(p.timer)
    if (m.ok === true) p.resolve(m.result)
    else p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }))
  })
  const call = async <T>(op: string, args: Record<string, unknown> = {}): Promise<T> => {
    if (exited) throw new Error('child exited')
    const id = next++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { pending.delete(id); reject(new Error(`child op ${op} timed out`)) }, CALL_TIMEOUT_MS)
      pending.set(id, { resolve, reject, timer })
      proc.send({ id, op, args })
    })
  }
  t.after(async () => {
    if (!exited) {
      await Promise.race([call('close').catch(() => {}), new Promise(resolve => setTimeout(resolve, 5000))])
      proc.kill('SIGKILL')
    }
  })
  return { dir, proc, call }
}

export async function startChild (t: TestContext, spec: NodeSpec = {}): Promise<ChildNode> {
  const { dir, proc, call } = await forkChild(t, CHILD)
  const seed = randomBytes(32).toString('hex')
  const donate = spec.donate ?? 1024 * 1024 * 1024
  const store = donate > 0 ? { dir: join(dir, 'store'), donatedBytes: donate, quota: spec.quota, reserveDiskBytes: 0 } : null
  const r = await call<{ id: string, port: number }>('start', { seed, opts: { host: '127.0.0.1', port: 0, stateDir: dir, store, ...spec.opts } })
  return { id: r.id, port: r.port, seed, dir, proc, call }
}

export async function startChildren (t: TestContext, n: number, spec: NodeSpec = {}): Promise<ChildNode[]> {
  return await Promise.all(Array.from({ length: n }, async () => await startChild(t, spec)))
}
