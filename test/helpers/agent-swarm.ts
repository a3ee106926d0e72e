// Test swarm: a real `dustbox dht-node` and n storage peers (child processes, on 127.0.0.1), plus
// an owner agent watching folders, all in one temp dir, torn down with t.after. Helpers to read
// the owner's status and wait (bounded) for a condition on it.

import type { TestContext } from 'node:test'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { LocalSwarm, agentStatus, sleep, type SwarmChild } from '../../agent/swarm.js'
import type { AgentStatus } from '../../agent/status.js'
import { ControlClient } from '../../agent/control-client.js'

export interface TestSwarm {
  readonly swarm: LocalSwarm
  readonly base: string
  readonly peers: SwarmChild[]
  owner: SwarmChild | null
  readonly ownerHome: string
  startOwner: (folders: string[], extraArgs?: string[], tunables?: Record<string, number>) => Promise<SwarmChild>
  status: () => Promise<AgentStatus>
  /** Poll the owner's status until `pred` holds (or fail after timeoutMs with the last status). */
  waitFor: (what: string, pred: (s: AgentStatus) => boolean | Promise<boolean>, timeoutMs?: number) => Promise<AgentStatus>
  call: <T>(method: string, params?: Record<string, unknown>) => Promise<T>
}

export async function testSwarm (t: TestContext, opts: { peers: number, donate?: string }): Promise<TestSwarm> {
  // One hook: stop the swarm, then remove its directory (t.after hooks run in the order they were
  // added, so a separate tempDir hook would remove it while the children still write there).
  const base = await fsp.mkdtemp(join(tmpdir(), 'dustbox-swarm-'))
  const swarm = new LocalSwarm(base)
  t.after(async () => {
    await swarm.close()
    await fsp.rm(base, { recursive: true, force: true, maxRetries: 3 })
  })
  await swarm.startBootstrap()
  const peers = await swarm.startPeers(opts.peers, { donate: opts.donate })
  const ownerHome = join(base, 'owner')
  const ts: TestSwarm = {
    swarm,
    base,
    peers,
    owner: null,
    ownerHome,
    startOwner: async (folders, extraArgs = [], tunables = {}) => {
      ts.owner = await swarm.startAgent({ name: 'owner', home: ownerHome, folders, extraArgs: ['--settle', '0.3', ...extraArgs], tunables })
      return ts.owner
    },
    status: async () => await agentStatus(ownerHome),
    waitFor: async (what, pred, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs
      let last: AgentStatus | null = null
      while (Date.now() < deadline) {
        if (ts.owner !== null && ts.owner.proc.exitCode !== null) throw new Error(`owner exited while waiting for ${what}: ${ts.owner.output.slice(-8).join(' | ')}`)
        try { last = await ts.status() } catch {}
        if (last !== null && await pred(last)) return last
        await sleep(200)
      }
      throw new Error(`timed out waiting for ${what}; last status: ${brief(last)}; owner log: ${ts.owner?.output.slice(-10).join(' | ')}`)
    },
    call: async <T>(method: string, params: Record<string, unknown> = {}): Promise<T> => {
      const c = await ControlClient.connect(ownerHome, { timeoutMs: 3000 })
      try { return await c.call<T>(method, params, { timeoutMs: 300_000 }) } finally { await c.close() }
    }
  }
  return ts
}

/** Files and sizes under a dir (recursively), and the sum of their allocated bytes. */
export async function diskUsage (dir: string): Promise<number> {
  let n = 0
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) n += await diskUsage(p)
    else if (e.isFile()) n += (await fsp.stat(p)).blocks * 512
  }
  return n
}

export function stubbedCount (s: AgentStatus): number {
  return s.folders.reduce((n, f) => n + (f.files.stubbed ?? 0), 0)
}

/** Short monitor, audit and repair timers for the fault tests (peers lost after 3 s of absence). */
export const REPAIR_TUNABLES: Record<string, number> = {
  keepaliveMs: 1000,
  monitorTickMs: 250,
  suspectAfterMs: 2000,
  offlineAfterMs: 1000,
  lostAfterMs: 3000,
  startGraceMs: 1000,
  auditRoundMs: 1000,
  auditPeriodMs: 4000,
  repairCheckMs: 1000,
  repairRetryMs: 1000,
  repairRateBytes: 0,
  hedgeMs: 1000
}

/** Short id (8 hex digits, as status lists peers) of every storage peer of the swarm, by child. */
export async function peerIds (ts: TestSwarm): Promise<Map<SwarmChild, string>> {
  const out = new Map<SwarmChild, string>()
  for (const p of ts.peers) out.set(p, (await agentStatus(p.home)).identity.slice(0, 8))
  return out
}

/** Short ids of the peers the owner records shards of its on. */
export function holders (s: AgentStatus): string[] {
  return s.peers.filter(p => p.holdsForMe > 0).map(p => p.short)
}

/** The parts of a status a failed wait needs (the whole object is too long to read in a log). */
export function brief (s: AgentStatus | null): string {
  if (s === null) return 'none'
  const peers = s.peers.map(p => `${p.short}:${p.connected ? 'c' : '-'}${p.state}/${p.score?.toFixed(2) ?? "-"}/a${p.audits.ok}-${p.audits.failed}/h${p.holdsForMe}`).join(' ')
  const files = s.folders.map(f => JSON.stringify(f.files)).join(' ')
  return `uptime ${s.uptimeMs} ms; files ${files}; health ${JSON.stringify(s.health)}; repair ${JSON.stringify(s.repair)}; audits ${JSON.stringify(s.audits)}; index ${JSON.stringify(s.index)}; peers ${peers}`
}

/** Poll an agent's status (by its home) until `pred` holds; fail after timeoutMs naming its peers, paths and reachability. */
export async function untilStatus (what: string, home: string, pred: (s: AgentStatus) => boolean, timeoutMs: number): Promise<AgentStatus> {
  const deadline = Date.now() + timeoutMs
  let last: AgentStatus | null = null
  while (Date.now() < deadline) {
    try { last = await agentStatus(home) } catch {}
    if (last !== null && pred(last)) return last
    await sleep(250)
  }
  throw new Error(`timed out waiting for ${what}: peers ${last?.peers.map(p => `${p.short}@${p.address ?? '?'}:${p.connected ? p.path ?? '?' : '-'}`).join(' ')}; reachability ${JSON.stringify(last?.reachability)}`)
}

