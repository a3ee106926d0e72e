// Discovery: what an agent asks of the DHT. It announces the node's transport port on its topics
// (the public swarm or a private group, and its own owner topic) and re-announces on a period; looks
// the topics up; turns what it learns into candidates that only become `peer`s once the caller's
// dial (the transport handshake) proves who is there; finds a known identity again by its owner
// topic; and publishes and reads the owner's BEP 44 pointer. It also hands out the owner's signed
// item as put (signedPointer) and puts another owner's signed item as-is (reputItem): storage peers
// keep their owners' pointers alive in the DHT (§4.1). docs/discovery.md is the spec.

import { EventEmitter } from 'node:events'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { CandidateTable, candidateKey, type Candidate, type CandidateOptions } from './candidates.js'
import { DhtNode, type DhtNodeOptions, type DhtStats, type Endpoint } from './dht-node.js'
import { DhtError, DhtCodes, asDhtError } from './errors.js'
import { POINTER_SALT, MAX_POINTER_V, decodeSignedItem, encodeSignedItem, openPointer, pointerTarget, sealPointer, signItem, verifyItem } from './pointer.js'
import { BoundedMap } from './rate.js'
import { readStateJson } from './routing-file.js'
import { epochsAt, ownerTopic, publicTopic, type Topic } from './topics.js'

/** BEP 5 tokens live ~10 minutes and storing nodes keep announces ~30: re-announce every 15 (±10%). */
export const ANNOUNCE_INTERVAL_MS = 15 * 60_000
/** Look the swarm topics up this often (±10%) to meet peers that joined since. */
export const LOOKUP_INTERVAL_MS = 5 * 60_000
/** A lookup of the same topic within this gap returns the last result instead of querying again. */
export const LOOKUP_MIN_GAP_MS = 10_000
/** An announce of the same topic within this gap is skipped. */
export const ANNOUNCE_MIN_GAP_MS = 60_000
/** Re-put the owner's pointer this often; storing nodes drop BEP 44 items not refreshed for 2 hours. */
export const REPUT_INTERVAL_MS = 60 * 60_000
export const MAX_CONCURRENT_LOOKUPS = 4
export const DIAL_CONCURRENCY = 4
export const DIAL_TIMEOUT_MS = 10_000
export const FIND_TIMEOUT_MS = 60_000
export const POINTER_FILE = 'pointer.json'
export const MAX_POINTER_FILE_BYTES = 8192
const JITTER = 0.1

export interface Identity { readonly publicKey: Uint8Array, readonly secretKey: Uint8Array }

/**
 * Proves who answers at an address: a handshake with that address (not an open connection to the
 * expected identity found elsewhere); resolves with the Ed25519 key the handshake proved. Discovery
 * compares it with `expect` itself.
 */
export type DialFn = (to: Endpoint, opts: { expect?: Buffer, signal: AbortSignal }) => Promise<Uint8Array>

export interface DiscoveryOptions extends DhtNodeOptions {
  /** The node's transport identity: announced on its own topic, found again by findPeer. */
  readonly identity: Identity
  /** The owner identity that signs the BEP 44 pointer (default `identity`); a second device of an owner passes the owner's. */
  readonly pointerIdentity?: Identity
  /** Swarm topics to announce on and look up. Default: the public swarm. */
  readonly topics?: readonly Topic[]
  /** The transport port to announce (uTP and TCP share it). Absent: look up only, announce nothing. */
  readonly announcePort?: number
  /** K_pointer (docs/keys.md): seals the owner's pointer. Needed for putPointer/getPointer. */
  readonly pointerKey?: Uint8Array
  readonly dial?: DialFn
  readonly candidates?: CandidateOptions
  readonly announceIntervalMs?: number
  readonly lookupIntervalMs?: number
  readonly lookupMinGapMs?: number
  readonly announceMinGapMs?: number
  readonly reputIntervalMs?: number
  readonly dialConcurrency?: number
  readonly dialTimeoutMs?: number
  readonly epochSkewMs?: number
  /** Start the periodic announce, lookup and re-put loops at ready() (default true). */
  readonly autoStart?: boolean
  /** Clock (tests: epoch boundaries). */
  readonly now?: () => number
}

