// Messages between the main thread and block workers (in-process only, never on the wire): a message
// to a worker is `{ tasks: WorkerRequest[] }`, its answer `{ replies: WorkerReply[] }` in the same
// order. Buffers
// travel both ways by transfer: the main thread lends a task its input and output buffers (from its
// BufferPool) and gets both back with the reply, to reuse them.

export type WorkerRequest =
  /** Encode `plain` into `out` (at least |plain| + 46 bytes). */
  | { seq: number, type: 'encode', plain: Uint8Array, out: Uint8Array }
  /** Check `block` against `id`, then decode it into `out` (exactly `size` bytes). */
  | { seq: number, type: 'decode', block: Uint8Array, out: Uint8Array, id: Uint8Array, ph: Uint8Array, size: number }

export type WorkerFailure = { seq: number, error: { kind: 'corrupt' | 'missing' | 'io' | 'internal', message: string } }

export type WorkerReply =
  /** `block` is a view of the request's `out`; `plain` is the request's input, given back. */
  | { seq: number, type: 'encode', ph: Uint8Array, id: Uint8Array, block: Uint8Array, codec: number, plain: Uint8Array }
  /** `plain` is the request's `out`; `block` is the request's input, given back. */
  | { seq: number, type: 'decode', plain: Uint8Array, block: Uint8Array }
  | WorkerFailure

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
export type WorkerTask = DistributiveOmit<WorkerRequest, 'seq'>
