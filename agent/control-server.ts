// ControlServer: the agent's side of the control API (docs/agent-control.md). Listens on a unix
// socket (mode 0600) in the state directory, or in a private fallback directory when that path is too
// long for a socket; answers newline-delimited JSON requests with the registered handlers and pushes
// published events to subscribed connections. Bounded everywhere: line size, connections, requests in
// flight per connection, bytes queued per connection (slow subscribers lose events, never memory).

import net from 'node:net'
import { promises as fsp, type Stats } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, isAbsolute, dirname } from 'node:path'
import { AgentError, AgentCodes } from './errors.js'
import {
  CONTROL_VERSION, MAX_LINE_BYTES, MAX_CLIENTS, MAX_IN_FLIGHT, MAX_OUTGOING_BYTES,
  CONTROL_SOCKET_FILE, CONTROL_PATH_FILE, ControlMethods, ControlEvents, BUILTIN_METHODS, RESERVED_EVENTS, NAME_PATTERN,
  LineSplitter, encodeLine, okResponse, failResponse, eventMessage, wireError, isBlank, parseLine, decodeRequest,
  decodeEventFilter, decodeCancelId, fitsSocketPath, fallbackSocketName,
  type Params, type WireRequest, type WireResponse, type WireEvent, type WireHello
} from './control-protocol.js'

/** How long listen() waits for an existing socket to accept before calling it stale... or alive. */
export const PROBE_TIMEOUT_MS = 1000
/** How long close() lets a connection flush what is queued for it before destroying it. */
export const CLOSE_GRACE_MS = 1000
/** While a half-closed peer still has requests in flight, a blank line is written this often to notice it leaving. */
export const PEER_PROBE_MS = 1000
/** Prefix of the private directory the socket is bound in before it is linked into place. */
const BIND_DIR_PREFIX = '.ctl-'

export interface ControlServerOptions {
  /** The agent's state directory (the home); must exist. */
  stateDir: string
  maxLineBytes?: number
  maxClients?: number
  maxInFlight?: number
  maxOutgoingBytes?: number
  probeTimeoutMs?: number
  closeGraceMs?: number
  /**
   * Fallback directory when `${stateDir}/control.sock` is too long: default $XDG_RUNTIME_DIR (used
   * only if it is a directory of ours with mode 0700), else `${os.tmpdir()}/dustbox-${uid}`; null
   * skips $XDG_RUNTIME_DIR.
   */
  runtimeDir?: string | null
  /** Extra fields of the `hello` event (e.g. the agent's version). Never secrets. */
  info?: Record<string, unknown>
  /** Bad client input, handler failures (with the error; the client only sees INTERNAL), cleanup trouble. */
  onWarning?: (message: string, err?: unknown) => void
}

/** What a handler learns about the request it serves. */
export interface ControlContext {
  /** Connection id, unique for this server's lifetime. */
  clientId: number
  /** The request's id on its connection. */
  requestId: number
  method: string
  /** Aborted (reason: AgentError CLOSED) when the client disconnects, cancels the request or the server closes. */
  signal: AbortSignal
}

/**
 * Serves one method: resolves to the result (any JSON value; undefined → null) or throws. Errors with a
 * string `code` and message `CODE: text` reach the client as they are; anything else becomes INTERNAL
 * with a generic message. Results and messages must never carry keys or other secrets.
 */
export type ControlHandler = (params: Params, ctx: ControlContext) => unknown

export interface ControlStats {
  clients: number
  subscribers: number
  /** Bytes queued for all connections (written, not yet taken by the kernel). */
  queuedBytes: number
  /** The largest queue of one connection. */
  maxQueuedBytes: number
  /** Events dropped for slow subscribers since listen. */
  droppedEvents: number
}

interface Client {
  id: number
  socket: net.Socket
  splitter: LineSplitter
  inFlight: Map<number, AbortController>
  /** undefined: not subscribed; null: every event; else the names. */
  events: Set<string> | null | undefined
  queued: number
  /** Events dropped since the last `dropped` notice; while > 0 every event is dropped. */
  dropped: number
  readPaused: boolean
  /** The peer half-closed: finish the requests in flight, then end. */
  peerEnded: boolean
  probe: NodeJS.Timeout | null
  closing: boolean
  closed: Promise<void>
}

interface Bound {
  server: net.Server
  path: string
  fallback: boolean
  stat: Stats
}

