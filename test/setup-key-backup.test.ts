// The passphrase-sealed key backup (docs/keys.md §9): golden vector docs/vectors/key-backup-v1.json
// (decode, open with the documented passphrase, seal with the fixed salt and nonce to the same
// bytes), hostile files refused with clear errors, passphrase rules, and the independent Python
// checker. Regenerate the vector after a deliberate format change (a new version, never v1) with:
//   npx tsc -p . && DUSTBOX_WRITE_VECTORS=1 node test/run.js setup-key-backup

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { deriveKeys, loadCrypto } from '../stubs/index.js'
import {
  sealKeyBackup, openKeyBackup, decodeKeyBackup, encodeKeyBackup, passphraseBytes, readPassphraseFile, readKeyBackupFile,
  KEY_BACKUP_BYTES, SetupError
} from '../setup/index.js'
import { OFFSETS } from '../setup/key-backup-format.js'
import { tempDir } from './helpers/fixtures.js'

const FILE = fileURLToPath(new URL('../../docs/vectors/key-backup-v1.json', import.meta.url))
const WRITE = process.env.DUSTBOX_WRITE_VECTORS === '1'
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const seq = (start: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff)

/** Vector inputs: the public test root of v1.json, a Unicode passphrase, small Argon2id parameters. */
const ROOT = seq(0, 32)
const PASSPHRASE = 'Grüße, dustbox! 🔑 key backup'
const SALT = seq(0xa0, 16)
const NONCE = seq(0xb0, 24)
const OPSLIMIT = 2
const MEMLIMIT_KIB = 64

async function build (): Promise<Record<string, unknown>> {
  const file = await sealKeyBackup(ROOT, passphraseBytes(PASSPHRASE, 'vector'), { opslimit: OPSLIMIT, memlimitKib: MEMLIMIT_KIB, salt: SALT, nonce: NONCE })
  const crypto = await loadCrypto()
  return {
    about: 'docs/keys.md §9: the key backup file v1. Root secret = keys root of v1.json (000102…1f). Passphrase = NFC UTF-8 of passphraseUtf8. Hex unless noted.',
    rootSecret: hex(ROOT),
    ownerId: deriveKeys(crypto, ROOT).ownerId,
    passphraseUtf8: PASSPHRASE,
    passphraseBytes: hex(Buffer.from(PASSPHRASE.normalize('NFC'), 'utf8')),
    opslimit: OPSLIMIT,
    memlimitKib: MEMLIMIT_KIB,
    salt: hex(SALT),
    nonce: hex(NONCE),
    header: hex(file.subarray(0, OFFSETS.box)),
    box: hex(file.subarray(OFFSETS.box)),
    file: hex(file)
  }
}

if (WRITE) {
  test('write docs/vectors/key-backup-v1.json (DUSTBOX_WRITE_VECTORS=1)', async () => {
    await fsp.writeFile(FILE, JSON.stringify(await build(), null, 1) + '\n')
  })
} else {
  test('key backup vector: decode, open with the passphrase, seal again to the same bytes', async () => {
    const v = JSON.parse(await fsp.readFile(FILE, 'utf8'))
    const file = Buffer.from(v.file, 'hex')
    assert.equal(file.byteLength, KEY_BACKUP_BYTES)
    const f = decodeKeyBackup(file, 'vector')
    assert.equal(f.opslimit, v.opslimit)
    assert.equal(f.memlimitKib, v.memlimitKib)
    assert.equal(hex(f.salt), v.salt)
    assert.equal(hex(f.nonce), v.nonce)
    assert.equal(hex(f.owner), v.ownerId)
    assert.equal(hex(encodeKeyBackup(f)), v.file, 'decode then encode is the identity')
    const opened = await openKeyBackup(file, Buffer.from(v.passphraseBytes, 'hex'), 'vector')
    assert.equal(hex(opened.root), v.rootSecret)
    assert.equal(opened.ownerId, v.ownerId)
    const again = await sealKeyBackup(Buffer.from(v.rootSecret, 'hex'), passphraseBytes(v.passphraseUtf8, 'vector'), {
      opslimit: v.opslimit, memlimitKib: v.memlimitKib, salt: Buffer.from(v.salt, 'hex'), nonce: Buffer.from(v.nonce, 'hex')
    })
    assert.equal(hex(again), v.file)
    const got = JSON.parse(JSON.stringify(await build()))
    assert.deepEqual(got, v)
  })
}

