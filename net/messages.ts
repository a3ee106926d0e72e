// Wire codecs of the block protocol (docs/protocol.md §5): every message inside the secure channel,
// encode and decode, nothing else. A frame's plaintext is `u8 type | u32be request id | body`.
// Decoding is strict: a short or over-long body, a count out of range or trailing bytes throw
// BAD_MESSAGE naming the message type; an unknown type decodes as `unknown` so the receiver can answer
// UNKNOWN_TYPE (forward compatibility) instead of closing.

import { NetError, NetCodes } from './errors.js'

export const MsgTypes = {
  HELLO: 0x01,
  PING: 0x02,
  PUT_SHARD: 0x03,
  GET_SHARD: 0x04,
  HAS: 0x05,
  DELETE: 0x06,
  LIST: 0x07,
  AUDIT: 0x08,
  SPACE: 0x09,
  GOODBYE: 0x0a,
  DEVICE: 0x0b,
  KEEP_POINTER: 0x0c,
  INTRODUCE: 0x0d,
  PUNCH: 0x0e,
  RELAY_OPEN: 0x0f,
  RELAY_ACCEPT: 0x10,
  RELAY_DATA: 0x11,
  RELAY_CLOSE: 0x12
} as const
export type MsgTypeName = keyof typeof MsgTypes
/** A reply has the request's type with this bit set; ERROR answers any request. */
export const REPLY_BIT = 0x80
export const ERROR_TYPE = 0xff

export const HEADER_BYTES = 5
export const SHARD_ID_BYTES = 32
export const NONCE_BYTES = 32
/** Limits every decoder enforces (docs/protocol.md §5.2). */
export const MAX_SHARD_BYTES = 4 * 1024 * 1024 + 4096
export const MAX_FRAME_BYTES = MAX_SHARD_BYTES + 4096
export const MAX_BATCH_IDS = 1024
export const MAX_LIST_LIMIT = 4096
export const MAX_AUDIT_ITEMS = 64
export const MAX_TEXT_BYTES = 256
export const MAX_AGENT_BYTES = 64
/** DEVICE request and reply bodies (opaque, between devices of one owner). */
export const MAX_DEVICE_BYTES = 4 * 1024 * 1024
/** KEEP_POINTER item (an owner's signed BEP 44 item: its bencoded form is at most 1000 bytes). */
export const MAX_KEEP_POINTER_BYTES = 1024

/** Bytes of one RELAY_DATA chunk (docs/reachability.md §5). */
export const MAX_RELAY_CHUNK = 64 * 1024
export const KEY_BYTES = 32
export const PUNCH_NONCE_BYTES = 8
/** An address on the wire: family (0 none, 4 IPv4) | IPv4 (4) | u16 port; always 7 bytes. */
export const ADDR_BYTES = 7

export const PutStatus = { STORED: 0, ALREADY_HELD: 1 } as const
export const AuditStatus = { OK: 0, MISSING: 1, BAD_RANGE: 2 } as const

export interface ObservedAddress { readonly host: string, readonly port: number }

export interface Hello { readonly agent: string, readonly utpPort: number, readonly tcpPort: number, readonly observed: ObservedAddress | null, readonly maxFrame: number, readonly maxRequests: number }
export interface AuditChallenge { readonly shard: Buffer, readonly nonce: Buffer, readonly offset: number, readonly length: number }
export interface AuditAnswer { readonly status: number, readonly proof: Buffer }
export interface ListEntry { readonly shard: Buffer, readonly size: number }
export interface Space { readonly donated: bigint, readonly used: bigint, readonly free: bigint, readonly quotaForYou: bigint, readonly usedByYou: bigint, readonly maxShard: number }

