// TcpTransport: the TCP byte transport on node:net (fallback when UDP is blocked, and the reference the
// uTP figures are compared with). Sockets are handed out as they are (a net.Socket is a Duplex), with
// Nagle off, half-open allowed, a connect timeout and AbortSignal support; close() destroys them all.

import net from 'node:net'
import { NetCodes, NetError } from './errors.js'
import { TransportNames, type Endpoint, type RawConnection, type Transport, type TransportOptions } from './transport.js'

export const CONNECT_TIMEOUT_MS = 10_000

export interface TcpTransportOptions extends TransportOptions {
  readonly connectTimeoutMs?: number
}

export class TcpTransport implements Transport {
  readonly name = TransportNames.tcp
  private readonly opts: TcpTransportOptions
  private server: net.Server | null = null
  private closed = false
  private closing: Promise<void> | null = null
  private readonly sockets = new Set<net.Socket>()

  constructor (opts: TcpTransportOptions) {
    this.opts = opts
  }

  async listen (port: number, host: string): Promise<number> {
    if (this.closed) throw new NetError(NetCodes.CLOSED, 'TCP transport is closed')
    if (this.server !== null) throw new NetError(NetCodes.CONFIG_INVALID, 'TCP transport already listens')
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, this.onAccept)
    this.server = server
    return await new Promise<number>((resolve, reject) => {
      const onError = (err: Error): void => {
        this.server = null
        reject(new NetError(NetCodes.CONFIG_INVALID, `TCP listen ${host}:${port} failed: ${err.message}`, { cause: err }))
      }
      server.once('error', onError)
      server.listen(port, host, () => {
        server.removeListener('error', onError)
        server.on('error', () => undefined) // accept errors (EMFILE...) concern no connection; keep serving
        const addr = server.address()
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port)
      })
    })
  }

  async connect (remote: Endpoint, signal?: AbortSignal): Promise<RawConnection> {
    const where = `TCP ${remote.host}:${remote.port}`
    if (this.closed) throw new NetError(NetCodes.CLOSED, `${where}: transport is closed`)
    if (signal?.aborted === true) throw new NetError(NetCodes.ABORTED, `${where}: connect aborted`)
    const socket = new net.Socket({ allowHalfOpen: true })
    this.track(socket)
    const ms = this.opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS
    return await new Promise<RawConnection>((resolve, reject) => {
      const done = (err: NetError | null): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        socket.removeListener('connect', onConnect)
        socket.removeListener('error', onError)
        socket.removeListener('close', onClose)
        if (err === null) { resolve({ stream: socket, transport: this.name, remote }); return }
        socket.destroy()
        reject(err)
      }
      const onConnect = (): void => done(null)
      const onError = (err: Error): void => done(new NetError(NetCodes.CONNECT_FAILED, `${where}: ${err.message}`, { cause: err }))
      const onClose = (): void => done(new NetError(NetCodes.CONNECT_FAILED, `${where}: closed while connecting`))
      const onAbort = (): void => done(new NetError(NetCodes.ABORTED, `${where}: connect aborted`))
      const timer = setTimeout(() => done(new NetError(NetCodes.TIMEOUT, `${where}: no answer within ${ms} ms`)), ms)
      socket.once('connect', onConnect)
      socket.once('error', onError)
      socket.once('close', onClose)
      signal?.addEventListener('abort', onAbort, { once: true })
      socket.connect({ port: remote.port, host: remote.host, noDelay: true })
    })
  }

  close (): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown (): Promise<void> {
    this.closed = true
    const server = this.server
    const stopped = server === null ? Promise.resolve() : new Promise<void>(resolve => server.close(() => resolve()))
    for (const socket of [...this.sockets]) socket.destroy()
    await stopped
  }

  private readonly onAccept = (socket: net.Socket): void => {
    if (this.closed) { socket.on('error', () => undefined); socket.destroy(); return }
    socket.setNoDelay(true)
    this.track(socket)
    const remote = { host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }
    try {
      this.opts.onConnection({ stream: socket, transport: this.name, remote })
    } catch {
      socket.destroy()
    }
  }

  private track (socket: net.Socket): void {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
  }
}
