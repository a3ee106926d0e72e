// `dustbox key export|import|show` (docs/setup.md §9) in real child processes on temp homes: export →
// import into a fresh home gives the same owner and the same secret.key bytes; the printable form
// round-trips (file and stdin); a typo is named by its line; wrong passphrases, another identity,
// --force with an index, overwriting; the passphrase never on argv or in output. And the printable
// codec: the golden vector printed in docs/setup.md, its reading tolerances, and its errors.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { openKeyBackup, SetupError } from '../setup/index.js'
import { decodePrintable, encodePrintable, lineCheck, PrintableReader, PRINTABLE_ALPHABET } from '../setup/printable-key.js'
import { IndexDb } from '../agent/index-db.js'
import { loadCrypto } from '../stubs/index.js'
import { peerIdFromKey } from '../net/peer-id.js'
import { sandbox, BIN, PASSPHRASE, type Sandbox, type RunResult } from './helpers/setup-sandbox.js'

const DOC = fileURLToPath(new URL('../../docs/setup.md', import.meta.url))
const VECTOR = fileURLToPath(new URL('../../docs/vectors/key-backup-v1.json', import.meta.url))
const OWNER_RE = /[0-9a-f]{64}/

/** Run the CLI in `cwd` (so the default ./key-backup.dustkey lands in the sandbox) with `home`. */
function run (sb: Sandbox, home: string, args: string[], opts: { input?: string, cwd?: string } = {}): RunResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: opts.cwd ?? sb.dir, env: { ...sb.env, DUSTBOX_HOME: home }, input: opts.input ?? '', timeout: 60_000 })
  const res = { code: r.status ?? -1, out: r.stdout, err: r.stderr }
  // The passphrase never shows, whatever the command.
  assert.ok(!res.out.includes(PASSPHRASE) && !res.err.includes(PASSPHRASE), `passphrase printed by ${args.join(' ')}`)
  return res
}

function ownerOf (sb: Sandbox, home: string): string {
  const r = run(sb, home, ['key', 'show'])
  assert.equal(r.code, 0, r.err)
  const m = /^owner {3}([0-9a-f]{64})$/m.exec(r.out)
  assert.ok(m !== null, r.out)
  return m[1]
}

async function homeWithKey (sb: Sandbox, name: string): Promise<string> {
  const home = join(sb.dir, name)
  const r = run(sb, home, ['init'])
  assert.equal(r.code, 0, r.err)
  return home
}

const mode = async (p: string): Promise<number> => (await fsp.stat(p)).mode & 0o777

