// Restore from the key alone (docs/index-format.md §5): read the owner's pointer from the DHT, fetch
// the newest index root from the peers it names, fetch and check the index chunks, then recreate
// every folder under the target directory as `.f` stubs (and hydrate them when asked). Nothing in
// the index is trusted for paths: every name is checked, every file is written under its folder
// only, and an entry that cannot be written safely is refused with an error that names it.

import { promises as fsp } from 'node:fs'
import { join, resolve, sep, dirname, basename } from 'node:path'
import type { IndexDb } from './index-db.js'
import type { Fetcher } from './fetcher.js'
import type { PeerKeeper } from './peer-keeper.js'
import type { Discovery } from '../dht/index.js'
import type { Crypto } from '../stubs/crypto.js'
import type { Keys } from '../stubs/keys.js'
import { shardIdOf } from '../net/index.js'
import { decodeBlock } from '../stubs/block-codec.js'
import { decodeStub } from '../stubs/stub-format.js'
import { nameProblem, stubNameFor } from '../stubs/names.js'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { decodeIndex, decodeRoot, decodeRootPointer, type FolderIndex, type IndexPeer, type IndexBlock, type IndexRoot } from './index-codec.js'
import { indexHash, openRoot } from './folder-index.js'
import { AgentError, AgentCodes } from './errors.js'
import { formatVector, parseVector } from './version-vector.js'
import { decodeDeviceCert, verifyDeviceCert } from '../net/device-cert.js'

/** A version vector from the index, checked (version-vector.ts); INDEX_INVALID when malformed. */
function checkedVector (vv: string): string {
  try {
    return formatVector(parseVector(vv))
  } catch (err) {
    throw new AgentError(AgentCodes.INDEX_INVALID, (err as Error).message)
  }
}

export const MAX_PATH_BYTES = 4096
export const MAX_DEPTH = 256

export interface RestoreDeps {
  readonly db: IndexDb
  readonly fetcher: Fetcher
  readonly peers: PeerKeeper
  readonly discovery: Discovery
  readonly crypto: Crypto
  readonly keys: Keys
  /** This device's transport key (never recorded as another device). */
  readonly selfKey?: Buffer
  /** Hydrate one written stub (the agent's open). */
  readonly open: (stubPath: string, signal?: AbortSignal) => Promise<unknown>
}

export interface RestoreResult {
  readonly seq: number
  readonly folders: string[]
  readonly files: number
  readonly hydrated: number
  /** Index v2: older versions and deleted files recorded (restorable with restore-version), devices met. */
  readonly versions?: number
  readonly deleted?: number
  readonly devices?: number
  readonly refused: Array<{ entry: string, error: string }>
}

/** Why a relative path from an index cannot be written under its folder, or null. */
export function relProblem (rel: string): string | null {
  if (rel.length === 0) return 'empty path'
  if (Buffer.byteLength(rel, 'utf8') > MAX_PATH_BYTES) return `path longer than ${MAX_PATH_BYTES} bytes`
  if (rel.startsWith('/')) return 'absolute path'
  const parts = rel.split('/')
  if (parts.length > MAX_DEPTH) return `more than ${MAX_DEPTH} levels deep`
  for (const p of parts) {
    if (p === '..') return 'path leaves its folder ("..")'
    const why = nameProblem(p)
    if (why !== null) return `"${p.slice(0, 40)}": ${why === 'name longer than 255 bytes' ? 'name too long for the file system (over 255 bytes)' : why}`
  }
  return null
}

/** Create `rel`'s parent directories under `root`, refusing any existing component that is not a real directory (a symlink could lead out). */
export async function makeParents (root: string, rel: string): Promise<void> {
  const parts = rel.split('/').slice(0, -1)
  let at = root
  for (const p of parts) {
    at = join(at, p)
    const st = await fsp.lstat(at).catch(() => null)
    if (st === null) { await fsp.mkdir(at, { mode: 0o755 }).catch(err => { if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err }); continue }
    if (!st.isDirectory()) throw new AgentError(AgentCodes.UNSAFE_PATH, `${JSON.stringify(at)} exists and is not a directory (a symlink or a file); not writing through it`)
  }
}

