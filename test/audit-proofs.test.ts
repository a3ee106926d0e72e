// Owner-side audit proofs (agent/audit-proofs.ts, docs/audits.md): the golden vector
// docs/vectors/audit-v1.json and its independent Python checker, the range plan (every byte of every
// size covered exactly once), the secret order (a permutation, new each epoch), a real ShardStore's
// honest answers passing every challenge, one flipped or truncated byte on its disk failing exactly
// the challenges that cover it, MISSING / BAD_RANGE, and bad inputs refused with clear errors.
// Regenerate the vector only after a deliberate format change (a new label, never v1 in place):
//   npx tsc -p . && DUSTBOX_WRITE_VECTORS=1 node test/run.js audit-proofs

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  auditPlan, rangeOrder, makeProofs, challengeAt, checkAnswer,
  PROOF_BYTES, AUDIT_RANGE_BYTES, MIN_PROOFS, MAX_PROOFS, AUDIT_ORDER_LABEL, AUDIT_NONCE_LABEL
} from '../agent/audit-proofs.js'
import { AgentError } from '../agent/errors.js'
import { ShardStore, shardIdOf, auditProof, AuditStatus } from '../net/index.js'
import type { AuditAnswer, AuditChallenge } from '../net/messages.js'
import { deriveKeys, deriveKey, KDF_LABELS } from '../stubs/keys.js'
import { loadNative } from '../stubs/crypto.js'
import { prng } from './helpers/fixtures.js'

const FILE = fileURLToPath(new URL('../../docs/vectors/audit-v1.json', import.meta.url))
const CHECKER = fileURLToPath(new URL('../../docs/vectors/check_audit_v1.py', import.meta.url))
const WRITE = process.env.DUSTBOX_WRITE_VECTORS === '1'
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const MiB = 1024 * 1024

/** Vector inputs: the public test root of v1.json, shard bytes from a formula. */
const ROOT = Uint8Array.from({ length: 32 }, (_, i) => i)
const DATA_FORMULA = 'byte i = (i * 31 + 7) & 255, for i = 0 .. size-1'
const data = (size: number): Buffer => Buffer.from(Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) & 255))
const VECTOR_SHARDS: ReadonlyArray<{ size: number, epoch: number }> = [
  { size: 1, epoch: 0 }, { size: 10, epoch: 0 }, { size: 5000, epoch: 0 }, { size: 5000, epoch: 1 },
  { size: 70000, epoch: 0 }, { size: 70000, epoch: 0xffffffff }
]
/** Sizes whose plan the vector lists (and the coverage test walks). */
const PLAN_SIZES = [1, 7, 8, 9, 49, 50, 4095, 4096, 4097, 32768, 32769, MiB - 1, MiB, MiB + 1, 4 * MiB + 46, 4 * MiB + 4096, 0xffffffff]

async function auditKeyOfRoot (): Promise<Buffer> {
  return Buffer.from(deriveKeys(await loadNative(), ROOT).audit)
}

async function build (): Promise<Record<string, unknown>> {
  const key = await auditKeyOfRoot()
  return {
    about: 'docs/audits.md §2: owner-side audit proofs v1. Root secret = keys root of v1.json (000102…1f); auditKey = BLAKE2b-256(key = root, "dustbox/v1/audit"). Shard bytes from dataFormula; id = unkeyed BLAKE2b-256 of the bytes. Hex unless noted; order = π (order[i] = range of challenge i); challenges = the first 3 (or all if fewer); proofs = expected_0 || … || expected_{n-1}, 8 bytes each.',
    rootSecret: hex(ROOT),
    labels: { auditKey: KDF_LABELS.audit, order: AUDIT_ORDER_LABEL.toString('ascii'), nonce: AUDIT_NONCE_LABEL.toString('ascii'), proof: 'dustbox/v1/audit' },
    constants: { proofBytes: PROOF_BYTES, rangeBytes: AUDIT_RANGE_BYTES, minProofs: MIN_PROOFS, maxProofs: MAX_PROOFS },
    auditKey: hex(key),
    dataFormula: DATA_FORMULA,
    plans: PLAN_SIZES.map(size => ({ size, ...auditPlan(size) })),
    shards: VECTOR_SHARDS.map(({ size, epoch }) => {
      const bytes = data(size)
      const id = shardIdOf(bytes)
      const { n, rangeBytes } = auditPlan(size)
      return {
        size,
        epoch,
        id: hex(id),
        n,
        rangeBytes,
        order: Array.from(rangeOrder(key, id, size, epoch)),
        challenges: Array.from({ length: Math.min(3, n) }, (_, i) => {
          const c = challengeAt(key, id, size, epoch, i)
          return { i, nonce: hex(c.nonce), offset: c.offset, length: c.length }
        }),
        proofs: hex(makeProofs(key, id, bytes, epoch))
      }
    })
  }
}

