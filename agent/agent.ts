// Agent: the daemon. Ties the parts together on one dustbox home: the engine (stubs/), the local
// index, the transport node that also serves the space this node donates (net/), discovery in the
// DHT (dht/), placement and fetching of shards, the folder watcher, the ingest queue, eviction of
// hydrated files, and the control API that the CLI and the dashboard use. Publishes named states
// on its event bus (`file`, `peer`, `waiting`, `warning`) which the control API streams.

import { IndexPublisher, type IndexStatus } from './index-publisher.js'
import { Restorer, type RestoreResult } from './restore.js'
import { SyncService } from './sync-service.js'
import { exists } from '../stubs/fsutil.js'
import { PointerKeeper } from './pointer-keeper.js'
import { deviceIdOf, type SyncDevice } from './sync.js'
import { loadOrCreateDevice, cleanDeviceName, DEVICE_KEY_FILE } from './device.js'
import { EventEmitter } from 'node:events'
import { promises as fsp } from 'node:fs'
import { hostname } from 'node:os'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { StubEngine, createSecret, loadCrypto, StubError, StubCodes, isStubName, stubNameFor, targetNameFor } from '../stubs/index.js'
import { NetNode, shortId } from '../net/index.js'
import { Discovery } from '../dht/index.js'
import { IndexDb } from './index-db.js'
import { Placement, GRACE_BYTES } from './placement.js'
import { Fetcher } from './fetcher.js'
import { RepairDb } from './repair-db.js'
import { PeerMonitor, type PeerState } from './monitor.js'
import { Auditor, AUDIT_PERIOD_MS, type AuditResult } from './auditor.js'
import { Repairer, type RepairEvent } from './repair.js'
import { makeProofs } from './audit-proofs.js'
import { PeerKeeper } from './peer-keeper.js'
import { IngestQueue, isInside, type FileEvent } from './ingest-queue.js'
import { FolderWatcher } from './watcher.js'
import { ControlServer } from './control-server.js'
import { saveConfig, type AgentConfig } from './config.js'
import { AgentError, AgentCodes, errorLine } from './errors.js'
import { buildStatus, type AgentStatus, type HealthStatus } from './status.js'
import { Activity } from './activity.js'
import { wireControl, isOwnAddress, pick } from './agent-control.js'
import { reachOptions } from './reach-config.js'
import { startPortMapping, stopPortMapping } from './port-mapping.js'

export const STORE_DIR = 'donated'
/** How often hydrated files are checked for eviction (at most; a quarter of --evict-after when shorter). */
export const EVICT_CHECK_MS = 60_000
/** How often the block cache is trimmed to --cache. */
export const CACHE_TRIM_MS = 30_000
/** Health (files by reachable redundancy) is recomputed at most this often, or when a peer comes or goes. */
export const HEALTH_CACHE_MS = 5_000
/** ...but while files are being placed, at most this often. */
export const HEALTH_MIN_MS = 1_000
/** Most rows one `files` control call returns. */
export const MAX_FILES_PAGE = 500

export interface AgentEvents {
  ready: []
  file: [e: FileEvent]
  peer: [p: { id: string, short: string, host?: string, port?: number, state: 'connected' | 'disconnected' }]
  waiting: [reason: string | null]
  warning: [w: { code: string, message: string }]
  /** A peer's monitored state changed (online / suspect / offline / lost). */
  health: [e: { id: string, short: string, state: PeerState, prev: PeerState, why: string | null }]
  audit: [r: AuditResult]
  repair: [e: RepairEvent]
  /** A new folder index root was published. */
  index: [s: IndexStatus]
  close: []
}

export class Agent extends EventEmitter<AgentEvents> {
  readonly config: AgentConfig
  engine!: StubEngine
  db!: IndexDb
  net!: NetNode
  discovery: Discovery | null = null
  placement!: Placement
  fetcher!: Fetcher
  peers!: PeerKeeper
  rdb!: RepairDb
  monitor!: PeerMonitor
  auditor!: Auditor
  repair!: Repairer
  queue!: IngestQueue
  index!: IndexPublisher
  watcher: FolderWatcher | null = null
  sync!: SyncService
  /** The signed index pointers of owners whose shards this node keeps, re-put in the DHT (docs/discovery.md §4.1). */
  keeper!: PointerKeeper
  /** This device: its own key when it has one (device.key, docs/sync.md §2), else the identity's. */
  device!: SyncDevice
  control!: ControlServer
  readonly startedAt = Date.now()
  readonly activity = new Activity()
  private healthCache: HealthStatus | null = null
  private healthDirty = false
  private timers = new Set<NodeJS.Timeout>()
  private readyPromise: Promise<void> | null = null
  private reconciling: Promise<void> | null = null
  private closePromise: Promise<void> | null = null
  private stopRequested: (() => void) | null = null
  readonly stopped: Promise<void>

