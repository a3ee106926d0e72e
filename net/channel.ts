// SecureChannel: the encrypted record layer over one raw connection (docs/protocol.md §4). Each record
// is `u32be length || ChaCha20-Poly1305 ciphertext` under the Noise transport keys, one message per
// record, at most MAX_FRAME_BYTES of plaintext. Enforces: a hard frame size limit (checked on the
// length prefix, before reading the body), a node-wide receive memory budget, a deadline per frame
// (a peer that stalls mid-frame is cut off: slowloris), an idle timeout, and backpressure both ways
// (write() → false waits for 'drain'; the reader pauses while the peer layer is busy).

import { EventEmitter } from 'node:events'
import { NetError, NetCodes } from './errors.js'
import type { RawConnection } from './transport.js'
import type { CipherState } from './noise.js'
import { TAGLEN } from './noise.js'
import { RecvBudget } from './budget.js'
import { MAX_FRAME_BYTES, HEADER_BYTES } from './messages.js'

export const FRAME_TIMEOUT_MS = 20_000
/** A frame must also arrive at no less than this rate (bytes/s) past FRAME_TIMEOUT_MS. */
export const MIN_FRAME_RATE = 32 * 1024
/**
 * Nothing received this long closes the channel. Every peer pings every 15 s (peer.ts KEEPALIVE_MS),
 * so a live one is never silent for two periods; a dead one (a NAT that lost its mapping, a peer gone
 * without a reset: uTP has none) would otherwise hold its requests open. A node's own keepalive
 * cannot tell: its ping waits behind requests that will never be answered.
 */
export const IDLE_TIMEOUT_MS = 35_000

export interface ChannelOptions {
  readonly maxFrameBytes?: number
  readonly frameTimeoutMs?: number
  readonly minFrameRate?: number
  readonly idleTimeoutMs?: number
  readonly budget?: RecvBudget
  readonly label: string
}

export interface ChannelEvents {
  /** A decrypted frame; call release() when done with its memory (returns it to the budget). */
  frame: [plaintext: Buffer, release: () => void]
  /** Once: null for a clean close, else why. */
  close: [err: NetError | null]
  drain: []
}

export class SecureChannel extends EventEmitter<ChannelEvents> {
  readonly raw: RawConnection
  readonly label: string
  private readonly sendCipher: CipherState
  private readonly recvCipher: CipherState
  private readonly maxCipher: number
  private readonly frameTimeoutMs: number
  private readonly minFrameRate: number
  private readonly idleTimeoutMs: number
  private readonly budget: RecvBudget
  // Receive state.
  private pending: Buffer[] = []
  private hdr = Buffer.alloc(4)
  private hdrHave = 0
  private body: Buffer | null = null
  private bodyHave = 0
  private reserved = 0
  private waitingBudget = false
  private pauses = 0
  private frameTimer: NodeJS.Timeout | null = null
  private idleTimer: NodeJS.Timeout | null = null
  private closed = false
  private readonly abort = new AbortController()
  private drainWait: Promise<void> | null = null
  private drainSettle: { resolve: () => void, reject: (e: NetError) => void } | null = null
  bytesIn = 0
  bytesOut = 0

  constructor (raw: RawConnection, ciphers: { send: CipherState, recv: CipherState }, leftover: Buffer, opts: ChannelOptions) {
    super()
    this.raw = raw
    this.label = opts.label
    this.sendCipher = ciphers.send
    this.recvCipher = ciphers.recv
    this.maxCipher = (opts.maxFrameBytes ?? MAX_FRAME_BYTES) + TAGLEN
    this.frameTimeoutMs = opts.frameTimeoutMs ?? FRAME_TIMEOUT_MS
    this.minFrameRate = opts.minFrameRate ?? MIN_FRAME_RATE
    this.idleTimeoutMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS
    this.budget = opts.budget ?? new RecvBudget()
    const s = raw.stream
    s.on('data', this.onData)
    s.on('drain', this.onDrain)
    s.on('end', this.onEnd)
    s.on('close', this.onEnd)
    s.on('error', this.onError)
    this.touch()
    if (leftover.length > 0) queueMicrotask(() => this.onData(leftover))
  }

