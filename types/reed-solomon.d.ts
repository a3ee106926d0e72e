// Types for @ronomon/reed-solomon 6 (native, binding.c). Its package "main" is binding.node itself,
// which Node's ESM loader refuses (ERR_UNKNOWN_FILE_EXTENSION): load it with
// `createRequire(import.meta.url)('@ronomon/reed-solomon') as typeof import('@ronomon/reed-solomon')`.
// encode() works in libuv's thread pool on the caller's memory (no copy): the buffers must not be
// touched, resized or transferred until its callback runs. Bad arguments throw synchronously (an
// Error whose message is the failed check, e.g. "sources < k"); the callback never gets an error.
declare module '@ronomon/reed-solomon' {
  namespace ReedSolomon {
    /**
     * An encoding context: a Buffer of 3 + k*w*m*w bytes = w, k, m, then the m*w rows of the
     * k*w-column parity bit matrix. Read-only; may be shared by concurrent encode() calls.
     */
    type Context = Buffer
  }
  const ReedSolomon: {
    /** 24 */
    readonly MAX_K: number
    /** 6 */
    readonly MAX_M: number
    /** Throws unless 1 <= k <= MAX_K and 1 <= m <= MAX_M (whole numbers). */
    create (k: number, m: number): ReedSolomon.Context
    /**
     * Computes the `targets` shards from the `sources` shards (bit i = shard i; data shards 0..k-1
     * lie back to back in buffer[bufferOffset, +bufferSize), parity shards k..k+m-1 in
     * parity[parityOffset, +paritySize)); shardSize = bufferSize / k = paritySize / m, a multiple
     * of 8. At least k sources, 1..m targets, disjoint. Any shard that is not a source may be
     * overwritten too: the general path recomputes every non-source data and parity shard.
     */
    encode (
      context: ReedSolomon.Context, sources: number, targets: number,
      buffer: Buffer, bufferOffset: number, bufferSize: number,
      parity: Buffer, parityOffset: number, paritySize: number,
      callback: () => void
    ): void
    /** Prints the search for the PARAMETERS table of binding.c to stdout (slow; for maintainers). */
    search (): void
    /** target[targetOffset, +size) ^= source[sourceOffset, +size), synchronously. */
    XOR (source: Buffer, sourceOffset: number, target: Buffer, targetOffset: number, size: number): void
  }
  export = ReedSolomon
}