if (WRITE) {
  test('write docs/vectors/audit-v1.json (DUSTBOX_WRITE_VECTORS=1)', async () => {
    // Number arrays and flat objects on one line keep the file short and diffable.
    const text = JSON.stringify(await build(), null, 1)
      .replace(/\[\n\s*(\d+(?:,\n\s*\d+)*)\n\s*\]/g, (_m, body: string) => '[' + body.replace(/,\n\s*/g, ', ') + ']')
      .replace(/\{\n((?:\s*"\w+": (?:"[0-9a-f]*"|\d+),?\n)+)\s*\}/g, (_m, body: string) => '{ ' + body.trim().replace(/,\n\s*/g, ', ') + ' }')
    await fsp.writeFile(FILE, text + '\n')
  })
} else {
  test('audit vector: recomputes exactly (docs/vectors/audit-v1.json)', async () => {
    const want = JSON.parse(readFileSync(FILE, 'utf8')) as Record<string, unknown>
    const got = JSON.parse(JSON.stringify(await build())) as Record<string, unknown>
    for (const k of Object.keys(want)) assert.deepEqual(got[k], want[k], `field ${k}`)
    assert.deepEqual(Object.keys(got), Object.keys(want))
  })
}

test('audit vector: the independent Python checker agrees (skipped without python3)', t => {
  const probe = spawnSync('python3', ['-c', 'import hashlib; hashlib.blake2b(b"", digest_size=8, key=bytes(32))'], { encoding: 'utf8' })
  if (probe.error !== undefined || probe.status !== 0) { t.skip('python3 with hashlib.blake2b is not available'); return }
  const r = spawnSync('python3', [CHECKER], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(r.status, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /audit-v1\.json: all checks passed/)
})

test('audit key: K_audit = BLAKE2b-256(key = root, "dustbox/v1/audit"), apart from every other key', async () => {
  const crypto = await loadNative()
  const keys = deriveKeys(crypto, ROOT)
  assert.equal(KDF_LABELS.audit, 'dustbox/v1/audit')
  assert.equal(hex(keys.audit), hex(deriveKey(crypto, ROOT, 'dustbox/v1/audit')))
  const v1 = JSON.parse(readFileSync(fileURLToPath(new URL('../../docs/vectors/v1.json', import.meta.url)), 'utf8')) as { keys: Record<string, unknown> }
  assert.equal(v1.keys.audit, hex(keys.audit), 'v1.json keys.audit')
  const others = [keys.data, keys.plainHash, keys.stubMac, keys.index, keys.chunker, keys.pointer, keys.identity.secretKey.subarray(0, 32)].map(hex)
  assert.ok(!others.includes(hex(keys.audit)))
})

test('audit plan: n ranges, each non-empty, cover every size exactly once; n = n0 from 50 bytes on', () => {
  const check = (z: number): void => {
    const { n, rangeBytes: L } = auditPlan(z)
    const n0 = Math.min(MAX_PROOFS, Math.max(MIN_PROOFS, Math.ceil(z / AUDIT_RANGE_BYTES)))
    assert.ok(n >= 1 && n <= MAX_PROOFS, `n of ${z}`)
    // Ranges j·L .. min(z, (j+1)·L): contiguous from 0, none empty, the last ends at z.
    let end = 0
    for (let j = 0; j < n; j++) {
      const start = j * L
      const stop = Math.min(z, (j + 1) * L)
      assert.equal(start, end, `range ${j} of ${z} starts where ${j - 1} ended`)
      assert.ok(stop > start, `range ${j} of ${z} is not empty`)
      end = stop
    }
    assert.equal(end, z, `the ranges of ${z} end at the shard's end`)
    if (z >= 50) assert.equal(n, n0, `n of ${z}`)
    if (z <= MAX_PROOFS * AUDIT_RANGE_BYTES) assert.ok(L <= AUDIT_RANGE_BYTES, `L of ${z}`)
  }
  for (const z of PLAN_SIZES) check(z)
  for (let z = 1; z <= 70_000; z++) check(z)
  for (let z = MiB - 300; z <= MiB + 300; z++) check(z)
  assert.deepEqual(auditPlan(1), { n: 1, rangeBytes: 1 })
  assert.deepEqual(auditPlan(9), { n: 5, rangeBytes: 2 })
  assert.deepEqual(auditPlan(49), { n: 7, rangeBytes: 7 }, 'the largest size with n < n0')
  assert.deepEqual(auditPlan(4096), { n: 8, rangeBytes: 512 })
  assert.deepEqual(auditPlan(32769), { n: 9, rangeBytes: 3641 })
  assert.deepEqual(auditPlan(MiB), { n: 256, rangeBytes: 4096 })
  assert.deepEqual(auditPlan(MiB + 1), { n: 256, rangeBytes: 4097 })
  assert.deepEqual(auditPlan(4 * MiB + 46), { n: 256, rangeBytes: 16385 })
})

test('audit order: a permutation of the ranges, secret per key, new per epoch and per shard', () => {
  const key = randomBytes(32)
  const id = randomBytes(32)
  for (const z of PLAN_SIZES) {
    const pi = rangeOrder(key, id, z, 0)
    assert.equal(pi.length, auditPlan(z).n)
    assert.deepEqual([...pi].sort((a, b) => a - b), Array.from({ length: pi.length }, (_, j) => j), `π of ${z} is a permutation`)
    // Challenges of one epoch visit every range once and cover the shard exactly once.
    const covered = Array.from({ length: pi.length }, (_, i) => challengeAt(key, id, z, 0, i)).sort((a, b) => a.offset - b.offset)
    let end = 0
    for (const c of covered) { assert.equal(c.offset, end); assert.ok(c.length >= 1); end += c.length }
    assert.equal(end, z)
  }
  const s = (pi: Uint32Array): string => pi.join(',')
  const base = s(rangeOrder(key, id, MiB, 0))
  assert.notEqual(s(rangeOrder(key, id, MiB, 1)), base, 'another epoch, another order')
  assert.notEqual(s(rangeOrder(randomBytes(32), id, MiB, 0)), base, 'another key, another order')
  assert.notEqual(s(rangeOrder(key, randomBytes(32), MiB, 0)), base, 'another shard, another order')
  assert.equal(s(rangeOrder(Buffer.from(key), Buffer.from(id), MiB, 0)), base, 'deterministic')
  // Nonces differ between positions, epochs and shards.
  const nonces = new Set<string>()
  for (const e of [0, 1]) for (let i = 0; i < 256; i++) nonces.add(hex(challengeAt(key, id, MiB, e, i).nonce))
  assert.equal(nonces.size, 512)
  assert.equal(makeProofs(key, id, prng('x', MiB), 0).byteLength, 256 * PROOF_BYTES)
})

async function storeWith (t: TestContext, shard: Buffer): Promise<{ store: ShardStore, owner: Buffer, id: Buffer, path: string }> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'dustbox-audit-'))
  const store = new ShardStore({ dir, donatedBytes: 64 * MiB, reserveDiskBytes: 0 })
  // One hook: the store closes (writing usage.json) before its directory goes.
  t.after(async () => { await store.close(); await fsp.rm(dir, { recursive: true, force: true }) })
  await store.open()
  const owner = randomBytes(32)
  const id = shardIdOf(shard)
  await store.put(owner, id, shard)
  const path = join(dir, 'owners', hex(owner), hex(id).slice(0, 2), hex(id))
  assert.equal((await fsp.stat(path)).size, shard.byteLength, 'the store keeps the shard at protocol.md §7\'s path')
  return { store, owner, id, path }
}

