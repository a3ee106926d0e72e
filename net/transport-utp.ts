// UtpTransport: the uTP byte transport, on utp-native (libutp over one UDP socket per transport, used
// both to accept and to connect). It hands out node:stream Duplexes (UtpStream) wrapping utp-native's
// readable-stream Connection, and applies the settings bench/utp-probe.ts found to matter:
//
// - SOCKET_BUFFER_BYTES (4 MiB) as SO_RCVBUF/SO_SNDBUF of the UDP socket. libutp keeps up to 1 MiB in
//   flight (its fixed opt_sndbuf, not settable through utp-native) in ~1.4 KB datagrams; the kernel
//   default receive buffer (208 KiB) overflows on every burst, losses halve libutp's window and
//   throughput falls to ~5 MB/s. The RECEIVING side's buffer is the one that matters.
// - Reads are coalesced: utp-native calls JS once per datagram (~1.4 KB); consecutive datagrams land
//   in one buffer, so UtpStream merges adjacent views (no copy) and pushes once per event-loop turn.
// - Writes: write one Buffer per frame; frames queued while a write is pending reach libutp as one
//   writev. WRITE_HIGH_WATER_BYTES (1 MiB) lets a writer queue several frames before write() → false.
//
// Limits of utp-native the layer above must live with: no receive backpressure (pause() stops 'data'
// but not the peer; the stream errors with BUSY past READ_BUFFER_LIMIT_BYTES, so the protocol above
// must bound the bytes in flight to a reader), and an accepted connection cannot send before it has
// received a first byte (the connecting side must speak first; the handshake initiator does).

import { Duplex } from 'node:stream'
import UTP from 'utp-native'
import { NetCodes, NetError } from './errors.js'
import { TransportNames, type Endpoint, type RawConnection, type Transport, type TransportOptions } from './transport.js'

/** SO_RCVBUF and SO_SNDBUF asked for the UDP socket (the kernel caps it at net.core.rmem_max/wmem_max). 0 keeps the default. */
export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
export const CONNECT_TIMEOUT_MS = 10_000
/** How long close() waits for libutp to finish closing connections before it lets the socket go. */
export const CLOSE_TIMEOUT_MS = 2_000
export const WRITE_HIGH_WATER_BYTES = 1024 * 1024
/** Bytes a stream buffers for a reader that does not read (paused) before it fails with BUSY. */
export const READ_BUFFER_LIMIT_BYTES = 64 * 1024 * 1024

export interface UtpTransportOptions extends TransportOptions {
  /** A datagram on the socket that is not uTP (the address probe, docs/reachability.md §2.1). */
  readonly onDatagram?: (buf: Buffer, from: { address: string, port: number }) => void
  readonly socketBufferBytes?: number
  readonly connectTimeoutMs?: number
  readonly closeTimeoutMs?: number
  readonly writeHighWaterBytes?: number
  readonly readBufferLimitBytes?: number
  /** Merge adjacent datagrams into one 'data' chunk per event-loop turn (default true). */
  readonly coalesceReads?: boolean
}

interface StreamLimits {
  readonly writeHighWaterBytes: number
  readonly readBufferLimitBytes: number
  readonly coalesceReads: boolean
}

const UTP_ERROR_CODES: Readonly<Record<string, typeof NetCodes[keyof typeof NetCodes]>> = {
  UTP_ECONNREFUSED: NetCodes.CONNECT_FAILED,
  UTP_ECONNRESET: NetCodes.CLOSED,
  UTP_ETIMEDOUT: NetCodes.TIMEOUT
}

/** A node:stream Duplex over one utp-native Connection. */
export class UtpStream extends Duplex {
  readonly remote: Endpoint
  private readonly conn: UTP.Connection
  private readonly limits: StreamLimits
  private pending: Buffer | null = null
  private flushQueued = false
  private gotEnd = false
  private finalCalled = false

