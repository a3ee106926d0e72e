// PeerMonitor: the state of every peer that holds this owner's shards, from heartbeats over the
// transport and from audit results: online → suspect → offline → lost (docs/audits.md §6).
// - online: an open channel that was heard from (any frame; keepalive pings every 15 s) within
//   SUSPECT_AFTER;
// - suspect: an open channel silent for SUSPECT_AFTER, or no channel for less than OFFLINE_AFTER;
// - offline: no channel for OFFLINE_AFTER or more (its shards still count: it is expected back);
// - lost: no channel for LOST_AFTER in total, or an audit score below SCORE_LOST. Only then are its
//   shards rebuilt elsewhere. Absence is counted only while this agent runs (and not in its first
//   START_GRACE after a start), so the owner's own downtime never makes its peers "lost": that, and
//   the long LOST_AFTER, is what keeps peers that come back from being replaced (no churn storms).
// A peer lost by absence that comes back is online again; one lost by its score stays lost.
// The score is an exponentially weighted mean of audit and fetch outcomes (1 good, 0 bad).

import { EventEmitter } from 'node:events'
import type { NetNode } from '../net/index.js'
import type { RepairDb, PeerHealthRow } from './repair-db.js'

export type PeerState = 'online' | 'suspect' | 'offline' | 'lost'

export const MONITOR_TICK_MS = 5_000
export const SUSPECT_AFTER_MS = 45_000
export const OFFLINE_AFTER_MS = 10 * 60_000
export const LOST_AFTER_MS = 3 * 24 * 3600_000
export const START_GRACE_MS = 60_000
/** Weight of one outcome in the score. */
export const SCORE_ALPHA = 0.1
/** Below this a peer gets no new shards. */
export const SCORE_UNTRUSTED = 0.6
/** Below this a peer is lost: all its shards are rebuilt elsewhere. */
export const SCORE_LOST = 0.35
/** How often absence clocks are written to the index (also at every state change and at close). */
export const SAVE_EVERY_MS = 30_000

export interface MonitorOptions {
  readonly net: NetNode
  readonly db: RepairDb
  readonly tickMs?: number
  readonly suspectAfterMs?: number
  readonly offlineAfterMs?: number
  readonly lostAfterMs?: number
  readonly startGraceMs?: number
  readonly now?: () => number
}

export interface PeerHealth {
  readonly state: PeerState
  readonly score: number
  readonly absentMs: number
  readonly lostWhy: string | null
  readonly auditsOk: number
  readonly auditsFailed: number
  readonly lastAudit: { readonly at: number, readonly ok: boolean } | null
}

export interface MonitorEvents {
  state: [e: { peer: string, short: string, state: PeerState, prev: PeerState, why: string | null }]
}

export class PeerMonitor extends EventEmitter<MonitorEvents> {
  private readonly opts: MonitorOptions
  private readonly rows = new Map<string, PeerHealthRow>()
  private readonly states = new Map<string, PeerState>()
  private readonly dirty = new Set<string>()
  private timer: NodeJS.Timeout | null = null
  private readonly startedAt: number
  private lastTick: number
  private lastSave: number
  private closed = false

  constructor (opts: MonitorOptions) {
    super()
    this.opts = opts
    this.startedAt = this.now()
    this.lastTick = this.startedAt
    this.lastSave = this.startedAt
    for (const r of opts.db.peerHealth()) this.rows.set(r.key.toString('hex'), r)
    for (const h of opts.db.holders()) this.row(h.peer.toString('hex'))
    for (const hex of this.rows.keys()) this.states.set(hex, this.compute(hex))
    opts.net.on('peer', p => { this.row(p.key.toString('hex')); this.tick() })
    opts.net.on('peer-close', () => this.tick())
  }

  private now (): number { return (this.opts.now ?? Date.now)() }

  start (): void {
    if (this.timer !== null || this.closed) return
    this.timer = setInterval(() => { try { this.tick() } catch {} }, this.opts.tickMs ?? MONITOR_TICK_MS)
    this.timer.unref()
  }

  private row (hex: string): PeerHealthRow {
    let r = this.rows.get(hex)
    if (r === undefined) {
      r = { key: Buffer.from(hex, 'hex'), absentMs: 0, lostAt: null, lostWhy: null, score: 1, auditsOk: 0, auditsFailed: 0, lastAuditAt: null, lastAuditOk: null }
      this.rows.set(hex, r)
      this.states.set(hex, 'online')
      this.dirty.add(hex)
    }
    return r
  }

  private connected (hex: string): { open: boolean, silentMs: number } {
    const p = this.opts.net.peer(Buffer.from(hex, 'hex'))
    if (p === undefined || !p.isOpen) return { open: false, silentMs: 0 }
    return { open: true, silentMs: this.now() - p.lastHeardAt }
  }

