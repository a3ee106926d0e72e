// SetupError: errors of `dustbox setup` and `dustbox doctor` (answers, folders, ports, passphrases,
// the key backup, service and desktop files). Message reads `CODE: text` and names the file, folder or
// port concerned; never a passphrase or key.

export const SetupCodes = {
  /** A malformed flag or answer (exit code 2). */
  USAGE: 'USAGE',
  /** A folder that cannot be watched: missing, not a directory, unreadable, `/`, the state dir. */
  FOLDER_INVALID: 'FOLDER_INVALID',
  /** A port that another program already uses. */
  PORT_IN_USE: 'PORT_IN_USE',
  /** A passphrase file that is missing, empty or too big; a passphrase too short or too long. */
  PASSPHRASE_INVALID: 'PASSPHRASE_INVALID',
  /** The passphrase does not open the key backup (or the backup was altered). */
  PASSPHRASE_WRONG: 'PASSPHRASE_WRONG',
  /** A key backup file that is not a valid dustbox key backup. */
  BACKUP_INVALID: 'BACKUP_INVALID',
  /** A key backup that belongs to another identity. */
  BACKUP_FOREIGN: 'BACKUP_FOREIGN',
  /** An identity exists that is not the one being imported. */
  IDENTITY_EXISTS: 'IDENTITY_EXISTS',
  /** Argon2id is unavailable (sodium-native did not load). */
  KDF_UNAVAILABLE: 'KDF_UNAVAILABLE',
  /** A service, desktop or config file could not be written or read. */
  FILE_FAILED: 'FILE_FAILED',
  /** The answers ran out (stdin closed) before the wizard finished. */
  INPUT_ENDED: 'INPUT_ENDED'
} as const

export type SetupCode = (typeof SetupCodes)[keyof typeof SetupCodes]

export class SetupError extends Error {
  readonly code: SetupCode
  constructor (code: SetupCode, text: string, options?: { cause?: unknown }) {
    super(`${code}: ${text}`, options)
    this.name = 'SetupError'
    this.code = code
  }
}

/** Wrap an fs error as FILE_FAILED naming the operation and the path. */
export function fileError (op: string, path: string, err: unknown): SetupError {
  if (err instanceof SetupError) return err
  const e = err as NodeJS.ErrnoException
  return new SetupError(SetupCodes.FILE_FAILED, `cannot ${op} ${JSON.stringify(path)}: ${e?.code ?? e?.message ?? String(err)}`, { cause: err })
}
