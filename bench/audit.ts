// Audit bench (`npm run bench -- audit`): the owner's precomputation of audit proofs
// (agent/audit-proofs.ts makeProofs, one pass over each shard plus 2n tiny hashes) over SHARDS
// shards of 1 MiB, beside plain unkeyed BLAKE2b-256 of the same bytes in the same process (the
// floor: every byte must be hashed once). Then the per-challenge costs: the owner deriving a
// challenge (challengeAt) and checking an answer (checkAnswer), and the prover's proof over one
// range (auditProof, without the shard read). MB = 10^6 bytes; the last line is one JSON object.

import { randomBytes } from 'node:crypto'
import sodium from 'sodium-native'
import { makeProofs, challengeAt, checkAnswer, auditPlan, PROOF_BYTES } from '../agent/audit-proofs.js'
import { auditProof, shardIdOf } from '../net/shard-store.js'
import { AuditStatus, type AuditAnswer } from '../net/messages.js'
import { RSS_SAMPLE_MS, SCALE } from './config.js'
import { measure } from './measure.js'
import { MB, MiB, cell, round, table, printJsonLine } from './report.js'

const SHARD_BYTES = MiB
/** Shards per pass (256 MiB at scale 1). */
const SHARDS = Math.max(16, Math.round(256 * SCALE))
/** Timed passes per phase; the median is reported (the machine may be busy). */
const REPEATS = 5
/** Challenges timed per per-challenge figure. */
const CHALLENGES = Math.max(1000, Math.round(5000 * SCALE))

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/** REPEATS timed passes of fn: the median pass's seconds, and the CPU seconds of them all. */
async function timed (name: string, fn: () => void): Promise<{ seconds: number, cpuSeconds: number }> {
  fn() // warm-up
  const runs: number[] = []
  const m = await measure({ sampleMs: RSS_SAMPLE_MS, name: `audit-${name}` }, async () => {
    for (let r = 0; r < REPEATS; r++) {
      const t0 = performance.now()
      fn()
      runs.push((performance.now() - t0) / 1000)
    }
  })
  return { seconds: median(runs), cpuSeconds: m.cpuSeconds }
}

export async function runAuditBench (): Promise<void> {
  const key = randomBytes(32)
  const shards = Array.from({ length: SHARDS }, () => randomBytes(SHARD_BYTES))
  const ids = shards.map(s => shardIdOf(s))
  const { n, rangeBytes } = auditPlan(SHARD_BYTES)
  const bytes = SHARDS * SHARD_BYTES
  process.stderr.write(`audit: ${SHARDS} shards of ${SHARD_BYTES / MiB} MiB (${n} ranges of ${rangeBytes} bytes each), ${REPEATS} passes per phase\n`)

  const digest = Buffer.alloc(32)
  const ref = await timed('ref-blake2b', () => { for (const s of shards) sodium.crypto_generichash(digest, s) })
  const make = await timed('make-proofs', () => { for (let i = 0; i < SHARDS; i++) makeProofs(key, ids[i], shards[i], 0) })

  // Per challenge: the owner derives challenge i (nonce and order), the prover hashes its range,
  // the owner checks the answer. Proofs of the shards cycled through are made before the clock.
  const pool = Math.min(SHARDS, 16)
  const proofs = shards.slice(0, pool).map((s, i) => makeProofs(key, ids[i], s, 0))
  const challenges = Array.from({ length: CHALLENGES }, (_, c) => challengeAt(key, ids[c % pool], SHARD_BYTES, 0, c % n))
  const answers: AuditAnswer[] = challenges.map((c, k) => {
    const s = shards[k % pool]
    return { status: AuditStatus.OK, proof: auditProof(c.shard, c.nonce, c.offset, c.length, s.subarray(c.offset, c.offset + c.length)) }
  })
  const perChallenge = (seconds: number): number => seconds * 1e6 / CHALLENGES
  const derive = await timed('challenge', () => { for (let c = 0; c < CHALLENGES; c++) challengeAt(key, ids[c % pool], SHARD_BYTES, 0, c % n) })
  const prove = await timed('prove', () => {
    for (let k = 0; k < CHALLENGES; k++) {
      const c = challenges[k]
      auditProof(c.shard, c.nonce, c.offset, c.length, shards[k % pool].subarray(c.offset, c.offset + c.length))
    }
  })
  let bad = 0
  const check = await timed('check', () => { for (let k = 0; k < CHALLENGES; k++) if (checkAnswer(proofs[k % pool], k % n, answers[k]) !== 'ok') bad++ })
  if (bad > 0) throw new Error(`audit bench: ${bad} honest answers did not check`)

  const makeMbs = bytes / MB / make.seconds
  const refMbs = bytes / MB / ref.seconds
  console.log(`Audit proofs of ${SHARDS} shards of ${SHARD_BYTES / MiB} MiB (${n} proofs of ${PROOF_BYTES} bytes per shard: ${n * PROOF_BYTES} bytes kept), median of ${REPEATS} passes; MB = 10^6 bytes`)
  console.log(table(['phase', 'MB/s', 'x reference', 'ms per shard', 'CPU s (all passes)'], [
    ['reference: unkeyed BLAKE2b-256 of each shard', cell(refMbs, 0), '1.00', cell(ref.seconds * 1000 / SHARDS, 3), cell(ref.cpuSeconds, 2)],
    ['makeProofs (epoch 0)', cell(makeMbs, 0), cell(makeMbs / refMbs, 2), cell(make.seconds * 1000 / SHARDS, 3), cell(make.cpuSeconds, 2)]
  ]))
  console.log(table(['per challenge', 'µs', 'CPU s (all passes)'], [
    ['owner: challengeAt (nonce + order of the shard)', cell(perChallenge(derive.seconds), 2), cell(derive.cpuSeconds, 2)],
    [`prover: auditProof over one ${rangeBytes}-byte range (no read)`, cell(perChallenge(prove.seconds), 2), cell(prove.cpuSeconds, 2)],
    ['owner: checkAnswer', cell(perChallenge(check.seconds), 3), cell(check.cpuSeconds, 2)]
  ]))
  printJsonLine({
    bench: 'audit',
    shards: SHARDS,
    shard_bytes: SHARD_BYTES,
    proofs_per_shard: n,
    range_bytes: rangeBytes,
    proof_bytes_per_shard: n * PROOF_BYTES,
    make_proofs_mb_s: round(makeMbs, 0),
    ref_blake2b_mb_s: round(refMbs, 0),
    make_proofs_ratio_ref: round(makeMbs / refMbs, 2),
    make_proofs_ms_per_shard: round(make.seconds * 1000 / SHARDS, 3),
    challenge_us: round(perChallenge(derive.seconds), 2),
    prove_us: round(perChallenge(prove.seconds), 2),
    check_us: round(perChallenge(check.seconds), 3)
  })
}
