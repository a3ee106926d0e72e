// ShardStore: the storage a node donates to other owners (docs/protocol.md §7). Shards are kept under
// their owner's id, content-addressed (id = BLAKE2b-256 of the bytes, checked on every PUT and GET),
// within a per-owner quota and a total donated space. Writes are atomic (temp, fsync, rename, dir
// fsync). Per-owner usage is kept in memory, saved to usage.json at close, and rebuilt by a scan when
// the last run did not close cleanly. Only the owner's own namespace is ever visible to it: a GET, LIST
// or DELETE by anyone else simply finds nothing (NOT_FOUND), so no owner learns of another's shards.

import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import sodium from 'sodium-native'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { DirSyncer } from '../stubs/dir-sync.js'
import { NetError, NetCodes, fsError } from './errors.js'
import { AuditStatus, MAX_SHARD_BYTES, PutStatus, SHARD_ID_BYTES, type AuditAnswer, type AuditChallenge, type ListEntry, type Space } from './messages.js'

export const USAGE_FILE = 'usage.json'
const OWNERS_DIR = 'owners'
const HEX64 = /^[0-9a-f]{64}$/
const HEX2 = /^[0-9a-f]{2}$/
/** Audit proofs are keyed BLAKE2b-256 over this label, the shard id, the range and the bytes. */
export const AUDIT_LABEL = Buffer.from('dustbox/v1/audit', 'ascii')

export interface ShardStoreOptions {
  /** Directory of the store (created 0700 if missing). */
  readonly dir: string
  /** Total bytes donated to all other owners together. */
  readonly donatedBytes: number
  /** Bytes one owner may use; a number for everyone, or a function (the agent's give ≥ take policy). */
  readonly quota?: number | ((ownerHex: string) => number)
  /** Largest shard accepted. */
  readonly maxShardBytes?: number
  /** Free bytes the file system must keep after a write (never fill the disk to the last byte). */
  readonly reserveDiskBytes?: number
}

export const DEFAULT_RESERVE_DISK_BYTES = 64 * 1024 * 1024

interface OwnerUsage { bytes: number, count: number }

export function shardIdOf (data: Uint8Array): Buffer {
  const out = Buffer.alloc(SHARD_ID_BYTES)
  sodium.crypto_generichash(out, data)
  return out
}

/** The answer to an audit challenge over `bytes` = the challenged range of the shard. */
export function auditProof (shard: Uint8Array, nonce: Uint8Array, offset: number, length: number, bytes: Uint8Array): Buffer {
  const state = Buffer.alloc(sodium.crypto_generichash_STATEBYTES)
  sodium.crypto_generichash_init(state, nonce, 32)
  const range = Buffer.alloc(8)
  range.writeUInt32BE(offset, 0)
  range.writeUInt32BE(length, 4)
  sodium.crypto_generichash_update(state, AUDIT_LABEL)
  sodium.crypto_generichash_update(state, shard)
  sodium.crypto_generichash_update(state, range)
  sodium.crypto_generichash_update(state, bytes)
  const out = Buffer.alloc(32)
  sodium.crypto_generichash_final(state, out)
  return out
}

export class ShardStore {
  readonly dir: string
  readonly donatedBytes: number
  readonly maxShardBytes: number
  private readonly quotaOpt: number | ((ownerHex: string) => number)
  private readonly reserveDisk: number
  private readonly usage = new Map<string, OwnerUsage>()
  /** Bytes promised to writes in progress (counted against quotas before they land). */
  private readonly pending = new Map<string, number>()
  private pendingTotal = 0
  private usedTotal = 0
  /** Writes in progress by owner/id: a second PUT of the same shard waits for the first. */
  private readonly writing = new Map<string, Promise<unknown>>()
  private readonly dirs = new DirSyncer()
  private opened = false
  private closed = false