test('printable codec: the golden vector of docs/setup.md §9.1, and reading it back', async () => {
  const v = JSON.parse(await fsp.readFile(VECTOR, 'utf8'))
  const file = Buffer.from(v.file, 'hex')
  const doc = await fsp.readFile(DOC, 'utf8')
  const m = /```text\n(dustbox key backup v1 owner [0-9a-f]{64}\n[\s\S]*?)```/.exec(doc)
  assert.ok(m !== null, 'the vector block is in docs/setup.md')
  const golden = m[1]
  assert.equal(encodePrintable(file), golden, 'encoding the vector file gives the documented text byte for byte')
  assert.equal(golden.split('\n')[0], `dustbox key backup v1 owner ${v.ownerId}`)
  assert.equal(golden.trimEnd().split('\n').length, 12, 'header, 10 numbered lines, check line')
  assert.deepEqual(Buffer.from(decodePrintable(golden, 'vector')), file)
  // The decoded bytes are the real backup: its passphrase opens them.
  const opened = await openKeyBackup(decodePrintable(golden, 'vector'), Buffer.from(v.passphraseBytes, 'hex'), 'vector')
  assert.equal(Buffer.from(opened.root).toString('hex'), v.rootSecret)
  // The documented example of line 01's check.
  assert.equal(lineCheck(1, '8HAN6N2B8NCGM08204000000'), '7P')
  assert.equal(PRINTABLE_ALPHABET, '0123456789ABCDEFGHJKMNPQRSTVWXYZ')

  // Tolerated: case, spaces, '-', I/L → 1, O → 0, CRLF, blank and '#' lines, spaces in the owner id.
  const lines = golden.trimEnd().split('\n')
  const sloppy = [
    '# typed back from paper',
    lines[0].replace(/owner (\w{32})/, 'owner $1 ').toUpperCase().replace('DUSTBOX KEY BACKUP V1 OWNER', 'Dustbox Key Backup v1 Owner'),
    '',
    ...lines.slice(1).map(l => l.toLowerCase().replace(/0/g, 'o').replace(/1/g, (_c, i: number) => i % 2 === 0 ? 'l' : 'I').replace(/ {2}/g, ' - ')),
    ''
  ].join('\r\n')
  assert.deepEqual(Buffer.from(decodePrintable(sloppy, 'sloppy')), file)
  assert.deepEqual(Buffer.from(decodePrintable(lines.map(l => l.replace(/ /g, '')).join('\n').replace(/^dustboxkeybackupv1owner/, 'dustbox key backup v1 owner '), 'packed')), file)

  const err = (text: string, re: RegExp): void => {
    assert.throws(() => decodePrintable(text, '"t.txt"'), (e: unknown) => e instanceof SetupError && re.test(e.message), `expected ${re}`)
  }
  const edit = (i: number, f: (l: string) => string): string => lines.map((l, j) => j === i ? f(l) : l).join('\n') + '\n'
  // A typo in line 03 (one character changed) is named by that line.
  err(edit(3, l => l.replace('NANT', 'NAMT')), /^BACKUP_INVALID: "t\.txt" line 03 \(input line 4\): the check characters 8M do not match: a character of this line is mistyped, missing or extra$/)
  err(edit(3, l => l.replace('NANT', 'NAN')), /"t\.txt" line 03 .*mistyped, missing or extra \(it has 23 data characters; a full line has 24\)/)
  err(edit(5, l => l.replace('8MXN', '8MUN')), /line 05 .*"U" is not a character of this backup/)
  err(lines.filter((_l, j) => j !== 4).join('\n'), /line 05 \(input line 5\): line 04 is missing/)
  err([lines[0], lines[1], lines[2], lines[2]].join('\n'), /line 02 .*already read/)
  err(edit(11, l => l.replace('ZRB9', 'ZRB8')), /"t\.txt" check line: it does not match the numbered lines/)
  err(lines.filter((_l, j) => j !== 10).join('\n'), /"t\.txt" check line: it does not match the numbered lines: .*a numbered line is missing at the end \(9 read\)/)
  err(lines.slice(0, 11).join('\n'), /ends before its check line/)
  err(edit(0, l => l.replace('453b', '453c')), /"t\.txt" header: the owner id 453c50b2ce03342d… does not match the one inside the backup/)
  err(edit(0, l => l.replace('v1', 'v2')), /header .*version 2 is not supported/)
  err(edit(0, () => 'hello'), /header .*the first line must be "dustbox key backup v1 owner <owner id>"/)
  err(golden + 'extra\n', /after the check line/)
  err(edit(10, l => l.replace('D4TV R23B', 'D4TV R23')), /line 10 .*mistyped, missing or extra/)

  // The reader checks line by line, so a terminal can ask again for a rejected line only.
  const r = new PrintableReader('stdin')
  r.feed(lines[0])
  assert.throws(() => r.feed(lines[1].replace('8HAN', '8HAM')), /stdin line 01 \(input line 2\)/)
  assert.equal(r.expecting, 1)
  for (const l of lines.slice(1, -1)) assert.equal(r.feed(l), false)
  assert.equal(r.feed(lines[11]), true)
  assert.deepEqual(Buffer.from(r.finish()), file)
})

