// NetError: the one error class of net/ (peer ids, handshake, channel, messages, shard store, node).
// Callers branch on `code`; the message reads `CODE: text` and names the peer (short id or address)
// and what was wrong. Keys never appear in messages. The wire error codes of docs/protocol.md §6 are
// the subset in WireErrorCodes (they travel in ERROR replies and GOODBYE messages).

export const NetCodes = {
  PEER_ID_INVALID: 'PEER_ID_INVALID',
  HANDSHAKE_FAILED: 'HANDSHAKE_FAILED',
  VERSION_MISMATCH: 'VERSION_MISMATCH',
  PEER_MISMATCH: 'PEER_MISMATCH',
  REFUSED: 'REFUSED',
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  FRAME_INVALID: 'FRAME_INVALID',
  BAD_MESSAGE: 'BAD_MESSAGE',
  UNKNOWN_TYPE: 'UNKNOWN_TYPE',
  NOT_FOUND: 'NOT_FOUND',
  HASH_MISMATCH: 'HASH_MISMATCH',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  SPACE_EXCEEDED: 'SPACE_EXCEEDED',
  DISK_FULL: 'DISK_FULL',
  TOO_LARGE: 'TOO_LARGE',
  BUSY: 'BUSY',
  INTERNAL: 'INTERNAL',
  TIMEOUT: 'TIMEOUT',
  STALLED: 'STALLED',
  CONNECT_FAILED: 'CONNECT_FAILED',
  CLOSED: 'CLOSED',
  ABORTED: 'ABORTED',
  IO_ERROR: 'IO_ERROR',
  CONFIG_INVALID: 'CONFIG_INVALID'
} as const

export type NetCode = (typeof NetCodes)[keyof typeof NetCodes]

export class NetError extends Error {
  readonly code: NetCode

  constructor (code: NetCode, text: string, options?: { cause?: unknown }) {
    super(`${code}: ${text}`, options)
    this.name = 'NetError'
    this.code = code
  }
}

/** Error codes that travel on the wire (u16), docs/protocol.md §6. Never renumber. */
export const WireErrorCodes = {
  BAD_MESSAGE: 1,
  UNKNOWN_TYPE: 2,
  NOT_FOUND: 3,
  HASH_MISMATCH: 4,
  QUOTA_EXCEEDED: 5,
  SPACE_EXCEEDED: 6,
  DISK_FULL: 7,
  TOO_LARGE: 8,
  BUSY: 9,
  INTERNAL: 10,
  TIMEOUT: 11,
  FRAME_TOO_LARGE: 12,
  FRAME_INVALID: 13,
  VERSION_MISMATCH: 14,
  REFUSED: 15,
  CLOSED: 16
} as const satisfies Partial<Record<NetCode, number>>

export type WireErrorName = keyof typeof WireErrorCodes

const byNumber = new Map<number, WireErrorName>(Object.entries(WireErrorCodes).map(([k, v]) => [v, k as WireErrorName]))

/** The NetCode of a wire error number; unknown numbers (from a newer peer) read as INTERNAL. */
export function wireCodeName (n: number): WireErrorName {
  return byNumber.get(n) ?? 'INTERNAL'
}

export function isWireCode (code: string): code is WireErrorName {
  return Object.hasOwn(WireErrorCodes, code)
}

/** Wrap an fs error into IO_ERROR (or DISK_FULL for ENOSPC/EDQUOT) naming the path and operation. */
export function fsError (op: string, path: string, err: unknown): NetError {
  if (err instanceof NetError) return err
  const e = err as NodeJS.ErrnoException
  const code = e?.code === 'ENOSPC' || e?.code === 'EDQUOT' ? NetCodes.DISK_FULL : NetCodes.IO_ERROR
  return new NetError(code, `${op} ${JSON.stringify(path)} failed: ${e?.code ?? ''} ${e?.message ?? String(err)}`.trim(), { cause: err })
}