/** Every challenge of an epoch, asked of a store in batches of 64 (the wire's limit). */
async function askAll (store: ShardStore, owner: Buffer, challenges: AuditChallenge[]): Promise<AuditAnswer[]> {
  const out: AuditAnswer[] = []
  for (let i = 0; i < challenges.length; i += 64) out.push(...await store.audit(owner, challenges.slice(i, i + 64)))
  return out
}

function challengesOf (key: Buffer, id: Buffer, size: number, epoch: number): AuditChallenge[] {
  return Array.from({ length: auditPlan(size).n }, (_, i) => challengeAt(key, id, size, epoch, i))
}

test('audit: a real ShardStore holding the shard passes every challenge of several epochs', async t => {
  const key = randomBytes(32)
  for (const size of [1, 9, 4097, MiB + 1, 4 * MiB + 46]) {
    const shard = prng(`honest ${size}`, size)
    const { store, owner, id } = await storeWith(t, shard)
    for (const epoch of [0, 1, 0xffffffff]) {
      const proofs = makeProofs(key, id, shard, epoch)
      const challenges = challengesOf(key, id, size, epoch)
      assert.equal(proofs.byteLength, challenges.length * PROOF_BYTES)
      const answers = await askAll(store, owner, challenges)
      const verdicts = answers.map((a, i) => checkAnswer(proofs, i, a))
      assert.deepEqual(verdicts, challenges.map(() => 'ok'), `size ${size}, epoch ${epoch}`)
      // The previous epoch's proofs do not pass this epoch's answers (for more than one range).
      if (epoch > 0 && challenges.length > 1) {
        const old = makeProofs(key, id, shard, epoch - 1)
        assert.ok(answers.some((a, i) => checkAnswer(old, i, a) === 'corrupt'))
      }
    }
    // The same answers as auditProof over the owner's own bytes (no store).
    const c = challengeAt(key, id, size, 0, 0)
    const direct = auditProof(id, c.nonce, c.offset, c.length, shard.subarray(c.offset, c.offset + c.length))
    assert.equal(checkAnswer(makeProofs(key, id, shard, 0), 0, { status: AuditStatus.OK, proof: direct }), 'ok')
  }
})