export interface CandidateEvent { readonly host: string, readonly port: number, readonly topic: string }
export interface PeerEvent { readonly publicKey: Buffer, readonly host: string, readonly port: number, readonly topics: string[] }
export interface DiscoveryWarning { readonly error: DhtError, readonly from?: string }
export interface Pointer { readonly seq: number, readonly payload: Buffer, readonly source: 'dht' | 'local' }

export interface DiscoveryEvents {
  ready: []
  candidate: [c: CandidateEvent]
  peer: [p: PeerEvent]
  'dial-failed': [d: { host: string, port: number, error: DhtError, retryInMs: number }]
  announce: [a: { topic: string, ok: boolean }]
  lookup: [l: { topic: string, found: number, ms: number }]
  pointer: [p: { seq: number, nodes: number, stale: boolean }]
  warning: [w: DiscoveryWarning]
  close: []
}

interface PointerState { seq: number, v: Buffer, sig: Buffer }

export class Discovery extends EventEmitter<DiscoveryEvents> {
  readonly dht: DhtNode
  readonly identity: Identity
  readonly pointerIdentity: Identity
  readonly topics: readonly Topic[]
  readonly ownTopic: Topic
  private readonly table: CandidateTable
  private readonly now: () => number
  private readonly lookups = new Map<string, Promise<Endpoint[]>>()
  private readonly lastLookup = new BoundedMap<string, { at: number, result: Endpoint[] }>(256)
  private readonly lastAnnounce = new BoundedMap<string, number>(256)
  /** The port announced instead of `announcePort` (a router's mapping), or null. */
  private mappedPort: number | null = null
  private lookupSlots = 0
  private readonly lookupWaiters: Array<() => void> = []
  private readonly waiters = new Map<string, Array<(ok: boolean) => void>>()
  private dialing = 0
  private readonly dialAborts = new Set<AbortController>()
  private timers = new Set<NodeJS.Timeout>()
  private pointer: PointerState | null = null
  /** The pointer as last put successfully by this process (putPointer, or a re-put that stored it). */
  private putState: PointerState | null = null
  private pointerChecked = false
  private readyPromise: Promise<void> | null = null
  private closePromise: Promise<void> | null = null
  private closed = false

  constructor (readonly opts: DiscoveryOptions) {
    super()
    if (opts.identity?.publicKey?.byteLength !== 32 || opts.identity.secretKey?.byteLength !== 64) {
      throw new DhtError(DhtCodes.CONFIG_INVALID, 'identity must be an Ed25519 key pair (32-byte public, 64-byte secret key)')
    }
    if (opts.announcePort !== undefined && (!Number.isInteger(opts.announcePort) || opts.announcePort < 1 || opts.announcePort > 65535)) {
      throw new DhtError(DhtCodes.CONFIG_INVALID, `announce port ${opts.announcePort} is not 1..65535`)
    }
    if (opts.pointerKey !== undefined && opts.pointerKey.byteLength !== 32) throw new DhtError(DhtCodes.CONFIG_INVALID, 'the pointer key must be 32 bytes')
    this.identity = opts.identity
    this.pointerIdentity = opts.pointerIdentity ?? opts.identity
    this.topics = opts.topics ?? [publicTopic()]
    this.ownTopic = ownerTopic(opts.identity.publicKey)
    this.now = opts.now ?? Date.now
    this.table = new CandidateTable(opts.candidates)
    this.dht = new DhtNode(opts)
    this.dht.on('warning', (w) => this.emit('warning', w))
  }

