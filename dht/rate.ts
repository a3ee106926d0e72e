// Token buckets, a bounded LRU of them keyed by address, and a limiter for warnings. Everything a
// remote can make us count lives in a table with a fixed maximum size.

export class TokenBucket {
  private tokens: number
  private last: number

  constructor (readonly rate: number, readonly burst: number, now = Date.now()) {
    this.tokens = burst
    this.last = now
  }

  take (n = 1, now = Date.now()): boolean {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.rate / 1000)
      this.last = now
    }
    if (this.tokens < n) return false
    this.tokens -= n
    return true
  }
}

/** A Map that keeps at most `max` entries, dropping the least recently used. */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>()

  constructor (readonly max: number) {}

  get size (): number { return this.map.size }

  get (key: K): V | undefined {
    const v = this.map.get(key)
    if (v !== undefined) { this.map.delete(key); this.map.set(key, v) }
    return v
  }

  set (key: K, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    while (this.map.size > this.max) {
      const oldest = this.map.keys().next().value as K
      this.map.delete(oldest)
    }
  }

  delete (key: K): boolean { return this.map.delete(key) }
  clear (): void { this.map.clear() }

}

/** Buckets per key (an address), bounded in number; a key not seen for a while starts full again. */
export class KeyedLimiter {
  private readonly buckets: BoundedMap<string, TokenBucket>

  constructor (readonly rate: number, readonly burst: number, maxKeys: number) {
    this.buckets = new BoundedMap(maxKeys)
  }

  take (key: string, now = Date.now()): boolean {
    let b = this.buckets.get(key)
    if (b === undefined) { b = new TokenBucket(this.rate, this.burst, now); this.buckets.set(key, b) }
    return b.take(1, now)
  }

  get size (): number { return this.buckets.size }
}

/** Lets at most `perMinute` warnings through each minute and counts the rest. */
export class WarningLimiter {
  private windowStart = 0
  private count = 0
  suppressed = 0

  constructor (readonly perMinute: number) {}

  /** True if this warning may be emitted; `flush` returns how many were held back since the last pass. */
  allow (now = Date.now()): boolean {
    if (now - this.windowStart >= 60_000) { this.windowStart = now; this.count = 0 }
    if (this.count >= this.perMinute) { this.suppressed++; return false }
    this.count++
    return true
  }

  flush (): number {
    const n = this.suppressed
    this.suppressed = 0
    return n
  }
}
