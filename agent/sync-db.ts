// SyncDb: the device-sync side of the local index (docs/sync.md §5), over the same SQLite database
// as IndexDb. The change log (`changes`: one row per changed file or block placement, newest seq
// wins), version vectors and tombstones of files, the owner's other devices and how far each was
// pulled, deletions held back by the mass-delete guard, kept versions and their pruning, and the
// blocks that no kept version lists any more (garbage, deleted from peers after a grace period).

import type Database from 'better-sqlite3'
import type { IndexDb } from './index-db.js'
import { bumpVector, formatVector, parseVector } from './version-vector.js'
import type { SyncBlock } from './sync-codec.js'

export interface SyncFileRow {
  readonly id: number
  readonly folder: string
  readonly rel: string
  readonly state: string
  readonly versionId: number | null
  readonly size: number
  readonly mtimeMs: number
  readonly vv: string
  readonly by: string
  readonly deletedAt: number | null
  readonly pinned: boolean
}

export interface VersionInfo { readonly id: number, readonly at: number, readonly size: number, readonly device: string, readonly hash: Buffer, readonly mtimeNs: bigint }
export interface DeviceRow { readonly key: Buffer, readonly id: string, readonly name: string, readonly firstSeen: number, readonly lastSeen: number, readonly pulled: number }

const FILE_COLS = 'f.id, d.path AS folder, f.rel, f.state, f.version_id, f.size, f.mtime_ms, f.vv, f.by_device, f.deleted_at, f.pinned'
interface RawFile { id: number, folder: string, rel: string, state: string, version_id: number | null, size: number, mtime_ms: number, vv: string, by_device: string, deleted_at: number | null, pinned: number }
function row (r: RawFile): SyncFileRow {
  return { id: r.id, folder: r.folder, rel: r.rel, state: r.state, versionId: r.version_id, size: r.size, mtimeMs: r.mtime_ms, vv: r.vv, by: r.by_device, deletedAt: r.deleted_at, pinned: r.pinned !== 0 }
}

export class SyncDb {
  private readonly db: Database.Database
  private readonly st: Record<string, Database.Statement>

