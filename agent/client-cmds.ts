// The CLI commands that talk to a running agent through its control API: status, open, pin, unpin,
// evict, stop. `open` also works with no agent running: it opens the home itself (key, index, a
// transport node of its own) and fetches the shards from the peers recorded in the index.

import { spawn } from 'node:child_process'
import { basename, resolve } from 'node:path'
import { ControlClient } from './control-client.js'
import { AgentError, AgentCodes } from './errors.js'
import { humanBytes, portMappingLine } from './format.js'
import type { AgentStatus } from './status.js'
import { loadConfig } from './config.js'
import { openStandalone } from './standalone-open.js'

export interface Io { out: (l: string) => void, err: (l: string) => void }

async function tryConnect (home: string): Promise<ControlClient | null> {
  try {
    return await ControlClient.connect(home, { timeoutMs: 3000 })
  } catch (err) {
    if ((err as { code?: string }).code === AgentCodes.NOT_RUNNING) return null
    throw err
  }
}

export async function withAgent<T> (home: string, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const c = await tryConnect(home)
  if (c === null) throw new AgentError(AgentCodes.NOT_RUNNING, `no agent is running on ${JSON.stringify(home)} (start one with "dustbox start --home ${home}")`)
  try { return await fn(c) } finally { await c.close() }
}

export async function statusCmd (home: string, json: boolean, io: Io): Promise<void> {
  const s = await withAgent(home, async c => await c.call<AgentStatus>('status'))
  if (json) { io.out(JSON.stringify(s)); return }
  const connected = s.peers.filter(p => p.connected)
  io.out(`agent ${s.identity.slice(0, 16)}…  up ${Math.round(s.uptimeMs / 1000)} s  ${s.host}:${s.port}  DHT udp ${s.dhtPort} (${s.dht.nodes} nodes)`)
  io.out(`redundancy ${s.redundancy.k}+${s.redundancy.m}  peers ${connected.length} connected, ${connected.filter(p => p.offersSpace).length} offering space`)
  const r = s.reachability
  if (r !== undefined) io.out(`reachability: ${r.natType === 'unknown' ? 'not known yet (no peer over uTP)' : r.natType === 'open' ? 'reachable directly' : `behind a NAT (${r.natType})`}${r.publicAddress !== null ? `, seen at ${r.publicAddress.host}:${r.publicAddress.port}` : ''} by ${r.observers} peers on ${r.observerHosts} hosts`)
  const pm = s.portMapping
  if (pm !== undefined && pm.state !== 'off') io.out(portMappingLine(pm))
  const paths = { punched: connected.filter(p => p.path === 'punched').length, relayed: connected.filter(p => p.path === 'relayed').length }
  if (paths.punched + paths.relayed > 0) io.out(`paths: ${connected.length - paths.punched - paths.relayed} direct, ${paths.punched} through punched holes, ${paths.relayed} relayed`)
  if (s.relay?.enabled === true) io.out(`relaying for others: ${s.relay.circuits} circuits open, ${s.relay.opened} since start, ${humanBytes(s.relay.bytes)} forwarded`)
  for (const f of s.folders) {
    const parts = Object.entries(f.files).map(([state, n]) => `${n} ${state}`)
    io.out(`folder ${f.path}: ${parts.length === 0 ? 'no files yet' : parts.join(', ')}`)
  }
  io.out(`queue ${s.queue.active} active, ${s.queue.pending} pending; ${s.queue.stubbed} stubbed, ${s.queue.failed} failed since start`)
  io.out(`network: my shards on peers ${humanBytes(s.placement.taken)}; I hold ${humanBytes(s.placement.given)} for others; donating ${humanBytes(s.placement.donated)}${(s.placement.devicesDonated ?? 0) > 0 ? ` (my other devices ${humanBytes(s.placement.devicesDonated ?? 0)})` : ''} (+${humanBytes(s.placement.grace)} grace)`)
  if (s.placement.waiting !== null) io.out(`WAITING: ${s.placement.waiting}`)
  io.out(`cache ${humanBytes(s.cache.bytes)} of ${humanBytes(s.cache.limit)}`)
  const h = s.health
  io.out(`health: ${h.files} placed files, ${h.full} at full redundancy, ${h.degraded} degraded, ${h.atRisk} at risk, ${h.unavailable} unavailable now; repairing ${h.repairing} blocks (${s.repair.shardsRebuilt} shards rebuilt since start)`)
  if (h.unrecoverable > 0) {
    io.out(`UNRECOVERABLE: ${h.unrecoverable} files have a block with fewer than ${s.redundancy.k} shards left anywhere:`)
    for (const f of s.unrecoverable) io.out(`  ${f.folder}/${f.rel} (${f.state})`)
  }
  const sy = s.sync
  if (sy !== undefined) {
    const online = sy.devices.filter(d => d.online).length
    io.out(`device ${sy.device.id} (${sy.device.name}); ${sy.devices.length === 0 ? 'no other device of this owner yet' : `other devices: ${online} of ${sy.devices.length} online (${sy.devices.map(d => `${d.id} ${d.name}`).join(', ')})`}`)
    for (const h of sy.held) io.out(`HELD: ${h.files} of ${h.of} files of ${h.folder} were deleted at once; not sent to the other devices until "dustbox sync confirm" (or "dustbox sync revert" brings their stubs back)`)
    if (sy.openConflicts.length > 0) io.out(`CONFLICTS: ${sy.openConflicts.length} open (the other version of each file is kept under this name):`)
    for (const c of sy.openConflicts) io.out(`  ${c.folder}/${c.rel}`)
  }
  for (const p of s.peers.slice(0, 50)) {
    const audit = p.lastAudit === null ? 'never audited' : `audit ${p.lastAudit.ok ? 'ok' : 'FAILED'} ${Math.round((Date.now() - p.lastAudit.at) / 1000)} s ago`
    io.out(`  peer ${p.short} ${(p.state ?? (p.connected ? 'connected' : 'offline')).padEnd(9)} holds ${humanBytes(p.holdsForMe)} of mine, I hold ${humanBytes(p.iHoldForThem)} of theirs${p.offersSpace ? '' : ', offers no space'}; score ${p.score ?? '-'}, ${audit}${p.lostWhy !== null ? ` (lost: ${p.lostWhy})` : ''}`)
  }
}

