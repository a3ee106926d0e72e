// Peer: one authenticated connection to another node, speaking the block protocol (docs/protocol.md
// §5) over a SecureChannel. Client side: typed requests with ids, many in flight (bounded), each with
// a timeout and an optional AbortSignal. Server side: requests go to the node's RequestHandler, at
// most MAX_HANDLERS at once per connection (beyond that the channel stops reading: backpressure).
// Keepalive pings measure the round-trip time. Bad input from the peer closes this connection with
// a GOODBYE naming the problem and a warning; it never throws out of here.

import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { NetError, NetCodes, WireErrorCodes, wireCodeName, isWireCode, type NetCode } from './errors.js'
import type { SecureChannel } from './channel.js'
import { decodeFrame, encodeError, encodeGoodbye, encodeHello, encodeReply, encodeRequest, type AuditAnswer, type AuditChallenge, type Hello, type ListEntry, type Reply, type Request, type Space } from './messages.js'
import { shortId } from './peer-id.js'
import type { Endpoint, LinkName, PathName } from './transport.js'

export const REQUEST_TIMEOUT_MS = 30_000
export const KEEPALIVE_MS = 15_000
export const MAX_INFLIGHT = 32
export const MAX_HANDLERS = 8
/** Close reasons that mean the peer sent bad input or stalled mid-frame: each is a warning. */
export const MISBEHAVIOUR: ReadonlySet<string> = new Set([NetCodes.BAD_MESSAGE, NetCodes.FRAME_TOO_LARGE, NetCodes.FRAME_INVALID, NetCodes.STALLED])
/** Of those, the ones no honest implementation produces: the node bans the identity for a while. */
export const BANNABLE: ReadonlySet<string> = new Set([NetCodes.BAD_MESSAGE, NetCodes.FRAME_TOO_LARGE, NetCodes.FRAME_INVALID])

export interface RequestHandler {
  /** Answer a request from `peer`; throw a NetError with a wire code to answer ERROR. */
  handle (peer: Peer, req: Request): Promise<Reply>
}

export interface PeerOptions {
  readonly key: Buffer
  readonly id: string
  /** The peer's owner (its device certificate's identity); default: its key. */
  readonly owner?: Buffer
  /** The peer's verified device certificate, or null. */
  readonly cert?: Buffer | null
  /** This node's key and owner, to tell another device of the same owner (isOwnDevice). */
  readonly localKey?: Buffer
  readonly localOwner?: Buffer
  readonly version: number
  readonly caps: number
  readonly initiator: boolean
  readonly path?: PathName
  readonly handler: RequestHandler
  readonly localHello: Hello
  readonly requestTimeoutMs?: number
  readonly keepaliveMs?: number
  readonly maxInflight?: number
  readonly maxHandlers?: number
  /**
   * Accounting of what this peer holds for me (the node's ledger): `added` = bytes of a new shard it
   * acknowledged, or the drop it reported after a DELETE (≤ 0); `reported` = its own latest figure.
   */
  readonly onHeldByPeer?: (added: number, reported: bigint) => void
  /** The peer's last reported figure from an earlier connection (the ledger's), if any. */
  readonly reportedByPeer?: bigint
}

export interface PeerEvents {
  hello: [hello: Hello]
  /** Bad input from this peer (the connection is being closed). */
  warning: [err: NetError]
  close: [err: NetError | null]
}

export interface RequestOptions {
  readonly timeoutMs?: number
  readonly signal?: AbortSignal
}

interface Pending {
  readonly kind: Request['kind']
  readonly resolve: (r: Reply) => void
  readonly reject: (e: NetError) => void
  readonly timer: NodeJS.Timeout
}

