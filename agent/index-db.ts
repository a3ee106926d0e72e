// IndexDb: the agent's local index, an SQLite database (better-sqlite3) in the state dir: watched
// folders, files and their versions (with the encoded stub of each), the blocks each version lists,
// where every shard of every block lives, the peers met, and the block cache. WAL journal with
// synchronous=FULL: a committed transaction survives a crash or power loss; a file's placement is
// committed before its stub is written, so a stub on disk always has its shards in the index.
// The schema is documented in docs/agent.md (§ Local index) and versioned by `user_version`.

import Database from 'better-sqlite3'
import { join } from 'node:path'
import { AgentError, AgentCodes } from './errors.js'

export const INDEX_FILE = 'index.sqlite'
export const SCHEMA_VERSION = 3
/** Device-to-owner rows kept (peer_owners). */
export const MAX_PEER_OWNERS = 4096

export type FileState = 'pending' | 'uploading' | 'waiting' | 'stubbed' | 'hydrated' | 'failed' | 'removed' | 'deleted'

export interface FileRow {
  readonly id: number
  readonly folder: string
  readonly rel: string
  readonly state: FileState
  readonly versionId: number | null
  readonly size: number
  readonly mtimeMs: number
  readonly pinned: boolean
  readonly hydratedAt: number | null
  readonly changedAt: number
  readonly error: string | null
}

export interface ShardRow {
  readonly blockId: Buffer
  readonly idx: number
  readonly shardId: Buffer
  readonly peer: Buffer
  readonly size: number
  /** Precomputed audit answers (docs/audits.md) for epoch 0, when the placement made them. */
  readonly proofs?: Buffer | null
  /** Start of the audit clock (spread by the placement so audits of one upload do not come due at once). */
  readonly auditedAt?: number
  /** Why this copy is known to be lost (an audit failed, the peer said it is gone), or null. */
  readonly bad?: string | null
}

export interface BlockRow {
  readonly id: Buffer
  readonly stored: number
  readonly k: number
  readonly m: number
}