  constructor (config: AgentConfig) {
    super()
    this.config = config
    this.stopped = new Promise(resolve => { this.stopRequested = resolve })
  }

  private t (name: string, fallback: number): number {
    return this.config.tunables[name] ?? fallback
  }

  private warn (err: unknown): void {
    const e = err as { code?: string, message?: string }
    const line = errorLine(err)
    const i = line.indexOf(': ')
    this.emit('warning', { code: typeof e.code === 'string' ? e.code : line.slice(0, i), message: line })
  }

  async ready (): Promise<void> {
    this.readyPromise ??= this.start()
    return await this.readyPromise
  }

  private async start (): Promise<void> {
    const c = this.config
    await fsp.mkdir(c.home, { recursive: true, mode: 0o700 })
    // The control socket first: a second agent on the same home stops here, before binding ports.
    this.control = new ControlServer({ stateDir: c.home })
    await this.control.listen()
    try {
      const crypto = await loadCrypto()
      try {
        await createSecret(crypto, c.home)
      } catch (err) {
        if (!(err instanceof StubError && err.code === StubCodes.KEY_EXISTS)) throw err
      }
      this.engine = await StubEngine.open({ home: c.home, crypto })
      this.db = new IndexDb(c.home)
      // A second device of an owner (a key imported into this home) has its own key, certified by the identity.
      const dk = await fsp.access(join(c.home, DEVICE_KEY_FILE)).then(async () => await loadOrCreateDevice(c.home, this.engine.keys.identity), () => null)
      const netIdentity = dk ?? this.engine.keys.identity
      this.device = dk !== null ? { id: dk.id, key: dk.publicKey, name: dk.name } : { id: deviceIdOf(netIdentity.publicKey), key: Buffer.from(netIdentity.publicKey), name: cleanDeviceName(hostname()) }
      for (const f of c.folders) this.db.addFolder(f)
      const grace = this.t('graceBytes', GRACE_BYTES)
      let placement: Placement | null = null
      this.keeper = new PointerKeeper({
        home: c.home,
        holds: hex => (this.net?.store?.usedBy(hex) ?? 0) > 0,
        reput: async (item) => {
          if (this.discovery === null) throw new AgentError(AgentCodes.CLOSED, 'discovery is not started')
          return await this.discovery.reputItem(item)
        },
        ...pick(c.tunables, ['reputMs', 'retryMs', 'startDelayMs'], { reputMs: 'keptReputMs', retryMs: 'keptRetryMs', startDelayMs: 'keptStartDelayMs' })
      })
      this.keeper.on('warning', e => this.warn(e))
      const reach = await reachOptions(c)
      if (reach.note !== null) this.warn(new AgentError(AgentCodes.CONFIG_INVALID, reach.note))
      this.net = new NetNode({
        identity: netIdentity,
        ...(dk !== null ? { certificate: dk.cert } : {}),
        onDevice: async (peer, body) => await this.sync.sync.serve(peer, body),
        onKeepPointer: async (peer, item) => await this.keeper.onKeepPointer(peer, item),
        host: c.host,
        port: c.port,
        stateDir: c.home,
        store: c.donate > 0 ? { dir: join(c.home, STORE_DIR), donatedBytes: c.donate, quota: (owner: string) => (placement?.takenByOwner(owner) ?? 0) + grace } : null,
        ...(c.tunables.requestTimeoutMs !== undefined ? { requestTimeoutMs: c.tunables.requestTimeoutMs } : {}),
        ...(c.tunables.keepaliveMs !== undefined ? { keepaliveMs: c.tunables.keepaliveMs } : {}),
        reach: reach.options
      })
      this.net.on('warning', w => this.warn(w.error))
      await this.net.ready()
      startPortMapping(this)
      this.rdb = new RepairDb(this.db)
      this.monitor = new PeerMonitor({ net: this.net, db: this.rdb, ...pick(c.tunables, ['tickMs', 'suspectAfterMs', 'offlineAfterMs', 'lostAfterMs', 'startGraceMs'], { tickMs: 'monitorTickMs' }), ...(c.lostAfterMs !== undefined ? { lostAfterMs: c.lostAfterMs } : {}) })
      this.monitor.on('state', e => {
        this.healthCache = null
        if (e.state === 'suspect' || e.state === 'offline') this.peers?.keep(Buffer.from(e.peer, 'hex'))
        this.emit('health', { id: e.peer, short: e.short, state: e.state, prev: e.prev, why: e.why })
      })
      const auditKey = this.engine.keys.audit
      const auditPeriodMs = this.t('auditPeriodMs', AUDIT_PERIOD_MS)
      this.placement = placement = new Placement({
        net: this.net,
        db: this.db,
        accept: hex => this.monitor.usable(hex),
        forgetRemote: id => this.sync?.sdb.forgetRemote(id),
        intact: id => this.rdb.intact(id),
        proofsFor: (shardId, shard) => makeProofs(auditKey, shardId, shard, 0),
        auditPeriodMs,
        k: c.k,
        m: c.m,
        donatedBytes: c.donate,
        graceBytes: grace,
        waitRecheckMs: c.tunables.waitRecheckMs,
        peerBackoffMs: c.tunables.peerBackoffMs,
        putTimeoutMs: c.tunables.putTimeoutMs, readBackTimeoutMs: c.tunables.readBackTimeoutMs,
        replaceWaitMs: c.tunables.replaceWaitMs
      })
      this.placement.on('waiting', r => this.emit('waiting', r))
      this.placement.on('warning', e => this.warn(e))
      this.discovery = new Discovery({
        identity: netIdentity,
        pointerIdentity: this.engine.keys.identity,
        host: c.host,
        port: c.dhtPort,
        ...(c.bootstrap !== undefined ? { bootstrap: c.bootstrap === false ? false : [...c.bootstrap] } : {}),
        stateDir: c.home,
        announcePort: this.net.port,
        pointerKey: this.engine.keys.pointer,
        dial: async (to, o) => {
          // Our own announce comes back from lookups of our owner topic: never dial ourselves.
          if (to.port === this.net.port && isOwnAddress(to.host, c.host)) throw new AgentError(AgentCodes.BAD_PARAMS, `${to.host}:${to.port} is this agent`)
          return (await this.net.connect({ host: to.host, port: to.port }, { signal: o.signal })).key
        },
        ...pick(c.tunables, ['announceIntervalMs', 'lookupIntervalMs', 'lookupMinGapMs', 'announceMinGapMs', 'dialTimeoutMs'])
      })
      this.discovery.on('warning', w => this.warn(w.error))
      this.peers = new PeerKeeper({ net: this.net, db: this.db, discovery: this.discovery, reconnectMinMs: c.tunables.reconnectMinMs, connectTimeoutMs: c.tunables.connectTimeoutMs })
      this.discovery.on('peer', p => this.peers.noteAddress(p.publicKey, p.host, p.port))
      this.net.on('peer', p => {
        this.healthCache = null
        p.ping().catch(() => {}) // a first RTT now, not at the first keepalive
        this.emit('peer', { id: p.id, short: p.key.toString('hex').slice(0, 8), host: p.remote.host, port: p.remote.port, state: 'connected' })
      })
      this.net.on('peer-close', p => {
        this.healthCache = null
        this.activity.onPeerClosed(p.bytesIn, p.bytesOut)
        this.emit('peer', { id: p.id, short: p.key.toString('hex').slice(0, 8), state: 'disconnected' })
      })
      this.fetcher = new Fetcher({
        net: this.net,
        db: this.db,
        crypto,
        cache: c.cache > 0 ? this.engine.store : null,
        connect: async (key, signal) => await this.peers.connect(key, signal),
        accept: r => r.bad == null && !this.monitor.isLost(r.peer.toString('hex')),
        onPeerResult: (hex, ok) => this.monitor.record(hex, ok ? 1 : 0, ok ? 0 : 1),
        onBadCopy: (r, why) => { this.rdb.markBad(r, why); this.repair?.soon() },
        ...pick(c.tunables, ['hedgeMs', 'getTimeoutMs'])
      })
      this.auditor = new Auditor({ net: this.net, db: this.rdb, monitor: this.monitor, auditKey, periodMs: auditPeriodMs, ...pick(c.tunables, ['roundMs', 'sample', 'timeoutMs'], { roundMs: 'auditRoundMs', sample: 'auditSample', timeoutMs: 'auditTimeoutMs' }) })
      this.auditor.on('result', r => {
        this.emit('audit', r)
        if (r.failed > 0) { this.healthCache = null; this.repair.soon() }
      })
      this.repair = new Repairer({
        db: this.db,
        rdb: this.rdb,
        net: this.net,
        placement: this.placement,
        fetcher: this.fetcher,
        monitor: this.monitor,
        auditKey,
        ...pick(c.tunables, ['checkMs', 'margin', 'concurrency', 'rateBytes', 'retryMs'], { checkMs: 'repairCheckMs', margin: 'repairMargin', concurrency: 'repairConcurrency', rateBytes: 'repairRateBytes', retryMs: 'repairRetryMs' })
      })
      this.repair.on('warning', e => this.warn(e))
      this.repair.on('event', e => {
        if (e.state === 'repaired' || e.state === 'unrecoverable') this.healthCache = null
        this.emit('repair', e)
        if (e.state === 'unrecoverable') this.replaceLocal()
      })
      this.queue = new IngestQueue({
        engine: this.engine,
        db: this.db,
        placement: this.placement,
        concurrency: c.tunables.ingestConcurrency,
        retryMinMs: c.tunables.retryMinMs,
        onEvent: e => this.emit('file', e),
        onWarning: e => this.warn(e),
        onVersion: id => this.sync.sync.localVersion(id),
        device: this.device.id
      })
      this.sync = new SyncService(this, this.device)
      this.sync.sync.on('warning', e => this.warn(e))
      this.sync.guard.on('warning', e => this.warn(e))
      this.sync.collector.on('warning', e => this.warn(e))
      this.sync.guard.on('held', h => this.warn(new AgentError(AgentCodes.BAD_PARAMS, `${h.files} of ${h.of} files of ${JSON.stringify(h.folder)} were deleted at once: held, not deleted on the other devices; "dustbox sync confirm" lets them go, "dustbox sync revert" brings their stubs back`)))
      this.on('file', e => {
        this.activity.onFile(e)
        if (e.state === 'stubbed' || e.state === 'hydrated' || e.state === 'removed') this.healthDirty = true
      })
      this.index = new IndexPublisher({
        device: this.device.id,
        deviceCert: this.net.certificate,
        home: c.home,
        db: this.db,
        placement: this.placement,
        net: this.net,
        discovery: this.discovery,
        crypto,
        keys: this.engine.keys,
        gear: this.engine.gear,
        ...pick(c.tunables, ['debounceMs', 'refreshMs', 'rootCopies'], { debounceMs: 'indexDebounceMs', refreshMs: 'indexRefreshMs', rootCopies: 'rootCopies' })
      })
      this.index.on('warning', e => this.warn(e))
      this.index.on('published', s => this.emit('index', s))
      await this.index.ready()
      this.on('file', e => { if (e.state === 'stubbed' || e.state === 'hydrated' || e.state === 'removed') this.index.soon() })
      this.repair.on('event', e => { if (e.state === 'repaired') this.index.soon() })
      this.sync.sync.on('event', () => this.index.soon()) // a change from another device is in this device's index too
      wireControl(this)
      await this.discovery.ready()
      await this.keeper.ready()
      await saveConfig(c.home, { folders: [...c.folders], host: c.host, port: this.net.port, dhtPort: this.discovery.address().port, bootstrap: c.bootstrap === undefined ? null : c.bootstrap === false ? 'none' : c.bootstrap.join(',') })
      if (c.folders.length > 0) await this.startWatching()
      // Dial every peer holding my shards now, not when discovery happens to find it again.
      for (const h of this.rdb.holders()) this.peers.keep(h.peer)
      this.sync.start()
      this.monitor.start()
      this.auditor.start()
      this.repair.start()
      // The folder index goes out once peers are met (and whenever it changed while the agent was off).
      if (c.folders.length > 0) this.index.soon()
      this.every(Math.min(this.t('evictCheckMs', EVICT_CHECK_MS), Math.max(1000, c.evictAfterMs / 4)), () => this.evictDue())
      this.every(this.t('cacheTrimMs', CACHE_TRIM_MS), async () => await this.trimCache())
      this.emit('ready')
    } catch (err) {
      await this.close()
      throw err
    }
  }

