// StubError: the one error class of stubs/ (chunker, codec, crypto, .f format, block store, ingest,
// hydrate). Callers branch on `code`; the message always reads `CODE: text` and names the file,
// stub or block concerned. Keys and secrets never appear in messages.

export const StubCodes = {
  STUB_INVALID: 'STUB_INVALID',
  STUB_FOREIGN: 'STUB_FOREIGN',
  BLOCK_MISSING: 'BLOCK_MISSING',
  BLOCK_CORRUPT: 'BLOCK_CORRUPT',
  TARGET_EXISTS: 'TARGET_EXISTS',
  NOT_A_FILE: 'NOT_A_FILE',
  FILE_CHANGED: 'FILE_CHANGED',
  FILE_TOO_LARGE: 'FILE_TOO_LARGE',
  NAME_INVALID: 'NAME_INVALID',
  KEY_MISSING: 'KEY_MISSING',
  KEY_INVALID: 'KEY_INVALID',
  KEY_EXISTS: 'KEY_EXISTS',
  CRYPTO_UNAVAILABLE: 'CRYPTO_UNAVAILABLE',
  IO_ERROR: 'IO_ERROR',
  WORKER_FAILED: 'WORKER_FAILED',
  CLOSED: 'CLOSED',
  SHARD_INVALID: 'SHARD_INVALID',
  SHARDS_TOO_FEW: 'SHARDS_TOO_FEW',
  ERASURE_INVALID: 'ERASURE_INVALID'
} as const

export type StubCode = (typeof StubCodes)[keyof typeof StubCodes]

export class StubError extends Error {
  readonly code: StubCode

  constructor (code: StubCode, text: string, options?: { cause?: unknown }) {
    super(`${code}: ${text}`, options)
    this.name = 'StubError'
    this.code = code
  }
}

/** Wrap an fs error into IO_ERROR naming the path and the operation, keeping ENOSPC etc. visible. */
export function ioError (op: string, path: string, err: unknown): StubError {
  if (err instanceof StubError) return err
  const e = err as NodeJS.ErrnoException
  return new StubError(StubCodes.IO_ERROR, `${op} ${JSON.stringify(path)} failed: ${e?.code ?? ''} ${e?.message ?? String(err)}`.trim(), { cause: err })
}
