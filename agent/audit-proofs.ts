// Owner-side proof-of-storage audits, the pure core (docs/audits.md §2): the owner does not keep a
// shard after upload, so before upload it cuts the shard into n ranges, derives n secret nonces and a
// secret order of the ranges from K_audit, and keeps only the first PROOF_BYTES of each expected
// answer (8·n bytes per shard and epoch). Later it sends challenge i (net AUDIT) and compares the
// peer's proof with expected answer i. No I/O here: the agent keeps the proofs and the schedule.
//
// Per shard and epoch, precomputing is one pass over the shard's bytes (each byte hashed once, by
// net's own `auditProof`, so owner and prover cannot disagree on the proof) plus 2n tiny hashes.

import sodium from 'sodium-native'
import { auditProof } from '../net/shard-store.js'
import { AuditStatus, NONCE_BYTES, SHARD_ID_BYTES, type AuditAnswer, type AuditChallenge } from '../net/messages.js'
import { AgentError, AgentCodes } from './errors.js'

/** Bytes kept of each expected proof (the wire carries 32; 64 bits make a forged answer pass 1 in 2^64). */
export const PROOF_BYTES = 8
/** Target bytes per challenged range before the clamp of the range count. */
export const AUDIT_RANGE_BYTES = 4096
/** Fewest ranges (challenges) per shard and epoch, unless the shard has fewer bytes. */
export const MIN_PROOFS = 8
/** Most ranges (challenges) per shard and epoch. */
export const MAX_PROOFS = 256
/** Largest shard size: offsets and lengths are u32 on the wire. */
export const MAX_AUDIT_SHARD_BYTES = 0xffffffff

export const AUDIT_KEY_BYTES = 32
/** Labels of the two derivations under K_audit (docs/audits.md §2.3, §2.4). Never change them. */
export const AUDIT_ORDER_LABEL = Buffer.from('dustbox/v1/audit-order', 'ascii')
export const AUDIT_NONCE_LABEL = Buffer.from('dustbox/v1/audit-nonce', 'ascii')
/** Digest length of the order keys o_j: BLAKE2b with an 8-byte output (a parameter, not a truncation). */
const ORDER_BYTES = 8

/** How a shard of `size` bytes is cut: n ranges of rangeBytes bytes (the last may be shorter, never empty). */
export interface AuditPlan { readonly n: number, readonly rangeBytes: number }

/** What checking one answer says about the peer's copy. */
export type AuditVerdict = 'ok' | 'missing' | 'bad-range' | 'corrupt'

function bad (text: string): AgentError {
  return new AgentError(AgentCodes.BAD_PARAMS, text)
}

/**
 * n0 = clamp(ceil(size / 4096), 8, 256), L = ceil(size / n0), n = ceil(size / L).
 * Range j is [j·L, min(size, (j+1)·L)): n non-empty ranges covering the shard exactly once.
 */
export function auditPlan (size: number): AuditPlan {
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_AUDIT_SHARD_BYTES) {
    throw bad(`audit: shard size must be a whole number of bytes from 1 to ${MAX_AUDIT_SHARD_BYTES}, not ${String(size)}`)
  }
  const n0 = Math.min(MAX_PROOFS, Math.max(MIN_PROOFS, Math.ceil(size / AUDIT_RANGE_BYTES)))
  const rangeBytes = Math.ceil(size / n0)
  return { n: Math.ceil(size / rangeBytes), rangeBytes }
}

/**
 * π for (shard, epoch): π[i] is the range that challenge i covers. Ranges are sorted by
 * o_j = BLAKE2b-64(key = K_audit, "dustbox/v1/audit-order" || S || u32be e || u32be j), bytewise, ties by j.
 */
export function rangeOrder (auditKey: Uint8Array, shardId: Uint8Array, size: number, epoch: number): Uint32Array {
  checkKey(auditKey)
  checkShardId(shardId)
  checkEpoch(epoch)
  return order(auditKey, shardId, auditPlan(size).n, epoch)
}

/**
 * The expected answers of one epoch, in challenge order: the first PROOF_BYTES of
 * auditProof(S, nonce_i, π_i·L, length_i, range π_i) for i = 0..n-1 (8·n bytes). `shardId` must be
 * the shard's id (H32 of `shard`); it is not recomputed here (that would hash the shard twice).
 */
export function makeProofs (auditKey: Uint8Array, shardId: Uint8Array, shard: Uint8Array, epoch: number): Buffer {
  checkKey(auditKey)
  checkShardId(shardId)
  checkEpoch(epoch)
  if (!(shard instanceof Uint8Array)) throw bad('audit: the shard must be bytes')
  const { n, rangeBytes } = auditPlan(shard.byteLength)
  const pi = order(auditKey, shardId, n, epoch)
  const msg = messageOf(AUDIT_NONCE_LABEL, shardId, epoch)
  const nonce = Buffer.alloc(NONCE_BYTES)
  const out = Buffer.alloc(n * PROOF_BYTES)
  for (let i = 0; i < n; i++) {
    const offset = pi[i] * rangeBytes
    const length = Math.min(rangeBytes, shard.byteLength - offset)
    const proof = auditProof(shardId, nonceInto(nonce, auditKey, msg, i), offset, length, shard.subarray(offset, offset + length))
    proof.copy(out, i * PROOF_BYTES, 0, PROOF_BYTES)
  }
  return out
}