  async ready (): Promise<void> {
    this.readyPromise ??= (async () => {
      await this.dht.ready()
      await this.loadPointer()
      if (this.closed) throw new DhtError(DhtCodes.CLOSED, 'discovery was closed while starting')
      if (this.opts.autoStart !== false) this.startLoops()
      this.emit('ready')
    })()
    return await this.readyPromise
  }

  // ---- periodic work ----

  private startLoops (): void {
    const o = this.opts
    if (o.announcePort !== undefined) this.every(o.announceIntervalMs ?? ANNOUNCE_INTERVAL_MS, async () => { await this.announce() })
    this.every(o.lookupIntervalMs ?? LOOKUP_INTERVAL_MS, async () => {
      await Promise.all(this.topics.map(async t => await this.lookup(t)))
    })
    this.every(o.reputIntervalMs ?? REPUT_INTERVAL_MS, async () => { await this.reput() }, false)
  }

  /** Runs `fn` now (unless `now` is false) and then every `ms` ±10%, catching its errors as warnings. */
  private every (ms: number, fn: () => Promise<void>, runNow = true): void {
    const run = (): void => {
      if (this.closed) return
      fn().catch((err) => { if (!this.closed) this.warn(asDhtError(err, DhtCodes.LOOKUP_FAILED, 'periodic DHT work')) })
        .finally(() => schedule())
    }
    const schedule = (): void => {
      if (this.closed) return
      const t = setTimeout(() => { this.timers.delete(t); run() }, Math.round(ms * (1 - JITTER + Math.random() * 2 * JITTER)))
      t.unref()
      this.timers.add(t)
    }
    if (runNow) run(); else schedule()
  }

  private warn (error: DhtError, from?: string): void {
    this.dht.warn(error, from)
  }

  // ---- announce ----

  /** Announce another port from now on (a router's mapping, docs/reachability.md §3), at once. */
  setAnnouncePort (port: number): void {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new DhtError(DhtCodes.CONFIG_INVALID, `announce port ${port} is not 1..65535`)
    if (this.opts.announcePort === undefined || (this.mappedPort ?? this.opts.announcePort) === port) return
    this.mappedPort = port
    this.lastAnnounce.clear()
    this.announce().catch(err => { if (!this.closed) this.warn(asDhtError(err, DhtCodes.LOOKUP_FAILED, 'announce of the mapped port')) })
  }

  /** Announces the transport port on every swarm topic and on the node's own owner topic (current epochs). */
  async announce (): Promise<Array<{ topic: string, ok: boolean }>> {
    const port = this.opts.announcePort === undefined ? undefined : (this.mappedPort ?? this.opts.announcePort)
    if (port === undefined) throw new DhtError(DhtCodes.CONFIG_INVALID, 'no announce port configured: this node only looks up')
    const gap = this.opts.announceMinGapMs ?? ANNOUNCE_MIN_GAP_MS
    const out: Array<{ topic: string, ok: boolean }> = []
    for (const topic of [...this.topics, this.ownTopic]) {
      for (const epoch of epochsAt(this.now(), this.opts.epochSkewMs)) {
        const id = topic.at(epoch)
        const hex = id.toString('hex')
        const last = this.lastAnnounce.get(hex)
        if (last !== undefined && this.now() - last < gap) continue
        this.lastAnnounce.set(hex, this.now())
        let ok = true
        try {
          await this.dht.announce(id, port)
        } catch (err) {
          ok = false
          this.lastAnnounce.delete(hex)
          if (this.closed) throw err
          this.warn(asDhtError(err, DhtCodes.ANNOUNCE_FAILED, `announce on topic ${topic.name}`))
        }
        out.push({ topic: topic.name, ok })
        this.emit('announce', { topic: topic.name, ok })
      }
    }
    return out
  }

  // ---- lookups and candidates ----