interface RepairReply {
  audited: { peers: number, passed: number, failed: number, unanswered: number }
  repair: AgentStatus['repair']
  unrecoverable: AgentStatus['unrecoverable']
  unrecoverableTotal: number
}

/** `dustbox repair`: audit every peer now, repair what needs it, list what cannot be recovered. Exit 1 if anything is unrecoverable. */
export async function repairCmd (home: string, opts: { wait: boolean, audit: boolean, full?: boolean, json: boolean }, io: Io): Promise<number> {
  const r = await withAgent(home, async c => {
    const sub = opts.json ? null : await c.subscribe(['repair'], (_e, d) => {
      const e = d as { state?: string, block?: string, shards?: number, error?: string }
      if (e.state === 'repaired') io.err(`  block ${e.block}: ${e.shards ?? 0} shards rebuilt`)
      else if (e.state === 'failed') io.err(`  block ${e.block}: ${e.error ?? 'failed'} (retried later)`)
    })
    try {
      return await c.call<RepairReply>('repair', { wait: opts.wait, audit: opts.audit, full: opts.full === true }, { timeoutMs: 24 * 3600_000 })
    } finally {
      await sub?.close()
    }
  })
  if (opts.json) {
    io.out(JSON.stringify(r))
  } else {
    const a = r.audited
    if (opts.audit) io.out(`audited ${a.peers} peers: ${a.passed} answers right, ${a.failed} wrong or missing, ${a.unanswered} unanswered`)
    io.out(`repair: ${r.repair.repaired} blocks repaired, ${r.repair.shardsRebuilt} shards rebuilt, ${r.repair.failed} failed attempts, ${r.repair.queued + r.repair.active} still queued`)
    if (r.unrecoverableTotal === 0) io.out('every placed file can be recovered')
    else {
      io.out(`UNRECOVERABLE: ${r.unrecoverableTotal} files have a block with too few shards left anywhere:`)
      for (const f of r.unrecoverable) io.out(`  ${f.folder}/${f.rel} (${f.state === 'hydrated' ? 'still local: placed again' : 'stub only'})`)
    }
  }
  return r.unrecoverableTotal > 0 ? 1 : 0
}