export type Request =
  | { kind: 'INTRODUCE', target: Buffer, targetAddr: ObservedAddress | null, self: ObservedAddress | null }
  | { kind: 'PUNCH', from: Buffer, addr: ObservedAddress, nonce: Buffer }
  | { kind: 'RELAY_OPEN', target: Buffer }
  | { kind: 'RELAY_ACCEPT', circuit: number, from: Buffer }
  | { kind: 'RELAY_DATA', circuit: number, data: Buffer }
  | { kind: 'RELAY_CLOSE', circuit: number }
  | { kind: 'PING', nonce: bigint }
  | { kind: 'PUT_SHARD', shard: Buffer, data: Buffer }
  | { kind: 'GET_SHARD', shard: Buffer }
  | { kind: 'HAS', shards: Buffer[] }
  | { kind: 'DELETE', shards: Buffer[] }
  | { kind: 'LIST', after: Buffer | null, limit: number }
  | { kind: 'AUDIT', challenges: AuditChallenge[] }
  | { kind: 'SPACE' }
  | { kind: 'DEVICE', body: Buffer }
  | { kind: 'KEEP_POINTER', item: Buffer }

export type Reply =
  | { kind: 'INTRODUCE', key: Buffer, addr: ObservedAddress, nonce: Buffer }
  | { kind: 'PUNCH' }
  | { kind: 'RELAY_OPEN', circuit: number }
  | { kind: 'RELAY_ACCEPT' }
  | { kind: 'RELAY_DATA' }
  | { kind: 'RELAY_CLOSE' }
  | { kind: 'PING', nonce: bigint }
  | { kind: 'PUT_SHARD', status: number, usedByYou: bigint, quotaForYou: bigint }
  | { kind: 'GET_SHARD', data: Buffer }
  | { kind: 'HAS', held: boolean[] }
  | { kind: 'DELETE', deleted: boolean[], usedByYou: bigint }
  | { kind: 'LIST', more: boolean, entries: ListEntry[] }
  | { kind: 'AUDIT', answers: AuditAnswer[] }
  | { kind: 'SPACE', space: Space }
  | { kind: 'DEVICE', body: Buffer }
  | { kind: 'KEEP_POINTER' }

export type Frame =
  | { dir: 'notice', kind: 'HELLO', hello: Hello }
  | { dir: 'notice', kind: 'GOODBYE', code: number, reason: string }
  | { dir: 'request', id: number, req: Request }
  | { dir: 'reply', id: number, reply: Reply }
  | { dir: 'error', id: number, code: number, text: string }
  | { dir: 'unknown', id: number, type: number }

const nameOf = new Map<number, MsgTypeName>(Object.entries(MsgTypes).map(([k, v]) => [v, k as MsgTypeName]))

// ---------------------------------------------------------------------------------------- writing

class Writer {
  buf: Buffer
  off = 0
  constructor (size: number) { this.buf = Buffer.allocUnsafe(size) }
  u8 (v: number): this { this.buf[this.off++] = v; return this }
  u16 (v: number): this { this.buf.writeUInt16BE(v, this.off); this.off += 2; return this }
  u32 (v: number): this { this.buf.writeUInt32BE(v, this.off); this.off += 4; return this }
  u64 (v: bigint): this { this.buf.writeBigUInt64BE(v, this.off); this.off += 8; return this }
  bytes (b: Uint8Array): this { this.buf.set(b, this.off); this.off += b.byteLength; return this }
  addr (a: ObservedAddress | null): this {
    const ip = a === null ? null : ipBytes(a.host)
    if (a !== null && (ip === null || !(a.port > 0 && a.port < 65536))) throw new NetError(NetCodes.BAD_MESSAGE, `${a.host}:${a.port} is not an IPv4 address and port`)
    return ip === null ? this.u8(0).u32(0).u16(0) : this.u8(4).bytes(ip.bytes).u16(a!.port)
  }
  done (): Buffer { return this.off === this.buf.length ? this.buf : this.buf.subarray(0, this.off) }
}

function header (type: number, id: number, bodyBytes: number): Writer {
  return new Writer(HEADER_BYTES + bodyBytes).u8(type).u32(id)
}

/** UTF-8 of `text`, cut to at most `max` bytes on a character boundary. */
export function utf8Capped (text: string, max: number): Buffer {
  const b = Buffer.from(text, 'utf8')
  if (b.byteLength <= max) return b
  // Cut on a character boundary.
  let end = max
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--
  return b.subarray(0, end)
}

function checkOpaque (what: string, b: Uint8Array, min: number, max: number): void {
  if (b.byteLength < min || b.byteLength > max) throw new NetError(b.byteLength > max ? NetCodes.TOO_LARGE : NetCodes.BAD_MESSAGE, `${what}: ${min} to ${max} bytes, not ${b.byteLength}`)
}

