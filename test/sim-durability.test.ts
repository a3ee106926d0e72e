// The durability model (bench/durability-model.ts, docs/durability.md): the Markov chain against
// closed forms (mirror with and without repair, 2-of-3, Erlang and uniform repair delays), precision
// down to 1e-20, monotonicity, the Monte Carlo against the chain at stressed parameters (4 sigma),
// determinism with a seed, the per-file formulas, and the `npm run sim -- durability` command line.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import {
  DAY, HOUR, NO_CHURN, EXPONENTIAL_SHAPE, DEFAULT_SHAPE, ModelError,
  absorptionByTime, blockChain, blockLoss, fileLoss, meanTimeToLoss, monteCarlo, sharedPeersFileLoss,
  makeChain, gatherWait, availabilityWait, falseLostRate, churnRates, atLeastOnline,
  type DurabilityParams, type Shape
} from '../bench/durability-model.js'
import { parseArgs, parseDuration, fmtP, UsageError, HOME, LIBRARY_MAX_M, LIBRARY_MAX_K } from '../bench/sim-durability.js'
import { MAX_M, MAX_K } from '../stubs/erasure.js'

const SIM = fileURLToPath(new URL('../bench/sim.js', import.meta.url))

/** A bare model: no churn, no silent losses, no detection delay, big network. */
function bare (over: Partial<DurabilityParams>): DurabilityParams {
  return {
    k: 1, m: 1, peers: 1000, lambda: 1, silentFraction: 0, lostAfter: 0, auditPeriod: 7 * DAY,
    repairTime: 0, threshold: 0, churn: NO_CHURN, fetch: 'gather', replaceDelay: 14 * DAY, ...over
  }
}

function close (actual: number, expected: number, rel: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `${what}: ${actual} vs ${expected} (rel ${rel})`)
}

test('mirror without repair: P(loss by t) = (1 - e^{-λt})^2, down to 1e-20', () => {
  for (const [lambda, t] of [[1, 1], [0.5, 2], [1e-3, 1], [1e-10, 1]] as const) {
    const chain = blockChain(bare({ lambda, threshold: 0 }))
    const q = -Math.expm1(-lambda * t)
    close(absorptionByTime(chain, t), q * q, 1e-9, `λ=${lambda} t=${t}`)
  }
  // 2-of-3 (k=2, m=1) without repair: P = 3q²(1-q) + q³.
  for (const lambda of [0.3, 1e-9]) {
    const q = -Math.expm1(-lambda)
    close(absorptionByTime(blockChain(bare({ k: 2, m: 1, lambda, threshold: 1 })), 1), 3 * q * q * (1 - q) + q ** 3, 1e-9, `2+1 λ=${lambda}`)
  }
})

test('mirror with repair: MTTDL = (3λ+μ)/(2λ²) and the exact transient', () => {
  for (const [lambda, mu] of [[1, 50], [0.5, 365], [2, 3], [1e-4, 1000]] as const) {
    const p = bare({ lambda, repairTime: 1 / mu, threshold: 1 })
    const chain = blockChain(p, EXPONENTIAL_SHAPE)
    close(meanTimeToLoss(chain), (3 * lambda + mu) / (2 * lambda * lambda), 1e-9, `MTTDL λ=${lambda} μ=${mu}`)
    // Survival from the full state: A e^{r1 t} + B e^{r2 t}, s(0) = 1, s'(0) = 0.
    const b = 3 * lambda + mu
    const disc = Math.sqrt(b * b - 8 * lambda * lambda)
    const r2 = (-b - disc) / 2
    const r1 = 2 * lambda * lambda / r2 // product of the roots; (-b + disc)/2 would cancel
    const t = 1
    // 1 - s(t) = [r2 (1 - e^{r1 t}) - r1 (1 - e^{r2 t})] / (r2 - r1), each part without cancellation.
    const loss = (r2 * -Math.expm1(r1 * t) - r1 * -Math.expm1(r2 * t)) / (r2 - r1)
    close(absorptionByTime(chain, t), loss, 1e-6, `P(1y) λ=${lambda} μ=${mu}`)
  }
})

