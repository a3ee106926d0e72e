// The owner agent killed with SIGKILL at random instants of an ingest (6 trials; 100 with
// DUSTBOX_LONG=1): right after each kill every file is still there as its original or as a stub
// (never neither); after a restart everything is stubbed and every stub opens byte-exact.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { createHash, randomBytes, randomInt } from 'node:crypto'
import { LONG, tempDir } from './helpers/fixtures.js'
import { testSwarm, stubbedCount } from './helpers/agent-swarm.js'

const TRIALS = LONG ? 100 : 6
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const exists = async (p: string): Promise<boolean> => await fsp.stat(p).then(() => true, () => false)

test(`SIGKILL at random instants of ingest (${TRIALS} trials): no file lost or corrupted`, async (t) => {
  const ts = await testSwarm(t, { peers: 6 })
  const folder = await tempDir(t, 'dustbox-folder-')
  const all: Record<string, string> = {}
  let stubbed = 0
  for (let trial = 0; trial < TRIALS; trial++) {
    const files: Record<string, Buffer> = {
      [`trial-${trial}/große Datei.bin`]: randomBytes(3 * 1024 * 1024 + randomInt(4 * 1024 * 1024)),
      [`trial-${trial}/klein ✓.txt`]: Buffer.from(`trial ${trial} `.repeat(1 + randomInt(2000))),
      [`trial-${trial}/leer`]: Buffer.alloc(0)
    }
    await fsp.mkdir(join(folder, `trial-${trial}`))
    for (const [rel, b] of Object.entries(files)) { await fsp.writeFile(join(folder, rel), b); all[rel] = sha(b) }
    await ts.startOwner([folder])
    await new Promise(resolve => setTimeout(resolve, randomInt(200, 2500)))
    await ts.swarm.stop(ts.owner!, 'SIGKILL')
    // Right after the kill: each file is its original (intact) or a stub, or both.
    for (const [rel, h] of Object.entries(all)) {
      const original = join(folder, rel)
      const hasOriginal = await exists(original)
      const hasStub = await exists(original + '.f')
      assert.ok(hasOriginal || hasStub, `trial ${trial}: ${rel} is neither there nor stubbed`)
      if (hasOriginal) assert.equal(sha(await fsp.readFile(original)), h, `trial ${trial}: ${rel} altered`)
    }
    stubbed += Object.keys(files).length
  }
  // Restart: everything gets stubbed, and every stub opens byte-exact.
  await ts.startOwner([folder])
  await ts.waitFor(`all ${stubbed} files stubbed after the last restart`, st => stubbedCount(st) === stubbed && st.queue.active === 0, 180_000)
  for (const [rel, h] of Object.entries(all)) {
    const r = await ts.call<{ path: string }>('open', { path: join(folder, rel + '.f') })
    assert.equal(sha(await fsp.readFile(r.path)), h, rel)
  }
})
