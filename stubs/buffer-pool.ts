// Reusable buffers for blocks in flight. Chunks, encrypted blocks and plaintexts are taken from the
// pool, transferred to a block worker and back, and given back when done, so that stubbing a 4 GiB
// file allocates a few dozen buffers instead of thousands: memory stays flat and no isolate piles up
// dead ArrayBuffers waiting for its garbage collector. Buffers come in size classes a quarter of an
// octave apart (at most 25% larger than asked for).

/** Smallest size class. */
export const MIN_CLASS = 64 * 1024

export class BufferPool {
  /** Free buffers, oldest first. */
  private readonly free: ArrayBuffer[] = []
  private retained = 0
  private allocated = 0

  /** Keeps at most `maxRetainedBytes` of free buffers, dropping the oldest beyond that. */
  constructor (readonly maxRetainedBytes: number) {}

  /**
   * Capacity of the buffer that holds `n` bytes: MIN_CLASS, or `n` rounded up to a multiple of a
   * quarter of the power of two below it (for 2^e < n <= 2^(e+1): a multiple of 2^(e-2)).
   */
  static classOf (n: number): number {
    if (n <= MIN_CLASS) return MIN_CLASS
    const step = 2 ** (Math.floor(Math.log2(n - 1)) - 2)
    return Math.ceil(n / step) * step
  }

  /**
   * A view of exactly `n` bytes over a buffer of its own (contents undefined): the smallest free
   * buffer of at least its class and at most twice that, else a new one of its class.
   */
  take (n: number): Uint8Array {
    const want = BufferPool.classOf(n)
    let best = -1
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i].byteLength
      if (size >= want && size <= 2 * want && (best < 0 || size < this.free[best].byteLength)) {
        best = i
        if (size === want) break
      }
    }
    if (best >= 0) {
      const ab = this.free.splice(best, 1)[0]
      this.retained -= ab.byteLength
      return new Uint8Array(ab, 0, n)
    }
    this.allocated += want
    return new Uint8Array(new ArrayBuffer(want), 0, n)
  }

  /**
   * Give a buffer back once nothing uses it any more. Views of buffers the pool did not make (other
   * sizes, detached or shared buffers) are ignored, so giving back anything is safe.
   */
  give (view: Uint8Array): void {
    const ab = view.buffer
    if (!(ab instanceof ArrayBuffer)) return
    const size = ab.byteLength
    if (size < MIN_CLASS || size !== BufferPool.classOf(size) || size > this.maxRetainedBytes || this.free.includes(ab)) return
    this.free.push(ab)
    this.retained += size
    while (this.retained > this.maxRetainedBytes) this.retained -= this.free.shift()!.byteLength
  }

  /** Bytes of every buffer this pool has allocated so far (it reuses the rest). */
  get allocatedBytes (): number {
    return this.allocated
  }

  /** Bytes held by free buffers. */
  get retainedBytes (): number {
    return this.retained
  }
}
