// stub and hydrate end to end on real files: byte-exact round trips with mode and mtime for awkward
// names and sizes; bad blocks, bad stubs, existing targets and files changing under us lose nothing.

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join, basename } from 'node:path'
import { engineFor, writeTree, prng, textLike, sha256, fileSha256, exists } from './helpers/fixtures.js'
import { StubEngine, createSecret, loadCrypto, StubError } from '../stubs/index.js'
import { readStubFile } from '../stubs/stub-io.js'
import { toHex } from '../stubs/crypto.js'
import { CHUNK_MAX, CHUNK_MIN } from '../stubs/chunker.js'
import { stubNameFor } from '../stubs/names.js'

async function codeOf (p: Promise<unknown>): Promise<string> {
  try { await p } catch (err) { assert.ok(err instanceof StubError, String(err)); return err.code }
  return 'OK'
}

const longName = 'é'.repeat(126) + 'xyz' // 255 bytes
const tree = {
  'plain.txt': textLike('plain', 50000),
  'with spaces and ünïcødé 数据 🌅.bin': prng('unicode', 3 * 1024 * 1024 + 1),
  'empty': new Uint8Array(0),
  'one byte': Buffer.from('x'),
  'exactly-min.bin': prng('min', CHUNK_MIN),
  'exactly-max.bin': prng('max', CHUNK_MAX),
  'max-plus-one.bin': prng('max1', CHUNK_MAX + 1),
  'nested/deeper/still/file.md': textLike('nested', 9 * 1024 * 1024),
  [longName]: textLike('long', 1000),
  ['b'.repeat(253)]: textLike('long253', 10),
  'file.f': 'not a stub: Fortran source named like one\n'
}

