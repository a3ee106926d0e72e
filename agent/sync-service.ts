// SyncService: the agent's multi-device part (docs/sync.md), kept out of agent.ts. Builds the
// DeviceSync, the mass-delete guard and the version collector on a started agent; turns what the
// watcher reports (a file or its stub gone) into deletions; finds at start the files deleted while
// the agent was off; and answers the control calls `sync`, `versions`, `restoreVersion` and `gc`.

import { promises as fsp } from 'node:fs'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { decodeStub, encodeStub, isStubName, stubNameFor, targetNameFor } from '../stubs/index.js'
import { exists, writeFileAtomic } from '../stubs/fsutil.js'
import { DeviceSync, type SyncDevice, type SyncStatus } from './sync.js'
import { DeleteGuard, type HeldFolder } from './delete-guard.js'
import { Collector, type GcResult } from './collector.js'
import type { SyncDb } from './sync-db.js'
import { AgentError, AgentCodes } from './errors.js'
import type { Agent } from './agent.js'

/** Open conflicts are looked up (a scan of every path) at most this often. */
export const CONFLICTS_CACHE_MS = 2_000
/** A stub file bigger than this is not read when it appears (stubs/stub-format.ts caps stubs lower). */
const MAX_STUB_FILE = 64 * 1024 * 1024

export interface SyncServiceStatus extends SyncStatus {
  readonly held: HeldFolder[]
  readonly openConflicts: Array<{ folder: string, rel: string }>
  readonly gc: (GcResult & { at: number }) | null
}

export class SyncService {
  readonly sync: DeviceSync
  readonly guard: DeleteGuard
  readonly collector: Collector
  readonly sdb: SyncDb
  private conflictCache: { at: number, list: Array<{ folder: string, rel: string }> } | null = null

  constructor (private readonly a: Agent, device: SyncDevice) {
    const t = (n: string): number | undefined => a.config.tunables[n]
    this.sync = new DeviceSync({
      db: a.db,
      net: a.net,
      crypto: a.engine.crypto,
      keys: a.engine.keys,
      device,
      folders: () => a.config.folders,
      busy: path => a.queue.busy(path),
      ingest: (folder, path) => a.queue.add(folder, path),
      open: async stub => await a.open(stub),
      hold: (ids, until) => a.placement.hold(ids, until),
      placing: id => a.placement.placing(id),
      imported: () => { a.placement.reloadSoon() },
      notifyDelayMs: t('syncNotifyMs'),
      pullIntervalMs: t('syncPullMs'),
      retryMs: t('syncRetryMs')
    })
    this.sdb = this.sync.sdb
    this.guard = new DeleteGuard({ sdb: this.sdb, commit: id => { this.sdb.unhold(id); this.sync.localDelete(id); a.index?.soon() }, stillGone: async id => await this.stillGone(id), settleMs: t('deleteSettleMs'), share: t('massDeleteShare'), min: t('massDeleteMin') })
    this.collector = new Collector({ sdb: this.sdb, sync: this.sync, net: a.net, keep: t('keepVersions'), undeleteMs: t('undeleteMs'), graceMs: t('gcGraceMs'), intervalMs: t('gcIntervalMs'), holdMs: t('gcHoldMs') })
  }

  start (): void {
    this.sdb.initVectors(this.a.device.id)
    this.sync.start()
    this.collector.start()
    for (const k of this.sync.deviceKeys()) this.a.peers.keep(k)
    // The owner's first device uses the identity key itself (docs/sync.md §2): another device keeps it too.
    const identity = Buffer.from(this.a.engine.keys.identity.publicKey)
    if (!identity.equals(this.a.device.key)) this.a.peers.keep(identity)
  }

