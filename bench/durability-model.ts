// Durability model of erasure-coded blocks on home peers (docs/durability.md): pure functions, no I/O.
//  - the continuous-time Markov chain of one block (intact shard count × stage of the repair
//    pipeline: detection of the loss, waits, repair, each an Erlang phase), its annual loss
//    probability by uniformization (sums of positive terms only, so 1e-40 is as exact as 1e-2) and
//    its MTTDL by subtraction-free state reduction;
//  - per-file figures (independent blocks, and blocks sharing the same N peers);
//  - the churn model of home computers (online sessions, nightly and multi-day absences) and what it
//    implies: false "lost" declarations, the wait for k shards (gathered, or k holders online
//    together), read availability;
//  - a seeded, deterministic Monte Carlo event simulation of one block with explicit holders: churn,
//    per-holder LOST_AFTER clocks, audits, repairs that need k shards and a spare peer, replacement
//    of dead peers, repair traffic (the traffic wasted on false declarations included).
// Time unit: years. Rates: per year.

/** Hours in a year (365.25 days). */
export const YEAR_HOURS = 8766
export const HOUR = 1 / YEAR_HOURS
export const DAY = 24 * HOUR
/** Block size of big files (the chunker's maximum, stub-format.md) and blocks per file size. */
export const BLOCK_BYTES = 4 * 1024 * 1024
export const BLOCKS_PER_GIB = 256
export const BLOCKS_PER_TIB = 256 * 1024
/**
 * Phases of the chain's delays. LOST_AFTER is a fixed delay: an Erlang of 32 phases (coefficient of
 * variation 18%) keeps small the overestimate that an exponential delay's long tail gives to "m+1
 * failures within one window" (docs/durability.md §3). A block's repair ends Uniform(0, 2·T) after it
 * starts (its turn in the rebuild of everything a dead peer held): 8 phases entered at a uniformly
 * random one. An audit finds a silent loss after Uniform(0, AUDIT_PERIOD); the chain gives each
 * undetected silent loss its own exponential clock of the same mean (a loss path rarely holds more
 * than one, so its mean is what counts), and tracks at most SILENT_CAP of them at once.
 */
export const DETECT_PHASES = 32
export const REPAIR_PHASES = 8
export const SILENT_CAP = 2
/** Monte Carlo: how often a repair that found no online spare peer tries again. */
export const RETRY_AFTER = 1 * HOUR
/** Uniformization: relative accuracy asked of the truncated Poisson sums. */
const UNIF_EPS = 1e-15
/** Uniformization refuses chains needing more steps than this (a delay far shorter than a year). */
const UNIF_MAX_STEPS = 5_000_000

// ---------------------------------------------------------------------------------------------
// Parameters

/** Transient unavailability of a home computer: alternating online sessions and absences. */
export interface Churn {
  /** Long-run fraction of time offline (0 = always online, no churn). */
  offlineFraction: number
  /** Mean of the ordinary absences (nights, a computer switched off), hours, exponential. */
  shortOffHours: number
  /** Multi-day absences (holidays, a broken router) per peer-year. */
  longOffPerYear: number
  /** Mean of a multi-day absence, days, exponential. */
  longOffDays: number
}

export const NO_CHURN: Churn = { offlineFraction: 0, shortOffHours: 1, longOffPerYear: 0, longOffDays: 1 }

export interface DurabilityParams {
  /** Data and parity shards of a block. */
  k: number
  m: number
  /** Peers in the network (each block's k + m shards are on k + m distinct peers). */
  peers: number
  /** Permanent failures per peer-year (dead disk, uninstall, abandoned machine). */
  lambda: number
  /** Share of permanent losses that are silent (the peer stays, the shard is gone): found by audits. */
  silentFraction: number
  /** A peer offline this long (years) is declared lost and its shards rebuilt elsewhere. */
  lostAfter: number
  /** Every shard is audited once per period (years). */
  auditPeriod: number
  /** Mean time a repair takes once started (years): fetch k shards, rebuild, upload. */
  repairTime: number
  /** r: a block is repaired when its count of intact shards (as known) falls to r or below; r < k: never. */
  threshold: number
  churn: Churn
  /**
   * How a repair gets its k shards: 'gather' fetches each as its holder comes online and decodes once
   * k are in hand; 'together' needs k holders online at the same moment (a naive agent).
   */
  fetch: 'gather' | 'together'
  /** Mean time before a dead peer's place in the network is taken by a new peer (years). */
  replaceDelay: number
}

/** Phases of the chain's delays (1 = exponential delays, the "effective rate" chain). */
export interface Shape {
  /** Erlang phases of LOST_AFTER. */
  detect: number
  /** Phases of a repair (entered at a random one: a uniform duration; 1 = exponential). */
  repair: number
  /** Undetected silent losses tracked at once; one more is handled like a dead peer's loss. */
  silentCap: number
}

export const DEFAULT_SHAPE: Shape = { detect: DETECT_PHASES, repair: REPAIR_PHASES, silentCap: SILENT_CAP }
export const EXPONENTIAL_SHAPE: Shape = { detect: 1, repair: 1, silentCap: SILENT_CAP }

export class ModelError extends Error {
  readonly code: string
  constructor (code: string, text: string) {
    super(`${code}: ${text}`)
    this.code = code
  }
}

