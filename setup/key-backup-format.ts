// The key backup file v1 as bytes (docs/keys.md §9): a fixed 140-byte layout of magic, version,
// algorithm ids, Argon2id parameters, salt, nonce, the owner id in clear, and the sealed root secret.
// Pure codec: no KDF and no cipher here (key-backup.ts does the crypto); decode checks every field
// and bound, so hostile files are refused before any expensive work.

import { SetupError, SetupCodes } from './errors.js'

/** "DUSTKEY" LF: the first 8 bytes of every key backup. */
export const KEY_BACKUP_MAGIC = Uint8Array.from(Buffer.from('DUSTKEY\n', 'ascii'))
export const KEY_BACKUP_VERSION = 1
/** Key derivation: Argon2id v1.3 (libsodium's crypto_pwhash_ALG_ARGON2ID13). */
export const KDF_ARGON2ID13 = 2
/** Cipher: XSalsa20-Poly1305 (libsodium's crypto_secretbox_easy). */
export const CIPHER_SECRETBOX = 1

export const SALT_BYTES = 16
export const NONCE_BYTES = 24
export const OWNER_BYTES = 32
export const SECRET_BYTES = 32
export const MAC_BYTES = 16
export const BOX_BYTES = MAC_BYTES + SECRET_BYTES

export const OFFSETS = {
  magic: 0,
  version: 8,
  kdf: 9,
  cipher: 10,
  reserved: 11,
  opslimit: 12,
  memlimitKib: 16,
  salt: 20,
  nonce: 36,
  owner: 60,
  box: 92
} as const
/** Bytes 0..92: the header, bound into the box key (docs/keys.md §9.2). */
export const HEADER_BYTES = OFFSETS.box
export const KEY_BACKUP_BYTES = HEADER_BYTES + BOX_BYTES

/** Bounds a reader accepts (a hostile file must not make us spend minutes or gigabytes). */
export const MIN_OPSLIMIT = 1
export const MAX_OPSLIMIT = 32
/** libsodium's crypto_pwhash_MEMLIMIT_MIN is 8192 bytes. */
export const MIN_MEMLIMIT_KIB = 8
export const MAX_MEMLIMIT_KIB = 4 * 1024 * 1024

export interface KeyBackupFields {
  readonly opslimit: number
  /** Argon2 memory in KiB (RFC 9106's m); libsodium's memlimit is this × 1024 bytes. */
  readonly memlimitKib: number
  readonly salt: Uint8Array
  readonly nonce: Uint8Array
  /** Ed25519 public key of the identity (the owner id, in clear). */
  readonly owner: Uint8Array
  /** crypto_secretbox_easy output: 16-byte Poly1305 tag || 32-byte encrypted root secret. */
  readonly box: Uint8Array
}

function checkParams (opslimit: number, memlimitKib: number, where: string): void {
  if (!Number.isInteger(opslimit) || opslimit < MIN_OPSLIMIT || opslimit > MAX_OPSLIMIT) {
    throw new SetupError(SetupCodes.BACKUP_INVALID, `${where}: Argon2id opslimit ${opslimit} is outside ${MIN_OPSLIMIT}..${MAX_OPSLIMIT}`)
  }
  if (!Number.isInteger(memlimitKib) || memlimitKib < MIN_MEMLIMIT_KIB || memlimitKib > MAX_MEMLIMIT_KIB) {
    throw new SetupError(SetupCodes.BACKUP_INVALID, `${where}: Argon2id memory ${memlimitKib} KiB is outside ${MIN_MEMLIMIT_KIB}..${MAX_MEMLIMIT_KIB} KiB`)
  }
}