  /**
   * The watcher saw `path` go. A deletion when neither the file nor its stub is left (a stub
   * replaced by its file, or a file by its stub, is not one); it goes through the guard.
   */
  async removed (folder: string, path: string): Promise<void> {
    const name = basename(path)
    const original = isStubName(name) ? join(dirname(path), targetNameFor(name, name.slice(0, -2))) : path
    const stub = join(dirname(original), stubNameFor(basename(original)))
    const row = this.a.db.file(folder, relative(folder, original))
    if (row === null || row.state === 'deleted' || row.state === 'removed') return
    if (await exists(original) || await exists(stub)) return
    if (row.versionId === null) {
      // Never placed: nothing to tell the other devices.
      this.a.db.setState(row.id, 'removed')
      this.a.emit('file', { folder, path: original, rel: row.rel, state: 'removed' })
      return
    }
    this.guard.add(folder, row.id)
    this.a.emit('file', { folder, path: original, rel: row.rel, state: 'removed' })
  }

  /**
   * A `.f` stub appeared (a stub renamed or moved by the user, copied back from the trash): when no
   * file of that name is known and every block it lists is known here, it is a new local version.
   */
  async stubAppeared (folder: string, stubPath: string): Promise<void> {
    const name = basename(stubPath)
    const target = join(dirname(stubPath), targetNameFor(name, name.slice(0, -2)))
    const rel = relative(folder, target)
    const row = this.a.db.file(folder, rel)
    if (row !== null && (row.state === 'stubbed' || row.state === 'hydrated')) return
    if (row !== null && this.a.queue.busy(target)) return // being stubbed right now
    if (await exists(target)) return
    const st = await fsp.lstat(stubPath).catch(() => null)
    if (st === null || !st.isFile() || st.size > MAX_STUB_FILE) return
    const { crypto, keys } = this.a.engine
    let s
    try {
      s = decodeStub(crypto, await fsp.readFile(stubPath), { ownerId: keys.ownerId, macKey: keys.stubMac }, stubPath)
    } catch {
      return // not a stub of this owner: left alone
    }
    if (row !== null && row.state !== 'deleted' && row.state !== 'removed') {
      // An ingest stopped (a crash) after its stub replaced the file but before the index said so:
      // the version is recorded and placed; only the state is behind.
      const v = row.versionId === null ? null : this.a.db.version(row.versionId)
      if (v === null || !v.hash.equals(Buffer.from(s.hash))) return
      this.a.db.setState(row.id, 'stubbed')
      this.sync.localVersion(row.id)
      this.a.emit('file', { folder, path: target, rel, state: 'stubbed', size: s.size })
      return
    }
    if (s.blocks.some(b => this.a.db.block(b.id) === null)) return
    const bytes = s.name === basename(target) ? await fsp.readFile(stubPath) : encodeStub(crypto, keys.stubMac, { ...s, name: basename(target) }, name)
    if (s.name !== basename(target)) await writeFileAtomic(stubPath, bytes, { mode: 0o644 })
    const mtimeMs = Number(s.mtimeNs / 1_000_000n)
    const id = this.a.db.touchFile(folder, rel, 'stubbed', s.size, mtimeMs)
    this.a.db.addVersion(id, { hash: s.hash, size: s.size, mtimeNs: s.mtimeNs, mode: s.mode, stub: bytes, blocks: s.blocks.map(b => b.id), device: this.a.device.id }, 'stubbed', mtimeMs)
    this.a.db.setDeletedAt(id, null)
    this.sync.localVersion(id)
    this.a.emit('file', { folder, path: target, rel, state: 'stubbed', size: s.size })
  }

  private async stillGone (fileId: number): Promise<boolean> {
    const row = this.a.db.fileById(fileId)
    if (row === null || row.state === 'deleted' || row.state === 'removed') return false
    const target = join(row.folder, row.rel)
    return !(await exists(target)) && !(await exists(join(dirname(target), stubNameFor(basename(target)))))
  }

