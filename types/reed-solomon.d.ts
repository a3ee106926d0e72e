// Types for @ronomon/reed-solomon 6 (native, runs in libuv's thread pool).
declare module '@ronomon/reed-solomon' {
  export interface Context { readonly k: number, readonly m: number }
  export const MAX_K: number
  export const MAX_M: number
  export function create (k: number, m: number): Context
  export function search (): void
  export function encode (
    context: Context, sources: number, targets: number,
    buffer: Buffer, bufferOffset: number, bufferSize: number,
    parity: Buffer, parityOffset: number, paritySize: number,
    callback: (error?: Error | null) => void
  ): void
  export function XOR (source: Buffer, sourceOffset: number, target: Buffer, targetOffset: number, size: number): void
  const rs: { MAX_K: number, MAX_M: number, create: typeof create, encode: typeof encode, search: typeof search, XOR: typeof XOR }
  export default rs
}
