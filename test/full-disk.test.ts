// A full disk loses nothing: on a small tmpfs, stub fails with IO_ERROR (ENOSPC) naming the file and
// leaves the original as it was; hydrate fails the same way and leaves the stub, with no partial
// file under the real name and no temporary file left; both work once there is room again.
// Mounting needs root (as in CI here); where it is refused the test says so and is skipped.

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { writeTree, prng, sha256, fileSha256, exists, smallDisk } from './helpers/fixtures.js'
import { StubEngine, createSecret, loadCrypto, StubError } from '../stubs/index.js'

const MiB = 1024 * 1024

async function leftovers (dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter(n => n.startsWith('.dustbox-tmp.'))
}

test('a full disk: stub and hydrate fail with IO_ERROR and lose nothing', async t => {
  const disk = await smallDisk(t, '24m')
  if (disk === null) { t.skip('cannot mount a tmpfs here (needs root)'); return }
  const home = join(disk, 'home')
  await createSecret(await loadCrypto(), home)
  const engine = await StubEngine.open({ home, workers: 2 })
  t.after(async () => { await engine.close() })
  const folder = join(disk, 'f')

  // stub: a 14 MiB file on a 24 MiB disk cannot also have its 14 MiB of blocks.
  const big = prng('full-disk', 14 * MiB)
  const { 'big.bin': bigPath } = await writeTree(folder, { 'big.bin': big })
  await assert.rejects(engine.stub(bigPath), (e: StubError) => e.code === 'IO_ERROR' && /ENOSPC/.test(e.message))
  assert.equal(await fileSha256(bigPath), sha256(big), 'original intact')
  assert.equal(await exists(bigPath + '.f'), false, 'no stub')
  assert.deepEqual(await leftovers(folder), [])
  await fsp.unlink(bigPath)

  // hydrate: stub a 6 MiB file, fill the disk, hydrate fails; free it, hydrate works.
  const mid = prng('full-disk-2', 6 * MiB)
  const { 'mid.bin': midPath } = await writeTree(folder, { 'mid.bin': mid })
  await engine.stub(midPath)
  const stubBytes = await fsp.readFile(midPath + '.f')
  const free = (await fsp.statfs(disk)).bavail * (await fsp.statfs(disk)).bsize
  await fsp.writeFile(join(disk, 'filler'), new Uint8Array(Math.max(0, free - 2 * MiB)))
  await assert.rejects(engine.hydrate(midPath + '.f'), (e: StubError) => e.code === 'IO_ERROR' && /ENOSPC/.test(e.message) && e.message.includes('mid.bin'))
  assert.ok((await fsp.readFile(midPath + '.f')).equals(stubBytes), 'stub intact')
  assert.equal(await exists(midPath), false, 'no partial file under the real name')
  assert.deepEqual(await leftovers(folder), [])
  await fsp.unlink(join(disk, 'filler'))
  await engine.hydrate(midPath + '.f')
  assert.equal(await fileSha256(midPath), sha256(mid))
})
