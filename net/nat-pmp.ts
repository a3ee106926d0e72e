// PCP (RFC 6887) and NAT-PMP (RFC 6886) clients: ask the default gateway on UDP 5351 to map a port,
// renew the mapping (the same request again) and delete it (lifetime 0) (docs/reachability.md §3).
// Our own code, not a library's: the two protocols are small fixed binary layouts, and the clients of
// both candidate libraries read the router's answer without checking its length (a short datagram
// throws out of a socket callback and ends the process). Here each exchange uses its own socket,
// connected to gateway:5351 so the kernel drops datagrams from anyone else; every answer is checked
// (length, version, opcode, nonce, ports) before it counts, anything else is ignored; requests are
// retransmitted a bounded number of times with doubling waits; an AbortSignal stops everything.

import { createSocket } from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { isIPv4 } from 'node:net'
import { NetError, NetCodes } from './errors.js'

export const PMP_SERVER_PORT = 5351
/** First wait for an answer, doubled after each retransmission (RFC 6886 §3.1 starts at 250 ms). */
export const PMP_FIRST_WAIT_MS = 250
/** Requests sent before giving up: 3 is 250 + 500 + 1000 ms of waiting (the RFCs allow more). */
export const PMP_ATTEMPTS = 3
/** Largest answer looked at (PCP messages are at most 1100 bytes). */
export const PMP_MAX_ANSWER_BYTES = 1100

export type PmpMethod = 'pcp' | 'nat-pmp'
export type PmpProtocol = 'udp' | 'tcp'

export interface PmpMapping {
  readonly method: PmpMethod
  readonly protocol: PmpProtocol
  readonly internalPort: number
  readonly externalPort: number
  /** The router's external IPv4 address (PCP: from the answer; NAT-PMP: asked separately). */
  readonly externalHost: string
  /** Seconds the router grants (0 after a delete). */
  readonly lifetime: number
  /** The router's epoch (seconds since its mappings were last lost). */
  readonly epoch: number
  /** PCP: the mapping nonce, needed to renew or delete the mapping. */
  readonly nonce?: Buffer
}

export interface PmpRequestOptions {
  /** IPv4 of the default gateway. */
  readonly gateway: string
  /** Local address to send from (the one the node is bound to); default: the one facing the gateway. */
  readonly localAddress?: string | null
  readonly firstWaitMs?: number
  readonly attempts?: number
  readonly signal?: AbortSignal
}

const PMP_RESULTS: Record<number, string> = {
  1: 'unsupported version',
  2: 'not authorized or refused (NAT-PMP may be disabled)',
  3: 'network failure',
  4: 'out of resources',
  5: 'unsupported opcode'
}

const PCP_RESULTS: Record<number, string> = {
  1: 'UNSUPP_VERSION',
  2: 'NOT_AUTHORIZED',
  3: 'MALFORMED_REQUEST',
  4: 'UNSUPP_OPCODE',
  5: 'UNSUPP_OPTION',
  6: 'MALFORMED_OPTION',
  7: 'NETWORK_FAILURE',
  8: 'NO_RESOURCES',
  9: 'UNSUPP_PROTOCOL',
  10: 'USER_EX_QUOTA',
  11: 'CANNOT_PROVIDE_EXTERNAL',
  12: 'ADDRESS_MISMATCH',
  13: 'EXCESSIVE_REMOTE_PEERS'
}

/** An answer that counts: a value, or the router's refusal. Null: not an answer to this request. */
type Parsed<T> = { readonly ok: T } | { readonly refused: string } | null

/**
 * Send `build(localAddress)` to gateway:5351 and wait for an answer `parse` accepts, retransmitting.
 * Rejects with TIMEOUT (no answer), CONNECT_FAILED (network or ICMP error), REFUSED, ABORTED.
 */
