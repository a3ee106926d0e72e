// The handshake over a raw byte stream (docs/protocol.md §3): three Noise XX messages, each framed as
// `u16be length || message`, carrying the protocol versions, capabilities and Ed25519 identities.
// Ends with both identities proven and the transport ciphers split, or a NetError saying why not:
// HANDSHAKE_FAILED (bad or replayed message, a static key that is not the claimed identity's, a
// device certificate that is invalid or not for the proven key), VERSION_MISMATCH, PEER_MISMATCH
// (dialed one id, answered by another), REFUSED, TIMEOUT, CLOSED. Payloads 2 and 3 may carry
// extensions after the reason (§3.1); extension 0x01 is a device certificate (device-cert.ts).

import { utf8Capped } from './messages.js'
import type { Duplex } from 'node:stream'
import { NetError, NetCodes } from './errors.js'
import { NoiseXX, x25519FromEd25519, x25519PublicFromEd25519, type NoiseResult, type X25519KeyPair } from './noise.js'
import { peerIdFromKey, shortId } from './peer-id.js'
import { verifyDeviceCert, MAX_CERT_BYTES } from './device-cert.js'

export const PROLOGUE = Buffer.from('dustbox/net', 'ascii')
export const MAGIC = Buffer.from('dbx', 'ascii')
/** Protocol versions this implementation speaks (docs/protocol.md §3.3). */
export const PROTOCOL_VERSION = 1
export const MIN_PROTOCOL_VERSION = 1
export const HANDSHAKE_TIMEOUT_MS = 10_000
export const MAX_HANDSHAKE_MESSAGE = 1024
/** At most this many bytes of reason text in payload 2 (cut on a character boundary). */
export const MAX_REASON_BYTES = 200
/** Extension types of payloads 2 and 3 (`u8 type | u16be len | bytes`, after the reason). */
export const HandshakeExt = {
  DEVICE_CERT: 0x01
} as const
/** Capability bits (u32), advertised in messages 2 and 3. */
export const Caps = {
  STORAGE: 1 << 0,
  RELAY: 1 << 1
} as const

export interface Identity {
  /** Ed25519 public key (32 bytes). */
  readonly publicKey: Uint8Array
  /** libsodium Ed25519 secret key (64 bytes: seed || public key). */
  readonly secretKey: Uint8Array
}

export interface HandshakeOptions {
  readonly identity: Identity
  /** X25519 form of the identity (computed once per node). */
  readonly staticKey?: X25519KeyPair
  readonly caps?: number
  readonly minVersion?: number
  readonly maxVersion?: number
  readonly timeoutMs?: number
  /** Initiator: the Ed25519 key the dialed node must have (PEER_MISMATCH otherwise). */
  readonly expectKey?: Uint8Array
  /** Description of the remote for messages (address). */
  readonly remoteLabel: string
  readonly signal?: AbortSignal
  /** Golden vectors only. */
  readonly ephemeral?: X25519KeyPair
  /** This device's certificate (device-cert.ts), sent in the payload this side sends. */
  readonly certificate?: Uint8Array
}

export interface HandshakeResult extends NoiseResult {
  readonly remoteKey: Buffer
  readonly remoteId: string
  readonly version: number
  readonly remoteCaps: number
  /** The remote's owner: the identity of its device certificate, or remoteKey when it sent none. */
  readonly remoteOwner: Buffer
  /** The remote's device certificate as received (verified), or null. */
  readonly remoteCert: Buffer | null
  /** Bytes that arrived after the last handshake message (the first encrypted frames). */
  readonly leftover: Buffer
}

// ------------------------------------------------------------------------------- payload codecs

export function encodePayload1 (minVersion: number, maxVersion: number): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([minVersion, maxVersion])])
}

export function decodePayload1 (p: Buffer, from: string): { min: number, max: number } {
  if (p.length < 5 || !p.subarray(0, 3).equals(MAGIC)) throw new NetError(NetCodes.HANDSHAKE_FAILED, `${from} is not a dustbox peer (no protocol magic in its first message)`)
  const min = p[3]
  const max = p[4]
  if (min < 1 || min > max) throw new NetError(NetCodes.HANDSHAKE_FAILED, `${from} offered an invalid version range ${min}..${max}`)
  return { min, max }
}