function checkKey (what: string, b: Uint8Array): void {
  if (b.byteLength !== KEY_BYTES) throw new NetError(NetCodes.BAD_MESSAGE, `${what}: a key is ${KEY_BYTES} bytes, not ${b.byteLength}`)
}

function checkIds (ids: Buffer[], what: string): void {
  if (ids.length < 1 || ids.length > MAX_BATCH_IDS) throw new NetError(NetCodes.BAD_MESSAGE, `${what}: 1 to ${MAX_BATCH_IDS} shard ids per message, not ${ids.length}`)
  for (const id of ids) if (id.byteLength !== SHARD_ID_BYTES) throw new NetError(NetCodes.BAD_MESSAGE, `${what}: a shard id is ${SHARD_ID_BYTES} bytes`)
}

function bitmap (bits: boolean[]): Buffer {
  const b = Buffer.alloc(Math.ceil(bits.length / 8))
  bits.forEach((v, i) => { if (v) b[i >> 3] |= 1 << (i & 7) })
  return b
}

function ipBytes (host: string): { family: number, bytes: Buffer } | null {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host)
  if (v4 !== null) {
    const parts = v4.slice(1).map(Number)
    if (parts.every(p => p <= 255)) return { family: 4, bytes: Buffer.from(parts) }
  }
  return null
}

export function encodeHello (h: Hello): Buffer {
  const agent = utf8Capped(h.agent, MAX_AGENT_BYTES)
  const ip = h.observed === null ? null : ipBytes(h.observed.host)
  const w = header(MsgTypes.HELLO, 0, 2 + agent.byteLength + 4 + 1 + (ip === null ? 0 : ip.bytes.byteLength + 2) + 6)
  w.u16(agent.byteLength).bytes(agent).u16(h.utpPort).u16(h.tcpPort)
  if (ip === null) w.u8(0)
  else w.u8(ip.family).bytes(ip.bytes).u16(h.observed!.port)
  return w.u32(h.maxFrame).u16(h.maxRequests).done()
}

export function encodeGoodbye (code: number, reason: string): Buffer {
  const text = utf8Capped(reason, MAX_TEXT_BYTES)
  return header(MsgTypes.GOODBYE, 0, 4 + text.byteLength).u16(code).u16(text.byteLength).bytes(text).done()
}

export function encodeError (id: number, code: number, text: string): Buffer {
  const t = utf8Capped(text, MAX_TEXT_BYTES)
  return header(ERROR_TYPE, id, 4 + t.byteLength).u16(code).u16(t.byteLength).bytes(t).done()
}

