// The folder watcher on real files in temp folders with Unicode names: settle (a file is reported
// once, after its last write, with its final size), exclusions (stubs, temp and partial files,
// links, FIFOs, the state dir, .dustboxignore at the root and in sub-folders, edited at runtime),
// changes made while stopped (snapshots), corrupt snapshots, new and moved-in directories, removals,
// the bound on waiting paths, and the chokidar fallback. Every wait is bounded.

import test, { type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { tempDir, writeTree } from './helpers/fixtures.js'
import { FolderWatcher, snapshotProblem, type ParcelApi, type FileEvent, type PathEvent, type RescanEvent, type FolderWatcherOptions } from '../agent/watcher.js'
import { IgnoreRules, isBuiltinExcluded, walkEligible } from '../agent/ignore-rules.js'
import { AgentError } from '../agent/errors.js'
import { TEMP_PREFIX } from '../stubs/names.js'

const SETTLE = 150
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

interface Seen { file: FileEvent[], removed: PathEvent[], stub: PathEvent[], warning: AgentError[], rescan: RescanEvent[] }

/** Poll `cond` every 10 ms; fail after `ms`. */
async function until (what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** A watcher on `folders`, its events recorded from construction, closed after the test. */
async function watcher (t: TestContext, opts: Partial<FolderWatcherOptions> & { folders: string[], stateDir: string }, ready = true): Promise<{ w: FolderWatcher, seen: Seen }> {
  const w = new FolderWatcher({ settleMs: SETTLE, ...opts })
  const seen: Seen = { file: [], removed: [], stub: [], warning: [], rescan: [] }
  w.on('file', e => seen.file.push(e))
  w.on('removed', e => seen.removed.push(e))
  w.on('stub', e => seen.stub.push(e))
  w.on('warning', e => seen.warning.push(e.error))
  w.on('rescan', e => seen.rescan.push(e))
  t.after(async () => { await w.close() })
  if (ready) await w.ready()
  return { w, seen }
}

async function setup (t: TestContext): Promise<{ folder: string, state: string }> {
  const dir = await tempDir(t, 'dustbox-watch-')
  const folder = join(dir, 'Dossier données 数据')
  const state = join(dir, 'state')
  await fsp.mkdir(folder, { recursive: true })
  return { folder, state }
}

const files = (s: Seen, folder: string): string[] => s.file.map(e => e.path.slice(folder.length + 1)).sort()
const countOf = (s: Seen, path: string): number => s.file.filter(e => e.path === path).length

/** Write a sentinel file and wait for it: every change made before it has been handled. */
async function barrier (s: Seen, folder: string, name = `zz-barrier-${Math.random().toString(36).slice(2)}.txt`): Promise<void> {
  const p = join(folder, name)
  await fsp.writeFile(p, 'barrier')
  await until(`barrier ${name}`, () => countOf(s, p) > 0)
  await sleep(SETTLE * 2) // anything late would show up now
}

for (const backend of ['parcel', 'chokidar'] as const) {
  test(`${backend}: a new file is reported once, after settling, with its size; removal is reported`, async t => {
    const { folder, state } = await setup(t)
    const { seen } = await watcher(t, { folders: [folder], stateDir: state, backend })
    const p = join(folder, 'sub 🌅', 'Grüße.txt')
    await fsp.mkdir(join(folder, 'sub 🌅'))
    await fsp.writeFile(p, 'hello wörld')
    await until('the new file', () => countOf(seen, p) > 0)
    await barrier(seen, folder)
    assert.equal(countOf(seen, p), 1)
    const e = seen.file.find(x => x.path === p) as FileEvent
    assert.equal(e.folder, folder)
    assert.equal(e.size, Buffer.byteLength('hello wörld'))
    assert.equal(e.reason, 'new')
    await fsp.rm(p)
    await until('the removal', () => seen.removed.some(r => r.path === p))
    assert.deepEqual(seen.warning, [])
  })

  test(`${backend}: a slowly written file is reported once, after its last write, with its final size`, async t => {
    const { folder, state } = await setup(t)
    const settleMs = 400 // a wider margin than SETTLE: a stall of the test itself must not look like a pause
    const { seen } = await watcher(t, { folders: [folder], stateDir: state, backend, settleMs })
    const p = join(folder, 'lent — 慢.bin')
    const fh = await fsp.open(p, 'w')
    const piece = Buffer.alloc(1000, 7)
    let lastWrite = 0
    const started = Date.now()
    for (let i = 0; i < 16; i++) { // > 600 ms in all, gaps of 40 ms (a tenth of the settle period)
      await fh.write(piece)
      lastWrite = Date.now()
      await sleep(40)
    }
    await fh.close()
    assert.ok(lastWrite - started > settleMs, 'the writes span more than the settle period')
    assert.equal(countOf(seen, p), 0, 'not reported while being written')
    await until('the slow file', () => countOf(seen, p) > 0)
    await barrier(seen, folder)
    assert.equal(countOf(seen, p), 1)
    assert.equal(seen.file.find(x => x.path === p)?.size, 16_000)
  })

  test(`${backend}: new and moved-in directories have their files reported, nested ones too`, async t => {
    const { folder, state } = await setup(t)
    const outside = await tempDir(t, 'dustbox-outside-')
    const { seen } = await watcher(t, { folders: [folder], stateDir: state, backend, refreshMinIntervalMs: 0 })
    await writeTree(outside, { 'arbre/a.txt': 'a', 'arbre/branche/b.txt': 'bb', 'arbre/branche/feuille/c 数据.txt': 'ccc' })
    await fsp.rename(join(outside, 'arbre'), join(folder, 'arbre'))
    await fsp.mkdir(join(folder, 'm1', 'm2', 'm3'), { recursive: true })
    await fsp.writeFile(join(folder, 'm1', 'm2', 'm3', 'deep.txt'), 'deep')
    await until('files of new directories', () => files(seen, folder).length >= 4)
    await barrier(seen, folder, 'zz.txt')
    assert.deepEqual(files(seen, folder), ['arbre/a.txt', 'arbre/branche/b.txt', 'arbre/branche/feuille/c 数据.txt', 'm1/m2/m3/deep.txt', 'zz.txt'])
    // Later changes deep inside the moved-in tree are seen too (with @parcel/watcher this needs
    // the re-subscription: inotify did not watch the sub-directories of the moved-in one).
    await until('a refresh', () => backend === 'chokidar' || seen.rescan.some(r => r.why === 'refresh'))
    const later = join(folder, 'arbre', 'branche', 'feuille', 'plus tard.txt')
    await fsp.writeFile(later, 'later')
    await until('a file written later in the moved-in tree', () => countOf(seen, later) > 0)
  })
}

test('stubs, temp, partial, lock and swap files, links and FIFOs are never reported as files', async t => {
  const { folder, state } = await setup(t)
  const { seen } = await watcher(t, { folders: [folder], stateDir: state })
  const excluded = [TEMP_PREFIX + 'x.abc', 'film.mkv.part', 'video.crdownload', 'a.tmp', 'B.TMP', '.notes.txt.swp', '.x.swx', 'draft.txt~',
    '.#lock.txt', '~$rapport.docx', '.~lock.tableur.ods#', '.DS_Store', 'Thumbs.db', 'x.partial', '.goutputstream-ABC123', '.nfs000000000001', '.dustboxignore']
  for (const n of excluded) await fsp.writeFile(join(folder, n), 'x')
  await fsp.writeFile(join(folder, 'photo.jpg.f'), 'stub bytes')
  await fsp.writeFile(join(folder, 'target.txt'), 'target')
  await fsp.symlink(join(folder, 'target.txt'), join(folder, 'link.txt'))
  await fsp.symlink('/etc', join(folder, 'linkdir'))
  const fifo = spawnSync('mkfifo', [join(folder, 'pipe')])
  await barrier(seen, folder)
  const reported = files(seen, folder).filter(n => !n.startsWith('zz-barrier'))
  assert.deepEqual(reported, ['target.txt'])
  assert.deepEqual(seen.stub.map(e => e.path), [join(folder, 'photo.jpg.f')])
  if (fifo.status !== 0) t.diagnostic('mkfifo unavailable: FIFO case not exercised')
  for (const n of excluded) assert.ok(n === '.dustboxignore' || isBuiltinExcluded(n), n)
})

test('.dustboxignore at the root and in sub-folders is honoured, and edits take effect at runtime', async t => {
  const { folder, state } = await setup(t)
  await writeTree(folder, {
    '.dustboxignore': '# logs and builds\n*.log\nbuild/\n',
    'a.log': 'ignored', 'top.txt': 'kept', 'build/x.txt': 'ignored dir', 'build/deeper/y.txt': 'ignored',
    'sous dossier/.dustboxignore': 'secret*\n!keep.log\n',
    'sous dossier/secret.txt': 'ignored', 'sous dossier/keep.log': 're-included deeper', 'sous dossier/ok.txt': 'kept',
    'other/secret.txt': 'the nested rule does not apply here'
  })
  const { seen } = await watcher(t, { folders: [folder], stateDir: state })
  await until('startup listing', () => seen.file.length >= 4)
  assert.deepEqual(files(seen, folder), ['other/secret.txt', 'sous dossier/keep.log', 'sous dossier/ok.txt', 'top.txt'])
  assert.ok(seen.file.every(e => e.reason === 'startup'))
  seen.file.length = 0
  await writeTree(folder, { 'b.log': 'x', 'build/z.txt': 'x', 'sous dossier/secret2': 'x', 'sous dossier/new.txt': 'x', 'new.txt': 'x' })
  await barrier(seen, folder, 'zz-1.txt')
  assert.deepEqual(files(seen, folder), ['new.txt', 'sous dossier/new.txt', 'zz-1.txt'])
  // Un-ignore build/ and ignore *.md: build/ is re-listed, new .md files stay out.
  seen.file.length = 0
  await fsp.writeFile(join(folder, '.dustboxignore'), '*.log\n*.md\n')
  await until('build/ re-listed', () => files(seen, folder).includes('build/deeper/y.txt'))
  assert.ok(seen.rescan.some(r => r.why === 'ignore-changed' && r.path === folder))
  await fsp.writeFile(join(folder, 'note.md'), 'x')
  await barrier(seen, folder, 'zz-2.txt')
  const after = files(seen, folder)
  assert.ok(after.includes('build/x.txt') && after.includes('build/z.txt'), after.join(','))
  assert.ok(!after.includes('note.md') && !after.some(n => n.endsWith('.log') && n !== 'sous dossier/keep.log'), after.join(','))
  assert.deepEqual(seen.warning, [])
})

test('IgnoreRules: git precedence, directory-only patterns, bad .dustboxignore files', async t => {
  const { folder } = await setup(t)
  await writeTree(folder, {
    '.dustboxignore': 'node_modules/\n*.bak\n!important.bak\n',
    'a/.dustboxignore': '!*.bak\nlocal/\n',
    'huge/.dustboxignore': Buffer.alloc(1024 * 1024 + 1, 0x61),
    'bad/.dustboxignore': Buffer.from([0x2a, 0xff, 0xfe, 0x0a])
  })
  const warnings: AgentError[] = []
  const r = new IgnoreRules(folder, { excluded: ['.state'], onWarning: e => warnings.push(e) })
  assert.equal(r.excluded('node_modules', true), true)
  assert.equal(r.excluded('node_modules', false), false, 'a file named like a dir-only pattern is kept')
  assert.equal(r.excluded('x/node_modules/y.js', false), true, 'inside an ignored directory')
  assert.equal(r.excluded('x.bak', false), true)
  assert.equal(r.excluded('important.bak', false), false)
  assert.equal(r.excluded('a/x.bak', false), false, 'the deeper file re-includes')
  assert.equal(r.excluded('a/local/f', false), true)
  assert.equal(r.excluded('local/f', false), false, 'a/.dustboxignore only applies under a/')
  assert.equal(r.excluded('.state/watch/x.snapshot', false), true)
  assert.equal(r.excluded('.dustboxignore', false), true, 'configuration, not ingested')
  assert.equal(r.excluded('.dustboxignore', false, true), false, 'but watched')
  assert.equal(r.excluded('huge/x.bak', false), true, 'root rules still apply under a refused file')
  assert.equal(r.excluded('bad/a', false), false)
  assert.equal(warnings.length, 2)
  assert.ok(warnings.every(w => w.code === 'IGNORE_INVALID'))
  assert.ok(warnings.some(w => w.message.includes('huge/.dustboxignore') && w.message.includes('larger')))
  assert.ok(warnings.some(w => w.message.includes('bad/.dustboxignore') && w.message.includes('UTF-8')))
  const walked: string[] = []
  await writeTree(folder, { 'node_modules/m/index.js': 'x', 'a/ok.bak': 'x', 'keep.txt': 'x', 'x.bak': 'x' })
  for await (const e of walkEligible(r, '')) walked.push(e.path.slice(folder.length + 1))
  assert.deepEqual(walked.sort(), ['a/ok.bak', 'keep.txt'])
})

test('the state directory inside a watched folder is never reported', async t => {
  const { folder } = await setup(t)
  const state = join(folder, '.dustbox état')
  await writeTree(folder, { 'kept.txt': 'x', '.dustbox état/old.db': 'state' })
  const { w, seen } = await watcher(t, { folders: [folder], stateDir: state })
  await until('startup', () => seen.file.length >= 1)
  await fsp.writeFile(join(state, 'index.db'), 'more state')
  await w.saveSnapshots() // writes into <state>/watch/, inside the folder
  await barrier(seen, folder)
  assert.deepEqual(files(seen, folder).filter(n => !n.startsWith('zz-')), ['kept.txt'])
  assert.ok((await fsp.readdir(join(state, 'watch'))).some(n => n.endsWith('.snapshot')))
  const walked: string[] = []
  for await (const e of w.walk(folder)) walked.push(e.path)
  assert.ok(walked.every(p => !p.startsWith(state)))
})

test('changes made while stopped are reported at ready() from the snapshot; unchanged files are not', async t => {
  const { folder, state } = await setup(t)
  await writeTree(folder, { 'same.txt': 'same', 'edit 数据.txt': 'v1', 'gone.txt': 'bye', 'old.jpg.f': 'stub' })
  const first = await watcher(t, { folders: [folder], stateDir: state })
  await until('first listing', () => first.seen.file.length >= 3 && first.seen.stub.length >= 1)
  assert.ok(first.seen.file.every(e => e.reason === 'startup'))
  await first.w.close()
  await first.w.close() // idempotent
  await assert.rejects(first.w.ready(), (e: AgentError) => e.code === 'CLOSED')

  await fsp.appendFile(join(folder, 'edit 数据.txt'), ' and v2')
  await fsp.rm(join(folder, 'gone.txt'))
  await writeTree(folder, { 'nouveau.txt': 'new', 'dir neuf/inner/f.txt': 'deep' })
  const second = await watcher(t, { folders: [folder], stateDir: state })
  await until('changes since the snapshot', () => second.seen.file.length >= 3)
  await barrier(second.seen, folder)
  const byPath = new Map(second.seen.file.map(e => [e.path.slice(folder.length + 1), e.reason]))
  assert.equal(byPath.get('edit 数据.txt'), 'changed')
  assert.equal(byPath.get('nouveau.txt'), 'new')
  assert.equal(byPath.get('dir neuf/inner/f.txt'), 'new')
  assert.equal(byPath.has('same.txt'), false)
  assert.deepEqual(second.seen.removed.map(e => e.path), [join(folder, 'gone.txt')])
  assert.deepEqual(second.seen.stub, [])
  assert.deepEqual(second.seen.warning, [])
})

test('a corrupt snapshot is a warning, then the whole folder is listed', async t => {
  const { folder, state } = await setup(t)
  await writeTree(folder, { 'a.txt': 'a', 'b/c.txt': 'c' })
  const first = await watcher(t, { folders: [folder], stateDir: state })
  await until('first listing', () => first.seen.file.length >= 2)
  await first.w.close()
  const snaps = (await fsp.readdir(join(state, 'watch'))).filter(n => n.endsWith('.snapshot'))
  assert.equal(snaps.length, 1)
  const snap = join(state, 'watch', snaps[0])
  assert.equal(await snapshotProblem(snap, folder), null)
  assert.match(await snapshotProblem(snap, '/elsewhere') ?? '', /not inside the folder/)
  for (const junk of ['', 'garbage\n', '99999999999\n', '2\n5/abc1 0\n']) {
    await fsp.writeFile(snap, junk)
    assert.notEqual(await snapshotProblem(snap, folder), null, JSON.stringify(junk))
  }
  await fsp.writeFile(snap, Buffer.from('1\n\xff\xfe garbage', 'latin1'))
  const second = await watcher(t, { folders: [folder], stateDir: state })
  await until('the listing', () => second.seen.file.length >= 2)
  assert.deepEqual(files(second.seen, folder), ['a.txt', 'b/c.txt'])
  assert.ok(second.seen.file.every(e => e.reason === 'startup'))
  assert.equal(second.seen.warning.length, 1)
  assert.match(second.seen.warning[0].message, /^WATCH_FAILED: snapshot .* listing the whole folder/)
})

test('past maxPending: a warning, then a rescan reports what was dropped', async t => {
  const { folder, state } = await setup(t)
  const { seen } = await watcher(t, { folders: [folder], stateDir: state, maxPending: 5 })
  const names = Array.from({ length: 40 }, (_, i) => `f-${i}-ñ.txt`)
  for (const n of names) await fsp.writeFile(join(folder, n), n)
  await until('all files', () => names.every(n => countOf(seen, join(folder, n)) > 0), 15_000)
  assert.ok(seen.warning.some(w => w.code === 'WATCH_FAILED' && /waiting to settle/.test(w.message)))
  assert.ok(seen.rescan.some(r => r.why === 'overflow' && r.folder === folder))
})

test('auto falls back to chokidar with a warning when @parcel/watcher cannot load', async t => {
  const { folder, state } = await setup(t)
  await writeTree(folder, { 'déjà là.txt': 'x' })
  const { w, seen } = await watcher(t, {
    folders: [folder], stateDir: state, backend: 'auto', loadParcel: async () => { throw new Error('no native module for this platform') }
  })
  assert.equal(w.status()[0].backend, 'chokidar')
  assert.equal(seen.warning.length, 1)
  assert.match(seen.warning[0].message, /@parcel\/watcher could not be loaded .* chokidar/)
  await until('startup listing', () => seen.file.length >= 1)
  assert.equal(seen.file[0].reason, 'startup')
  const p = join(folder, 'ensuite.txt')
  await fsp.writeFile(p, 'x')
  await until('a new file', () => countOf(seen, p) > 0)
})

test('auto watches a folder with chokidar when @parcel/watcher cannot subscribe it', async t => {
  const { folder, state } = await setup(t)
  const real = await import('@parcel/watcher') as unknown as { default: ParcelApi }
  const parcel: ParcelApi = { ...real.default, subscribe: async () => { throw new Error('inotify_add_watch failed: No space left on device') } }
  const { w, seen } = await watcher(t, { folders: [folder], stateDir: state, loadParcel: async () => parcel })
  assert.equal(w.status()[0].backend, 'chokidar')
  assert.match(seen.warning[0]?.message ?? '', /cannot watch .* No space left on device.* chokidar instead/)
  const p = join(folder, 'après.txt')
  await fsp.writeFile(p, 'x')
  await until('a new file', () => countOf(seen, p) > 0)
})

test('walk() lists eligible files; bad options and unknown folders are refused', async t => {
  const { folder, state } = await setup(t)
  await writeTree(folder, { 'a.txt': 'a', 'b.txt.f': 'stub', 'c.tmp': 'tmp', 'd/e.txt': 'e' })
  const w = new FolderWatcher({ folders: [folder], stateDir: state, settleMs: SETTLE })
  t.after(async () => { await w.close() })
  const plain: string[] = []
  for await (const e of w.walk(folder)) plain.push(e.path.slice(folder.length + 1))
  assert.deepEqual(plain.sort(), ['a.txt', 'd/e.txt'])
  const withStubs: string[] = []
  for await (const e of w.walk(folder, { stubs: true })) if (e.stub) withStubs.push(e.path.slice(folder.length + 1))
  assert.deepEqual(withStubs, ['b.txt.f'])
  await assert.rejects(async () => { for await (const _ of w.walk('/nowhere')) break }, (e: AgentError) => e.code === 'NOT_WATCHED')
  assert.throws(() => new FolderWatcher({ folders: ['relative/path'], stateDir: state }), (e: AgentError) => e.code === 'CONFIG_INVALID')
  assert.throws(() => new FolderWatcher({ folders: [folder, join(folder, 'd')], stateDir: state }), (e: AgentError) => e.code === 'CONFIG_INVALID')
  assert.throws(() => new FolderWatcher({ folders: [join(state, 'x')], stateDir: state }), (e: AgentError) => e.code === 'CONFIG_INVALID')
  assert.throws(() => new FolderWatcher({ folders: [folder], stateDir: state, settleMs: -1 }), (e: AgentError) => e.code === 'CONFIG_INVALID')
})

test('a missing folder is a warning, the others are still watched', async t => {
  const { folder, state } = await setup(t)
  const missing = join(folder, '..', 'absent')
  const { w, seen } = await watcher(t, { folders: [folder, missing], stateDir: state })
  assert.ok(seen.warning.some(e => e.code === 'WATCH_FAILED' && e.message.includes('absent')))
  assert.deepEqual(w.status().map(s => s.backend), ['parcel', null])
  const p = join(folder, 'x.txt')
  await fsp.writeFile(p, 'x')
  await until('a new file', () => countOf(seen, p) > 0)
})