export interface Payload23 {
  readonly version: number
  readonly caps: number
  readonly edKey: Buffer
  readonly reason: string
  /** Extension 0x01, if present (not yet verified). */
  readonly cert: Buffer | null
}

/**
 * `u8 version | u32be caps | ed25519_pk (32) | u16be reason_len | reason | extensions`, where each
 * extension is `u8 type | u16be len | bytes` (a device certificate: type 0x01).
 */
export function encodePayload23 (version: number, caps: number, edKey: Uint8Array, reason = '', cert?: Uint8Array): Buffer {
  const r = utf8Capped(reason, MAX_REASON_BYTES)
  const ext = cert === undefined ? 0 : 3 + cert.byteLength
  if (cert !== undefined && cert.byteLength > MAX_CERT_BYTES) throw new NetError(NetCodes.CONFIG_INVALID, `a device certificate is at most ${MAX_CERT_BYTES} bytes, not ${cert.byteLength}`)
  const b = Buffer.alloc(1 + 4 + 32 + 2 + r.length + ext)
  b[0] = version
  b.writeUInt32BE(caps >>> 0, 1)
  b.set(edKey, 5)
  b.writeUInt16BE(r.length, 37)
  r.copy(b, 39)
  if (cert !== undefined) {
    const o = 39 + r.length
    b[o] = HandshakeExt.DEVICE_CERT
    b.writeUInt16BE(cert.byteLength, o + 1)
    b.set(cert, o + 3)
  }
  return b
}

/**
 * Decode payload 2 or 3. The extension list must be well formed (each length within the payload)
 * and name the device certificate at most once; unknown extension types are skipped.
 */