  /**
   * Looks a topic up (all its current epochs) and offers what it finds as candidates, dialed in the
   * background when a dial function is set. Concurrent calls for a topic share one lookup, and a call
   * within LOOKUP_MIN_GAP_MS of the last returns its result.
   */
  async lookup (topic: Topic = this.topics[0], opts: { signal?: AbortSignal, expect?: Buffer } = {}): Promise<Endpoint[]> {
    const ids = epochsAt(this.now(), this.opts.epochSkewMs).map(e => topic.at(e))
    const key = ids.map(i => i.toString('hex')).join(',')
    const last = this.lastLookup.get(key)
    if (last !== undefined && this.now() - last.at < (this.opts.lookupMinGapMs ?? LOOKUP_MIN_GAP_MS)) return last.result
    let p = this.lookups.get(key)
    if (p === undefined) {
      p = this.runLookup(topic, ids, opts.signal, opts.expect ?? null)
      this.lookups.set(key, p)
      p.then((result) => {
        this.lastLookup.set(key, { at: this.now(), result })
      }, () => {}).finally(() => this.lookups.delete(key)).catch(() => {})
    }
    return await p
  }

  /** Candidates are offered (and dialed) as replies arrive, not when the whole lookup is done. */
  private async runLookup (topic: Topic, ids: Buffer[], signal: AbortSignal | undefined, expect: Buffer | null): Promise<Endpoint[]> {
    await this.lookupSlot()
    const t0 = this.now()
    try {
      const seen = new Map<string, Endpoint>()
      for (const id of ids) {
        const onPeer = (e: Endpoint): void => { this.offer(e, topic.name, expect); this.pump() }
        for (const e of await this.dht.lookup(id, { signal, onPeer })) seen.set(`${e.host}:${e.port}`, e)
      }
      const found = [...seen.values()]
      this.emit('lookup', { topic: topic.name, found: found.length, ms: this.now() - t0 })
      return found
    } finally {
      this.lookupSlots--
      this.lookupWaiters.shift()?.()
    }
  }

  private async lookupSlot (): Promise<void> {
    while (this.lookupSlots >= MAX_CONCURRENT_LOOKUPS) await new Promise<void>(resolve => this.lookupWaiters.push(resolve))
    this.lookupSlots++
  }

  private offer (e: Endpoint, topic: string, expect: Buffer | null): Candidate {
    const { candidate, fresh } = this.table.offer(e.host, e.port, topic, expect, this.now())
    if (fresh) this.emit('candidate', { host: e.host, port: e.port, topic })
    return candidate
  }

  /** Starts dials while there are queued candidates and free dial slots. */
  private pump (): void {
    const dial = this.opts.dial
    if (dial === undefined || this.closed) return
    const max = this.opts.dialConcurrency ?? DIAL_CONCURRENCY
    while (this.dialing < max) {
      const c = this.table.take()
      if (c === null) return
      this.dialing++
      this.dialOne(dial, c).catch(() => {}).finally(() => { this.dialing--; this.pump() })
    }
  }

  private async dialOne (dial: DialFn, c: Candidate): Promise<void> {
    const ac = new AbortController()
    this.dialAborts.add(ac)
    const timer = setTimeout(() => ac.abort(new DhtError(DhtCodes.DIAL_FAILED, 'dial timed out')), this.opts.dialTimeoutMs ?? DIAL_TIMEOUT_MS)
    let ok = false
    try {
      const key = Buffer.from(await dial({ host: c.host, port: c.port }, c.expect !== null ? { expect: c.expect, signal: ac.signal } : { signal: ac.signal }))
      if (this.closed) return
      if (key.equals(Buffer.from(this.identity.publicKey))) { this.table.markSelf(c); return }
      if (c.expect !== null && !key.equals(c.expect)) {
        throw new DhtError(DhtCodes.DIAL_FAILED, `${c.host}:${c.port} was announced for ${c.expect.toString('hex').slice(0, 8)} but proved to be ${key.toString('hex').slice(0, 8)}`)
      }
      this.table.succeed(c, key, this.now())
      ok = true
      this.emit('peer', { publicKey: key, host: c.host, port: c.port, topics: [...c.topics] })
    } catch (err) {
      if (this.closed) return
      const error = asDhtError(err, DhtCodes.DIAL_FAILED, `candidate ${c.host}:${c.port} failed its handshake`)
      const retryInMs = this.table.fail(c, this.now())
      this.emit('dial-failed', { host: c.host, port: c.port, error, retryInMs })
    } finally {
      clearTimeout(timer)
      this.dialAborts.delete(ac)
      for (const w of this.waiters.get(c.key) ?? []) w(ok)
      this.waiters.delete(c.key)
    }
  }

