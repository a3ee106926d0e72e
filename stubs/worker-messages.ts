// Messages between the main thread and block workers (in-process only, never on the wire).

export type WorkerRequest =
  | { seq: number, type: 'encode', plain: Uint8Array }
  | { seq: number, type: 'decode', block: Uint8Array, id: Uint8Array, ph: Uint8Array, size: number }
  | { seq: number, type: 'verify', path: string, id: Uint8Array, stored: number }

export type WorkerFailure = { seq: number, error: { kind: 'corrupt' | 'missing' | 'io' | 'internal', message: string } }

export type WorkerReply =
  | { seq: number, type: 'encode', ph: Uint8Array, id: Uint8Array, block: Uint8Array, codec: number }
  | { seq: number, type: 'decode', plain: Uint8Array }
  | { seq: number, type: 'verify' }
  | WorkerFailure

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
export type WorkerTask = DistributiveOmit<WorkerRequest, 'seq'>