/** What a peer that does not check its copy answers: the protocol's proof over whatever bytes it kept. */
function answerFrom (data: Buffer, c: AuditChallenge): AuditAnswer {
  const end = c.length === 0 ? data.length : c.offset + c.length
  if (c.offset > data.length || end > data.length) return { status: AuditStatus.BAD_RANGE, proof: Buffer.alloc(32) }
  return { status: AuditStatus.OK, proof: auditProof(c.shard, c.nonce, c.offset, c.length, data.subarray(c.offset, end)) }
}

test('audit: one flipped byte fails exactly the challenge whose range covers it; an honest store drops the damaged copy', async t => {
  const key = randomBytes(32)
  const size = 70_000
  const shard = prng('flip', size)
  const { store, owner, id, path } = await storeWith(t, shard)
  const epoch = 3
  const { rangeBytes: L } = auditPlan(size)
  const proofs = makeProofs(key, id, shard, epoch)
  const pi = rangeOrder(key, id, size, epoch)
  const challenges = challengesOf(key, id, size, epoch)
  // A peer that answers from an altered copy without checking it.
  for (const at of [0, 1, L - 1, L, 5 * L + 17, size - L, size - 1]) {
    const bad = Buffer.from(shard)
    bad[at] ^= 0x01
    const verdicts = challenges.map((c, i) => checkAnswer(proofs, i, answerFrom(bad, c)))
    const failing = verdicts.flatMap((v, i) => v === 'ok' ? [] : [i])
    const expected = pi.indexOf(Math.floor(at / L))
    assert.deepEqual(failing, [expected], `byte ${at}: only challenge ${expected} (range ${Math.floor(at / L)}) fails`)
    assert.equal(verdicts[expected], 'corrupt')
  }
  // Truncated: the challenges of ranges reaching past the new end are BAD_RANGE, the others pass.
  const keep = 3 * L + 100
  const cut = shard.subarray(0, keep)
  assert.deepEqual(challenges.map((c, i) => checkAnswer(proofs, i, answerFrom(cut, c))), Array.from(pi, j => (j + 1) * L <= keep ? 'ok' : 'bad-range'))
  // The real store verifies the whole copy first: a flipped byte anywhere → dropped, MISSING from then on.
  const bad = Buffer.from(shard)
  bad[size - 1] ^= 0x01
  await fsp.writeFile(path, bad)
  assert.deepEqual((await askAll(store, owner, challenges.slice(0, 3))).map((a, i) => checkAnswer(proofs, i, a)), ['missing', 'missing', 'missing'])
  assert.equal(await fsp.stat(path).then(() => true, () => false), false, 'the damaged copy is removed')
})