  /** At start: placed files whose file and stub are both gone were deleted while the agent was off. */
  async missing (folder: string, seen: ReadonlySet<string>): Promise<void> {
    for (const row of this.a.db.filesIn(folder)) {
      if ((row.state !== 'stubbed' && row.state !== 'hydrated') || seen.has(row.rel)) continue
      await this.removed(folder, join(folder, row.rel))
    }
  }

  status (): SyncServiceStatus {
    return {
      ...this.sync.status(),
      held: this.guard.held(),
      openConflicts: this.openConflicts(),
      gc: this.collector.last
    }
  }

  /** Open conflict copies (at most 100), looked up at most every CONFLICTS_CACHE_MS: status is asked every second. */
  private openConflicts (): Array<{ folder: string, rel: string }> {
    const now = Date.now()
    if (this.conflictCache === null || now - this.conflictCache.at >= CONFLICTS_CACHE_MS) {
      this.conflictCache = { at: now, list: this.sdb.conflicts(100).map(c => ({ folder: c.folder, rel: c.rel })) }
    }
    return this.conflictCache.list
  }

  /** `sync {action: 'confirm' | 'revert', folder?}`: let held deletions go, or bring their stubs back. */
  async resolveHeld (p: Record<string, unknown>): Promise<{ confirmed: number, reverted: number }> {
    const action = p.action
    if (action !== 'confirm' && action !== 'revert') throw new AgentError(AgentCodes.BAD_PARAMS, '"action" must be "confirm" or "revert"')
    if (p.folder !== undefined && typeof p.folder !== 'string') throw new AgentError(AgentCodes.BAD_PARAMS, '"folder" must be a path')
    const folder = p.folder === undefined ? undefined : resolve(p.folder as string)
    let confirmed = 0
    let reverted = 0
    for (const h of this.sdb.held()) {
      if (folder !== undefined && h.folder !== folder) continue
      if (action === 'confirm') {
        this.sdb.unhold(h.id)
        this.sync.localDelete(h.id)
        this.a.index.soon()
        confirmed++
      } else {
        const v = h.versionId === null ? null : this.a.db.version(h.versionId)
        if (v !== null) {
          const target = join(h.folder, h.rel)
          await fsp.mkdir(dirname(target), { recursive: true })
          await writeFileAtomic(join(dirname(target), stubNameFor(basename(target))), v.stub, { mode: 0o644, noClobber: true }).catch(err => { if ((err as { code?: string }).code !== 'EEXIST') throw err })
          this.a.db.setState(h.id, 'stubbed')
          reverted++
        }
        this.sdb.unhold(h.id)
      }
    }
    return { confirmed, reverted }
  }

  /** The row of a watched file given by its path or its stub's (deleted files too). */
  private rowOf (path: unknown): { folder: string, rel: string, id: number, target: string } {
    if (typeof path !== 'string' || path === '' || path.length > 4096 || path.includes('\0')) throw new AgentError(AgentCodes.BAD_PARAMS, '"path" must be a path')
    const abs = resolve(path)
    const folder = this.a.folderOf(abs)
    if (folder === null) throw new AgentError(AgentCodes.NOT_WATCHED, `${JSON.stringify(abs)} is not in a watched folder`)
    const name = basename(abs)
    const target = isStubName(name) ? join(dirname(abs), targetNameFor(name, name.slice(0, -2))) : abs
    const rel = relative(folder, target)
    const row = this.a.db.file(folder, rel)
    if (row === null) throw new AgentError(AgentCodes.NOT_WATCHED, `${JSON.stringify(abs)} has no recorded version`)
    return { folder, rel, id: row.id, target }
  }

  /** `versions {path}`: the kept versions of a file, newest first (n = 1 is the newest). */
  versions (p: Record<string, unknown>): { path: string, state: string, deletedAt: number | null, versions: Array<{ n: number, at: number, size: number, device: string, hash: string, current: boolean }> } {
    const r = this.rowOf(p.path)
    const f = this.sdb.file(r.id)!
    return {
      path: r.target,
      state: f.state,
      deletedAt: f.deletedAt,
      versions: this.sdb.versions(r.id).map((v, i) => ({ n: i + 1, at: v.at, size: v.size, device: v.device, hash: v.hash.toString('hex').slice(0, 16), current: v.id === f.versionId && f.state !== 'deleted' }))
    }
  }