/** Throws MODEL_INVALID naming the first parameter out of range. */
export function checkParams (p: DurabilityParams): void {
  const bad = (what: string): never => { throw new ModelError('MODEL_INVALID', what) }
  const finite = (x: number): boolean => Number.isFinite(x)
  if (!Number.isInteger(p.k) || p.k < 1 || p.k > 64) bad(`k=${p.k} is not an integer in 1..64`)
  if (!Number.isInteger(p.m) || p.m < 1 || p.m > 32) bad(`m=${p.m} is not an integer in 1..32`)
  if (!Number.isInteger(p.peers) || p.peers < p.k + p.m || p.peers > 1e7) bad(`peers=${p.peers} is not an integer ≥ k+m=${p.k + p.m}`)
  if (!finite(p.lambda) || p.lambda < 0 || p.lambda > 1e4) bad(`lambda=${p.lambda} is not in 0..10000 per year`)
  if (!finite(p.silentFraction) || p.silentFraction < 0 || p.silentFraction > 1) bad(`silent fraction ${p.silentFraction} is not in 0..1`)
  if (!finite(p.lostAfter) || p.lostAfter < 0 || p.lostAfter > 10) bad(`lost-after ${p.lostAfter} years is not in 0..10`)
  if (!finite(p.auditPeriod) || p.auditPeriod < 0 || p.auditPeriod > 10) bad(`audit period ${p.auditPeriod} years is not in 0..10`)
  if (p.silentFraction > 0 && !(p.auditPeriod > 0)) bad('silent losses need an audit period > 0')
  if (!finite(p.repairTime) || p.repairTime < 0 || p.repairTime > 10) bad(`repair time ${p.repairTime} years is not in 0..10`)
  if (!Number.isInteger(p.threshold) || p.threshold > p.k + p.m - 1) bad(`threshold r=${p.threshold} is not an integer ≤ k+m-1=${p.k + p.m - 1}`)
  if (!finite(p.replaceDelay) || p.replaceDelay < 0 || p.replaceDelay > 10) bad(`replace delay ${p.replaceDelay} years is not in 0..10`)
  if (p.fetch !== 'gather' && p.fetch !== 'together') bad(`fetch '${String(p.fetch)}' is not gather or together`)
  churnRates(p.churn) // checks the churn
}

/** Throws MODEL_INVALID unless every phase count is an integer in 1..256 and the cap in 0..32. */
export function checkShape (sh: Shape): void {
  const okInt = (x: number, lo: number, hi: number): boolean => Number.isInteger(x) && x >= lo && x <= hi
  if (!okInt(sh.detect, 1, 256) || !okInt(sh.repair, 1, 256) || !okInt(sh.silentCap, 0, 32)) {
    throw new ModelError('MODEL_INVALID', `shape ${JSON.stringify(sh)}: phases must be integers in 1..256, silentCap in 0..32`)
  }
}

// ---------------------------------------------------------------------------------------------
// Churn

export interface ChurnRates {
  /** Availability: long-run fraction of time online. */
  availability: number
  /** Ordinary and multi-day absences per peer-year. */
  shortPerYear: number
  longPerYear: number
  /** Mean online session and mean absence, years. */
  meanOn: number
  meanOff: number
  /** P(an absence is a multi-day one). */
  longShare: number
}

/** Session rates implied by a churn description; throws MODEL_INVALID when they cannot add up. */
export function churnRates (c: Churn): ChurnRates {
  const f = c.offlineFraction
  if (!Number.isFinite(f) || f < 0 || f >= 1) throw new ModelError('MODEL_INVALID', `offline fraction ${f} is not in [0, 1)`)
  if (f === 0) return { availability: 1, shortPerYear: 0, longPerYear: 0, meanOn: Infinity, meanOff: 0, longShare: 0 }
  if (!(c.shortOffHours > 0) || !(c.longOffDays > 0) || !(c.longOffPerYear >= 0) || !Number.isFinite(c.shortOffHours + c.longOffDays + c.longOffPerYear)) {
    throw new ModelError('MODEL_INVALID', 'churn session lengths must be positive and finite')
  }
  const offYears = f
  const longYears = c.longOffPerYear * c.longOffDays * DAY
  if (longYears >= offYears) {
    throw new ModelError('MODEL_INVALID', `multi-day absences (${(longYears * 365.25).toFixed(1)} days/year) exceed the offline time (${(offYears * 365.25).toFixed(1)} days/year)`)
  }
  const shortPerYear = (offYears - longYears) / (c.shortOffHours * HOUR)
  const cycles = shortPerYear + c.longOffPerYear
  return {
    availability: 1 - f,
    shortPerYear,
    longPerYear: c.longOffPerYear,
    meanOn: (1 - f) / cycles,
    meanOff: f / cycles,
    longShare: c.longOffPerYear / cycles
  }
}

/** Absences longer than `lostAfter` per peer-year: alive peers declared lost by mistake. */
export function falseLostRate (c: Churn, lostAfter: number): number {
  const r = churnRates(c)
  if (r.availability === 1) return 0
  return r.shortPerYear * Math.exp(-lostAfter / (c.shortOffHours * HOUR)) + r.longPerYear * Math.exp(-lostAfter / (c.longOffDays * DAY))
}

function logBinom (n: number, j: number): number {
  return lgamma(n + 1) - lgamma(j + 1) - lgamma(n - j + 1)
}

/** P(at least k of n independent holders are online), each online with probability a. */
export function atLeastOnline (n: number, k: number, a: number): number {
  if (k <= 0) return 1
  if (k > n) return 0
  if (a >= 1) return 1
  if (a <= 0) return 0
  let s = 0
  for (let j = k; j <= n; j++) s += Math.exp(logBinom(n, j) + j * Math.log(a) + (n - j) * Math.log1p(-a))
  return Math.min(1, s)
}

/**
 * Mean wait (years) until at least k of n holders are online, from a random moment: each holder
 * alternates online/offline as a two-state Markov process with the churn's mean session lengths
 * (the number online is then a birth-death chain); 0 without churn.
 */
export function availabilityWait (n: number, k: number, c: Churn): number {
  const r = churnRates(c)
  if (r.availability === 1 || k <= 0) return 0
  if (k > n) return Infinity
  const up = 1 / r.meanOff
  const down = 1 / r.meanOn
  const a = r.availability
  // t[i]: mean time to go from i online to i+1 online.
  const t: number[] = []
  for (let i = 0; i < k; i++) t.push((1 + (i > 0 ? i * down * t[i - 1] : 0)) / ((n - i) * up))
  let wait = 0
  for (let j = 0; j < k; j++) {
    let h = 0
    for (let i = j; i < k; i++) h += t[i]
    wait += Math.exp(logBinom(n, j) + j * Math.log(a) + (n - j) * Math.log1p(-a)) * h
  }
  return wait
}

/**
 * Mean wait (years) until k of n holders have each been online at least once since a random moment
 * (a repair gathering shards as their holders come online): the k-th smallest of n independent
 * times, each 0 (online, probability A) or the rest of the absence under way (short or multi-day,
 * in proportion to the time they take). E = ∫ P(Binomial(n, F(t)) < k) dt, by quadrature.
 */
