// The owner's key hierarchy (docs/keys.md): one 32-byte root secret, and every other key derived from
// it with keyed BLAKE2b-256 over a fixed ASCII label. Also reads and writes the secret file (0600).

import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { Crypto } from './crypto.js'
import { KEY_BYTES, toHex, fromHex } from './crypto.js'
import { StubError, StubCodes, ioError } from './errors.js'
import { writeFileAtomic } from './fsutil.js'

/** KDF labels: K_label = BLAKE2b-256(key = root secret, message = ASCII label). Never change them. */
export const KDF_LABELS = {
  identity: 'dustbox/v1/identity',
  data: 'dustbox/v1/data',
  plainHash: 'dustbox/v1/plain-hash',
  stubMac: 'dustbox/v1/stub-mac',
  index: 'dustbox/v1/index',
  chunker: 'dustbox/v1/chunker',
  pointer: 'dustbox/v1/pointer-key',
  audit: 'dustbox/v1/audit'
} as const

export const SECRET_FILE = 'secret.key'
const SECRET_PREFIX = 'dustbox-secret-v1:'

export interface Keys {
  /** Ed25519 identity; publicKey is the owner id that stubs carry. */
  readonly identity: { readonly publicKey: Uint8Array, readonly secretKey: Uint8Array }
  /** Owner id: lowercase hex of the Ed25519 public key. */
  readonly ownerId: string
  /** Derives each block's encryption key and nonce. */
  readonly data: Uint8Array
  /** Keys the plaintext hashes (blocks and whole file), so they are no confirmation oracle. */
  readonly plainHash: Uint8Array
  /** Authenticates .f stubs. */
  readonly stubMac: Uint8Array
  /** Encrypts the folder index (later issues). */
  readonly index: Uint8Array
  /** Keys the chunker's gear table, so block boundaries are private to the owner. */
  readonly chunker: Uint8Array
  /** Seals the owner's BEP 44 pointer in the DHT (docs/discovery.md §4). */
  readonly pointer: Uint8Array
  /** Derives the owner's secret audit nonces and challenge order (docs/audits.md §2). */
  readonly audit: Uint8Array
}

export function deriveKey (crypto: Crypto, root: Uint8Array, label: string): Uint8Array {
  if (root.byteLength !== KEY_BYTES) throw new StubError(StubCodes.KEY_INVALID, 'root secret must be 32 bytes')
  return crypto.hash(Buffer.from(label, 'ascii'), root, KEY_BYTES)
}

export function deriveKeys (crypto: Crypto, root: Uint8Array): Keys {
  const identity = crypto.signKeypair(deriveKey(crypto, root, KDF_LABELS.identity))
  return {
    identity,
    ownerId: toHex(identity.publicKey),
    data: deriveKey(crypto, root, KDF_LABELS.data),
    plainHash: deriveKey(crypto, root, KDF_LABELS.plainHash),
    stubMac: deriveKey(crypto, root, KDF_LABELS.stubMac),
    index: deriveKey(crypto, root, KDF_LABELS.index),
    chunker: deriveKey(crypto, root, KDF_LABELS.chunker),
    pointer: deriveKey(crypto, root, KDF_LABELS.pointer),
    audit: deriveKey(crypto, root, KDF_LABELS.audit)
  }
}

export function encodeSecretFile (root: Uint8Array): string {
  return '# dustbox root secret. Anyone holding this file can read all your data: keep it private.\n' +
    `${SECRET_PREFIX}${toHex(root)}\n`
}

export function decodeSecretFile (text: string, path: string): Uint8Array {
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (!line.startsWith(SECRET_PREFIX)) break
    const root = fromHex(line.slice(SECRET_PREFIX.length), KEY_BYTES)
    if (root !== null) return root
    break
  }
  throw new StubError(StubCodes.KEY_INVALID, `${JSON.stringify(path)} is not a dustbox secret file (expected a line "${SECRET_PREFIX}<64 hex digits>")`)
}

/**
 * Create the home's secret file atomically (temp, fsync, no-clobber link: a crash leaves no empty or
 * partial secret), mode 0600 in a 0700 home. KEY_EXISTS if there is one already.
 */
export async function createSecret (crypto: Crypto, home: string): Promise<Uint8Array> {
  const path = join(home, SECRET_FILE)
  await fsp.mkdir(home, { recursive: true, mode: 0o700 })
  const root = crypto.randomBytes(KEY_BYTES)
  try {
    await writeFileAtomic(path, Buffer.from(encodeSecretFile(root), 'ascii'), { mode: 0o600, noClobber: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new StubError(StubCodes.KEY_EXISTS, `${JSON.stringify(path)} already exists; refusing to replace an identity`)
    }
    throw ioError('write secret', path, err)
  }
  return root
}

const MAX_SECRET_FILE = 4096

export async function loadSecret (home: string): Promise<Uint8Array> {
  const path = join(home, SECRET_FILE)
  let text: string
  try {
    const st = await fsp.stat(path)
    if (!st.isFile() || st.size > MAX_SECRET_FILE) throw new StubError(StubCodes.KEY_INVALID, `${JSON.stringify(path)} is not a dustbox secret file`)
    if ((st.mode & 0o077) !== 0) {
      throw new StubError(StubCodes.KEY_INVALID, `${JSON.stringify(path)} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run "chmod 600 ${path}"`)
    }
    text = await fsp.readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new StubError(StubCodes.KEY_MISSING, `no identity in ${JSON.stringify(home)}: run "dustbox init --home ${home}" first`)
    }
    throw err
  }
  return decodeSecretFile(text, path)
}