test('key export → key import into a fresh home: same owner, same secret.key; printable round trip', async (t) => {
  const sb = await sandbox(t)
  const a = await homeWithKey(sb, 'home a')
  const owner = ownerOf(sb, a)

  // Binary, at the default place (the current directory), 0600; not overwritten without --force.
  const exp = run(sb, a, ['key', 'export', '--passphrase-file', sb.passFile])
  assert.equal(exp.code, 0, exp.err)
  const backup = join(sb.dir, 'key-backup.dustkey')
  assert.equal((await fsp.readFile(backup)).byteLength, 140)
  assert.equal(await mode(backup), 0o600)
  assert.ok(exp.out.includes(owner))
  const before = await fsp.readFile(backup)
  const again = run(sb, a, ['key', 'export', '--passphrase-file', sb.passFile])
  assert.equal(again.code, 1)
  assert.match(again.err, /^FILE_FAILED: ".*key-backup\.dustkey" already exists; refusing to overwrite it \(use --force/m)
  assert.deepEqual(await fsp.readFile(backup), before)
  const forced = run(sb, a, ['key', 'export', '--passphrase-file', sb.passFile, '--force'])
  assert.equal(forced.code, 0, forced.err)
  assert.notDeepEqual(await fsp.readFile(backup), before, 'a fresh salt and nonce')

  const b = join(sb.dir, 'home b')
  const imp = run(sb, b, ['key', 'import', backup, '--passphrase-file', sb.passFile])
  assert.equal(imp.code, 0, imp.err)
  assert.match(imp.out, new RegExp(`imported identity ${owner}`))
  assert.equal(ownerOf(sb, b), owner)
  assert.deepEqual(await fsp.readFile(join(b, 'secret.key')), await fsp.readFile(join(a, 'secret.key')))
  assert.equal(await mode(join(b, 'secret.key')), 0o600)
  // The same identity again: nothing to do, exit 0.
  const same = run(sb, b, ['key', 'import', backup, '--passphrase-file', sb.passFile])
  assert.equal(same.code, 0, same.err)
  assert.match(same.out, /already imported, nothing changed/)

  // Printable to stdout (status on stderr), then imported from a file.
  const pr = run(sb, a, ['key', 'export', '--printable', '--passphrase-file', sb.passFile])
  assert.equal(pr.code, 0, pr.err)
  assert.match(pr.out, new RegExp(`^dustbox key backup v1 owner ${owner}\n01  (\\w{4} ){6} \\w{2}\n`))
  assert.match(pr.out, /\n10 {2}\w{4} \w{4} {2}\w{2}\ncheck \w{4} \w{4}\n$/)
  assert.match(pr.err, /exported the key backup/)
  const paper = join(sb.dir, 'paper.txt')
  await fsp.writeFile(paper, pr.out)
  const c = join(sb.dir, 'home c')
  const impP = run(sb, c, ['key', 'import', paper, '--passphrase-file', sb.passFile])
  assert.equal(impP.code, 0, impP.err)
  assert.deepEqual(await fsp.readFile(join(c, 'secret.key')), await fsp.readFile(join(a, 'secret.key')))

  // Printable to --out (0600), typed into stdin with the passphrase after it (no passphrase file).
  const out = join(sb.dir, 'printed.txt')
  const po = run(sb, a, ['key', 'export', '--printable', '--out', out, '--passphrase-file', sb.passFile])
  assert.equal(po.code, 0, po.err)
  assert.equal(await mode(out), 0o600)
  const typed = (await fsp.readFile(out, 'utf8')).toLowerCase().replace(/0/g, 'o')
  const d = join(sb.dir, 'home d')
  const impS = run(sb, d, ['key', 'import', '-'], { input: typed + PASSPHRASE + '\n' })
  assert.equal(impS.code, 0, impS.err)
  assert.equal(ownerOf(sb, d), owner)
  // Binary through stdin, with the passphrase from its file.
  const e = join(sb.dir, 'home e')
  const r = spawnSync(process.execPath, [BIN, 'key', 'import', '-', '--passphrase-file', sb.passFile], { env: { ...sb.env, DUSTBOX_HOME: e }, input: await fsp.readFile(backup), encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(await fsp.readFile(join(e, 'secret.key')), await fsp.readFile(join(a, 'secret.key')))
})

test('key import: a typo names its line, a wrong passphrase or a damaged file fails with exit 1', async (t) => {
  const sb = await sandbox(t)
  const a = await homeWithKey(sb, 'home a')
  const pr = run(sb, a, ['key', 'export', '--printable', '--passphrase-file', sb.passFile])
  assert.equal(pr.code, 0, pr.err)
  const lines = pr.out.split('\n')
  // Change one data character of line 04 to another character of the alphabet (one whose line
  // check differs: a random typo slips past the 10-bit check once in 1024).
  const l4 = lines[4]
  const i = 9
  const data = (l: string): string => l.slice(4, 33).replace(/ /g, '')
  const swapped = [...PRINTABLE_ALPHABET].find(ch => ch !== l4[i] && lineCheck(4, data(l4.slice(0, i) + ch + l4.slice(i + 1))) !== l4.slice(-2))!
  lines[4] = l4.slice(0, i) + swapped + l4.slice(i + 1)
  const typo = join(sb.dir, 'typo.txt')
  await fsp.writeFile(typo, lines.join('\n'))
  const b = join(sb.dir, 'home b')
  const r = run(sb, b, ['key', 'import', typo, '--passphrase-file', sb.passFile])
  assert.equal(r.code, 1)
  assert.match(r.err, /^BACKUP_INVALID: ".*typo\.txt" line 04 \(input line 5\): the check characters \w\w do not match: a character of this line is mistyped/m)
  assert.equal(await fsp.stat(join(b, 'secret.key')).catch(() => null), null, 'nothing written')
  // The same typo typed into stdin.
  const rs = run(sb, b, ['key', 'import', '-'], { input: lines.join('\n') + PASSPHRASE + '\n' })
  assert.equal(rs.code, 1)
  assert.match(rs.err, /^BACKUP_INVALID: stdin line 04 \(input line 5\)/m)

  // Wrong passphrase: from a file, and typed (three tries).
  const exp = run(sb, a, ['key', 'export', '--out', join(sb.dir, 'k.dustkey'), '--passphrase-file', sb.passFile])
  assert.equal(exp.code, 0, exp.err)
  const wrong = join(sb.dir, 'wrong.txt')
  await fsp.writeFile(wrong, 'not the passphrase at all\n')
  const w = run(sb, b, ['key', 'import', join(sb.dir, 'k.dustkey'), '--passphrase-file', wrong])
  assert.equal(w.code, 1)
  assert.match(w.err, /^PASSPHRASE_WRONG: the passphrase does not open the key backup ".*k\.dustkey"/m)
  const wt = run(sb, b, ['key', 'import', join(sb.dir, 'k.dustkey')], { input: 'wrong one!!!!!\nwrong two!!!!!\nwrong three!!!\n' })
  assert.equal(wt.code, 1)
  assert.match(wt.err, /PASSPHRASE_WRONG/)
  assert.equal((wt.err.match(/wrong passphrase; try again/g) ?? []).length, 2)
  const ok = run(sb, b, ['key', 'import', join(sb.dir, 'k.dustkey')], { input: 'wrong one!!!!!\n' + PASSPHRASE + '\n' })
  assert.equal(ok.code, 0, ok.err)
  const b2 = join(sb.dir, 'home b2')

  // Damaged binary file (a header byte changed: the box no longer opens) and not a backup at all.
  const bad = Buffer.from(await fsp.readFile(join(sb.dir, 'k.dustkey')))
  bad[30] ^= 1
  await fsp.writeFile(join(sb.dir, 'bad.dustkey'), bad)
  const d = run(sb, b2, ['key', 'import', join(sb.dir, 'bad.dustkey'), '--passphrase-file', sb.passFile])
  assert.equal(d.code, 1)
  assert.match(d.err, /^PASSPHRASE_WRONG: .*"[^"]*bad\.dustkey" \(or the file was altered\)/m)
  await fsp.writeFile(join(sb.dir, 'junk'), 'hello\n')
  const j = run(sb, b2, ['key', 'import', join(sb.dir, 'junk'), '--passphrase-file', sb.passFile])
  assert.equal(j.code, 1)
  assert.match(j.err, /^BACKUP_INVALID: ".*junk" is neither a dustbox key backup/m)
  const missing = run(sb, b2, ['key', 'import', join(sb.dir, 'nope'), '--passphrase-file', sb.passFile])
  assert.equal(missing.code, 1)
  assert.match(missing.err, /"[^"]*nope" does not exist/)
  assert.equal(await fsp.stat(b2).catch(() => null), null, 'no home created by failed imports')
})

test('passphrases never on argv; a typed one is asked twice; usage errors exit 2', async (t) => {
  const sb = await sandbox(t)
  const a = await homeWithKey(sb, 'home a')
  for (const args of [['key', 'export', '--passphrase', PASSPHRASE], ['key', 'import', 'x', '--passphrase', PASSPHRASE]]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...sb.env, DUSTBOX_HOME: a }, encoding: 'utf8' })
    assert.equal(r.status, 2)
    assert.match(r.stderr, /^USAGE: unknown option '--passphrase'/m)
    assert.ok(!r.stderr.includes(PASSPHRASE))
  }
  assert.equal(run(sb, a, ['key', 'export', '--out', '-']).code, 2, 'binary to stdout is a usage error')
  assert.equal(run(sb, a, ['key', 'import']).code, 2)

  // Asked (from piped stdin here): twice, and the two must match; too short is refused.
  const out = join(sb.dir, 'typed.dustkey')
  const diff = run(sb, a, ['key', 'export', '--out', out], { input: `${PASSPHRASE}\n${PASSPHRASE}x\nshort\n` })
  assert.equal(diff.code, 1)
  assert.match(diff.err, /the two passphrases differ/)
  assert.match(diff.err, /at least 12/)
  assert.equal(await fsp.stat(out).catch(() => null), null)
  const typed = run(sb, a, ['key', 'export', '--out', out], { input: `${PASSPHRASE}\n${PASSPHRASE}\n` })
  assert.equal(typed.code, 0, typed.err)
  const b = join(sb.dir, 'home b')
  assert.equal(run(sb, b, ['key', 'import', out, '--passphrase-file', sb.passFile]).code, 0)
  assert.equal(ownerOf(sb, b), ownerOf(sb, a))
  // Input ending before the passphrase: a clear error, nothing written.
  const c = join(sb.dir, 'home c')
  const cut = run(sb, c, ['key', 'import', out], { input: '' })
  assert.equal(cut.code, 1)
  assert.match(cut.err, /^INPUT_ENDED: stdin ended before the passphrase was given/m)
})

