// DeviceSync: keeps the same folders in step across the owner's devices (docs/sync.md). Each device
// logs its changes (a new version of a file, a deletion) with a sequence number; the other devices
// PULL what they have not seen, over the authenticated channel between devices of one owner, when
// told (NOTIFY, within a second of a change), when they meet, and on a period. A remote change is
// applied when its version vector says it follows what this device has: as a `.f` stub (or hydrated
// again when the file was hydrated here), or a deletion. Concurrent changes are a conflict: the newer
// modification wins, and the device holding the loser keeps it as
// `NAME.sync-conflict-YYYYMMDD-HHMMSS-DEVICE.EXT`. A change that would overwrite a local edit not yet
// recorded waits until that edit is recorded (and so becomes a conflict, never a loss).

import { EventEmitter } from 'node:events'
import { promises as fsp } from 'node:fs'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'
import type { Crypto, Keys } from '../stubs/index.js'
import { decodeStub, encodeStub, stubNameFor } from '../stubs/index.js'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { decodeDeviceCert, type NetNode, type Peer } from '../net/index.js'
import type { IndexDb } from './index-db.js'
import { SyncDb, type SyncFileRow } from './sync-db.js'
import { AgentError, AgentCodes, errorLine } from './errors.js'
import { compareVectors, formatVector, mergeVectors, parseVector } from './version-vector.js'
import { decodeSyncReply, decodeSyncRequest, encodeSyncReply, encodeSyncRequest, PullReplyWriter, SYNC_REPLY_TARGET, type SyncBlock, type SyncFile, type SyncReply } from './sync-codec.js'
import { folderLabels } from './folder-index.js'
import { makeParents, relProblem } from './restore.js'

/** A change is announced to connected devices this long after it (changes close together go as one). */
export const NOTIFY_DELAY_MS = 200
/** Every connected device is pulled at least this often (a lost NOTIFY costs at most this). */
export const PULL_INTERVAL_MS = 30_000
/** A pull that had to wait for a local edit to be recorded is tried again after this. */
export const RETRY_MS = 2_000
/** Entries asked per PULL. */
export const PULL_MAX = 512
/** Pages of one pull run (bounded; the next run goes on). */
export const MAX_PAGES = 10_000

export interface SyncDevice { readonly id: string, readonly key: Buffer, readonly name: string }

export interface SyncOptions {
  readonly db: IndexDb
  readonly net: NetNode
  readonly crypto: Crypto
  readonly keys: Keys
  readonly device: SyncDevice
  readonly folders: () => readonly string[]
  /** True while the ingest queue has this path queued or running. */
  readonly busy: (path: string) => boolean
  /** Queue a path for ingest (an untracked or changed local file). */
  readonly ingest: (folder: string, path: string) => void
  /** Hydrate a stub (the agent's open). */
  readonly open: (stubPath: string) => Promise<unknown>
  /** Copies of these blocks are being deleted by another device until `until`: do not place them meanwhile. */
  readonly hold: (ids: readonly Buffer[], until: number) => void
  /** Blocks this device is placing right now. */
  readonly placing: (id: Buffer) => boolean
  readonly notifyDelayMs?: number
  readonly pullIntervalMs?: number
  readonly retryMs?: number
  /** Shard rows of another device's blocks were written to the index (placement re-reads its totals). */
  readonly imported?: () => void
}

export type SyncEventState = 'applied' | 'deleted' | 'conflict' | 'deferred' | 'refused'
export interface SyncEvent { readonly state: SyncEventState, readonly folder: string, readonly rel: string, readonly device: string, readonly detail?: string }

export interface SyncEvents {
  event: [e: SyncEvent]
  warning: [e: Error]
  device: [d: { id: string, name: string, state: 'connected' | 'disconnected' }]
}

export interface SyncStatus {
  readonly device: { id: string, name: string }
  readonly devices: Array<{ id: string, name: string, online: boolean, lastSeen: number, pulled: number }>
  readonly head: number
  readonly applied: number
  /** Conflict copies this device made since it started. */
  readonly conflicts: number
  readonly lastError: string | null
}

export function conflictName (name: string, mtimeMs: number, device: string): string {
  const d = new Date(Number.isFinite(mtimeMs) && mtimeMs > 0 ? mtimeMs : 0)
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  const stamp = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
  const dot = name.lastIndexOf('.')
  const [base, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, '']
  return `${base}.sync-conflict-${stamp}-${device || 'unknown'}${ext}`
}

