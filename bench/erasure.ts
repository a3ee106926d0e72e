// Erasure bench (`npm run bench -- erasure`): encodeShards and decodeShards (stubs/erasure.ts) on
// 4 MiB blocks at 4+2, one call at a time and IN_FLIGHT at once (the library works in libuv's thread
// pool), beside the library alone on ready-made regions (no copies) and two memcpy references: the
// copy of the same output bytes into six shard buffers (what encoding writes at the least) and the
// Buffer.concat of four payloads (what decoding with every data shard present costs). MB/s are block
// bytes (1e6) per second; peak RSS is per phase. The last line is one JSON object.

import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { encodeShards, decodeShards, shardPayloadSize, SHARD_HEADER_BYTES } from '../stubs/erasure.js'
import { RSS_SAMPLE_MS, SCALE } from './config.js'
import { measure, type Measured } from './measure.js'
import { MB, MiB, cell, round, table, printJsonLine } from './report.js'

const BLOCK_BYTES = 4 * MiB
const K = 4
const M = 2
/** Blocks per phase. */
const ROUNDS = Math.max(8, Math.round(128 * SCALE))
/** Timed runs per phase (the median is reported: the machine may be busy). */
const REPEATS = 5
/** Calls in flight in the parallel phases. */
const IN_FLIGHT = 4

const rs = createRequire(import.meta.url)('@ronomon/reed-solomon') as typeof import('@ronomon/reed-solomon')

interface Phase { name: string, flight: number, mbs: number, msPerBlock: number, m: Measured<void> }

/** ROUNDS calls of fn in REPEATS timed runs: speed = the median run's; CPU and peak RSS of them all. */
async function phase (name: string, flight: number, fn: () => Promise<void>): Promise<Phase> {
  await fn() // warm-up (contexts, scratch pool, code paths)
  const per = Math.max(1, Math.round(ROUNDS / REPEATS))
  const runs: number[] = []
  const m = await measure({ sampleMs: RSS_SAMPLE_MS, name: `erasure-${name}` }, async () => {
    for (let r = 0; r < REPEATS; r++) {
      const t0 = performance.now()
      for (let i = 0; i < per; i++) await fn()
      runs.push((performance.now() - t0) / 1000)
    }
  })
  const seconds = runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)]
  return { name, flight, mbs: per * flight * BLOCK_BYTES / MB / seconds, msPerBlock: seconds * 1000 / (per * flight), m }
}

function parallel (fn: () => Promise<void>): () => Promise<void> {
  return async () => { await Promise.all(Array.from({ length: IN_FLIGHT }, fn)) }
}

