// ControlClient: the CLI's and dashboard's side of the control API (docs/agent-control.md). Finds the
// agent's socket from its state directory, waits for the `hello` line, sends requests (queued locally
// past the server's in-flight limit), matches responses by id, cancels on timeout or abort, and hands
// pushed events to subscribers. Failures of the connection are AgentErrors; errors the agent answered
// are RemoteErrors carrying the agent's code string.

import net from 'node:net'
import { promises as fsp } from 'node:fs'
import { join, resolve, isAbsolute } from 'node:path'
import { AgentError, AgentCodes } from './errors.js'
import { resolveHome } from './home.js'
import {
  CONTROL_VERSION, MAX_LINE_BYTES, MAX_IN_FLIGHT, CONTROL_SOCKET_FILE, CONTROL_PATH_FILE, MAX_CONTROL_PATH_FILE,
  ControlMethods, ControlEvents, NAME_PATTERN, LineSplitter, encodeLine, isBlank, parseLine, decodeServerMessage,
  fitsSocketPath, isObject, type Params, type WireResponse, type WireEvent, type WireHello
} from './control-protocol.js'

/** Default time to connect and receive `hello`. */
export const CONNECT_TIMEOUT_MS = 5000
/** Default time a call may take (queueing included); 0 or Infinity in CallOptions waits forever. */
export const CALL_TIMEOUT_MS = 30_000
/** Longest timer Node can set (2^31-1 ms, ~24.8 days); longer timeouts mean none. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** Upper bound on the agent's announced in-flight limit that this client honours. */
const MAX_CLIENT_IN_FLIGHT = 1024
/** How long close() waits for the agent to acknowledge the end of the connection. */
export const CLIENT_CLOSE_GRACE_MS = 1000

/** An error the agent answered: `code` is the agent's code string (any, not only AgentCodes). */
export class RemoteError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message.startsWith(code + ': ') ? message : `${code}: ${message}`)
    this.name = 'RemoteError'
    this.code = code
  }
}

export interface ControlClientOptions {
  /** Connect and hello timeout (default CONNECT_TIMEOUT_MS). */
  timeoutMs?: number
  /** Default timeout of call() (default CALL_TIMEOUT_MS; 0 or Infinity: none). */
  callTimeoutMs?: number
  /** Longest line accepted from the agent (default MAX_LINE_BYTES). */
  maxLineBytes?: number
  /** Aborts the connect. */
  signal?: AbortSignal
  /** Protocol trouble and exceptions thrown by event listeners. Default: ignored. */
  onWarning?: (message: string, err?: unknown) => void
}

export interface CallOptions {
  /** Default: the client's callTimeoutMs. 0, Infinity or over 2^31-1 ms: none. On expiry: CONTROL_TIMEOUT, and the request is cancelled on the agent. */
  timeoutMs?: number
  /** Abort: rejects with the signal's reason and cancels the request on the agent. */
  signal?: AbortSignal
}

export type EventListener = (event: string, data: unknown) => void

export interface Subscription {
  /** The event names listened to, or null for every event. */
  readonly events: readonly string[] | null
  /** Stop listening (updates the agent-side subscription). Idempotent. */
  close: () => Promise<void>
}

interface Pending {
  id: number
  line: Buffer
  resolve: (result: unknown) => void
  reject: (err: Error) => void
  /** Sent and counted against the in-flight limit until the agent answers (even if the caller gave up). */
  sent: boolean
  settled: boolean
  /** Internal fire-and-forget (cancel): not counted, not queued. */
  internal: boolean
  cleanup: () => void
}

interface Listener {
  filter: Set<string> | null
  fn: EventListener
}

export class ControlClient {
  /** The socket path connected to. */
  readonly path: string
  private readonly socket: net.Socket
  private readonly splitter: LineSplitter
  private readonly callTimeoutMs: number
  private readonly warn: (message: string, err?: unknown) => void
  private readonly pending = new Map<number, Pending>()
  private readonly queue: Pending[] = []
  private readonly listeners = new Set<Listener>()
  private helloData: WireHello | null = null
  private helloWaiter: { resolve: () => void, reject: (err: Error) => void } | null = null
  private maxInFlight = MAX_IN_FLIGHT
  /** Longest request line: ours, or the agent's limit if smaller (a longer line would close the connection). */
  private sendLimit: number
  private counted = 0
  private nextId = 1
  private failure: Error | null = null
  private closed = false
  private closing: Promise<void> | null = null
  private readonly closedPromise: Promise<void>