  private every (ms: number, fn: () => unknown): void {
    const timer = setInterval(() => {
      Promise.resolve().then(fn).catch(err => this.warn(err))
    }, ms)
    timer.unref()
    this.timers.add(timer)
  }

  private async startWatching (): Promise<void> {
    const c = this.config
    const w = new FolderWatcher({ folders: [...c.folders], stateDir: c.home, settleMs: c.settleMs, backend: c.watcher })
    this.watcher = w
    w.on('warning', e => this.warn(e.error))
    w.on('file', e => this.queue.add(e.folder, e.path))
    w.on('removed', e => { this.sync.removed(e.folder, e.path).catch(err => this.warn(err)) })
    w.on('stub', e => { this.sync.stubAppeared(e.folder, e.path).catch(err => this.warn(err)) })
    await w.ready()
    // The walk runs after ready(): a big folder does not hold the agent's start (and its control API) back.
    this.reconciling = this.reconcile(w).catch(err => { if (this.closePromise === null) this.warn(err) })
  }

  /**
   * Reconcile with the index: work left unfinished by the last run, files the watcher's snapshot may
   * have marked seen before they were processed, stubs that appeared and files deleted while the
   * agent was off (docs/sync.md §6).
   */
  private async reconcile (w: FolderWatcher): Promise<void> {
    const c = this.config
    const unfinished: Array<{ folder: string, rel: string }> = []
    for (const state of ['uploading', 'pending', 'failed', 'waiting'] as const) {
      for (const row of this.db.filesByState(state)) {
        const path = join(row.folder, row.rel)
        if (!c.folders.includes(row.folder)) continue
        // A file gone since is left to the walk: its stub may be there (a crash after the stub replaced it).
        if (await exists(path)) this.queue.add(row.folder, path)
        else unfinished.push({ folder: row.folder, rel: row.rel })
      }
    }
    for (const folder of c.folders) {
      const seen = new Set<string>()
      for await (const f of w.walk(folder, { stubs: true })) {
        if (this.closePromise !== null) return
        const rel = relative(folder, f.path)
        if (f.stub) {
          const target = join(dirname(rel), targetNameFor(basename(rel), basename(rel).slice(0, -2)))
          seen.add(target)
          const known = this.db.file(folder, target)
          if (known === null || (known.state !== 'stubbed' && known.state !== 'hydrated')) await this.sync.stubAppeared(folder, f.path)
          continue
        }
        seen.add(rel)
        const row = this.db.file(folder, rel)
        if (row === null || (row.state !== 'hydrated' && (row.size !== f.size || row.mtimeMs !== f.mtimeMs || row.state !== 'stubbed'))) this.queue.add(folder, f.path)
      }
      if (this.closePromise !== null) return
      await this.sync.missing(folder, seen)
    }
    // Unfinished work whose file and stub are both gone: deleted while the agent was off.
    for (const u of unfinished) {
      const row = this.db.file(u.folder, u.rel)
      if (row !== null && row.state !== 'stubbed' && row.state !== 'hydrated') await this.sync.removed(u.folder, join(u.folder, u.rel))
    }
  }