export function gatherWait (n: number, k: number, c: Churn): number {
  const r = churnRates(c)
  if (r.availability === 1 || k <= 0) return 0
  if (k > n) return Infinity
  const a = r.availability
  const longTime = r.longPerYear * c.longOffDays * DAY / c.offlineFraction // share of offline time in long absences
  const sMean = c.shortOffHours * HOUR
  const lMean = c.longOffDays * DAY
  const F = (t: number): number => a + (1 - a) * ((1 - longTime) * -Math.expm1(-t / sMean) + longTime * -Math.expm1(-t / lMean))
  const G = (t: number): number => {
    const x = Math.min(1, F(t))
    if (x >= 1) return 0
    let s = 0
    for (let j = 0; j < k; j++) s += Math.exp(logBinom(n, j) + j * Math.log(x) + (n - j) * Math.log1p(-x))
    return Math.min(1, s)
  }
  // Trapezoids on a log grid from 1e-4 of the short mean to 60 times the longest mean.
  const t0 = 1e-4 * Math.min(sMean, lMean)
  const t1 = 60 * Math.max(sMean, lMean)
  const steps = 600
  let sum = G(0) * t0
  let prevT = t0
  let prevG = G(t0)
  for (let i = 1; i <= steps; i++) {
    const t = t0 * Math.pow(t1 / t0, i / steps)
    const g = G(t)
    sum += (t - prevT) * (g + prevG) / 2
    prevT = t; prevG = g
  }
  return sum
}

/** Mean wait (years) before a repair has its k shards: gathered, or k holders online together. */
export function fetchWait (n: number, k: number, c: Churn, fetch: 'gather' | 'together'): number {
  return fetch === 'gather' ? gatherWait(n, k, c) : availabilityWait(n, k, c)
}

/** Mean extra wait (years) for a spare peer when the network has too few peers outside the block. */
export function spareWait (p: DurabilityParams): number {
  const spares = p.peers - (p.k + p.m)
  const needed = p.k + p.m - Math.max(p.threshold, p.k - 1)
  if (p.threshold < p.k || spares >= needed || p.replaceDelay === 0) return 0
  // The replacement clock starts at the death; what is left of it once the loss is detected.
  return p.replaceDelay * Math.exp(-p.lostAfter / p.replaceDelay)
}

// ---------------------------------------------------------------------------------------------
// The Markov chain of one block

/**
 * A CTMC in sparse form: transient states 0..size-1, one absorbing state (data loss), transitions
 * (row i: col[rowStart[i]..rowStart[i+1]) with rate[...]), absorb[i] = rate into loss.
 */
export interface Chain {
  size: number
  start: number
  rowStart: Int32Array
  col: Int32Array
  rate: Float64Array
  absorb: Float64Array
  /** Human-readable state names, "n=5 detect2". */
  labels: string[]
}

/** Build a chain from a list of (from, to, rate) and absorbing rates; merges duplicates, drops self-loops. */
export function makeChain (size: number, start: number, edges: ReadonlyArray<readonly [number, number, number]>, absorb: ArrayLike<number>, labels?: string[]): Chain {
  const rows: Array<Map<number, number>> = Array.from({ length: size }, () => new Map())
  for (const [i, j, q] of edges) {
    if (!(q > 0) || i === j) continue
    rows[i].set(j, (rows[i].get(j) ?? 0) + q)
  }
  const rowStart = new Int32Array(size + 1)
  let nnz = 0
  for (let i = 0; i < size; i++) { rowStart[i] = nnz; nnz += rows[i].size }
  rowStart[size] = nnz
  const col = new Int32Array(nnz)
  const rate = new Float64Array(nnz)
  let e = 0
  for (let i = 0; i < size; i++) {
    for (const [j, q] of [...rows[i]].sort((a, b) => a[0] - b[0])) { col[e] = j; rate[e] = q; e++ }
  }
  const abs = new Float64Array(size)
  for (let i = 0; i < size; i++) abs[i] = Math.max(0, absorb[i] ?? 0)
  return { size, start, rowStart, col, rate, absorb: abs, labels: labels ?? Array.from({ length: size }, (_, i) => `s${i}`) }
}

type StageKind = 'idle' | 'detect' | 'avail' | 'spare' | 'repair'

/**
 * A delay of the pipeline as phases. 'chain': phases in a row, each at `rate`; 'spread': the same,
 * entered at a uniformly random phase; 'byEntry': one phase per n at entry (k..k+m), left at
 * rateAt(entry n) straight to the next segment; 'byNow': one phase left at rateAt(current n).
 */
interface Segment { kind: StageKind, first: number, phases: number, rate: number, form: 'chain' | 'spread' | 'byEntry' | 'byNow', rateAt: (n: number) => number }

/**
 * The block chain. State (n, u, s): n intact shards (k..k+m; fewer than k is the absorbing loss), u
 * of the missing ones silent losses not yet found by an audit, s the stage of the repair pipeline.
 *
 * A peer's death (rate n·λ·(1-f)) that brings n to r or below while the pipeline is idle starts it:
 * LOST_AFTER (Erlang `shape.detect`), the wait for k of the holders' shards (exponential, mean
 * `fetchWait(n, k)` at the n where it starts, or where it is for 'together'), the wait for a spare peer
 * (small networks), the repair (Uniform(0, 2·repairTime) as `shape.repair` phases). A silent loss
 * (rate n·λ·f) starts its own audit clock (exponential, mean AUDIT_PERIOD/2, rate 2/P each); when
 * found while the pipeline is idle and n ≤ r, the pipeline starts at its waits (the loss is known).
 * The pipeline's end rebuilds every missing shard but the u undetected ones: → (k+m-u, u, idle).
 * Losses during the pipeline are rebuilt by it ("sweep"); the agent's per-holder clocks differ from
 * this only when two windows overlap, a second-order effect where losses are rare (the Monte Carlo
 * measures it). With every phase count at 1, each delay is exponential (the "effective rate" chain).
 */