export class Peer extends EventEmitter<PeerEvents> {
  /** The peer's own (device) key, proven in the handshake. */
  readonly key: Buffer
  readonly id: string
  /** Its owner: the identity that certified its key, or its key when it sent no certificate. */
  readonly owner: Buffer
  /** Its verified device certificate (net/device-cert.ts), or null. */
  readonly cert: Buffer | null
  /** True when it is another device of this node's owner (same owner, another key). */
  readonly isOwnDevice: boolean
  readonly shortId: string
  readonly version: number
  readonly caps: number
  readonly initiator: boolean
  readonly transport: LinkName
  /** How this connection reached the peer: direct, through a punched hole, or relayed. */
  readonly path: PathName
  readonly remote: Endpoint
  readonly connectedAt = Date.now()
  hello: Hello | null = null
  /** Last measured round-trip time in ms (keepalive pings), or null. */
  rtt: number | null = null
  /** When the last frame from this peer arrived (Date.now()): what liveness monitoring reads. */
  lastHeardAt = Date.now()
  private readonly channel: SecureChannel
  private readonly handler: RequestHandler
  private readonly requestTimeoutMs: number
  private readonly maxInflight: number
  private readonly maxHandlers: number
  private readonly onHeldByPeer: (added: number, reported: bigint) => void
  private reportedUsage: bigint | null = null
  private readonly pending = new Map<number, Pending>()
  private readonly slotWaiters: Array<() => void> = []
  private nextId = 1
  private inflight = 0
  private handlers = 0
  private closeErr: NetError | null | undefined = undefined
  private warned = false
  private readonly keepalive: NodeJS.Timeout
  private readonly closed = new AbortController()

  constructor (channel: SecureChannel, opts: PeerOptions) {
    super()
    this.channel = channel
    this.key = opts.key
    this.id = opts.id
    this.owner = opts.owner ?? opts.key
    this.cert = opts.cert ?? null
    this.isOwnDevice = opts.localOwner !== undefined && opts.localKey !== undefined &&
      this.owner.equals(opts.localOwner) && !this.key.equals(opts.localKey)
    this.shortId = shortId(opts.id)
    this.version = opts.version
    this.caps = opts.caps
    this.initiator = opts.initiator
    this.transport = channel.raw.transport
    this.path = opts.path ?? (this.transport === 'relay' ? 'relayed' : 'direct')
    this.remote = channel.raw.remote
    this.handler = opts.handler
    this.requestTimeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
    this.maxInflight = opts.maxInflight ?? MAX_INFLIGHT
    this.maxHandlers = opts.maxHandlers ?? MAX_HANDLERS
    this.onHeldByPeer = opts.onHeldByPeer ?? (() => {})
    this.reportedUsage = opts.reportedByPeer ?? null
    channel.on('frame', (f, release) => this.onFrame(f, release))
    channel.once('close', err => this.onClose(err))
    const every = opts.keepaliveMs ?? KEEPALIVE_MS
    // A peer silent for two keepalive periods is gone (uTP has no reset: without this its
    // connection would only end at the transport's own timeout, ~30 s later).
    this.keepalive = setInterval(() => {
      this.ping({ timeoutMs: every * 2 }).catch(() => {
        if (Date.now() - this.lastHeardAt >= every * 2) this.close(NetCodes.TIMEOUT, 'keepalive: no answer')
      })
    }, every)
    this.keepalive.unref()
    try { channel.send(encodeHello(opts.localHello)) } catch {}
  }

  get isOpen (): boolean {
    return this.closeErr === undefined
  }

  /** Aborted when the connection closes (handlers of this peer's requests can stop then). */
  get signal (): AbortSignal {
    return this.closed.signal
  }

  get bytesIn (): number { return this.channel.bytesIn }
  get bytesOut (): number { return this.channel.bytesOut }
  get inflightRequests (): number { return this.inflight }

  /** Close with a GOODBYE (code and reason go to the peer). Idempotent. */
  close (code: NetCode = NetCodes.CLOSED, reason = 'closing'): void {
    if (!this.isOpen) return
    const wire = isWireCode(code) ? WireErrorCodes[code] : WireErrorCodes.CLOSED
    this.channel.close(code === NetCodes.CLOSED ? null : new NetError(code, `${this.shortId}: ${reason}`), encodeGoodbye(wire, reason))
  }

