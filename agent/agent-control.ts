// The agent's control API handlers and event forwarding (docs/agent-control.md, docs/sync.md §8),
// and small helpers of agent.ts: which addresses are this machine's, picking tunables by name.

import { networkInterfaces } from 'node:os'
import { AgentError, AgentCodes } from './errors.js'
import { MAX_FILES_PAGE, type Agent } from './agent.js'
import type { FileRow } from './index-db.js'

export function wireControl (a: Agent): void {
  const s = a.control
  const str = (p: unknown, name: string): string => {
    const v = (p as Record<string, unknown> | null)?.[name]
    if (typeof v !== 'string' || v === '' || v.length > 4096 || v.includes('\0')) throw new AgentError(AgentCodes.BAD_PARAMS, `"${name}" must be a path`)
    return v
  }
  s.handle('status', async () => a.status())
  s.handle('files', async p => filesPage(a, p))
  s.handle('open', async (p, ctx) => await a.open(str(p, 'path'), ctx.signal))
  s.handle('pin', async p => await a.pin(str(p, 'path')))
  s.handle('unpin', async p => a.unpin(str(p, 'path')))
  s.handle('evict', async p => await a.evict(str(p, 'path')))
  s.handle('repair', async (p, ctx) => await a.repairNow(p, ctx.signal))
  s.handle('restore', async (p, ctx) => await a.restore(p, ctx.signal))
  s.handle('index', async (p) => {
    if (p.publish !== undefined && typeof p.publish !== 'boolean') throw new AgentError(AgentCodes.BAD_PARAMS, '"publish" must be true or false')
    return p.publish === true ? await a.index.publish({ force: true }) : a.index.status()
  })
  s.handle('sync', async p => p.action === undefined ? a.sync.status() : await a.sync.resolveHeld(p))
  s.handle('versions', async p => a.sync.versions(p))
  s.handle('restoreVersion', async p => await a.sync.restoreVersion(p))
  s.handle('gc', async () => await a.sync.collector.run())
  s.handle('stop', async () => {
    setImmediate(() => a.requestStop())
    return { stopping: true }
  })
  a.on('file', e => s.publish('file', e))
  a.on('peer', e => s.publish('peer', e))
  a.on('waiting', r => s.publish('waiting', { reason: r }))
  a.on('warning', w => s.publish('warning', w))
  a.on('health', e => s.publish('health', e))
  a.on('audit', r => s.publish('audit', r))
  a.on('repair', e => s.publish('repair', e))
  a.on('index', e => s.publish('index', e))
  a.sync.sync.on('event', e => s.publish('sync', e))
  a.sync.sync.on('device', e => s.publish('device', e))
  a.sync.guard.on('held', e => s.publish('held', e))
}

/** True when `host` is an address of this machine (loopback, the bound host, or an interface's). */
export function isOwnAddress (host: string, bound: string): boolean {
  if (host === bound || host === '0.0.0.0' || host === '::' || host === '::1' || host === 'localhost' || host.startsWith('127.')) return true
  return Object.values(networkInterfaces()).some(list => list?.some(i => i.address === host) === true)
}

/** The tunables named (option name → tunable name through `rename`, default the same name). */
export function pick (o: Readonly<Record<string, number>>, names: string[], rename: Record<string, string> = {}): Record<string, number> {
  const out: Record<string, number> = {}
  for (const n of names) {
    const v = o[rename[n] ?? n]
    if (v !== undefined) out[n] = v
  }
  return out
}

/** A page of watched files for the dashboard: `{folder?, filter?, offset?, limit?}`. */
export function filesPage (a: Agent, p: Record<string, unknown>): { total: number, offset: number, rows: Array<Pick<FileRow, 'folder' | 'rel' | 'state' | 'size' | 'pinned' | 'error'>> } {
  const folder = p.folder
  const filter = p.filter
  const offset = p.offset ?? 0
  const limit = p.limit ?? 100
  if (folder !== undefined && (typeof folder !== 'string' || !a.config.folders.includes(folder))) throw new AgentError(AgentCodes.NOT_WATCHED, `"folder" ${JSON.stringify(String(folder).slice(0, 200))} is not a watched folder`)
  if (filter !== undefined && (typeof filter !== 'string' || filter.length > 1024)) throw new AgentError(AgentCodes.BAD_PARAMS, '"filter" must be a string of at most 1024 characters')
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw new AgentError(AgentCodes.BAD_PARAMS, '"offset" must be a non-negative integer')
  if (!Number.isSafeInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_FILES_PAGE) throw new AgentError(AgentCodes.BAD_PARAMS, `"limit" must be an integer from 1 to ${MAX_FILES_PAGE}`)
  const r = a.db.listFiles({ folder: folder as string | undefined, filter: filter as string | undefined, offset: offset as number, limit: limit as number })
  return { total: r.total, offset: offset as number, rows: r.rows.map(f => ({ folder: f.folder, rel: f.rel, state: f.state, size: f.size, pinned: f.pinned, error: f.error })) }
}
