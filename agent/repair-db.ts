// RepairDb: the index queries and writes of monitoring, audits and repair, on the agent's SQLite
// index (index-db.ts owns the schema): each peer's health (absence clock, lost mark, audit score),
// the audit state of every shard copy (precomputed answers, epoch, next challenge, last audit, bad
// mark), the blocks whose good copies fell to the repair threshold (most at risk first), the copies
// a repair replaces, the shards left on peers that no row references (orphans, deleted when the peer
// is next seen), and the files that cannot be recovered. "Good" copy: not marked bad, on a peer not
// marked lost. Every multi-row change is one transaction.

import type Database from 'better-sqlite3'
import type { IndexDb, ShardRow, BlockRow } from './index-db.js'

export interface PeerHealthRow {
  readonly key: Buffer
  absentMs: number
  lostAt: number | null
  lostWhy: string | null
  score: number
  auditsOk: number
  auditsFailed: number
  lastAuditAt: number | null
  lastAuditOk: boolean | null
}

/** A shard copy with its audit state. */
export interface AuditRow {
  readonly blockId: Buffer
  readonly idx: number
  readonly shardId: Buffer
  readonly peer: Buffer
  readonly size: number
  readonly proofs: Buffer | null
  readonly epoch: number
  readonly proofNext: number
  readonly auditedAt: number
  readonly bad: string | null
}

export interface RepairCandidate extends BlockRow {
  /** Distinct shard indexes with a good copy. */
  readonly good: number
}

export interface UnrecoverableFile {
  readonly folder: string
  readonly rel: string
  readonly state: string
  /** Blocks of its current version with fewer than k good copies. */
  readonly blocks: number
}

/** Good copies: not bad, and on a peer not marked lost. */
const GOOD = 's.bad IS NULL AND NOT EXISTS (SELECT 1 FROM peer_health h WHERE h.key = s.peer AND h.lost_at IS NOT NULL)'
/** Blocks this device placed that a kept version (of any file, any device: docs/sync.md §7) or the index lists. */
const USED = `SELECT vb.block_id AS id FROM version_blocks vb JOIN blocks b ON b.id = vb.block_id WHERE b.remote = 0
  UNION SELECT block_id AS id FROM index_blocks`

interface RawAudit { block_id: Buffer, idx: number, shard_id: Buffer, peer: Buffer, size: number, proofs: Buffer | null, epoch: number, proof_next: number, audited_at: number, bad: string | null }
const AUDIT_COLS = 's.block_id, s.idx, s.shard_id, s.peer, s.size, s.proofs, s.epoch, s.proof_next, s.audited_at, s.bad'
function auditRow (r: RawAudit): AuditRow {
  return { blockId: r.block_id, idx: r.idx, shardId: r.shard_id, peer: r.peer, size: r.size, proofs: r.proofs, epoch: r.epoch, proofNext: r.proof_next, auditedAt: r.audited_at, bad: r.bad }
}

export class RepairDb {
  private readonly index: IndexDb
  private readonly db: Database.Database
  private readonly st: Record<string, Database.Statement>
  private readonly now: () => number