test('key import refuses another identity; --force only without indexed files, keeping the old secret', async (t) => {
  const sb = await sandbox(t)
  const a = await homeWithKey(sb, 'home a')
  const b = await homeWithKey(sb, 'home b')
  const ownerA = ownerOf(sb, a)
  const ownerB = ownerOf(sb, b)
  assert.notEqual(ownerA, ownerB)
  const backup = join(sb.dir, 'a.dustkey')
  assert.equal(run(sb, a, ['key', 'export', '--out', backup, '--passphrase-file', sb.passFile]).code, 0)
  const secretB = await fsp.readFile(join(b, 'secret.key'))

  const r = run(sb, b, ['key', 'import', backup, '--passphrase-file', sb.passFile])
  assert.equal(r.code, 1)
  assert.match(r.err, new RegExp(`^IDENTITY_EXISTS: ".*home b" already has identity ${ownerB.slice(0, 16)}…, and ".*a\\.dustkey" is the backup of ${ownerA.slice(0, 16)}…; import into another home \\(--home DIR\\), or replace it with --force`, 'm'))
  assert.deepEqual(await fsp.readFile(join(b, 'secret.key')), secretB)

  // An index listing files: refused even with --force, saying why.
  const db = new IndexDb(b)
  db.touchFile(join(sb.dir, 'docs'), 'report.pdf', 'stubbed', 1234, Date.now())
  db.close()
  const f1 = run(sb, b, ['key', 'import', backup, '--passphrase-file', sb.passFile, '--force'])
  assert.equal(f1.code, 1)
  assert.match(f1.err, /^IDENTITY_EXISTS: refusing to replace identity \w{16}… even with --force: its index ".*index\.sqlite" lists 1 file stored under it, which only that key can read back/m)
  assert.deepEqual(await fsp.readFile(join(b, 'secret.key')), secretB)

  // No indexed files (an empty index): replaced, the old secret kept aside (0600).
  for (const f of await fsp.readdir(b)) if (f.startsWith('index.sqlite')) await fsp.rm(join(b, f))
  new IndexDb(b).close()
  const f2 = run(sb, b, ['key', 'import', backup, '--passphrase-file', sb.passFile, '--force'])
  assert.equal(f2.code, 0, f2.err)
  assert.match(f2.out, new RegExp(`imported identity ${ownerA} .*replacing ${ownerB}`))
  assert.equal(ownerOf(sb, b), ownerA)
  assert.deepEqual(await fsp.readFile(join(b, 'secret.key')), await fsp.readFile(join(a, 'secret.key')))
  const aside = (await fsp.readdir(b)).filter(f => f.startsWith(`secret.key.replaced-${ownerB.slice(0, 16)}-`))
  assert.equal(aside.length, 1)
  assert.deepEqual(await fsp.readFile(join(b, aside[0])), secretB)
  assert.equal(await mode(join(b, aside[0])), 0o600)
})