export class Restorer {
  constructor (private readonly d: RestoreDeps) {}

  /** The newest root: pointer from the DHT, root from the holders it names (checked, decrypted, not stale). */
  async findRoot (signal?: AbortSignal): Promise<IndexRoot> {
    const { discovery, peers, keys } = this.d
    const ptr = await discovery.getPointer()
    if (ptr === null) throw new AgentError(AgentCodes.INDEX_NOT_FOUND, `no folder index pointer of identity ${keys.ownerId.slice(0, 16)}… in the DHT (was an agent with this key ever online with its folders, and is the bootstrap address right?)`)
    const p = decodeRootPointer(ptr.payload, 'the DHT pointer')
    const errors: string[] = []
    for (const holder of p.holders) {
      const who = holder.toString('hex').slice(0, 8)
      try {
        const peer = await peers.connect(holder, signal)
        const data = await peer.get(p.shardId, { timeoutMs: 60_000, signal })
        if (!shardIdOf(data).equals(p.shardId)) throw new AgentError(AgentCodes.INDEX_INVALID, `peer ${who} sent a root that does not hash to the pointer's id`)
        const { seq, plain } = openRoot(keys.index, keys.identity.publicKey, data, `peer ${who}`)
        if (seq < p.seq) throw new AgentError(AgentCodes.INDEX_STALE, `peer ${who} holds root ${seq}, older than the pointer's ${p.seq}`)
        const root = decodeRoot(plain, `index root ${seq}`)
        if (root.seq !== seq) throw new AgentError(AgentCodes.INDEX_INVALID, `index root says seq ${root.seq} inside, ${seq} outside`)
        return root
      } catch (err) {
        signal?.throwIfAborted()
        errors.push(`${who}: ${(err as Error).message}`)
      }
    }
    throw new AgentError(AgentCodes.INDEX_NOT_FOUND, `the pointer names root ${p.seq}, but none of its ${p.holders.length} holders gave a valid copy (${errors.join('; ').slice(0, 800)})`)
  }

  private record (peers: readonly IndexPeer[], blocks: readonly IndexBlock[]): void {
    const { db } = this.d
    // One transaction for all (one fsync, not one per block).
    db.tx(() => {
      for (const p of peers) if (p.host !== '' && p.port > 0 && db.peer(p.key) === null) db.notePeer(p.key, p.host, p.port)
      for (const b of blocks) {
        if (db.block(b.id) !== null) continue
        db.addPlacement({ id: b.id, stored: b.stored, k: b.k, m: b.m }, b.shards.map(s => ({ blockId: b.id, idx: s.idx, shardId: s.shardId, peer: peers[s.peer].key, size: s.size })))
      }
    })
  }

  /** Fetch the index the root lists and check it against the root's hash. */
  async fetchIndex (root: IndexRoot, signal?: AbortSignal): Promise<FolderIndex> {
    const { fetcher, crypto, keys } = this.d
    this.record(root.peers, root.chunks)
    const parts: Buffer[] = []
    for (const c of root.chunks) {
      const out = Buffer.alloc(c.stored)
      await fetcher.readBlock(c.id, out, { signal })
      try {
        parts.push(Buffer.from(decodeBlock(crypto, { data: keys.index, plainHash: keys.plainHash }, c.ph, out, c.size)))
      } catch (err) {
        throw new AgentError(AgentCodes.INDEX_INVALID, `index chunk ${c.id.toString('hex').slice(0, 12)} does not decrypt: ${(err as Error).message}`)
      }
    }
    const stream = Buffer.concat(parts)
    if (stream.length !== root.indexBytes || !indexHash(keys.index, stream).equals(root.indexHash)) throw new AgentError(AgentCodes.INDEX_INVALID, `the index of root ${root.seq} does not match the hash its root carries`)
    return decodeIndex(stream, `folder index ${root.seq}`)
  }