test('files become stubs and come back byte-exact with mode and mtime', async t => {
  const { engine, dir } = await engineFor(t)
  const folder = join(dir, 'folder')
  const paths = await writeTree(folder, tree)
  const before: Record<string, { sha: string, mode: number, mtimeMs: number }> = {}
  let i = 0
  for (const [rel, p] of Object.entries(paths)) {
    const mode = [0o644, 0o600, 0o755, 0o640][i++ % 4]
    await fsp.chmod(p, mode)
    await fsp.utimes(p, new Date(), i === 3 ? '-86400.5' : new Date(Date.UTC(2001, 2, 3, 4, 5, 6) + i * 1234))
    const st = await fsp.stat(p)
    before[rel] = { sha: await fileSha256(p), mode: st.mode & 0o7777, mtimeMs: st.mtimeMs }
  }
  const stubbed = await engine.stubMany(Object.values(paths))
  for (const o of stubbed) assert.ok(o.ok, o.ok ? '' : o.error.message)
  for (const [rel, p] of Object.entries(paths)) {
    assert.equal(await exists(p), false, `${rel} removed`)
    const stubPath = join(folder, rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/') + 1) : '', stubNameFor(basename(rel)))
    assert.ok(await exists(stubPath), `${rel} has its stub`)
    assert.ok(Buffer.byteLength(basename(stubPath)) <= 255)
    await engine.verify(stubPath)
    const h = await engine.hydrate(stubPath)
    assert.equal(h.path, p)
    assert.equal(await fileSha256(p), before[rel].sha, `${rel} byte-exact`)
    const st = await fsp.stat(p)
    assert.equal(st.mode & 0o7777, before[rel].mode, `${rel} mode`)
    assert.ok(Math.abs(st.mtimeMs - before[rel].mtimeMs) < 0.01, `${rel} mtime`)
    assert.equal(await exists(stubPath), false, `${rel} stub removed`)
  }
  const left = await fsp.readdir(folder, { recursive: true })
  assert.ok(!left.some(n => String(n).includes('.dustbox-tmp.')), 'no temp files left')
})

test('the folder really shrinks and identical files share blocks', async t => {
  const { engine, dir } = await engineFor(t)
  const data = prng('dup', 2 * 1024 * 1024)
  const paths = await writeTree(join(dir, 'f'), { 'a.bin': data, 'b.bin': data })
  const a = await engine.stub(paths['a.bin'])
  const b = await engine.stub(paths['b.bin'])
  assert.equal(a.newBlocks, a.blocks)
  assert.equal(b.newBlocks, 0, 'second copy stored no new block')
  const st = await fsp.stat(paths['a.bin'] + '.f')
  assert.ok(st.size < 2000, `stub is ${st.size} bytes`)
})

test('identical files stubbed at once race for the same blocks and all come back', async t => {
  const { engine, dir } = await engineFor(t)
  const big = prng('same', 3 * 1024 * 1024)
  const small = textLike('same', 20000)
  const tree: Record<string, Buffer> = {}
  for (let i = 0; i < 12; i++) tree[`copy ${i}.bin`] = big
  for (let i = 0; i < 12; i++) tree[`note ${i}.txt`] = small
  const paths = await writeTree(join(dir, 'f'), tree)
  const outcomes = await engine.stubMany(Object.values(paths))
  for (const o of outcomes) assert.ok(o.ok, o.ok ? '' : o.error.message)
  const ids = new Set<string>()
  for await (const id of engine.store.ids()) ids.add(id)
  const blocksOfOne = (await readStubFile(engine, paths['copy 0.bin'] + '.f')).blocks.length + 1
  assert.equal(ids.size, blocksOfOne, 'each distinct block stored once')
  const back = await engine.hydrateMany(Object.values(paths).map(p => p + '.f'))
  for (const o of back) assert.ok(o.ok, o.ok ? '' : o.error.message)
  for (const [rel, p] of Object.entries(paths)) assert.equal(await fileSha256(p), sha256(tree[rel]), rel)
})

test('a flipped, truncated or missing block is BLOCK_CORRUPT / BLOCK_MISSING and the stub stays', async t => {
  const { engine, dir } = await engineFor(t)
  const paths = await writeTree(join(dir, 'f'), { 'a.bin': prng('a', 3 * 1024 * 1024), 'b.bin': prng('b', 3 * 1024 * 1024), 'c.bin': prng('c', 3 * 1024 * 1024) })
  for (const p of Object.values(paths)) await engine.stub(p)
  const blockOf = async (p: string, i = 1): Promise<string> => engine.store.pathOf((await readStubFile(engine, p + '.f')).blocks[i].id)
  // flipped
  const fa = await blockOf(paths['a.bin'])
  const bytes = await fsp.readFile(fa); bytes[100] ^= 1; await fsp.writeFile(fa, bytes)
  // truncated
  const fb = await blockOf(paths['b.bin'])
  await fsp.truncate(fb, 1000)
  // missing
  const fc = await blockOf(paths['c.bin'])
  await fsp.unlink(fc)
  for (const [name, code, blockPath] of [['a.bin', 'BLOCK_CORRUPT', fa], ['b.bin', 'BLOCK_CORRUPT', fb], ['c.bin', 'BLOCK_MISSING', fc]] as const) {
    const stubPath = paths[name] + '.f'
    const stubBytes = await fsp.readFile(stubPath)
    for (const op of [async () => await engine.verify(stubPath), async () => await engine.hydrate(stubPath)]) {
      try { await op(); assert.fail('should fail') } catch (err) {
        assert.equal((err as StubError).code, code)
        assert.ok((err as Error).message.includes(basename(blockPath)), 'names the block')
        assert.ok((err as Error).message.includes(stubPath), 'names the file')
      }
    }
    assert.ok((await fsp.readFile(stubPath)).equals(stubBytes), 'stub untouched')
    assert.equal(await exists(paths[name]), false, 'no partial file under the real name')
    const left = await fsp.readdir(join(dir, 'f'))
    assert.ok(!left.some(n => n.startsWith('.dustbox-tmp.')), 'temp file removed')
  }
})

test('a corrupt block already in the store is replaced when the same content is stubbed again', async t => {
  const { engine, dir } = await engineFor(t)
  const data = prng('heal', 2 * 1024 * 1024)
  const p1 = (await writeTree(join(dir, 'f'), { 'one.bin': data }))['one.bin']
  await engine.stub(p1)
  const b = engine.store.pathOf((await readStubFile(engine, p1 + '.f')).blocks[0].id)
  const bytes = await fsp.readFile(b); bytes[5] ^= 0xff; await fsp.writeFile(b, bytes)
  const p2 = (await writeTree(join(dir, 'f'), { 'two.bin': data }))['two.bin']
  await engine.stub(p2)
  await engine.verify(p1 + '.f')
})

test('hydrate refuses to overwrite an existing file, stub refuses to overwrite a foreign .f', async t => {
  const { engine, dir } = await engineFor(t)
  const paths = await writeTree(join(dir, 'f'), { 'a.txt': 'alpha', 'b.txt': 'beta', 'b.txt.f': 'my own notes, not a stub' })
  await engine.stub(paths['a.txt'])
  await fsp.writeFile(paths['a.txt'], 'a new file with the same name')
  assert.equal(await codeOf(engine.hydrate(paths['a.txt'] + '.f')), 'TARGET_EXISTS')
  assert.equal(await fsp.readFile(paths['a.txt'], 'utf8'), 'a new file with the same name')
  assert.ok(await exists(paths['a.txt'] + '.f'))
  assert.equal(await codeOf(engine.stub(paths['b.txt'])), 'TARGET_EXISTS')
  assert.equal(await fsp.readFile(paths['b.txt'], 'utf8'), 'beta')
  assert.equal(await fsp.readFile(paths['b.txt.f'], 'utf8'), 'my own notes, not a stub')
})

test('a stub left next to its original (crash before removal) is replaced by a fresh stub', async t => {
  const { engine, dir } = await engineFor(t)
  const paths = await writeTree(join(dir, 'f'), { 'a.txt': textLike('x', 10000) })
  await engine.stub(paths['a.txt'])
  await engine.hydrate(paths['a.txt'] + '.f')
  const stubBytes = await fsp.readFile(join(dir, 'f', 'a.txt')) // original content
  await engine.stub(paths['a.txt'])
  const stubCopy = await fsp.readFile(paths['a.txt'] + '.f')
  await fsp.writeFile(paths['a.txt'], stubBytes) // the original reappears next to a valid stub
  await engine.stub(paths['a.txt'])
  assert.equal(await exists(paths['a.txt']), false)
  assert.ok((await fsp.readFile(paths['a.txt'] + '.f')).length === stubCopy.length)
})

test('hydrate finishes a crashed hydrate: the identical file next to its stub means only the stub goes', async t => {
  const { engine, dir } = await engineFor(t)
  const data = textLike('half-hydrated', 300000)
  const paths = await writeTree(join(dir, 'f'), { 'doc ü.txt': data, 'empty': '' })
  for (const p of Object.values(paths)) {
    await engine.stub(p)
    const stubBytes = await fsp.readFile(p + '.f')
    await engine.hydrate(p + '.f')
    await fsp.writeFile(p + '.f', stubBytes) // the state a crash between placing the file and removing the stub leaves
    const h = await engine.hydrate(p + '.f')
    assert.equal(h.path, p)
    assert.equal(await exists(p + '.f'), false, 'stub removed')
  }
  assert.equal(await fileSha256(paths['doc ü.txt']), sha256(data))
  // Same size, other bytes: that is someone's file, not ours to judge.
  await engine.stub(paths['doc ü.txt'])
  const other = Buffer.from(data); other[12345] ^= 1
  await fsp.writeFile(paths['doc ü.txt'], other)
  assert.equal(await codeOf(engine.hydrate(paths['doc ü.txt'] + '.f')), 'TARGET_EXISTS')
  assert.ok(await exists(paths['doc ü.txt'] + '.f'))
  assert.ok((await fsp.readFile(paths['doc ü.txt'])).equals(other))
  // A symbolic link to an identical file is not the restored file either.
  await fsp.rename(paths['doc ü.txt'], join(dir, 'elsewhere'))
  await fsp.writeFile(join(dir, 'elsewhere'), data)
  await fsp.symlink(join(dir, 'elsewhere'), paths['doc ü.txt'])
  assert.equal(await codeOf(engine.hydrate(paths['doc ü.txt'] + '.f')), 'TARGET_EXISTS')
  assert.ok(await exists(paths['doc ü.txt'] + '.f'))
})

test('a new file next to the stub of an older version is refused; both are kept', async t => {
  const { engine, dir } = await engineFor(t)
  const paths = await writeTree(join(dir, 'f'), { 'notes.txt': 'version one' })
  await engine.stub(paths['notes.txt'])
  const oldStub = await fsp.readFile(paths['notes.txt'] + '.f')
  await fsp.writeFile(paths['notes.txt'], 'version two, a different file')
  assert.equal(await codeOf(engine.stub(paths['notes.txt'])), 'TARGET_EXISTS')
  assert.ok((await fsp.readFile(paths['notes.txt'] + '.f')).equals(oldStub))
  assert.equal(await fsp.readFile(paths['notes.txt'], 'utf8'), 'version two, a different file')
})

test("a stub of another identity is STUB_FOREIGN and an edited stub is STUB_INVALID; nothing changes", async t => {
  const { engine, dir } = await engineFor(t)
  const paths = await writeTree(join(dir, 'f'), { 'a.txt': 'alpha', 'b.txt': 'beta' })
  await engine.stub(paths['a.txt'])
  await engine.stub(paths['b.txt'])
  const otherHome = join(dir, 'other')
  await createSecret(await loadCrypto(), otherHome)
  const other = await StubEngine.open({ home: otherHome, workers: 1 })
  t.after(async () => { await other.close() })
  assert.equal(await codeOf(other.hydrate(paths['a.txt'] + '.f')), 'STUB_FOREIGN')
  assert.equal(await codeOf(other.verify(paths['a.txt'] + '.f')), 'STUB_FOREIGN')
  const seen = await other.inspect(paths['a.txt'] + '.f')
  assert.equal(seen.authenticated, false)
  const text = await fsp.readFile(paths['b.txt'] + '.f', 'utf8')
  await fsp.writeFile(paths['b.txt'] + '.f', text.replace('size 4', 'size 5'))
  assert.equal(await codeOf(engine.hydrate(paths['b.txt'] + '.f')), 'STUB_INVALID')
  assert.equal(await exists(paths['a.txt']), false)
  assert.equal(await exists(paths['b.txt']), false)
  for (const bad of ['', 'dustbox-stub v1\n', '\u0000\u0001garbage']) {
    await fsp.writeFile(paths['b.txt'] + '.f', bad)
    assert.equal(await codeOf(engine.hydrate(paths['b.txt'] + '.f')), 'STUB_INVALID')
  }
  await fsp.symlink(paths['a.txt'] + '.f', join(dir, 'f', 'link.f'))
  assert.equal(await codeOf(engine.hydrate(join(dir, 'f', 'link.f'))), 'STUB_INVALID')
})

test('a file that changes while being stubbed is left as it is', async t => {
  const { engine, dir } = await engineFor(t)
  const paths = await writeTree(join(dir, 'f'), { 'growing.log': prng('grow', 12 * 1024 * 1024) })
  let touched = false
  const code = await codeOf(engine.stub(paths['growing.log'], {
    onProgress: p => {
      if (!touched && p.state === 'stubbing') { touched = true; void fsp.appendFile(paths['growing.log'], 'more') }
    }
  }))
  assert.equal(code, 'FILE_CHANGED')
  assert.equal(await exists(paths['growing.log'] + '.f'), false)
  assert.equal((await fsp.stat(paths['growing.log'])).size, 12 * 1024 * 1024 + 4)
})

test('symlinks, directories, missing files, stubs and temp files are not stubbed', async t => {
  const { engine, dir } = await engineFor(t)
  const f = join(dir, 'f')
  const paths = await writeTree(f, { 'real.txt': 'real', 'sub/x': 'x', '.dustbox-tmp.half': 'partial' })
  await fsp.symlink(paths['real.txt'], join(f, 'link.txt'))
  assert.equal(await codeOf(engine.stub(join(f, 'link.txt'))), 'NOT_A_FILE')
  assert.equal(await codeOf(engine.stub(join(f, 'sub'))), 'NOT_A_FILE')
  assert.equal(await codeOf(engine.stub(join(f, 'nope'))), 'NOT_A_FILE')
  assert.equal(await codeOf(engine.stub(paths['.dustbox-tmp.half'])), 'NAME_INVALID')
  await engine.stub(paths['real.txt'])
  await fsp.copyFile(paths['real.txt'] + '.f', join(f, 'copy-of-stub'))
  assert.equal(await codeOf(engine.stub(join(f, 'copy-of-stub'))), 'NOT_A_FILE')
  assert.equal(await exists(join(f, 'copy-of-stub')), true)
})

test('a renamed stub restores under its new name; a long name restores in full', async t => {
  const { engine, dir } = await engineFor(t)
  const f = join(dir, 'f')
  const paths = await writeTree(f, { 'photo.jpg': 'jpeg bytes', [longName]: 'long' })
  await engine.stubMany([paths['photo.jpg'], paths[longName]])
  await fsp.rename(join(f, 'photo.jpg.f'), join(f, 'holiday.jpg.f'))
  const h = await engine.hydrate(join(f, 'holiday.jpg.f'))
  assert.equal(h.path, join(f, 'holiday.jpg'))
  const longStub = join(f, stubNameFor(longName))
  assert.notEqual(basename(longStub), longName + '.f')
  assert.equal((await engine.hydrate(longStub)).path, paths[longName])
  assert.equal(toHex(new Uint8Array([1])), '01')
})