  get isClosed (): boolean {
    return this.closed
  }

  /** True while the stream's write buffer is below its high-water mark. */
  get writable (): boolean {
    return !this.closed && !this.raw.stream.writableNeedDrain
  }

  /** Encrypt and write one frame. Returns false when the caller should wait for drained(). */
  send (plaintext: Uint8Array): boolean {
    if (this.closed) throw new NetError(NetCodes.CLOSED, `${this.label}: connection closed`)
    if (plaintext.byteLength + TAGLEN > this.maxCipher) throw new NetError(NetCodes.FRAME_TOO_LARGE, `${this.label}: a ${plaintext.byteLength}-byte frame is over the limit`)
    const n = plaintext.byteLength + TAGLEN
    const out = Buffer.allocUnsafe(4 + n)
    out.writeUInt32BE(n, 0)
    this.sendCipher.encryptWithAd(null, plaintext, out.subarray(4))
    this.bytesOut += out.length
    return this.raw.stream.write(out)
  }

  /** Resolves when the write buffer has drained (or at once if it is not full); rejects if closed. */
  async drained (): Promise<void> {
    if (this.closed) throw new NetError(NetCodes.CLOSED, `${this.label}: connection closed`)
    if (!this.raw.stream.writableNeedDrain) return
    // One shared waiter however many callers wait (no listener per caller).
    this.drainWait ??= new Promise<void>((resolve, reject) => { this.drainSettle = { resolve, reject } })
    await this.drainWait
  }

  /** Stop reading (counted: each pause() needs a resume()). */
  pause (): void {
    if (this.pauses++ === 0) {
      this.raw.stream.pause()
      this.clearFrameTimer()
    }
  }

  resume (): void {
    if (this.pauses === 0) return
    if (--this.pauses === 0 && !this.closed) {
      this.raw.stream.resume()
      if (this.hdrHave > 0 || this.body !== null) this.armFrameTimer(this.body?.length ?? 0)
      this.drainPending()
    }
  }

  /** Send `last` (e.g. GOODBYE) if given, then end the stream; emits close(err). Idempotent. */
  close (err: NetError | null = null, last?: Uint8Array): void {
    if (this.closed) return
    if (last !== undefined) {
      try { this.send(last) } catch {}
    }
    this.finish(err)
    const s = this.raw.stream
    s.end()
    // Whatever the peer does, the socket goes within a bounded time.
    setTimeout(() => s.destroy(), 2000).unref()
  }

  destroy (err: NetError | null): void {
    if (this.closed) return
    this.finish(err)
    this.raw.stream.destroy()
  }

  private finish (err: NetError | null): void {
    this.closed = true
    this.abort.abort()
    this.clearFrameTimer()
    if (this.idleTimer !== null) clearTimeout(this.idleTimer)
    if (this.reserved > 0) {
      this.budget.give(this.reserved)
      this.reserved = 0
    }
    this.body = null
    this.pending = []
    const s = this.raw.stream
    s.off('data', this.onData)
    s.off('drain', this.onDrain)
    s.off('end', this.onEnd)
    s.off('close', this.onEnd)
    // Keep an error listener: a late socket error must never become an uncaught exception.
    s.off('error', this.onError)
    s.on('error', () => {})
    const d = this.drainSettle
    this.drainWait = null
    this.drainSettle = null
    if (d !== null) {
      this.drainWait = null
      d.reject(new NetError(NetCodes.CLOSED, `${this.label}: connection closed`))
    }
    this.emit('close', err)
  }

  private readonly onDrain = (): void => {
    const d = this.drainSettle
    this.drainWait = null
    this.drainSettle = null
    d?.resolve()
    this.emit('drain')
  }
  private readonly onEnd = (): void => { this.destroy(null) }
  private readonly onError = (e: Error): void => { this.destroy(new NetError(NetCodes.CLOSED, `${this.label}: connection failed: ${e.message}`, { cause: e })) }