export function blockChain (p: DurabilityParams, shape: Shape = DEFAULT_SHAPE): Chain {
  checkParams(p)
  checkShape(shape)
  const { k, m, lambda } = p
  const w = k + m
  const r = p.threshold
  const f = p.silentFraction
  const cap = f > 0 ? Math.max(0, Math.min(Math.round(shape.silentCap), m)) : 0
  const auditRate = f > 0 ? 2 / p.auditPeriod : 0
  const kinds: StageKind[] = ['idle']
  const segOf: number[] = [-1]
  const segs: Segment[] = []
  const add = (kind: StageKind, phases: number, mean: number, form: Segment['form'], rateAt: (n: number) => number = () => NaN): void => {
    if (!(mean > 0) || !Number.isFinite(mean)) return
    const h = Math.max(1, Math.round(phases))
    segs.push({ kind, first: kinds.length, phases: h, rate: form === 'spread' ? (h + 1) / (2 * mean) : h / mean, form, rateAt })
    for (let i = 0; i < h; i++) { kinds.push(kind); segOf.push(segs.length - 1) }
  }
  add('detect', shape.detect, p.lostAfter, 'chain')
  const tail0 = segs.length
  // The wait for k shards grows as the block degrades. Gathering keeps what it has fetched, so its
  // length is set by n when it starts; needing k holders online together depends on n throughout.
  const waits = new Map<number, number>()
  for (let n = k; n <= w; n++) waits.set(n, fetchWait(n, k, p.churn, p.fetch))
  const waitRate = (n: number): number => 1 / (waits.get(n) ?? Infinity)
  if (p.fetch === 'gather') add('avail', m + 1, fetchWait(Math.max(r, k), k, p.churn, p.fetch), 'byEntry', waitRate)
  else add('avail', 1, fetchWait(Math.max(r, k), k, p.churn, p.fetch), 'byNow', waitRate)
  add('spare', 1, spareWait(p), 'chain')
  add('repair', shape.repair, p.repairTime, 'spread')
  const stages = kinds.length
  const DONE = -1
  /** Where the pipeline goes on entering segment `si` at n (DONE past the last): [stage, probability][]. */
  const entry = (si: number, n: number): Array<[number, number]> => {
    if (si >= segs.length) return [[DONE, 1]]
    const sg = segs[si]
    if (sg.form === 'spread') return Array.from({ length: sg.phases }, (_, x): [number, number] => [sg.first + x, 1 / sg.phases])
    if (sg.form === 'byEntry') return [[sg.first + n - k, 1]]
    return [[sg.first, 1]]
  }
  /** Where phase s leads when it ends, at n. */
  const after = (s: number, n: number): Array<[number, number]> => {
    const sg = segs[segOf[s]]
    if (sg.form !== 'byEntry' && s + 1 < sg.first + sg.phases) return [[s + 1, 1]]
    return entry(segOf[s] + 1, n)
  }
  const phaseRate = (s: number, n: number): number => {
    const sg = segs[segOf[s]]
    if (sg.form === 'byEntry') return sg.rateAt(k + s - sg.first)
    if (sg.form === 'byNow') return sg.rateAt(n)
    return sg.rate
  }

  // Index of (n, u, s): u ≤ min(cap, k+m-n).
  const base: number[] = []
  let size = 0
  for (let n = k; n <= w; n++) { base[n] = size; size += (Math.min(cap, w - n) + 1) * stages }
  const index = (n: number, u: number, s: number): number => base[n] + u * stages + s
  const edges: Array<[number, number, number]> = []
  const absorb = new Float64Array(size)
  const labels: string[] = []
  const stageName: string[] = kinds.map((kind, s) => kind === 'idle' ? 'idle' : `${kind}${s - kinds.indexOf(kind) + 1}`)
  for (let n = k; n <= w; n++) {
    for (let u = 0; u <= Math.min(cap, w - n); u++) {
      for (let s = 0; s < stages; s++) {
        const i = index(n, u, s)
        labels[i] = `n=${n} u=${u} ${stageName[s]}`
        /** Into (n2, u2) at stage(s) `dist`; DONE: every known missing shard rebuilt. */
        const to = (n2: number, u2: number, dist: Array<[number, number]>, q: number): void => {
          for (const [s2, pr] of dist) edges.push([i, s2 === DONE ? index(w - u2, u2, 0) : index(n2, u2, s2), q * pr])
        }
        const deadLike = n * lambda * (1 - f) + (u < cap ? 0 : n * lambda * f)
        const silent = u < cap ? n * lambda * f : 0
        if (n - 1 < k) absorb[i] += deadLike + silent
        else {
          if (s === 0 && n - 1 <= r) to(n - 1, u, entry(0, n - 1), deadLike)
          else edges.push([i, index(n - 1, u, s), deadLike])
          if (silent > 0) edges.push([i, index(n - 1, u + 1, s), silent])
        }
        if (u > 0) {
          if (s === 0 && n <= r) to(n, u - 1, entry(tail0, n), u * auditRate)
          else edges.push([i, index(n, u - 1, s), u * auditRate])
        }
        if (s > 0) to(n, u, after(s, n), phaseRate(s, n))
      }
    }
  }
  return reachable(makeChain(size, index(w, 0, 0), edges, absorb, labels))
}

/** The chain restricted to the states reachable from its start (unreachable fast phases would inflate Λ). */
export function reachable (c: Chain): Chain {
  const seen = new Int32Array(c.size).fill(-1)
  const order: number[] = [c.start]
  seen[c.start] = 0
  for (let x = 0; x < order.length; x++) {
    const i = order[x]
    for (let e = c.rowStart[i]; e < c.rowStart[i + 1]; e++) {
      const j = c.col[e]
      if (seen[j] < 0) { seen[j] = order.length; order.push(j) }
    }
  }
  if (order.length === c.size) return c
  const edges: Array<[number, number, number]> = []
  const absorb = new Float64Array(order.length)
  const labels: string[] = []
  order.forEach((i, x) => {
    absorb[x] = c.absorb[i]
    labels[x] = c.labels[i]
    for (let e = c.rowStart[i]; e < c.rowStart[i + 1]; e++) edges.push([x, seen[c.col[e]], c.rate[e]])
  })
  return makeChain(order.length, 0, edges, absorb, labels)
}

/**
 * P(absorbed by time t) from the start state, by uniformization: p(t) = Σ_j Poisson(j; Λt) a_j where
 * a_j, the absorbed mass after j steps of the uniformized chain, is a running sum of positive
 * flows. Poisson weights come from the mode outwards by ratios (no underflow, no lgamma error), and
 * the right tail is cut only once its bound is below UNIF_EPS of the answer, so tiny probabilities
 * keep their relative precision.
 */