  constructor (index: IndexDb, now: () => number = Date.now) {
    this.index = index
    this.db = index.raw
    this.now = now
    const p = (sql: string): Database.Statement => this.db.prepare(sql)
    this.st = {
      peerHealth: p('SELECT key, absent_ms, lost_at, lost_why, score, audits_ok, audits_failed, last_audit_at, last_audit_ok FROM peer_health'),
      savePeer: p(`INSERT INTO peer_health (key, absent_ms, lost_at, lost_why, score, audits_ok, audits_failed, last_audit_at, last_audit_ok) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET absent_ms = excluded.absent_ms, lost_at = excluded.lost_at, lost_why = excluded.lost_why, score = excluded.score,
        audits_ok = excluded.audits_ok, audits_failed = excluded.audits_failed, last_audit_at = excluded.last_audit_at, last_audit_ok = excluded.last_audit_ok`),
      holders: p('SELECT peer, COUNT(*) AS n FROM shards WHERE bad IS NULL GROUP BY peer'),
      copies: p(`SELECT ${AUDIT_COLS} FROM shards s WHERE s.block_id = ? ORDER BY s.idx`),
      due: p(`SELECT ${AUDIT_COLS} FROM shards s WHERE s.peer = ? AND s.bad IS NULL AND s.proofs IS NOT NULL AND s.proof_next * 8 < length(s.proofs) AND s.audited_at <= ? ORDER BY s.audited_at LIMIT ?`),
      sample: p(`SELECT ${AUDIT_COLS} FROM shards s WHERE s.peer = ? AND s.bad IS NULL AND s.proofs IS NOT NULL AND s.proof_next * 8 < length(s.proofs) ORDER BY random() LIMIT ?`),
      audited: p('UPDATE shards SET proof_next = proof_next + 1, audited_at = ?, bad = COALESCE(?, bad) WHERE block_id = ? AND idx = ? AND peer = ? AND epoch = ? AND proof_next = ?'),
      markBad: p('UPDATE shards SET bad = ? WHERE block_id = ? AND idx = ? AND peer = ? AND bad IS NULL'),
      setProofs: p('UPDATE shards SET proofs = ?, epoch = ?, proof_next = 0 WHERE block_id = ? AND idx = ? AND peer = ?'),
      addCopy: p('INSERT OR REPLACE INTO shards (block_id, idx, shard_id, peer, size, stored_at, proofs, epoch, proof_next, audited_at, bad) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, NULL)'),
      dropCopy: p('DELETE FROM shards WHERE block_id = ? AND idx = ? AND peer = ?'),
      addOrphan: p('INSERT OR IGNORE INTO orphans (peer, shard_id, since) VALUES (?, ?, ?)'),
      dropOrphan: p('DELETE FROM orphans WHERE peer = ? AND shard_id = ?'),
      orphansOf: p('SELECT shard_id FROM orphans WHERE peer = ? LIMIT ?'),
      orphanPeers: p('SELECT peer FROM orphans WHERE shard_id = ?'),
      referenced: p('SELECT 1 FROM shards WHERE peer = ? AND shard_id = ? LIMIT 1'),
      goodCount: p(`SELECT COUNT(DISTINCT s.idx) AS n FROM shards s WHERE s.block_id = ? AND ${GOOD}`),
      toRepair: p(`WITH used AS (${USED}),
          good AS (SELECT s.block_id AS id, COUNT(DISTINCT s.idx) AS n FROM shards s WHERE ${GOOD} GROUP BY s.block_id)
        SELECT b.id, b.stored, b.k, b.m, COALESCE(g.n, 0) AS good FROM blocks b JOIN used u ON u.id = b.id LEFT JOIN good g ON g.id = b.id
        WHERE COALESCE(g.n, 0) < b.k + b.m AND COALESCE(g.n, 0) >= b.k AND COALESCE(g.n, 0) <= MIN(b.k + ?, b.k + b.m - 1)
        ORDER BY COALESCE(g.n, 0) - b.k, b.id LIMIT ?`),
      toRefresh: p(`WITH used AS (${USED})
        SELECT DISTINCT s.block_id AS id FROM shards s JOIN used u ON u.id = s.block_id
        WHERE ${GOOD} AND (s.proofs IS NULL OR s.proof_next * 8 >= length(s.proofs)) LIMIT ?`),
      unrecoverable: p(`WITH good AS (SELECT s.block_id AS id, COUNT(DISTINCT s.idx) AS n FROM shards s WHERE ${GOOD} GROUP BY s.block_id),
          bad_blocks AS (SELECT b.id FROM blocks b LEFT JOIN good g ON g.id = b.id WHERE COALESCE(g.n, 0) < b.k)
        SELECT d.path AS folder, f.rel AS rel, f.state AS state, COUNT(DISTINCT vb.block_id) AS blocks
        FROM files f JOIN folders d ON d.id = f.folder_id JOIN version_blocks vb ON vb.version_id = f.version_id
        WHERE f.state IN ('stubbed', 'hydrated') AND vb.block_id IN (SELECT id FROM bad_blocks)
        GROUP BY f.id ORDER BY d.path, f.rel LIMIT ?`),
      filesOfBlock: p(`SELECT d.path AS folder, f.rel AS rel, f.state AS state FROM files f JOIN folders d ON d.id = f.folder_id
        JOIN version_blocks vb ON vb.version_id = f.version_id WHERE vb.block_id = ? AND f.state IN ('stubbed', 'hydrated') LIMIT ?`)
    }
  }

  peerHealth (): PeerHealthRow[] {
    return (this.st.peerHealth.all() as Array<{ key: Buffer, absent_ms: number, lost_at: number | null, lost_why: string | null, score: number, audits_ok: number, audits_failed: number, last_audit_at: number | null, last_audit_ok: number | null }>)
      .map(r => ({ key: r.key, absentMs: r.absent_ms, lostAt: r.lost_at, lostWhy: r.lost_why, score: r.score, auditsOk: r.audits_ok, auditsFailed: r.audits_failed, lastAuditAt: r.last_audit_at, lastAuditOk: r.last_audit_ok === null ? null : r.last_audit_ok !== 0 }))
  }

  savePeers (rows: Iterable<PeerHealthRow>): void {
    this.index.tx(() => {
      for (const h of rows) this.st.savePeer.run(h.key, Math.round(h.absentMs), h.lostAt, h.lostWhy, h.score, h.auditsOk, h.auditsFailed, h.lastAuditAt, h.lastAuditOk === null ? null : h.lastAuditOk ? 1 : 0)
    })
  }

  /** Peers holding at least one of my shard copies not marked bad, with how many. */
  holders (): Array<{ peer: Buffer, n: number }> {
    return this.st.holders.all() as Array<{ peer: Buffer, n: number }>
  }

  copies (blockId: Uint8Array): AuditRow[] {
    return (this.st.copies.all(Buffer.from(blockId)) as RawAudit[]).map(auditRow)
  }