export class ControlServer {
  readonly stateDir: string
  private readonly maxLineBytes: number
  private readonly maxClients: number
  private readonly maxInFlight: number
  private readonly maxOutgoingBytes: number
  private readonly probeTimeoutMs: number
  private readonly closeGraceMs: number
  private readonly opts: ControlServerOptions
  private readonly warn: (message: string, err?: unknown) => void
  private readonly handlers = new Map<string, ControlHandler>()
  private readonly clients = new Map<number, Client>()
  private readonly refused = new Set<net.Socket>()
  private nextClientId = 1
  private droppedTotal = 0
  private bound: Bound | null = null
  private listening: Promise<string> | null = null
  private closing: Promise<void> | null = null

  constructor (opts: ControlServerOptions) {
    if (typeof opts.stateDir !== 'string' || opts.stateDir === '' || opts.stateDir.includes('\0')) throw new AgentError(AgentCodes.HOME_INVALID, 'control server needs a state directory')
    this.opts = opts
    this.stateDir = resolve(opts.stateDir)
    this.maxLineBytes = positive(opts.maxLineBytes, MAX_LINE_BYTES, 'maxLineBytes')
    this.maxClients = positive(opts.maxClients, MAX_CLIENTS, 'maxClients')
    this.maxInFlight = positive(opts.maxInFlight, MAX_IN_FLIGHT, 'maxInFlight')
    this.maxOutgoingBytes = positive(opts.maxOutgoingBytes, MAX_OUTGOING_BYTES, 'maxOutgoingBytes')
    this.probeTimeoutMs = positive(opts.probeTimeoutMs, PROBE_TIMEOUT_MS, 'probeTimeoutMs')
    this.closeGraceMs = positive(opts.closeGraceMs, CLOSE_GRACE_MS, 'closeGraceMs')
    if (this.maxOutgoingBytes < this.maxLineBytes + 1) throw new AgentError(AgentCodes.CONFIG_INVALID, 'maxOutgoingBytes must hold at least one line (maxLineBytes + 1)')
    this.warn = opts.onWarning ?? ((message: string, err?: unknown) => {
      process.stderr.write(`dustbox control: ${message}${err instanceof Error && err.stack !== undefined ? '\n' + err.stack : ''}\n`)
    })
  }

  /** Register the handler of `method` (before or after listen). Built-in and duplicate names throw. */
  handle (method: string, handler: ControlHandler): this {
    if (!NAME_PATTERN.test(method)) throw new AgentError(AgentCodes.BAD_PARAMS, `invalid method name ${JSON.stringify(method)}`)
    if (BUILTIN_METHODS.has(method)) throw new AgentError(AgentCodes.BAD_PARAMS, `method ${method} is built in`)
    if (this.handlers.has(method)) throw new AgentError(AgentCodes.BAD_PARAMS, `method ${method} already has a handler`)
    this.handlers.set(method, handler)
    return this
  }

  /**
   * Push an event to every connection subscribed to it; returns how many got it. Never blocks: a
   * connection whose queue is full loses the event (it is told with a `dropped` event once it has read
   * its backlog). An event that cannot be encoded (too large, not JSON) is dropped with a warning.
   */
  publish (event: string, data?: unknown): number {
    if (!NAME_PATTERN.test(event) || RESERVED_EVENTS.has(event)) throw new AgentError(AgentCodes.BAD_PARAMS, `invalid event name ${JSON.stringify(event)}`)
    let line: Buffer | null = null
    let sent = 0
    for (const c of this.clients.values()) {
      if (c.closing || c.events === undefined || (c.events !== null && !c.events.has(event))) continue
      if (line === null) {
        try {
          line = encodeLine(eventMessage(event, data), this.maxLineBytes)
        } catch (err) {
          this.warn(`event ${event} not sent: ${(err as Error).message}`)
          return 0
        }
      }
      if (c.dropped > 0 || c.queued + line.length > this.maxOutgoingBytes) {
        c.dropped++
        this.droppedTotal++
        continue
      }
      this.send(c, line)
      sent++
    }
    return sent
  }

  /** Start listening; resolves to the socket's path. Idempotent. */
  listen (): Promise<string> {
    if (this.closing !== null) return Promise.reject(new AgentError(AgentCodes.CLOSED, 'control server is closed'))
    this.listening ??= this.bind()
    return this.listening
  }