  /** Write every folder of `ix` under `to` as stubs; entries that cannot be written safely are refused (listed), the rest go on. */
  async writeTree (ix: FolderIndex, to: string, opts: { hydrate?: boolean, signal?: AbortSignal, onFile?: (path: string) => void } = {}): Promise<Omit<RestoreResult, 'seq'>> {
    const { db, crypto, keys } = this.d
    const base = resolve(to)
    await fsp.mkdir(base, { recursive: true, mode: 0o755 })
    const refused: RestoreResult['refused'] = []
    const dirs: Array<string | null> = []
    for (const f of ix.folders) {
      const why = nameProblem(f.label)
      if (why !== null) { refused.push({ entry: `folder ${JSON.stringify(f.label.slice(0, 80))}`, error: `UNSAFE_PATH: folder label: ${why}` }); dirs.push(null); continue }
      const dir = join(base, f.label)
      await fsp.mkdir(dir, { recursive: true, mode: 0o755 })
      const st = await fsp.lstat(dir)
      if (!st.isDirectory()) { refused.push({ entry: `folder ${JSON.stringify(f.label)}`, error: `UNSAFE_PATH: ${dir} is not a directory` }); dirs.push(null); continue }
      db.addFolder(dir)
      dirs.push(dir)
    }
    this.record(ix.peers, ix.blocks)
    const written: string[] = []
    for (const f of ix.files) {
      opts.signal?.throwIfAborted()
      const dir = dirs[f.folder]
      const entry = `${ix.folders[f.folder].label}/${f.rel}`
      if (dir === null) { refused.push({ entry, error: 'UNSAFE_PATH: its folder was refused' }); continue }
      try {
        const why = relProblem(f.rel)
        if (why !== null) throw new AgentError(AgentCodes.UNSAFE_PATH, why)
        const target = resolve(dir, f.rel)
        if (!target.startsWith(dir + sep)) throw new AgentError(AgentCodes.UNSAFE_PATH, 'path leaves its folder')
        const stub = decodeStub(crypto, f.stub, { ownerId: keys.ownerId, macKey: keys.stubMac }, entry)
        if (stub.name !== basename(target)) throw new AgentError(AgentCodes.INDEX_INVALID, `its stub is for ${JSON.stringify(stub.name.slice(0, 80))}, not this name`)
        await makeParents(dir, f.rel)
        const stubPath = join(dirname(target), stubNameFor(basename(target)))
        const old = await fsp.lstat(stubPath).catch(() => null)
        if (old !== null) {
          if (!old.isFile() || !(await fsp.readFile(stubPath)).equals(f.stub)) throw new AgentError(AgentCodes.UNSAFE_PATH, `${JSON.stringify(stubPath)} already exists with other content; not overwritten`)
        } else {
          await writeFileAtomic(stubPath, f.stub, { mode: 0o644, noClobber: true })
        }
        const vv = f.vv !== undefined && f.vv !== '' ? checkedVector(f.vv) : null
        db.tx(() => {
          const id = db.touchFile(dir, f.rel, 'stubbed', stub.size, f.mtimeMs)
          db.addVersion(id, { hash: stub.hash, size: stub.size, mtimeNs: stub.mtimeNs, mode: stub.mode, stub: f.stub, blocks: stub.blocks.map(b => b.id), device: f.by ?? '' }, 'stubbed', f.mtimeMs)
          if (vv !== null) db.setSyncState(id, vv, f.by ?? '', null)
        })
        written.push(stubPath)
        opts.onFile?.(stubPath)
      } catch (err) {
        refused.push({ entry, error: (err as Error).message })
      }
    }
    const history = this.writeHistory(ix, dirs, refused)
    let hydrated = 0
    if (opts.hydrate === true) {
      let i = 0
      const worker = async (): Promise<void> => {
        while (i < written.length) {
          const s = written[i++]
          try {
            await this.d.open(s, opts.signal)
            hydrated++
          } catch (err) {
            opts.signal?.throwIfAborted()
            refused.push({ entry: s, error: (err as Error).message })
          }
        }
      }
      await Promise.all(Array.from({ length: 4 }, worker))
    }
    return { folders: dirs.filter((d): d is string => d !== null), files: written.length, hydrated, ...history, refused }
  }