  // ---------------------------------------------------------------------------------- client side

  async request<K extends Request['kind']> (req: Extract<Request, { kind: K }>, opts: RequestOptions = {}): Promise<Extract<Reply, { kind: K }>> {
    await this.slot(opts.signal)
    try {
      // Backpressure: do not pile frames onto a connection whose write buffer is full.
      if (!this.channel.writable) await this.channel.drained()
      const id = this.nextId
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1
      const frame = encodeRequest(id, req)
      return await new Promise<Extract<Reply, { kind: K }>>((resolve, reject) => {
        const ms = opts.timeoutMs ?? this.requestTimeoutMs
        const onAbort = (): void => { this.settle(id); reject(new NetError(NetCodes.ABORTED, `${this.shortId}: ${req.kind} aborted`)) }
        const timer = setTimeout(() => { this.settle(id); opts.signal?.removeEventListener('abort', onAbort); reject(new NetError(NetCodes.TIMEOUT, `${this.shortId}: no answer to ${req.kind} within ${ms} ms`)) }, ms)
        this.pending.set(id, {
          kind: req.kind,
          resolve: r => { opts.signal?.removeEventListener('abort', onAbort); resolve(r as Extract<Reply, { kind: K }>) },
          reject: e => { opts.signal?.removeEventListener('abort', onAbort); reject(e) },
          timer
        })
        if (opts.signal?.aborted === true) { onAbort(); return }
        opts.signal?.addEventListener('abort', onAbort, { once: true })
        try {
          this.channel.send(frame)
        } catch (err) {
          this.settle(id)
          reject(err instanceof NetError ? err : new NetError(NetCodes.CLOSED, `${this.shortId}: ${String(err)}`))
        }
      })
    } finally {
      this.release()
    }
  }

  private settle (id: number): Pending | undefined {
    const p = this.pending.get(id)
    if (p !== undefined) {
      clearTimeout(p.timer)
      this.pending.delete(id)
    }
    return p
  }