  constructor (opts: ShardStoreOptions) {
    if (!(Number.isSafeInteger(opts.donatedBytes) && opts.donatedBytes >= 0)) throw new NetError(NetCodes.CONFIG_INVALID, `donated space must be a whole number of bytes, not ${String(opts.donatedBytes)}`)
    this.dir = opts.dir
    this.donatedBytes = opts.donatedBytes
    this.maxShardBytes = Math.min(opts.maxShardBytes ?? MAX_SHARD_BYTES, MAX_SHARD_BYTES)
    this.quotaOpt = opts.quota ?? opts.donatedBytes
    this.reserveDisk = opts.reserveDiskBytes ?? DEFAULT_RESERVE_DISK_BYTES
  }

  /** Open: load usage.json if the last run closed cleanly, else rebuild it by scanning. */
  async open (): Promise<void> {
    if (this.opened) return
    try {
      await fsp.mkdir(join(this.dir, OWNERS_DIR), { recursive: true, mode: 0o700 })
    } catch (err) { throw fsError('create shard store', this.dir, err) }
    const loaded = await this.loadUsage()
    if (!loaded) await this.scan()
    // Until close() writes it clean again, a crash means the next open scans.
    await this.saveUsage(false)
    this.opened = true
  }

  async close (): Promise<void> {
    if (this.closed || !this.opened) { this.closed = true; return }
    this.closed = true
    await Promise.allSettled([...this.writing.values()])
    await this.saveUsage(true)
  }

  quotaFor (ownerHex: string): number {
    const q = typeof this.quotaOpt === 'function' ? this.quotaOpt(ownerHex) : this.quotaOpt
    return Math.max(0, Math.min(q, this.donatedBytes))
  }

  usedBy (ownerHex: string): number {
    return this.usage.get(ownerHex)?.bytes ?? 0
  }

  /** Bytes held for each owner (what I give). */
  owners (): Map<string, { bytes: number, count: number }> {
    return new Map([...this.usage].map(([k, v]) => [k, { ...v }]))
  }

  get used (): number {
    return this.usedTotal
  }

  private ownerDir (ownerHex: string): string {
    return join(this.dir, OWNERS_DIR, ownerHex)
  }

  private pathOf (ownerHex: string, idHex: string): string {
    return join(this.ownerDir(ownerHex), idHex.slice(0, 2), idHex)
  }

  private check (owner: Uint8Array, id: Uint8Array): [string, string] {
    if (!this.opened || this.closed) throw new NetError(NetCodes.CLOSED, 'the shard store is not open')
    if (owner.byteLength !== 32 || id.byteLength !== SHARD_ID_BYTES) throw new NetError(NetCodes.BAD_MESSAGE, 'owner and shard ids are 32 bytes')
    return [Buffer.from(owner).toString('hex'), Buffer.from(id).toString('hex')]
  }

  async space (owner: Uint8Array): Promise<Space> {
    const ownerHex = Buffer.from(owner).toString('hex')
    const quota = this.quotaFor(ownerHex)
    const mine = this.usedBy(ownerHex)
    const disk = await this.diskFree()
    const free = Math.max(0, Math.min(quota - mine - (this.pending.get(ownerHex) ?? 0), this.donatedBytes - this.usedTotal - this.pendingTotal, disk))
    return { donated: BigInt(this.donatedBytes), used: BigInt(this.usedTotal), free: BigInt(free), quotaForYou: BigInt(quota), usedByYou: BigInt(mine), maxShard: this.maxShardBytes }
  }

  private async diskFree (): Promise<number> {
    try {
      const s = await fsp.statfs(this.dir)
      return Math.max(0, Number(s.bavail) * Number(s.bsize) - this.reserveDisk)
    } catch {
      return Number.MAX_SAFE_INTEGER
    }
  }