  constructor (conn: UTP.Connection, limits: StreamLimits) {
    super({ allowHalfOpen: true, writableHighWaterMark: limits.writeHighWaterBytes, readableHighWaterMark: 1024 * 1024 })
    this.conn = conn
    this.limits = limits
    this.remote = { host: conn.remoteAddress, port: conn.remotePort }
    conn.on('data', this.onData)
    conn.on('end', this.onEnd)
    conn.on('error', this.onError)
    conn.on('close', this.onClose)
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.destroyed) return
    if (!this.limits.coalesceReads) { this.deliver(chunk); return }
    const p = this.pending
    if (p !== null && p.buffer === chunk.buffer && p.byteOffset + p.length === chunk.byteOffset) {
      this.pending = Buffer.from(p.buffer, p.byteOffset, p.length + chunk.length)
    } else {
      if (p !== null) this.deliver(p)
      this.pending = chunk
    }
    if (!this.flushQueued) { this.flushQueued = true; setImmediate(this.flush) }
  }

  private readonly flush = (): void => {
    this.flushQueued = false
    const p = this.pending
    this.pending = null
    if (p !== null && !this.destroyed) this.deliver(p)
  }

  private deliver (chunk: Buffer): void {
    this.push(chunk)
    if (this.readableLength > this.limits.readBufferLimitBytes) {
      this.destroy(new NetError(NetCodes.BUSY, `uTP ${this.remote.host}:${this.remote.port}: over ${this.limits.readBufferLimitBytes} bytes received and not read`))
    }
  }

  private readonly onEnd = (): void => {
    this.flush()
    this.gotEnd = true
    if (!this.destroyed) this.push(null)
  }

  private readonly onError = (err: Error & { code?: string }): void => {
    const code = UTP_ERROR_CODES[err.code ?? ''] ?? NetCodes.IO_ERROR
    this.destroy(new NetError(code, `uTP ${this.remote.host}:${this.remote.port}: ${err.message}`, { cause: err }))
  }

  private readonly onClose = (): void => {
    if (this.destroyed) return
    // utp-native closes its Connection once both directions ended; the Duplex then auto-destroys after
    // 'end' and 'finish'. A close before that is a reset (a peer gone or a libutp timeout).
    if (this.gotEnd && this.finalCalled) return
    this.destroy(new NetError(NetCodes.CLOSED, `uTP ${this.remote.host}:${this.remote.port}: connection closed before end`))
  }

  override _read (): void {
    // utp-native cannot pause its peer (no receive window feedback); see READ_BUFFER_LIMIT_BYTES.
  }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.conn.write(chunk, cb)
  }

  override _writev (chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    // utp-native turns a corked batch into one utp_writev (up to 256 iovecs, else one concat).
    this.conn.cork()
    const last = chunks.length - 1
    for (let i = 0; i < last; i++) this.conn.write(chunks[i].chunk)
    this.conn.write(chunks[last].chunk, cb)
    this.conn.uncork()
  }

  override _final (cb: (err?: Error | null) => void): void {
    this.finalCalled = true
    this.conn.end(() => cb())
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.pending = null
    this.conn.destroy()
    cb(err)
  }
}

export class UtpTransport implements Transport {
  readonly name = TransportNames.utp
  private readonly opts: UtpTransportOptions
  private readonly limits: StreamLimits
  private socket: UTP | null = null
  private binding: Promise<UTP> | null = null
  private listening = false
  private closed = false
  private closing: Promise<void> | null = null
  private readonly streams = new Set<UtpStream>()

  constructor (opts: UtpTransportOptions) {
    this.opts = opts
    this.limits = {
      writeHighWaterBytes: opts.writeHighWaterBytes ?? WRITE_HIGH_WATER_BYTES,
      readBufferLimitBytes: opts.readBufferLimitBytes ?? READ_BUFFER_LIMIT_BYTES,
      coalesceReads: opts.coalesceReads ?? true
    }
  }

  /** The bound UDP port, or 0 before the socket is bound. */
  get port (): number {
    try { return this.socket?.address().port ?? 0 } catch { return 0 }
  }

  /** The kernel's SO_RCVBUF / SO_SNDBUF of the socket (Linux reports twice the value asked). */
  socketBuffers (): { recv: number, send: number } {
    const s = this.socket
    if (s === null || this.closed) return { recv: 0, send: 0 }
    return { recv: s.getRecvBufferSize(), send: s.getSendBufferSize() }
  }

  async listen (port: number, host: string): Promise<number> {
    if (this.closed) throw new NetError(NetCodes.CLOSED, 'uTP transport is closed')
    if (this.listening) throw new NetError(NetCodes.CONFIG_INVALID, `uTP transport already listens on port ${this.port}`)
    const s = await this.bound(port, host)
    if (port !== 0 && s.address().port !== port) {
      throw new NetError(NetCodes.CONFIG_INVALID, `uTP socket already bound to port ${s.address().port} (by connect), cannot listen on ${port}`)
    }
    this.listening = true
    s.firewall(false)
    return s.address().port
  }

