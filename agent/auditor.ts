// Auditor: proof-of-storage audits of the peers holding this owner's shards (docs/audits.md §6).
// Every AUDIT_ROUND (30 min, jittered ±50 %) each connected peer that is not lost is challenged on its
// copies whose last audit is older than AUDIT_PERIOD (oldest first, at most AUDIT_MAX_PER_ROUND),
// plus AUDIT_SAMPLE random copies (a peer that wiped its disk is caught at the next round, not a
// period later). Challenges come from the answers precomputed at upload (audit-proofs.ts), in
// AUDIT messages of at most 64. A wrong, missing or out-of-range answer marks that copy bad (repair
// rebuilds it elsewhere); every answer moves the peer's score; a message not answered within
// AUDIT_TIMEOUT counts as one failure. Spent challenges are never reused.

import { EventEmitter } from 'node:events'
import type { NetNode, Peer } from '../net/index.js'
import { MAX_AUDIT_ITEMS, type AuditChallenge } from '../net/messages.js'
import { challengeAt, checkAnswer } from './audit-proofs.js'
import type { RepairDb, AuditRow } from './repair-db.js'
import type { PeerMonitor } from './monitor.js'

export const AUDIT_ROUND_MS = 30 * 60_000
export const AUDIT_PERIOD_MS = 7 * 24 * 3600_000
export const AUDIT_SAMPLE = 2
export const AUDIT_MAX_PER_ROUND = 256
export const AUDIT_TIMEOUT_MS = 30_000
/** Most copies of one peer a full audit (`dustbox repair --full`) challenges. */
export const AUDIT_FULL_MAX = 1_000_000
/** Peers audited at once in a round. */
export const AUDIT_PARALLEL = 4

export interface AuditorOptions {
  readonly net: NetNode
  readonly db: RepairDb
  readonly monitor: PeerMonitor
  readonly auditKey: Uint8Array
  readonly roundMs?: number
  readonly periodMs?: number
  readonly sample?: number
  readonly maxPerRound?: number
  readonly timeoutMs?: number
}

export interface AuditResult {
  readonly peer: string
  readonly short: string
  readonly passed: number
  readonly failed: number
  readonly unanswered: number
  /** Copies found bad: block id (hex, 12), shard index, why. */
  readonly bad: ReadonlyArray<{ block: string, idx: number, why: string }>
}

export interface AuditorEvents {
  result: [r: AuditResult]
}

export class Auditor extends EventEmitter<AuditorEvents> {
  private readonly opts: AuditorOptions
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private readonly abort = new AbortController()
  private closed = false
  /** Challenges sent and their bytes on the wire (requests + replies, payload only). */
  challenges = 0
  wireBytes = 0
  rounds = 0

  constructor (opts: AuditorOptions) {
    super()
    this.opts = opts
  }

  start (): void {
    if (this.closed || this.timer !== null) return
    this.schedule()
  }

  private schedule (): void {
    if (this.closed) return
    const base = this.opts.roundMs ?? AUDIT_ROUND_MS
    this.timer = setTimeout(() => {
      this.timer = null
      void this.round().catch(() => {}).finally(() => this.schedule())
    }, Math.round(base * (0.5 + Math.random())))
    this.timer.unref()
  }

  /**
   * One round over every connected peer that holds copies (also what `dustbox repair` runs);
   * `full`: every copy with answers left, not only those due (`dustbox repair --full`).
   */
  async round (opts: { full?: boolean } = {}): Promise<AuditResult[]> {
    if (this.running !== null) await this.running
    const results: AuditResult[] = []
    const run = (async () => {
      const peers = this.opts.net.peers().filter(p => p.isOpen && !this.opts.monitor.isLost(p.key.toString('hex')))
      let i = 0
      const worker = async (): Promise<void> => {
        while (i < peers.length && !this.closed) {
          const p = peers[i++]
          const r = await this.auditPeer(p, opts.full === true).catch(() => null)
          if (r !== null && r.passed + r.failed + r.unanswered > 0) results.push(r)
        }
      }
      await Promise.all(Array.from({ length: AUDIT_PARALLEL }, worker))
      this.rounds++
    })()
    this.running = run
    try { await run } finally { this.running = null }
    return results
  }

  /** Challenge one peer on its due copies plus a random sample. */
  async auditPeer (peer: Peer, full = false): Promise<AuditResult> {
    const { db, monitor, auditKey } = this.opts
    const hex = peer.key.toString('hex')
    const now = Date.now()
    const max = full ? AUDIT_FULL_MAX : this.opts.maxPerRound ?? AUDIT_MAX_PER_ROUND
    const rows = new Map<string, AuditRow>()
    for (const r of db.dueAudits(peer.key, full ? now : now - (this.opts.periodMs ?? AUDIT_PERIOD_MS), max)) rows.set(`${r.blockId.toString('hex')}/${r.idx}`, r)
    for (const r of db.sampleAudits(peer.key, this.opts.sample ?? AUDIT_SAMPLE)) rows.set(`${r.blockId.toString('hex')}/${r.idx}`, r)
    const list = [...rows.values()]
    let passed = 0
    let failed = 0
    let unanswered = 0
    const bad: Array<{ block: string, idx: number, why: string }> = []
    for (let off = 0; off < list.length && !this.closed; off += MAX_AUDIT_ITEMS) {
      const batch = list.slice(off, off + MAX_AUDIT_ITEMS)
      const challenges: AuditChallenge[] = batch.map(r => challengeAt(auditKey, r.shardId, r.size, r.epoch, r.proofNext))
      this.challenges += batch.length
      this.wireBytes += batch.length * (72 + 33) + 2 * (5 + 2)
      // Spend the challenges before sending them (docs/audits.md §2.6): after a crash mid-request
      // the same nonce is never sent again, so no cached answer can pass.
      db.audited(batch.map(row => ({ row, bad: null })))
      let answers: Awaited<ReturnType<Peer['audit']>>
      try {
        answers = await peer.audit(challenges, { timeoutMs: this.opts.timeoutMs ?? AUDIT_TIMEOUT_MS, signal: this.abort.signal })
      } catch {
        if (this.closed) break
        // Unanswered: no copy judged; the peer's score takes one failure.
        unanswered += batch.length
        monitor.record(hex, 0, 1, { audit: true })
        continue
      }
      const outcomes = batch.map((row, j) => {
        const verdict = checkAnswer(row.proofs!, row.proofNext, answers[j])
        if (verdict === 'ok') return { row, bad: null }
        const why = verdict === 'missing' ? 'audit: the peer no longer has it' : verdict === 'bad-range' ? 'audit: the peer holds a shorter copy' : 'audit: wrong proof (altered copy)'
        bad.push({ block: row.blockId.toString('hex').slice(0, 12), idx: row.idx, why })
        db.markBad(row, why)
        return { row, bad: why }
      })
      const nBad = outcomes.filter(o => o.bad !== null).length
      passed += outcomes.length - nBad
      failed += nBad
      monitor.record(hex, outcomes.length - nBad, nBad, { audit: true })
    }
    const r: AuditResult = { peer: hex, short: hex.slice(0, 8), passed, failed, unanswered, bad }
    if (list.length > 0) this.emit('result', r)
    return r
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.abort.abort()
    this.removeAllListeners()
  }
}