  /** Connect to the agent of `stateDir`; NOT_RUNNING when none listens. */
  static async connect (stateDir: string, opts: ControlClientOptions = {}): Promise<ControlClient> {
    const dir = resolve(stateDir)
    const path = await locateSocket(dir)
    const timeoutMs = opts.timeoutMs ?? CONNECT_TIMEOUT_MS
    opts.signal?.throwIfAborted()
    const socket = net.connect(path)
    const client = new ControlClient(socket, dir, path, opts)
    let timer: NodeJS.Timeout | undefined
    const onAbort = (): void => { client.destroy(opts.signal?.reason instanceof Error ? opts.signal.reason : new AgentError(AgentCodes.CLOSED, 'connect aborted')) }
    try {
      await new Promise<void>((resolve, reject) => {
        client.helloWaiter = { resolve, reject }
        timer = setTimeout(() => { client.destroy(new AgentError(AgentCodes.CONTROL_TIMEOUT, `no answer from the agent on ${path} within ${timeoutMs} ms`)) }, timeoutMs)
        opts.signal?.addEventListener('abort', onAbort, { once: true })
      })
      return client
    } catch (err) {
      client.destroy(err as Error)
      throw err
    } finally {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      client.helloWaiter = null
    }
  }

  private constructor (socket: net.Socket, stateDir: string, path: string, opts: ControlClientOptions) {
    this.socket = socket
    this.path = path
    this.splitter = new LineSplitter(opts.maxLineBytes ?? MAX_LINE_BYTES)
    this.sendLimit = this.splitter.maxLineBytes
    this.callTimeoutMs = opts.callTimeoutMs ?? CALL_TIMEOUT_MS
    this.warn = opts.onWarning ?? (() => {})
    this.closedPromise = new Promise(resolve => { socket.once('close', () => { resolve() }) })
    socket.on('error', err => {
      const code = (err as NodeJS.ErrnoException).code
      if (this.helloData !== null) this.failure ??= new AgentError(AgentCodes.CLOSED, `the control connection failed (${code ?? err.message})`)
      else if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTSOCK') this.failure ??= notRunning(stateDir, path)
      else if (code === 'EACCES' || code === 'EPERM') this.failure ??= new AgentError(AgentCodes.HOME_INVALID, `permission denied on the control socket ${path}`)
      else this.failure ??= new AgentError(AgentCodes.NOT_RUNNING, `cannot connect to the agent on ${path} (${code ?? err.message})`)
    })
    socket.on('data', (chunk: Buffer) => { this.onData(chunk) })
    socket.on('close', () => { this.onClose() })
  }

  /** The agent's `hello` (protocol, pid, limits, agent info). */
  get hello (): WireHello {
    if (this.helloData === null) throw new AgentError(AgentCodes.CLOSED, 'not connected')
    return this.helloData
  }

  get isClosed (): boolean {
    return this.closed
  }

  /** Resolves when the connection has ended (closed by us, by the agent, or lost). */
  async whenClosed (): Promise<void> {
    await this.closedPromise
  }

