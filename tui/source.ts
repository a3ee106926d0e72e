// Where the dashboard's data comes from: the DashboardSource interface, and ControlSource, its
// implementation over the agent's control API (a unix socket; never agent internals). ControlSource
// keeps one connection with an `all events` subscription and reconnects (every RECONNECT_MS, until
// closed) when the agent restarts; calls made while disconnected fail at once with NOT_RUNNING.

import { ControlClient } from '../agent/control-client.js'
import { AgentError, AgentCodes, errorLine } from '../agent/errors.js'
import type { AgentStatus } from '../agent/status.js'
import type { FilesPage } from './state.js'

export const RECONNECT_MS = 1000
export const CALL_TIMEOUT_MS = 10_000

export interface FilesQuery { folder?: string, filter?: string, offset: number, limit: number }

export interface DashboardSource {
  status: () => Promise<AgentStatus>
  files: (q: FilesQuery) => Promise<FilesPage>
  /** A control method on the selected file: open, pin, unpin, evict; or stop. */
  call: (method: 'open' | 'pin' | 'unpin' | 'evict' | 'stop', params: Record<string, unknown>) => Promise<unknown>
  /** Events from the agent, as they come; returns an unsubscribe function. */
  onEvent: (fn: (event: string, data: unknown) => void) => () => void
  /** Connection changes (connected, or lost with the reason). */
  onConnection: (fn: (connected: boolean, error: string | null) => void) => () => void
  close: () => Promise<void>
}

export class ControlSource implements DashboardSource {
  private readonly home: string
  private client: ControlClient | null = null
  private connecting: Promise<void> | null = null
  private readonly eventFns = new Set<(event: string, data: unknown) => void>()
  private readonly connFns = new Set<(connected: boolean, error: string | null) => void>()
  private timer: NodeJS.Timeout | null = null
  private closed = false
  private lastError: string | null = null
  private readonly reconnectMs: number

  constructor (home: string, opts: { reconnectMs?: number } = {}) {
    this.home = home
    this.reconnectMs = opts.reconnectMs ?? RECONNECT_MS
  }

  /** Connect once (rejects with NOT_RUNNING and the like); later losses reconnect by themselves. */
  async ready (): Promise<void> {
    await this.connect(true)
  }

  private async connect (throwErrors: boolean): Promise<void> {
    if (this.client !== null || this.closed) return
    this.connecting ??= (async () => {
      try {
        const c = await ControlClient.connect(this.home, { timeoutMs: 3000, callTimeoutMs: CALL_TIMEOUT_MS })
        if (this.closed) { await c.close(); return }
        await c.subscribe(null, (event, data) => { for (const fn of this.eventFns) fn(event, data) })
        this.client = c
        this.lastError = null
        for (const fn of this.connFns) fn(true, null)
        void c.whenClosed().catch(() => {}).then(() => {
          if (this.client !== c) return
          this.client = null
          if (this.closed) return
          this.lost('the agent closed the connection')
        })
      } finally {
        this.connecting = null
      }
    })()
    try {
      await this.connecting
    } catch (err) {
      if (throwErrors) throw err
      this.lost(errorLine(err))
    }
  }

  private lost (why: string): void {
    if (why !== this.lastError) {
      this.lastError = why
      for (const fn of this.connFns) fn(false, why)
    }
    if (this.timer === null && !this.closed) {
      this.timer = setTimeout(() => { this.timer = null; void this.connect(false) }, this.reconnectMs)
    }
  }

  private get c (): ControlClient {
    if (this.client === null) throw new AgentError(AgentCodes.NOT_RUNNING, `not connected to the agent of ${JSON.stringify(this.home)}${this.lastError !== null ? ` (${this.lastError})` : ''}`)
    return this.client
  }

  async status (): Promise<AgentStatus> {
    return await this.c.call<AgentStatus>('status')
  }

  async files (q: FilesQuery): Promise<FilesPage> {
    return await this.c.call<FilesPage>('files', { ...q })
  }

  async call (method: 'open' | 'pin' | 'unpin' | 'evict' | 'stop', params: Record<string, unknown>): Promise<unknown> {
    // Opening a large file takes as long as its download: no timeout there.
    return await this.c.call(method, params, method === 'open' ? { timeoutMs: 0 } : {})
  }

  onEvent (fn: (event: string, data: unknown) => void): () => void {
    this.eventFns.add(fn)
    return () => { this.eventFns.delete(fn) }
  }

  onConnection (fn: (connected: boolean, error: string | null) => void): () => void {
    this.connFns.add(fn)
    return () => { this.connFns.delete(fn) }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.eventFns.clear()
    this.connFns.clear()
    const c = this.client
    this.client = null
    await c?.close()
  }
}
