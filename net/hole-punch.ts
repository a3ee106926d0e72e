// HolePuncher: the UDP half of hole punching (docs/reachability.md §4). Two nodes behind NATs that a
// third one introduced (INTRODUCE / PUNCH, reach.ts) each send small PUNCH datagrams from their one
// uTP socket to the other's public address, with the nonce the introducer chose. The first packets
// die at the other side's NAT, but they open this side's mapping; once both have sent, packets pass
// both ways. A node takes the first PUNCH carrying its nonce from the expected host (any port: the
// peer's NAT may have mapped it anew) as proof that the path is open, answers it once, and the
// introducing side then dials uTP to exactly that source address. Raw datagrams outside the secure
// channel, like the address probe (same 20-byte "DBXP" layout, type 0x03): bounded sessions, bounded
// answers, nothing allocated for an unknown nonce.

import { isIPv4 } from 'node:net'
import { PROBE_BYTES, PROBE_MAGIC, encodeProbe } from './address-probe.js'
import type { Endpoint } from './transport.js'

export const PUNCH_TYPE = 0x03
/** A PUNCH is sent this often while a session waits... */
export const PUNCH_INTERVAL_MS = 100
/** ...for at most this long (the other side learns of the session one round trip later). */
export const PUNCH_WINDOW_MS = 4_000
export const MAX_SESSIONS = 64
/** PUNCHes answered per session (a peer that keeps sending gets no more). */
export const MAX_ANSWERS = 8
/** How long an address stays "just punched" (an inbound connection from it is marked punched). */
export const PUNCHED_TTL_MS = 60_000
export const MAX_PUNCHED = 256

export interface PunchOptions {
  readonly windowMs?: number
  readonly intervalMs?: number
  readonly signal?: AbortSignal
}

interface Session {
  readonly host: string
  readonly port: number
  found: Endpoint | null
  answers: number
  readonly waiters: Array<(e: Endpoint | null) => void>
}

export class HolePuncher {
  private readonly sessions = new Map<string, Session>()
  private readonly punched = new Map<string, number>()
  private closed = false

  constructor (private readonly send: (buf: Buffer, host: string, port: number) => void) {}

  /**
   * Send PUNCHes with `nonce` to host:port until one with that nonce comes back from `host`;
   * resolves with its source address, or null when the window ends (or on abort / close).
   */
  async punch (nonce: Buffer, host: string, port: number, opts: PunchOptions = {}): Promise<Endpoint | null> {
    if (this.closed || !isIPv4(host) || !(port > 0 && port < 65536) || nonce.length !== 8) return null
    const key = nonce.toString('hex')
    let s = this.sessions.get(key)
    if (s === undefined) {
      if (this.sessions.size >= MAX_SESSIONS) return null
      s = { host, port, found: null, answers: 0, waiters: [] }
      this.sessions.set(key, s)
    }
    const session = s
    // Whatever connects with that address from now on got through thanks to this punch.
    this.notePunched({ host, port })
    const window = opts.windowMs ?? PUNCH_WINDOW_MS
    const every = opts.intervalMs ?? PUNCH_INTERVAL_MS
    const packet = encodeProbe(PUNCH_TYPE, nonce, { host, port })
    return await new Promise<Endpoint | null>(resolve => {
      let sent = 0
      let done = false
      const tick = (): void => {
        if (session.found !== null) return
        this.safeSend(packet, host, port)
        sent++
      }
      const finish = (e: Endpoint | null): void => {
        if (done) return
        done = true
        clearInterval(timer)
        clearTimeout(end)
        opts.signal?.removeEventListener('abort', onAbort)
        // Keep a found session a little, to answer the other side's late PUNCHes.
        if (e === null && this.sessions.get(key) === session) this.sessions.delete(key)
        else setTimeout(() => { if (this.sessions.get(key) === session) this.sessions.delete(key) }, window).unref()
        resolve(e)
      }
      const onAbort = (): void => finish(null)
      // Not unref'd: bounded by the window, and close() ends them.
      const timer = setInterval(tick, every)
      const end = setTimeout(() => finish(session.found), window)
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      session.waiters.push(finish)
      if (session.found !== null) finish(session.found)
      else if (sent === 0) tick()
    })
  }

  /** A non-uTP datagram on the socket. Returns true when it was a PUNCH (handled or dropped). */
  onDatagram (buf: Buffer, from: { address: string, port: number }): boolean {
    if (buf.length !== PROBE_BYTES || buf[4] !== PUNCH_TYPE || !buf.subarray(0, 4).equals(PROBE_MAGIC)) return false
    const nonce = buf.subarray(5, 13)
    const s = this.sessions.get(nonce.toString('hex'))
    if (s === undefined || from.address !== s.host || s.answers >= MAX_ANSWERS) return true
    s.answers++
    // Answer it: the other side may still be waiting for a packet through its own NAT.
    this.safeSend(encodeProbe(PUNCH_TYPE, Buffer.from(nonce), { host: from.address, port: from.port }), from.address, from.port)
    if (s.found === null) {
      s.found = { host: from.address, port: from.port }
      this.notePunched(s.found)
      for (const w of s.waiters.splice(0)) w(s.found)
    }
    return true
  }

  /** Whether a connection with this address follows a punch towards it or from it (its path is "punched"). */
  wasPunched (remote: Endpoint): boolean {
    const k = `${remote.host}:${remote.port}`
    const until = this.punched.get(k)
    if (until === undefined) return false
    if (until < Date.now()) { this.punched.delete(k); return false }
    return true
  }

  private notePunched (e: Endpoint): void {
    const k = `${e.host}:${e.port}`
    this.punched.delete(k)
    this.punched.set(k, Date.now() + PUNCHED_TTL_MS)
    if (this.punched.size > MAX_PUNCHED) this.punched.delete(this.punched.keys().next().value as string)
  }

  private safeSend (buf: Buffer, host: string, port: number): void {
    try { this.send(buf, host, port) } catch { /* the socket is closing */ }
  }

  close (): void {
    this.closed = true
    for (const s of this.sessions.values()) for (const w of s.waiters.splice(0)) w(null)
    this.sessions.clear()
  }
}