/** Challenge i of (shard, epoch): (S, nonce_i, π_i·L, min(L, size − π_i·L)); length is never 0. */
export function challengeAt (auditKey: Uint8Array, shardId: Uint8Array, size: number, epoch: number, i: number): AuditChallenge {
  checkKey(auditKey)
  checkShardId(shardId)
  checkEpoch(epoch)
  const { n, rangeBytes } = auditPlan(size)
  if (!Number.isSafeInteger(i) || i < 0 || i >= n) {
    throw bad(`audit: challenge index must be a whole number from 0 to ${n - 1} for a shard of ${size} bytes, not ${String(i)}`)
  }
  const offset = order(auditKey, shardId, n, epoch)[i] * rangeBytes
  return {
    shard: Buffer.from(shardId),
    nonce: nonceAt(auditKey, shardId, epoch, i),
    offset,
    length: Math.min(rangeBytes, size - offset)
  }
}

/**
 * Judge a peer's answer to challenge i against the stored proofs of that epoch. An OK answer whose
 * proof does not start with the expected PROOF_BYTES is 'corrupt', and so is any status other than
 * OK, MISSING and BAD_RANGE (the wire decoder refuses those already). Throws if `proofs` holds no
 * proof i (the caller's bookkeeping is wrong, not the peer).
 */
export function checkAnswer (proofs: Uint8Array, i: number, answer: AuditAnswer): AuditVerdict {
  if (!(proofs instanceof Uint8Array) || proofs.byteLength % PROOF_BYTES !== 0) {
    throw bad(`audit: stored proofs must be a multiple of ${PROOF_BYTES} bytes`)
  }
  const count = proofs.byteLength / PROOF_BYTES
  if (!Number.isSafeInteger(i) || i < 0 || i >= count) {
    throw bad(`audit: challenge index ${String(i)} is outside the ${count} stored proofs`)
  }
  if (typeof answer !== 'object' || answer === null) return 'corrupt'
  switch (answer.status) {
    case AuditStatus.MISSING: return 'missing'
    case AuditStatus.BAD_RANGE: return 'bad-range'
    case AuditStatus.OK: break
    default: return 'corrupt'
  }
  const proof = answer.proof
  if (!(proof instanceof Uint8Array) || proof.byteLength < PROOF_BYTES) return 'corrupt'
  let diff = 0
  for (let k = 0; k < PROOF_BYTES; k++) diff |= proof[k] ^ proofs[i * PROOF_BYTES + k]
  return diff === 0 ? 'ok' : 'corrupt'
}

// ------------------------------------------------------------------------------------ internals

function checkKey (key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.byteLength !== AUDIT_KEY_BYTES) {
    throw bad(`audit: the audit key must be ${AUDIT_KEY_BYTES} bytes`)
  }
}

function checkShardId (id: Uint8Array): void {
  if (!(id instanceof Uint8Array) || id.byteLength !== SHARD_ID_BYTES) {
    throw bad(`audit: a shard id must be ${SHARD_ID_BYTES} bytes, not ${id instanceof Uint8Array ? id.byteLength : typeof id}`)
  }
}

function checkEpoch (epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > 0xffffffff) {
    throw bad(`audit: epoch must be a whole number from 0 to ${0xffffffff}, not ${String(epoch)}`)
  }
}

/** Scratch state of the order hashes (JavaScript runs one call at a time: no caller sees it). */
const STATE = Buffer.alloc(sodium.crypto_generichash_STATEBYTES)
const ORDER_OUT = Buffer.alloc(ORDER_BYTES)

/** label || S || u32be e || u32be 0: the message of the order and nonce hashes, x written in place per index. */
function messageOf (label: Buffer, shardId: Uint8Array, epoch: number): Buffer {
  const msg = Buffer.allocUnsafe(label.byteLength + SHARD_ID_BYTES + 8)
  label.copy(msg, 0)
  msg.set(shardId, label.byteLength)
  msg.writeUInt32BE(epoch, label.byteLength + SHARD_ID_BYTES)
  msg.writeUInt32BE(0, label.byteLength + SHARD_ID_BYTES + 4)
  return msg
}

/** nonce_i = BLAKE2b-256(key = K_audit, "dustbox/v1/audit-nonce" || S || u32be e || u32be i), into `out`. */
function nonceInto (out: Buffer, auditKey: Uint8Array, msg: Buffer, i: number): Buffer {
  msg.writeUInt32BE(i, msg.byteLength - 4)
  sodium.crypto_generichash(out, msg, auditKey)
  return out
}

function nonceAt (auditKey: Uint8Array, shardId: Uint8Array, epoch: number, i: number): Buffer {
  return nonceInto(Buffer.alloc(NONCE_BYTES), auditKey, messageOf(AUDIT_NONCE_LABEL, shardId, epoch), i)
}

function order (auditKey: Uint8Array, shardId: Uint8Array, n: number, epoch: number): Uint32Array {
  // o_j has 8 bytes: libsodium's one-shot crypto_generichash (and sodium-native's wrapper of it)
  // refuses digests under 16 bytes, but its init accepts 1..64 like BLAKE2b itself.
  const msg = messageOf(AUDIT_ORDER_LABEL, shardId, epoch)
  // An 8-byte big-endian string compares bytewise exactly as the pair (high u32, low u32) numerically.
  const hi = new Uint32Array(n)
  const lo = new Uint32Array(n)
  for (let j = 0; j < n; j++) {
    msg.writeUInt32BE(j, msg.byteLength - 4)
    sodium.crypto_generichash_init(STATE, auditKey, ORDER_BYTES)
    sodium.crypto_generichash_update(STATE, msg)
    sodium.crypto_generichash_final(STATE, ORDER_OUT)
    hi[j] = ORDER_OUT.readUInt32BE(0)
    lo[j] = ORDER_OUT.readUInt32BE(4)
  }
  STATE.fill(0) // no K_audit-keyed state left behind
  const pi = Uint32Array.from({ length: n }, (_, j) => j)
  pi.sort((a, b) => hi[a] !== hi[b] ? hi[a] - hi[b] : lo[a] !== lo[b] ? lo[a] - lo[b] : a - b)
  return pi
}
