// SIGKILL at random instants of `dustbox stub` and `dustbox hydrate` (real child processes): after
// every kill each file exists as its exact original or as a valid stub that hydrates byte-exact,
// never neither, never a partial file under the real name.

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { engineFor, writeTree, prng, textLike, sha256, fileSha256, exists, LONG, type Tree } from './helpers/fixtures.js'
import type { StubEngine } from '../stubs/index.js'

const BIN = fileURLToPath(new URL('../../bin/dustbox.js', import.meta.url))
const TRIALS = LONG ? 200 : 20

function run (args: string[], killAfterMs: number | null): Promise<{ code: number | null, signal: NodeJS.Signals | null, ms: number }> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', d => { stderr += String(d) })
    const timer = killAfterMs === null ? null : setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    const hard = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (timer !== null) clearTimeout(timer)
      clearTimeout(hard)
      if (killAfterMs === null && code !== 0) reject(new Error(`dustbox ${args.join(' ')} exited ${code}: ${stderr}`))
      else resolve({ code, signal, ms: Date.now() - started })
    })
  })
}

/** Check the invariant for every file; hydrate whatever is stubbed so the next trial starts from originals. */
async function checkAndRestore (engine: StubEngine, folder: string, expected: Record<string, string>): Promise<{ stubs: number, originals: number }> {
  let stubs = 0
  let originals = 0
  for (const [rel, sha] of Object.entries(expected)) {
    const p = join(folder, rel)
    const hasOriginal = await exists(p)
    const hasStub = await exists(p + '.f')
    assert.ok(hasOriginal || hasStub, `${rel}: neither original nor stub`)
    if (hasOriginal) {
      assert.equal(await fileSha256(p), sha, `${rel}: a file under the real name that is not the original`)
      originals++
    }
    if (hasStub) {
      await engine.verify(p + '.f')
      // With the original beside it (a kill after the stub or the file was placed), hydrate finishes
      // the interrupted operation by removing the stub; otherwise it restores the file.
      await engine.hydrate(p + '.f')
      assert.equal(await fileSha256(p), sha, `${rel}: hydrated bytes differ`)
      assert.equal(await exists(p + '.f'), false, `${rel}: stub left after hydrate`)
      if (!hasOriginal) stubs++
    }
  }
  for (const n of await fsp.readdir(folder)) if (n.startsWith('.dustbox-tmp.')) await fsp.unlink(join(folder, n))
  return { stubs, originals }
}

function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

test(`SIGKILL during stub and hydrate never loses a file (${TRIALS} trials each)`, { timeout: LONG ? 3_600_000 : 300_000 }, async t => {
  const { engine, home, dir } = await engineFor(t)
  const folder = join(dir, 'folder')
  const tree: Tree = {
    'big random.bin': prng('crash-big', 20 * 1024 * 1024),
    'text ünï.md': textLike('crash-text', 6 * 1024 * 1024),
    'small-1.txt': textLike('s1', 3000),
    'small-2.txt': textLike('s2', 70000),
    'empty': new Uint8Array(0)
  }
  await writeTree(folder, tree)
  const expected = Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, sha256(typeof v === 'string' ? Buffer.from(v) : v)]))
  const files = Object.keys(tree).map(k => join(folder, k))
  const seed = Number(process.env.DUSTBOX_CRASH_SEED ?? Date.now() % 1e9)
  const random = rng(seed)
  t.diagnostic(`seed ${seed}`)

  // Unkilled runs give the time scale for the kill instants: the faster of two, so that a calibration
  // run slowed by other tests (npm test runs two files at once) does not put most kills after the end.
  let stubMs = Infinity
  for (let i = 0; i < 2; i++) {
    stubMs = Math.min(stubMs, (await run(['--home', home, 'stub', ...files], null)).ms)
    await checkAndRestore(engine, folder, expected)
  }
  const hydrateSetup = async (): Promise<void> => { for (const f of files) await engine.stub(f) }
  await hydrateSetup()
  let hydrateMs = Infinity
  for (let i = 0; i < 2; i++) {
    if (i > 0) await hydrateSetup()
    hydrateMs = Math.min(hydrateMs, (await run(['--home', home, 'hydrate', ...files.map(f => f + '.f')], null)).ms)
    await checkAndRestore(engine, folder, expected)
  }

  const tally = { stub: { killed: 0, stubs: 0, originals: 0 }, hydrate: { killed: 0, stubs: 0, originals: 0 } }
  for (let i = 0; i < TRIALS; i++) {
    const r = await run(['--home', home, 'stub', ...files], Math.floor(random() * stubMs * 1.1))
    if (r.signal === 'SIGKILL') tally.stub.killed++
    const s = await checkAndRestore(engine, folder, expected)
    tally.stub.stubs += s.stubs; tally.stub.originals += s.originals
  }
  for (let i = 0; i < TRIALS; i++) {
    await hydrateSetup()
    const r = await run(['--home', home, 'hydrate', ...files.map(f => f + '.f')], Math.floor(random() * hydrateMs * 1.1))
    if (r.signal === 'SIGKILL') tally.hydrate.killed++
    const s = await checkAndRestore(engine, folder, expected)
    tally.hydrate.stubs += s.stubs; tally.hydrate.originals += s.originals
  }
  t.diagnostic(`stub ${stubMs} ms, hydrate ${hydrateMs} ms; ${JSON.stringify(tally)}`)
  assert.ok(tally.stub.killed >= TRIALS / 2 && tally.hydrate.killed >= TRIALS / 2, 'most trials were really killed mid-way')
})
