// Types for the raw block API of the `lz4` package (it ships none).
declare module 'lz4' {
  /** Compress src into dst; returns the compressed size, or 0 when it does not fit in dst. */
  export function encodeBlock(src: Uint8Array, dst: Uint8Array, sIdx?: number, eIdx?: number): number
  /** Decompress src into dst (LZ4_decompress_safe); returns the decoded size, negative on malformed input. */
  export function decodeBlock(src: Uint8Array, dst: Uint8Array, sIdx?: number, eIdx?: number): number
  export function encodeBound(size: number): number
}