test('audit: MISSING, BAD_RANGE and bad OK answers map to their verdicts', async t => {
  const key = randomBytes(32)
  const shard = prng('statuses', 5000)
  const { store, owner, id } = await storeWith(t, shard)
  const proofs = makeProofs(key, id, shard, 0)
  // A shard the peer never had.
  const other = randomBytes(32)
  const [missing] = await store.audit(owner, [challengeAt(key, other, 5000, 0, 0)])
  assert.equal(checkAnswer(proofs, 0, missing), 'missing')
  // Challenges for a larger size than the peer holds reach past its end somewhere.
  const bigger = challengesOf(key, id, 50_000, 0)
  const answers = await askAll(store, owner, bigger)
  assert.ok(answers.some(a => a.status === AuditStatus.BAD_RANGE))
  for (const a of answers.filter(a => a.status === AuditStatus.BAD_RANGE)) assert.equal(checkAnswer(proofs, 0, a), 'bad-range')
  // OK answers: only the first PROOF_BYTES count; short proofs and unknown statuses are corrupt.
  const c = challengeAt(key, id, 5000, 0, 2)
  const right = auditProof(id, c.nonce, c.offset, c.length, shard.subarray(c.offset, c.offset + c.length))
  assert.equal(checkAnswer(proofs, 2, { status: AuditStatus.OK, proof: right }), 'ok')
  assert.equal(checkAnswer(proofs, 2, { status: AuditStatus.OK, proof: Buffer.concat([right.subarray(0, 8), Buffer.alloc(24)]) }), 'ok')
  assert.equal(checkAnswer(proofs, 1, { status: AuditStatus.OK, proof: right }), 'corrupt', 'another challenge\'s proof')
  assert.equal(checkAnswer(proofs, 2, { status: AuditStatus.OK, proof: Buffer.alloc(32) }), 'corrupt')
  assert.equal(checkAnswer(proofs, 2, { status: AuditStatus.OK, proof: right.subarray(0, 7) }), 'corrupt')
  assert.equal(checkAnswer(proofs, 2, { status: 9, proof: right }), 'corrupt')
  assert.equal(checkAnswer(proofs, 2, undefined as unknown as AuditAnswer), 'corrupt', 'no answer at all')
  const flipped = Buffer.from(right)
  flipped[7] ^= 0x80
  assert.equal(checkAnswer(proofs, 2, { status: AuditStatus.OK, proof: flipped }), 'corrupt')
})

test('audit: bad inputs are refused with BAD_PARAMS and a message naming what is wrong', () => {
  const key = randomBytes(32)
  const id = randomBytes(32)
  const throwsWith = (fn: () => unknown, re: RegExp): void => {
    assert.throws(fn, (e: unknown) => e instanceof AgentError && e.code === 'BAD_PARAMS' && re.test(e.message) && !e.message.includes(hex(key)), re.source)
  }
  const notANumber = '5' as unknown as number
  for (const size of [0, -1, 1.5, 2 ** 32, Number.NaN, Infinity, notANumber]) throwsWith(() => auditPlan(size), /^BAD_PARAMS: audit: shard size must be a whole number of bytes from 1 to 4294967295, not /)
  throwsWith(() => rangeOrder(key.subarray(0, 31), id, 10, 0), /the audit key must be 32 bytes/)
  throwsWith(() => makeProofs(Buffer.alloc(33), id, Buffer.alloc(10), 0), /the audit key must be 32 bytes/)
  throwsWith(() => rangeOrder(key, Buffer.alloc(33), 10, 0), /a shard id must be 32 bytes, not 33/)
  throwsWith(() => challengeAt(key, Buffer.alloc(0), 10, 0, 0), /a shard id must be 32 bytes, not 0/)
  for (const epoch of [-1, 2 ** 32, 0.5, Number.NaN]) {
    throwsWith(() => rangeOrder(key, id, 10, epoch), /epoch must be a whole number from 0 to 4294967295/)
    throwsWith(() => makeProofs(key, id, Buffer.alloc(10), epoch), /epoch must be a whole number/)
    throwsWith(() => challengeAt(key, id, 10, epoch, 0), /epoch must be a whole number/)
  }
  throwsWith(() => makeProofs(key, id, Buffer.alloc(0), 0), /shard size must be .* not 0/)
  throwsWith(() => makeProofs(key, id, 'shard' as unknown as Uint8Array, 0), /the shard must be bytes/)
  throwsWith(() => challengeAt(key, id, 10, 0, 5), /challenge index must be a whole number from 0 to 4 for a shard of 10 bytes, not 5/)
  throwsWith(() => challengeAt(key, id, 10, 0, -1), /not -1/)
  throwsWith(() => challengeAt(key, id, 10, 0, 0.5), /not 0\.5/)
  const proofs = makeProofs(key, id, Buffer.alloc(10), 0)
  const ok: AuditAnswer = { status: AuditStatus.OK, proof: Buffer.alloc(32) }
  throwsWith(() => checkAnswer(proofs, 5, ok), /challenge index 5 is outside the 5 stored proofs/)
  throwsWith(() => checkAnswer(proofs, -1, ok), /challenge index -1 is outside/)
  throwsWith(() => checkAnswer(proofs.subarray(0, 12), 0, ok), /stored proofs must be a multiple of 8 bytes/)
  throwsWith(() => checkAnswer(Buffer.alloc(0), 0, ok), /challenge index 0 is outside the 0 stored proofs/)
})
