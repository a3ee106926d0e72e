// Wire format of the agent's control API (docs/agent-control.md): newline-delimited JSON over a unix
// socket. This file holds the wire types, the limits, the method and event names, the bounded line
// splitter and the encode/decode/validation of one line. No sockets here: control-server.ts and
// control-client.ts use it.

import { createHash } from 'node:crypto'
import { resolve } from 'node:path'
import { AgentError, AgentCodes } from './errors.js'

/** Protocol version carried in every line as `"v"`. */
export const CONTROL_VERSION = 1

/** Longest line either side accepts, in bytes of UTF-8, without the terminating `\n`. */
export const MAX_LINE_BYTES = 1024 * 1024
/** Connections the server serves at once; one more is refused with CONTROL_BUSY. */
export const MAX_CLIENTS = 64
/** Requests one connection may have running at once; one more is answered CONTROL_BUSY. */
export const MAX_IN_FLIGHT = 16
/** Bytes the server queues for one connection; past it, events for that connection are dropped. */
export const MAX_OUTGOING_BYTES = 4 * 1024 * 1024
/** Event names one `subscribe` may list. */
export const MAX_SUBSCRIBED_EVENTS = 64
/** Longest error message sent or accepted, in characters (longer ones are cut). */
export const MAX_ERROR_MESSAGE = 4096

/** Methods the server itself answers, and the agent's own (registered with ControlServer.handle). */
export const ControlMethods = {
  /** Built in: `{}` → `{}`. Liveness. */
  PING: 'ping',
  /** Built in: `{events?: string[]}` → `{events: string[] | null}`; null means every event. */
  SUBSCRIBE: 'subscribe',
  /** Built in: `{}` → `{}`; no more events on this connection. */
  UNSUBSCRIBE: 'unsubscribe',
  /** Built in: `{id}` → `{cancelled: boolean}`; aborts that request's signal on the server. */
  CANCEL: 'cancel',
  /** Agent: a summary of the agent's state. */
  STATUS: 'status',
  /** Agent: stop the agent (it answers first, then closes). */
  STOP: 'stop'
} as const

export type ControlMethod = (typeof ControlMethods)[keyof typeof ControlMethods]

/** Methods ControlServer answers itself; `handle()` refuses them. */
export const BUILTIN_METHODS: ReadonlySet<string> = new Set([ControlMethods.PING, ControlMethods.SUBSCRIBE, ControlMethods.UNSUBSCRIBE, ControlMethods.CANCEL])

/** Events the server itself sends; `publish()` refuses them. */
export const ControlEvents = {
  /** First line on every accepted connection. */
  HELLO: 'hello',
  /** Events were dropped because the connection read too slowly: `{count}`. */
  DROPPED: 'dropped'
} as const

export const RESERVED_EVENTS: ReadonlySet<string> = new Set(Object.values(ControlEvents))

/** Method and event names: lower-case start, then letters, digits, `.`, `_`, `-`; at most 64. */
export const NAME_PATTERN = /^[a-z][a-zA-Z0-9._-]{0,63}$/
/** Error codes on the wire: `CODE` of `CODE: text`. */
export const CODE_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/

export type Params = Record<string, unknown>

// ---- wire types ----------------------------------------------------------------------------------

export interface WireRequest {
  v: typeof CONTROL_VERSION
  id: number
  method: string
  params?: Params
}

export interface WireError {
  code: string
  message: string
}

export interface WireOk {
  v: typeof CONTROL_VERSION
  id: number
  ok: true
  result: unknown
}

export interface WireFail {
  v: typeof CONTROL_VERSION
  /** null when the request had no usable id (or the line was not a request at all). */
  id: number | null
  ok: false
  error: WireError
}

export type WireResponse = WireOk | WireFail

export interface WireEvent {
  v: typeof CONTROL_VERSION
  event: string
  data: unknown
}

/** Data of the `hello` event. */
export interface WireHello {
  protocol: number
  pid: number
  maxLineBytes: number
  maxInFlight: number
  /** Extra fields the agent chose to announce (ControlServerOptions.info). */
  [k: string]: unknown
}

/** Data of the `dropped` event. */
export interface WireDropped {
  count: number
}

// ---- framing -------------------------------------------------------------------------------------

/**
 * Cuts a byte stream into lines at `\n`, never holding more than `maxLineBytes` of an unfinished
 * line. `push()` hands each completed line to `onLine` (which returns false to stop reading this
 * chunk) and throws CONTROL_TOO_LARGE as soon as a line is known to be longer than the limit.
 */
export class LineSplitter {
  private parts: Buffer[] = []
  private size = 0