export function absorptionByTime (c: Chain, t: number): number {
  if (!(t > 0)) return 0
  let lam = 0
  const out = new Float64Array(c.size)
  for (let i = 0; i < c.size; i++) {
    let o = c.absorb[i]
    for (let e = c.rowStart[i]; e < c.rowStart[i + 1]; e++) o += c.rate[e]
    out[i] = o
    if (o > lam) lam = o
  }
  if (lam === 0) return 0
  const lt = lam * t
  const mode = Math.floor(lt)
  // Left end: weights relative to the mode's (1), down to 1e-40.
  let left = mode
  let wLeft = 1
  while (left > 0) {
    const prev = wLeft * left / lt
    if (prev < 1e-40) break
    wLeft = prev
    left--
  }
  if (mode - left + 3 * Math.sqrt(lt) > UNIF_MAX_STEPS || mode > UNIF_MAX_STEPS) {
    throw new ModelError('MODEL_STIFF', `uniformization needs ~${Math.round(lt)} steps (a delay far shorter than the horizon)`)
  }
  // Uniformized DTMC: p_ii = 1 - out_i/Λ, p_ij = q_ij/Λ, to loss absorb_i/Λ; stored by column
  // (incoming transitions) so that a step writes each state once.
  const n = c.size
  const stay = new Float64Array(n)
  const toLoss = new Float64Array(n)
  for (let i = 0; i < n; i++) { stay[i] = Math.max(0, 1 - out[i] / lam); toLoss[i] = c.absorb[i] / lam }
  const inStart = new Int32Array(n + 1)
  for (let e = 0; e < c.col.length; e++) inStart[c.col[e] + 1]++
  for (let j = 0; j < n; j++) inStart[j + 1] += inStart[j]
  const inFrom = new Int32Array(c.col.length)
  const inP = new Float64Array(c.col.length)
  const fill = inStart.slice(0, n)
  for (let i = 0; i < n; i++) {
    for (let e = c.rowStart[i]; e < c.rowStart[i + 1]; e++) {
      const x = fill[c.col[e]]++
      inFrom[x] = i
      inP[x] = c.rate[e] / lam
    }
  }
  let v = new Float64Array(n)
  let nv = new Float64Array(n)
  v[c.start] = 1
  let a = 0 // absorbed after j steps
  let sumW = 0
  let sumWA = 0
  let wj = wLeft
  for (let j = 0; ; j++) {
    if (j >= left) {
      if (j > left) wj = wj * lt / j
      sumW += wj
      sumWA += wj * a
      if (j >= mode) {
        const rho = lt / (j + 2)
        const tail = wj * lt / (j + 1) / (1 - rho)
        if (tail <= UNIF_EPS * sumWA && tail <= 1e-17 * sumW) break
        if (tail <= 1e-300 * sumW) break
      }
    }
    if (j > UNIF_MAX_STEPS) throw new ModelError('MODEL_STIFF', `uniformization did not converge in ${UNIF_MAX_STEPS} steps`)
    a += uniformStep(v, nv, stay, toLoss, inStart, inFrom, inP)
    const tmp = v; v = nv; nv = tmp
  }
  return Math.min(1, sumWA / sumW)
}

/** One step v → nv of the uniformized chain; returns the mass absorbed in it. */
function uniformStep (v: Float64Array, nv: Float64Array, stay: Float64Array, toLoss: Float64Array, inStart: Int32Array, inFrom: Int32Array, inP: Float64Array): number {
  const n = v.length
  let flow = 0
  for (let j = 0; j < n; j++) {
    let x = v[j] * stay[j]
    flow += v[j] * toLoss[j]
    const end = inStart[j + 1]
    for (let e = inStart[j]; e < end; e++) x += v[inFrom[e]] * inP[e]
    nv[j] = x
  }
  return flow
}

/**
 * Mean time to absorption (MTTDL) from the start state by state reduction (GTH-style: every
 * quantity is a sum of products of positive numbers, no subtraction), so an MTTDL of 1e40 years is
 * as precise as one of 10 years.
 */
export function meanTimeToLoss (c: Chain): number {
  const n = c.size
  const row: Array<Map<number, number>> = Array.from({ length: n }, () => new Map())
  const pred: Array<Set<number>> = Array.from({ length: n }, () => new Set())
  const pa = new Float64Array(n)
  const h = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    let o = c.absorb[i]
    for (let e = c.rowStart[i]; e < c.rowStart[i + 1]; e++) o += c.rate[e]
    if (o === 0) { h[i] = Infinity; continue }
    for (let e = c.rowStart[i]; e < c.rowStart[i + 1]; e++) {
      const j = c.col[e]
      row[i].set(j, (row[i].get(j) ?? 0) + c.rate[e] / o)
      pred[j].add(i)
    }
    pa[i] = c.absorb[i] / o
    h[i] = 1 / o
  }
  // Eliminate every state but the start, the states nearest to loss first (low index = low n).
  for (let s = 0; s < n; s++) {
    if (s === c.start) continue
    const rs = row[s]
    rs.delete(s) // a self-loop only adds visits: the exit sum below stands for 1 - p_ss
    let exit = pa[s]
    for (const q of rs.values()) exit += q
    for (const j of rs.keys()) pred[j].delete(s)
    if (exit === 0) continue // a trap that never leaves: only reachable if the chain never loses data there
    for (const i of pred[s]) {
      if (i === s) continue
      const ri = row[i]
      const fct = (ri.get(s) ?? 0) / exit
      ri.delete(s)
      if (fct === 0) continue
      for (const [j, q] of rs) {
        ri.set(j, (ri.get(j) ?? 0) + fct * q)
        pred[j].add(i)
      }
      pa[i] += fct * pa[s]
      h[i] += fct * h[s]
    }
    pred[s].clear()
    rs.clear()
  }
  const s0 = c.start
  if (pa[s0] === 0) return Infinity
  return h[s0] / pa[s0]
}

export interface BlockLoss {
  /** P(block lost within the horizon): exact transient (uniformization), else from the MTTDL. */
  p: number
  /** False when the chain was too stiff for uniformization and p comes from the MTTDL. */
  exact: boolean
  /** MTTDL, years, and the loss probability it implies, -expm1(-t/MTTDL). */
  mttdl: number
  pFromMttdl: number
  states: number
}