export function decodePayload23 (p: Buffer, from: string): Payload23 {
  if (p.length < 39) throw new NetError(NetCodes.HANDSHAKE_FAILED, `${from}: handshake payload of ${p.length} bytes is too short`)
  const n = p.readUInt16BE(37)
  if (p.length < 39 + n) throw new NetError(NetCodes.HANDSHAKE_FAILED, `${from}: handshake payload is truncated`)
  let cert: Buffer | null = null
  let o = 39 + n
  while (o < p.length) {
    if (p.length - o < 3) throw new NetError(NetCodes.HANDSHAKE_FAILED, `${from}: handshake extension header is truncated`)
    const type = p[o]
    const len = p.readUInt16BE(o + 1)
    if (p.length - o - 3 < len) throw new NetError(NetCodes.HANDSHAKE_FAILED, `${from}: handshake extension 0x${type.toString(16).padStart(2, '0')} is truncated`)
    const body = p.subarray(o + 3, o + 3 + len)
    if (type === HandshakeExt.DEVICE_CERT) {
      if (cert !== null) throw new NetError(NetCodes.HANDSHAKE_FAILED, `${from} sent two device certificates`)
      cert = Buffer.from(body)
    }
    o += 3 + len
  }
  return { version: p[0], caps: p.readUInt32BE(1), edKey: Buffer.from(p.subarray(5, 37)), reason: p.subarray(39, 39 + n).toString('utf8').replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?'), cert }
}

/** Verify the remote's certificate (if any) against its proven key: its owner, and the cert. */
function checkCert (p: Payload23, opts: HandshakeOptions): { remoteOwner: Buffer, remoteCert: Buffer | null } {
  if (p.cert === null) return { remoteOwner: p.edKey, remoteCert: null }
  const cert = verifyDeviceCert(p.cert, p.edKey, `${opts.remoteLabel} (${shortIdSafe(p.edKey)})`)
  return { remoteOwner: Buffer.from(cert.identity), remoteCert: cert.raw }
}

function frame (msg: Buffer): Buffer {
  const b = Buffer.allocUnsafe(2 + msg.length)
  b.writeUInt16BE(msg.length, 0)
  msg.copy(b, 2)
  return b
}

// ------------------------------------------------------------------------------------ stream I/O

/** Reads u16-framed handshake messages from a stream, with a deadline and a size cap. */
class MessageReader {
  private buf: Buffer = Buffer.alloc(0)
  private waiter: (() => void) | null = null
  private error: NetError | null = null
  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    // A peer that floods during the handshake: more than the three messages could ever be.
    if (this.buf.length > 8 * MAX_HANDSHAKE_MESSAGE + 16 * 1024 * 1024) this.fail(new NetError(NetCodes.HANDSHAKE_FAILED, `${this.label} sent too much data during the handshake`))
    this.wake()
  }

  private readonly onEnd = (): void => this.fail(new NetError(NetCodes.CLOSED, `${this.label} closed the connection during the handshake`))
  private readonly onError = (err: Error): void => this.fail(new NetError(NetCodes.CLOSED, `${this.label}: connection failed during the handshake: ${err.message}`, { cause: err }))

  constructor (private readonly stream: Duplex, private readonly label: string) {
    stream.on('data', this.onData)
    stream.on('end', this.onEnd)
    stream.on('close', this.onEnd)
    stream.on('error', this.onError)
  }

  fail (err: NetError): void {
    if (this.error === null) this.error = err
    this.wake()
  }

  private wake (): void {
    const w = this.waiter
    this.waiter = null
    w?.()
  }

  async next (): Promise<Buffer> {
    for (;;) {
      if (this.buf.length >= 2) {
        const n = this.buf.readUInt16BE(0)
        if (n > MAX_HANDSHAKE_MESSAGE) throw new NetError(NetCodes.HANDSHAKE_FAILED, `${this.label} sent a ${n}-byte handshake message (at most ${MAX_HANDSHAKE_MESSAGE})`)
        if (this.buf.length >= 2 + n) {
          const m = Buffer.from(this.buf.subarray(2, 2 + n))
          this.buf = this.buf.subarray(2 + n)
          return m
        }
      }
      if (this.error !== null) throw this.error
      await new Promise<void>(resolve => { this.waiter = resolve })
    }
  }

  /** Detach from the stream and hand over whatever arrived after the last message. */
  detach (): Buffer {
    this.stream.off('data', this.onData)
    this.stream.off('end', this.onEnd)
    this.stream.off('close', this.onEnd)
    this.stream.off('error', this.onError)
    return this.buf
  }
}

async function withDeadline<T> (reader: MessageReader, opts: HandshakeOptions, run: () => Promise<T>): Promise<T> {
  const ms = opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS
  const timer = setTimeout(() => reader.fail(new NetError(NetCodes.TIMEOUT, `${opts.remoteLabel}: handshake did not finish within ${ms} ms`)), ms)
  const onAbort = (): void => reader.fail(new NetError(NetCodes.ABORTED, `${opts.remoteLabel}: handshake aborted`))
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  if (opts.signal?.aborted === true) onAbort()
  try {
    return await run()
  } finally {
    clearTimeout(timer)
    opts.signal?.removeEventListener('abort', onAbort)
  }
}

function checkIdentity (noise: NoiseXX, edKey: Buffer, opts: HandshakeOptions): void {
  const x = x25519PublicFromEd25519(edKey)
  if (x === null || noise.remoteStatic === null || !x.equals(noise.remoteStatic)) {
    throw new NetError(NetCodes.HANDSHAKE_FAILED, `${opts.remoteLabel} claims identity ${shortIdSafe(edKey)} but its handshake key is not that identity's`)
  }
  if (Buffer.compare(edKey, Buffer.from(opts.identity.publicKey)) === 0) throw new NetError(NetCodes.REFUSED, `${opts.remoteLabel} is this node itself`)
}

function shortIdSafe (key: Uint8Array): string {
  try { return shortId(key) } catch { return '(invalid key)' }
}

function write (stream: Duplex, msg: Buffer): void {
  if (!stream.destroyed) stream.write(frame(msg))
}

interface Side {
  readonly noise: NoiseXX
  readonly reader: MessageReader
  readonly minV: number
  readonly maxV: number
}