  /** For callers that dial candidates themselves: record the outcome of a handshake with an address. */
  reportSuccess (to: Endpoint, publicKey: Uint8Array, expect: Buffer | null = null): void {
    const c = this.table.get(candidateKey(to.host, to.port, expect))
    if (c !== undefined) this.table.succeed(c, Buffer.from(publicKey), this.now())
  }

  reportFailure (to: Endpoint, expect: Buffer | null = null): number | null {
    const c = this.table.get(candidateKey(to.host, to.port, expect))
    return c === undefined ? null : this.table.fail(c, this.now())
  }

  /** Is this address (for this expected identity) backed off after a failed handshake? */
  backedOff (to: Endpoint, expect: Buffer | null = null): boolean {
    const c = this.table.get(candidateKey(to.host, to.port, expect))
    return c !== undefined && c.state === 'failed' && this.now() < c.nextTry
  }

  candidates (): Candidate[] { return this.table.list() }

  /**
   * Finds a known identity again: looks up its owner topic and dials what is announced there,
   * expecting that identity. Resolves with the addresses where the handshake proved it.
   */
  async findPeer (publicKey: Uint8Array, opts: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<Endpoint[]> {
    if (this.opts.dial === undefined) throw new DhtError(DhtCodes.CONFIG_INVALID, 'findPeer needs a dial function to prove who answers')
    const expect = Buffer.from(publicKey)
    const topic = ownerTopic(expect)
    const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs ?? FIND_TIMEOUT_MS), ...(opts.signal !== undefined ? [opts.signal] : [])])
    const found = await this.lookup(topic, { signal, expect })
    const proven: Endpoint[] = []
    // Where the peer is now: addresses proven before are dialed again (back-offs still hold).
    for (const e of found) {
      const c = this.table.get(candidateKey(e.host, e.port, expect))
      if (c !== undefined && c.state === 'verified') this.table.requeue(c)
    }
    this.pump()
    await Promise.all(found.map(async (e) => {
      const c = this.table.get(candidateKey(e.host, e.port, expect))
      if (c === undefined) return
      if (c.state !== 'queued' && c.state !== 'dialing') {
        if (c.state === 'verified' && c.publicKey?.equals(expect) === true) proven.push(e)
        return
      }
      const ok = await new Promise<boolean>((resolve) => {
        const list = this.waiters.get(c.key) ?? []
        list.push(resolve)
        this.waiters.set(c.key, list)
        signal.addEventListener('abort', () => resolve(false), { once: true })
      })
      if (ok) proven.push(e)
    }))
    return proven
  }

  // ---- the owner's pointer (BEP 44) ----

  private pointerFile (): string | null {
    return this.opts.stateDir == null ? null : join(this.opts.stateDir, POINTER_FILE)
  }

  private async loadPointer (): Promise<void> {
    const file = this.pointerFile()
    if (file === null) return
    let doc: any
    try {
      doc = await readStateJson(file, MAX_POINTER_FILE_BYTES)
    } catch (err) {
      const e = asDhtError(err, DhtCodes.STATE_INVALID, 'pointer state')
      this.warn(new DhtError(e.code, `${e.message.slice(e.code.length + 2)}; ignoring the pointer state`))
      return
    }
    if (doc === null) return
    const ok = typeof doc === 'object' && doc !== null && doc.format === 1 && Number.isSafeInteger(doc.seq) && doc.seq >= 0 &&
      typeof doc.v === 'string' && /^([0-9a-f]{2})*$/.test(doc.v) && doc.v.length <= MAX_POINTER_V * 2 &&
      typeof doc.sig === 'string' && /^[0-9a-f]{128}$/.test(doc.sig)
    const state = ok ? { seq: doc.seq as number, v: Buffer.from(doc.v, 'hex'), sig: Buffer.from(doc.sig, 'hex') } : null
    if (state === null || !verifyItem(this.pointerIdentity.publicKey, state.sig, state.seq, state.v)) {
      this.warn(new DhtError(DhtCodes.STATE_INVALID, `${file} is not this identity's signed pointer; ignoring it`))
      return
    }
    this.pointer = state
  }

  private async savePointer (p: PointerState): Promise<void> {
    const file = this.pointerFile()
    if (file === null) return
    await fsp.mkdir(this.opts.stateDir!, { recursive: true, mode: 0o700 })
    const doc = { format: 1, seq: p.seq, v: p.v.toString('hex'), sig: p.sig.toString('hex') }
    await writeFileAtomic(file, Buffer.from(JSON.stringify(doc) + '\n'), { mode: 0o600 })
  }

  private key (): Uint8Array {
    if (this.opts.pointerKey === undefined) throw new DhtError(DhtCodes.CONFIG_INVALID, 'no pointer key configured')
    return this.opts.pointerKey
  }

  /**
   * Publishes `payload` (≤ MAX_POINTER_PAYLOAD bytes) as the owner's pointer, with a sequence number
   * above both the last one this node put and the highest one the DHT holds. The signed item is saved
   * before it is put, so the sequence never goes back after a crash; it is re-put every REPUT_INTERVAL_MS.
   */
  async putPointer (payload: Uint8Array): Promise<{ seq: number, nodes: number }> {
    const key = this.key()
    const pk = Buffer.from(this.pointerIdentity.publicKey)
    let floor = this.pointer?.seq ?? -1
    if (!this.pointerChecked) {
      const remote = await this.dht.getMutable(pointerTarget(pk), POINTER_SALT)
      if (remote !== null) floor = Math.max(floor, remote.seq)
      this.pointerChecked = true
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      const seq = floor + 1
      const v = sealPointer(key, pk, seq, payload)
      const sig = signItem(this.pointerIdentity.secretKey, seq, v)
      const state = { seq, v, sig }
      await this.savePointer(state)
      this.pointer = state
      const r = await this.dht.putMutable({ k: pk, v, seq, salt: POINTER_SALT, sig })
      if (!r.stale) {
        this.putState = state
        this.emit('pointer', { seq, nodes: r.nodes, stale: false })
        return { seq, nodes: r.nodes }
      }
      // Every node holds a newer seq (another device of this owner, or lost local state): go above it.
      const remote = await this.dht.getMutable(pointerTarget(pk), POINTER_SALT)
      floor = Math.max(seq, remote?.seq ?? seq)
    }
    throw new DhtError(DhtCodes.PUT_FAILED, 'every DHT node refused the pointer as older than what it holds, twice')
  }

  /** Puts the last pointer again, as signed: nodes holding the identical item refresh its age (dht-node.ts); older nodes may answer 302, fine. */
  async reput (): Promise<void> {
    const p = this.pointer
    if (p === null) return
    const r = await this.dht.putMutable({ k: Buffer.from(this.pointerIdentity.publicKey), v: p.v, seq: p.seq, salt: POINTER_SALT, sig: p.sig })
    if (!r.stale && (this.putState === null || p.seq >= this.putState.seq)) this.putState = p
    this.emit('pointer', { seq: p.seq, nodes: r.nodes, stale: r.stale })
  }

  /**
   * The owner's signed item exactly as last put successfully from this process (by putPointer, or by
   * a re-put that some node stored), encoded with encodeSignedItem (§4.1: the bencoded dict {k, salt,
   * seq, sig, v}); null before the first successful put. Storage peers keep it and re-put it.
   */
  signedPointer (): Buffer | null {
    const p = this.putState
    if (p === null) return null
    return encodeSignedItem({ k: Buffer.from(this.pointerIdentity.publicKey), salt: POINTER_SALT, seq: p.seq, sig: p.sig, v: p.v })
  }

  /**
   * Puts another owner's signed item (encodeSignedItem's format) into the DHT as it is, with its own
   * signature: nothing is signed here. The item is decoded strictly and its signature over {salt, seq,
   * v} checked under its k first; a bad one throws POINTER_INVALID (POINTER_TOO_LARGE if oversized)
   * and nothing is sent. Resolves true when at least one node stored it, false when every node that
   * answered holds a newer seq or refused it (302; our own nodes refresh an identical item and count as stored). Throws PUT_FAILED
   * when no node could be reached.
   */
  async reputItem (item: Uint8Array): Promise<boolean> {
    const it = decodeSignedItem(item)
    const r = await this.dht.putMutable({ k: it.k, v: it.v, seq: it.seq, salt: it.salt, sig: it.sig })
    return !r.stale
  }

  /**
   * Reads the owner's pointer from the DHT: the highest-seq item whose signature verifies, decrypted.
   * An item older than `minSeq` or than the one this node last put is a replay: with a local copy it
   * returns that (and re-puts it), without one it throws POINTER_REPLAYED. Null if there is none.
   */
  async getPointer (opts: { minSeq?: number } = {}): Promise<Pointer | null> {
    const key = this.key()
    const pk = Buffer.from(this.pointerIdentity.publicKey)
    const item = await this.dht.getMutable(pointerTarget(pk), POINTER_SALT)
    if (item !== null && !verifyItem(pk, item.sig, item.seq, item.v)) throw new DhtError(DhtCodes.POINTER_INVALID, 'the DHT returned a pointer whose signature does not verify')
    const local = this.pointer
    const floor = Math.max(opts.minSeq ?? 0, local?.seq ?? 0)
    if (item !== null && item.seq >= floor && (local === null || item.seq >= local.seq)) {
      return { seq: item.seq, payload: openPointer(key, pk, item.seq, item.v), source: 'dht' }
    }
    if (local !== null && local.seq >= (opts.minSeq ?? 0)) {
      if (item === null || item.seq < local.seq) {
        this.warn(new DhtError(DhtCodes.POINTER_REPLAYED, `the DHT holds pointer seq ${item?.seq ?? 'none'}, older than seq ${local.seq} put from here; putting it again`))
        this.reput().catch(err => this.warn(asDhtError(err, DhtCodes.PUT_FAILED, 're-put of the pointer')))
      }
      return { seq: local.seq, payload: openPointer(key, pk, local.seq, local.v), source: 'local' }
    }
    if (item === null) return null
    throw new DhtError(DhtCodes.POINTER_REPLAYED, `the DHT's pointer has seq ${item.seq}, below the ${floor} already seen: a replay`)
  }

  // ---- the rest ----

  stats (): DhtStats & { candidates: number, dialQueue: number, dialing: number } {
    return { ...this.dht.stats(), candidates: this.table.size, dialQueue: this.table.queueLength, dialing: this.dialing }
  }

  address (): Endpoint { return this.dht.address() }

  async close (): Promise<void> {
    this.closePromise ??= (async () => {
      this.closed = true
      for (const t of this.timers) clearTimeout(t)
      this.timers.clear()
      for (const ac of this.dialAborts) ac.abort(new DhtError(DhtCodes.CLOSED, 'discovery closed'))
      for (const list of this.waiters.values()) for (const w of list) w(false)
      this.waiters.clear()
      for (const w of this.lookupWaiters.splice(0)) w()
      await this.dht.close()
      this.emit('close')
    })()
    return await this.closePromise
  }
}