  /** Resolves once listening (starts listening if needed). */
  async ready (): Promise<void> {
    await this.listen()
  }

  /** The socket's path once listening, else null. */
  get path (): string | null {
    return this.bound?.path ?? null
  }

  stats (): ControlStats {
    let subscribers = 0
    let queuedBytes = 0
    let maxQueuedBytes = 0
    for (const c of this.clients.values()) {
      if (c.events !== undefined) subscribers++
      queuedBytes += c.queued
      maxQueuedBytes = Math.max(maxQueuedBytes, c.queued)
    }
    return { clients: this.clients.size, subscribers, queuedBytes, maxQueuedBytes, droppedEvents: this.droppedTotal }
  }

  /**
   * Stop: remove the socket (and control.path) so no one else connects, abort every request in
   * flight, let each connection flush for up to closeGraceMs, then destroy it. Idempotent.
   */
  close (): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  // ---- listening ---------------------------------------------------------------------------------

  private async bind (): Promise<string> {
    const st = await fsp.stat(this.stateDir).catch(() => null)
    if (st === null || !st.isDirectory()) throw new AgentError(AgentCodes.HOME_INVALID, `state directory ${this.stateDir} does not exist`)
    const primary = join(this.stateDir, CONTROL_SOCKET_FILE)
    const fallback = !fitsSocketPath(join(this.stateDir, BIND_DIR_PREFIX + 'XXXXXX', 's'))
    const path = fallback ? join(await this.fallbackDir(), fallbackSocketName(this.stateDir)) : primary
    if (!fitsSocketPath(path)) throw new AgentError(AgentCodes.HOME_INVALID, `the control socket path ${path} is longer than a unix socket allows`)

    // Bind in a fresh 0700 directory, chmod 0600, then hard-link into place: the socket is never
    // reachable with a wider mode, and link() fails if the name is taken (EEXIST), atomically.
    const bindDir = await fsp.mkdtemp(join(dirname(path), BIND_DIR_PREFIX))
    const tempPath = join(bindDir, 's')
    const server = net.createServer({ allowHalfOpen: true }, socket => { this.accept(socket) })
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(tempPath, () => { server.off('error', reject); resolve() })
      })
      server.on('error', err => { this.warn('control socket error', err) })
      await fsp.chmod(tempPath, 0o600)
      for (let attempt = 0; ; attempt++) {
        try {
          await fsp.link(tempPath, path)
          break
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? ''
          if (code === 'EEXIST' && attempt < 2) {
            await this.clearStale(path)
          } else if (NO_HARD_LINKS.has(code)) {
            // A file system without hard links: rename instead (not atomic against a racing start).
            await this.clearStale(path)
            await fsp.rename(tempPath, path)
            break
          } else {
            throw err
          }
        }
      }
      const stat = await fsp.lstat(path)
      this.bound = { server, path, fallback, stat }
      if (fallback) await writeAtomic(join(this.stateDir, CONTROL_PATH_FILE), path + '\n')
      else await fsp.rm(join(this.stateDir, CONTROL_PATH_FILE), { force: true })
      return path
    } catch (err) {
      if (this.bound !== null) await unlinkIfOurs(path, this.bound.stat)
      this.bound = null
      server.close()
      if (err instanceof AgentError) throw err
      throw new AgentError(AgentCodes.HOME_INVALID, `cannot listen on ${path}: ${(err as Error).message}`, { cause: err })
    } finally {
      await fsp.rm(bindDir, { recursive: true, force: true }).catch(() => {})
    }
  }

  /** `path` exists: an agent that answers → AGENT_RUNNING; a dead socket (crash) → removed. */
  private async clearStale (path: string): Promise<void> {
    const before = await fsp.lstat(path).catch(() => null)
    if (before === null) return
    if (!before.isSocket()) throw new AgentError(AgentCodes.HOME_INVALID, `${path} exists and is not a socket; remove it`)
    const outcome = await probe(path, this.probeTimeoutMs)
    if (outcome.startsWith('E')) throw new AgentError(AgentCodes.HOME_INVALID, `cannot tell whether an agent answers on ${path} (${outcome})`)
    if (outcome === 'alive') throw new AgentError(AgentCodes.AGENT_RUNNING, `an agent already runs on this home (${this.stateDir}); it answers on ${path}`)
    if (outcome === 'hung') throw new AgentError(AgentCodes.AGENT_RUNNING, `an agent seems to run on this home (${this.stateDir}): ${path} exists but does not answer within ${this.probeTimeoutMs} ms`)
    if (outcome === 'gone') return
    const now = await fsp.lstat(path).catch(() => null)
    if (now !== null && now.ino === before.ino && now.dev === before.dev) {
      await fsp.unlink(path).catch(() => {})
      this.warn(`removed stale control socket ${path} (left by an agent that did not stop cleanly)`)
    }
  }

  private async fallbackDir (): Promise<string> {
    const uid = process.getuid?.() ?? -1
    const runtime = this.opts.runtimeDir === undefined ? process.env.XDG_RUNTIME_DIR : this.opts.runtimeDir
    if (typeof runtime === 'string' && isAbsolute(runtime)) {
      const st = await fsp.lstat(runtime).catch(() => null)
      if (st !== null && st.isDirectory() && (uid < 0 || st.uid === uid) && (st.mode & 0o077) === 0) return runtime
    }
    const dir = join(tmpdir(), `dustbox-${uid < 0 ? 'user' : uid}`)
    await fsp.mkdir(dir, { mode: 0o700 }).catch(err => { if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err })
    const st = await fsp.lstat(dir)
    if (!st.isDirectory() || (uid >= 0 && st.uid !== uid)) throw new AgentError(AgentCodes.HOME_INVALID, `${dir} is not a directory of this user; refusing to put the control socket there`)
    if ((st.mode & 0o077) !== 0) await fsp.chmod(dir, 0o700)
    return dir
  }

  // ---- connections -------------------------------------------------------------------------------

  private accept (socket: net.Socket): void {
    socket.on('error', () => {}) // every error ends in 'close'
    if (this.closing !== null) {
      socket.destroy()
      return
    }
    if (this.clients.size >= this.maxClients) {
      this.refused.add(socket)
      const timer = setTimeout(() => { socket.destroy() }, this.closeGraceMs)
      socket.on('close', () => { clearTimeout(timer); this.refused.delete(socket) })
      socket.resume()
      socket.end(encodeLine(failResponse(null, AgentCodes.CONTROL_BUSY, `${AgentCodes.CONTROL_BUSY}: too many control connections (${this.maxClients}); close one and retry`)))
      return
    }
    const c: Client = {
      id: this.nextClientId++,
      socket,
      splitter: new LineSplitter(this.maxLineBytes),
      inFlight: new Map(),
      events: undefined,
      queued: 0,
      dropped: 0,
      readPaused: false,
      peerEnded: false,
      probe: null,
      closing: false,
      closed: new Promise(resolve => { socket.once('close', () => { resolve() }) })
    }
    this.clients.set(c.id, c)
    socket.on('close', () => { this.forget(c) })
    socket.on('end', () => {
      // EOF: the peer half-closed (answers still wanted) or is gone. A blank line (ignored by every
      // reader) written now and every PEER_PROBE_MS fails with EPIPE if it is gone, which aborts its requests.
      c.peerEnded = true
      if (c.inFlight.size === 0) {
        this.end(c)
        return
      }
      this.send(c, NEWLINE)
      c.probe = setInterval(() => { this.send(c, NEWLINE) }, PEER_PROBE_MS)
      c.probe.unref()
    })
    socket.on('data', (chunk: Buffer) => { this.onData(c, chunk) })
    const hello: WireHello = { ...this.opts.info, protocol: CONTROL_VERSION, pid: process.pid, maxLineBytes: this.maxLineBytes, maxInFlight: this.maxInFlight }
    this.send(c, this.encode(eventMessage(ControlEvents.HELLO, hello)))
  }

  private onData (c: Client, chunk: Buffer): void {
    if (c.closing) return
    try {
      c.splitter.push(chunk, line => {
        if (isBlank(line)) return true
        let msg: unknown
        try {
          msg = parseLine(line)
        } catch (err) {
          this.reject(c, err as AgentError)
          return false
        }
        this.onRequest(c, msg)
        return !c.closing
      })
    } catch (err) {
      this.reject(c, err as AgentError) // CONTROL_TOO_LARGE
    }
  }

  /** Answer a connection-level error (id null) and close the connection. */
  private reject (c: Client, err: AgentError): void {
    this.warn(`control client ${c.id}: ${err.message}; closing it`)
    this.send(c, this.encode(failResponse(null, err.code, err.message)))
    this.end(c)
  }

  private onRequest (c: Client, msg: unknown): void {
    const decoded = decodeRequest(msg)
    if (!decoded.ok) {
      this.send(c, this.encode(failResponse(decoded.id, decoded.error.code, decoded.error.message)))
      return
    }
    const { id, method, params } = decoded.request
    if (BUILTIN_METHODS.has(method)) {
      let response: WireResponse
      try {
        response = okResponse(id, this.builtin(c, method, params))
      } catch (err) {
        const e = wireError(err, `${method} failed`)
        response = failResponse(id, e.code, e.message)
      }
      this.send(c, this.encode(response))
      return
    }
    if (c.inFlight.has(id)) return this.fail(c, id, AgentCodes.CONTROL_PROTOCOL, `request id ${id} is already in flight on this connection`)
    if (c.inFlight.size >= this.maxInFlight) return this.fail(c, id, AgentCodes.CONTROL_BUSY, `${this.maxInFlight} requests already in flight on this connection; wait for one to finish`)
    const handler = this.handlers.get(method)
    if (handler === undefined) return this.fail(c, id, AgentCodes.UNKNOWN_METHOD, `no method "${method}"`)
    const ac = new AbortController()
    c.inFlight.set(id, ac)
    const ctx: ControlContext = { clientId: c.id, requestId: id, method, signal: ac.signal }
    void (async () => await handler(params, ctx))().then(
      result => { this.finish(c, id, method, ac, result, undefined) },
      err => { this.finish(c, id, method, ac, undefined, err ?? new Error('rejected without a reason')) }
    ).catch(err => { this.warn(`control: answering ${method} failed`, err) })
  }

  private builtin (c: Client, method: string, params: Params): unknown {
    switch (method) {
      case ControlMethods.PING:
        return {}
      case ControlMethods.SUBSCRIBE: {
        const events = decodeEventFilter(params)
        c.events = events === null ? null : new Set(events)
        return { events }
      }
      case ControlMethods.UNSUBSCRIBE:
        c.events = undefined
        c.dropped = 0
        return {}
      case ControlMethods.CANCEL: {
        const ac = c.inFlight.get(decodeCancelId(params))
        if (ac === undefined || ac.signal.aborted) return { cancelled: false }
        ac.abort(new AgentError(AgentCodes.CLOSED, 'request cancelled by the client'))
        return { cancelled: true }
      }
      default:
        throw new AgentError(AgentCodes.UNKNOWN_METHOD, `no method "${method}"`)
    }
  }

  private finish (c: Client, id: number, method: string, ac: AbortController, result: unknown, err: unknown): void {
    if (c.inFlight.get(id) === ac) c.inFlight.delete(id)
    if (!c.closing) {
      let line: Buffer
      if (err === undefined) {
        try {
          line = encodeLine(okResponse(id, result), this.maxLineBytes)
        } catch (e) {
          const ae = e as AgentError
          if (ae.code !== AgentCodes.CONTROL_TOO_LARGE) this.warn(`control: the result of ${method} could not be encoded`, e)
          line = this.encode(ae.code === AgentCodes.CONTROL_TOO_LARGE
            ? failResponse(id, ae.code, `${ae.code}: the result of ${method} is larger than ${this.maxLineBytes} bytes`)
            : failResponse(id, AgentCodes.INTERNAL, `${AgentCodes.INTERNAL}: the result could not be encoded`))
        }
      } else {
        const generic = `the agent failed to handle ${method}`
        const e = wireError(err, generic)
        if (e.message === `${AgentCodes.INTERNAL}: ${generic}`) this.warn(`control: ${method} (request ${id} of client ${c.id}) failed`, err)
        line = this.encode(failResponse(id, e.code, e.message))
      }
      this.send(c, line)
    }
    if (c.peerEnded && c.inFlight.size === 0) this.end(c)
  }

  private fail (c: Client, id: number, code: string, text: string): void {
    this.send(c, this.encode(failResponse(id, code, `${code}: ${text}`)))
  }

  /** Encode a message of ours (always small). */
  private encode (msg: WireRequest | WireResponse | WireEvent): Buffer {
    return encodeLine(msg, Number.MAX_SAFE_INTEGER)
  }

  /** Queue a line; count it until the kernel has taken it; pause reading while the queue is over the limit. */
  private send (c: Client, line: Buffer): void {
    if (c.socket.destroyed || !c.socket.writable) return
    c.queued += line.length
    c.socket.write(line, () => { this.written(c, line.length) })
    if (c.queued > this.maxOutgoingBytes && !c.readPaused) {
      c.readPaused = true
      c.socket.pause()
    }
  }

  private written (c: Client, n: number): void {
    c.queued -= n
    if (c.queued > this.maxOutgoingBytes / 2 || c.socket.destroyed) return
    if (c.readPaused && !c.closing) {
      c.readPaused = false
      c.socket.resume()
    }
    if (c.dropped > 0 && c.events !== undefined && !c.closing) {
      const count = c.dropped
      c.dropped = 0
      this.send(c, this.encode(eventMessage(ControlEvents.DROPPED, { count })))
    }
  }

  /** Stop reading, flush what is queued, close; destroy after the grace time. */
  private end (c: Client): void {
    if (c.probe !== null) clearInterval(c.probe)
    if (c.closing) return
    c.closing = true
    c.events = undefined
    c.readPaused = false
    c.socket.resume() // read and discard until the peer closes, so 'close' comes without the timer
    c.socket.end()
    const timer = setTimeout(() => { c.socket.destroy() }, this.closeGraceMs)
    c.socket.once('close', () => { clearTimeout(timer) })
  }

  private forget (c: Client): void {
    if (c.probe !== null) clearInterval(c.probe)
    c.closing = true
    this.clients.delete(c.id)
    for (const ac of c.inFlight.values()) ac.abort(new AgentError(AgentCodes.CLOSED, 'control client disconnected'))
    c.inFlight.clear()
  }

  private async shutdown (): Promise<void> {
    await this.listening?.catch(() => {})
    const bound = this.bound
    if (bound === null) return
    await unlinkIfOurs(bound.path, bound.stat).catch(err => { this.warn(`cannot remove ${bound.path}`, err) })
    if (bound.fallback) {
      const file = join(this.stateDir, CONTROL_PATH_FILE)
      const text = await fsp.readFile(file, 'utf8').catch(() => null)
      if (text?.trim() === bound.path) await fsp.rm(file, { force: true }).catch(err => { this.warn(`cannot remove ${file}`, err) })
    }
    const serverClosed = new Promise<void>(resolve => { bound.server.close(() => { resolve() }) })
    const clients = [...this.clients.values()]
    for (const c of clients) {
      for (const ac of c.inFlight.values()) ac.abort(new AgentError(AgentCodes.CLOSED, 'the agent is stopping'))
      this.end(c)
    }
    for (const s of this.refused) s.destroy()
    await Promise.all(clients.map(async c => await c.closed))
    await serverClosed
  }
}