export function blockLoss (p: DurabilityParams, horizon = 1, shape: Shape = DEFAULT_SHAPE): BlockLoss {
  const c = blockChain(p, shape)
  const mttdl = meanTimeToLoss(c)
  const pFromMttdl = -Math.expm1(-horizon / mttdl)
  try {
    return { p: absorptionByTime(c, horizon), exact: true, mttdl, pFromMttdl, states: c.size }
  } catch (err) {
    if (!(err instanceof ModelError) || err.code !== 'MODEL_STIFF') throw err
    return { p: pFromMttdl, exact: false, mttdl, pFromMttdl, states: c.size }
  }
}

/** P(at least one of `blocks` independent blocks is lost) = 1 - (1-p)^B, computed without cancellation. */
export function fileLoss (pBlock: number, blocks: number): number {
  if (pBlock >= 1) return 1
  return -Math.expm1(blocks * Math.log1p(-pBlock))
}

/**
 * Estimate for `blocks` blocks placed at random on the same `peers` peers: a block is lost when
 * m+1 of its holders die before repair, and all blocks containing that (m+1)-set die with it. The
 * file is lost when one of the (m+1)-sets its blocks cover fails; each set fails with probability
 * pBlock / C(k+m, m+1). With many peers this is the independent-blocks figure; with few (all
 * (m+1)-sets covered) it no longer grows with the file's size.
 */
export function sharedPeersFileLoss (pBlock: number, blocks: number, k: number, m: number, peers: number): number {
  if (pBlock >= 1) return 1
  const s = m + 1
  const logPer = logBinom(k + m, s)
  const logAll = logBinom(peers, s)
  const frac = Math.exp(logPer - logAll)
  const covered = Math.exp(logAll) * -Math.expm1(blocks * Math.log1p(-Math.min(frac, 1 - 1e-16)))
  const pSet = pBlock / Math.exp(logPer)
  return -Math.expm1(covered * Math.log1p(-pSet))
}

/**
 * Hours for the owner to rebuild everything one dead peer held, for `dataGiB` of files coded k+m
 * over `peers` peers: a fraction (k+m)/peers of the blocks lost a shard; each costs k shards down
 * (one block) and one shard up (1/k block). A block's own repair ends, on average, half-way through.
 */
export function repairHours (dataGiB: number, k: number, m: number, peers: number, downMbps: number, upMbps: number): { all: number, meanBlock: number } {
  const affectedGiB = dataGiB * Math.min(1, (k + m) / peers)
  const bits = (gib: number): number => gib * 1024 ** 3 * 8
  const down = bits(affectedGiB) / (downMbps * 1e6) / 3600
  const up = bits(affectedGiB / k) / (upMbps * 1e6) / 3600
  const all = Math.max(down, up)
  return { all, meanBlock: all / 2 }
}

// ---------------------------------------------------------------------------------------------
// Numbers

const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7]

/** ln Γ(x) for x > 0 (Lanczos, g = 7; ~15 digits). */
export function lgamma (x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x)
  x -= 1
  let a = LANCZOS[0]
  const t = x + 7.5
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i)
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a)
}

/** Deterministic PRNG: xoshiro128** seeded by splitmix32; doubles with 53 random bits. */
export class Rng {
  private s0: number
  private s1: number
  private s2: number
  private s3: number
  constructor (seed: number) {
    let x = (Math.floor(Math.abs(seed)) ^ 0x9e3779b9) >>> 0
    const mix = (): number => {
      x = (x + 0x9e3779b9) >>> 0
      let z = x
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.s0 = mix(); this.s1 = mix(); this.s2 = mix(); this.s3 = mix()
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1
  }

  u32 (): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0
    const t = (this.s1 << 9) >>> 0
    this.s2 = (this.s2 ^ this.s0) >>> 0
    this.s3 = (this.s3 ^ this.s1) >>> 0
    this.s1 = (this.s1 ^ this.s2) >>> 0
    this.s0 = (this.s0 ^ this.s3) >>> 0
    this.s2 = (this.s2 ^ t) >>> 0
    this.s3 = rotl(this.s3, 11)
    return r
  }

  /** Uniform in [0, 1). */
  next (): number {
    return ((this.u32() >>> 5) * 67108864 + (this.u32() >>> 6)) / 9007199254740992
  }

  exp (mean: number): number {
    return -mean * Math.log1p(-this.next())
  }

  /** Erlang with h phases and this mean. */
  erlang (h: number, mean: number): number {
    let s = 0
    for (let i = 0; i < h; i++) s += this.exp(mean / h)
    return s
  }

  /** The chain's stand-in for Uniform(0, 2·mean): j uniform in 1..h phases, each of mean 2·mean/(h+1). */
  spread (h: number, mean: number): number {
    const j = 1 + Math.floor(this.next() * h)
    let s = 0
    for (let i = 0; i < j; i++) s += this.exp(2 * mean / (h + 1))
    return s
  }

  binomial (n: number, a: number): number {
    let c = 0
    for (let i = 0; i < n; i++) if (this.next() < a) c++
    return c
  }
}

function rotl (x: number, b: number): number {
  return ((x << b) | (x >>> (32 - b))) >>> 0
}

// ---------------------------------------------------------------------------------------------
// Monte Carlo

export interface McOptions {
  /** Independent block histories, each `horizon` years long (or until the block is lost). */
  trials: number
  horizon: number
  seed: number
  /**
   * 'declared': the agent's policy. Each holder has its own LOST_AFTER clock (running while it is
   *   offline) or audit; a repair starts when the known-intact count is ≤ r and rebuilds the shards
   *   declared lost when it ends; a declared holder that comes back before that is counted again.
   * 'sweep': the chain's policy. The peer death that brings the block to ≤ r starts one clock
   *   (detection, waits, repair); its end rebuilds every missing shard but silent losses no audit
   *   has found yet (up to `shape.silentCap` of them; more are handled like deaths).
   */
  policy: 'declared' | 'sweep'
  /**
   * 'real': fixed LOST_AFTER, audits after Uniform(0, AUDIT_PERIOD), repairs lasting Uniform(0,
   * 2·repairTime); 'erlang': the chain's versions of them (Erlang `shape.detect` LOST_AFTER,
   * exponential audits of mean AUDIT_PERIOD/2, `shape.repair` phases entered at a random one).
   */
  delays: 'real' | 'erlang'
  /** Phases for delays 'erlang' (the chain's shape). */
  shape?: Shape
  /** Simulate churn (sessions, waits for holders' shards and spares); false: every peer always online. */
  churn: boolean
}