  /**
   * Store a shard for `owner`. Verifies the id; refuses with TOO_LARGE, HASH_MISMATCH, QUOTA_EXCEEDED,
   * SPACE_EXCEEDED or DISK_FULL. A shard the owner already has here is ALREADY_HELD (and costs nothing).
   */
  async put (owner: Uint8Array, id: Uint8Array, data: Uint8Array): Promise<{ status: number, usedByYou: number, quotaForYou: number }> {
    const [ownerHex, idHex] = this.check(owner, id)
    const key = ownerHex + idHex
    for (let i = 0; i < 3; i++) {
      const running = this.writing.get(key)
      if (running === undefined) break
      await running.catch(() => {})
    }
    const p = this.putOnce(ownerHex, idHex, id, data)
    this.writing.set(key, p)
    try {
      return await p
    } finally {
      if (this.writing.get(key) === p) this.writing.delete(key)
    }
  }

  private async putOnce (ownerHex: string, idHex: string, id: Uint8Array, data: Uint8Array): Promise<{ status: number, usedByYou: number, quotaForYou: number }> {
    const short = idHex.slice(0, 12)
    const quota = this.quotaFor(ownerHex)
    if (data.byteLength > this.maxShardBytes) throw new NetError(NetCodes.TOO_LARGE, `shard ${short}… is ${data.byteLength} bytes, over this node's ${this.maxShardBytes}-byte limit`)
    if (!shardIdOf(data).equals(id)) throw new NetError(NetCodes.HASH_MISMATCH, `shard ${short}…: its bytes do not hash to its id`)
    const path = this.pathOf(ownerHex, idHex)
    // A copy of another size (impossible with atomic writes, but a disk can be edited) is replaced.
    const old = await this.sizeOf(path)
    if (old === data.byteLength) return { status: PutStatus.ALREADY_HELD, usedByYou: this.usedBy(ownerHex), quotaForYou: quota }
    const size = data.byteLength
    const mine = this.usedBy(ownerHex) + (this.pending.get(ownerHex) ?? 0)
    if (mine + size > quota) throw new NetError(NetCodes.QUOTA_EXCEEDED, `shard ${short}… (${size} bytes) would take this owner past its ${quota}-byte quota (${mine} used)`)
    if (this.usedTotal + this.pendingTotal + size > this.donatedBytes) throw new NetError(NetCodes.SPACE_EXCEEDED, `shard ${short}… (${size} bytes) would take this node past its ${this.donatedBytes} donated bytes`)
    if (size > await this.diskFree()) throw new NetError(NetCodes.DISK_FULL, `shard ${short}…: the disk under ${this.dir} is full`)
    this.pending.set(ownerHex, (this.pending.get(ownerHex) ?? 0) + size)
    this.pendingTotal += size
    try {
      const dir = join(this.ownerDir(ownerHex), idHex.slice(0, 2))
      try {
        await fsp.mkdir(dir, { recursive: true, mode: 0o700 })
        await writeFileAtomic(path, data, { mode: 0o600, syncDir: false })
        await this.dirs.sync(dir)
        if (old !== null) this.account(ownerHex, -old, -1)
      } catch (err) { throw fsError(`store shard ${short}… in`, dir, err) }
      this.account(ownerHex, size, 1)
      return { status: PutStatus.STORED, usedByYou: this.usedBy(ownerHex), quotaForYou: quota }
    } finally {
      this.pending.set(ownerHex, (this.pending.get(ownerHex) ?? 0) - size)
      if (this.pending.get(ownerHex) === 0) this.pending.delete(ownerHex)
      this.pendingTotal -= size
    }
  }

  private account (ownerHex: string, bytes: number, count: number): void {
    let u = this.usage.get(ownerHex)
    if (u === undefined) this.usage.set(ownerHex, u = { bytes: 0, count: 0 })
    u.bytes += bytes
    u.count += count
    this.usedTotal += bytes
    if (u.count <= 0) this.usage.delete(ownerHex)
  }

  private async sizeOf (path: string): Promise<number | null> {
    try {
      const st = await fsp.lstat(path)
      return st.isFile() ? st.size : null
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw fsError('stat', path, err)
    }
  }