test('phase-type delays: Erlang detection and uniform-like repair in the mirror', () => {
  const lambda = 3
  // Detection as Erlang-h of mean D, no repair phase: MTTDL = 1/(2λq) + 1/λ, q = 1 - (α/(α+λ))^h.
  for (const h of [1, 4, 32]) {
    const D = 0.05
    const chain = blockChain(bare({ lambda, lostAfter: D, threshold: 1 }), { detect: h, repair: 1, silentCap: 0 })
    const alpha = h / D
    const q = 1 - (alpha / (alpha + lambda)) ** h
    close(meanTimeToLoss(chain), 1 / (2 * lambda * q) + 1 / lambda, 1e-9, `Erlang-${h}`)
  }
  // Repair as h phases entered at a random one (mean T): q = 1 - (1/h) Σ_j (a/(a+λ))^j, a = (h+1)/(2T).
  for (const h of [1, 8]) {
    const T = 0.02
    const chain = blockChain(bare({ lambda, repairTime: T, threshold: 1 }), { detect: 1, repair: h, silentCap: 0 })
    const a = (h + 1) / (2 * T)
    let s = 0
    for (let j = 1; j <= h; j++) s += (a / (a + lambda)) ** j
    const q = 1 - s / h
    close(meanTimeToLoss(chain), 1 / (2 * lambda * q) + 1 / lambda, 1e-9, `spread-${h}`)
  }
})

test('precision: tiny probabilities keep their digits; uniformization agrees with the MTTDL when loss is rare', () => {
  close(fileLoss(1e-20, 256), 2.56e-18, 1e-12, 'fileLoss 1e-20')
  assert.equal(fileLoss(1, 3), 1)
  close(fileLoss(0.5, 2), 0.75, 1e-15, 'fileLoss 0.5')
  const p: DurabilityParams = { ...HOME, k: 8, m: 4, threshold: 11 }
  const b = blockLoss(p)
  assert.ok(b.exact)
  assert.ok(b.p > 1e-12 && b.p < 1e-3, `8+4 block loss ${b.p}`)
  close(b.p, b.pFromMttdl, 0.05, 'transient vs MTTDL')
  // A chain whose loss is ~1e-40: still positive and consistent with its MTTDL.
  const tiny = blockLoss({ ...bare({ k: 4, m: 8, lambda: 1e-3, repairTime: HOUR, threshold: 11 }) }, 1, EXPONENTIAL_SHAPE)
  assert.ok(tiny.p > 0 && tiny.p < 1e-30, `tiny ${tiny.p}`)
  close(tiny.p, tiny.pFromMttdl, 1e-3, 'tiny transient vs MTTDL')
  // Hand-made chain a → b → loss, rates 1 and 1e-12: P(t=1) = 1e-12 ∫0^1 (1 - e^{-s}) ds = 1e-12/e.
  const c = makeChain(2, 0, [[0, 1, 1]], [0, 1e-12])
  close(absorptionByTime(c, 1), 1e-12 * Math.exp(-1), 1e-9, 'two-step chain')
  assert.equal(1 - (1 - 1e-20) ** 256, 0) // the naive per-file formula has lost every digit
})

test('monotonic: more parity, faster repair, shorter LOST_AFTER, fewer failures → less loss', () => {
  const base: DurabilityParams = { ...HOME, k: 4, m: 2, threshold: 5 }
  const P = (over: Partial<DurabilityParams>, shape: Shape = DEFAULT_SHAPE): number => blockLoss({ ...base, ...over }, 1, shape).p
  const byM = [1, 2, 3, 4].map(m => P({ m, threshold: 4 + m - 1 }))
  for (let i = 1; i < byM.length; i++) assert.ok(byM[i] < byM[i - 1], `m: ${byM.join(' ')}`)
  const byRepair = [48, 24, 6, 1].map(h => P({ repairTime: h * HOUR }))
  for (let i = 1; i < byRepair.length; i++) assert.ok(byRepair[i] < byRepair[i - 1], `repair: ${byRepair.join(' ')}`)
  const byLost = [7, 3, 1].map(d => P({ lostAfter: d * DAY }))
  for (let i = 1; i < byLost.length; i++) assert.ok(byLost[i] < byLost[i - 1], `lost-after: ${byLost.join(' ')}`)
  const byLambda = [1, 0.5, 0.25].map(lambda => P({ lambda }))
  for (let i = 1; i < byLambda.length; i++) assert.ok(byLambda[i] < byLambda[i - 1], `λ: ${byLambda.join(' ')}`)
  // Eager repair beats lazy; gathering shards beats needing k holders online together; no churn is best.
  const big: Partial<DurabilityParams> = { k: 8, m: 4 }
  assert.ok(P({ ...big, threshold: 11 }) < P({ ...big, threshold: 10 }))
  assert.ok(P({ ...big, threshold: 11 }) < P({ ...big, threshold: 11, fetch: 'together' }))
  assert.ok(P({ ...big, threshold: 11, churn: NO_CHURN }) < P({ ...big, threshold: 11 }))
  // Exponential delays overstate "m+1 failures in one window"; more Erlang phases converge down.
  const h1 = P(big, EXPONENTIAL_SHAPE)
  const h8 = P({ ...big, threshold: 11 }, { ...DEFAULT_SHAPE, detect: 8 })
  const h32 = P({ ...big, threshold: 11 })
  assert.ok(h1 > h8 && h8 > h32, `${h1} ${h8} ${h32}`)
})

