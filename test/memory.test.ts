// Memory stays flat in file size: stubbing and hydrating a file many times larger than the engine's
// budgets allocates buffers worth a small multiple of the budgets, not of the file (deterministic:
// it counts the bytes the buffer pool allocates; the RSS figures are the benchmark's job).

import test from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { engineFor, writeTree, prng, textLike, fileSha256, sha256 } from './helpers/fixtures.js'

const MiB = 1024 * 1024

test('a file 6x the budgets allocates buffers worth at most 2x the budgets', async t => {
  const inflightBytes = 12 * MiB
  const readBufferBytes = 8 * MiB
  const budgets = inflightBytes + readBufferBytes
  const { engine, dir } = await engineFor(t, { inflightBytes, readBufferBytes })
  const data = Buffer.concat([prng('flat', 80 * MiB), textLike('flat', 40 * MiB)])
  const { 'big.bin': path } = await writeTree(join(dir, 'f'), { 'big.bin': data })
  const before = engine.buffers.allocatedBytes
  const s = await engine.stub(path)
  const stubAlloc = engine.buffers.allocatedBytes - before
  assert.ok(s.blocks > 60, `${s.blocks} blocks`)
  assert.ok(stubAlloc <= 2 * budgets, `stub of ${data.length / MiB} MiB allocated ${(stubAlloc / MiB).toFixed(1)} MiB of buffers (budgets ${budgets / MiB} MiB)`)
  const mid = engine.buffers.allocatedBytes
  await engine.hydrate(s.stubPath)
  const hydrateAlloc = engine.buffers.allocatedBytes - mid
  assert.ok(hydrateAlloc <= 2 * budgets, `hydrate allocated ${(hydrateAlloc / MiB).toFixed(1)} MiB of buffers`)
  assert.equal(await fileSha256(path), sha256(data))
  t.diagnostic(`stub allocated ${(stubAlloc / MiB).toFixed(1)} MiB, hydrate ${(hydrateAlloc / MiB).toFixed(1)} MiB, for a ${data.length / MiB} MiB file`)
})