async function exchange<T> (what: string, o: PmpRequestOptions, build: (local: string) => Buffer, parse: (msg: Buffer) => Parsed<T>): Promise<T> {
  if (!isIPv4(o.gateway)) throw new NetError(NetCodes.CONFIG_INVALID, `${what}: gateway ${JSON.stringify(o.gateway)} is not an IPv4 address`)
  const firstWait = Math.max(1, o.firstWaitMs ?? PMP_FIRST_WAIT_MS)
  const attempts = Math.max(1, Math.min(9, o.attempts ?? PMP_ATTEMPTS))
  return await new Promise<T>((resolve, reject) => {
    const socket = createSocket({ type: 'udp4' })
    let timer: NodeJS.Timeout | null = null
    let done = false
    let sent = 0
    const finish = (err: NetError | null, value?: T): void => {
      if (done) return
      done = true
      if (timer !== null) clearTimeout(timer)
      o.signal?.removeEventListener('abort', onAbort)
      try { socket.close() } catch { /* already closed */ }
      if (err !== null) reject(err); else resolve(value as T)
    }
    const onAbort = (): void => { finish(new NetError(NetCodes.ABORTED, `${what}: aborted`)) }
    if (o.signal?.aborted === true) { onAbort(); return }
    o.signal?.addEventListener('abort', onAbort, { once: true })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      finish(new NetError(NetCodes.CONNECT_FAILED, `${what}: gateway ${o.gateway}:${PMP_SERVER_PORT}: ${err.code ?? err.message}`))
    })
    socket.on('message', (msg: Buffer) => {
      if (done || msg.length > PMP_MAX_ANSWER_BYTES) return
      let r: Parsed<T>
      try { r = parse(msg) } catch { r = null }
      if (r === null) return
      if ('refused' in r) finish(new NetError(NetCodes.REFUSED, `${what}: gateway ${o.gateway} refused: ${r.refused}`))
      else finish(null, r.ok)
    })
    let request: Buffer | null = null
    const send = (): void => {
      if (done || request === null) return
      if (sent >= attempts) { finish(new NetError(NetCodes.TIMEOUT, `${what}: no answer from ${o.gateway}:${PMP_SERVER_PORT} after ${attempts} tries`)); return }
      const wait = firstWait * 2 ** sent
      sent++
      try {
        socket.send(request, err => { if (err != null) finish(new NetError(NetCodes.CONNECT_FAILED, `${what}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)) })
      } catch (err) {
        finish(new NetError(NetCodes.CONNECT_FAILED, `${what}: ${(err as Error).message}`))
        return
      }
      timer = setTimeout(send, wait)
      timer.unref()
    }
    const connect = (): void => {
      socket.connect(PMP_SERVER_PORT, o.gateway, () => {
        if (done) return
        try {
          request = build(socket.address().address)
        } catch (err) {
          finish(err instanceof NetError ? err : new NetError(NetCodes.INTERNAL, `${what}: ${(err as Error).message}`))
          return
        }
        send()
      })
    }
    try {
      if (o.localAddress != null && o.localAddress !== '') socket.bind({ address: o.localAddress, port: 0 }, connect)
      else connect()
    } catch (err) {
      finish(new NetError(NetCodes.CONNECT_FAILED, `${what}: ${(err as Error).message}`))
    }
  })
}

function checkPort (what: string, port: number, zeroOk = false): void {
  if (!Number.isInteger(port) || port < (zeroOk ? 0 : 1) || port > 65535) throw new NetError(NetCodes.CONFIG_INVALID, `${what}: port ${port} is not 1-65535`)
}

// ---- NAT-PMP (RFC 6886) -------------------------------------------------------------------------

const PMP_OP: Record<PmpProtocol, number> = { udp: 1, tcp: 2 }

/** NAT-PMP: the gateway's external IPv4 address (opcode 0). */
export async function pmpExternalAddress (o: PmpRequestOptions): Promise<{ host: string, epoch: number }> {
  return await exchange<{ host: string, epoch: number }>('NAT-PMP external address', o, () => Buffer.from([0, 0]), msg => {
    if (msg.length < 12 || msg[0] !== 0 || msg[1] !== 128) return null
    const result = msg.readUInt16BE(2)
    if (result !== 0) return { refused: `${PMP_RESULTS[result] ?? 'error'} (result ${result})` }
    const host = `${msg[8]}.${msg[9]}.${msg[10]}.${msg[11]}`
    return { ok: { host, epoch: msg.readUInt32BE(4) } }
  })
}

/** NAT-PMP: map (or renew, or with lifetime 0 delete) internalPort; the answer says the external port. */
export async function pmpMap (o: PmpRequestOptions & { protocol: PmpProtocol, internalPort: number, externalPort: number, lifetime: number }): Promise<Omit<PmpMapping, 'externalHost'>> {
  const op = PMP_OP[o.protocol]
  checkPort('NAT-PMP', o.internalPort)
  checkPort('NAT-PMP', o.externalPort, true)
  const lifetime = Math.max(0, Math.min(0xffffffff, Math.floor(o.lifetime)))
  const what = `NAT-PMP ${lifetime === 0 ? 'delete' : 'map'} ${o.protocol} ${o.internalPort}`
  return await exchange<Omit<PmpMapping, 'externalHost'>>(what, o, () => {
    const b = Buffer.alloc(12)
    b[1] = op
    b.writeUInt16BE(o.internalPort, 4)
    b.writeUInt16BE(lifetime === 0 ? 0 : o.externalPort, 6)
    b.writeUInt32BE(lifetime, 8)
    return b
  }, msg => {
    if (msg.length < 8 || msg[0] !== 0 || msg[1] !== 128 + op) return null
    const result = msg.readUInt16BE(2)
    if (result !== 0) return { refused: `${PMP_RESULTS[result] ?? 'error'} (result ${result})` }
    if (msg.length < 16 || msg.readUInt16BE(8) !== o.internalPort) return null
    const externalPort = msg.readUInt16BE(10)
    const granted = msg.readUInt32BE(12)
    if (lifetime > 0 && (externalPort === 0 || granted === 0)) return { refused: `answered external port ${externalPort} for ${granted} s` }
    return { ok: { method: 'nat-pmp' as const, protocol: o.protocol, internalPort: o.internalPort, externalPort, lifetime: granted, epoch: msg.readUInt32BE(4) } }
  })
}

// ---- PCP (RFC 6887) -----------------------------------------------------------------------------

const PCP_VERSION = 2
const PCP_OP_MAP = 1
const PCP_PROTO: Record<PmpProtocol, number> = { udp: 17, tcp: 6 }
const PCP_MAP_BYTES = 60

/** A fresh 12-byte PCP mapping nonce (kept to renew and delete the mapping). */
export function pcpNonce (): Buffer {
  return randomBytes(12)
}

function writeMappedV4 (b: Buffer, at: number, ip: string): void {
  b.fill(0, at, at + 10)
  b[at + 10] = 0xff
  b[at + 11] = 0xff
  const parts = ip.split('.').map(Number)
  if (parts.length !== 4 || parts.some(n => !Number.isInteger(n) || n < 0 || n > 255)) throw new NetError(NetCodes.CONFIG_INVALID, `PCP: ${JSON.stringify(ip)} is not an IPv4 address`)
  for (let i = 0; i < 4; i++) b[at + 12 + i] = parts[i]
}

function readMappedV4 (b: Buffer, at: number): string | null {
  for (let i = 0; i < 10; i++) if (b[at + i] !== 0) return null
  if (b[at + 10] !== 0xff || b[at + 11] !== 0xff) return null
  return `${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`
}

/** PCP MAP: map (or renew with the same nonce, or with lifetime 0 delete) internalPort. */
export async function pcpMap (o: PmpRequestOptions & { protocol: PmpProtocol, internalPort: number, externalPort: number, lifetime: number, nonce: Buffer }): Promise<PmpMapping> {
  checkPort('PCP', o.internalPort)
  checkPort('PCP', o.externalPort, true)
  if (o.nonce.length !== 12) throw new NetError(NetCodes.CONFIG_INVALID, 'PCP: the mapping nonce must be 12 bytes')
  const lifetime = Math.max(0, Math.min(0xffffffff, Math.floor(o.lifetime)))
  const proto = PCP_PROTO[o.protocol]
  const what = `PCP ${lifetime === 0 ? 'delete' : 'map'} ${o.protocol} ${o.internalPort}`
  return await exchange<PmpMapping>(what, o, local => {
    const b = Buffer.alloc(PCP_MAP_BYTES)
    b[0] = PCP_VERSION
    b[1] = PCP_OP_MAP
    b.writeUInt32BE(lifetime, 4)
    writeMappedV4(b, 8, local) // the client's address: the router checks it against the source
    o.nonce.copy(b, 24)
    b[36] = proto
    b.writeUInt16BE(o.internalPort, 40)
    b.writeUInt16BE(o.externalPort, 42)
    writeMappedV4(b, 44, '0.0.0.0') // any external IPv4 address
    return b
  }, msg => {
    if (msg.length < 4) return null
    // A NAT-PMP-only router answers a version it does not speak with its own version 0 and result 1.
    if (msg[0] === 0 && msg.length >= 4 && msg.readUInt16BE(2) === 1) return { refused: 'the gateway speaks NAT-PMP, not PCP' }
    if (msg[0] !== PCP_VERSION || msg[1] !== (0x80 | PCP_OP_MAP)) return null
    const result = msg[3]
    if (msg.length < PCP_MAP_BYTES) return result !== 0 ? { refused: `${PCP_RESULTS[result] ?? 'error'} (result ${result})` } : null
    if (!msg.subarray(24, 36).equals(o.nonce) || msg[36] !== proto || msg.readUInt16BE(40) !== o.internalPort) return null
    if (result !== 0) return { refused: `${PCP_RESULTS[result] ?? 'error'} (result ${result})` }
    const granted = msg.readUInt32BE(4)
    const externalPort = msg.readUInt16BE(42)
    const externalHost = readMappedV4(msg, 44)
    if (lifetime > 0 && (externalPort === 0 || granted === 0 || externalHost === null || externalHost === '0.0.0.0')) {
      return { refused: `answered ${externalHost ?? 'a non-IPv4 address'}:${externalPort} for ${granted} s` }
    }
    return { ok: { method: 'pcp' as const, protocol: o.protocol, internalPort: o.internalPort, externalPort, externalHost: externalHost ?? '0.0.0.0', lifetime: granted, epoch: msg.readUInt32BE(8), nonce: o.nonce } }
  })
}