  constructor (readonly index: IndexDb, private readonly now: () => number = Date.now) {
    this.db = index.raw
    const p = (sql: string): Database.Statement => this.db.prepare(sql)
    this.st = {
      file: p(`SELECT ${FILE_COLS} FROM files f JOIN folders d ON d.id = f.folder_id WHERE f.id = ?`),
      fileAt: p(`SELECT ${FILE_COLS} FROM files f JOIN folders d ON d.id = f.folder_id WHERE d.path = ? AND f.rel = ?`),
      setVv: p('UPDATE files SET vv = ?, by_device = ? WHERE id = ?'),
      change: p('INSERT OR REPLACE INTO changes (kind, ref) VALUES (?, ?)'),
      head: p('SELECT COALESCE(MAX(seq), 0) AS n FROM changes'),
      since: p('SELECT seq, kind, ref FROM changes WHERE seq > ? ORDER BY seq LIMIT ?'),
      tombstone: p('UPDATE files SET state = \'deleted\', deleted_at = ?, changed_at = ?, error = NULL WHERE id = ?'),
      blockRow: p('SELECT id, stored, k, m, remote FROM blocks WHERE id = ?'),
      shardRows: p('SELECT idx, shard_id, peer, size FROM shards WHERE block_id = ? AND bad IS NULL ORDER BY idx'),
      addRemoteBlock: p('INSERT INTO blocks (id, stored, k, m, placed_at, remote) VALUES (?, ?, ?, ?, ?, 1)'),
      dropShards: p('DELETE FROM shards WHERE block_id = ?'),
      addShard: p('INSERT OR REPLACE INTO shards (block_id, idx, shard_id, peer, size, stored_at, proofs, epoch, proof_next, audited_at, bad) VALUES (?, ?, ?, ?, ?, ?, NULL, 0, 0, ?, NULL)'),
      versionBlocks: p('SELECT block_id FROM version_blocks WHERE version_id = ? ORDER BY seq'),
      devices: p('SELECT key, id, name, first_seen, last_seen, pulled FROM devices ORDER BY id'),
      device: p('SELECT key, id, name, first_seen, last_seen, pulled FROM devices WHERE key = ?'),
      noteDevice: p(`INSERT INTO devices (key, id, name, first_seen, last_seen, pulled, cert) VALUES (?, ?, ?, ?, ?, 0, ?)
        ON CONFLICT (key) DO UPDATE SET name = excluded.name, last_seen = excluded.last_seen, cert = COALESCE(excluded.cert, devices.cert)`),
      setPulled: p('UPDATE devices SET pulled = ?, last_seen = ? WHERE key = ?'),
      hold: p('INSERT OR IGNORE INTO held_deletes (file_id, at) VALUES (?, ?)'),
      unhold: p('DELETE FROM held_deletes WHERE file_id = ?'),
      held: p(`SELECT ${FILE_COLS}, h.at AS held_at FROM held_deletes h JOIN files f ON f.id = h.file_id JOIN folders d ON d.id = f.folder_id ORDER BY d.path, f.rel`),
      liveIn: p('SELECT COUNT(*) AS n FROM files f JOIN folders d ON d.id = f.folder_id WHERE d.path = ? AND f.state IN (\'stubbed\', \'hydrated\', \'uploading\', \'waiting\', \'pending\')'),
      versions: p('SELECT id, created_at, size, device, hash, mtime_ns FROM versions WHERE file_id = ? ORDER BY id DESC'),
      conflicts: p(`SELECT ${FILE_COLS} FROM files f JOIN folders d ON d.id = f.folder_id WHERE f.rel LIKE '%.sync-conflict-%' AND f.state IN ('stubbed', 'hydrated', 'uploading', 'pending', 'waiting') ORDER BY d.path, f.rel LIMIT ?`),
      extraVersions: p(`SELECT v.id FROM versions v JOIN files f ON f.id = v.file_id WHERE v.file_id = ? AND v.id IS NOT f.version_id ORDER BY v.id DESC LIMIT -1 OFFSET ?`),
      expiredDeleted: p('SELECT v.id FROM versions v JOIN files f ON f.id = v.file_id WHERE f.state = \'deleted\' AND f.deleted_at < ? LIMIT 10000'),
      versionFiles: p('SELECT DISTINCT file_id FROM versions GROUP BY file_id HAVING COUNT(*) > ?'),
      dropVersionBlocks: p('DELETE FROM version_blocks WHERE version_id = ?'),
      dropVersion: p('DELETE FROM versions WHERE id = ?'),
      clearVersion: p('UPDATE files SET version_id = NULL WHERE version_id = ?'),
      markUnref: p(`UPDATE blocks SET unref_at = ? WHERE unref_at IS NULL AND NOT EXISTS (SELECT 1 FROM version_blocks vb WHERE vb.block_id = blocks.id)
        AND NOT EXISTS (SELECT 1 FROM index_blocks ib WHERE ib.block_id = blocks.id)`),
      markRef: p(`UPDATE blocks SET unref_at = NULL WHERE unref_at IS NOT NULL AND (EXISTS (SELECT 1 FROM version_blocks vb WHERE vb.block_id = blocks.id)
        OR EXISTS (SELECT 1 FROM index_blocks ib WHERE ib.block_id = blocks.id))`),
      garbage: p('SELECT id, remote FROM blocks WHERE unref_at IS NOT NULL AND unref_at <= ? LIMIT ?'),
      referenced: p('SELECT 1 FROM version_blocks WHERE block_id = ? UNION ALL SELECT 1 FROM index_blocks WHERE block_id = ? LIMIT 1'),
      shardsOf: p('SELECT peer, shard_id FROM shards WHERE block_id = ?'),
      dropBlock: p('DELETE FROM blocks WHERE id = ?'),
      dropCache: p('DELETE FROM cache WHERE block_id = ?'),
      dropChange: p('DELETE FROM changes WHERE kind = \'b\' AND ref = ?')
    }
  }

  tx<T> (fn: () => T): T { return this.index.tx(fn) }

  file (id: number): SyncFileRow | null {
    const r = this.st.file.get(id) as RawFile | undefined
    return r === undefined ? null : row(r)
  }

