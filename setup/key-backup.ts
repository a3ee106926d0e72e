// The passphrase-sealed key backup (docs/keys.md §9): seal the root secret with Argon2id + secretbox
// into the v1 file (key-backup-format.ts), open it again, read and write backup files, and read and
// check passphrases. Argon2id needs sodium-native (libsodium-wrappers ships no crypto_pwhash).
// Passphrases and secrets never appear in errors; buffers holding them are zeroed after use.

import { createRequire } from 'node:module'
import { promises as fsp } from 'node:fs'
import { dirname } from 'node:path'
import { deriveKeys, loadCrypto, toHex } from '../stubs/index.js'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { SetupError, SetupCodes, fileError } from './errors.js'
import {
  decodeKeyBackup, encodeHeader, encodeKeyBackup, BOX_BYTES, HEADER_BYTES, NONCE_BYTES, SALT_BYTES, SECRET_BYTES,
  type KeyBackupFields
} from './key-backup-format.js'

/** Argon2id passes (libsodium's OPSLIMIT_MODERATE). ~0.5 s with DEFAULT_MEMLIMIT_KIB on one 2020s core. */
export const DEFAULT_OPSLIMIT = 3
/** Argon2id memory, KiB (256 MiB: libsodium's MEMLIMIT_MODERATE). */
export const DEFAULT_MEMLIMIT_KIB = 256 * 1024
/** Shortest passphrase accepted, in Unicode code points after NFC normalization. */
export const MIN_PASSPHRASE_CHARS = 12
export const MAX_PASSPHRASE_BYTES = 1024
export const MAX_PASSPHRASE_FILE_BYTES = 4096
/** A key backup is 140 bytes; anything much bigger is not one (read at most this much). */
export const MAX_BACKUP_FILE_BYTES = 4096
/** Default backup file name, in the home. */
export const KEY_BACKUP_FILE = 'key-backup.dustkey'

export interface KdfParams {
  readonly opslimit: number
  readonly memlimitKib: number
}

export const DEFAULT_KDF: KdfParams = { opslimit: DEFAULT_OPSLIMIT, memlimitKib: DEFAULT_MEMLIMIT_KIB }

type Sodium = typeof import('sodium-native')
let sodium: Sodium | null = null

function loadSodium (): Sodium {
  if (sodium !== null) return sodium
  try {
    sodium = createRequire(import.meta.url)('sodium-native') as Sodium
    return sodium
  } catch (err) {
    throw new SetupError(SetupCodes.KDF_UNAVAILABLE, `the key backup needs Argon2id from sodium-native, which did not load (${(err as Error).message.split('\n')[0]}); reinstall dustbox with "npm ci"`, { cause: err })
  }
}

/** Box key = keyed BLAKE2b-256(key = Argon2id(passphrase, salt), message = header bytes 0..92). */
async function boxKey (passphrase: Uint8Array, header: Uint8Array, f: Omit<KeyBackupFields, 'box'>): Promise<Uint8Array> {
  const s = loadSodium()
  const stretched = new Uint8Array(32)
  await s.crypto_pwhash_async(stretched, passphrase, f.salt, f.opslimit, f.memlimitKib * 1024, s.crypto_pwhash_ALG_ARGON2ID13)
  const key = new Uint8Array(32)
  s.crypto_generichash(key, header, stretched)
  s.sodium_memzero(stretched)
  return key
}

export interface SealOptions extends Partial<KdfParams> {
  /** Fixed salt and nonce: golden vectors only. */
  readonly salt?: Uint8Array
  readonly nonce?: Uint8Array
}