  private touch (): void {
    if (this.idleTimer !== null) this.idleTimer.refresh()
    else {
      this.idleTimer = setTimeout(() => this.destroy(new NetError(NetCodes.TIMEOUT, `${this.label}: nothing received for ${this.idleTimeoutMs} ms`)), this.idleTimeoutMs)
      this.idleTimer.unref()
    }
  }

  private armFrameTimer (len: number): void {
    this.clearFrameTimer()
    const ms = this.frameTimeoutMs + Math.ceil(len * 1000 / this.minFrameRate)
    this.frameTimer = setTimeout(() => this.destroy(new NetError(NetCodes.STALLED, `${this.label}: a frame did not arrive within ${ms} ms (stalled mid-frame)`)), ms)
    this.frameTimer.unref()
  }

  private clearFrameTimer (): void {
    if (this.frameTimer !== null) clearTimeout(this.frameTimer)
    this.frameTimer = null
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closed) return
    this.bytesIn += chunk.length
    this.touch()
    this.pending.push(chunk)
    this.drainPending()
  }

  private drainPending (): void {
    while (this.pending.length > 0 && this.pauses === 0 && !this.waitingBudget && !this.closed) {
      const chunk = this.pending[0]
      const used = this.consume(chunk)
      if (used === chunk.length) this.pending.shift()
      else this.pending[0] = chunk.subarray(used)
    }
    // While paused, the stream itself is paused; what already arrived waits in `pending`.
  }

  /** Consume bytes of chunk; returns how many were used (fewer when we must wait). */
  private consume (chunk: Buffer): number {
    let off = 0
    while (off < chunk.length && this.pauses === 0 && !this.waitingBudget && !this.closed) {
      if (this.body === null) {
        if (this.hdrHave === 0) this.armFrameTimer(0)
        const n = Math.min(4 - this.hdrHave, chunk.length - off)
        chunk.copy(this.hdr, this.hdrHave, off, off + n)
        this.hdrHave += n
        off += n
        if (this.hdrHave < 4) break
        const len = this.hdr.readUInt32BE(0)
        if (len > this.maxCipher) {
          this.destroy(new NetError(NetCodes.FRAME_TOO_LARGE, `${this.label} announced a ${len}-byte frame, over the ${this.maxCipher}-byte limit`))
          return chunk.length
        }
        if (len < TAGLEN + HEADER_BYTES) {
          this.destroy(new NetError(NetCodes.FRAME_INVALID, `${this.label} announced a ${len}-byte frame, shorter than any message`))
          return chunk.length
        }
        if (!this.budget.tryTake(len)) {
          this.waitBudget(len)
          return off
        }
        this.startBody(len)
      } else {
        const n = Math.min(this.body.length - this.bodyHave, chunk.length - off)
        chunk.copy(this.body, this.bodyHave, off, off + n)
        this.bodyHave += n
        off += n
        if (this.bodyHave === this.body.length) this.finishFrame()
      }
    }
    return off
  }

  private startBody (len: number): void {
    this.reserved = len
    this.body = Buffer.allocUnsafe(len)
    this.bodyHave = 0
    this.armFrameTimer(len)
  }

  private waitBudget (len: number): void {
    this.waitingBudget = true
    this.raw.stream.pause()
    this.clearFrameTimer()
    this.budget.take(len, this.abort.signal).then(() => {
      this.waitingBudget = false
      if (this.closed) { this.budget.give(len); return }
      this.startBody(len)
      if (this.pauses === 0) this.raw.stream.resume()
      this.drainPending()
    }, () => { this.waitingBudget = false })
  }

  private finishFrame (): void {
    const body = this.body!
    const reserved = this.reserved
    this.body = null
    this.reserved = 0
    this.hdrHave = 0
    this.bodyHave = 0
    this.clearFrameTimer()
    const plain = this.recvCipher.decryptWithAd(null, body, body.subarray(0, body.length - TAGLEN))
    if (plain === null) {
      this.budget.give(reserved)
      this.destroy(new NetError(NetCodes.FRAME_INVALID, `${this.label} sent a frame that failed to authenticate (corrupted, replayed or forged)`))
      return
    }
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      this.budget.give(reserved)
    }
    this.emit('frame', Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength), release)
  }
}