  /**
   * Hydrated files whose blocks have fewer than k good copies left: their local bytes are the only
   * copy, so they are placed again (kept local, never stubbed before that placement completes).
   */
  private replaceLocal (): void {
    for (const f of this.repair.unrecoverable(10_000)) {
      if (f.state === 'hydrated' && this.config.folders.includes(f.folder)) this.queue.add(f.folder, join(f.folder, f.rel), 'replace')
    }
  }

  /** Hydrated files unchanged for --evict-after (and not pinned) are stubbed again. */
  private evictDue (): void {
    const now = Date.now()
    for (const row of this.db.filesByState('hydrated', 10_000)) {
      if (row.pinned) continue
      const since = Math.max(row.hydratedAt ?? 0, row.mtimeMs)
      if (now - since >= this.config.evictAfterMs && this.config.folders.includes(row.folder)) this.queue.add(row.folder, join(row.folder, row.rel), 'evict')
    }
  }

  /** Drop the least recently used cached blocks until the cache fits --cache. */
  private async trimCache (): Promise<void> {
    let over = this.db.cacheBytes() - this.config.cache
    while (over > 0) {
      const batch = this.db.cacheOldest(256)
      if (batch.length === 0) return
      for (const b of batch) {
        await this.engine.store.delete(b.blockId).catch(() => {})
        this.db.cacheDrop(b.blockId)
        over -= b.size
        if (over <= 0) return
      }
    }
  }