  private async slot (signal?: AbortSignal): Promise<void> {
    if (!this.isOpen) throw this.closedError()
    if (this.inflight < this.inflightLimit) { this.inflight++; return }
    await new Promise<void>((resolve, reject) => {
      const go = (): void => { signal?.removeEventListener('abort', onAbort); resolve() }
      const onAbort = (): void => {
        const i = this.slotWaiters.indexOf(go)
        if (i >= 0) this.slotWaiters.splice(i, 1)
        reject(new NetError(NetCodes.ABORTED, `${this.shortId}: request aborted`))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.slotWaiters.push(go)
    })
    if (!this.isOpen) { this.release(); throw this.closedError() }
  }

  private release (): void {
    // Hand the slot on only while under the limit (it may have shrunk when the peer's HELLO came).
    if (this.inflight <= this.inflightLimit) {
      const next = this.slotWaiters.shift()
      if (next !== undefined) { next(); return }
    }
    this.inflight--
  }

  /**
   * Requests in flight at once: ours (MAX_INFLIGHT), but never more than the peer handles at once
   * (its HELLO's max_requests). uTP cannot push back on a sender, so a sender that kept more requests
   * outstanding than the receiver handles would only fill the receiver's read buffer.
   */
  private get inflightLimit (): number {
    const theirs = this.hello?.maxRequests ?? 0
    return theirs > 0 ? Math.min(this.maxInflight, theirs) : this.maxInflight
  }

  private closedError (): NetError {
    return this.closeErr ?? new NetError(NetCodes.CLOSED, `${this.shortId}: connection closed`)
  }

  async ping (opts?: RequestOptions): Promise<number> {
    const t0 = performance.now()
    await this.request({ kind: 'PING', nonce: randomBytes(8).readBigUInt64BE(0) }, opts)
    this.rtt = performance.now() - t0
    return this.rtt
  }

  /** Store a shard on this peer. Resolves with whether it was new, and the peer's accounting. */
  async put (shard: Buffer, data: Buffer, opts?: RequestOptions): Promise<{ stored: boolean, usedByYou: bigint, quotaForYou: bigint }> {
    const r = await this.request({ kind: 'PUT_SHARD', shard, data }, opts)
    this.account(r.status === 0 ? data.byteLength : 0, r.usedByYou)
    return { stored: r.status === 0, usedByYou: r.usedByYou, quotaForYou: r.quotaForYou }
  }

  async get (shard: Buffer, opts?: RequestOptions): Promise<Buffer> {
    return (await this.request({ kind: 'GET_SHARD', shard }, opts)).data
  }

  async has (shards: Buffer[], opts?: RequestOptions): Promise<boolean[]> {
    return (await this.request({ kind: 'HAS', shards }, opts)).held
  }

  async delete (shards: Buffer[], opts?: RequestOptions): Promise<{ deleted: boolean[], usedByYou: bigint }> {
    const before = this.reportedUsage
    const r = await this.request({ kind: 'DELETE', shards }, opts)
    this.account(before === null ? 0 : Math.min(0, Number(r.usedByYou - before)), r.usedByYou)
    return r
  }

  async list (after: Buffer | null, limit: number, opts?: RequestOptions): Promise<{ entries: ListEntry[], more: boolean }> {
    return await this.request({ kind: 'LIST', after, limit }, opts)
  }

  /** Every shard this peer holds for me, page by page (bounded by maxPages). */
  async listAll (opts: RequestOptions & { pageSize?: number, maxPages?: number } = {}): Promise<ListEntry[]> {
    const out: ListEntry[] = []
    let after: Buffer | null = null
    for (let page = 0; page < (opts.maxPages ?? 100_000); page++) {
      const r = await this.list(after, opts.pageSize ?? 1024, opts)
      out.push(...r.entries)
      if (!r.more || r.entries.length === 0) return out
      after = r.entries[r.entries.length - 1].shard
    }
    return out
  }

  async audit (challenges: AuditChallenge[], opts?: RequestOptions): Promise<AuditAnswer[]> {
    const r = await this.request({ kind: 'AUDIT', challenges }, opts)
    if (r.answers.length !== challenges.length) throw this.protocolError(`answered ${r.answers.length} audit challenges out of ${challenges.length}`)
    return r.answers
  }

  async space (opts?: RequestOptions): Promise<Space> {
    const space = (await this.request({ kind: 'SPACE' }, opts)).space
    this.account(0, space.usedByYou)
    return space
  }

  /** Send an opaque request to another device of my owner; resolves with its opaque answer. */
  async device (body: Buffer, opts?: RequestOptions): Promise<Buffer> {
    return (await this.request({ kind: 'DEVICE', body }, opts)).body
  }

  /** Hand this peer my signed BEP 44 pointer item so that it can re-put it in the DHT. */
  async keepPointer (item: Buffer, opts?: RequestOptions): Promise<void> {
    await this.request({ kind: 'KEEP_POINTER', item }, opts)
  }

  private account (added: number, reported: bigint): void {
    this.reportedUsage = reported
    this.onHeldByPeer(added, reported)
  }

  // ---------------------------------------------------------------------------------- server side

  private onFrame (plain: Buffer, release: () => void): void {
    this.lastHeardAt = Date.now()
    let frame
    try {
      frame = decodeFrame(plain)
    } catch (err) {
      release()
      this.misbehaved(err as NetError)
      return
    }
    switch (frame.dir) {
      case 'notice':
        release()
        if (frame.kind === 'HELLO') {
          this.hello = frame.hello
          this.emit('hello', frame.hello)
        } else {
          const code = wireCodeName(frame.code)
          this.channel.destroy(new NetError(code === 'CLOSED' ? NetCodes.CLOSED : code, `${this.shortId} closed the connection: ${frame.reason}`))
        }
        return
      case 'reply': {
        release()
        const p = this.settle(frame.id)
        // A reply to a request that timed out: ignore it.
        if (p === undefined) return
        if (p.kind !== frame.reply.kind) {
          p.reject(this.protocolError(`answered ${p.kind} with a ${frame.reply.kind} reply`))
          this.misbehaved(new NetError(NetCodes.BAD_MESSAGE, `answered ${p.kind} with a ${frame.reply.kind} reply`))
          return
        }
        p.resolve(frame.reply)
        return
      }
      case 'error': {
        release()
        const p = this.settle(frame.id)
        const code = wireCodeName(frame.code)
        p?.reject(new NetError(code, `${this.shortId}: ${frame.text}`))
        return
      }
      case 'unknown':
        release()
        // A request type from a newer version: say so, keep the connection. Unknown replies are dropped.
        if (frame.id !== 0 && (frame.type & 0x80) === 0) this.trySend(encodeError(frame.id, WireErrorCodes.UNKNOWN_TYPE, `unknown message type ${frame.type}`))
        return
      case 'request':
        this.serve(frame.id, frame.req, release)
    }
  }

  private serve (id: number, req: Request, release: () => void): void {
    if (++this.handlers >= this.maxHandlers) this.channel.pause()
    const done = (): void => {
      release()
      if (this.handlers-- >= this.maxHandlers) this.channel.resume()
    }
    this.handler.handle(this, req).then(async reply => {
      if (!this.isOpen) return
      // Hold the handler slot until the reply is out: a peer that does not read its replies stalls
      // its own requests, not our memory.
      if (!this.trySend(encodeReply(id, reply))) await this.channel.drained()
    }, async err => {
      if (!this.isOpen) return
      const e = err instanceof NetError ? err : new NetError(NetCodes.INTERNAL, 'internal error')
      const code = isWireCode(e.code) ? WireErrorCodes[e.code] : WireErrorCodes.INTERNAL
      // The text goes to the peer: strip our own code prefix, never send local paths of INTERNAL errors.
      const text = isWireCode(e.code) && e.code !== 'INTERNAL' ? e.message.replace(/^[A-Z_]+: /, '') : 'internal error'
      if (!this.trySend(encodeError(id, code, text))) await this.channel.drained()
    }).catch(() => {}).finally(done)
  }

  /** Send; false if the write buffer is full (or the channel is closed). */
  private trySend (frame: Buffer): boolean {
    try {
      return this.channel.send(frame)
    } catch {
      return true
    }
  }

  private protocolError (text: string): NetError {
    return new NetError(NetCodes.BAD_MESSAGE, `${this.shortId} ${text}`)
  }

  /** Bad input: warn, tell the peer why, close. */
  private misbehaved (err: NetError): void {
    if (!this.isOpen) return
    this.warned = true
    const e = new NetError(err.code, `${this.shortId} (${this.remote.host}:${this.remote.port}): ${err.message}`)
    this.emit('warning', e)
    const code = isWireCode(err.code) ? WireErrorCodes[err.code] : WireErrorCodes.BAD_MESSAGE
    this.channel.close(e, encodeGoodbye(code, err.message))
  }

  private onClose (err: NetError | null): void {
    // Channel-level misbehaviour (oversized or forged records, a stalled frame) is a warning too.
    if (err !== null && !this.warned && MISBEHAVIOUR.has(err.code)) {
      this.warned = true
      this.emit('warning', err)
    }
    this.closeErr = err
    clearInterval(this.keepalive)
    this.closed.abort()
    const e = err ?? new NetError(NetCodes.CLOSED, `${this.shortId}: connection closed`)
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(e)
    for (const w of this.slotWaiters.splice(0)) w()
    this.emit('close', err)
  }
}