export interface PeerRow {
  readonly key: Buffer
  readonly host: string
  readonly port: number
  readonly lastSeen: number
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS folders (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,
  added_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
  id INTEGER PRIMARY KEY,
  folder_id INTEGER NOT NULL REFERENCES folders(id),
  rel TEXT NOT NULL,
  state TEXT NOT NULL,
  version_id INTEGER,
  size INTEGER NOT NULL DEFAULT 0,
  mtime_ms REAL NOT NULL DEFAULT 0,
  pinned INTEGER NOT NULL DEFAULT 0,
  hydrated_at INTEGER,
  changed_at INTEGER NOT NULL,
  error TEXT,
  vv TEXT NOT NULL DEFAULT '',
  by_device TEXT NOT NULL DEFAULT '',
  deleted_at INTEGER,
  UNIQUE (folder_id, rel)
);
CREATE TABLE IF NOT EXISTS versions (
  id INTEGER PRIMARY KEY,
  file_id INTEGER NOT NULL REFERENCES files(id),
  hash BLOB NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns TEXT NOT NULL,
  mode INTEGER NOT NULL,
  stub BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  device TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS versions_file ON versions(file_id);
CREATE TABLE IF NOT EXISTS version_blocks (
  version_id INTEGER NOT NULL REFERENCES versions(id),
  seq INTEGER NOT NULL,
  block_id BLOB NOT NULL,
  PRIMARY KEY (version_id, seq)
);
CREATE INDEX IF NOT EXISTS version_blocks_block ON version_blocks(block_id);
CREATE TABLE IF NOT EXISTS blocks (
  id BLOB PRIMARY KEY,
  stored INTEGER NOT NULL,
  k INTEGER NOT NULL,
  m INTEGER NOT NULL,
  placed_at INTEGER NOT NULL,
  remote INTEGER NOT NULL DEFAULT 0,
  unref_at INTEGER
);
CREATE TABLE IF NOT EXISTS shards (
  block_id BLOB NOT NULL REFERENCES blocks(id),
  idx INTEGER NOT NULL,
  shard_id BLOB NOT NULL,
  peer BLOB NOT NULL,
  size INTEGER NOT NULL,
  stored_at INTEGER NOT NULL,
  proofs BLOB,
  epoch INTEGER NOT NULL DEFAULT 0,
  proof_next INTEGER NOT NULL DEFAULT 0,
  audited_at INTEGER NOT NULL DEFAULT 0,
  bad TEXT,
  PRIMARY KEY (block_id, idx, peer)
);
CREATE INDEX IF NOT EXISTS shards_peer ON shards(peer);
CREATE INDEX IF NOT EXISTS shards_audit ON shards(peer, audited_at);
CREATE TABLE IF NOT EXISTS peer_health (
  key BLOB PRIMARY KEY,
  absent_ms INTEGER NOT NULL DEFAULT 0,
  lost_at INTEGER,
  lost_why TEXT,
  score REAL NOT NULL DEFAULT 1,
  audits_ok INTEGER NOT NULL DEFAULT 0,
  audits_failed INTEGER NOT NULL DEFAULT 0,
  last_audit_at INTEGER,
  last_audit_ok INTEGER
);
CREATE TABLE IF NOT EXISTS orphans (
  peer BLOB NOT NULL,
  shard_id BLOB NOT NULL,
  since INTEGER NOT NULL,
  PRIMARY KEY (peer, shard_id)
);
CREATE INDEX IF NOT EXISTS orphans_shard ON orphans(shard_id);
CREATE TABLE IF NOT EXISTS index_blocks (
  block_id BLOB PRIMARY KEY,
  added_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS peers (
  key BLOB PRIMARY KEY,
  host TEXT NOT NULL,
  port INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS peer_owners (
  key BLOB PRIMARY KEY,
  owner BLOB NOT NULL,
  last_seen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS device_space (
  key BLOB PRIMARY KEY,
  donated INTEGER NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  ref BLOB NOT NULL,
  UNIQUE (kind, ref)
);
CREATE TABLE IF NOT EXISTS devices (
  key BLOB PRIMARY KEY,
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  pulled INTEGER NOT NULL DEFAULT 0,
  cert BLOB
);
CREATE TABLE IF NOT EXISTS held_deletes (
  file_id INTEGER PRIMARY KEY REFERENCES files(id),
  at INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS shards_ins_change AFTER INSERT ON shards BEGIN
  INSERT OR REPLACE INTO changes (kind, ref) SELECT 'b', NEW.block_id FROM blocks WHERE id = NEW.block_id AND remote = 0;
END;
CREATE TRIGGER IF NOT EXISTS shards_del_change AFTER DELETE ON shards BEGIN
  INSERT OR REPLACE INTO changes (kind, ref) SELECT 'b', OLD.block_id FROM blocks WHERE id = OLD.block_id AND remote = 0;
END;
CREATE TRIGGER IF NOT EXISTS shards_bad_change AFTER UPDATE OF bad ON shards BEGIN
  INSERT OR REPLACE INTO changes (kind, ref) SELECT 'b', NEW.block_id FROM blocks WHERE id = NEW.block_id AND remote = 0;
END;
CREATE TABLE IF NOT EXISTS cache (
  block_id BLOB PRIMARY KEY,
  size INTEGER NOT NULL,
  used_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_used ON cache(used_at);
`

interface RawFile { id: number, path: string, rel: string, state: FileState, version_id: number | null, size: number, mtime_ms: number, pinned: number, hydrated_at: number | null, changed_at: number, error: string | null }

function fileRow (r: RawFile): FileRow {
  return { id: r.id, folder: r.path, rel: r.rel, state: r.state, versionId: r.version_id, size: r.size, mtimeMs: r.mtime_ms, pinned: r.pinned !== 0, hydratedAt: r.hydrated_at, changedAt: r.changed_at, error: r.error }
}

const FILE_SELECT = 'SELECT f.id, d.path, f.rel, f.state, f.version_id, f.size, f.mtime_ms, f.pinned, f.hydrated_at, f.changed_at, f.error FROM files f JOIN folders d ON d.id = f.folder_id'

export interface NewVersion {
  readonly hash: Uint8Array
  readonly size: number
  readonly mtimeNs: bigint
  readonly mode: number
  readonly stub: Uint8Array
  readonly blocks: readonly Uint8Array[]
  /** Id of the device that made this version (docs/sync.md), '' when unknown. */
  readonly device?: string
}

export class IndexDb {
  readonly path: string
  private readonly db: Database.Database
  private closed = false
  private peerOwnerWrites = 0
  private readonly st: Record<string, Database.Statement>

  constructor (stateDir: string, now: () => number = Date.now) {
    this.path = join(stateDir, INDEX_FILE)
    this.now = now
    try {
      this.db = new Database(this.path)
      this.db.pragma('journal_mode = WAL')
      this.db.pragma('synchronous = FULL')
      this.db.pragma('foreign_keys = ON')
      const version = this.db.pragma('user_version', { simple: true }) as number
      if (version > SCHEMA_VERSION) {
        throw new AgentError(AgentCodes.INDEX_FAILED, `${JSON.stringify(this.path)} has schema ${version}, newer than this dustbox (${SCHEMA_VERSION}); upgrade dustbox`)
      }
      if (version === 1) {
        // v1 → v2: audit state on each shard copy (the tables added in v2 are created by SCHEMA).
        this.db.exec(`ALTER TABLE shards ADD COLUMN proofs BLOB;
          ALTER TABLE shards ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE shards ADD COLUMN proof_next INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE shards ADD COLUMN audited_at INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE shards ADD COLUMN bad TEXT;`)
      }
      if (version >= 1 && version < 3) {
        // v2 → v3: multi-device sync (docs/sync.md): version vectors, tombstones, remote blocks.
        this.db.exec(`ALTER TABLE files ADD COLUMN vv TEXT NOT NULL DEFAULT '';
          ALTER TABLE files ADD COLUMN by_device TEXT NOT NULL DEFAULT '';
          ALTER TABLE files ADD COLUMN deleted_at INTEGER;
          ALTER TABLE versions ADD COLUMN device TEXT NOT NULL DEFAULT '';
          ALTER TABLE blocks ADD COLUMN remote INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE blocks ADD COLUMN unref_at INTEGER;`)
      }
      this.db.exec(SCHEMA)
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`)
      const quick = this.db.pragma('quick_check', { simple: true })
      if (quick !== 'ok') throw new AgentError(AgentCodes.INDEX_FAILED, `${JSON.stringify(this.path)} failed its integrity check: ${String(quick)}`)
    } catch (err) {
      if (err instanceof AgentError) throw err
      throw new AgentError(AgentCodes.INDEX_FAILED, `cannot open the index ${JSON.stringify(this.path)}: ${(err as Error).message}`, { cause: err })
    }
    const p = (sql: string): Database.Statement => this.db.prepare(sql)
    this.st = {
      folderId: p('SELECT id FROM folders WHERE path = ?'),
      addFolder: p('INSERT OR IGNORE INTO folders (path, added_at) VALUES (?, ?)'),
      folders: p('SELECT path FROM folders ORDER BY path'),
      file: p(`${FILE_SELECT} WHERE d.path = ? AND f.rel = ?`),
      fileById: p(`${FILE_SELECT} WHERE f.id = ?`),
      filesIn: p(`${FILE_SELECT} WHERE d.path = ? ORDER BY f.rel`),
      filesByState: p(`${FILE_SELECT} WHERE f.state = ? ORDER BY f.changed_at LIMIT ?`),
      upsertFile: p(`INSERT INTO files (folder_id, rel, state, size, mtime_ms, changed_at, error) VALUES (?, ?, ?, ?, ?, ?, NULL)
        ON CONFLICT (folder_id, rel) DO UPDATE SET state = excluded.state, size = excluded.size, mtime_ms = excluded.mtime_ms, changed_at = excluded.changed_at, error = NULL`),
      setState: p('UPDATE files SET state = ?, error = ?, changed_at = ? WHERE id = ?'),
      setHydrated: p('UPDATE files SET state = \'hydrated\', hydrated_at = ?, size = ?, mtime_ms = ?, error = NULL, changed_at = ? WHERE id = ?'),
      setPinned: p('UPDATE files SET pinned = ? WHERE id = ?'),
      setVersion: p('UPDATE files SET version_id = ?, state = ?, size = ?, mtime_ms = ?, error = NULL, changed_at = ? WHERE id = ?'),
      addVersion: p('INSERT INTO versions (file_id, hash, size, mtime_ns, mode, stub, created_at, device) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      setDeletedAt: p('UPDATE files SET deleted_at = ? WHERE id = ?'),
      version: p('SELECT id, hash, size, mtime_ns, mode, stub FROM versions WHERE id = ?'),
      versionByHash: p('SELECT id FROM versions WHERE file_id = ? AND hash = ? ORDER BY id DESC LIMIT 1'),
      addVersionBlock: p('INSERT OR IGNORE INTO version_blocks (version_id, seq, block_id) VALUES (?, ?, ?)'),
      stateCounts: p('SELECT d.path AS folder, f.state AS state, COUNT(*) AS n, COALESCE(SUM(f.size), 0) AS bytes FROM files f JOIN folders d ON d.id = f.folder_id GROUP BY d.path, f.state'),
      block: p('SELECT id, stored, k, m FROM blocks WHERE id = ?'),
      addBlock: p('INSERT OR IGNORE INTO blocks (id, stored, k, m, placed_at) VALUES (?, ?, ?, ?, ?)'),
      addShard: p('INSERT OR REPLACE INTO shards (block_id, idx, shard_id, peer, size, stored_at, proofs, epoch, proof_next, audited_at, bad) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, NULL)'),
      shards: p('SELECT block_id, idx, shard_id, peer, size, bad FROM shards WHERE block_id = ? ORDER BY idx'),
      bytesOnPeer: p('SELECT COALESCE(SUM(size), 0) AS n FROM shards WHERE peer = ?'),
      bytesPlaced: p('SELECT COALESCE(SUM(size), 0) AS n FROM shards'),
      shardsPerPeer: p('SELECT peer, COUNT(*) AS n, SUM(size) AS bytes FROM shards GROUP BY peer'),
      upsertPeer: p(`INSERT INTO peers (key, host, port, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET host = excluded.host, port = excluded.port, last_seen = excluded.last_seen`),
      peer: p('SELECT key, host, port, last_seen FROM peers WHERE key = ?'),
      upsertPeerOwner: p('INSERT INTO peer_owners (key, owner, last_seen) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, last_seen = excluded.last_seen'),
      peerOwners: p('SELECT key, owner FROM peer_owners ORDER BY last_seen DESC LIMIT ?'),
      upsertDeviceSpace: p('INSERT INTO device_space (key, donated, at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET donated = excluded.donated, at = excluded.at'),
      deviceSpace: p('SELECT key, donated FROM device_space'),
      trimPeerOwners: p('DELETE FROM peer_owners WHERE key NOT IN (SELECT key FROM peer_owners ORDER BY last_seen DESC LIMIT ?)'),
      cacheTouch: p('INSERT INTO cache (block_id, size, used_at) VALUES (?, ?, ?) ON CONFLICT (block_id) DO UPDATE SET used_at = excluded.used_at'),
      cacheHas: p('SELECT size FROM cache WHERE block_id = ?'),
      cacheBytes: p('SELECT COALESCE(SUM(size), 0) AS n FROM cache'),
      cacheOldest: p('SELECT block_id, size FROM cache ORDER BY used_at LIMIT ?'),
      cacheDrop: p('DELETE FROM cache WHERE block_id = ?')
    }
  }

  private readonly now: () => number

  /** The open database, for the companion classes that keep their own statements (repair-db.ts). */
  get raw (): Database.Database {
    this.check()
    return this.db
  }

  private check (): void {
    if (this.closed) throw new AgentError(AgentCodes.CLOSED, 'the index is closed')
  }

  /** Run `fn` in one transaction (all or nothing). */
  tx<T> (fn: () => T): T {
    this.check()
    return this.db.transaction(fn)()
  }

  addFolder (path: string): number {
    this.check()
    this.st.addFolder.run(path, this.now())
    return (this.st.folderId.get(path) as { id: number }).id
  }

  folders (): string[] {
    return (this.st.folders.all() as Array<{ path: string }>).map(r => r.path)
  }

  file (folder: string, rel: string): FileRow | null {
    this.check()
    const r = this.st.file.get(folder, rel) as RawFile | undefined
    return r === undefined ? null : fileRow(r)
  }

  fileById (id: number): FileRow | null {
    const r = this.st.fileById.get(id) as RawFile | undefined
    return r === undefined ? null : fileRow(r)
  }

  filesIn (folder: string): FileRow[] {
    return (this.st.filesIn.all(folder) as RawFile[]).map(fileRow)
  }

  filesByState (state: FileState, limit = 1_000_000): FileRow[] {
    return (this.st.filesByState.all(state, limit) as RawFile[]).map(fileRow)
  }

  /** Create or update a file's row (state, size, mtime); returns its id. */
  touchFile (folder: string, rel: string, state: FileState, size: number, mtimeMs: number): number {
    this.check()
    const folderId = this.addFolder(folder)
    this.st.upsertFile.run(folderId, rel, state, size, mtimeMs, this.now())
    return this.file(folder, rel)!.id
  }

  setState (fileId: number, state: FileState, error: string | null = null): void {
    this.check()
    this.st.setState.run(state, error, this.now(), fileId)
  }

  setHydrated (fileId: number, size: number, mtimeMs: number): void {
    this.check()
    this.st.setHydrated.run(this.now(), size, mtimeMs, this.now(), fileId)
  }

  /** Sync state of a file as an index restore finds it (docs/sync.md §3): vector, last device, deletion time. */
  setSyncState (fileId: number, vv: string, by: string, deletedAt: number | null): void {
    this.check()
    this.db.prepare('UPDATE files SET vv = ?, by_device = ?, deleted_at = ? WHERE id = ?').run(vv, by, deletedAt, fileId)
  }

  /** An older kept version of a file (not made current): its stub and block list. */
  addOldVersion (fileId: number, v: NewVersion, createdAt: number): number {
    return this.tx(() => {
      const existing = this.st.versionByHash.get(fileId, Buffer.from(v.hash)) as { id: number } | undefined
      if (existing !== undefined) return existing.id
      const id = Number(this.st.addVersion.run(fileId, Buffer.from(v.hash), v.size, v.mtimeNs.toString(), v.mode, Buffer.from(v.stub), createdAt, v.device ?? '').lastInsertRowid)
      v.blocks.forEach((b, seq) => this.st.addVersionBlock.run(id, seq, Buffer.from(b)))
      return id
    })
  }

  /** A device of the owner, as the index lists it (its certificate). */
  noteDeviceCert (key: Uint8Array, id: string, name: string, cert: Uint8Array): void {
    this.check()
    const now = this.now()
    this.db.prepare('INSERT INTO devices (key, id, name, first_seen, last_seen, pulled, cert) VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (key) DO UPDATE SET cert = excluded.cert').run(Buffer.from(key), id, name, now, 0, Buffer.from(cert))
  }

  setDeletedAt (fileId: number, at: number | null): void {
    this.check()
    this.st.setDeletedAt.run(at, fileId)
  }

  setPinned (fileId: number, pinned: boolean): void {
    this.check()
    this.st.setPinned.run(pinned ? 1 : 0, fileId)
  }

  /** Record a version of a file (its stub and block list) and make it the current one, in `state`. */
  addVersion (fileId: number, v: NewVersion, state: FileState, mtimeMs: number): number {
    return this.tx(() => {
      const existing = this.st.versionByHash.get(fileId, Buffer.from(v.hash)) as { id: number } | undefined
      let id: number
      if (existing !== undefined) {
        id = existing.id
      } else {
        id = Number(this.st.addVersion.run(fileId, Buffer.from(v.hash), v.size, v.mtimeNs.toString(), v.mode, Buffer.from(v.stub), this.now(), v.device ?? '').lastInsertRowid)
        v.blocks.forEach((b, seq) => this.st.addVersionBlock.run(id, seq, Buffer.from(b)))
      }
      this.st.setVersion.run(id, state, v.size, mtimeMs, this.now(), fileId)
      return id
    })
  }

  version (id: number): { id: number, hash: Buffer, size: number, mtimeNs: bigint, mode: number, stub: Buffer } | null {
    const r = this.st.version.get(id) as { id: number, hash: Buffer, size: number, mtime_ns: string, mode: number, stub: Buffer } | undefined
    return r === undefined ? null : { id: r.id, hash: r.hash, size: r.size, mtimeNs: BigInt(r.mtime_ns), mode: r.mode, stub: r.stub }
  }

  counts (): Array<{ folder: string, state: FileState, n: number, bytes: number }> {
    return this.st.stateCounts.all() as Array<{ folder: string, state: FileState, n: number, bytes: number }>
  }

  /** A page of a folder's files (or all folders'), by path, optionally only those whose path contains `filter`. */
  listFiles (q: { folder?: string, filter?: string, offset: number, limit: number }): { total: number, rows: FileRow[] } {
    this.check()
    const where: string[] = ['f.state NOT IN (\'removed\', \'deleted\')']
    const args: unknown[] = []
    if (q.folder !== undefined) { where.push('d.path = ?'); args.push(q.folder) }
    if (q.filter !== undefined && q.filter !== '') {
      where.push('f.rel LIKE ? ESCAPE \'\\\'')
      args.push(`%${q.filter.replace(/[\\%_]/g, c => '\\' + c)}%`)
    }
    const w = where.join(' AND ')
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM files f JOIN folders d ON d.id = f.folder_id WHERE ${w}`).get(...args) as { n: number }).n
    const rows = (this.db.prepare(`${FILE_SELECT} WHERE ${w} ORDER BY d.path, f.rel LIMIT ? OFFSET ?`).all(...args, q.limit, q.offset) as RawFile[]).map(fileRow)
    return { total, rows }
  }

  /**
   * Redundancy of every placed file (stubbed or hydrated with a version) counting only shards on
   * `live` peers: per file the worst block's available shards. full: every block has k+m;
   * degraded: more than k; atRisk: exactly k (one more loss and it is gone); unavailable: fewer.
   */
  health (live: readonly Uint8Array[]): { files: number, full: number, degraded: number, atRisk: number, unavailable: number } {
    return this.tx(() => {
      this.db.exec('CREATE TEMP TABLE IF NOT EXISTS live (peer BLOB PRIMARY KEY); DELETE FROM temp.live')
      const ins = this.db.prepare('INSERT OR IGNORE INTO temp.live (peer) VALUES (?)')
      for (const k of live) ins.run(Buffer.from(k))
      const files = (this.db.prepare('SELECT COUNT(*) AS n FROM files WHERE version_id IS NOT NULL AND state IN (\'stubbed\', \'hydrated\')').get() as { n: number }).n
      const r = this.db.prepare(`WITH per_block AS (
          SELECT vb.version_id AS v, b.k AS k, b.m AS m,
            (SELECT COUNT(DISTINCT s.idx) FROM shards s WHERE s.block_id = vb.block_id AND s.bad IS NULL AND s.peer IN (SELECT peer FROM temp.live)) AS avail
          FROM version_blocks vb JOIN blocks b ON b.id = vb.block_id
          WHERE vb.version_id IN (SELECT version_id FROM files WHERE version_id IS NOT NULL AND state IN ('stubbed', 'hydrated'))
        ), per_version AS (SELECT v, MIN(avail - k) AS margin, MIN(avail - k - m) AS spare FROM per_block GROUP BY v)
        SELECT COALESCE(SUM(f.n * (pv.margin < 0)), 0) AS unavailable, COALESCE(SUM(f.n * (pv.margin = 0)), 0) AS atRisk,
          COALESCE(SUM(f.n * (pv.margin > 0 AND pv.spare < 0)), 0) AS degraded
        FROM per_version pv JOIN (SELECT version_id, COUNT(*) AS n FROM files WHERE state IN ('stubbed', 'hydrated') GROUP BY version_id) f ON f.version_id = pv.v`).get() as { unavailable: number, atRisk: number, degraded: number }
      return { files, full: files - r.unavailable - r.atRisk - r.degraded, degraded: r.degraded, atRisk: r.atRisk, unavailable: r.unavailable }
    })
  }

  block (id: Uint8Array): BlockRow | null {
    this.check()
    return (this.st.block.get(Buffer.from(id)) as BlockRow | undefined) ?? null
  }

  /** Record a placed block and its shards (one transaction). */
  addPlacement (block: { id: Uint8Array, stored: number, k: number, m: number }, shards: readonly ShardRow[]): void {
    this.tx(() => {
      const at = this.now()
      this.st.addBlock.run(Buffer.from(block.id), block.stored, block.k, block.m, at)
      for (const s of shards) this.st.addShard.run(s.blockId, s.idx, s.shardId, s.peer, s.size, at, s.proofs ?? null, s.auditedAt ?? at)
    })
  }

  /**
   * The blocks of the published folder index (docs/index-format.md): in use like a file's blocks, so
   * audits and repair keep them. `replace`: these are all of them (the previous set is forgotten).
   */
  markIndexBlocks (ids: readonly Uint8Array[], replace: boolean): void {
    this.tx(() => {
      if (replace) this.db.prepare('DELETE FROM index_blocks').run()
      const ins = this.db.prepare('INSERT OR IGNORE INTO index_blocks (block_id, added_at) VALUES (?, ?)')
      for (const id of ids) ins.run(Buffer.from(id), this.now())
    })
  }

  shards (blockId: Uint8Array): ShardRow[] {
    this.check()
    return (this.st.shards.all(Buffer.from(blockId)) as Array<{ block_id: Buffer, idx: number, shard_id: Buffer, peer: Buffer, size: number, bad: string | null }>)
      .map(r => ({ blockId: r.block_id, idx: r.idx, shardId: r.shard_id, peer: r.peer, size: r.size, bad: r.bad }))
  }

  /** Bytes of my shards a peer holds (what it gives me). */
  bytesOnPeer (key: Uint8Array): number {
    return (this.st.bytesOnPeer.get(Buffer.from(key)) as { n: number }).n
  }

  bytesPlaced (): number {
    return (this.st.bytesPlaced.get() as { n: number }).n
  }

  shardsPerPeer (): Array<{ peer: Buffer, n: number, bytes: number }> {
    return this.st.shardsPerPeer.all() as Array<{ peer: Buffer, n: number, bytes: number }>
  }

  notePeer (key: Uint8Array, host: string, port: number): void {
    if (this.closed) return
    const at = this.now()
    this.st.upsertPeer.run(Buffer.from(key), host, port, at, at)
  }

  /**
   * A peer's key is a device certified by `owner` (its handshake proved it: net/device-cert.ts).
   * Kept for the fair-exchange quota, which counts what I placed on all of an owner's devices.
   * At most MAX_PEER_OWNERS rows, the least recently seen dropped.
   */
  notePeerOwner (key: Uint8Array, owner: Uint8Array): void {
    if (this.closed) return
    this.st.upsertPeerOwner.run(Buffer.from(key), Buffer.from(owner), this.now())
    if (++this.peerOwnerWrites % 64 === 0) this.st.trimPeerOwners.run(MAX_PEER_OWNERS)
  }

  peerOwners (): Array<{ key: Buffer, owner: Buffer }> {
    return this.st.peerOwners.all(MAX_PEER_OWNERS) as Array<{ key: Buffer, owner: Buffer }>
  }

  /** Space another device of this owner donates (its SPACE answer), for the fair-exchange limit. */
  noteDeviceSpace (key: Uint8Array, donated: number): void {
    if (this.closed) return
    this.st.upsertDeviceSpace.run(Buffer.from(key), donated, this.now())
  }

  deviceSpace (): Array<{ key: Buffer, donated: number }> {
    return this.st.deviceSpace.all() as Array<{ key: Buffer, donated: number }>
  }

  peer (key: Uint8Array): PeerRow | null {
    const r = this.st.peer.get(Buffer.from(key)) as { key: Buffer, host: string, port: number, last_seen: number } | undefined
    return r === undefined ? null : { key: r.key, host: r.host, port: r.port, lastSeen: r.last_seen }
  }

  cacheTouch (blockId: Uint8Array, size: number): void {
    if (this.closed) return
    this.st.cacheTouch.run(Buffer.from(blockId), size, this.now())
  }

  cacheHas (blockId: Uint8Array): boolean {
    return this.st.cacheHas.get(Buffer.from(blockId)) !== undefined
  }

  cacheBytes (): number {
    return (this.st.cacheBytes.get() as { n: number }).n
  }

  cacheOldest (limit: number): Array<{ blockId: Buffer, size: number }> {
    return (this.st.cacheOldest.all(limit) as Array<{ block_id: Buffer, size: number }>).map(r => ({ blockId: r.block_id, size: r.size }))
  }

  cacheDrop (blockId: Uint8Array): void {
    this.st.cacheDrop.run(Buffer.from(blockId))
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    try { this.db.pragma('wal_checkpoint(TRUNCATE)') } catch {}
    this.db.close()
  }
}
