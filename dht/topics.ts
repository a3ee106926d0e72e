// Topics: the 20-byte infohashes dustbox announces and looks up in the DHT (docs/discovery.md §2).
// The public swarm has one fixed topic; a private group's topic is keyed by the group secret and an
// owner's topic by the owner's public key, and both change every UTC day (epoch) so that an observer
// of the DHT cannot link them across days without the secret or the key.

import sodium from 'sodium-native'
import { DhtError, DhtCodes } from './errors.js'

export const TOPIC_BYTES = 20
export const EPOCH_MS = 86_400_000
/** Near an epoch boundary, also use the adjacent epoch's topic, so clocks this far apart still meet. */
export const EPOCH_SKEW_MS = 15 * 60_000
export const MIN_GROUP_SECRET_BYTES = 16
export const MAX_GROUP_SECRET_BYTES = 4096
export const MAX_NETWORK_NAME_BYTES = 64

export const LABELS = {
  public: 'dustbox/v1/topic/public',
  groupKey: 'dustbox/v1/group',
  group: 'dustbox/v1/topic/group',
  owner: 'dustbox/v1/topic/owner',
  pointerSalt: 'dustbox/v1/pointer'
} as const

export const TopicKinds = { public: 'public', group: 'group', owner: 'owner' } as const
export type TopicKind = (typeof TopicKinds)[keyof typeof TopicKinds]

export interface Topic {
  readonly kind: TopicKind
  /** For logs and the dashboard: `public`, `group:NAME`, `owner:<first 8 hex of the key>`. */
  readonly name: string
  /** The infohash for a UTC-day epoch (the public topic ignores it). */
  at: (epoch: number) => Buffer
}

export function blake2b (outLen: number, msg: Uint8Array, key?: Uint8Array): Buffer {
  const out = Buffer.alloc(outLen)
  if (key === undefined) sodium.crypto_generichash(out, msg)
  else sodium.crypto_generichash(out, msg, key)
  return out
}

function labelled (label: string, epoch: number): Buffer {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > 0xffffffff) throw new DhtError(DhtCodes.CONFIG_INVALID, `epoch ${epoch} is out of range`)
  const l = Buffer.from(label, 'ascii')
  const msg = Buffer.alloc(l.length + 4)
  l.copy(msg)
  msg.writeUInt32BE(epoch, l.length)
  return msg
}

export function epochOf (nowMs: number): number {
  return Math.floor(nowMs / EPOCH_MS)
}

/** The epochs whose topics to use at `nowMs`: the current one, plus a neighbour within the skew of a boundary. */
export function epochsAt (nowMs: number, skewMs = EPOCH_SKEW_MS): number[] {
  const e = epochOf(nowMs)
  const into = nowMs - e * EPOCH_MS
  const out = [e]
  if (into < skewMs && e > 0) out.push(e - 1)
  if (EPOCH_MS - into <= skewMs && e < 0xffffffff) out.push(e + 1)
  return out
}

const PUBLIC_ID = blake2b(TOPIC_BYTES, Buffer.from(LABELS.public, 'ascii'))

export function publicTopic (): Topic {
  return { kind: TopicKinds.public, name: 'public', at: () => Buffer.from(PUBLIC_ID) }
}

/** Checks a network name: 1..64 bytes of UTF-8, printable, no slash. */
export function checkNetworkName (name: string): string {
  const bytes = Buffer.byteLength(name, 'utf8')
  // eslint-disable-next-line no-control-regex
  if (bytes === 0 || bytes > MAX_NETWORK_NAME_BYTES || /[\u0000-\u001f\u007f/]/.test(name) || name !== name.trim()) {
    throw new DhtError(DhtCodes.CONFIG_INVALID, `network name ${JSON.stringify(name.slice(0, 80))} must be 1..${MAX_NETWORK_NAME_BYTES} bytes of printable UTF-8 with no slash and no surrounding spaces`)
  }
  return name
}

/** K_group = BLAKE2b-256(key = BLAKE2b-256(secret), "dustbox/v1/group" || 0x00 || UTF-8 name). */
export function groupKey (name: string, secret: Uint8Array): Buffer {
  checkNetworkName(name)
  if (secret.byteLength < MIN_GROUP_SECRET_BYTES || secret.byteLength > MAX_GROUP_SECRET_BYTES) {
    throw new DhtError(DhtCodes.CONFIG_INVALID, `group secret must be ${MIN_GROUP_SECRET_BYTES}..${MAX_GROUP_SECRET_BYTES} bytes, got ${secret.byteLength}`)
  }
  const s = blake2b(32, secret)
  const msg = Buffer.concat([Buffer.from(LABELS.groupKey, 'ascii'), Buffer.from([0]), Buffer.from(name, 'utf8')])
  return blake2b(32, msg, s)
}

export function groupTopic (name: string, secret: Uint8Array): Topic {
  const key = groupKey(name, secret)
  return { kind: TopicKinds.group, name: `group:${name}`, at: (epoch) => blake2b(TOPIC_BYTES, labelled(LABELS.group, epoch), key) }
}

export function ownerTopic (publicKey: Uint8Array): Topic {
  if (publicKey.byteLength !== 32) throw new DhtError(DhtCodes.CONFIG_INVALID, `an owner key is 32 bytes, got ${publicKey.byteLength}`)
  const key = Buffer.from(publicKey)
  return { kind: TopicKinds.owner, name: `owner:${key.toString('hex').slice(0, 8)}`, at: (epoch) => blake2b(TOPIC_BYTES, labelled(LABELS.owner, epoch), key) }
}

/** Reads a group secret file: its bytes with trailing whitespace removed; errors name the file. */
export function parseGroupSecret (file: string, bytes: Uint8Array): Buffer {
  let end = bytes.byteLength
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d || bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09)) end--
  if (end < MIN_GROUP_SECRET_BYTES || end > MAX_GROUP_SECRET_BYTES) {
    throw new DhtError(DhtCodes.CONFIG_INVALID, `group secret file ${file} must hold ${MIN_GROUP_SECRET_BYTES}..${MAX_GROUP_SECRET_BYTES} bytes (e.g. \`head -c 32 /dev/urandom | base64 > ${file}\`), it holds ${end}`)
  }
  return Buffer.from(bytes.subarray(0, end))
}