  /** The shard's bytes, verified against its id. A copy that no longer matches is removed (NOT_FOUND). */
  async get (owner: Uint8Array, id: Uint8Array): Promise<Buffer> {
    const [ownerHex, idHex] = this.check(owner, id)
    const data = await this.read(ownerHex, idHex)
    if (!shardIdOf(data).equals(id)) {
      await this.remove(ownerHex, idHex)
      throw new NetError(NetCodes.NOT_FOUND, `shard ${idHex.slice(0, 12)}… was damaged on this node's disk and has been dropped`)
    }
    return data
  }

  private async read (ownerHex: string, idHex: string): Promise<Buffer> {
    const path = this.pathOf(ownerHex, idHex)
    try {
      const st = await fsp.lstat(path)
      if (!st.isFile() || st.size > this.maxShardBytes) throw Object.assign(new Error('not a shard file'), { code: 'ENOENT' })
      return await fsp.readFile(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NetError(NetCodes.NOT_FOUND, `no shard ${idHex.slice(0, 12)}… here for this owner`)
      throw fsError('read shard', path, err)
    }
  }

  async has (owner: Uint8Array, ids: Uint8Array[]): Promise<boolean[]> {
    const ownerHex = Buffer.from(owner).toString('hex')
    const out: boolean[] = []
    // Bounded parallel stats: at most 64 at a time.
    for (let i = 0; i < ids.length; i += 64) {
      const part = await Promise.all(ids.slice(i, i + 64).map(async id => {
        const [, idHex] = this.check(owner, id)
        return (await this.sizeOf(this.pathOf(ownerHex, idHex))) !== null
      }))
      out.push(...part)
    }
    return out
  }

  private async remove (ownerHex: string, idHex: string): Promise<boolean> {
    const path = this.pathOf(ownerHex, idHex)
    const size = await this.sizeOf(path)
    if (size === null) return false
    try {
      await fsp.unlink(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw fsError('delete shard', path, err)
    }
    this.account(ownerHex, -size, -1)
    return true
  }

  async delete (owner: Uint8Array, ids: Uint8Array[]): Promise<{ deleted: boolean[], usedByYou: number }> {
    const ownerHex = Buffer.from(owner).toString('hex')
    const deleted: boolean[] = []
    const dirs = new Set<string>()
    for (const id of ids) {
      const [, idHex] = this.check(owner, id)
      const key = ownerHex + idHex
      await this.writing.get(key)?.catch(() => {})
      const ok = await this.remove(ownerHex, idHex)
      if (ok) dirs.add(join(this.ownerDir(ownerHex), idHex.slice(0, 2)))
      deleted.push(ok)
    }
    await Promise.all([...dirs].map(async d => await this.dirs.sync(d).catch(() => {})))
    return { deleted, usedByYou: this.usedBy(ownerHex) }
  }

  /** The owner's shards in id order, after `after` (exclusive), at most `limit`. */
  async list (owner: Uint8Array, after: Uint8Array | null, limit: number): Promise<{ entries: ListEntry[], more: boolean }> {
    const ownerHex = Buffer.from(owner).toString('hex')
    if (!this.opened || this.closed) throw new NetError(NetCodes.CLOSED, 'the shard store is not open')
    const afterHex = after === null ? '' : Buffer.from(after).toString('hex')
    const root = this.ownerDir(ownerHex)
    const prefixes = (await readdirOrEmpty(root)).filter(p => HEX2.test(p) && p >= afterHex.slice(0, 2)).sort()
    const entries: ListEntry[] = []
    for (const p of prefixes) {
      const names = (await readdirOrEmpty(join(root, p))).filter(n => HEX64.test(n) && n.startsWith(p) && n > afterHex).sort()
      for (const n of names) {
        if (entries.length === limit) return { entries, more: true }
        const size = await this.sizeOf(join(root, p, n))
        if (size !== null) entries.push({ shard: Buffer.from(n, 'hex'), size })
      }
    }
    return { entries, more: false }
  }

  /** Answer audit challenges: keyed hash over the challenged range (docs/protocol.md §6); the whole copy is verified first. */
  async audit (owner: Uint8Array, challenges: AuditChallenge[]): Promise<AuditAnswer[]> {
    const ownerHex = Buffer.from(owner).toString('hex')
    const out: AuditAnswer[] = []
    for (const c of challenges) {
      const [, idHex] = this.check(owner, c.shard)
      let data: Buffer
      try {
        data = await this.read(ownerHex, idHex)
      } catch (err) {
        if (err instanceof NetError && err.code === NetCodes.NOT_FOUND) { out.push({ status: AuditStatus.MISSING, proof: Buffer.alloc(32) }); continue }
        throw err
      }
      // An honest node checks the whole copy while it has it in hand (a weekly scrub at the agent's
      // audit rate): a copy damaged on disk is dropped and answered MISSING, like GET does.
      if (!shardIdOf(data).equals(c.shard)) {
        await this.remove(ownerHex, idHex)
        out.push({ status: AuditStatus.MISSING, proof: Buffer.alloc(32) })
        continue
      }
      const end = c.length === 0 ? data.length : c.offset + c.length
      if (c.offset > data.length || end > data.length) { out.push({ status: AuditStatus.BAD_RANGE, proof: Buffer.alloc(32) }); continue }
      out.push({ status: AuditStatus.OK, proof: auditProof(c.shard, c.nonce, c.offset, c.length, data.subarray(c.offset, end)) })
    }
    return out
  }

  // ------------------------------------------------------------------------------ usage bookkeeping

  private async loadUsage (): Promise<boolean> {
    let text: string
    try {
      const path = join(this.dir, USAGE_FILE)
      const st = await fsp.stat(path)
      if (st.size > 64 * 1024 * 1024) return false
      text = await fsp.readFile(path, 'utf8')
    } catch { return false }
    try {
      const j = JSON.parse(text) as { v?: unknown, clean?: unknown, owners?: unknown }
      if (j.v !== 1 || j.clean !== true || typeof j.owners !== 'object' || j.owners === null) return false
      const entries = Object.entries(j.owners as Record<string, { bytes?: unknown, count?: unknown }>)
      for (const [k, v] of entries) {
        if (!HEX64.test(k) || !Number.isSafeInteger(v?.bytes) || !Number.isSafeInteger(v?.count) || (v.bytes as number) < 0 || (v.count as number) < 0) return false
      }
      for (const [k, v] of entries) if ((v.count as number) > 0) this.account(k, v.bytes as number, v.count as number)
      return true
    } catch {
      this.usage.clear()
      this.usedTotal = 0
      return false
    }
  }

  private async saveUsage (clean: boolean): Promise<void> {
    const owners: Record<string, OwnerUsage> = {}
    for (const [k, v] of this.usage) owners[k] = v
    const path = join(this.dir, USAGE_FILE)
    try {
      await writeFileAtomic(path, Buffer.from(JSON.stringify({ v: 1, clean, owners }) + '\n'), { mode: 0o600 })
    } catch (err) { throw fsError('save usage', path, err) }
  }

  /** Rebuild usage from the files; removes temp files a crash left behind. */
  private async scan (): Promise<void> {
    this.usage.clear()
    this.usedTotal = 0
    const root = join(this.dir, OWNERS_DIR)
    for (const owner of await readdirOrEmpty(root)) {
      if (!HEX64.test(owner)) continue
      for (const p of await readdirOrEmpty(join(root, owner))) {
        if (!HEX2.test(p)) continue
        const dir = join(root, owner, p)
        for (const n of await readdirOrEmpty(dir)) {
          const path = join(dir, n)
          if (!HEX64.test(n) || !n.startsWith(p)) {
            // Our own temp files (a crash mid-write); anything else is left alone.
            if (n.startsWith('.dustbox-tmp.')) await fsp.unlink(path).catch(() => {})
            continue
          }
          const size = await this.sizeOf(path)
          if (size !== null) this.account(owner, size, 1)
        }
      }
    }
  }
}

async function readdirOrEmpty (dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return []
    throw fsError('list', dir, err)
  }
}