export class DeviceSync extends EventEmitter<SyncEvents> {
  readonly sdb: SyncDb
  private readonly o: SyncOptions
  private closed = false
  private notifyTimer: NodeJS.Timeout | null = null
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly pulling = new Map<string, Promise<void>>()
  private readonly again = new Set<string>()
  private applied = 0
  private conflicts = 0
  private lastError: string | null = null

  constructor (o: SyncOptions) {
    super()
    this.o = o
    this.sdb = new SyncDb(o.db)
  }

  start (): void {
    const every = setInterval(() => { for (const p of this.devicePeers()) this.pull(p) }, this.o.pullIntervalMs ?? PULL_INTERVAL_MS)
    every.unref()
    this.timers.add(every)
    this.o.net.on('peer', p => this.onPeer(p))
    this.o.net.on('peer-close', p => { if (this.isDevice(p)) this.emit('device', { id: deviceIdOf(p.key), name: '', state: 'disconnected' }) })
    for (const p of this.o.net.peers()) this.onPeer(p)
  }

  /** Known devices of this owner (their transport keys), for the agent to keep connected. */
  deviceKeys (): Buffer[] {
    return this.sdb.devices().map(d => d.key)
  }

  private isDevice (p: Peer): boolean {
    return p.isOwnDevice
  }

  private devicePeers (): Peer[] {
    return this.o.net.peers().filter(p => p.isOpen && this.isDevice(p))
  }

  private onPeer (p: Peer): void {
    if (this.closed || !this.isDevice(p)) return
    const name = certName(p)
    this.sdb.noteDevice(p.key, deviceIdOf(p.key), name, p.cert)
    this.emit('device', { id: deviceIdOf(p.key), name, state: 'connected' })
    this.pull(p)
  }

  private warn (err: unknown): void {
    this.lastError = errorLine(err)
    this.emit('warning', err instanceof Error ? err : new Error(String(err)))
  }

  // ------------------------------------------------------------------------------- local changes

  /** A new version of a file was recorded here (ingest placed it). */
  localVersion (fileId: number): void {
    this.sdb.localChange(fileId, this.o.device.id)
    this.soon()
  }

  /** A file was deleted here (after the mass-delete guard let it through). */
  localDelete (fileId: number): void {
    const f = this.sdb.file(fileId)
    if (f === null || f.state === 'deleted') return
    this.sdb.tx(() => {
      this.sdb.tombstone(fileId)
      this.sdb.localChange(fileId, this.o.device.id)
    })
    this.soon()
  }