  async connect (remote: Endpoint, signal?: AbortSignal): Promise<RawConnection> {
    const where = `uTP ${remote.host}:${remote.port}`
    if (this.closed) throw new NetError(NetCodes.CLOSED, `${where}: transport is closed`)
    if (signal?.aborted === true) throw new NetError(NetCodes.ABORTED, `${where}: connect aborted`)
    const s = await this.bound(0, '0.0.0.0')
    if (this.closed) throw new NetError(NetCodes.CLOSED, `${where}: transport is closed`)
    const conn = s.connect(remote.port, remote.host)
    const stream = this.adopt(conn)
    const ms = this.opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS
    return await new Promise<RawConnection>((resolve, reject) => {
      const done = (err: NetError | null): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        conn.removeListener('connect', onConnect)
        stream.removeListener('error', onError)
        stream.removeListener('close', onClose)
        if (err === null) { resolve({ stream, transport: this.name, remote }); return }
        stream.destroy()
        reject(err)
      }
      const onConnect = (): void => done(null)
      const onError = (err: Error): void => done(err instanceof NetError ? err : new NetError(NetCodes.CONNECT_FAILED, `${where}: ${err.message}`, { cause: err }))
      const onClose = (): void => done(new NetError(NetCodes.CONNECT_FAILED, `${where}: closed while connecting`))
      const onAbort = (): void => done(new NetError(NetCodes.ABORTED, `${where}: connect aborted`))
      const timer = setTimeout(() => done(new NetError(NetCodes.TIMEOUT, `${where}: no answer within ${ms} ms`)), ms)
      conn.once('connect', onConnect)
      stream.once('error', onError)
      stream.once('close', onClose)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Send a raw datagram from the socket (not uTP): the address probe. Silently nothing before it is bound. */
  sendDatagram (buf: Buffer, host: string, port: number): void {
    const s = this.socket
    if (s === null || this.closed) return
    s.send(buf, 0, buf.length, port, host)
  }

  close (): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown (): Promise<void> {
    this.closed = true
    if (this.binding !== null) await this.binding.catch(() => undefined)
    for (const stream of [...this.streams]) stream.destroy()
    const s = this.socket
    if (s === null) return
    for (const conn of [...s.connections]) conn.destroy()
    const ms = this.opts.closeTimeoutMs ?? CLOSE_TIMEOUT_MS
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { s.unref(); resolve() }, ms)
      s.close(() => { clearTimeout(timer); resolve() })
    })
  }

  /** Bind the one UDP socket (once) and apply the buffer sizes. */
  private bound (port: number, host: string): Promise<UTP> {
    this.binding ??= new Promise<UTP>((resolve, reject) => {
      const s = UTP({ allowHalfOpen: true })
      const onBindError = (err: Error): void => reject(new NetError(NetCodes.CONFIG_INVALID, `uTP bind ${host}:${port} failed: ${err.message}`, { cause: err }))
      s.once('error', onBindError)
      // Later socket errors (a failed UDP read) concern no connection in particular: libutp's timeouts
      // will surface them on the connections, so they are dropped here rather than crash the process.
      s.on('error', () => undefined)
      s.on('connection', this.onAccept)
      s.on('message', (buf: Buffer, from: { address: string, port: number }) => {
        try { this.opts.onDatagram?.(buf, from) } catch { /* hostile datagrams never reach further */ }
      })
      s.bind(port, host, () => {
        s.removeListener('error', onBindError)
        this.socket = s
        const bytes = this.opts.socketBufferBytes ?? SOCKET_BUFFER_BYTES
        if (bytes > 0) {
          try { s.setRecvBufferSize(bytes); s.setSendBufferSize(bytes) } catch { /* kernel keeps its default */ }
        }
        if (this.closed) s.close()
        resolve(s)
      })
    })
    return this.binding
  }

  private readonly onAccept = (conn: UTP.Connection): void => {
    if (this.closed || !this.listening) { conn.on('error', () => undefined); conn.destroy(); return }
    const stream = this.adopt(conn)
    try {
      this.opts.onConnection({ stream, transport: this.name, remote: stream.remote })
    } catch {
      stream.destroy()
    }
  }

  private adopt (conn: UTP.Connection): UtpStream {
    const stream = new UtpStream(conn, this.limits)
    this.streams.add(stream)
    stream.once('close', () => this.streams.delete(stream))
    return stream
  }
}