export interface McResult {
  trials: number
  losses: number
  /** Loss probability within the horizon and its 95% Wilson interval. */
  p: number
  lo: number
  hi: number
  /** Simulated block-years and holder-years. */
  blockYears: number
  holderYears: number
  repairs: number
  /** Repair traffic in blocks (= GiB per GiB of file data): download (k shards per repair) and upload (new shards). */
  down: number
  up: number
  /** The part of it spent on holders that were alive with their shard (false declarations). */
  wastedDown: number
  wastedUp: number
  /** Holders declared lost, and those among them that were alive with their shard. */
  declared: number
  falseDeclared: number
  /** Mean time from a permanent failure to its shard being rebuilt (years), over rebuilt shards. */
  meanExposure: number
  /** Mean wait from repair due to repair start (online holders, spares), years. */
  meanStartWait: number
}

const enum Ev { Fail, Toggle, Detect, Audit, Pipe, Done, Retry, SpareDeath, Replace }

interface Event { t: number, type: Ev, slot: number, ep: number, off: number, silent: boolean }

class Heap {
  private a: Event[] = []
  get size (): number { return this.a.length }
  clear (): void { this.a.length = 0 }
  push (e: Event): void {
    const a = this.a
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (a[p].t <= e.t) break
      a[i] = a[p]; i = p
    }
    a[i] = e
  }

  pop (): Event | undefined {
    const a = this.a
    if (a.length === 0) return undefined
    const top = a[0]
    const last = a.pop() as Event
    if (a.length > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= a.length) break
        const r = l + 1
        const c = r < a.length && a[r].t < a[l].t ? r : l
        if (a[c].t >= last.t) break
        a[i] = a[c]; i = c
      }
      a[i] = last
    }
    return top
  }
}

