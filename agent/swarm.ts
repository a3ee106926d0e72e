// A local swarm on 127.0.0.1 made of real processes: one `dustbox dht-node` (the bootstrap) and n
// `dustbox start` storage peers, each in its own home under one base directory. Used by
// `dustbox demo` (what `npm start` runs), the tests and the e2e bench. Every child is stopped by
// close() (SIGTERM, then SIGKILL after a grace period); waits are bounded.

import { spawn, type ChildProcess } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ControlClient } from './control-client.js'
import { AgentError, AgentCodes } from './errors.js'
import type { AgentStatus } from './status.js'

export const BIN = fileURLToPath(new URL('../../bin/dustbox.js', import.meta.url))
export const START_TIMEOUT_MS = 30_000
export const STOP_GRACE_MS = 5_000

/** Redundancy of a local swarm's agents (a handful of peers; the product default 12+6 needs 18). */
export const LOCAL_REDUNDANCY = '4+2'

/** Timers short enough for a loopback swarm to form in a second or two. */
export const LOCAL_TUNABLES: Record<string, number> = {
  lookupIntervalMs: 1000,
  lookupMinGapMs: 200,
  announceMinGapMs: 200,
  announceIntervalMs: 5000,
  dialTimeoutMs: 3000,
  reconnectMinMs: 500,
  waitRecheckMs: 300,
  peerBackoffMs: 2000,
  retryMinMs: 1000
}

export interface SwarmChild {
  readonly name: string
  readonly home: string
  readonly proc: ChildProcess
  readonly output: string[]
}

export interface StartAgentOptions {
  readonly name: string
  readonly home: string
  readonly folders?: readonly string[]
  readonly donate?: string
  readonly extraArgs?: readonly string[]
  readonly tunables?: Record<string, number>
  readonly env?: NodeJS.ProcessEnv
  /** Script to run instead of bin/dustbox.js (tests: a peer that misbehaves on purpose). */
  readonly bin?: string
  /** Address to bind (default 127.0.0.1). */
  readonly host?: string
  /** A command the agent runs under, e.g. ['ip', 'netns', 'exec', NS] (tests in network namespaces). */
  readonly wrap?: readonly string[]
}

export class LocalSwarm {
  readonly base: string
  bootstrap = ''
  readonly children: SwarmChild[] = []
  private closed = false

  constructor (base: string) {
    this.base = base
  }

  private spawnChild (name: string, home: string, args: string[], env: NodeJS.ProcessEnv = {}, bin = BIN, wrap: readonly string[] = []): SwarmChild {
    // stdin stays open as a lifeline: the child stops when it closes (this process died).
    const cmd = [...wrap, process.execPath, bin, '--home', home, ...args]
    const proc = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DUSTBOX_EXIT_WITH_PARENT: '1', ...env } })
    const output: string[] = []
    const keep = (b: Buffer): void => {
      for (const line of b.toString('utf8').split('\n')) if (line !== '' && output.length < 2000) output.push(line)
    }
    proc.stdout!.on('data', keep)
    proc.stderr!.on('data', keep)
    const child = { name, home, proc, output }
    this.children.push(child)
    return child
  }

  /** Start the bootstrap DHT node; resolves with its host:port. */
  async startBootstrap (o: { host?: string, wrap?: readonly string[] } = {}): Promise<string> {
    const home = join(this.base, 'bootstrap')
    await fsp.mkdir(home, { recursive: true, mode: 0o700 })
    const c = this.spawnChild('bootstrap', home, ['dht-node', '--host', o.host ?? '127.0.0.1', '--port', '0', '--bootstrap', 'none'], {}, BIN, o.wrap)
    const deadline = Date.now() + START_TIMEOUT_MS
    while (Date.now() < deadline) {
      const line = c.output.find(l => l.startsWith('dht-node listening on udp '))
      if (line !== undefined) {
        this.bootstrap = line.slice('dht-node listening on udp '.length).split(' ')[0]
        return this.bootstrap
      }
      if (c.proc.exitCode !== null) break
      await sleep(50)
    }
    throw new AgentError(AgentCodes.INTERNAL, `the bootstrap node did not start: ${c.output.slice(-5).join(' | ')}`)
  }

  /** Start an agent (`dustbox start`) as a child; resolves once its control API answers. */
  async startAgent (o: StartAgentOptions): Promise<SwarmChild> {
    await fsp.mkdir(o.home, { recursive: true, mode: 0o700 })
    const args = ['start', '--no-tui', '--host', o.host ?? '127.0.0.1', '--port', '0', '--bootstrap', this.bootstrap, '--donate', o.donate ?? '4G']
    for (const f of o.folders ?? []) args.push('--folder', f)
    if (!(o.extraArgs ?? []).includes('--redundancy')) args.push('--redundancy', LOCAL_REDUNDANCY)
    args.push(...(o.extraArgs ?? []))
    const tunables = { ...LOCAL_TUNABLES, ...o.tunables }
    const c = this.spawnChild(o.name, o.home, args, { DUSTBOX_TUNABLES: JSON.stringify(tunables), ...o.env }, o.bin, o.wrap)
    await this.waitControl(c)
    return c
  }

  async waitControl (c: SwarmChild): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS
    while (Date.now() < deadline) {
      if (c.proc.exitCode !== null) throw new AgentError(AgentCodes.INTERNAL, `${c.name} exited (${c.proc.exitCode}): ${c.output.slice(-5).join(' | ')}`)
      try {
        const client = await ControlClient.connect(c.home, { timeoutMs: 1000 })
        await client.close()
        if (c.output.some(l => l.startsWith('dustbox agent '))) return
      } catch {}
      await sleep(100)
    }
    throw new AgentError(AgentCodes.INTERNAL, `${c.name} did not start in ${START_TIMEOUT_MS} ms: ${c.output.slice(-5).join(' | ')}`)
  }

  /** Start n storage peers (no folder). */
  async startPeers (n: number, opts: Partial<StartAgentOptions> = {}): Promise<SwarmChild[]> {
    return await Promise.all(Array.from({ length: n }, async (_, i) => await this.startAgent({ ...opts, name: `peer-${i + 1}`, home: join(this.base, `peer-${i + 1}`) })))
  }

  /** Stop one child: SIGTERM (or the given signal), SIGKILL after the grace period. */
  async stop (c: SwarmChild, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) return
    const exited = new Promise<void>(resolve => c.proc.once('exit', () => resolve()))
    c.proc.kill(signal)
    const t = setTimeout(() => c.proc.kill('SIGKILL'), STOP_GRACE_MS)
    await exited
    clearTimeout(t)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all(this.children.map(async c => await this.stop(c)))
  }
}

/** Status of an agent through its control API. */
export async function agentStatus (home: string): Promise<AgentStatus> {
  const c = await ControlClient.connect(home, { timeoutMs: 3000 })
  try { return await c.call<AgentStatus>('status') } finally { await c.close() }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}
