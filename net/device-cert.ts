// Device certificates (docs/protocol.md §3.4): an owner's identity key certifies that a device's own
// transport key (random per device) belongs to that owner. Codec, signing and verification only;
// the handshake carries the certificate (extension 0x01) and peers then treat every certified
// device of an owner as that owner. Layout v1:
//   "DBXC" | u8 version = 1 | identity_pk (32) | device_pk (32) | u64be created_ms | u8 name_len (0..64)
//   | name (UTF-8) | sig (64)
// sig = Ed25519(identity sk, "dustbox/v1/device-cert" || 0x00 || every byte before sig).

import sodium from 'sodium-native'
import { NetError, NetCodes } from './errors.js'

export const CERT_MAGIC = Buffer.from('DBXC', 'ascii')
export const CERT_VERSION = 1
export const CERT_SIG_LABEL = Buffer.from('dustbox/v1/device-cert', 'ascii')
export const MAX_DEVICE_NAME_BYTES = 64
const KEY_BYTES = 32
const SIG_BYTES = 64
/** Bytes before the name: magic, version, two keys, created_ms, name_len. */
const FIXED_HEAD = 4 + 1 + KEY_BYTES + KEY_BYTES + 8 + 1
export const MIN_CERT_BYTES = FIXED_HEAD + SIG_BYTES
export const MAX_CERT_BYTES = FIXED_HEAD + MAX_DEVICE_NAME_BYTES + SIG_BYTES

export interface DeviceCert {
  /** The owner's Ed25519 identity public key (the signer). */
  readonly identity: Buffer
  /** The device's Ed25519 transport public key. */
  readonly device: Buffer
  readonly createdMs: number
  readonly name: string
  /** The whole certificate as encoded. */
  readonly raw: Buffer
}

export interface SignDeviceCertInput {
  readonly identity: { readonly publicKey: Uint8Array, readonly secretKey: Uint8Array }
  readonly devicePublicKey: Uint8Array
  readonly createdMs: number
  readonly name: string
}

/** Control characters (C0, DEL, C1) are not allowed in a device name. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

function checkName (name: string, fail: (why: string) => never): Buffer {
  const b = Buffer.from(name, 'utf8')
  if (b.byteLength > MAX_DEVICE_NAME_BYTES) fail(`name is ${b.byteLength} bytes, more than ${MAX_DEVICE_NAME_BYTES}`)
  if (CONTROL.test(name)) fail('name contains control characters')
  return b
}

function signedInput (body: Uint8Array): Buffer {
  return Buffer.concat([CERT_SIG_LABEL, Buffer.from([0]), body])
}

/** Encode and sign a certificate for `devicePublicKey` with the identity's secret key. */
export function signDeviceCert (input: SignDeviceCertInput): Buffer {
  const fail = (why: string): never => { throw new NetError(NetCodes.CONFIG_INVALID, `device certificate: ${why}`) }
  if (input.identity.publicKey.byteLength !== KEY_BYTES || input.identity.secretKey.byteLength !== 64) fail('the identity key pair has the wrong size')
  if (input.devicePublicKey.byteLength !== KEY_BYTES) fail(`the device key is ${input.devicePublicKey.byteLength} bytes, not ${KEY_BYTES}`)
  if (!Number.isSafeInteger(input.createdMs) || input.createdMs < 0) fail(`created_ms ${input.createdMs} is not a non-negative integer`)
  const name = checkName(input.name, fail)
  const body = Buffer.alloc(FIXED_HEAD + name.byteLength)
  let o = CERT_MAGIC.copy(body, 0)
  body[o++] = CERT_VERSION
  body.set(input.identity.publicKey, o); o += KEY_BYTES
  body.set(input.devicePublicKey, o); o += KEY_BYTES
  body.writeBigUInt64BE(BigInt(input.createdMs), o); o += 8
  body[o++] = name.byteLength
  name.copy(body, o)
  const sig = Buffer.alloc(SIG_BYTES)
  sodium.crypto_sign_detached(sig, signedInput(body), input.identity.secretKey)
  // A secret key whose public half is not the given identity would sign an unverifiable cert.
  if (!sodium.crypto_sign_verify_detached(sig, signedInput(body), input.identity.publicKey)) fail('the identity secret key does not match its public key')
  return Buffer.concat([body, sig])
}

/** Strict decode (no signature check): exact length, magic, version, name. Throws HANDSHAKE_FAILED. */
export function decodeDeviceCert (buf: Uint8Array, from: string): DeviceCert {
  const fail = (why: string): never => { throw new NetError(NetCodes.HANDSHAKE_FAILED, `${from}: device certificate ${why}`) }
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  if (b.length < MIN_CERT_BYTES || b.length > MAX_CERT_BYTES) fail(`of ${b.length} bytes is not ${MIN_CERT_BYTES}..${MAX_CERT_BYTES} bytes long`)
  if (!b.subarray(0, 4).equals(CERT_MAGIC)) fail('has no DBXC magic')
  if (b[4] !== CERT_VERSION) fail(`has version ${b[4]}, this node reads ${CERT_VERSION}`)
  const created = b.readBigUInt64BE(5 + 2 * KEY_BYTES)
  if (created > BigInt(Number.MAX_SAFE_INTEGER)) fail('has a creation time out of range')
  const n = b[FIXED_HEAD - 1]
  if (n > MAX_DEVICE_NAME_BYTES) fail(`name is ${n} bytes, more than ${MAX_DEVICE_NAME_BYTES}`)
  if (b.length !== FIXED_HEAD + n + SIG_BYTES) fail(`is ${b.length} bytes, but its name length says ${FIXED_HEAD + n + SIG_BYTES}`)
  const nameBytes = b.subarray(FIXED_HEAD, FIXED_HEAD + n)
  const name = nameBytes.toString('utf8')
  if (!Buffer.from(name, 'utf8').equals(nameBytes)) fail('name is not valid UTF-8')
  if (CONTROL.test(name)) fail('name contains control characters')
  const raw = Buffer.from(b)
  return {
    identity: raw.subarray(5, 5 + KEY_BYTES),
    device: raw.subarray(5 + KEY_BYTES, 5 + 2 * KEY_BYTES),
    createdMs: Number(created),
    name,
    raw
  }
}

/**
 * Decode and check a certificate: the identity's signature, and that it certifies `expectDevice`.
 * Throws HANDSHAKE_FAILED naming `from` and what is wrong (never a key).
 */
export function verifyDeviceCert (buf: Uint8Array, expectDevice: Uint8Array, from: string): DeviceCert {
  const cert = decodeDeviceCert(buf, from)
  const body = cert.raw.subarray(0, cert.raw.length - SIG_BYTES)
  const sig = cert.raw.subarray(cert.raw.length - SIG_BYTES)
  if (!sodium.crypto_sign_verify_detached(sig, signedInput(body), cert.identity)) {
    throw new NetError(NetCodes.HANDSHAKE_FAILED, `${from}: device certificate has an invalid signature (not signed by the identity it names)`)
  }
  if (expectDevice.byteLength !== KEY_BYTES || !cert.device.equals(Buffer.from(expectDevice.buffer, expectDevice.byteOffset, expectDevice.byteLength))) {
    throw new NetError(NetCodes.HANDSHAKE_FAILED, `${from}: device certificate is for another device key than the one it connected with`)
  }
  return cert
}
