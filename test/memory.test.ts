// Memory stays flat in file size: stubbing and hydrating a file many times larger than the engine's
// budgets allocates buffers worth a small multiple of the budgets, not of the file. It counts the
// bytes the buffer pool allocates (which of its size classes get reused depends a little on timing,
// hence the margin; reading ahead without bound allocates about the file's size); the RSS figures
// are the benchmark's job.

import test from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { engineFor, writeTree, prng, textLike, fileSha256, sha256 } from './helpers/fixtures.js'

const MiB = 1024 * 1024

test('a file 8x the budgets allocates buffers worth at most 4x the budgets', async t => {
  const inflightBytes = 12 * MiB
  const readBufferBytes = 8 * MiB
  const budgets = inflightBytes + readBufferBytes
  const { engine, dir } = await engineFor(t, { inflightBytes, readBufferBytes })
  const data = Buffer.concat([prng('flat', 110 * MiB), textLike('flat', 50 * MiB)])
  const { 'big.bin': path } = await writeTree(join(dir, 'f'), { 'big.bin': data })
  const before = engine.buffers.allocatedBytes
  const s = await engine.stub(path)
  const stubAlloc = engine.buffers.allocatedBytes - before
  assert.ok(s.blocks > 80, `${s.blocks} blocks`)
  assert.ok(stubAlloc <= 4 * budgets, `stub of ${data.length / MiB} MiB allocated ${(stubAlloc / MiB).toFixed(1)} MiB of buffers (budgets ${budgets / MiB} MiB)`)
  const mid = engine.buffers.allocatedBytes
  await engine.hydrate(s.stubPath)
  const hydrateAlloc = engine.buffers.allocatedBytes - mid
  assert.ok(hydrateAlloc <= 4 * budgets, `hydrate allocated ${(hydrateAlloc / MiB).toFixed(1)} MiB of buffers`)
  assert.equal(await fileSha256(path), sha256(data))
  t.diagnostic(`stub allocated ${(stubAlloc / MiB).toFixed(1)} MiB, hydrate ${(hydrateAlloc / MiB).toFixed(1)} MiB, for a ${data.length / MiB} MiB file`)
})
