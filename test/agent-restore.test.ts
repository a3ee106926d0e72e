// Restore from the key alone, with real processes on 127.0.0.1: an owner's tree (1,000 files with
// Unicode names, empty files, nested folders, one 256 MiB file) is placed and its folder index
// published; the owner stops for good. A new home made from nothing but the sealed key backup and
// its passphrase runs `dustbox restore --to DIR --hydrate` through the DHT bootstrap: every file
// comes back byte-exact.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join, dirname } from 'node:path'
import { spawn } from 'node:child_process'
import { randomBytes, createHash } from 'node:crypto'
import { tempDir, fileSha256 } from './helpers/fixtures.js'
import { testSwarm, stubbedCount } from './helpers/agent-swarm.js'
import { sandbox, BIN } from './helpers/setup-sandbox.js'
import { IndexDb } from '../agent/index-db.js'

const LONG = process.env.DUSTBOX_LONG === '1'
const SMALL_FILES = 1000
const BIG_MIB = 256

async function run (args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number, out: string, err: string }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', d => { out += String(d) })
    p.stderr.on('data', d => { err += String(d) })
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`dustbox ${args[0]} did not finish in ${timeoutMs} ms: ${err.slice(-2000)}`)) }, timeoutMs)
    p.on('close', code => { clearTimeout(timer); resolve({ code: code ?? -1, out, err }) })
  })
}

test('key-only restore: 1,000 files (Unicode names, empty files, nested) and a 256 MiB file come back byte-exact on a new home', async (t) => {
  const ts = await testSwarm(t, { peers: 6 })
  const folder = await tempDir(t, 'dustbox-Fotos ü-')
  const expected = new Map<string, string>()
  const names = ['Ünïcödé', '日本語のファイル', 'émoji 🎉', 'plain', 'space name']
  for (let i = 0; i < SMALL_FILES; i++) {
    const rel = `${names[i % names.length]} ${Math.floor(i / 100)}/${i % 7 === 0 ? 'leer' : 'datei'} ${i} ✓.bin`
    const data = i % 7 === 0 ? Buffer.alloc(0) : randomBytes(200 + (i * 37) % 3000)
    await fsp.mkdir(join(folder, dirname(rel)), { recursive: true })
    await fsp.writeFile(join(folder, rel), data)
    expected.set(rel, createHash('sha256').update(data).digest('hex'))
  }
  const bigRel = 'große Datei.bin'
  {
    const fh = await fsp.open(join(folder, bigRel), 'w')
    const h = createHash('sha256')
    for (let i = 0; i < BIG_MIB; i++) { const b = randomBytes(1024 * 1024); h.update(b); await fh.write(b) }
    await fh.close()
    expected.set(bigRel, h.digest('hex'))
  }
  // History (index v2): a file with two versions, and a deleted one whose version is kept.
  await fsp.writeFile(join(folder, 'historie.txt'), 'erste Fassung')
  await fsp.writeFile(join(folder, 'gelöscht.txt'), 'bald weg')
  await ts.startOwner([folder], [], { indexDebounceMs: 500 })
  await ts.waitFor('all stubbed', st => stubbedCount(st) === expected.size + 2, LONG ? 900_000 : 240_000)
  await ts.call('open', { path: join(folder, 'historie.txt.f') })
  await fsp.writeFile(join(folder, 'historie.txt'), 'zweite Fassung')
  expected.set('historie.txt', createHash('sha256').update('zweite Fassung').digest('hex'))
  await fsp.unlink(join(folder, 'gelöscht.txt.f'))
  await ts.waitFor('the second version recorded and the deletion made', async st => st.folders.some(f => (f.files.deleted ?? 0) === 1) &&
    (await ts.call<{ versions: unknown[] }>('versions', { path: join(folder, 'historie.txt') })).versions.length === 2, 60_000)
  const n = expected.size
  await ts.waitFor('the folder index published with every file', st => st.index.files === n && st.index.pointer && st.index.rootCopies >= 1, 120_000)

  // The old machine: seal its key backup, then it is gone for good.
  const sb = await sandbox(t)
  const sealed = await run(['setup', '--yes', '--port', '0', '--no-desktop', '--no-service', '--passphrase-file', sb.passFile, '--folder', folder], { ...sb.env, DUSTBOX_HOME: ts.ownerHome }, 120_000)
  assert.equal(sealed.code, 0, sealed.err)
  const backup = join(sb.dir, 'the only thing kept.dustkey')
  await fsp.copyFile(join(ts.ownerHome, 'key-backup.dustkey'), backup)
  await ts.swarm.stop(ts.owner!)

  // The new machine: the backup and its passphrase, nothing else.
  const imp = await run(['setup', '--yes', '--port', '0', '--no-desktop', '--no-service', '--import-backup', backup, '--passphrase-file', sb.passFile], sb.env, 120_000)
  assert.equal(imp.code, 0, imp.err)
  const to = join(sb.dir, 'wiederhergestellt')
  const r = await run(['restore', '--to', to, '--hydrate', '--bootstrap', ts.swarm.bootstrap, '--host', '127.0.0.1', '--port', '0', '--json'], sb.env, LONG ? 1_800_000 : 280_000)
  assert.equal(r.code, 0, `restore failed: ${r.err.slice(-3000)}`)
  const res = JSON.parse(r.out.trim().split('\n').pop()!) as { files: number, hydrated: number, folders: string[], refused: unknown[], versions: number, deleted: number }
  assert.deepEqual(res.refused, [])
  assert.equal(res.deleted, 1, 'the deleted file is known (restorable), not written')
  assert.ok(res.versions >= 2, `older versions recorded: ${res.versions}`)
  assert.equal(res.files, n)
  assert.equal(res.hydrated, n)
  assert.equal(res.folders.length, 1)
  const root = res.folders[0]
  for (const [rel, hash] of expected) assert.equal(await fileSha256(join(root, rel)), hash, rel)
  // Nothing else was written: no stub left, no stray file.
  const all = (await fsp.readdir(root, { recursive: true, withFileTypes: true })).filter(e => e.isFile())
  assert.equal(all.length, n)
  // The new machine's index has the history: both versions of historie.txt, the deleted file and its version.
  const db = new IndexDb(sb.dbx)
  try {
    const h = db.file(root, 'historie.txt')!
    assert.equal((db.raw.prepare('SELECT COUNT(*) AS n FROM versions WHERE file_id = ?').get(h.id) as { n: number }).n, 2)
    const g = db.file(root, 'gelöscht.txt')!
    assert.equal(g.state, 'deleted')
    assert.equal((db.raw.prepare('SELECT COUNT(*) AS n FROM versions WHERE file_id = ?').get(g.id) as { n: number }).n, 1)
  } finally {
    db.close()
  }
})