  private compute (hex: string): PeerState {
    const r = this.rows.get(hex)
    if (r === undefined) return 'online'
    if (r.lostAt !== null) return 'lost'
    const c = this.connected(hex)
    if (c.open) return c.silentMs >= (this.opts.suspectAfterMs ?? SUSPECT_AFTER_MS) ? 'suspect' : 'online'
    return r.absentMs >= (this.opts.offlineAfterMs ?? OFFLINE_AFTER_MS) ? 'offline' : 'suspect'
  }

  /** Advance absence clocks, apply the lost rules, publish state changes. */
  tick (): void {
    if (this.closed) return
    const now = this.now()
    const elapsed = Math.max(0, now - this.lastTick)
    this.lastTick = now
    const counting = now - this.startedAt >= (this.opts.startGraceMs ?? START_GRACE_MS)
    const lostAfter = this.opts.lostAfterMs ?? LOST_AFTER_MS
    let urgent = false
    for (const [hex, r] of this.rows) {
      const c = this.connected(hex)
      if (c.open) {
        if (r.absentMs !== 0) { r.absentMs = 0; this.dirty.add(hex) }
        if (r.lostAt !== null && r.lostWhy?.startsWith('absent') === true) { r.lostAt = null; r.lostWhy = null; this.dirty.add(hex) }
      } else if (counting && r.lostAt === null) {
        r.absentMs += elapsed
        if (r.absentMs >= lostAfter) {
          r.lostAt = now
          r.lostWhy = `absent for ${Math.round(r.absentMs / 1000)} s (lost after ${Math.round(lostAfter / 1000)} s)`
          this.dirty.add(hex)
        }
      }
      if (r.lostAt === null && r.score < SCORE_LOST) {
        r.lostAt = now
        r.lostWhy = `audit score ${r.score.toFixed(2)} below ${SCORE_LOST}`
        this.dirty.add(hex)
      }
      const prev = this.states.get(hex) ?? 'online'
      const state = this.compute(hex)
      if (state !== prev) {
        this.states.set(hex, state)
        this.dirty.add(hex)
        urgent = true
        this.emit('state', { peer: hex, short: hex.slice(0, 8), state, prev, why: state === 'lost' ? r.lostWhy : null })
      }
    }
    if (this.dirty.size > 0 && (urgent || now - this.lastSave >= SAVE_EVERY_MS)) this.save()
  }

  save (): void {
    if (this.dirty.size === 0) return
    const rows = [...this.dirty].map(h => this.rows.get(h)).filter((r): r is PeerHealthRow => r !== undefined)
    this.dirty.clear()
    this.lastSave = this.now()
    try { this.opts.db.savePeers(rows) } catch {}
  }

  state (hex: string): PeerState {
    return this.states.get(hex) ?? this.compute(hex)
  }

  isLost (hex: string): boolean {
    return this.rows.get(hex)?.lostAt != null
  }

  /** May this peer be given new shards? Not lost, and its score is not below SCORE_UNTRUSTED. */
  usable (hex: string): boolean {
    const r = this.rows.get(hex)
    return r === undefined || (r.lostAt === null && r.score >= SCORE_UNTRUSTED)
  }

  /** Outcomes of challenges (audits) or requests (fetches) of one peer: each moves the score. */
  record (hex: string, passed: number, failed: number, opts: { audit?: boolean } = {}): void {
    const r = this.row(hex)
    for (let i = 0; i < passed; i++) r.score = r.score * (1 - SCORE_ALPHA) + SCORE_ALPHA
    for (let i = 0; i < failed; i++) r.score = r.score * (1 - SCORE_ALPHA)
    if (opts.audit === true) {
      r.auditsOk += passed
      r.auditsFailed += failed
      r.lastAuditAt = this.now()
      r.lastAuditOk = failed === 0
    }
    this.dirty.add(hex)
    if (r.score < SCORE_LOST && r.lostAt === null) this.tick()
  }

  health (hex: string): PeerHealth | null {
    const r = this.rows.get(hex)
    if (r === undefined) return null
    return {
      state: this.state(hex),
      score: Math.round(r.score * 1000) / 1000,
      absentMs: r.absentMs,
      lostWhy: r.lostWhy,
      auditsOk: r.auditsOk,
      auditsFailed: r.auditsFailed,
      lastAudit: r.lastAuditAt === null ? null : { at: r.lastAuditAt, ok: r.lastAuditOk === true }
    }
  }

  /** Every tracked peer, by key hex. */
  keys (): string[] {
    return [...this.rows.keys()]
  }

  lostKeys (): string[] {
    return [...this.rows].filter(([, r]) => r.lostAt !== null).map(([h]) => h)
  }

  close (): void {
    if (this.closed) return
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.save()
    this.closed = true
    this.removeAllListeners()
  }
}