const NEWLINE = Buffer.from('\n')
/** link() errors meaning "this file system has no hard links". */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK'])

/**
 * Connect to an existing socket: 'alive' (accepts), 'dead' (refused: stale), 'gone' (vanished),
 * 'hung' (no answer in time), or the errno code of any other failure.
 */
async function probe (path: string, timeoutMs: number): Promise<string> {
  return await new Promise(resolve => {
    const s = net.connect(path)
    const done = (r: string): void => { clearTimeout(timer); s.destroy(); resolve(r) }
    const timer = setTimeout(() => { done('hung') }, timeoutMs)
    s.once('connect', () => { done('alive') })
    s.once('error', err => {
      const code = (err as NodeJS.ErrnoException).code
      done(code === 'ENOENT' ? 'gone' : code === 'ECONNREFUSED' ? 'dead' : code ?? 'EUNKNOWN')
    })
  })
}

async function unlinkIfOurs (path: string, ours: Stats): Promise<void> {
  const st = await fsp.lstat(path).catch(() => null)
  if (st !== null && st.ino === ours.ino && st.dev === ours.dev) await fsp.unlink(path).catch(err => { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err })
}

async function writeAtomic (file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  const fh = await fsp.open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await fsp.rename(tmp, file)
}

function positive (value: number | undefined, dflt: number, name: string): number {
  if (value === undefined) return dflt
  if (!Number.isSafeInteger(value) || value <= 0) throw new AgentError(AgentCodes.CONFIG_INVALID, `${name} must be a positive integer`)
  return value
}