export function encodeRequest (id: number, r: Request): Buffer {
  if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) throw new RangeError('request id must be 1..2^32-1')
  const t = MsgTypes[r.kind]
  switch (r.kind) {
    case 'PING': return header(t, id, 8).u64(r.nonce).done()
    case 'PUT_SHARD':
      if (r.data.byteLength > MAX_SHARD_BYTES) throw new NetError(NetCodes.TOO_LARGE, `a shard is at most ${MAX_SHARD_BYTES} bytes, not ${r.data.byteLength}`)
      return header(t, id, SHARD_ID_BYTES + r.data.byteLength).bytes(r.shard).bytes(r.data).done()
    case 'GET_SHARD': return header(t, id, SHARD_ID_BYTES).bytes(r.shard).done()
    case 'HAS':
    case 'DELETE': {
      checkIds(r.shards, r.kind)
      const w = header(t, id, 2 + SHARD_ID_BYTES * r.shards.length).u16(r.shards.length)
      for (const s of r.shards) w.bytes(s)
      return w.done()
    }
    case 'LIST': {
      const w = header(t, id, 1 + (r.after === null ? 0 : SHARD_ID_BYTES) + 2)
      if (r.after === null) w.u8(0)
      else w.u8(1).bytes(r.after)
      return w.u16(r.limit).done()
    }
    case 'AUDIT': {
      const w = header(t, id, 2 + r.challenges.length * (SHARD_ID_BYTES + NONCE_BYTES + 8)).u16(r.challenges.length)
      for (const c of r.challenges) w.bytes(c.shard).bytes(c.nonce).u32(c.offset).u32(c.length)
      return w.done()
    }
    case 'SPACE': return header(t, id, 0).done()
    case 'DEVICE':
      checkOpaque('DEVICE request', r.body, 1, MAX_DEVICE_BYTES)
      return header(t, id, r.body.byteLength).bytes(r.body).done()
    case 'KEEP_POINTER':
      checkOpaque('KEEP_POINTER item', r.item, 1, MAX_KEEP_POINTER_BYTES)
      return header(t, id, r.item.byteLength).bytes(r.item).done()
    case 'INTRODUCE':
      checkKey('INTRODUCE target', r.target)
      return header(t, id, KEY_BYTES + 2 * ADDR_BYTES).bytes(r.target).addr(r.targetAddr).addr(r.self).done()
    case 'PUNCH':
      checkKey('PUNCH from', r.from)
      checkOpaque('PUNCH nonce', r.nonce, PUNCH_NONCE_BYTES, PUNCH_NONCE_BYTES)
      return header(t, id, KEY_BYTES + ADDR_BYTES + PUNCH_NONCE_BYTES).bytes(r.from).addr(r.addr).bytes(r.nonce).done()
    case 'RELAY_OPEN':
      checkKey('RELAY_OPEN target', r.target)
      return header(t, id, KEY_BYTES).bytes(r.target).done()
    case 'RELAY_ACCEPT':
      checkKey('RELAY_ACCEPT from', r.from)
      return header(t, id, 4 + KEY_BYTES).u32(r.circuit).bytes(r.from).done()
    case 'RELAY_DATA':
      checkOpaque('RELAY_DATA', r.data, 1, MAX_RELAY_CHUNK)
      return header(t, id, 4 + r.data.byteLength).u32(r.circuit).bytes(r.data).done()
    case 'RELAY_CLOSE': return header(t, id, 4).u32(r.circuit).done()
  }
}

export function encodeReply (id: number, r: Reply): Buffer {
  const t = MsgTypes[r.kind] | REPLY_BIT
  switch (r.kind) {
    case 'PING': return header(t, id, 8).u64(r.nonce).done()
    case 'PUT_SHARD': return header(t, id, 17).u8(r.status).u64(r.usedByYou).u64(r.quotaForYou).done()
    case 'GET_SHARD': return header(t, id, r.data.byteLength).bytes(r.data).done()
    case 'HAS': {
      const bm = bitmap(r.held)
      return header(t, id, 2 + bm.byteLength).u16(r.held.length).bytes(bm).done()
    }
    case 'DELETE': {
      const bm = bitmap(r.deleted)
      return header(t, id, 2 + bm.byteLength + 8).u16(r.deleted.length).bytes(bm).u64(r.usedByYou).done()
    }
    case 'LIST': {
      const w = header(t, id, 3 + r.entries.length * (SHARD_ID_BYTES + 4)).u8(r.more ? 1 : 0).u16(r.entries.length)
      for (const e of r.entries) w.bytes(e.shard).u32(e.size)
      return w.done()
    }
    case 'AUDIT': {
      const w = header(t, id, 2 + r.answers.length * 33).u16(r.answers.length)
      for (const a of r.answers) w.u8(a.status).bytes(a.proof)
      return w.done()
    }
    case 'SPACE': {
      const s = r.space
      return header(t, id, 44).u64(s.donated).u64(s.used).u64(s.free).u64(s.quotaForYou).u64(s.usedByYou).u32(s.maxShard).done()
    }
    case 'DEVICE':
      checkOpaque('DEVICE reply', r.body, 0, MAX_DEVICE_BYTES)
      return header(t, id, r.body.byteLength).bytes(r.body).done()
    case 'KEEP_POINTER': return header(t, id, 0).done()
    case 'INTRODUCE':
      checkKey('INTRODUCE reply key', r.key)
      checkOpaque('INTRODUCE nonce', r.nonce, PUNCH_NONCE_BYTES, PUNCH_NONCE_BYTES)
      return header(t, id, KEY_BYTES + ADDR_BYTES + PUNCH_NONCE_BYTES).bytes(r.key).addr(r.addr).bytes(r.nonce).done()
    case 'RELAY_OPEN': return header(t, id, 4).u32(r.circuit).done()
    case 'PUNCH':
    case 'RELAY_ACCEPT':
    case 'RELAY_DATA':
    case 'RELAY_CLOSE': return header(t, id, 0).done()
  }
}