export function launchDefault (path: string, io: Io): void {
  const opener = process.platform === 'darwin' ? 'open' : 'xdg-open'
  try {
    const child = spawn(opener, [path], { detached: true, stdio: 'ignore' })
    child.on('error', () => io.err(`note: could not run ${opener}; the file is at ${path}`))
    child.unref()
  } catch {
    io.err(`note: could not run ${opener}; the file is at ${path}`)
  }
}

export async function openCmd (home: string, stubs: string[], opts: { launch: boolean, json: boolean, bootstrap?: string }, io: Io): Promise<number> {
  let code = 0
  const client = await tryConnect(home)
  try {
    for (const s of stubs) {
      const path = resolve(s)
      try {
        let r: { path: string, size: number, blocks: number }
        if (client !== null) {
          let last = 0
          const sub = await client.subscribe(['file'], (_e, d) => {
            const f = d as { path?: string, state?: string, bytes?: number, size?: number }
            if (opts.json || f.state !== 'hydrating' || f.size === undefined || f.size === 0) return
            const pct = Math.floor(100 * (f.bytes ?? 0) / f.size)
            if (pct >= last + 10) { last = pct; io.err(`  ${basename(f.path ?? '')} ${pct}%`) }
          })
          try {
            r = await client.call('open', { path }, { timeoutMs: 24 * 3600_000 })
          } finally {
            await sub.close()
          }
        } else {
          const cfg = await loadConfig(home)
          r = await openStandalone(home, path, { bootstrap: opts.bootstrap ?? cfg?.bootstrap ?? undefined, onProgress: (done, total) => { if (!opts.json && total > 0) io.err(`  ${Math.floor(100 * done / total)}%`) } })
        }
        if (opts.json) io.out(JSON.stringify({ ok: true, stub: path, ...r }))
        else io.out(`restored ${r.path} (${humanBytes(r.size)})${client === null ? ' [no agent running: fetched directly]' : ''}`)
        if (opts.launch) launchDefault(r.path, io)
      } catch (err) {
        code = 1
        const e = err as { code?: string, message?: string }
        const line = typeof e.code === 'string' && e.message?.startsWith(e.code) === true ? e.message : `${AgentCodes.INTERNAL}: ${e.message ?? String(err)}`
        if (opts.json) io.out(JSON.stringify({ ok: false, stub: path, error: line }))
        io.err(line)
      }
    }
  } finally {
    await client?.close()
  }
  return code
}

export async function pathCmd (home: string, method: 'pin' | 'unpin' | 'evict', paths: string[], json: boolean, io: Io): Promise<void> {
  await withAgent(home, async c => {
    for (const p of paths) {
      const r = await c.call<Record<string, unknown>>(method, { path: resolve(p) }, { timeoutMs: 24 * 3600_000 })
      if (json) io.out(JSON.stringify(r))
      else if (method === 'pin') io.out(`pinned ${String(r.path)}${r.hydrated === true ? ' (restored)' : ''}: it stays local`)
      else if (method === 'unpin') io.out(`unpinned ${String(r.path)}: stubbed again after --evict-after without change`)
      else io.out(r.queued === true ? `evicting ${String(r.path)}: it becomes a stub once its blocks are placed` : `${String(r.path)} is already a stub`)
    }
  })
}

export async function stopCmd (home: string, io: Io): Promise<void> {
  await withAgent(home, async c => {
    await c.call('stop')
    await c.whenClosed().catch(() => {})
  })
  io.out('agent stopping')
}
