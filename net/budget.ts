// RecvBudget: a node-wide cap on the bytes of received frames held in memory (frames being read,
// and requests being handled). A connection whose next frame does not fit stops reading until other
// frames are released, so a flood of large frames slows senders instead of growing memory.

export const RECV_BUDGET_BYTES = 64 * 1024 * 1024

export class RecvBudget {
  private free: number
  private readonly waiters: Array<{ n: number, resolve: () => void }> = []

  constructor (readonly total: number = RECV_BUDGET_BYTES) {
    this.free = total
  }

  get available (): number {
    return this.free
  }

  /** Take n bytes now if they fit. A frame larger than the whole budget may take it all when nothing else is held. */
  tryTake (n: number): boolean {
    if (this.waiters.length > 0) return false
    if (n <= this.free || (this.free === this.total && n > this.total)) {
      this.free -= n
      return true
    }
    return false
  }

  /** Wait for n bytes (first come, first served). Rejects only through the signal. */
  async take (n: number, signal?: AbortSignal): Promise<void> {
    if (this.tryTake(n)) return
    await new Promise<void>((resolve, reject) => {
      const w = { n, resolve: () => { signal?.removeEventListener('abort', onAbort); resolve() } }
      const onAbort = (): void => {
        const i = this.waiters.indexOf(w)
        if (i >= 0) this.waiters.splice(i, 1)
        this.pump()
        reject(signal?.reason ?? new Error('aborted'))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(w)
    })
  }

  give (n: number): void {
    this.free += n
    this.pump()
  }

  private pump (): void {
    while (this.waiters.length > 0) {
      const w = this.waiters[0]
      if (!(w.n <= this.free || (this.free === this.total && w.n > this.total))) return
      this.waiters.shift()
      this.free -= w.n
      w.resolve()
    }
  }
}