/** Seal `root` (32 bytes) under `passphrase` (checked UTF-8 bytes); returns the file's bytes. */
export async function sealKeyBackup (root: Uint8Array, passphrase: Uint8Array, opts: SealOptions = {}): Promise<Uint8Array> {
  if (root.byteLength !== SECRET_BYTES) throw new RangeError('the root secret must be 32 bytes')
  const s = loadSodium()
  const crypto = await loadCrypto()
  const rand = (n: number): Uint8Array => { const b = new Uint8Array(n); s.randombytes_buf(b); return b }
  const head = {
    opslimit: opts.opslimit ?? DEFAULT_OPSLIMIT,
    memlimitKib: opts.memlimitKib ?? DEFAULT_MEMLIMIT_KIB,
    salt: opts.salt ?? rand(SALT_BYTES),
    nonce: opts.nonce ?? rand(NONCE_BYTES),
    owner: deriveKeys(crypto, root).identity.publicKey
  }
  const header = encodeHeader(head)
  const key = await boxKey(passphrase, header, head)
  const box = new Uint8Array(BOX_BYTES)
  s.crypto_secretbox_easy(box, root, head.nonce, key)
  s.sodium_memzero(key)
  return encodeKeyBackup({ ...head, box })
}

/**
 * Open a backup with its passphrase: the root secret and its owner id. PASSPHRASE_WRONG when the
 * box does not open (wrong passphrase or altered file); BACKUP_INVALID when the secret inside does
 * not give the owner id in the header.
 */
export async function openKeyBackup (bytes: Uint8Array, passphrase: Uint8Array, name: string): Promise<{ root: Uint8Array, ownerId: string }> {
  const f = decodeKeyBackup(bytes, name)
  const s = loadSodium()
  const key = await boxKey(passphrase, bytes.subarray(0, HEADER_BYTES), f)
  const root = new Uint8Array(SECRET_BYTES)
  const ok = s.crypto_secretbox_open_easy(root, f.box, f.nonce, key)
  s.sodium_memzero(key)
  if (!ok) throw new SetupError(SetupCodes.PASSPHRASE_WRONG, `the passphrase does not open the key backup ${JSON.stringify(name)} (or the file was altered)`)
  const ownerId = deriveKeys(await loadCrypto(), root).ownerId
  if (ownerId !== toHex(f.owner)) {
    s.sodium_memzero(root)
    throw new SetupError(SetupCodes.BACKUP_INVALID, `${JSON.stringify(name)}: the secret inside does not match the owner id in its header`)
  }
  return { root, ownerId }
}

/** Read and decode a backup file (bounded); no passphrase needed. */
export async function readKeyBackupFile (path: string): Promise<{ bytes: Uint8Array, fields: KeyBackupFields, ownerId: string }> {
  const bytes = await readBounded(path, MAX_BACKUP_FILE_BYTES, 'key backup', SetupCodes.BACKUP_INVALID)
  const fields = decodeKeyBackup(bytes, path)
  return { bytes, fields, ownerId: toHex(fields.owner) }
}

/** Write a backup file atomically, mode 0600 (the directory is created 0700 when missing). */
export async function writeKeyBackupFile (path: string, bytes: Uint8Array): Promise<void> {
  try {
    await fsp.mkdir(dirname(path), { recursive: true, mode: 0o700 })
    await writeFileAtomic(path, bytes, { mode: 0o600 })
  } catch (err) {
    throw fileError('write the key backup', path, err)
  }
}

/** Check and encode a passphrase: NFC-normalized UTF-8, at least MIN_PASSPHRASE_CHARS code points. */
export function passphraseBytes (text: string, where: string, minChars = MIN_PASSPHRASE_CHARS): Uint8Array {
  const norm = text.normalize('NFC')
  if (norm.trim() === '') throw new SetupError(SetupCodes.PASSPHRASE_INVALID, `${where}: the passphrase is empty`)
  const chars = [...norm].length
  if (chars < minChars) throw new SetupError(SetupCodes.PASSPHRASE_INVALID, `${where}: the passphrase has ${chars} characters; use at least ${minChars} (a few unrelated words are easy to remember and hard to guess)`)
  const bytes = new Uint8Array(Buffer.from(norm, 'utf8'))
  if (bytes.byteLength > MAX_PASSPHRASE_BYTES) throw new SetupError(SetupCodes.PASSPHRASE_INVALID, `${where}: the passphrase is longer than ${MAX_PASSPHRASE_BYTES} bytes`)
  return bytes
}

