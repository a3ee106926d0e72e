// AddressProbe: "where do you see me from?" over the uTP socket's raw UDP (docs/reachability.md §2.1).
// A peer reached over TCP says nothing about this node's UDP mapping, so the node sends that peer's
// uTP port a small ASK from its one UDP socket; the peer ANSWERs with the source address and port it
// saw. Outside the secure channel, so it is built to be harmless: an ASK is padded to the size of an
// ANSWER (no amplification), answers are rate-limited per source IP and in total, and an answer is
// only taken when it matches a nonce this node sent to that very address within PROBE_TIMEOUT_MS.

import { randomBytes } from 'node:crypto'
import { isIPv4 } from 'node:net'
import { PerMinute } from './rate-limit.js'

export const PROBE_MAGIC = Buffer.from('DBXP', 'ascii')
export const ProbeTypes = { ASK: 0x01, ANSWER: 0x02 } as const
/** magic 4 | type 1 | nonce 8 | family 1 (4) | ipv4 4 | u16 port 2; an ASK carries zeros in the last 7. */
export const PROBE_BYTES = 20
export const PROBE_TIMEOUT_MS = 5_000
export const MAX_PENDING = 256
/** Answers per source IP per minute, and in total. */
export const ANSWERS_PER_IP_PER_MIN = 30
export const ANSWERS_PER_MIN = 600

export interface ProbeOptions {
  /** Send a datagram from the uTP socket. */
  readonly send: (buf: Buffer, host: string, port: number) => void
  /** An answer arrived: `by` (who was asked) sees this node at host:port. */
  readonly onObserved: (by: string, from: string, host: string, port: number) => void
  readonly now?: () => number
}

export function isProbe (buf: Buffer): boolean {
  return buf.length === PROBE_BYTES && buf.subarray(0, 4).equals(PROBE_MAGIC)
}

export function encodeProbe (type: number, nonce: Buffer, seen: { host: string, port: number } | null): Buffer {
  const b = Buffer.alloc(PROBE_BYTES)
  PROBE_MAGIC.copy(b, 0)
  b[4] = type
  nonce.copy(b, 5, 0, 8)
  if (seen !== null) {
    b[13] = 4
    seen.host.split('.').forEach((x, i) => { b[14 + i] = Number(x) })
    b.writeUInt16BE(seen.port, 18)
  }
  return b
}

export class AddressProbe {
  private readonly pending = new Map<string, { by: string, host: string, port: number, at: number }>()
  private readonly perIp = new PerMinute(ANSWERS_PER_IP_PER_MIN)
  private readonly total = new PerMinute(ANSWERS_PER_MIN)

  constructor (private readonly o: ProbeOptions) {}

  private now (): number { return (this.o.now ?? Date.now)() }

  /** Ask the peer `by` (key hex) at its uTP endpoint where it sees this node. */
  ask (by: string, host: string, port: number): void {
    if (!isIPv4(host) || !(port > 0 && port < 65536)) return
    const now = this.now()
    for (const [k, p] of this.pending) if (now - p.at > PROBE_TIMEOUT_MS || this.pending.size > MAX_PENDING) this.pending.delete(k)
    const nonce = randomBytes(8)
    this.pending.set(nonce.toString('hex'), { by, host, port, at: now })
    try { this.o.send(encodeProbe(ProbeTypes.ASK, nonce, null), host, port) } catch { /* the socket is closing */ }
  }

  /** A datagram that is not uTP arrived on the socket. Returns true when it was a probe. */
  onDatagram (buf: Buffer, from: { address: string, port: number }): boolean {
    if (!isProbe(buf)) return false
    const type = buf[4]
    const nonce = buf.subarray(5, 13)
    if (type === ProbeTypes.ASK) {
      if (isIPv4(from.address) && this.allow(from.address)) {
        try { this.o.send(encodeProbe(ProbeTypes.ANSWER, nonce, { host: from.address, port: from.port }), from.address, from.port) } catch { /* closing */ }
      }
      return true
    }
    if (type !== ProbeTypes.ANSWER || buf[13] !== 4) return true
    const key = nonce.toString('hex')
    const p = this.pending.get(key)
    // Only the answer to a nonce we sent, from the address we sent it to, in time.
    if (p === undefined || p.host !== from.address || p.port !== from.port || this.now() - p.at > PROBE_TIMEOUT_MS) return true
    this.pending.delete(key)
    const host = `${buf[14]}.${buf[15]}.${buf[16]}.${buf[17]}`
    this.o.onObserved(p.by, from.address, host, buf.readUInt16BE(18))
    return true
  }

  private allow (ip: string): boolean {
    const now = this.now()
    if (!this.total.room('all', now) || !this.perIp.allow(ip, now)) return false
    return this.total.allow('all', now)
  }

}