  constructor (readonly maxLineBytes = MAX_LINE_BYTES) {}

  push (chunk: Buffer, onLine: (line: Buffer) => boolean | undefined | void): void {
    let start = 0
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start)
      const end = nl < 0 ? chunk.length : nl
      if (this.size + end - start > this.maxLineBytes) {
        this.parts = []
        this.size = 0
        throw new AgentError(AgentCodes.CONTROL_TOO_LARGE, `line longer than ${this.maxLineBytes} bytes`)
      }
      const piece = chunk.subarray(start, end)
      if (nl < 0) {
        // Copy: a subarray would pin the whole chunk while the line waits for its end.
        this.parts.push(Buffer.from(piece))
        this.size += piece.length
        return
      }
      const line = this.size === 0 ? piece : Buffer.concat([...this.parts, piece])
      this.parts = []
      this.size = 0
      start = nl + 1
      if (onLine(line) === false) return
    }
  }

  /** Bytes of the unfinished line held. */
  get pending (): number { return this.size }
}

// ---- where the socket lives ----------------------------------------------------------------------

/** The socket's name in the state directory. */
export const CONTROL_SOCKET_FILE = 'control.sock'
/** Written in the state directory when the socket lives elsewhere: the socket's absolute path + `\n`. */
export const CONTROL_PATH_FILE = 'control.path'
/** Longest control.path file read, in bytes. */
export const MAX_CONTROL_PATH_FILE = 4096
/** Longest unix socket path, in bytes (sun_path less its NUL: 108 on Linux, 104 on the BSDs and macOS). */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103

export function fitsSocketPath (path: string): boolean {
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES && !path.includes('\0')
}

/** The socket's name in the fallback directory: `dustbox-` + 16 hex of SHA-256(absolute state dir) + `.sock`. */
export function fallbackSocketName (stateDir: string): string {
  return `dustbox-${createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 16)}.sock`
}

// ---- encode --------------------------------------------------------------------------------------

/**
 * One message as a line (JSON + `\n`). Throws CONTROL_TOO_LARGE past `maxLineBytes` and
 * CONTROL_PROTOCOL when the value cannot be written as JSON (cycles, BigInt).
 */
export function encodeLine (msg: WireRequest | WireResponse | WireEvent, maxLineBytes = MAX_LINE_BYTES): Buffer {
  let text: string
  try {
    text = JSON.stringify(msg)
  } catch (err) {
    throw new AgentError(AgentCodes.CONTROL_PROTOCOL, `message is not JSON-serialisable (${(err as Error).message})`)
  }
  const size = Buffer.byteLength(text)
  if (size > maxLineBytes) throw new AgentError(AgentCodes.CONTROL_TOO_LARGE, `message of ${size} bytes is longer than ${maxLineBytes}`)
  const buf = Buffer.allocUnsafe(size + 1)
  buf.write(text, 0, 'utf8')
  buf[size] = 0x0a
  return buf
}

export function okResponse (id: number, result: unknown): WireOk {
  return { v: CONTROL_VERSION, id, ok: true, result: result === undefined ? null : result }
}

export function failResponse (id: number | null, code: string, message: string): WireFail {
  return { v: CONTROL_VERSION, id, ok: false, error: { code, message: cut(message) } }
}

export function eventMessage (event: string, data: unknown): WireEvent {
  return { v: CONTROL_VERSION, event, data: data === undefined ? null : data }
}

/** The wire error of any thrown value: `code` + `CODE: text` errors pass, anything else is INTERNAL. */
export function wireError (err: unknown, internalText: string): WireError {
  const e = err as { code?: unknown, message?: unknown } | null
  if (e !== null && typeof e === 'object' && typeof e.code === 'string' && CODE_PATTERN.test(e.code) &&
      typeof e.message === 'string' && e.message.startsWith(e.code + ': ')) {
    return { code: e.code, message: cut(e.message) }
  }
  return { code: AgentCodes.INTERNAL, message: `${AgentCodes.INTERNAL}: ${internalText}` }
}

// ---- decode --------------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** True for a line of only JSON whitespace (ignored by both sides). */
export function isBlank (line: Buffer): boolean {
  for (const b of line) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false
  return true
}

/** Parse one line as JSON. Throws CONTROL_PROTOCOL for bad UTF-8 or bad JSON. */
export function parseLine (line: Buffer): unknown {
  let text: string
  try {
    text = utf8.decode(line)
  } catch {
    throw new AgentError(AgentCodes.CONTROL_PROTOCOL, 'line is not valid UTF-8')
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new AgentError(AgentCodes.CONTROL_PROTOCOL, 'line is not valid JSON')
  }
}

