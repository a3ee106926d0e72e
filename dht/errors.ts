// DhtError: the one error class of dht/ (topics, config, the DHT node, lookups, the BEP 44 pointer).
// Callers branch on `code`; the message reads `CODE: text` and names the peer, address or file and
// what was wrong. Keys and group secrets never appear in messages.

export const DhtCodes = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  BIND_FAILED: 'BIND_FAILED',
  NOT_READY: 'NOT_READY',
  CLOSED: 'CLOSED',
  ABORTED: 'ABORTED',
  BAD_PACKET: 'BAD_PACKET',
  RATE_LIMITED: 'RATE_LIMITED',
  ADDRESS_BLOCKED: 'ADDRESS_BLOCKED',
  LOOKUP_FAILED: 'LOOKUP_FAILED',
  ANNOUNCE_FAILED: 'ANNOUNCE_FAILED',
  PUT_FAILED: 'PUT_FAILED',
  POINTER_INVALID: 'POINTER_INVALID',
  POINTER_REPLAYED: 'POINTER_REPLAYED',
  POINTER_TOO_LARGE: 'POINTER_TOO_LARGE',
  DIAL_FAILED: 'DIAL_FAILED',
  STATE_INVALID: 'STATE_INVALID',
  IO_ERROR: 'IO_ERROR'
} as const

export type DhtCode = (typeof DhtCodes)[keyof typeof DhtCodes]

export class DhtError extends Error {
  readonly code: DhtCode

  constructor (code: DhtCode, text: string, options?: { cause?: unknown }) {
    super(`${code}: ${text}`, options)
    this.name = 'DhtError'
    this.code = code
  }
}

/** Wraps anything thrown into a DhtError of the given code, keeping DhtErrors as they are. */
export function asDhtError (err: unknown, code: DhtCode, context: string): DhtError {
  if (err instanceof DhtError) return err
  const text = err instanceof Error ? err.message : String(err)
  return new DhtError(code, `${context}: ${text}`, { cause: err })
}
