// This machine's device key and certificate (docs/keys.md "Device keys"): a random Ed25519 key per
// device, NOT derived from the owner's root secret, kept in <home>/device.key (mode 0600), and a
// certificate by which the owner's identity vouches for it, kept in <home>/device.cert and signed
// again whenever it is missing, invalid, for another key, by another identity, or under another name.
// The device key is what the node uses on the wire; peers treat every certified device as the owner.

import { promises as fsp } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import sodium from 'sodium-native'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { truncateUtf8 } from '../stubs/names.js'
import { StubError, StubCodes, ioError } from '../stubs/errors.js'
import { signDeviceCert, verifyDeviceCert, MAX_DEVICE_NAME_BYTES, MAX_CERT_BYTES } from '../net/device-cert.js'

export const DEVICE_KEY_FILE = 'device.key'
export const DEVICE_CERT_FILE = 'device.cert'
const KEY_HEADER = 'dustbox-device-key v1'
const MAX_KEY_FILE_BYTES = 4096
/** Hex characters of the device key in `id` (conflict file names, display). */
export const DEVICE_ID_HEX = 8
const DEFAULT_NAME = 'device'

export interface DeviceKeys {
  readonly publicKey: Buffer
  /** libsodium's 64-byte Ed25519 secret key (seed || public key). */
  readonly secretKey: Buffer
  /** The certificate (net/device-cert.ts) of publicKey by the identity. */
  readonly cert: Buffer
  readonly name: string
  /** First DEVICE_ID_HEX hex digits of publicKey. */
  readonly id: string
}

export interface DeviceOptions {
  /** Device name in the certificate (default: the host name, cleaned). */
  readonly name?: string
  /** Clock for the certificate's created_ms (tests). */
  readonly now?: () => number
}

/** A name fit for a certificate: printable, trimmed, at most 64 UTF-8 bytes, never empty. */
export function cleanDeviceName (name: string): string {
  const printable = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').replace(/\s+/g, ' ').trim()
  const cut = truncateUtf8(printable, MAX_DEVICE_NAME_BYTES).trim()
  return cut === '' ? DEFAULT_NAME : cut
}

export function encodeDeviceKeyFile (seed: Uint8Array): string {
  return `${KEY_HEADER}\n${Buffer.from(seed).toString('hex')}\n`
}

/** Strict parse of device.key's text: the header line, 64 lowercase hex digits, LF endings. */
export function decodeDeviceKeyFile (text: string, path: string): Buffer {
  const m = /^dustbox-device-key v1\n([0-9a-f]{64})\n$/.exec(text)
  if (m === null) throw new StubError(StubCodes.KEY_INVALID, `${JSON.stringify(path)} is not a dustbox device key file (expected the line "${KEY_HEADER}" and a line of 64 lowercase hex digits); move it away to make a new device key`)
  return Buffer.from(m[1], 'hex')
}

function keyPair (seed: Uint8Array): { publicKey: Buffer, secretKey: Buffer } {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed)
  return { publicKey, secretKey }
}

async function readSeed (path: string): Promise<Buffer | null> {
  let st
  try {
    st = await fsp.stat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw ioError('stat', path, err)
  }
  if (!st.isFile() || st.size > MAX_KEY_FILE_BYTES) throw new StubError(StubCodes.KEY_INVALID, `${JSON.stringify(path)} is not a dustbox device key file`)
  if ((st.mode & 0o077) !== 0) throw new StubError(StubCodes.KEY_INVALID, `${JSON.stringify(path)} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run "chmod 600 ${path}"`)
  let text: string
  try {
    text = await fsp.readFile(path, 'utf8')
  } catch (err) {
    throw ioError('read', path, err)
  }
  return decodeDeviceKeyFile(text, path)
}

/** The device seed: read it, or make one (no clobber: two starting agents end with the same key). */
/**
 * Give this home a device key of its own (docs/sync.md §2): done when an owner's key is imported, so
 * the home becomes another device of that owner instead of a second copy of the first one.
 */
export async function createDeviceKey (home: string): Promise<void> {
  (await loadOrCreateSeed(home)).fill(0)
}

async function loadOrCreateSeed (home: string): Promise<Buffer> {
  const path = join(home, DEVICE_KEY_FILE)
  const found = await readSeed(path)
  if (found !== null) return found
  const seed = Buffer.alloc(32)
  sodium.randombytes_buf(seed)
  try {
    await fsp.mkdir(home, { recursive: true, mode: 0o700 })
    await writeFileAtomic(path, Buffer.from(encodeDeviceKeyFile(seed), 'ascii'), { mode: 0o600, noClobber: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const other = await readSeed(path)
      if (other !== null) return other
    }
    throw ioError('write', path, err)
  }
  return seed
}

async function readCert (path: string): Promise<Buffer | null> {
  try {
    const st = await fsp.stat(path)
    if (!st.isFile() || st.size > MAX_CERT_BYTES) return null
    return await fsp.readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw ioError('read', path, err)
  }
}

/**
 * Load this device's key from `home` (making it on first use) and a certificate of it by
 * `identity`, signing a new one when the stored one is missing, invalid, for another key, by another
 * identity, or (when `opts.name` is given) under another name.
 */
export async function loadOrCreateDevice (home: string, identity: { publicKey: Uint8Array, secretKey: Uint8Array }, opts: DeviceOptions = {}): Promise<DeviceKeys> {
  const seed = await loadOrCreateSeed(home)
  const { publicKey, secretKey } = keyPair(seed)
  seed.fill(0)
  const certPath = join(home, DEVICE_CERT_FILE)
  const wantName = opts.name === undefined ? undefined : cleanDeviceName(opts.name)
  const stored = await readCert(certPath)
  if (stored !== null) {
    try {
      const c = verifyDeviceCert(stored, publicKey, certPath)
      if (c.identity.equals(Buffer.from(identity.publicKey)) && (wantName === undefined || wantName === c.name)) {
        return { publicKey, secretKey, cert: c.raw, name: c.name, id: publicKey.toString('hex').slice(0, DEVICE_ID_HEX) }
      }
    } catch {
      // Invalid or for another key: sign a new one below.
    }
  }
  const name = wantName ?? cleanDeviceName(hostname())
  const cert = signDeviceCert({ identity, devicePublicKey: publicKey, createdMs: Math.floor((opts.now ?? Date.now)()), name })
  try {
    await writeFileAtomic(certPath, cert, { mode: 0o600 })
  } catch (err) {
    throw ioError('write', certPath, err)
  }
  return { publicKey, secretKey, cert, name, id: publicKey.toString('hex').slice(0, DEVICE_ID_HEX) }
}