test('key show: the owner id, the device id when device.key exists, never a secret', async (t) => {
  const sb = await sandbox(t)
  const a = await homeWithKey(sb, 'home a')
  const secret = (await fsp.readFile(join(a, 'secret.key'), 'utf8')).match(/dustbox-secret-v1:([0-9a-f]{64})/)![1]
  const plain = run(sb, a, ['key', 'show'])
  assert.equal(plain.code, 0, plain.err)
  assert.match(plain.out, /^owner {3}[0-9a-f]{64}\n$/)
  const seed = Buffer.alloc(32, 7)
  await fsp.writeFile(join(a, 'device.key'), `dustbox-device-key v1\n${seed.toString('hex')}\n`, { mode: 0o600 })
  const pk = (await loadCrypto()).signKeypair(seed).publicKey
  const withDevice = run(sb, a, ['key', 'show'])
  assert.equal(withDevice.code, 0, withDevice.err)
  const pkHex = Buffer.from(pk).toString('hex')
  assert.match(withDevice.out, new RegExp(`^device  ${pkHex.slice(0, 8)} \\(public key ${pkHex}\\)$`, 'm'))
  const json = JSON.parse(run(sb, a, ['key', 'show', '--json']).out)
  assert.match(json.owner, OWNER_RE)
  assert.equal(json.device, pkHex.slice(0, 8))
  assert.equal(json.deviceKey, pkHex)
  assert.equal(json.devicePeerId, peerIdFromKey(pk))
  for (const out of [plain.out, withDevice.out, JSON.stringify(json)]) {
    assert.ok(!out.includes(secret) && !out.includes(seed.toString('hex')), 'no secret printed')
  }
  await fsp.writeFile(join(a, 'device.key'), 'something else\n')
  const bad = run(sb, a, ['key', 'show'])
  assert.equal(bad.code, 1)
  assert.match(bad.err, /^FILE_FAILED: ".*device\.key" is not a dustbox device key file/m)
  const none = run(sb, join(sb.dir, 'empty home'), ['key', 'show'])
  assert.equal(none.code, 1)
  assert.match(none.err, /^KEY_MISSING: no identity/m)
})
