// A counting semaphore over bytes (or slots): bounds the memory in flight between reading, the
// workers and the disk, so memory stays flat whatever the file sizes.

export class Semaphore {
  private available: number
  private readonly waiters: Array<{ n: number, resolve: () => void }> = []

  constructor (readonly capacity: number) {
    this.available = capacity
  }

  /** Take n units (n is capped at capacity so one oversized request cannot deadlock). */
  async acquire (n: number): Promise<number> {
    const want = Math.min(n, this.capacity)
    if (this.waiters.length === 0 && this.available >= want) {
      this.available -= want
      return want
    }
    await new Promise<void>(resolve => this.waiters.push({ n: want, resolve }))
    return want
  }

  release (n: number): void {
    this.available += n
    while (this.waiters.length > 0 && this.available >= this.waiters[0].n) {
      const w = this.waiters.shift()!
      this.available -= w.n
      w.resolve()
    }
  }
}