  /** The watched folder a path is in, or null. */
  folderOf (path: string): string | null {
    return this.config.folders.find(f => isInside(path, f)) ?? null
  }

  /**
   * Restore a stubbed file: fetch k shards per block from the fastest peers, decode, verify,
   * decrypt, write (temp, fsync, rename), remove the stub. Progress goes out as `file` events.
   */
  /**
   * Restore a file from its stub. `path` is the stub, or the original's name (what the dashboard
   * lists): then its stub next to it is opened, and a file already there is left as it is.
   */
  async open (path: string, signal?: AbortSignal, opts: { cache?: boolean } = {}): Promise<{ path: string, size: number, blocks: number }> {
    let abs = resolve(path)
    if (!isStubName(basename(abs))) {
      const local = await fsp.lstat(abs).catch(() => null)
      if (local?.isFile() === true) return { path: abs, size: local.size, blocks: 0 }
      const stub = join(dirname(abs), stubNameFor(basename(abs)))
      if (await fsp.lstat(stub).then(st => st.isFile(), () => false)) abs = stub
      else throw new AgentError(AgentCodes.BAD_PARAMS, `${JSON.stringify(abs)} is not a .f stub, and neither it nor its stub exists`)
    }
    const folder = this.folderOf(abs) ?? dirname(abs)
    const r = await this.engine.hydrate(abs, {
      signal,
      source: this.fetcher.source({ signal, cacheable: opts.cache !== false }),
      onProgress: p => this.emit('file', { folder, path: p.file, rel: relative(folder, p.file), state: p.state === 'hydrated' ? 'hydrated' : 'hydrating', size: p.total, bytes: p.bytes })
    })
    if (this.folderOf(abs) !== null) {
      const st = await fsp.stat(r.path)
      const rel = relative(folder, r.path)
      const id = this.db.touchFile(folder, rel, 'hydrated', st.size, st.mtimeMs)
      this.db.setHydrated(id, st.size, st.mtimeMs)
    }
    return { path: r.path, size: r.size, blocks: r.blocks }
  }

