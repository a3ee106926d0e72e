// Fixtures for the dashboard tests: a complete AgentStatus, a fake DashboardSource that records
// calls and lets the test push events, and a renderer at any terminal size (ink-testing-library's
// stdout is fixed at 100 columns).

import { EventEmitter } from 'node:events'
import { render, type Instance } from 'ink'
import type { AgentStatus, PeerStatus } from '../../agent/status.js'
import type { DashboardSource, FilesQuery } from '../../tui/source.js'
import type { FileItem, FilesPage } from '../../tui/state.js'

export const ID = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9'

export function peer (i: number, over: Partial<PeerStatus> = {}): PeerStatus {
  const hex = (i.toString(16).padStart(2, '0') + 'f00dbeef').repeat(8).slice(0, 64)
  return { id: `PEER${i}`, short: hex.slice(0, 8), connected: true, holdsForMe: 3 * 1024 * 1024 * (i + 1), iHoldForThem: 1024 * 1024 * i, offersSpace: true, freeForMe: 1 << 30, address: `127.0.0.1:${40000 + i}`, transport: i % 2 === 0 ? 'utp' : 'tcp', path: 'direct', rttMs: 0.5 + i, state: 'online', score: 1, lostWhy: null, audits: { ok: 10 * i, failed: 0 }, lastAudit: { at: Date.now() - 60_000 * i, ok: true }, ...over }
}

export function status (over: Partial<AgentStatus> = {}): AgentStatus {
  return {
    version: 1,
    identity: ID,
    home: '/home/ana/.local/state/dustbox',
    uptimeMs: 3723_000,
    host: '0.0.0.0',
    port: 40001,
    dhtPort: 40002,
    dht: { nodes: 23, ready: true },
    network: { bootstrap: ['127.0.0.1:6881'] },
    redundancy: { k: 4, m: 2 },
    peers: [0, 1, 2, 3, 4, 5].map(i => peer(i)),
    folders: [
      { path: '/home/ana/Fotos 📷', files: { stubbed: 1000, hydrated: 3, pending: 2, uploading: 1 }, bytes: { stubbed: 5 * 2 ** 30, hydrated: 30 * 2 ** 20, pending: 2048, uploading: 96 * 2 ** 20 } },
      { path: '/home/ana/文書', files: { stubbed: 12 }, bytes: { stubbed: 12 * 2 ** 20 } }
    ],
    queue: { pending: 2, active: 1, stubbed: 1012, failed: 0 },
    placement: { waiting: null, bytesSent: 8 * 2 ** 30, shardsSent: 9000, taken: 8 * 2 ** 30, donated: 10 * 2 ** 30, grace: 2 ** 30, given: 2 ** 30 },
    cache: { bytes: 0, limit: 256 * 2 ** 20 },
    fetchedBytes: 0,
    traffic: { bytesIn: 1000, bytesOut: 2000 },
    transfers: [{ folder: '/home/ana/Fotos 📷', rel: 'urlaub/Strand 🏖.mov', direction: 'up', size: 96 * 2 ** 20, bytes: 48 * 2 ** 20, startedAt: Date.now() - 2000, updatedAt: Date.now() }],
    health: { files: 1015, full: 1012, degraded: 2, atRisk: 1, unavailable: 0, repairing: 0, unrecoverable: 0, checkedAt: Date.now() },
    repair: { queued: 0, active: 0, repaired: 0, refreshed: 0, failed: 0, shardsRebuilt: 0, bytesFetched: 0, bytesSent: 0, lastCheckAt: Date.now(), unrecoverable: 0 },
    index: { seq: 3, publishedAt: Date.now() - 5000, files: 12, indexBytes: 9000, chunks: 1, chunksPlaced: 0, rootCopies: 5, pointer: true, lastError: null },
    audits: { rounds: 3, challenges: 40, wireBytes: 4200 },
    unrecoverable: [],
    ...over
  }
}

export function fileItems (folder: string, n: number): FileItem[] {
  return Array.from({ length: n }, (_, i) => ({ folder, rel: `Bild ${String(i).padStart(4, '0')} ünï.jpg`, state: i % 3 === 0 ? 'hydrated' : 'stubbed', size: 1000 * (i + 1), pinned: i === 1, error: null }))
}

/** A source whose answers the test sets and whose calls it reads. */
export class FakeSource implements DashboardSource {
  st: AgentStatus = status()
  all: FileItem[] = fileItems('/home/ana/Fotos 📷', 120)
  readonly calls: Array<{ method: string, params: Record<string, unknown> }> = []
  readonly queries: FilesQuery[] = []
  private readonly ev = new EventEmitter()
  statusCalls = 0

  async status (): Promise<AgentStatus> { this.statusCalls++; return this.st }
  async files (q: FilesQuery): Promise<FilesPage> {
    this.queries.push(q)
    const rows = this.all.filter(f => (q.folder === undefined || f.folder === q.folder) && (q.filter === undefined || f.rel.includes(q.filter)))
    return { total: rows.length, offset: q.offset, rows: rows.slice(q.offset, q.offset + q.limit) }
  }

  async call (method: string, params: Record<string, unknown>): Promise<unknown> { this.calls.push({ method, params }); return {} }
  onEvent (fn: (event: string, data: unknown) => void): () => void { this.ev.on('e', fn); return () => { this.ev.off('e', fn) } }
  onConnection (fn: (c: boolean, e: string | null) => void): () => void { this.ev.on('c', fn); return () => { this.ev.off('c', fn) } }
  emit (event: string, data: unknown): void { this.ev.emit('e', event, data) }
  async close (): Promise<void> {}
}

class FakeStdout extends EventEmitter {
  readonly columns: number
  readonly rows: number
  readonly isTTY = true
  frames: string[] = []
  constructor (columns: number, rows: number) { super(); this.columns = columns; this.rows = rows }
  write = (s: string): boolean => { this.frames.push(s); return true }
}

class FakeStdin extends EventEmitter {
  isTTY = true
  data: string | null = null
  write = (d: string): void => { this.data = d; this.emit('readable'); this.emit('data', d) }
  setEncoding (): void {}
  setRawMode (): void {}
  resume (): void {}
  pause (): void {}
  ref (): void {}
  unref (): void {}
  read = (): string | null => { const d = this.data; this.data = null; return d }
}

export interface Rendered {
  lastFrame: () => string
  stdin: FakeStdin
  instance: Instance
  frames: string[]
}

/** Render a tree on a fake terminal of the given size (debug mode: every frame written whole). */
export function renderAt (tree: React.JSX.Element, columns: number, rows: number): Rendered {
  const stdout = new FakeStdout(columns, rows)
  const stdin = new FakeStdin()
  const instance = render(tree, { stdout: stdout as unknown as NodeJS.WriteStream, stdin: stdin as unknown as NodeJS.ReadStream, stderr: stdout as unknown as NodeJS.WriteStream, debug: true, exitOnCtrlC: false, patchConsole: false })
  return { lastFrame: () => stdout.frames[stdout.frames.length - 1] ?? '', stdin, instance, frames: stdout.frames }
}

// eslint-disable-next-line no-control-regex
export const plain = (s: string): string => s.replace(/\u001b\[[0-9;]*m/g, '')

export async function tick (ms = 30): Promise<void> { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Wait (bounded) until `pred` holds. */
export async function until (what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await tick(20)
  }
}