export async function runErasureBench (): Promise<void> {
  const size = shardPayloadSize(BLOCK_BYTES, K)
  const block = randomBytes(BLOCK_BYTES)
  const shards = await encodeShards(block, K, M)
  const twoMissing = shards.map((s, i) => i < 2 ? null : s)
  const dataOnly = shards.map((s, i) => i < K ? s : null)
  const ctx = rs.create(K, M)
  // The library alone, on regions made once (one set per call in flight: they are written).
  const regions = Array.from({ length: IN_FLIGHT }, () => ({ data: Buffer.concat([block, Buffer.alloc(K * size - BLOCK_BYTES)]), parity: Buffer.alloc(M * size) }))
  let turn = 0
  const library = (sources: number, targets: number) => async (): Promise<void> => {
    const r = regions[turn++ % IN_FLIGHT]
    await new Promise<void>(resolve => rs.encode(ctx, sources, targets, r.data, 0, K * size, r.parity, 0, M * size, resolve))
  }
  for (const r of regions) await library((1 << K) - 1, ((1 << M) - 1) << K)()
  const libraryEncode = library((1 << K) - 1, ((1 << M) - 1) << K)
  const libraryDecode = library(0b111100, 0b000011)
  const memcpy = async (): Promise<void> => {
    for (let i = 0; i < K + M; i++) {
      const out = Buffer.allocUnsafeSlow(SHARD_HEADER_BYTES + size)
      block.copy(out, SHARD_HEADER_BYTES, (i % K) * size, (i % K + 1) * size)
    }
  }
  const concat = async (): Promise<void> => { Buffer.concat(dataOnly.slice(0, K).map(s => s!.subarray(SHARD_HEADER_BYTES))) }
  const encode = async (): Promise<void> => { await encodeShards(block, K, M) }
  const decode2 = async (): Promise<void> => { await decodeShards(twoMissing, K, M, BLOCK_BYTES) }
  const decodeData = async (): Promise<void> => { await decodeShards(dataOnly, K, M, BLOCK_BYTES) }

  const baseline = process.memoryUsage.rss()
  process.stderr.write(`erasure: ${ROUNDS} blocks of ${BLOCK_BYTES / MiB} MiB per phase at ${K}+${M}, thread pool ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}\n`)
  const rows: Phase[] = []
  const run = async (name: string, flight: number, fn: () => Promise<void>): Promise<Phase> => {
    const p = await phase(name, flight, flight > 1 ? parallel(fn) : fn)
    rows.push(p)
    return p
  }
  const refCopy = await run('reference: memcpy of the output bytes into 6 shard buffers', 1, memcpy)
  const refConcat = await run('reference: Buffer.concat of the 4 data payloads', 1, concat)
  const lib = await run('library alone: parity of ready regions', 1, libraryEncode)
  const libPar = await run('library alone: parity of ready regions', IN_FLIGHT, libraryEncode)
  const libDec = await run('library alone: rebuild data shards 0 and 1 in place', 1, libraryDecode)
  const enc = await run('encodeShards', 1, encode)
  const encPar = await run('encodeShards', IN_FLIGHT, encode)
  const dec = await run('decodeShards, data shards 0 and 1 missing', 1, decode2)
  const decPar = await run('decodeShards, data shards 0 and 1 missing', IN_FLIGHT, decode2)
  const decData = await run('decodeShards, all data shards present (copy)', 1, decodeData)

  console.log(`Erasure coding of ${BLOCK_BYTES / MiB} MiB blocks at ${K}+${M} (payloads of ${size} bytes), ${ROUNDS} blocks per phase in ${REPEATS} runs; MB/s of block bytes, median run`)
  console.log(table(['phase', 'in flight', 'MB/s', 'ms per block', 'CPU s (all runs)', 'peak RSS MiB'],
    rows.map(r => [r.name, String(r.flight), cell(r.mbs, 0), cell(r.msPerBlock, 2), cell(r.m.cpuSeconds, 2), cell(r.m.peakRssBytes / MiB, 0)])))
  const peak = Math.max(...rows.map(r => r.m.peakRssBytes))
  console.log(`(RSS before the phases, with the test block, its shards and the library's regions: ${cell(baseline / MiB, 0)} MiB; peak ${cell(peak / MiB, 0)} MiB)`)
  printJsonLine({
    bench: 'erasure',
    block_bytes: BLOCK_BYTES,
    k: K,
    m: M,
    rounds: ROUNDS,
    in_flight: IN_FLIGHT,
    encode_mb_s: round(enc.mbs, 0),
    encode_parallel_mb_s: round(encPar.mbs, 0),
    decode_2_missing_mb_s: round(dec.mbs, 0),
    decode_2_missing_parallel_mb_s: round(decPar.mbs, 0),
    decode_all_data_mb_s: round(decData.mbs, 0),
    library_encode_mb_s: round(lib.mbs, 0),
    library_encode_parallel_mb_s: round(libPar.mbs, 0),
    library_decode_2_missing_mb_s: round(libDec.mbs, 0),
    ref_memcpy_mb_s: round(refCopy.mbs, 0),
    ref_concat_mb_s: round(refConcat.mbs, 0),
    rss_before_mib: round(baseline / MiB, 0),
    peak_rss_mib: round(peak / MiB, 0)
  })
}