  /**
   * Restore from the key alone: the newest folder index of this identity, found through the DHT and
   * its peers, recreated under `to` as stubs (hydrated with `hydrate`). docs/index-format.md §5.
   */
  async restore (p: Record<string, unknown>, signal?: AbortSignal): Promise<RestoreResult> {
    if (typeof p.to !== 'string' || p.to.length === 0 || p.to.length > 4096) throw new AgentError(AgentCodes.BAD_PARAMS, '"to" must be a directory path')
    if (p.hydrate !== undefined && typeof p.hydrate !== 'boolean') throw new AgentError(AgentCodes.BAD_PARAMS, '"hydrate" must be true or false')
    if (this.discovery === null) throw new AgentError(AgentCodes.CLOSED, 'the agent is not started')
    const r = new Restorer({ selfKey: this.device.key, db: this.db, fetcher: this.fetcher, peers: this.peers, discovery: this.discovery, crypto: this.engine.crypto, keys: this.engine.keys, open: async (s, sig) => await this.open(s, sig, { cache: false }) }) // a restore's blocks are not cached: every block once, written once
    const out = await r.run(p.to, { hydrate: p.hydrate === true, signal })
    this.healthCache = null
    return out
  }

  /** The index row of a watched path given as the file or its stub. */
  private rowFor (path: string): { folder: string, rel: string, id: number, state: string, original: string } {
    const abs = resolve(path)
    const folder = this.folderOf(abs)
    if (folder === null) throw new AgentError(AgentCodes.NOT_WATCHED, `${JSON.stringify(abs)} is not in a watched folder`)
    const name = basename(abs)
    const original = isStubName(name) ? join(dirname(abs), targetNameFor(name, name.slice(0, -2))) : abs
    const rel = relative(folder, original)
    const row = this.db.file(folder, rel)
    if (row === null) throw new AgentError(AgentCodes.NOT_WATCHED, `${JSON.stringify(abs)} is not known to the agent yet`)
    return { folder, rel, id: row.id, state: row.state, original }
  }

  async pin (path: string): Promise<{ path: string, pinned: true, hydrated: boolean }> {
    const r = this.rowFor(path)
    this.db.setPinned(r.id, true)
    let hydrated = false
    if (r.state === 'stubbed') {
      const stub = join(dirname(r.original), (await import('../stubs/names.js')).stubNameFor(basename(r.original)))
      await this.open(stub)
      hydrated = true
    }
    return { path: r.original, pinned: true, hydrated }
  }