// ---------------------------------------------------------------------------------------- reading

class Reader {
  off: number
  constructor (readonly buf: Buffer, start: number, readonly what: string) { this.off = start }
  fail (why: string): never { throw new NetError(NetCodes.BAD_MESSAGE, `${this.what}: ${why}`) }
  need (n: number, field: string): void { if (this.buf.length - this.off < n) this.fail(`truncated at ${field}`) }
  u8 (field: string): number { this.need(1, field); return this.buf[this.off++] }
  u16 (field: string): number { this.need(2, field); const v = this.buf.readUInt16BE(this.off); this.off += 2; return v }
  u32 (field: string): number { this.need(4, field); const v = this.buf.readUInt32BE(this.off); this.off += 4; return v }
  u64 (field: string): bigint { this.need(8, field); const v = this.buf.readBigUInt64BE(this.off); this.off += 8; return v }
  bytes (n: number, field: string): Buffer { this.need(n, field); const b = this.buf.subarray(this.off, this.off + n); this.off += n; return b }
  rest (): Buffer { const b = this.buf.subarray(this.off); this.off = this.buf.length; return b }
  text (max: number, field: string): string {
    const n = this.u16(field)
    if (n > max) this.fail(`${field} is ${n} bytes, more than ${max}`)
    const b = this.bytes(n, field)
    const s = b.toString('utf8')
    if (!Buffer.from(s, 'utf8').equals(b)) this.fail(`${field} is not valid UTF-8`)
    return s
  }
  count (min: number, max: number, field: string): number {
    const n = this.u16(field)
    if (n < min || n > max) this.fail(`${field} must be ${min} to ${max}, not ${n}`)
    return n
  }
  addr (field: string, required: boolean): ObservedAddress | null {
    const family = this.u8(`${field} family`)
    const ip = this.bytes(4, field)
    const port = this.u16(`${field} port`)
    if (family === 0 && !required && port === 0 && ip.every(x => x === 0)) return null
    if (family !== 4) this.fail(`${field} family ${family} is not ${required ? '' : '0 or '}4`)
    if (port === 0) this.fail(`${field} port 0`)
    return { host: Array.from(ip).join('.'), port }
  }
  end (): void { if (this.off !== this.buf.length) this.fail(`${this.buf.length - this.off} trailing bytes`) }
  ids (n: number, field: string): Buffer[] {
    const out: Buffer[] = []
    for (let i = 0; i < n; i++) out.push(this.bytes(SHARD_ID_BYTES, field))
    return out
  }
  bits (n: number, field: string): boolean[] {
    const bm = this.bytes(Math.ceil(n / 8), field)
    const out: boolean[] = []
    for (let i = 0; i < n; i++) out.push((bm[i >> 3] & (1 << (i & 7))) !== 0)
    // Bits past n must be zero, so a bitmap has one encoding.
    if (n % 8 !== 0 && (bm[bm.length - 1] >> (n % 8)) !== 0) this.fail(`${field} has bits set past its count`)
    return out
  }
}

