// OpenWatcher on real files and real other programs (`cat` in a child process): opens of `.f` stubs
// are reported once with their path, anything else and the agent's own opens are not, trees follow
// new/renamed/deleted subdirectories within a watch budget, close() stops everything. The addon tests
// skip (saying so) when scripts/build-native.js could not build it; the inotifywait backend runs
// against a stand-in program built on the addon, since inotify-tools is not installed everywhere.

import test, { type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promises as fsp, openSync, closeSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { tempDir, writeTree } from './helpers/fixtures.js'
import { AgentCodes, type AgentError } from '../agent/errors.js'
import { ADDON_PATH, InotifywaitParser, OpenWatcher, loadInotifyAddon, type InotifyAddon, type OpenWatcherOptions } from '../agent/open-watch.js'

const run = promisify(execFile)
const loaded = loadInotifyAddon()
const addon = 'addon' in loaded ? loaded.addon : null
const skip = addon !== null ? false : `${'error' in loaded ? loaded.error : 'no addon'} - build it with: node scripts/build-native.js`
if (skip !== false) console.log(`# SKIP addon tests: ${skip}`)

/** `cat` opens the file: a real other program, which exits before we look. */
async function otherProgramOpens (path: string): Promise<void> {
  await run('cat', [path], { encoding: 'buffer' })
}

interface Seen { opens: string[], warnings: AgentError[], w: OpenWatcher }

async function watcher (t: TestContext, opts: Partial<OpenWatcherOptions> = {}): Promise<Seen> {
  const opens: string[] = []
  const warnings: AgentError[] = []
  const w = new OpenWatcher({ backend: 'addon', ...opts, onOpen: p => opens.push(p), onWarning: e => warnings.push(e) })
  t.after(async () => { await w.close() })
  await w.ready()
  return { opens, warnings, w }
}

test('a program opening a .f stub is reported with its path; other files are not', { skip }, async t => {
  const dir = await tempDir(t)
  const p = await writeTree(dir, { 'photo.jpg.f': 'stub', 'notes.txt': 'x', 'f': 'x', '.f': 'x', 'x.f.bak': 'x' })
  const { opens, w } = await watcher(t)
  assert.equal(w.backend, 'addon')
  assert.equal(w.available, true)
  await w.watchDir(dir)
  for (const name of ['notes.txt', 'f', '.f', 'x.f.bak']) await otherProgramOpens(p[name])
  await w.flush()
  assert.deepEqual(opens, [])
  await otherProgramOpens(p['photo.jpg.f'])
  await w.flush()
  assert.deepEqual(opens, [p['photo.jpg.f']])
})

test('several opens of one stub within the coalesce window are one report', { skip }, async t => {
  const dir = await tempDir(t)
  const p = await writeTree(dir, { 'a.f': 'stub', 'b.f': 'stub' })
  const { opens, w } = await watcher(t, { coalesceMs: 10 * 60_000 })
  await w.watchDir(dir)
  for (let i = 0; i < 3; i++) await otherProgramOpens(p['a.f'])
  await otherProgramOpens(p['b.f'])
  await w.flush()
  assert.deepEqual(opens, [p['a.f'], p['b.f']])
})

test('the agent\'s own opens are not reported (withOwnOpen, ignoreNextOpen), and later ones are', { skip }, async t => {
  const dir = await tempDir(t)
  const p = await writeTree(dir, { 'own.f': 'stub', 'token.f': 'stub' })
  const { opens, w } = await watcher(t, { coalesceMs: 0 })
  await w.watchDir(dir)
  const text = await w.withOwnOpen(p['own.f'], async () => {
    const a = await fsp.readFile(p['own.f'], 'utf8')
    const fh = await fsp.open(p['own.f'], 'r')  // two opens: no count to get right
    await fh.close()
    return a
  })
  assert.equal(text, 'stub')
  w.ignoreNextOpen(p['token.f'])
  await fsp.readFile(p['token.f'])
  await w.flush()
  assert.deepEqual(opens, [])
  await otherProgramOpens(p['own.f'])
  await otherProgramOpens(p['token.f'])
  await w.flush()
  assert.deepEqual(opens.sort(), [p['own.f'], p['token.f']].sort())
  assert.throws(() => w.ignoreNextOpen(p['own.f'], 0), (e: AgentError) => e.code === AgentCodes.BAD_PARAMS)
})

test('Unicode and newline names come through exactly; a non-UTF-8 name is a warning', { skip }, async t => {
  const dir = await tempDir(t)
  const names = ['фото 📷 ünïcødé 数据.jpg.f', 'line\nbreak.f', ' spaced .f', 'é'.repeat(126) + '.f']
  const p = await writeTree(join(dir, 'Dossier été 🌅'), Object.fromEntries(names.map(n => [n, 'stub'])))
  const raw = Buffer.concat([Buffer.from(join(dir, 'Dossier été 🌅') + '/'), Buffer.from([0xff, 0xfe]), Buffer.from('.f')])
  closeSync(openSync(raw, 'w'))
  const { opens, warnings, w } = await watcher(t)
  await w.watchDir(join(dir, 'Dossier été 🌅'))
  for (const n of names) await otherProgramOpens(p[n])
  closeSync(openSync(raw, 'r'))
  await w.flush()
  assert.deepEqual(opens.sort(), names.map(n => p[n]).sort())
  assert.ok(warnings.some(e => e.code === AgentCodes.WATCH_FAILED && e.message.includes('not UTF-8')), warnings.map(e => e.message).join('\n'))
})

test('watchTree: nested and new subdirectories are watched, excluded and renamed ones handled, deleted ones freed', { skip }, async t => {
  const dir = await tempDir(t)
  const root = join(dir, 'Racine ü')
  const p = await writeTree(root, {
    'top.f': 's',
    'a/b/c/deep 数据.f': 's',
    'node_modules/pkg/x.f': 's',
    'skip-me/y.f': 's'
  })
  const { opens, w } = await watcher(t, { coalesceMs: 0 })
  const r = await w.watchTree(root, { exclude: d => d.endsWith('/node_modules') || d.endsWith('/skip-me') })
  assert.deepEqual(r, { dirs: 4, skipped: 0 })  // root, a, a/b, a/b/c
  await otherProgramOpens(p['node_modules/pkg/x.f'])
  await otherProgramOpens(p['skip-me/y.f'])
  await otherProgramOpens(p['a/b/c/deep 数据.f'])
  await otherProgramOpens(p['top.f'])
  await w.flush()
  assert.deepEqual(opens.splice(0), [p['a/b/c/deep 数据.f'], p['top.f']])

  // a new directory tree, made while watching (mkdir -p: the walk of `new` finds `deeper`)
  await fsp.mkdir(join(root, 'new/deeper'), { recursive: true })
  // the new directory may already be watched when we write the stub: our own open, not reported
  await w.withOwnOpen(join(root, 'new/deeper/n.f'), () => fsp.writeFile(join(root, 'new/deeper/n.f'), 's'))
  await w.idle()
  await otherProgramOpens(join(root, 'new/deeper/n.f'))
  await w.flush()
  assert.deepEqual(opens.splice(0), [join(root, 'new/deeper/n.f')])

  // renamed inside the tree: reported under the new name
  await fsp.rename(join(root, 'a'), join(root, 'à renommé'))
  await w.idle()
  await otherProgramOpens(join(root, 'à renommé/b/c/deep 数据.f'))
  await w.flush()
  assert.deepEqual(opens.splice(0), [join(root, 'à renommé/b/c/deep 数据.f')])

  // moved out of the tree: its watches are given back; deleted: likewise
  const before = w.stats().watches
  await fsp.rename(join(root, 'à renommé'), join(dir, 'outside'))
  await w.idle()
  assert.equal(w.stats().watches, before - 3)
  await otherProgramOpens(join(dir, 'outside/b/c/deep 数据.f'))
  await fsp.rm(join(root, 'new'), { recursive: true })
  await w.idle()
  assert.equal(w.stats().watches, before - 5)
  await w.flush()
  assert.deepEqual(opens, [])

  await w.unwatchTree(root)
  assert.equal(w.stats().watches, 0)
})

test('watches stay within the budget, with a warning that says how many directories are left out', { skip }, async t => {
  const dir = await tempDir(t)
  await writeTree(dir, { 'a/1/x': '', 'a/2/x': '', 'b/3/x': '', 'b/4/x': '' })
  const { warnings, w } = await watcher(t, { maxWatches: 3 })
  const r = await w.watchTree(dir)
  assert.equal(r.dirs, 3)
  assert.ok(r.skipped >= 1)
  assert.equal(w.stats().watches, 3)
  assert.ok(warnings.some(e => e.code === AgentCodes.WATCH_FAILED && e.message.includes('budget of 3')), warnings.map(e => e.message).join('\n'))
  await assert.rejects(w.watchDir(join(dir, 'b/4')), (e: AgentError) => e.code === AgentCodes.WATCH_FAILED)
  await assert.rejects(w.watchDir(join(dir, 'nope')), (e: AgentError) => e.code === AgentCodes.WATCH_FAILED)
})

test('an event-queue overflow is a warning, and the watcher keeps working', { skip }, async t => {
  const max = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'))
  if (!(max > 0 && max <= 65536)) return t.skip(`max_queued_events is ${max}`)
  const dir = await tempDir(t)
  const p = await writeTree(dir, { 'a.f': 's', 'b.f': 's' })
  const { opens, warnings, w } = await watcher(t, { coalesceMs: 0 })
  await w.watchDir(dir)
  // synchronous: the loop cannot read meanwhile; alternating names are never merged by the kernel
  for (let i = 0; i <= max; i++) closeSync(openSync(i % 2 === 0 ? p['a.f'] : p['b.f'], 'r'))
  await w.flush()
  assert.ok(warnings.some(e => e.message.includes('overflowed')), warnings.map(e => e.message).join('\n'))
  opens.length = 0
  await otherProgramOpens(p['a.f'])
  await w.flush()
  assert.deepEqual(opens, [p['a.f']])
})

test('close() is idempotent and stops reports; a closed watcher refuses new watches', { skip }, async t => {
  const dir = await tempDir(t)
  const p = await writeTree(dir, { 'x.f': 's' })
  const first = await watcher(t)
  const second = await watcher(t)  // sees the same open: proves it happened
  await first.w.watchDir(dir)
  await second.w.watchDir(dir)
  await first.w.close()
  await first.w.close()
  assert.equal(first.w.available, false)
  await otherProgramOpens(p['x.f'])
  await second.w.flush()
  await first.w.flush()
  assert.deepEqual(second.opens, [p['x.f']])
  assert.deepEqual(first.opens, [])
  await assert.rejects(first.w.watchDir(dir), (e: AgentError) => e.code === AgentCodes.CLOSED)
  await first.w.unwatchDir(dir)
})

test('the addon refuses bad input with coded errors and survives misuse', { skip }, async () => {
  const { Inotify, constants: C } = addon as InotifyAddon
  assert.throws(() => new Inotify(5 as never), { code: 'ERR_INVALID_ARG_TYPE' })
  const ino = new Inotify(() => {})
  try {
    assert.throws(() => ino.addWatch('/tmp\0/x', C.IN_OPEN), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => ino.addWatch('x'.repeat(5000), C.IN_OPEN), { code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => ino.addWatch('', C.IN_OPEN), { code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => ino.addWatch({} as never, C.IN_OPEN), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => ino.addWatch('/tmp', 'open' as never), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => ino.addWatch('/nonexistent/dustbox', C.IN_OPEN), { code: 'ENOENT', syscall: 'inotify_add_watch' })
    assert.equal(ino.rmWatch(123456), false)
    const wd = ino.addWatch(Buffer.from('/tmp'), C.IN_OPEN)
    assert.ok(wd > 0)
    assert.equal(ino.rmWatch(wd), true)
  } finally {
    ino.close()
    ino.close()
  }
  assert.throws(() => ino.addWatch('/tmp', C.IN_OPEN), { code: 'ERR_CLOSED' })
})

// ---- backend selection and the inotifywait path ----

test('no backend: available is false with a reason, a warning, and every call is a harmless no-op', async t => {
  const dir = await tempDir(t)
  for (const opts of [{ backend: 'addon', addonPath: join(dir, 'missing.node') }, { backend: 'inotifywait', inotifywaitPath: join(dir, 'no-inotifywait') }, { backend: 'none' }] as const) {
    const { warnings, w } = await watcher(t, opts)
    assert.equal(w.available, false)
    assert.equal(w.backend, null)
    assert.ok((w.reason ?? '').length > 0)
    assert.ok(warnings.some(e => e.code === AgentCodes.OPEN_WATCH_UNAVAILABLE && e.message.includes(w.reason ?? '?')))
    await w.watchDir(dir)
    assert.deepEqual(await w.watchTree(dir), { dirs: 0, skipped: 0 })
    assert.equal(await w.withOwnOpen(dir, () => 7), 7)
    await w.flush()
  }
})

test('inotifywait output parser: NUL records split anywhere, newline names, garbage and overlong input', () => {
  const recs = [['OPEN', '/d/a.f'], ['OPEN', '/d/new\nline.f'], ['OPEN,ISDIR', '/d/'], ['OPEN', '/d/ü 数据.f']]
  const bytes = Buffer.from(recs.map(([e, p]) => `${e}\0${p}\0`).join(''))
  for (const step of [1, 3, 7, bytes.length]) {
    const parser = new InotifywaitParser('nul')
    const out: Array<{ events: string, path: string }> = []
    for (let i = 0; i < bytes.length; i += step) out.push(...parser.push(bytes.subarray(i, i + step)))
    assert.deepEqual(out.map(r => [r.events, r.path]), recs)
  }
  const parser = new InotifywaitParser('nul')
  assert.deepEqual(parser.push(Buffer.from('lower\0/x.f\0OPEN\0relative.f\0')), [])
  assert.deepEqual(parser.push(Buffer.concat([Buffer.from('OPEN\0/'), Buffer.from([0xff]), Buffer.from('.f\0')])), [])
  assert.deepEqual(parser.push(Buffer.alloc(20_000, 0x41)), [])
  assert.equal(parser.overlong, 1)
  const line = new InotifywaitParser('line')
  assert.deepEqual(line.push(Buffer.from('OPEN /d/a.f\nOPEN /d/new\nline.f\n')), [{ events: 'OPEN', path: '/d/a.f' }, { events: 'OPEN', path: '/d/new' }])
})

/** A stand-in for inotifywait (watches the roots, not recursively) that prints what the real one prints. */
const FAKE_INOTIFYWAIT = `#!${process.execPath}
const { Inotify, constants: C } = require(${JSON.stringify(ADDON_PATH)})
const args = process.argv.slice(2)
if (args.includes('--help')) {
  process.stdout.write('inotifywait 3.22\\n  --format <fmt>\\n' + (process.env.FAKE_INOTIFYWAIT_OLD === '1' ? '' : '  --no-newline\\n'))
  process.exit(1)
}
const fmt = args[args.indexOf('--format') + 1]
const nl = args.includes('--no-newline') ? '' : '\\n'
const roots = args.slice(args.indexOf('--') + 1)
process.stderr.write('Setting up watches.  Beware: since -r was given, this may take a while!\\n')
const byWd = new Map()
const ino = new Inotify((err, events) => {
  for (const ev of events) {
    if (!(ev.mask & C.IN_OPEN) || !byWd.has(ev.wd)) continue
    const e = (ev.mask & C.IN_ISDIR) ? 'OPEN,ISDIR' : 'OPEN'
    const parts = fmt.split(/(%[ewf0])/).map(x => x === '%e' ? Buffer.from(e) : x === '%w' ? Buffer.from(byWd.get(ev.wd)) : x === '%f' ? Buffer.from(ev.name) : x === '%0' ? Buffer.from([0]) : Buffer.from(x))
    process.stdout.write(Buffer.concat([...parts, Buffer.from(nl)]))
  }
})
for (const r of roots) byWd.set(ino.addWatch(r, C.IN_OPEN), r.endsWith('/') ? r : r + '/')
process.stderr.write('Watches established.\\n')
`

for (const old of [false, true]) {
  test(`inotifywait backend (${old ? 'old: line records' : 'NUL records'}) reports opens and fences through the child`, { skip }, async t => {
    const dir = await tempDir(t)
    const fake = join(dir, 'inotifywait')
    await fsp.writeFile(fake, FAKE_INOTIFYWAIT, { mode: 0o755 })
    const p = await writeTree(join(dir, 'w'), { 'x.f': 's', 'new\nline.f': 's', 'y.txt': 's', 'own.f': 's' })
    process.env.FAKE_INOTIFYWAIT_OLD = old ? '1' : '0'
    t.after(() => { delete process.env.FAKE_INOTIFYWAIT_OLD })
    const { opens, w } = await watcher(t, { backend: 'inotifywait', inotifywaitPath: fake })
    assert.equal(w.backend, 'inotifywait')
    await w.watchDir(join(dir, 'w'))
    await otherProgramOpens(p['y.txt'])
    await otherProgramOpens(p['new\nline.f'])
    await otherProgramOpens(p['x.f'])
    await w.withOwnOpen(p['own.f'], () => fsp.readFile(p['own.f']))
    await w.flush()
    // line mode cannot carry a newline in a name: that open is lost (documented), never misreported
    assert.deepEqual(opens.sort(), (old ? [p['x.f']] : [p['new\nline.f'], p['x.f']]).sort())
  })
}