test('Monte Carlo agrees with the chain at stressed parameters (4 sigma)', () => {
  const points: Array<Partial<DurabilityParams>> = [
    { k: 2, m: 1, threshold: 2, lambda: 2, lostAfter: 3 * DAY, repairTime: 24 * HOUR, silentFraction: 0.1 },
    { k: 4, m: 2, threshold: 5, lambda: 5, lostAfter: 3 * DAY, repairTime: 24 * HOUR, silentFraction: 0.1 },
    { k: 6, m: 3, threshold: 7, lambda: 3, lostAfter: 2 * DAY, repairTime: 12 * HOUR, silentFraction: 0.2 }
  ]
  for (const [x, over] of points.entries()) {
    const p: DurabilityParams = { ...HOME, ...over, churn: NO_CHURN }
    const chain = blockLoss(p).p
    const mc = monteCarlo(p, { trials: 1500, horizon: 1, seed: 11 + x, policy: 'sweep', delays: 'erlang', churn: false })
    const sigma = Math.sqrt(chain * (1 - chain) / mc.trials)
    assert.ok(chain > 0.02 && chain < 0.98, `point ${x} is not stressed: ${chain}`)
    assert.ok(Math.abs(mc.p - chain) <= 4 * sigma, `point ${x}: MC ${mc.p} [${mc.lo}, ${mc.hi}] vs chain ${chain} (σ ${sigma})`)
  }
})

test('Monte Carlo is deterministic with a seed; traffic and false declarations are sensible', () => {
  const p: DurabilityParams = { ...HOME, k: 4, m: 2, threshold: 5 }
  const o = { trials: 40, horizon: 1, seed: 5, policy: 'declared', delays: 'real', churn: true } as const
  const a = monteCarlo(p, o)
  const b = monteCarlo(p, o)
  assert.deepEqual(a, b)
  const c = monteCarlo(p, { ...o, seed: 6 })
  assert.notDeepEqual(a, c)
  // Alive peers declared lost: the churn model's rate, within Monte Carlo noise.
  const model = falseLostRate(p.churn, p.lostAfter)
  close(a.falseDeclared / a.holderYears, model, 0.35, 'false declarations per peer-year')
  // Eager repair downloads about (k+m)(λ + false rate) blocks per block-year.
  close(a.down / a.blockYears, (p.k + p.m) * (p.lambda + model), 0.35, 'download per block-year')
  assert.ok(a.wastedDown + a.wastedUp > 0 && a.wastedDown + a.wastedUp < a.down + a.up)
  assert.throws(() => monteCarlo(p, { ...o, trials: 0 }), ModelError)
})