/** The 92 header bytes (everything before the box). */
export function encodeHeader (f: Omit<KeyBackupFields, 'box'>): Uint8Array {
  checkParams(f.opslimit, f.memlimitKib, 'key backup')
  if (f.salt.byteLength !== SALT_BYTES || f.nonce.byteLength !== NONCE_BYTES || f.owner.byteLength !== OWNER_BYTES) {
    throw new RangeError('key backup: salt, nonce or owner has the wrong length')
  }
  const out = Buffer.alloc(HEADER_BYTES)
  out.set(KEY_BACKUP_MAGIC, OFFSETS.magic)
  out[OFFSETS.version] = KEY_BACKUP_VERSION
  out[OFFSETS.kdf] = KDF_ARGON2ID13
  out[OFFSETS.cipher] = CIPHER_SECRETBOX
  out[OFFSETS.reserved] = 0
  out.writeUInt32BE(f.opslimit, OFFSETS.opslimit)
  out.writeUInt32BE(f.memlimitKib, OFFSETS.memlimitKib)
  out.set(f.salt, OFFSETS.salt)
  out.set(f.nonce, OFFSETS.nonce)
  out.set(f.owner, OFFSETS.owner)
  return new Uint8Array(out)
}

export function encodeKeyBackup (f: KeyBackupFields): Uint8Array {
  if (f.box.byteLength !== BOX_BYTES) throw new RangeError(`key backup: the box must be ${BOX_BYTES} bytes`)
  const out = new Uint8Array(KEY_BACKUP_BYTES)
  out.set(encodeHeader(f), 0)
  out.set(f.box, HEADER_BYTES)
  return out
}

/** Decode and check a key backup; `name` (a path) goes into error messages. */
export function decodeKeyBackup (bytes: Uint8Array, name: string): KeyBackupFields {
  const where = JSON.stringify(name)
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (b.byteLength < KEY_BACKUP_MAGIC.byteLength || !b.subarray(0, KEY_BACKUP_MAGIC.byteLength).equals(KEY_BACKUP_MAGIC)) {
    throw new SetupError(SetupCodes.BACKUP_INVALID, `${where} is not a dustbox key backup (it does not start with "DUSTKEY")`)
  }
  if (b.byteLength < HEADER_BYTES) throw new SetupError(SetupCodes.BACKUP_INVALID, `${where} is truncated (${b.byteLength} bytes)`)
  const version = b[OFFSETS.version]
  if (version !== KEY_BACKUP_VERSION) throw new SetupError(SetupCodes.BACKUP_INVALID, `${where}: key backup format version ${version} is not supported (this dustbox reads version ${KEY_BACKUP_VERSION})`)
  if (b[OFFSETS.kdf] !== KDF_ARGON2ID13) throw new SetupError(SetupCodes.BACKUP_INVALID, `${where}: unknown key derivation ${b[OFFSETS.kdf]}`)
  if (b[OFFSETS.cipher] !== CIPHER_SECRETBOX) throw new SetupError(SetupCodes.BACKUP_INVALID, `${where}: unknown cipher ${b[OFFSETS.cipher]}`)
  if (b[OFFSETS.reserved] !== 0) throw new SetupError(SetupCodes.BACKUP_INVALID, `${where}: reserved byte is not 0`)
  if (b.byteLength !== KEY_BACKUP_BYTES) throw new SetupError(SetupCodes.BACKUP_INVALID, `${where} has ${b.byteLength} bytes, a version 1 key backup has ${KEY_BACKUP_BYTES}`)
  const opslimit = b.readUInt32BE(OFFSETS.opslimit)
  const memlimitKib = b.readUInt32BE(OFFSETS.memlimitKib)
  checkParams(opslimit, memlimitKib, where)
  const copy = (from: number, len: number): Uint8Array => Uint8Array.from(b.subarray(from, from + len))
  return {
    opslimit,
    memlimitKib,
    salt: copy(OFFSETS.salt, SALT_BYTES),
    nonce: copy(OFFSETS.nonce, NONCE_BYTES),
    owner: copy(OFFSETS.owner, OWNER_BYTES),
    box: copy(OFFSETS.box, BOX_BYTES)
  }
}
