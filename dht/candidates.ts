// Candidates: addresses learned from the DHT, which are only claims until the transport handshake
// proves who answers there. Each (address, expected identity) has a state, a back-off after failed
// dials (doubling from BACKOFF_BASE_MS to BACKOFF_MAX_MS), and a place in a dial queue served round
// robin across hosts, so one host announcing many ports cannot crowd out the others. Bounded.

export const MAX_CANDIDATES = 4096
export const MAX_QUEUE = 512
export const BACKOFF_BASE_MS = 60_000
export const BACKOFF_MAX_MS = 6 * 3600_000
/** A verified address is not dialed again for this long (the agent keeps its connection). */
export const VERIFIED_TTL_MS = 30 * 60_000
export const MAX_TOPICS_PER_CANDIDATE = 16

export type CandidateState = 'new' | 'queued' | 'dialing' | 'verified' | 'failed' | 'self'

export interface Candidate {
  readonly key: string
  readonly host: string
  readonly port: number
  /** For an owner-topic candidate: the identity the handshake must prove. */
  readonly expect: Buffer | null
  readonly topics: Set<string>
  state: CandidateState
  failures: number
  nextTry: number
  firstSeen: number
  lastSeen: number
  publicKey: Buffer | null
  verifiedAt: number
}

export interface CandidateOptions {
  readonly maxCandidates?: number
  readonly maxQueue?: number
  readonly backoffBaseMs?: number
  readonly backoffMaxMs?: number
  readonly verifiedTtlMs?: number
}

export function candidateKey (host: string, port: number, expect: Uint8Array | null): string {
  return expect === null ? `${host}:${port}` : `${host}:${port}/${Buffer.from(expect).toString('hex')}`
}

export class CandidateTable {
  private readonly all = new Map<string, Candidate>()
  /** Dial queue: per host, the keys waiting, hosts in round-robin order. */
  private readonly queue = new Map<string, string[]>()
  private queued = 0
  private readonly o: Required<CandidateOptions>

  constructor (opts: CandidateOptions = {}) {
    this.o = {
      maxCandidates: opts.maxCandidates ?? MAX_CANDIDATES,
      maxQueue: opts.maxQueue ?? MAX_QUEUE,
      backoffBaseMs: opts.backoffBaseMs ?? BACKOFF_BASE_MS,
      backoffMaxMs: opts.backoffMaxMs ?? BACKOFF_MAX_MS,
      verifiedTtlMs: opts.verifiedTtlMs ?? VERIFIED_TTL_MS
    }
  }

  get size (): number { return this.all.size }
  get queueLength (): number { return this.queued }
  get (key: string): Candidate | undefined { return this.all.get(key) }
  list (): Candidate[] { return [...this.all.values()] }

  /**
   * Records that `topic` named this address. Returns the candidate and whether it is new; it is put
   * in the dial queue if it is due (new, back-off over, or verified long ago).
   */
  offer (host: string, port: number, topic: string, expect: Buffer | null, now = Date.now()): { candidate: Candidate, fresh: boolean, queued: boolean } {
    const key = candidateKey(host, port, expect)
    let c = this.all.get(key)
    const fresh = c === undefined
    if (c === undefined) {
      if (this.all.size >= this.o.maxCandidates) this.evict()
      c = { key, host, port, expect, topics: new Set(), state: 'new', failures: 0, nextTry: 0, firstSeen: now, lastSeen: now, publicKey: null, verifiedAt: 0 }
      this.all.set(key, c)
    }
    c.lastSeen = now
    if (c.topics.size < MAX_TOPICS_PER_CANDIDATE) c.topics.add(topic)
    return { candidate: c, fresh, queued: this.enqueue(c, now) }
  }

  /** Is this candidate due for a dial now? */
  due (c: Candidate, now = Date.now()): boolean {
    switch (c.state) {
      case 'new': return true
      case 'failed': return now >= c.nextTry
      case 'verified': return now - c.verifiedAt >= this.o.verifiedTtlMs
      default: return false
    }
  }

  /** Queues a verified candidate again regardless of its age (to check it is still there). */
  requeue (c: Candidate, now = Date.now()): boolean {
    if (c.state !== 'verified') return false
    c.verifiedAt = -Infinity
    return this.enqueue(c, now)
  }

  private enqueue (c: Candidate, now: number): boolean {
    if (!this.due(c, now) || this.queued >= this.o.maxQueue) return false
    let q = this.queue.get(c.host)
    if (q === undefined) { q = []; this.queue.set(c.host, q) }
    q.push(c.key)
    this.queued++
    c.state = 'queued'
    return true
  }

  /** The next candidate to dial (round robin across hosts), now marked `dialing`; null if none. */
  take (): Candidate | null {
    for (const [host, q] of this.queue) {
      this.queue.delete(host)
      const key = q.shift()!
      this.queued--
      if (q.length > 0) this.queue.set(host, q) // to the back of the rotation
      const c = this.all.get(key)
      if (c === undefined || c.state !== 'queued') continue
      c.state = 'dialing'
      return c
    }
    return null
  }

  succeed (c: Candidate, publicKey: Buffer, now = Date.now()): void {
    c.state = 'verified'
    c.publicKey = publicKey
    c.verifiedAt = now
    c.failures = 0
    c.nextTry = 0
  }

  /** A failed dial: back off, doubling each time (±25% jitter so a crowd does not retry in step). */
  fail (c: Candidate, now = Date.now()): number {
    c.failures++
    const base = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** Math.min(c.failures - 1, 30))
    const wait = Math.round(base * (0.75 + Math.random() * 0.5))
    c.state = 'failed'
    c.nextTry = now + wait
    return wait
  }

  markSelf (c: Candidate): void { c.state = 'self' }

  /** Drops one candidate to make room: a failed one with the latest next try, else the one seen least recently. */
  private evict (): void {
    let victim: Candidate | null = null
    for (const c of this.all.values()) {
      if (c.state === 'dialing' || c.state === 'queued') continue
      if (victim === null ||
          (c.state === 'failed' && (victim.state !== 'failed' || c.nextTry > victim.nextTry)) ||
          (victim.state !== 'failed' && c.state !== 'failed' && c.lastSeen < victim.lastSeen)) victim = c
    }
    if (victim !== null) this.all.delete(victim.key)
    else this.all.delete(this.all.keys().next().value as string)
  }
}