  unpin (path: string): { path: string, pinned: false } {
    const r = this.rowFor(path)
    this.db.setPinned(r.id, false)
    return { path: r.original, pinned: false }
  }

  async evict (path: string): Promise<{ path: string, queued: boolean }> {
    const r = this.rowFor(path)
    const row = this.db.fileById(r.id)!
    if (row.pinned) throw new AgentError(AgentCodes.BAD_PARAMS, `${JSON.stringify(r.original)} is pinned; unpin it first`)
    if (row.state === 'stubbed') return { path: r.original, queued: false }
    this.queue.add(r.folder, r.original, 'evict')
    return { path: r.original, queued: true }
  }

  status (): AgentStatus {
    return buildStatus(this)
  }

  /** Placed files by the redundancy reachable now (cached for HEALTH_CACHE_MS; a peer event drops it). */
  health (): HealthStatus {
    const now = Date.now()
    const c = this.healthCache
    // Fresh enough: younger than HEALTH_CACHE_MS, or than HEALTH_MIN_MS while files were placed since.
    if (c !== null && now - c.checkedAt < (this.healthDirty ? HEALTH_MIN_MS : this.t('healthCacheMs', HEALTH_CACHE_MS))) return c
    this.healthDirty = false
    const live = this.net.peers().filter(p => p.isOpen).map(p => p.key)
    const r = this.repair.status()
    this.healthCache = { ...this.db.health(live), repairing: r.queued + r.active, unrecoverable: r.unrecoverable, checkedAt: now }
    return this.healthCache
  }

  /**
   * What `dustbox repair` runs: an audit round of every connected peer (unless `audit: false`;
   * `full: true` challenges every copy, not only those due),
   * a repair check, and (unless `wait: false`) waiting until the repair queue is empty. Returns the
   * audit outcome, the repair counters and every file that cannot be recovered.
   */
  async repairNow (p: Record<string, unknown>, signal?: AbortSignal): Promise<{ audited: { peers: number, passed: number, failed: number, unanswered: number }, repair: ReturnType<Repairer['status']>, unrecoverable: ReturnType<Repairer['unrecoverable']>, unrecoverableTotal: number }> {
    for (const name of ['audit', 'wait', 'full'] as const) {
      if (p[name] !== undefined && typeof p[name] !== 'boolean') throw new AgentError(AgentCodes.BAD_PARAMS, `"${name}" must be true or false`)
    }
    const audited = { peers: 0, passed: 0, failed: 0, unanswered: 0 }
    if (p.audit !== false) {
      for (const r of await this.auditor.round({ full: p.full === true })) {
        audited.peers++
        audited.passed += r.passed
        audited.failed += r.failed
        audited.unanswered += r.unanswered
      }
    }
    this.monitor.tick()
    this.repair.check()
    if (p.wait !== false) await this.repair.idle(signal)
    this.healthCache = null
    const total = this.repair.check().unrecoverable
    return { audited, repair: this.repair.status(), unrecoverable: this.repair.unrecoverable(10_000), unrecoverableTotal: total }
  }

  /** Ask the process running this agent to stop (what the `stop` control call does). */
  requestStop (): void {
    this.stopRequested?.()
  }

  async close (): Promise<void> {
    this.closePromise ??= (async () => {
      for (const t of this.timers) clearInterval(t)
      this.timers.clear()
      const steps: Array<() => Promise<unknown> | unknown> = [
        async () => await this.watcher?.close(),
        async () => await this.reconciling,
        async () => await this.queue?.close(),
        () => this.sync?.close(),
        async () => await this.index?.close(),
        () => this.auditor?.close(),
        () => this.repair?.close(),
        () => this.monitor?.close(),
        () => this.placement?.close(),
        () => this.peers?.close(),
        async () => await this.keeper?.close(),
        async () => await this.discovery?.close(),
        async () => await stopPortMapping(this),
        async () => await this.net?.close(),
        async () => await this.engine?.close(),
        () => this.db?.close(),
        async () => await this.control?.close()
      ]
      for (const step of steps) {
        try { await step() } catch (err) { this.warn(err) }
      }
      this.stopRequested?.()
      this.emit('close')
    })()
    return await this.closePromise
  }
}

export { shortId }
