// PerMinute: a count per key per minute, for the raw and unauthenticated requests a node answers
// (address probes, introductions, punches). Bounded: past MAX_KEYS keys it starts over.

export const MAX_KEYS = 4096

export class PerMinute {
  private readonly counts = new Map<string, { n: number, since: number }>()
  constructor (private readonly limit: number) {}

  private entry (k: string, now: number): { n: number, since: number } {
    let e = this.counts.get(k)
    if (e === undefined || now - e.since > 60_000) {
      if (this.counts.size >= MAX_KEYS) this.counts.clear()
      e = { n: 0, since: now }
      this.counts.set(k, e)
    }
    return e
  }

  /** Whether `k` may have one more this minute (without counting it). */
  room (k: string, now = Date.now()): boolean { return this.entry(k, now).n < this.limit }

  /** Count one for `k`; false (and not counted) when its minute is full. */
  allow (k: string, now = Date.now()): boolean {
    const e = this.entry(k, now)
    if (e.n >= this.limit) return false
    e.n++
    return true
  }
}