  /**
   * Index v2: deleted files (tombstones, nothing on disk), older versions (restorable with
   * `dustbox restore-version`), and the owner's devices (dialed to sync). Each entry is checked like a
   * file: a path that could not be written, a stub that does not verify, a certificate of another
   * owner is refused by name.
   */
  private writeHistory (ix: FolderIndex, dirs: ReadonlyArray<string | null>, refused: RestoreResult['refused']): { versions: number, deleted: number, devices: number } {
    const { db, crypto, keys } = this.d
    let versions = 0
    let deleted = 0
    let devices = 0
    const target = (folder: number, rel: string): { dir: string, rel: string } => {
      const dir = dirs[folder]
      if (dir === null || dir === undefined) throw new AgentError(AgentCodes.UNSAFE_PATH, 'its folder was refused')
      const why = relProblem(rel)
      if (why !== null) throw new AgentError(AgentCodes.UNSAFE_PATH, why)
      if (!resolve(dir, rel).startsWith(dir + sep)) throw new AgentError(AgentCodes.UNSAFE_PATH, 'path leaves its folder')
      return { dir, rel }
    }
    for (const d of ix.deleted ?? []) {
      const entry = `${ix.folders[d.folder]?.label ?? '?'}/${d.rel} (deleted)`
      try {
        const t = target(d.folder, d.rel)
        const old = db.file(t.dir, t.rel)
        if (old !== null && old.state !== 'deleted') throw new AgentError(AgentCodes.INDEX_INVALID, 'listed as deleted and as a file')
        const id = db.touchFile(t.dir, t.rel, 'deleted', 0, 0)
        db.setSyncState(id, checkedVector(d.vv), d.by, d.deletedAt)
        deleted++
      } catch (err) {
        refused.push({ entry, error: (err as Error).message })
      }
    }
    for (const v of ix.versions ?? []) {
      const entry = `${ix.folders[v.folder]?.label ?? '?'}/${v.rel} (version of ${new Date(v.createdAt).toISOString()})`
      try {
        const t = target(v.folder, v.rel)
        const row = db.file(t.dir, t.rel)
        if (row === null) throw new AgentError(AgentCodes.INDEX_INVALID, 'a version of a file the index does not list')
        const stub = decodeStub(crypto, v.stub, { ownerId: keys.ownerId, macKey: keys.stubMac }, entry)
        db.addOldVersion(row.id, { hash: stub.hash, size: stub.size, mtimeNs: stub.mtimeNs, mode: stub.mode, stub: v.stub, blocks: stub.blocks.map(b => b.id), device: v.device }, v.createdAt)
        versions++
      } catch (err) {
        refused.push({ entry, error: (err as Error).message })
      }
    }
    for (const c of ix.devices ?? []) {
      try {
        const cert = decodeDeviceCert(c, 'a device certificate in the index')
        verifyDeviceCert(c, cert.device, 'a device certificate in the index')
        if (!cert.identity.equals(Buffer.from(keys.identity.publicKey))) throw new AgentError(AgentCodes.INDEX_INVALID, 'a device certificate of another identity')
        if (this.d.selfKey !== undefined && cert.device.equals(this.d.selfKey)) continue
        db.noteDeviceCert(cert.device, cert.device.subarray(0, 4).toString('hex'), cert.name, c)
        devices++
      } catch (err) {
        refused.push({ entry: 'device certificate', error: (err as Error).message })
      }
    }
    return { versions, deleted, devices }
  }

  async run (to: string, opts: { hydrate?: boolean, signal?: AbortSignal, onFile?: (path: string) => void } = {}): Promise<RestoreResult> {
    const root = await this.findRoot(opts.signal)
    const ix = await this.fetchIndex(root, opts.signal)
    return { seq: root.seq, ...await this.writeTree(ix, to, opts) }
  }
}