/** Decode one frame's plaintext. Throws BAD_MESSAGE (never anything else) on malformed input. */
export function decodeFrame (buf: Buffer): Frame {
  if (buf.length < HEADER_BYTES) throw new NetError(NetCodes.BAD_MESSAGE, `frame of ${buf.length} bytes is shorter than its ${HEADER_BYTES}-byte header`)
  if (buf.length > MAX_FRAME_BYTES) throw new NetError(NetCodes.BAD_MESSAGE, `frame of ${buf.length} bytes is over the ${MAX_FRAME_BYTES}-byte limit`)
  const type = buf[0]
  const id = buf.readUInt32BE(1)
  if (type === ERROR_TYPE) {
    const r = new Reader(buf, HEADER_BYTES, 'ERROR')
    const code = r.u16('code')
    const text = r.text(MAX_TEXT_BYTES, 'text')
    r.end()
    return { dir: 'error', id, code, text }
  }
  const isReply = (type & REPLY_BIT) !== 0
  const name = nameOf.get(type & ~REPLY_BIT)
  if (name === undefined) return { dir: 'unknown', id, type }
  const r = new Reader(buf, HEADER_BYTES, isReply ? `${name} reply` : name)
  if (name === 'HELLO' || name === 'GOODBYE') {
    if (isReply) r.fail('has no reply form')
    if (id !== 0) r.fail(`request id must be 0, not ${id}`)
    if (name === 'GOODBYE') {
      const code = r.u16('code')
      const reason = r.text(MAX_TEXT_BYTES, 'reason')
      r.end()
      return { dir: 'notice', kind: 'GOODBYE', code, reason }
    }
    const agent = r.text(MAX_AGENT_BYTES, 'agent')
    const utpPort = r.u16('utp port')
    const tcpPort = r.u16('tcp port')
    const family = r.u8('observed family')
    let observed: ObservedAddress | null = null
    if (family === 4) {
      const ip = r.bytes(4, 'observed address')
      observed = { host: Array.from(ip).join('.'), port: r.u16('observed port') }
    } else if (family !== 0) r.fail(`observed family ${family} is not 0 or 4`)
    const maxFrame = r.u32('max frame')
    const maxRequests = r.u16('max requests')
    r.end()
    return { dir: 'notice', kind: 'HELLO', hello: { agent, utpPort, tcpPort, observed, maxFrame, maxRequests } }
  }
  if (id === 0) r.fail('request id 0 is reserved for notices')
  return isReply ? { dir: 'reply', id, reply: readReply(name, r) } : { dir: 'request', id, req: readRequest(name, r) }
}

/** The rest of the frame as an opaque body of min..max bytes. */
function opaque (r: Reader, min: number, max: number, field: string): Buffer {
  const b = r.rest()
  if (b.length < min || b.length > max) r.fail(`${field} of ${b.length} bytes is not ${min} to ${max} bytes`)
  return b
}

function readRequest (name: Exclude<MsgTypeName, 'HELLO' | 'GOODBYE'>, r: Reader): Request {
  let req: Request
  switch (name) {
    case 'PING': req = { kind: name, nonce: r.u64('nonce') }; break
    case 'PUT_SHARD': {
      const shard = r.bytes(SHARD_ID_BYTES, 'shard id')
      const data = r.rest()
      if (data.length > MAX_SHARD_BYTES) r.fail(`shard of ${data.length} bytes is over the ${MAX_SHARD_BYTES}-byte limit`)
      req = { kind: name, shard, data }
      break
    }
    case 'GET_SHARD': req = { kind: name, shard: r.bytes(SHARD_ID_BYTES, 'shard id') }; break
    case 'HAS':
    case 'DELETE': req = { kind: name, shards: r.ids(r.count(1, MAX_BATCH_IDS, 'id count'), 'shard id') }; break
    case 'LIST': {
      const flags = r.u8('flags')
      if (flags > 1) r.fail(`unknown flags ${flags}`)
      const after = flags === 1 ? r.bytes(SHARD_ID_BYTES, 'cursor') : null
      const limit = r.u16('limit')
      if (limit < 1 || limit > MAX_LIST_LIMIT) r.fail(`limit must be 1 to ${MAX_LIST_LIMIT}, not ${limit}`)
      req = { kind: name, after, limit }
      break
    }
    case 'AUDIT': {
      const n = r.count(1, MAX_AUDIT_ITEMS, 'challenge count')
      const challenges: AuditChallenge[] = []
      for (let i = 0; i < n; i++) challenges.push({ shard: r.bytes(SHARD_ID_BYTES, 'shard id'), nonce: r.bytes(NONCE_BYTES, 'nonce'), offset: r.u32('offset'), length: r.u32('length') })
      req = { kind: name, challenges }
      break
    }
    case 'SPACE': req = { kind: name }; break
    case 'DEVICE': req = { kind: name, body: opaque(r, 1, MAX_DEVICE_BYTES, 'body') }; break
    case 'KEEP_POINTER': req = { kind: name, item: opaque(r, 1, MAX_KEEP_POINTER_BYTES, 'item') }; break
    case 'INTRODUCE': req = { kind: name, target: r.bytes(KEY_BYTES, 'target'), targetAddr: r.addr('target address', false), self: r.addr('own address', false) }; break
    case 'PUNCH': req = { kind: name, from: r.bytes(KEY_BYTES, 'from'), addr: r.addr('address', true)!, nonce: r.bytes(PUNCH_NONCE_BYTES, 'nonce') }; break
    case 'RELAY_OPEN': req = { kind: name, target: r.bytes(KEY_BYTES, 'target') }; break
    case 'RELAY_ACCEPT': req = { kind: name, circuit: r.u32('circuit'), from: r.bytes(KEY_BYTES, 'from') }; break
    case 'RELAY_DATA': req = { kind: name, circuit: r.u32('circuit'), data: opaque(r, 1, MAX_RELAY_CHUNK, 'data') }; break
    case 'RELAY_CLOSE': req = { kind: name, circuit: r.u32('circuit') }; break
  }
  r.end()
  return req
}