test('key backup: wrong passphrase, altered bytes, truncation and unknown versions are clear errors', async () => {
  const v = JSON.parse(await fsp.readFile(FILE, 'utf8'))
  const file = Buffer.from(v.file, 'hex')
  const pass = Buffer.from(v.passphraseBytes, 'hex')
  await assert.rejects(openKeyBackup(file, Buffer.from('not the passphrase at all'), 'b.dustkey'), (e: SetupError) => e.code === 'PASSPHRASE_WRONG' && /"b\.dustkey"/.test(e.message))
  // Every header field is bound into the box key: changing the owner id (or a salt byte) fails to open.
  for (const at of [OFFSETS.owner, OFFSETS.salt + 3, OFFSETS.nonce, OFFSETS.box + 20]) {
    const bad = Buffer.from(file)
    bad[at] ^= 1
    await assert.rejects(openKeyBackup(bad, pass, 'x'), (e: SetupError) => e.code === 'PASSPHRASE_WRONG', `byte ${at}`)
  }
  const cases: Array<[Buffer, RegExp]> = [
    [Buffer.from('hello, not a backup'), /is not a dustbox key backup/],
    [file.subarray(0, 50), /is truncated/],
    [file.subarray(0, 139), /has 139 bytes, a version 1 key backup has 140/],
    [Buffer.concat([file, Buffer.from([0])]), /has 141 bytes/],
    [patch(file, OFFSETS.version, 2), /format version 2 is not supported/],
    [patch(file, OFFSETS.kdf, 1), /unknown key derivation 1/],
    [patch(file, OFFSETS.cipher, 9), /unknown cipher 9/],
    [patch(file, OFFSETS.reserved, 1), /reserved byte/],
    [patchU32(file, OFFSETS.opslimit, 0), /opslimit 0 is outside 1\.\.32/],
    [patchU32(file, OFFSETS.opslimit, 1000), /opslimit 1000/],
    [patchU32(file, OFFSETS.memlimitKib, 0xffffffff), /memory 4294967295 KiB is outside/]
  ]
  for (const [bytes, re] of cases) {
    assert.throws(() => decodeKeyBackup(bytes, 'k.dustkey'), (e: SetupError) => e.code === 'BACKUP_INVALID' && re.test(e.message) && e.message.includes('"k.dustkey"'), re.source)
  }
  // The passphrase never appears in any error.
  try { await openKeyBackup(file, Buffer.from('secret-passphrase-xyz'), 'x') } catch (e) { assert.ok(!(e as Error).message.includes('secret-passphrase-xyz')) }
})

test('key backup: passphrases are NFC-normalized UTF-8 of at least 12 characters; files are bounded', async t => {
  const nfc = 'Grüße aus Köln'
  assert.deepEqual(passphraseBytes(nfc.normalize('NFD'), 'p'), passphraseBytes(nfc, 'p'))
  assert.throws(() => passphraseBytes('', 'p'), /PASSPHRASE_INVALID: p: the passphrase is empty/)
  assert.throws(() => passphraseBytes('          ', 'p'), /is empty/)
  assert.throws(() => passphraseBytes('short pass', 'p'), /has 10 characters; use at least 12/)
  assert.equal(passphraseBytes('🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑', 'p').byteLength, 48, 'characters, not bytes, are counted')
  assert.throws(() => passphraseBytes('x'.repeat(1025), 'p'), /longer than 1024 bytes/)
  const dir = await tempDir(t)
  const p = (name: string): string => join(dir, name)
  await fsp.writeFile(p('ok'), 'correct horse battery staple\n')
  assert.equal(Buffer.from(await readPassphraseFile(p('ok'))).toString(), 'correct horse battery staple', 'one final newline is dropped')
  await fsp.writeFile(p('crlf'), 'correct horse battery staple\r\n')
  assert.equal(Buffer.from(await readPassphraseFile(p('crlf'))).toString(), 'correct horse battery staple')
  await fsp.writeFile(p('empty'), '')
  await fsp.writeFile(p('nl'), '\n')
  await fsp.writeFile(p('two'), 'correct horse battery\nstaple\n')
  await fsp.writeFile(p('big'), 'x'.repeat(5000))
  await fsp.mkdir(p('dir'))
  for (const [name, re] of [['missing', /does not exist/], ['empty', /is empty/], ['nl', /the passphrase is empty/], ['two', /more than one line/], ['big', /larger than 4096 bytes/], ['dir', /not a regular file/]] as const) {
    await assert.rejects(readPassphraseFile(p(name)), (e: SetupError) => e.code === 'PASSPHRASE_INVALID' && re.test(e.message) && e.message.includes(JSON.stringify(p(name))), name)
  }
  await assert.rejects(readKeyBackupFile(p('missing')), /BACKUP_INVALID: key backup ".*missing" does not exist/)
  await assert.rejects(readKeyBackupFile(p('big')), /BACKUP_INVALID: key backup ".*big" is larger than 4096 bytes/)
})

test('key backup: a real seal with random salt and nonce opens, and two seals differ', async () => {
  const root = seq(7, 32)
  const pass = passphraseBytes('another long passphrase', 'p')
  const a = await sealKeyBackup(root, pass, { opslimit: 1, memlimitKib: 8 })
  const b = await sealKeyBackup(root, pass, { opslimit: 1, memlimitKib: 8 })
  assert.notEqual(hex(a), hex(b))
  assert.equal(hex((await openKeyBackup(a, pass, 'a')).root), hex(root))
  assert.equal(hex((await openKeyBackup(b, pass, 'b')).root), hex(root))
})

test('key backup vector: the independent Python reimplementation agrees (skipped without python3 + cryptography)', t => {
  const probe = spawnSync('python3', ['-c', 'from cryptography.hazmat.primitives.kdf.argon2 import Argon2id'], { encoding: 'utf8' })
  if (probe.status !== 0) { t.skip('python3 with cryptography ≥ 44 (Argon2id) is not available'); return }
  const r = spawnSync('python3', [fileURLToPath(new URL('../../docs/vectors/check_key_backup_v1.py', import.meta.url))], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(r.status, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /key-backup-v1\.json: all checks passed/)
})

function patch (b: Buffer, at: number, value: number): Buffer {
  const c = Buffer.from(b)
  c[at] = value
  return c
}

function patchU32 (b: Buffer, at: number, value: number): Buffer {
  const c = Buffer.from(b)
  c.writeUInt32BE(value, at)
  return c
}
