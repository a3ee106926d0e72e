// The agent end to end, with real processes on 127.0.0.1: a bootstrap DHT node, six storage peers
// and an owner agent watching a folder. Files dropped in (many small files, a big file, Unicode
// names, empty files, nested folders) become stubs once placed 4+2; each opens back byte-exact with
// mode and mtime; the folder and state dir really shrink; .dustboxignore is honoured; an edit in the
// middle of the big file sends only the blocks that changed.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { LONG, tempDir, fileSha256, writeRandom } from './helpers/fixtures.js'
import { testSwarm, diskUsage, stubbedCount } from './helpers/agent-swarm.js'
import type { AgentStatus } from '../agent/status.js'

const SMALL = LONG ? 1000 : 1000
const BIG = (LONG ? 256 : 96) * 1024 * 1024

test('a folder becomes stubs on six peers and every stub opens back byte-exact', async (t) => {
  const ts = await testSwarm(t, { peers: 6 })
  const folder = await tempDir(t, 'dustbox-folder-')
  const files: Record<string, { sha: string, mode: number, mtimeMs: number }> = {}
  const put = async (rel: string, data: Uint8Array | null, size = 0, mode = 0o644): Promise<void> => {
    const p = join(folder, rel)
    await fsp.mkdir(join(p, '..'), { recursive: true })
    if (data !== null) await fsp.writeFile(p, data)
    else await writeRandom(p, size)
    await fsp.chmod(p, mode)
    const when = new Date(Date.UTC(2021, 4, 17, 8, 30, 15, 250))
    await fsp.utimes(p, when, when)
    const st = await fsp.stat(p)
    files[rel] = { sha: await fileSha256(p), mode: st.mode & 0o777, mtimeMs: st.mtimeMs }
  }
  await put('Fotos/Ürlaub 🏖/img-001.jpg', randomBytes(1536 * 1024 + 3), 0, 0o640)
  await put('docs/Ünïcødé/naïve résumé.txt', Buffer.from('Grüße, 世界! '.repeat(5000)))
  await put('empty.txt', new Uint8Array(0))
  await put('deep/a/b/c/d/e/f.bin', randomBytes(70_000), 0, 0o600)
  await put('big/movie.mkv', null, BIG)
  for (let i = 0; i < SMALL; i++) await put(`small/${String(i).padStart(4, '0')}-файл.txt`, Buffer.from(`small file ${i} `.repeat(1 + (i % 50))))
  // Ignored by .dustboxignore, and a partial download: never stubbed.
  await fsp.writeFile(join(folder, '.dustboxignore'), '*.log\nbuild/\n')
  await fsp.mkdir(join(folder, 'build'))
  await fsp.writeFile(join(folder, 'build', 'out.o'), randomBytes(1000))
  await fsp.writeFile(join(folder, 'debug.log'), 'log line\n')
  await fsp.writeFile(join(folder, 'video.mp4.part'), randomBytes(5000))
  const expected = Object.keys(files).length // .dustboxignore itself stays a plain file (the watcher reads it)
  const before = await diskUsage(folder)

  await ts.startOwner([folder], ['--cache', '0'])
  const s = await ts.waitFor(`${expected} files stubbed`, st => stubbedCount(st) >= expected, 300_000)
  assert.equal(s.placement.waiting, null)
  assert.equal(s.peers.filter(p => p.connected).length >= 6, true)

  // Originals gone, stubs in their place; ignored and partial files untouched.
  for (const rel of Object.keys(files)) {
    await assert.rejects(fsp.stat(join(folder, rel)), `${rel} should be gone`)
    await fsp.stat(join(folder, rel + '.f'))
  }
  await fsp.stat(join(folder, 'build', 'out.o'))
  await fsp.stat(join(folder, 'debug.log'))
  await fsp.stat(join(folder, 'video.mp4.part'))

  // 4+2 on six distinct peers: every peer holds about a sixth of 1.5x the data.
  const holders = s.peers.filter(p => p.holdsForMe > 0)
  assert.equal(holders.length, 6)
  const total = holders.reduce((n, p) => n + p.holdsForMe, 0)
  assert.ok(total >= BIG * 1.5 && total < (BIG + 20e6) * 1.6, `placed ${total} bytes for ${BIG}`)

  // The folder plus the owner's state dir really shrank.
  const after = await diskUsage(folder) + await diskUsage(ts.ownerHome)
  assert.ok(after < before * 0.2, `folder+home ${after} bytes after, ${before} before`)

  // Open: the big file, the odd names, the empty file and some small ones.
  const sample = ['big/movie.mkv', 'Fotos/Ürlaub 🏖/img-001.jpg', 'docs/Ünïcødé/naïve résumé.txt', 'empty.txt', 'deep/a/b/c/d/e/f.bin',
    ...Object.keys(files).filter(r => r.startsWith('small/')).filter((_, i) => i % 97 === 0)]
  for (const rel of sample) {
    const r = await ts.call<{ path: string, size: number }>('open', { path: join(folder, rel + '.f') })
    assert.equal(r.path, join(folder, rel))
    const st = await fsp.stat(r.path)
    assert.equal(await fileSha256(r.path), files[rel].sha, `${rel} content`)
    assert.equal(st.mode & 0o777, files[rel].mode, `${rel} mode`)
    assert.ok(Math.abs(st.mtimeMs - files[rel].mtimeMs) < 0.01, `${rel} mtime ${st.mtimeMs} vs ${files[rel].mtimeMs}`) // Node sets times to the microsecond
    await assert.rejects(fsp.stat(join(folder, rel + '.f')), `${rel}.f removed after open`)
  }

  // A small edit in the middle of the big file: only the blocks that changed are sent.
  const sent0 = (await ts.status()).placement.bytesSent
  const fh = await fsp.open(join(folder, 'big/movie.mkv'), 'r+')
  await fh.write(Buffer.from('an edit in the middle'), 0, 21, Math.floor(BIG / 2))
  await fh.close()
  const bigSha = await fileSha256(join(folder, 'big/movie.mkv'))
  const ev = await ts.call<{ queued: boolean }>('evict', { path: join(folder, 'big/movie.mkv') })
  assert.equal(ev.queued, true)
  await ts.waitFor('the edited big file stubbed again', (st: AgentStatus) => st.queue.active === 0 && st.queue.pending === 0 && st.placement.bytesSent > sent0, 120_000)
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline && !(await fsp.stat(join(folder, 'big/movie.mkv.f')).then(() => true, () => false))) await new Promise(resolve => setTimeout(resolve, 100))
  await fsp.stat(join(folder, 'big/movie.mkv.f'))
  const s2 = await ts.status()
  const sentForEdit = s2.placement.bytesSent - sent0
  t.diagnostic(`edit in the middle of ${BIG} bytes: ${sentForEdit} bytes sent`)
  assert.ok(sentForEdit <= 3 * 4 * 1024 * 1024 * 1.5 + 65536, `sent ${sentForEdit} bytes for a 21-byte edit`)
  const r = await ts.call<{ path: string }>('open', { path: join(folder, 'big/movie.mkv.f') })
  assert.equal(await fileSha256(r.path), bigSha)
})