export type DecodedRequest =
  | { ok: true, request: WireRequest & { params: Params } }
  | { ok: false, id: number | null, error: WireError }

/** Validate a parsed line as a request. Never throws; a bad one comes back with the id if usable. */
export function decodeRequest (msg: unknown): DecodedRequest {
  if (!isObject(msg)) return bad(null, AgentCodes.CONTROL_PROTOCOL, 'a request must be a JSON object')
  const id = isId(msg.id) ? msg.id : null
  if (msg.v !== CONTROL_VERSION) return bad(id, AgentCodes.CONTROL_PROTOCOL, `unsupported protocol version ${short(msg.v)}; this agent speaks ${CONTROL_VERSION}`)
  if (id === null) return bad(null, AgentCodes.CONTROL_PROTOCOL, '"id" must be an integer from 0 to 2^53-1')
  if (typeof msg.method !== 'string' || !NAME_PATTERN.test(msg.method)) return bad(id, AgentCodes.CONTROL_PROTOCOL, '"method" must be a name like "status" (a-z first, then a-z A-Z 0-9 . _ -, at most 64)')
  const params = msg.params
  if (params !== undefined && params !== null && !isObject(params)) return bad(id, AgentCodes.BAD_PARAMS, `"params" of ${msg.method} must be an object`)
  return { ok: true, request: { v: CONTROL_VERSION, id, method: msg.method, params: (params ?? {}) as Params } }
}

export type ServerMessage = { kind: 'response', response: WireResponse } | { kind: 'event', event: WireEvent }

/** Validate a parsed line from the server. Throws CONTROL_PROTOCOL when it is neither a response nor an event. */
export function decodeServerMessage (msg: unknown): ServerMessage {
  if (!isObject(msg)) throw protocol('a server line must be a JSON object')
  if (msg.v !== CONTROL_VERSION) throw protocol(`unsupported protocol version ${short(msg.v)}; this client speaks ${CONTROL_VERSION}`)
  if (typeof msg.event === 'string') {
    if (!NAME_PATTERN.test(msg.event)) throw protocol('bad event name')
    return { kind: 'event', event: { v: CONTROL_VERSION, event: msg.event, data: msg.data ?? null } }
  }
  const id = msg.id === null ? null : isId(msg.id) ? msg.id : undefined
  if (id === undefined) throw protocol('response without a valid "id"')
  if (msg.ok === true) {
    if (id === null) throw protocol('success response without an id')
    return { kind: 'response', response: { v: CONTROL_VERSION, id, ok: true, result: msg.result ?? null } }
  }
  if (msg.ok === false && isObject(msg.error) && typeof msg.error.code === 'string' && CODE_PATTERN.test(msg.error.code) && typeof msg.error.message === 'string') {
    const { code } = msg.error
    const message = msg.error.message.startsWith(code + ': ') ? msg.error.message : `${code}: ${msg.error.message}`
    return { kind: 'response', response: failResponse(id, code, message) }
  }
  throw protocol('response is neither {"ok":true,"result"} nor {"ok":false,"error":{code,message}}')
}

/** `params.events` of subscribe: absent/null → every event; else 1..MAX_SUBSCRIBED_EVENTS names. */
export function decodeEventFilter (params: Params): string[] | null {
  const events = params.events
  if (events === undefined || events === null) return null
  if (!Array.isArray(events) || events.length > MAX_SUBSCRIBED_EVENTS || !events.every(e => typeof e === 'string' && NAME_PATTERN.test(e))) {
    throw new AgentError(AgentCodes.BAD_PARAMS, `"events" must be an array of at most ${MAX_SUBSCRIBED_EVENTS} event names`)
  }
  return [...new Set(events as string[])].sort()
}

/** `params.id` of cancel. */
export function decodeCancelId (params: Params): number {
  if (!isId(params.id)) throw new AgentError(AgentCodes.BAD_PARAMS, '"id" must be the id of a request of this connection')
  return params.id
}

export function isObject (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function isId (x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
}

function bad (id: number | null, code: string, text: string): DecodedRequest {
  return { ok: false, id, error: { code, message: `${code}: ${text}` } }
}

function protocol (text: string): AgentError {
  return new AgentError(AgentCodes.CONTROL_PROTOCOL, text)
}

function short (x: unknown): string {
  const s = JSON.stringify(x) ?? String(x)
  return s.length > 32 ? s.slice(0, 32) + '…' : s
}

function cut (message: string): string {
  return message.length > MAX_ERROR_MESSAGE ? message.slice(0, MAX_ERROR_MESSAGE - 1) + '…' : message
}