  /**
   * `restoreVersion {path, at}`: make a kept version the current one again (a new change of this
   * device, so the other devices follow); `at` is a version number from `versions` (1 = newest) or
   * a time (ISO 8601 or ms): the newest version recorded at or before it. A deleted file comes back.
   * The file is left as a stub (open it to hydrate).
   */
  async restoreVersion (p: Record<string, unknown>): Promise<{ path: string, n: number, at: number, size: number }> {
    const r = this.rowOf(p.path)
    const list = this.sdb.versions(r.id)
    let pick: (typeof list)[number] | undefined
    let n = 0
    if (typeof p.at === 'number' && Number.isSafeInteger(p.at) && p.at >= 1 && p.at <= 100_000) {
      n = p.at
      pick = list[n - 1]
    } else if (typeof p.at === 'string' && p.at.length <= 64) {
      const t = /^\d+$/.test(p.at) ? Number(p.at) : Date.parse(p.at)
      if (!Number.isFinite(t)) throw new AgentError(AgentCodes.BAD_PARAMS, `"at" ${JSON.stringify(p.at)} is neither a version number nor a time`)
      const i = list.findIndex(v => v.at <= t)
      if (i >= 0) { pick = list[i]; n = i + 1 }
    } else {
      throw new AgentError(AgentCodes.BAD_PARAMS, '"at" must be a version number (1 = newest) or a time')
    }
    if (pick === undefined) throw new AgentError(AgentCodes.NO_VERSION, `${JSON.stringify(r.target)} has no such version (${list.length} kept)`)
    const local = await fsp.lstat(r.target).catch(() => null)
    const row = this.a.db.fileById(r.id)!
    if (local !== null && (row.state !== 'hydrated' || local.size !== row.size || local.mtimeMs !== row.mtimeMs)) {
      throw new AgentError(AgentCodes.NO_VERSION, `${JSON.stringify(r.target)} has local changes not stored yet; wait until it is stored, then restore`)
    }
    const v = this.a.db.version(pick.id)!
    const { crypto, keys } = this.a.engine
    const s = decodeStub(crypto, v.stub, { ownerId: keys.ownerId, macKey: keys.stubMac }, r.target)
    const bytes = s.name === basename(r.target) ? v.stub : encodeStub(crypto, keys.stubMac, { ...s, name: basename(r.target) }, stubNameFor(basename(r.target)))
    const mtimeMs = Number(v.mtimeNs / 1_000_000n)
    this.a.db.tx(() => {
      this.a.db.touchFile(r.folder, r.rel, 'stubbed', v.size, mtimeMs)
      this.a.db.addVersion(r.id, { hash: v.hash, size: v.size, mtimeNs: v.mtimeNs, mode: v.mode, stub: bytes, blocks: this.sdb.versionBlocks(v.id), device: pick!.device }, 'stubbed', mtimeMs)
      this.a.db.setDeletedAt(r.id, null)
      this.sdb.unhold(r.id)
    })
    if (local !== null) await fsp.unlink(r.target).catch(() => {})
    await fsp.mkdir(dirname(r.target), { recursive: true })
    await writeFileAtomic(join(dirname(r.target), stubNameFor(basename(r.target))), bytes, { mode: 0o644 })
    this.sync.localVersion(r.id)
    this.a.emit('file', { folder: r.folder, path: r.target, rel: r.rel, state: 'stubbed', size: v.size })
    return { path: r.target, n, at: pick.at, size: v.size }
  }

  close (): void {
    this.guard.close()
    this.collector.close()
    this.sync.close()
  }
}