  /** Tell connected devices there is something new (debounced). */
  soon (): void {
    if (this.closed || this.notifyTimer !== null) return
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = null
      const head = this.sdb.head()
      for (const p of this.devicePeers()) {
        p.device(encodeSyncRequest({ op: 'NOTIFY', head })).catch(() => {})
      }
    }, this.o.notifyDelayMs ?? NOTIFY_DELAY_MS)
    this.notifyTimer.unref()
  }

  // ------------------------------------------------------------------------------------ serving

  /** Answer a DEVICE request of another device of this owner. */
  async serve (peer: Peer, body: Buffer): Promise<Buffer> {
    const req = decodeSyncRequest(body, `sync request from device ${deviceIdOf(peer.key)}`)
    if (req.op === 'NOTIFY') {
      if (req.head > (this.sdb.device(peer.key)?.pulled ?? 0)) this.pull(peer)
      return encodeSyncReply({ op: 'NOTIFY' })
    }
    if (req.op === 'GC_CHECK') {
      const needed = new Set(this.sdb.referenced(req.ids).map(b => b.toString('hex')))
      for (const id of req.ids) if (this.o.placing(id)) needed.add(id.toString('hex'))
      const free = req.ids.filter(id => !needed.has(id.toString('hex')))
      const until = Math.min(req.holdUntil, Date.now() + 24 * 3600_000)
      this.o.hold(free, until)
      return encodeSyncReply({ op: 'GC_CHECK', needed: req.ids.filter(id => needed.has(id.toString('hex'))) })
    }
    return this.pullReply(req.since, req.max)
  }

  private pullReply (since: number, max: number): Buffer {
    const w = new PullReplyWriter()
    const head = this.sdb.head()
    const labels = this.labelOf()
    let upTo = since
    let more = false
    const changes = this.sdb.changesSince(since, max)
    for (const c of changes) {
      if (w.bytes > SYNC_REPLY_TARGET) { more = true; break }
      if (c.kind === 'b') {
        const b = this.sdb.blockRecord(c.ref as Buffer, true)
        if (b !== null && b.shards.length > 0) w.addBlock(b)
      } else if (c.kind === 'f') {
        const rec = this.fileRecord(Number(c.ref), labels)
        if (rec !== null) {
          for (const b of rec.blocks) w.addBlock(b)
          w.addFile(rec.file)
        }
      }
      upTo = c.seq
    }
    if (!more && changes.length === max) more = true
    return w.finish(head, upTo, more)
  }

  private labelOf (): Map<string, string> {
    const folders = [...this.o.folders()]
    const labels = folderLabels(folders)
    return new Map(folders.map((f, i) => [f, labels[i]]))
  }

  private fileRecord (fileId: number, labels: Map<string, string>): { file: SyncFile, blocks: SyncBlock[] } | null {
    const f = this.sdb.file(fileId)
    if (f === null || f.vv === '') return null
    const label = labels.get(f.folder)
    if (label === undefined) return null
    if (f.state === 'deleted') return { file: { label, rel: f.rel, vv: f.vv, by: f.by, deleted: true, mtimeMs: f.mtimeMs, size: 0, stub: Buffer.alloc(0) }, blocks: [] }
    if (f.versionId === null || f.state === 'removed') return null
    const v = this.o.db.version(f.versionId)
    if (v === null) return null
    const blocks: SyncBlock[] = []
    for (const id of this.sdb.versionBlocks(v.id)) {
      const b = this.sdb.blockRecord(id, false)
      if (b !== null) blocks.push(b)
    }
    return { file: { label, rel: f.rel, vv: f.vv, by: f.by, deleted: false, mtimeMs: f.mtimeMs, size: v.size, stub: v.stub }, blocks }
  }

  // ------------------------------------------------------------------------------------ pulling

  /** Pull everything new from a device (one run at a time per device; a call meanwhile runs it again after). */
  pull (peer: Peer): void {
    if (this.closed) return
    const hex = peer.key.toString('hex')
    if (this.pulling.has(hex)) { this.again.add(hex); return }
    const run = this.pullRun(peer).catch(err => { if (!this.closed) this.warn(err) }).finally(() => {
      this.pulling.delete(hex)
      if (this.again.delete(hex) && peer.isOpen) this.pull(peer)
    })
    this.pulling.set(hex, run)
  }

  private async pullRun (peer: Peer): Promise<void> {
    const from = `device ${deviceIdOf(peer.key)}`
    for (let page = 0; page < MAX_PAGES && !this.closed && peer.isOpen; page++) {
      const since = this.sdb.device(peer.key)?.pulled ?? 0
      const reply = decodeSyncReply(await peer.device(encodeSyncRequest({ op: 'PULL', since, max: PULL_MAX })), `sync reply from ${from}`) as Extract<SyncReply, { op: 'PULL' }>
      if (reply.upTo < since || reply.upTo > reply.head) throw new AgentError(AgentCodes.SYNC_INVALID, `${from} answered a pull after ${since} with changes up to ${reply.upTo} of ${reply.head}`)
      this.sdb.tx(() => { for (const b of reply.blocks) this.sdb.importBlock(b) }) // one commit per page
      if (reply.blocks.length > 0) this.o.imported?.()
      let deferred = false
      for (const f of reply.files) {
        if (this.closed) return
        try {
          if (!await this.apply(f, from)) deferred = true
        } catch (err) {
          this.emit('event', { state: 'refused', folder: f.label, rel: f.rel, device: f.by, detail: errorLine(err) })
          this.warn(new AgentError(AgentCodes.SYNC_INVALID, `${from}: ${JSON.stringify(`${f.label}/${f.rel}`.slice(0, 300))} not applied: ${errorLine(err)}`))
        }
      }
      if (deferred) {
        // Everything is applied again at the retry (applying is idempotent); the watermark waits.
        const t = setTimeout(() => { this.timers.delete(t); if (peer.isOpen) this.pull(peer) }, this.o.retryMs ?? RETRY_MS)
        t.unref()
        this.timers.add(t)
        return
      }
      this.sdb.setPulled(peer.key, reply.upTo)
      if (!reply.more || reply.upTo === since) return
    }
  }

  /**
   * Apply one remote file record. Returns false when it must wait (a local edit of that path is not
   * recorded yet); throws when the record is refused (unsafe path, a stub that does not verify).
   */
  async apply (r: SyncFile, from: string): Promise<boolean> {
    const folder = [...this.labelOf()].find(([, label]) => label === r.label)?.[0]
    if (folder === undefined) return true // a folder this device does not sync
    const why = relProblem(r.rel)
    if (why !== null) throw new AgentError(AgentCodes.UNSAFE_PATH, why)
    const target = resolve(folder, r.rel)
    if (!target.startsWith(folder + sep)) throw new AgentError(AgentCodes.UNSAFE_PATH, 'path leaves its folder')
    const stubPath = join(dirname(target), stubNameFor(basename(target)))
    const { crypto, keys } = this.o
    const stub = r.deleted ? null : decodeStub(crypto, r.stub, { ownerId: keys.ownerId, macKey: keys.stubMac }, `${r.label}/${r.rel} from ${from}`)
    if (stub !== null && stub.name !== basename(target)) throw new AgentError(AgentCodes.SYNC_INVALID, `its stub is for ${JSON.stringify(stub.name.slice(0, 80))}, not this name`)
    if (this.o.busy(target)) return false
    const local = this.sdb.fileAt(folder, r.rel)
    const lvv = parseVector(local?.vv ?? '')
    const rvv = parseVector(r.vv, `version vector of ${r.rel}`)
    const order = compareVectors(rvv, lvv)
    if (order === 'equal' || order === 'less') return true
    // Local state on disk: an edit not recorded yet must be recorded first (then it is a conflict).
    const onDisk = await fsp.lstat(target).catch(() => null)
    const live = local !== null && (local.state === 'stubbed' || local.state === 'hydrated')
    if (onDisk !== null) {
      if (!onDisk.isFile()) throw new AgentError(AgentCodes.UNSAFE_PATH, `${JSON.stringify(target)} exists and is not a regular file`)
      const clean = live && local.state === 'hydrated' && onDisk.size === local.size && onDisk.mtimeMs === local.mtimeMs
      if (!clean) { this.o.ingest(folder, target); return false }
    } else if (local !== null && (local.state === 'uploading' || local.state === 'pending' || local.state === 'waiting')) {
      return false
    }
    const remoteHash = stub === null ? null : Buffer.from(stub.hash)
    const localHash = live && local.versionId !== null ? this.o.db.version(local.versionId)?.hash ?? null : null
    if (order === 'greater' && remoteHash !== null && localHash !== null && remoteHash.equals(localHash)) {
      this.sdb.adopt(local!.id, r.vv, r.by) // the same content: only the vector moves on
      return true
    }
    let vv = rvv
    if (order === 'concurrent') {
      vv = mergeVectors(lvv, rvv)
      const same = (remoteHash !== null && localHash !== null && remoteHash.equals(localHash)) || (r.deleted && !live)
      if (same) { this.sdb.adopt(local!.id, formatVector(vv), r.by); return true }
      if (live && !r.deleted) {
        const remoteWins = r.mtimeMs > local.mtimeMs || (r.mtimeMs === local.mtimeMs && r.by > local.by)
        if (!remoteWins) return true // the device holding the other version keeps it as the conflict copy
        await this.keepAsConflict(local, target, stubPath)
      } else if (live && r.deleted) {
        return true // a change beats a concurrent deletion: the other side gets this version back
      }
      // local deleted, remote changed: the change wins (below)
    }
    await this.applyWinner(r, folder, target, stubPath, local, onDisk !== null, formatVector(vv), stub)
    this.applied++
    this.emit('event', { state: r.deleted ? 'deleted' : 'applied', folder, rel: r.rel, device: r.by })
    return true
  }

  /** The local version lost a conflict: keep it under the conflict name (a new file of this device). */
  private async keepAsConflict (local: SyncFileRow, target: string, stubPath: string): Promise<void> {
    const name = conflictName(basename(target), local.mtimeMs, local.by === '' ? this.o.device.id : local.by)
    const copy = join(dirname(target), name)
    const rel = relative(local.folder, copy)
    this.conflicts++
    if (local.state === 'hydrated') {
      await fsp.rename(target, copy) // the bytes stay; the watcher and ingest record them as a new file
      this.o.ingest(local.folder, copy)
    } else {
      const v = this.o.db.version(local.versionId!)
      if (v === null) throw new AgentError(AgentCodes.INTERNAL, `version ${local.versionId} of ${local.rel} is missing`)
      const { crypto, keys } = this.o
      const s = decodeStub(crypto, v.stub, { ownerId: keys.ownerId, macKey: keys.stubMac }, local.rel)
      const bytes = encodeStub(crypto, keys.stubMac, { ...s, name }, stubNameFor(name))
      await writeFileAtomic(join(dirname(target), stubNameFor(name)), bytes, { mode: 0o644, noClobber: true }).catch(err => {
        if ((err as { code?: string }).code !== 'EEXIST') throw err
      })
      const id = this.o.db.touchFile(local.folder, rel, 'stubbed', v.size, local.mtimeMs)
      this.o.db.addVersion(id, { hash: v.hash, size: v.size, mtimeNs: v.mtimeNs, mode: v.mode, stub: bytes, blocks: this.sdb.versionBlocks(v.id), device: this.o.device.id }, 'stubbed', local.mtimeMs)
      this.localVersion(id)
    }
    this.emit('event', { state: 'conflict', folder: local.folder, rel: local.rel, device: local.by, detail: rel })
  }

  private async applyWinner (r: SyncFile, folder: string, target: string, stubPath: string, local: SyncFileRow | null, onDisk: boolean, vv: string, stub: ReturnType<typeof decodeStub> | null): Promise<void> {
    const { db } = this.o
    if (stub === null) {
      // A deletion: the local copy goes (its versions stay in the history for undelete).
      const id = local?.id ?? db.touchFile(folder, r.rel, 'deleted', 0, r.mtimeMs)
      this.sdb.tx(() => { this.sdb.tombstone(id); this.sdb.adopt(id, vv, r.by) })
      if (onDisk) await fsp.unlink(target).catch(() => {})
      await unlinkStub(stubPath)
      return
    }
    const wasHydrated = local?.state === 'hydrated' && onDisk
    await makeParents(folder, r.rel)
    const old = await fsp.lstat(stubPath).catch(() => null)
    if (old !== null && !old.isFile()) throw new AgentError(AgentCodes.UNSAFE_PATH, `${JSON.stringify(stubPath)} exists and is not a regular file`)
    // Index first (one commit), then the stub: a stub on disk always has its version (and shards) in the index.
    this.sdb.tx(() => {
      const id = db.touchFile(folder, r.rel, 'stubbed', stub.size, r.mtimeMs)
      db.addVersion(id, { hash: stub.hash, size: stub.size, mtimeNs: stub.mtimeNs, mode: stub.mode, stub: r.stub, blocks: stub.blocks.map(b => b.id), device: r.by }, 'stubbed', r.mtimeMs)
      db.setDeletedAt(id, null)
      this.sdb.adopt(id, vv, r.by)
    })
    await writeFileAtomic(stubPath, r.stub, { mode: 0o644 })
    if (wasHydrated) {
      await fsp.unlink(target).catch(() => {})
      await this.o.open(stubPath).catch(err => this.warn(err))
    }
  }

  status (): SyncStatus {
    const online = new Set(this.devicePeers().map(p => p.key.toString('hex')))
    return {
      device: { id: this.o.device.id, name: this.o.device.name },
      devices: this.sdb.devices().map(d => ({ id: d.id, name: d.name, online: online.has(d.key.toString('hex')), lastSeen: d.lastSeen, pulled: d.pulled })),
      head: this.sdb.head(),
      applied: this.applied,
      conflicts: this.conflicts,
      lastError: this.lastError
    }
  }

  /** Ask every known device which of these blocks it still needs (all must answer; null when one cannot). */
  async stillNeeded (ids: Buffer[], holdUntil: number): Promise<Set<string> | null> {
    const known = this.sdb.devices()
    if (known.length === 0) return new Set()
    const peers = new Map(this.devicePeers().map(p => [p.key.toString('hex'), p]))
    const needed = new Set<string>()
    for (const d of known) {
      const p = peers.get(d.key.toString('hex'))
      if (p === undefined) return null
      try {
        const r = decodeSyncReply(await p.device(encodeSyncRequest({ op: 'GC_CHECK', holdUntil, ids })), `gc check reply from device ${d.id}`)
        if (r.op !== 'GC_CHECK') return null
        for (const id of r.needed) needed.add(id.toString('hex'))
      } catch {
        return null
      }
    }
    return needed
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    if (this.notifyTimer !== null) clearTimeout(this.notifyTimer)
    for (const t of this.timers) { clearTimeout(t); clearInterval(t) }
    this.timers.clear()
  }
}

/** Device id: the first 4 bytes of its transport key, in hex (docs/sync.md §2). */
export function deviceIdOf (key: Uint8Array): string {
  return Buffer.from(key).subarray(0, 4).toString('hex')
}

/** The device name its certificate gives ('' without one, e.g. the owner's first device). */
function certName (p: Peer): string {
  if (p.cert === null) return ''
  try { return decodeDeviceCert(p.cert, `device ${deviceIdOf(p.key)}`).name } catch { return '' }
}

async function unlinkStub (stubPath: string): Promise<void> {
  const st = await fsp.lstat(stubPath).catch(() => null)
  if (st?.isFile() === true) await fsp.unlink(stubPath).catch(() => {})
}