/** Monte Carlo of one block's history; deterministic for a given seed. */
export function monteCarlo (p: DurabilityParams, o: McOptions): McResult {
  checkParams(p)
  if (!Number.isInteger(o.trials) || o.trials < 1) throw new ModelError('MODEL_INVALID', `trials=${o.trials} is not a positive integer`)
  if (!(o.horizon > 0) || !Number.isFinite(o.horizon)) throw new ModelError('MODEL_INVALID', `horizon=${o.horizon} is not positive`)
  const rng = new Rng(o.seed)
  const shape = o.shape ?? DEFAULT_SHAPE
  checkShape(shape)
  const erl = o.delays === 'erlang'
  const sweep = o.policy === 'sweep'
  const cr = churnRates(o.churn ? p.churn : NO_CHURN)
  const churn = cr.availability < 1
  /** Share of offline time spent in multi-day absences: what a holder offline at time 0 is in. */
  const longTime = churn ? cr.longPerYear * p.churn.longOffDays * DAY / p.churn.offlineFraction : 0
  const { k, m, lambda } = p
  const w = k + m
  const r = p.threshold
  const L = p.lostAfter
  const A = cr.availability
  const cap = Math.max(0, Math.min(Math.round(shape.silentCap), m))
  const gather = p.fetch === 'gather'

  // Holder slots.
  const alive = new Uint8Array(w) // the peer still exists (a silent loss leaves it alive)
  const ok = new Uint8Array(w) // it holds its shard intact
  const online = new Uint8Array(w)
  const declared = new Uint8Array(w) // 'declared': the agent counts it lost
  const hidden = new Uint8Array(w) // 'sweep': a silent loss no audit has found yet
  const fetched = new Uint8Array(w) // the due repair has this holder's shard in hand ('gather')
  const epoch = new Int32Array(w) // bumped when the slot gets a new holder
  const offEp = new Int32Array(w) // bumped at each online/offline change
  const failedAt = new Float64Array(w)
  const heap = new Heap()

  const res: McResult = {
    trials: o.trials, losses: 0, p: 0, lo: 0, hi: 0, blockYears: 0, holderYears: 0, repairs: 0,
    down: 0, up: 0, wastedDown: 0, wastedUp: 0, declared: 0, falseDeclared: 0, meanExposure: 0, meanStartWait: 0
  }
  let exposureSum = 0
  let exposureN = 0
  let waitSum = 0
  let waitN = 0

  const ev = (t: number, type: Ev, slot = -1, silent = false): void => {
    heap.push({ t, type, slot, ep: slot >= 0 ? epoch[slot] : 0, off: slot >= 0 ? offEp[slot] : 0, silent })
  }
  const offDuration = (): number => rng.next() < cr.longShare ? rng.exp(p.churn.longOffDays * DAY) : rng.exp(p.churn.shortOffHours * HOUR)
  const auditDelay = (): number => erl ? rng.exp(p.auditPeriod / 2) : rng.next() * p.auditPeriod
  const detectDelay = (): number => erl ? rng.erlang(shape.detect, L) : L
  const repairDelay = (): number => erl ? rng.spread(shape.repair, p.repairTime) : rng.next() * 2 * p.repairTime

  for (let trial = 0; trial < o.trials; trial++) {
    heap.clear()
    let now = 0
    let spares = p.peers - w
    let spareEp = 0
    let intact = w
    let hiddenCount = 0
    // 0 idle, 1 detecting (sweep), 2 due (waiting for k online holders or a spare), 3 repairing
    let stage = 0
    let dueSince = 0
    let retryPending = false
    let lost = false
    const retry = (): void => {
      if (retryPending) return // one pending retry at a time
      retryPending = true
      ev(now + RETRY_AFTER, Ev.Retry)
    }
    const scheduleSpareDeath = (): void => {
      spareEp++
      if (spares > 0 && lambda > 0) heap.push({ t: now + rng.exp(1 / (lambda * spares)), type: Ev.SpareDeath, slot: -1, ep: spareEp, off: 0, silent: false })
    }
    const newHolder = (i: number, startOnline: boolean): void => {
      epoch[i]++; offEp[i]++
      alive[i] = 1; ok[i] = 1; declared[i] = 0; hidden[i] = 0; failedAt[i] = -1
      online[i] = startOnline ? 1 : 0
      if (lambda > 0) ev(now + rng.exp(1 / lambda), Ev.Fail, i, rng.next() < p.silentFraction)
      if (churn) {
        if (online[i] === 1) ev(now + rng.exp(cr.meanOn), Ev.Toggle, i)
        else {
          // Offline from the start: the rest of the absence under way (memoryless).
          ev(now + (rng.next() < longTime ? rng.exp(p.churn.longOffDays * DAY) : rng.exp(p.churn.shortOffHours * HOUR)), Ev.Toggle, i)
          if (!sweep) ev(now + L, Ev.Detect, i)
        }
      }
    }
    for (let i = 0; i < w; i++) newHolder(i, !churn || rng.next() < A)
    scheduleSpareDeath()

    const onlineSpares = (): number => churn ? (spares > 40 ? spares : rng.binomial(spares, A)) : spares
    const knownIntact = (): number => {
      let d = 0
      for (let i = 0; i < w; i++) d += declared[i]
      return w - d
    }
    const due = (): void => { stage = 2; dueSince = now; fetched.fill(0); tryStart() }
    function tryStart (): void {
      if (stage !== 2) return
      if (!sweep && knownIntact() > r) { stage = 0; return } // the declared holders came back
      let usable = 0
      for (let i = 0; i < w; i++) {
        if (online[i] === 1 && ok[i] === 1) fetched[i] = 1
        usable += gather ? fetched[i] : online[i] & ok[i]
      }
      if (usable < k) return // a holder coming online calls again
      if (onlineSpares() < 1) { retry(); return }
      stage = 3
      waitSum += now - dueSince; waitN++
      ev(now + repairDelay(), Ev.Done)
    }
    const maybeDue = (): void => {
      if (!sweep && stage === 0 && r >= k && knownIntact() <= r) due()
    }
    const declare = (i: number): void => {
      if (declared[i] === 1) return
      declared[i] = 1
      res.declared++
      if (alive[i] === 1 && ok[i] === 1) res.falseDeclared++
      maybeDue()
    }
    const finishRepair = (): void => {
      // Rebuilt: sweep: every missing shard an audit has not still to find; declared: every declared holder.
      const targets: number[] = []
      for (let i = 0; i < w; i++) if (sweep ? ok[i] === 0 && hidden[i] === 0 : declared[i] === 1) targets.push(i)
      const n = Math.min(targets.length, onlineSpares())
      res.repairs++
      res.down += 1
      let fp = 0
      for (let x = 0; x < n; x++) {
        const i = targets[x]
        if (alive[i] === 1 && ok[i] === 1) { fp++; res.wastedUp += 1 / k }
        if (alive[i] === 1) spares++ // the old holder stays in the network
        if (failedAt[i] >= 0) { exposureSum += now - failedAt[i]; exposureN++ }
        spares--
        newHolder(i, true)
      }
      res.up += n / k
      res.wastedDown += n === 0 ? 1 : fp / n
      if (n > 0) scheduleSpareDeath()
      intact = 0
      for (let i = 0; i < w; i++) intact += ok[i]
      stage = 0
      if (n < targets.length) { stage = 2; dueSince = now; retry() } else maybeDue()
    }

    for (;;) {
      const e = heap.pop()
      if (e === undefined || e.t > o.horizon) break
      now = e.t
      const i = e.slot
      switch (e.type) {
        case Ev.Fail: {
          if (e.ep !== epoch[i]) break
          ok[i] = 0; failedAt[i] = now
          intact--
          if (intact < k) { lost = true; break }
          if (e.silent && (!sweep || hiddenCount < cap)) {
            // The peer stays and answers; an audit will find the shard missing.
            if (sweep) { hidden[i] = 1; hiddenCount++ }
            ev(now + auditDelay(), Ev.Audit, i)
            break
          }
          if (!e.silent) {
            alive[i] = 0
            if (p.replaceDelay > 0) ev(now + rng.exp(p.replaceDelay), Ev.Replace)
            if (online[i] === 1 || !churn) {
              // Gone now: its offline clock starts (if it was offline, the running clock stands).
              online[i] = 0; offEp[i]++
              if (!sweep) ev(now + detectDelay(), Ev.Detect, i)
            }
          }
          if (sweep && stage === 0 && r >= k && intact <= r) { stage = 1; ev(now + detectDelay(), Ev.Pipe) }
          break
        }
        case Ev.Toggle: {
          if (e.ep !== epoch[i] || e.off !== offEp[i] || alive[i] === 0) break
          offEp[i]++
          if (online[i] === 1) {
            online[i] = 0
            ev(now + offDuration(), Ev.Toggle, i)
            if (!sweep) ev(now + L, Ev.Detect, i)
          } else {
            online[i] = 1
            ev(now + rng.exp(cr.meanOn), Ev.Toggle, i)
            if (declared[i] === 1 && ok[i] === 1 && stage !== 3) declared[i] = 0 // back before being replaced
            tryStart()
          }
          break
        }
        case Ev.Detect:
          if (e.ep === epoch[i] && e.off === offEp[i] && online[i] === 0) declare(i)
          break
        case Ev.Audit:
          if (e.ep !== epoch[i]) break
          if (!sweep) declare(i)
          else if (hidden[i] === 1) {
            hidden[i] = 0; hiddenCount--
            if (stage === 0 && r >= k && intact <= r) due()
          }
          break
        case Ev.Pipe:
          due()
          break
        case Ev.Done:
          finishRepair()
          break
        case Ev.Retry:
          retryPending = false
          tryStart()
          break
        case Ev.SpareDeath:
          if (e.ep !== spareEp) break
          spares--
          if (p.replaceDelay > 0) ev(now + rng.exp(p.replaceDelay), Ev.Replace)
          scheduleSpareDeath()
          break
        case Ev.Replace:
          spares++
          scheduleSpareDeath()
          tryStart()
          break
      }
      if (lost) break
    }
    const end = lost ? now : o.horizon
    if (lost) res.losses++
    res.blockYears += end
    res.holderYears += end * w
  }
  res.p = res.losses / res.trials
  const z = 1.96
  const n = res.trials
  const ph = res.p
  const den = 1 + z * z / n
  const ctr = (ph + z * z / (2 * n)) / den
  const half = z * Math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
  res.lo = Math.max(0, ctr - half)
  res.hi = Math.min(1, ctr + half)
  res.meanExposure = exposureN > 0 ? exposureSum / exposureN : 0
  res.meanStartWait = waitN > 0 ? waitSum / waitN : 0
  return res
}