/** A passphrase from a file: its whole content, minus one trailing newline (LF or CRLF). */
export async function readPassphraseFile (path: string, minChars = MIN_PASSPHRASE_CHARS): Promise<Uint8Array> {
  const raw = await readBounded(path, MAX_PASSPHRASE_FILE_BYTES, 'passphrase file', SetupCodes.PASSPHRASE_INVALID)
  const text = Buffer.from(raw).toString('utf8').replace(/\r?\n$/, '')
  raw.fill(0)
  if (text.includes('\n')) throw new SetupError(SetupCodes.PASSPHRASE_INVALID, `passphrase file ${JSON.stringify(path)} has more than one line`)
  return passphraseBytes(text, `passphrase file ${JSON.stringify(path)}`, minChars)
}

/** Read a small file whole, bounded: errors name it as `what` with `code`. */
export async function readBounded (path: string, max: number, what: string, code: typeof SetupCodes.BACKUP_INVALID | typeof SetupCodes.PASSPHRASE_INVALID): Promise<Uint8Array> {
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(path, 'r')
  } catch (err) {
    const c = (err as NodeJS.ErrnoException).code
    throw new SetupError(code, `${what} ${JSON.stringify(path)} ${c === 'ENOENT' ? 'does not exist' : c === 'EACCES' ? 'is not readable (permission denied)' : `cannot be opened (${c ?? (err as Error).message})`}`)
  }
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new SetupError(code, `${what} ${JSON.stringify(path)} is not a regular file`)
    if (st.size === 0) throw new SetupError(code, `${what} ${JSON.stringify(path)} is empty`)
    if (st.size > max) throw new SetupError(code, `${what} ${JSON.stringify(path)} is larger than ${max} bytes`)
    const buf = Buffer.alloc(max + 1)
    let n = 0
    for (let i = 0; i < 64 && n <= max; i++) {
      const { bytesRead } = await fh.read(buf, n, buf.byteLength - n, n)
      if (bytesRead === 0) break
      n += bytesRead
    }
    if (n > max) throw new SetupError(code, `${what} ${JSON.stringify(path)} is larger than ${max} bytes`)
    const out = new Uint8Array(n)
    out.set(buf.subarray(0, n))
    buf.fill(0)
    return out
  } catch (err) {
    if (err instanceof SetupError) throw err
    throw new SetupError(code, `${what} ${JSON.stringify(path)} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  } finally {
    await fh.close()
  }
}

/** Times a new passphrase is asked (twice each: it must match) before giving up. */
export const MAX_PASSPHRASE_ATTEMPTS = 3

/**
 * A new passphrase, asked twice with echo off until both match (at most MAX_PASSPHRASE_ATTEMPTS
 * times): what `dustbox setup` and `dustbox key export` ask.
 */
export async function askNewPassphrase (p: { askSecret: (q: string) => Promise<string>, say: (line: string) => void }, minChars = MIN_PASSPHRASE_CHARS): Promise<Uint8Array> {
  let last: unknown
  for (let i = 0; i < MAX_PASSPHRASE_ATTEMPTS; i++) {
    let first: Uint8Array
    try { first = passphraseBytes(await p.askSecret('Passphrase'), 'passphrase', minChars) } catch (err) {
      if (!(err instanceof SetupError) || err.code === SetupCodes.INPUT_ENDED) throw err
      last = err
      p.say(`  ${err.message}`)
      continue
    }
    const again = Buffer.from((await p.askSecret('Same passphrase again')).normalize('NFC'), 'utf8')
    if (Buffer.from(first).equals(again)) { again.fill(0); return first }
    first.fill(0)
    again.fill(0)
    last = new SetupError(SetupCodes.PASSPHRASE_INVALID, 'the two passphrases differ')
    if (i < MAX_PASSPHRASE_ATTEMPTS - 1) p.say('  the two passphrases differ; try again')
  }
  throw last
}