  fileAt (folder: string, rel: string): SyncFileRow | null {
    const r = this.st.fileAt.get(folder, rel) as RawFile | undefined
    return r === undefined ? null : row(r)
  }

  /** This device changed the file (a new version, or a deletion): its counter goes up, the change is logged. */
  localChange (fileId: number, device: string): void {
    this.tx(() => {
      const f = this.file(fileId)
      if (f === null) return
      this.st.setVv.run(formatVector(bumpVector(parseVector(f.vv), device)), device, fileId)
      this.st.change.run('f', fileId)
    })
  }

  /** Adopt a vector (a remote change applied, or a merge) and log the file as changed, so other devices hear of it. */
  adopt (fileId: number, vv: string, by: string): void {
    this.tx(() => {
      this.st.setVv.run(vv, by, fileId)
      this.st.change.run('f', fileId)
    })
  }

  /**
   * Files placed before this device synced (homes made before devices existed, a v1 index restore)
   * have no vector: they become this device's first version of them, logged so other devices hear.
   */
  initVectors (device: string): number {
    return this.tx(() => {
      const where = 'vv = \'\' AND state IN (\'stubbed\', \'hydrated\') AND version_id IS NOT NULL'
      this.db.prepare(`INSERT OR REPLACE INTO changes (kind, ref) SELECT 'f', id FROM files WHERE ${where}`).run()
      return this.db.prepare(`UPDATE files SET vv = ?, by_device = ? WHERE ${where}`).run(`${device}:1`, device).changes
    })
  }

  tombstone (fileId: number): void {
    const now = this.now()
    this.st.tombstone.run(now, now, fileId)
  }

  head (): number { return (this.st.head.get() as { n: number }).n }

  changesSince (since: number, limit: number): Array<{ seq: number, kind: string, ref: Buffer | number }> {
    return this.st.since.all(since, limit) as Array<{ seq: number, kind: string, ref: Buffer | number }>
  }

  /** A block's placement as sent to other devices (only good copies), or null. */
  blockRecord (id: Uint8Array, authoritative: boolean): SyncBlock | null {
    const b = this.st.blockRow.get(Buffer.from(id)) as { id: Buffer, stored: number, k: number, m: number, remote: number } | undefined
    if (b === undefined) return null
    const shards = (this.st.shardRows.all(b.id) as Array<{ idx: number, shard_id: Buffer, peer: Buffer, size: number }>).map(s => ({ idx: s.idx, shardId: s.shard_id, peer: s.peer, size: s.size }))
    return { id: b.id, stored: b.stored, k: b.k, m: b.m, shards, authoritative: authoritative && b.remote === 0 }
  }

  /**
   * Record where another device placed a block. A block this device placed itself is never
   * overwritten; an already known remote block is only replaced by its manager's (authoritative) record.
   */
  importBlock (b: SyncBlock): void {
    this.tx(() => {
      const old = this.st.blockRow.get(b.id) as { remote: number } | undefined
      if (old !== undefined && (old.remote === 0 || !b.authoritative)) return
      if (old === undefined) this.st.addRemoteBlock.run(b.id, b.stored, b.k, b.m, this.now())
      else this.st.dropShards.run(b.id)
      const at = this.now()
      for (const s of b.shards) this.st.addShard.run(b.id, s.idx, s.shardId, s.peer, s.size, at, at)
    })
  }

  versionBlocks (versionId: number): Buffer[] {
    return (this.st.versionBlocks.all(versionId) as Array<{ block_id: Buffer }>).map(r => r.block_id)
  }

  devices (): DeviceRow[] {
    return (this.st.devices.all() as Array<{ key: Buffer, id: string, name: string, first_seen: number, last_seen: number, pulled: number }>).map(r => ({ key: r.key, id: r.id, name: r.name, firstSeen: r.first_seen, lastSeen: r.last_seen, pulled: r.pulled }))
  }

  device (key: Uint8Array): DeviceRow | null {
    const r = this.st.device.get(Buffer.from(key)) as { key: Buffer, id: string, name: string, first_seen: number, last_seen: number, pulled: number } | undefined
    return r === undefined ? null : { key: r.key, id: r.id, name: r.name, firstSeen: r.first_seen, lastSeen: r.last_seen, pulled: r.pulled }
  }