function readReply (name: Exclude<MsgTypeName, 'HELLO' | 'GOODBYE'>, r: Reader): Reply {
  let reply: Reply
  switch (name) {
    case 'PING': reply = { kind: name, nonce: r.u64('nonce') }; break
    case 'PUT_SHARD': {
      const status = r.u8('status')
      if (status > 1) r.fail(`unknown status ${status}`)
      reply = { kind: name, status, usedByYou: r.u64('used by you'), quotaForYou: r.u64('quota for you') }
      break
    }
    case 'GET_SHARD': {
      const data = r.rest()
      if (data.length > MAX_SHARD_BYTES) r.fail(`shard of ${data.length} bytes is over the ${MAX_SHARD_BYTES}-byte limit`)
      reply = { kind: name, data }
      break
    }
    case 'HAS': { const n = r.count(1, MAX_BATCH_IDS, 'id count'); reply = { kind: name, held: r.bits(n, 'bitmap') }; break }
    case 'DELETE': { const n = r.count(1, MAX_BATCH_IDS, 'id count'); reply = { kind: name, deleted: r.bits(n, 'bitmap'), usedByYou: r.u64('used by you') }; break }
    case 'LIST': {
      const more = r.u8('more')
      if (more > 1) r.fail(`more must be 0 or 1, not ${more}`)
      const n = r.count(0, MAX_LIST_LIMIT, 'entry count')
      const entries: ListEntry[] = []
      for (let i = 0; i < n; i++) entries.push({ shard: r.bytes(SHARD_ID_BYTES, 'shard id'), size: r.u32('size') })
      reply = { kind: name, more: more === 1, entries }
      break
    }
    case 'AUDIT': {
      const n = r.count(1, MAX_AUDIT_ITEMS, 'answer count')
      const answers: AuditAnswer[] = []
      for (let i = 0; i < n; i++) {
        const status = r.u8('status')
        if (status > 2) r.fail(`unknown audit status ${status}`)
        answers.push({ status, proof: r.bytes(32, 'proof') })
      }
      reply = { kind: name, answers }
      break
    }
    case 'SPACE': reply = { kind: name, space: { donated: r.u64('donated'), used: r.u64('used'), free: r.u64('free'), quotaForYou: r.u64('quota for you'), usedByYou: r.u64('used by you'), maxShard: r.u32('max shard') } }; break
    case 'DEVICE': reply = { kind: name, body: opaque(r, 0, MAX_DEVICE_BYTES, 'body') }; break
    case 'KEEP_POINTER': reply = { kind: name }; break
    case 'INTRODUCE': reply = { kind: name, key: r.bytes(KEY_BYTES, 'key'), addr: r.addr('address', true)!, nonce: r.bytes(PUNCH_NONCE_BYTES, 'nonce') }; break
    case 'RELAY_OPEN': reply = { kind: name, circuit: r.u32('circuit') }; break
    case 'PUNCH':
    case 'RELAY_ACCEPT':
    case 'RELAY_DATA':
    case 'RELAY_CLOSE': reply = { kind: name }; break
  }
  r.end()
  return reply
}