  /**
   * Call `method`; resolves to its result. Rejects with RemoteError (the agent's code and message),
   * AgentError CONTROL_TIMEOUT, CONTROL_TOO_LARGE (request or answer too long), CLOSED, or the signal's reason.
   */
  async call<T = unknown>(method: string, params: Params = {}, opts: CallOptions = {}): Promise<T> {
    if (this.closed || this.closing !== null) throw this.failure ?? new AgentError(AgentCodes.CLOSED, 'the control connection is closed')
    if (!NAME_PATTERN.test(method)) throw new AgentError(AgentCodes.BAD_PARAMS, `invalid method name ${JSON.stringify(method)}`)
    if (!isObject(params)) throw new AgentError(AgentCodes.BAD_PARAMS, 'params must be an object')
    opts.signal?.throwIfAborted()
    const id = this.nextId++
    const line = encodeLine({ v: CONTROL_VERSION, id, method, params }, this.sendLimit)
    const timeoutMs = opts.timeoutMs ?? this.callTimeoutMs
    return await new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const giveUp = (err: Error): void => {
        if (p.settled) return
        p.settled = true
        p.cleanup()
        if (p.sent) this.cancel(id)
        else {
          const i = this.queue.indexOf(p)
          if (i >= 0) this.queue.splice(i, 1)
          this.pending.delete(id)
        }
        reject(err)
      }
      const onAbort = (): void => { giveUp(opts.signal?.reason instanceof Error ? opts.signal.reason : new AgentError(AgentCodes.CLOSED, `${method} aborted`)) }
      const p: Pending = {
        id,
        line,
        sent: false,
        settled: false,
        internal: false,
        resolve: result => { if (!p.settled) { p.settled = true; p.cleanup(); resolve(result as T) } },
        reject: err => { if (!p.settled) { p.settled = true; p.cleanup(); reject(err) } },
        cleanup: () => { clearTimeout(timer); opts.signal?.removeEventListener('abort', onAbort) }
      }
      if (timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS) {
        timer = setTimeout(() => { giveUp(new AgentError(AgentCodes.CONTROL_TIMEOUT, `${method} got no answer within ${timeoutMs} ms`)) }, timeoutMs)
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      this.pending.set(id, p)
      this.queue.push(p)
      this.pump()
    })
  }

  /**
   * Listen to `events` (null or undefined: every event). The `dropped` event (`{count}`: events the
   * agent dropped because this connection read too slowly) reaches every listener.
   */
  async subscribe (events: readonly string[] | null | undefined, onEvent: EventListener): Promise<Subscription> {
    const names = events === null || events === undefined ? null : [...events]
    if (names !== null && !names.every(e => typeof e === 'string' && NAME_PATTERN.test(e))) throw new AgentError(AgentCodes.BAD_PARAMS, 'invalid event name')
    const listener: Listener = { filter: names === null ? null : new Set(names), fn: onEvent }
    this.listeners.add(listener)
    try {
      await this.syncSubscription()
    } catch (err) {
      this.listeners.delete(listener)
      throw err
    }
    return {
      events: names,
      close: async () => {
        if (!this.listeners.delete(listener) || this.closed || this.closing !== null) return
        await this.syncSubscription()
      }
    }
  }

  /** End the connection; calls still waiting reject with CLOSED. Idempotent. */
  close (): Promise<void> {
    this.closing ??= (async () => {
      this.failAll(new AgentError(AgentCodes.CLOSED, 'the control client was closed'))
      // A full close (not a half-close): the agent sees EOF and aborts what this client left running.
      if (this.socket.writableLength === 0) this.socket.destroy()
      else this.socket.destroySoon()
      const timer = setTimeout(() => { this.socket.destroy() }, CLIENT_CLOSE_GRACE_MS)
      await this.closedPromise
      clearTimeout(timer)
    })()
    return this.closing
  }

  // ---- internals ---------------------------------------------------------------------------------

  /** Tell the agent which events this connection wants: the union of the listeners' filters. */
  private async syncSubscription (): Promise<void> {
    if (this.listeners.size === 0) {
      await this.call(ControlMethods.UNSUBSCRIBE)
      return
    }
    let all = false
    const names = new Set<string>()
    for (const l of this.listeners) {
      if (l.filter === null) all = true
      else for (const n of l.filter) names.add(n)
    }
    await this.call(ControlMethods.SUBSCRIBE, all ? {} : { events: [...names].sort() })
  }

  private pump (): void {
    while (this.queue.length > 0 && this.counted < this.maxInFlight && this.helloData !== null && !this.closed) {
      const p = this.queue.shift() as Pending
      p.sent = true
      this.counted++
      this.socket.write(p.line)
    }
  }

  /** Fire-and-forget `cancel` of request `id` (not counted, never queued). */
  private cancel (id: number): void {
    if (this.closed || this.closing !== null) return
    const cid = this.nextId++
    const noop = (): void => {}
    this.pending.set(cid, { id: cid, line: Buffer.alloc(0), sent: true, settled: false, internal: true, resolve: noop, reject: noop, cleanup: noop })
    this.socket.write(encodeLine({ v: CONTROL_VERSION, id: cid, method: ControlMethods.CANCEL, params: { id } }))
  }

  private onData (chunk: Buffer): void {
    if (this.closed) return
    try {
      this.splitter.push(chunk, line => {
        if (isBlank(line)) return true
        this.onMessage(decodeServerMessage(parseLine(line)))
        return !this.closed
      })
    } catch (err) {
      this.warn(`control: bad line from the agent: ${(err as Error).message}`)
      this.destroy(err as Error)
    }
  }

  private onMessage (msg: { kind: 'response', response: WireResponse } | { kind: 'event', event: WireEvent }): void {
    if (msg.kind === 'event') {
      this.onEvent(msg.event)
      return
    }
    const r = msg.response
    if (r.id === null) {
      // A connection-level refusal (busy, garbage, too large): the agent closes next.
      if (!r.ok) this.failure = new RemoteError(r.error.code, r.error.message)
      if (this.helloData === null && this.failure !== null) this.destroy(this.failure)
      return
    }
    const p = this.pending.get(r.id)
    if (p === undefined) {
      this.warn(`control: answer to unknown request ${r.id}`)
      return
    }
    this.pending.delete(r.id)
    if (!p.internal) this.counted--
    if (r.ok) p.resolve(r.result)
    else p.reject(new RemoteError(r.error.code, r.error.message))
    this.pump()
  }

  private onEvent (ev: WireEvent): void {
    if (ev.event === ControlEvents.HELLO) {
      const h = ev.data
      if (!isObject(h) || h.protocol !== CONTROL_VERSION) {
        this.destroy(new AgentError(AgentCodes.CONTROL_PROTOCOL, `the agent speaks protocol ${JSON.stringify(isObject(h) ? h.protocol : null)}, this client ${CONTROL_VERSION}`))
        return
      }
      this.helloData = h as WireHello
      if (isCount(h.maxInFlight)) this.maxInFlight = Math.min(h.maxInFlight, MAX_CLIENT_IN_FLIGHT)
      if (isCount(h.maxLineBytes)) this.sendLimit = Math.min(h.maxLineBytes, this.splitter.maxLineBytes)
      this.helloWaiter?.resolve()
      this.pump()
      return
    }
    for (const l of [...this.listeners]) {
      if (ev.event !== ControlEvents.DROPPED && l.filter !== null && !l.filter.has(ev.event)) continue
      try {
        l.fn(ev.event, ev.data)
      } catch (err) {
        this.warn(`control: a listener of ${ev.event} threw`, err)
      }
    }
  }

  private destroy (err: Error): void {
    this.failure ??= err
    this.helloWaiter?.reject(this.failure)
    this.helloWaiter = null
    this.socket.destroy()
  }

  private onClose (): void {
    this.closed = true
    const err = this.failure ?? new AgentError(AgentCodes.CLOSED, 'the agent closed the control connection')
    this.helloWaiter?.reject(err)
    this.helloWaiter = null
    this.failAll(err)
  }

  private failAll (err: Error): void {
    const all = [...this.pending.values()]
    this.pending.clear()
    this.queue.length = 0
    this.counted = 0
    for (const p of all) p.reject(err)
  }
}