/** Set up one side (Noise state, message reader, version range) and run `steps` within the deadline. */
async function run (stream: Duplex, opts: HandshakeOptions, initiator: boolean, steps: (side: Side) => Promise<HandshakeResult>): Promise<HandshakeResult> {
  const s = opts.staticKey ?? x25519FromEd25519(opts.identity)
  const side: Side = {
    noise: new NoiseXX(initiator, s, PROLOGUE, opts.ephemeral),
    reader: new MessageReader(stream, opts.remoteLabel),
    minV: opts.minVersion ?? MIN_PROTOCOL_VERSION,
    maxV: opts.maxVersion ?? PROTOCOL_VERSION
  }
  try {
    return await withDeadline(side.reader, opts, async () => await steps(side))
  } catch (err) {
    side.reader.detach()
    throw err
  }
}

/** Run the initiator side over `stream`. */
export async function initiate (stream: Duplex, opts: HandshakeOptions): Promise<HandshakeResult> {
  return await run(stream, opts, true, async ({ noise, reader, minV, maxV }) => {
    write(stream, noise.writeMessage(encodePayload1(minV, maxV)))
    const p2 = decodePayload23(noise.readMessage(await reader.next()), opts.remoteLabel)
    if (p2.version === 0) throw new NetError(NetCodes.VERSION_MISMATCH, `${opts.remoteLabel} (${shortIdSafe(p2.edKey)}) refused: ${p2.reason || 'no common protocol version'}`)
    if (p2.version < minV || p2.version > maxV) throw new NetError(NetCodes.VERSION_MISMATCH, `${opts.remoteLabel} chose protocol version ${p2.version}, outside ${minV}..${maxV}`)
    checkIdentity(noise, p2.edKey, opts)
    if (opts.expectKey !== undefined && !p2.edKey.equals(Buffer.from(opts.expectKey))) {
      throw new NetError(NetCodes.PEER_MISMATCH, `dialed ${shortIdSafe(opts.expectKey)} at ${opts.remoteLabel}, but the node there is ${peerIdFromKey(p2.edKey)}`)
    }
    const owner = checkCert(p2, opts)
    write(stream, noise.writeMessage(encodePayload23(p2.version, opts.caps ?? 0, opts.identity.publicKey, '', opts.certificate)))
    return { ...noise.split(), remoteKey: p2.edKey, remoteId: peerIdFromKey(p2.edKey), version: p2.version, remoteCaps: p2.caps, ...owner, leftover: reader.detach() }
  })
}

/** Run the responder side over `stream`. */
export async function respond (stream: Duplex, opts: HandshakeOptions): Promise<HandshakeResult> {
  return await run(stream, opts, false, async ({ noise, reader, minV, maxV }) => {
    const p1 = decodePayload1(noise.readMessage(await reader.next()), opts.remoteLabel)
    const version = Math.min(p1.max, maxV)
    if (version < Math.max(p1.min, minV)) {
      const reason = `no common protocol version: it offered ${p1.min}..${p1.max}, this node speaks ${minV}..${maxV}`
      write(stream, noise.writeMessage(encodePayload23(0, 0, opts.identity.publicKey, reason)))
      throw new NetError(NetCodes.VERSION_MISMATCH, `${opts.remoteLabel}: ${reason}`)
    }
    write(stream, noise.writeMessage(encodePayload23(version, opts.caps ?? 0, opts.identity.publicKey, '', opts.certificate)))
    const p3 = decodePayload23(noise.readMessage(await reader.next()), opts.remoteLabel)
    if (p3.version !== version) throw new NetError(NetCodes.VERSION_MISMATCH, `${opts.remoteLabel} answered with protocol version ${p3.version}, not the chosen ${version}`)
    checkIdentity(noise, p3.edKey, opts)
    const owner = checkCert(p3, opts)
    return { ...noise.split(), remoteKey: p3.edKey, remoteId: peerIdFromKey(p3.edKey), version, remoteCaps: p3.caps, ...owner, leftover: reader.detach() }
  })
}