  /** Copies on `peer` whose last audit is at or before `before`, oldest first. */
  dueAudits (peer: Uint8Array, before: number, limit: number): AuditRow[] {
    return (this.st.due.all(Buffer.from(peer), before, limit) as RawAudit[]).map(auditRow)
  }

  sampleAudits (peer: Uint8Array, limit: number): AuditRow[] {
    return (this.st.sample.all(Buffer.from(peer), limit) as RawAudit[]).map(auditRow)
  }

  /** One challenge spent on a copy: `bad` is why it failed, or null when it passed. */
  audited (results: ReadonlyArray<{ row: AuditRow, bad: string | null }>): void {
    const at = this.now()
    this.index.tx(() => {
      for (const { row, bad } of results) this.st.audited.run(at, bad, row.blockId, row.idx, row.peer, row.epoch, row.proofNext)
    })
  }

  markBad (row: Pick<ShardRow, 'blockId' | 'idx' | 'peer'>, why: string): void {
    this.st.markBad.run(why.slice(0, 200), Buffer.from(row.blockId), row.idx, Buffer.from(row.peer))
  }

  setProofs (row: Pick<ShardRow, 'blockId' | 'idx' | 'peer'>, proofs: Buffer, epoch: number): void {
    this.st.setProofs.run(proofs, epoch, Buffer.from(row.blockId), row.idx, Buffer.from(row.peer))
  }

  /** Distinct shard indexes of a block with a good copy. */
  goodCount (blockId: Uint8Array): number {
    return (this.st.goodCount.get(Buffer.from(blockId)) as { n: number }).n
  }

  /** True when every one of the block's k+m shards has a good copy. */
  intact (blockId: Uint8Array): boolean {
    const b = this.index.block(blockId)
    return b !== null && this.goodCount(blockId) >= b.k + b.m
  }

  /** Blocks in use with at least k but at most min(k + margin, k+m-1) good shards: most at risk first. */
  toRepair (margin: number, limit: number): RepairCandidate[] {
    return this.st.toRepair.all(margin, limit) as RepairCandidate[]
  }

  /** Blocks in use with a good copy whose audit answers are used up (or were never made). */
  toRefresh (limit: number): Buffer[] {
    return (this.st.toRefresh.all(limit) as Array<{ id: Buffer }>).map(r => r.id)
  }

  /**
   * Record a repair of one block: the new copies, and the copies they replace (bad, or on lost
   * peers) dropped, each dropped one remembered as an orphan so its peer is told to delete it
   * when seen again. The new copies' orphan intents (written before their PUT) are cleared.
   */
  replaceCopies (added: readonly ShardRow[], dropped: readonly AuditRow[]): void {
    const at = this.now()
    this.index.tx(() => {
      for (const s of added) {
        this.st.addCopy.run(s.blockId, s.idx, s.shardId, s.peer, s.size, at, s.proofs ?? null, s.auditedAt ?? at)
        this.st.dropOrphan.run(s.peer, s.shardId)
      }
      for (const d of dropped) {
        this.st.dropCopy.run(d.blockId, d.idx, d.peer)
        this.st.addOrphan.run(d.peer, d.shardId, at)
      }
    })
  }

  /** Before a PUT whose row may never be written (a crash): remember the copy as an orphan. */
  addOrphan (peer: Uint8Array, shardId: Uint8Array): void {
    this.st.addOrphan.run(Buffer.from(peer), Buffer.from(shardId), this.now())
  }

  dropOrphan (peer: Uint8Array, shardId: Uint8Array): void {
    this.st.dropOrphan.run(Buffer.from(peer), Buffer.from(shardId))
  }

  /** Peers (hex) that may still be sent a DELETE of one of these shard ids (an orphan row): a repair never puts the same id there meanwhile. */
  orphanPeers (shardIds: readonly Uint8Array[]): Set<string> {
    const out = new Set<string>()
    for (const id of shardIds) for (const r of this.st.orphanPeers.all(Buffer.from(id)) as Array<{ peer: Buffer }>) out.add(r.peer.toString('hex'))
    return out
  }

  /** Orphans on a peer that no row references (those referenced again are forgotten here). */
  orphansOf (peer: Uint8Array, limit: number): Buffer[] {
    const out: Buffer[] = []
    const key = Buffer.from(peer)
    for (const r of this.st.orphansOf.all(key, limit) as Array<{ shard_id: Buffer }>) {
      if (this.st.referenced.get(key, r.shard_id) !== undefined) this.st.dropOrphan.run(key, r.shard_id)
      else out.push(r.shard_id)
    }
    return out
  }

  /** Placed files with a block that has fewer than k good copies anywhere. */
  unrecoverable (limit: number): UnrecoverableFile[] {
    return this.st.unrecoverable.all(limit) as UnrecoverableFile[]
  }

  filesOfBlock (blockId: Uint8Array, limit = 100): Array<{ folder: string, rel: string, state: string }> {
    return this.st.filesOfBlock.all(Buffer.from(blockId), limit) as Array<{ folder: string, rel: string, state: string }>
  }
}