  noteDevice (key: Uint8Array, id: string, name: string, cert: Buffer | null = null): void {
    const now = this.now()
    this.st.noteDevice.run(Buffer.from(key), id, name, now, now, cert)
  }

  setPulled (key: Uint8Array, seq: number): void {
    this.st.setPulled.run(seq, this.now(), Buffer.from(key))
  }

  hold (fileId: number): void { this.st.hold.run(fileId, this.now()) }
  unhold (fileId: number): void { this.st.unhold.run(fileId) }
  held (): Array<SyncFileRow & { heldAt: number }> {
    return (this.st.held.all() as Array<RawFile & { held_at: number }>).map(r => ({ ...row(r), heldAt: r.held_at }))
  }

  /** Files of a folder that exist (placed or on their way). */
  liveCount (folder: string): number { return (this.st.liveIn.get(folder) as { n: number }).n }

  versions (fileId: number): VersionInfo[] {
    return (this.st.versions.all(fileId) as Array<{ id: number, created_at: number, size: number, device: string, hash: Buffer, mtime_ns: string }>).map(r => ({ id: r.id, at: r.created_at, size: r.size, device: r.device, hash: r.hash, mtimeNs: BigInt(r.mtime_ns) }))
  }

  conflicts (limit = 1000): SyncFileRow[] {
    return (this.st.conflicts.all(limit) as RawFile[]).map(row)
  }

  /**
   * Forget versions beyond the newest `keep` of each file and versions of files deleted before
   * `deletedBefore`; blocks no version lists any more get their unreferenced time. Returns the
   * number of versions dropped.
   */
  prune (keep: number, deletedBefore: number): number {
    return this.tx(() => {
      const drop = new Set<number>()
      for (const f of this.st.versionFiles.all(keep) as Array<{ file_id: number }>) {
        for (const v of this.st.extraVersions.all(f.file_id, Math.max(0, keep - 1)) as Array<{ id: number }>) drop.add(v.id)
      }
      for (const v of this.st.expiredDeleted.all(deletedBefore) as Array<{ id: number }>) drop.add(v.id)
      for (const id of drop) {
        this.st.clearVersion.run(id)
        this.st.dropVersionBlocks.run(id)
        this.st.dropVersion.run(id)
      }
      this.st.markRef.run()
      this.st.markUnref.run(this.now())
      return drop.size
    })
  }

  /** Blocks unreferenced since before `before` (placed here, or remote ones to forget), as the last prune() marked them. */
  garbage (before: number, limit: number): Array<{ id: Buffer, remote: boolean }> {
    return (this.st.garbage.all(before, limit) as Array<{ id: Buffer, remote: number }>).map(r => ({ id: r.id, remote: r.remote !== 0 }))
  }

  /**
   * Drop a garbage block if still unreferenced: its rows go. Returns its copies (for this device to
   * delete from their peers when it placed them; a remote block's manager deletes its own), or null
   * when something lists the block again.
   */
  collect (id: Buffer): Array<{ peer: Buffer, shardId: Buffer }> | null {
    return this.tx(() => {
      if (this.st.referenced.get(id, id) !== undefined) return null
      const copies = (this.st.shardsOf.all(id) as Array<{ peer: Buffer, shard_id: Buffer }>).map(s => ({ peer: s.peer, shardId: s.shard_id }))
      this.st.dropShards.run(id)
      this.st.dropBlock.run(id)
      this.st.dropCache.run(id)
      this.st.dropChange.run(id)
      return copies
    })
  }

  /** Forget another device's copies of a block (they were deleted by its manager). */
  forgetRemote (id: Uint8Array): void {
    this.tx(() => {
      const b = this.st.blockRow.get(Buffer.from(id)) as { remote: number } | undefined
      if (b === undefined || b.remote === 0) return
      this.st.dropShards.run(Buffer.from(id))
      this.st.dropBlock.run(Buffer.from(id))
    })
  }

  /** Which of these blocks a version or the index here still lists. */
  referenced (ids: readonly Buffer[]): Buffer[] {
    return ids.filter(id => this.st.referenced.get(id, id) !== undefined)
  }
}