/** Connect to the agent of a home (`--home` value, else $DUSTBOX_HOME, else the default home). */
export async function connectAgent (home?: string, opts?: ControlClientOptions): Promise<ControlClient> {
  return await ControlClient.connect(resolveHome(home), opts)
}

/** The socket path of the agent of `stateDir`: control.path if present, else `${stateDir}/control.sock`. */
export async function locateSocket (stateDir: string): Promise<string> {
  const dir = resolve(stateDir)
  const file = join(dir, CONTROL_PATH_FILE)
  let text: string | null = null
  try {
    const fh = await fsp.open(file, 'r')
    try {
      const buf = Buffer.alloc(MAX_CONTROL_PATH_FILE + 1)
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
      if (bytesRead > MAX_CONTROL_PATH_FILE) throw new AgentError(AgentCodes.HOME_INVALID, `${file} is longer than ${MAX_CONTROL_PATH_FILE} bytes`)
      text = buf.subarray(0, bytesRead).toString('utf8')
    } finally {
      await fh.close()
    }
  } catch (err) {
    if (err instanceof AgentError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new AgentError(AgentCodes.HOME_INVALID, `cannot read ${file}: ${code ?? (err as Error).message}`)
  }
  if (text !== null) {
    const path = text.replace(/\n$/, '')
    if (!isAbsolute(path) || !fitsSocketPath(path) || path.includes('\n')) throw new AgentError(AgentCodes.HOME_INVALID, `${file} does not hold a usable socket path`)
    return path
  }
  const path = join(dir, CONTROL_SOCKET_FILE)
  if (!fitsSocketPath(path)) throw notRunning(dir, path)
  return path
}

function isCount (x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0
}

function notRunning (stateDir: string, path: string): AgentError {
  return new AgentError(AgentCodes.NOT_RUNNING, `no agent is running on home ${stateDir} (nothing listens on ${path}); start the agent first`)
}