test('churn model: rates add up, waits grow as holders get scarce', () => {
  const r = churnRates(HOME.churn)
  close(r.meanOff / (r.meanOn + r.meanOff), HOME.churn.offlineFraction, 1e-12, 'offline fraction')
  assert.ok(falseLostRate(HOME.churn, 1 * DAY) > falseLostRate(HOME.churn, 3 * DAY))
  assert.equal(falseLostRate(NO_CHURN, DAY), 0)
  assert.ok(gatherWait(13, 12, HOME.churn) > gatherWait(17, 12, HOME.churn))
  assert.ok(availabilityWait(13, 12, HOME.churn) > availabilityWait(17, 12, HOME.churn))
  assert.ok(gatherWait(17, 12, HOME.churn) < availabilityWait(17, 12, HOME.churn))
  close(atLeastOnline(3, 1, 0.7), 1 - 0.3 ** 3, 1e-12, 'atLeastOnline')
  assert.throws(() => churnRates({ ...HOME.churn, longOffPerYear: 100 }), ModelError)
})

test('files: independent blocks, and blocks sharing few peers', () => {
  const p = 1e-6
  // N = k+m: every block has the same holders, so any file is lost exactly when a block is.
  close(sharedPeersFileLoss(p, 262144, 4, 2, 6), p, 1e-5, 'N = k+m')
  // Many peers: the blocks' fatal sets are distinct, as if independent.
  close(sharedPeersFileLoss(p, 256, 4, 2, 1e6), fileLoss(p, 256), 1e-3, 'N large')
  assert.ok(sharedPeersFileLoss(p, 262144, 4, 2, 30) < fileLoss(p, 262144))
})

test('command line: flags, durations, limits', () => {
  close(parseDuration('3d', 'x'), 3 * DAY, 1e-12, '3d')
  close(parseDuration('6h', 'x'), 6 * HOUR, 1e-12, '6h')
  close(parseDuration('90m', 'x'), 1.5 * HOUR, 1e-12, '90m')
  close(parseDuration('30s', 'x'), HOUR / 120, 1e-12, '30s')
  close(parseDuration('2', 'x'), 2 * HOUR, 1e-12, 'bare hours')
  assert.throws(() => parseDuration('3 days', 'x'), UsageError)
  const o = parseArgs(['--k', '4', '--m=2', '--peers', '30', '--lambda', '0.5', '--lost-after', '3d', '--repair-time', '6h', '--threshold', '5', '--trials', '9', '--seed', '3'])
  assert.equal(o.params.k, 4)
  assert.equal(o.params.m, 2)
  assert.equal(o.params.peers, 30)
  assert.equal(o.params.threshold, 5)
  assert.equal(o.trials, 9)
  assert.equal(o.seed, 3)
  assert.equal(o.custom, true)
  assert.equal(parseArgs([]).custom, false)
  assert.equal(parseArgs(['--k', '8', '--m', '4']).params.threshold, 11) // eager by default
  for (const bad of [['--bogus', '1'], ['--k'], ['--k', 'x'], ['--threshold', '9'], ['--peers', '3'], ['--fetch', 'all'], ['--table=1'], ['extra']]) {
    assert.throws(() => parseArgs(bad), UsageError, bad.join(' '))
  }
  assert.equal(fmtP(2.1e-6), '2.1e-6')
  assert.equal(fmtP(0.234), '0.23')
  // The table's library limits are the erasure code's.
  assert.equal(LIBRARY_MAX_M, MAX_M)
  assert.equal(LIBRARY_MAX_K, MAX_K)
})

test('npm run sim -- durability: one configuration ends with a JSON line; bad names exit 2', () => {
  const r = spawnSync(process.execPath, [SIM, 'durability', '--k', '2', '--m', '1', '--lambda', '2', '--trials', '30', '--seed', '4'], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  const summary = JSON.parse(lines[lines.length - 1]) as Record<string, unknown>
  assert.equal(summary.sim, 'durability')
  assert.equal(summary.k, 2)
  assert.equal(typeof summary.lossPerGiB, 'number')
  const again = spawnSync(process.execPath, [SIM, 'durability', '--k', '2', '--m', '1', '--lambda', '2', '--trials', '30', '--seed', '4'], { encoding: 'utf8', timeout: 60_000 })
  const s2 = JSON.parse(again.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>
  assert.equal(s2.mcLosses, summary.mcLosses)
  assert.equal(s2.repairGiBPerGiBYear, summary.repairGiBPerGiBYear)
  for (const args of [['nosuch'], [], ['durability', '--nope']]) {
    const bad = spawnSync(process.execPath, [SIM, ...args], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(bad.status, 2, args.join(' '))
    assert.match(bad.stderr, /USAGE/)
  }
})
