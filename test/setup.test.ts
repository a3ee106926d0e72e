// `dustbox setup` as a user runs it (real child processes, a temporary HOME): the identity and its
// passphrase-sealed backup, settings.json that `dustbox start` reads, the systemd user unit
// (checked by systemd-analyze), the MIME package, the desktop entry and mimeapps.list; a second run
// changes nothing; bad answers are clear one-line errors; import from a backup; the interactive
// wizard on piped stdin and on a terminal (echo off, Tab completion).

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { spawn, spawnSync } from 'node:child_process'
import net from 'node:net'
import dgram from 'node:dgram'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { loadSecret, toHex } from '../stubs/index.js'
import { openKeyBackup, passphraseBytes, readKeyBackupFile } from '../setup/index.js'
import { configFromFlags } from '../agent/start-cmd.js'
import { shellQuote } from '../setup/service.js'
import { exists } from './helpers/fixtures.js'
import { sandbox, freePort, snapshot, BIN, PASSPHRASE } from './helpers/setup-sandbox.js'

const GiB = 2 ** 30

test('setup --yes with flags: identity, key backup, settings, unit, MIME and desktop files; start uses them; a second run changes nothing', async t => {
  const sb = await sandbox(t)
  const folder = join(sb.dir, 'Fotos 2024 ü')
  await fsp.mkdir(folder)
  const port = await freePort()
  const args = ['setup', '--yes', '--folder', folder, '--donate', '2G', '--port', String(port), '--host', '127.0.0.1', '--passphrase-file', sb.passFile]
  const r = sb.run(args)
  assert.equal(r.code, 0, r.err + r.out)
  assert.equal(r.err, '')

  // Identity and key backup.
  const secretPath = join(sb.dbx, 'secret.key')
  const backupPath = join(sb.dbx, 'key-backup.dustkey')
  assert.equal((await fsp.stat(secretPath)).mode & 0o777, 0o600)
  assert.equal((await fsp.stat(backupPath)).mode & 0o777, 0o600)
  const root = await loadSecret(sb.dbx)
  const backup = await readKeyBackupFile(backupPath)
  assert.deepEqual([backup.fields.opslimit, backup.fields.memlimitKib], [1, 64], 'the test tunables reached the child')
  const opened = await openKeyBackup(backup.bytes, passphraseBytes(PASSPHRASE, 'p'), backupPath)
  assert.equal(toHex(opened.root), toHex(root), 'the backup decrypts with the passphrase to the same secret')
  assert.match(r.out, new RegExp(`key backup created +${escape(backupPath)}`))
  assert.match(r.out, /without them it is gone/)
  for (const text of [r.out, r.err]) {
    assert.ok(!text.includes(PASSPHRASE), 'the passphrase is never printed')
    assert.ok(!text.includes(toHex(root)), 'the secret is never printed')
  }

  // Settings, and what `dustbox start` makes of them.
  const settings = JSON.parse(await fsp.readFile(join(sb.dbx, 'settings.json'), 'utf8'))
  const realFolder = await fsp.realpath(folder)
  assert.deepEqual(settings, { version: 1, folders: [realFolder], host: '127.0.0.1', port, donate: 2 * GiB, mapPort: true, keyBackup: backupPath })
  const c = await configFromFlags(sb.dbx, {}, {})
  assert.deepEqual([c.folders, c.host, c.port, c.dhtPort, c.donate, c.mapPort], [[realFolder], '127.0.0.1', port, port + 1, 2 * GiB, true])
  assert.match(r.out, /donating 2\.0 GiB \(so the network stores up to 3\.0 GiB for you: what you give plus a 1 GiB grace\)/)

  // The systemd user unit.
  const unitPath = join(sb.userHome, '.config', 'systemd', 'user', 'dustbox.service')
  const unit = await fsp.readFile(unitPath, 'utf8')
  assert.ok(unit.includes(`ExecStart=${shellSafe(process.execPath)} ${BIN} --home "${sb.dbx}" start --no-tui\n`), unit)
  assert.match(unit, /^Restart=on-failure$/m)
  assert.ok(!unit.includes(toHex(root)) && !unit.includes(PASSPHRASE))
  assert.match(r.out, /no systemd user manager answers .*; to start the agent now and at every login, run:\n +systemctl --user daemon-reload\n +systemctl --user enable --now dustbox\.service/)
  const verify = spawnSync('systemd-analyze', ['--user', 'verify', '--man=false', unitPath], { encoding: 'utf8', env: sb.env, timeout: 60_000 })
  if (verify.error !== undefined) t.diagnostic('systemd-analyze is not installed: unit not verified')
  else {
    assert.equal(verify.status, 0, verify.stderr)
    assert.equal(verify.stderr.trim(), '')
  }

  // Desktop: MIME package, entry, default application.
  const data = join(sb.userHome, '.local', 'share')
  const mime = await fsp.readFile(join(data, 'mime', 'packages', 'dustbox-stub.xml'), 'utf8')
  assert.match(mime, /<glob pattern="\*\.f"\/>/)
  const entry = await fsp.readFile(join(data, 'applications', 'dustbox-open.desktop'), 'utf8')
  assert.ok(entry.includes(`\nExec=${shellSafe(process.execPath)} ${BIN} --home "${sb.dbx}" open %f\n`), entry)
  assert.match(entry, /^MimeType=application\/x-dustbox-stub;$/m)
  assert.match(entry, /^NoDisplay=true$/m)
  const list = await fsp.readFile(join(sb.userHome, '.config', 'mimeapps.list'), 'utf8')
  assert.match(list, /\[Default Applications\]\napplication\/x-dustbox-stub=dustbox-open\.desktop;/)
  if (/update-mime-database: ran/.test(r.out)) {
    assert.match(await fsp.readFile(join(data, 'mime', 'globs2'), 'utf8'), /application\/x-dustbox-stub:\*\.f/, 'update-mime-database read our package')
  } else {
    assert.match(r.out, /not installed, skipped: .*update-mime-database/)
  }

  // A second run: byte-identical files, unchanged mtimes, and it says so.
  const files = [secretPath, backupPath, join(sb.dbx, 'settings.json'), unitPath, join(data, 'mime', 'packages', 'dustbox-stub.xml'), join(data, 'applications', 'dustbox-open.desktop'), join(sb.userHome, '.config', 'mimeapps.list'), join(data, 'mime', 'mime.cache')]
  const before = await snapshot(files)
  const again = sb.run(args)
  assert.equal(again.code, 0, again.err)
  assert.deepEqual(await snapshot(files), before)
  for (const what of ['key backup', 'settings  ', 'service   ', 'desktop   ']) assert.match(again.out, new RegExp(`${what} +unchanged`), what)
  assert.match(again.out, /identity +kept/)
  assert.match(again.out, /nothing changed \(unchanged\)/)
  assert.match(again.out, /already configured/)
  // --yes with no flags keeps everything as it is, and needs no passphrase (the backup is valid).
  const bare = sb.run(['setup', '--yes'])
  assert.equal(bare.code, 0, bare.err)
  assert.deepEqual(await snapshot(files), before)

  // Relaying: --relay writes it, a later run without the flag keeps it, --relay 0 turns it off.
  const relayOn = sb.run(['setup', '--yes', '--relay', '1M'])
  assert.equal(relayOn.code, 0, relayOn.err)
  assert.match(relayOn.out, /relaying for others up to 1\.0 MiB\/s/)
  const settingsOf = async (): Promise<Record<string, unknown>> => JSON.parse(await fsp.readFile(join(sb.dbx, 'settings.json'), 'utf8'))
  assert.equal((await settingsOf()).relay, 1024 * 1024)
  assert.equal((await configFromFlags(sb.dbx, {}, {})).relayRate, 1024 * 1024, 'start relays at that rate')
  assert.equal(sb.run(['setup', '--yes']).code, 0)
  assert.equal((await settingsOf()).relay, 1024 * 1024, 'kept by a run without --relay')
  assert.equal(sb.run(['setup', '--yes', '--relay', '0']).code, 0)
  assert.equal('relay' in await settingsOf(), false, 'off: not written')
})

test('setup honours XDG_CONFIG_HOME and XDG_DATA_HOME and merges an existing mimeapps.list; --no-service, --no-desktop', async t => {
  const sb = await sandbox(t)
  const cfg = join(sb.dir, 'my config')
  const data = join(sb.dir, 'my data')
  await fsp.mkdir(cfg)
  const mine = '[Default Applications]\ntext/plain=org.gnome.TextEditor.desktop;\napplication/x-dustbox-stub=old.desktop;\n\n[Added Associations]\nimage/png=gimp.desktop;\n'
  await fsp.writeFile(join(cfg, 'mimeapps.list'), mine)
  const env = { XDG_CONFIG_HOME: cfg, XDG_DATA_HOME: data }
  const r = sb.run(['setup', '--yes', '--port', '0', '--passphrase-file', sb.passFile], { env })
  assert.equal(r.code, 0, r.err)
  assert.ok(await exists(join(cfg, 'systemd', 'user', 'dustbox.service')))
  assert.ok(await exists(join(data, 'applications', 'dustbox-open.desktop')))
  assert.ok(await exists(join(data, 'mime', 'packages', 'dustbox-stub.xml')))
  assert.equal(await exists(join(sb.userHome, '.config')), false, 'nothing under ~/.config')
  assert.equal(await fsp.readFile(join(cfg, 'mimeapps.list'), 'utf8'),
    '[Default Applications]\ntext/plain=org.gnome.TextEditor.desktop;\napplication/x-dustbox-stub=dustbox-open.desktop;old.desktop;\n\n[Added Associations]\nimage/png=gimp.desktop;\napplication/x-dustbox-stub=dustbox-open.desktop;\n')
  assert.match(r.out, /no folder: this node only donates space/)
  assert.match(r.out, /port any/)

  const sb2 = await sandbox(t)
  const r2 = sb2.run(['setup', '--yes', '--no-service', '--no-desktop', '--port', '0', '--passphrase-file', sb2.passFile])
  assert.equal(r2.code, 0, r2.err)
  assert.match(r2.out, /service +skipped \(--no-service\)/)
  assert.match(r2.out, /desktop +skipped \(--no-desktop\)/)
  assert.equal(await exists(join(sb2.userHome, '.config')), false)
  assert.equal(await exists(join(sb2.userHome, '.local')), false)
})

test('bad answers: one clear line on stderr, a non-zero exit, and nothing written', async t => {
  const sb = await sandbox(t)
  const file = join(sb.dir, 'a file.txt')
  await fsp.writeFile(file, 'x')
  const ok = join(sb.dir, 'ok')
  await fsp.mkdir(ok)
  await fsp.writeFile(join(sb.dir, 'empty'), '')
  await fsp.writeFile(join(sb.dir, 'short'), 'hunter2\n')
  const port = await freePort()
  const base = ['setup', '--yes', '--host', '127.0.0.1', '--port', String(port), '--passphrase-file', sb.passFile]
  const cases: Array<[string[], number, RegExp]> = [
    [[...base, '--folder', join(sb.dir, 'nope')], 1, /^FOLDER_INVALID: folder ".*nope" does not exist$/],
    [[...base, '--folder', join(file, 'sub')], 1, /^FOLDER_INVALID: folder ".*a file\.txt\/sub" is not a directory \(a part of its path is a file\)$/],
    [[...base, '--folder', file], 1, /^FOLDER_INVALID: folder ".*a file\.txt" is not a directory$/],
    [[...base, '--folder', '/'], 1, /^FOLDER_INVALID: folder "\/" is the root of the file system: refusing/],
    [[...base, '--folder', ok, '--folder', ok], 1, /^FOLDER_INVALID: folder ".*ok" is already in the list$/],
    [[...base, '--donate', '100M'], 2, /^USAGE: --donate "100M": donate 0 \(use without donating\) or at least 1\.0 GiB$/],
    [[...base, '--donate', 'plenty'], 2, /^USAGE: --donate "plenty" is not a size/],
    [[...base, '--relay', 'fast'], 2, /^USAGE: --relay "fast" is not a size/],
    [[...base, '--relay', '2G'], 2, /^USAGE: --relay "2G" is more than 1\.0 GiB per second$/],
    [['setup', '--yes', '--port', '80'], 2, /^USAGE: --port 80: choose 1024-65534/],
    [['setup', '--yes', '--port', 'http'], 2, /^USAGE: --port "http" is not a port number/],
    [['setup', '--yes', '--host', 'localhost', '--port', '0'], 2, /^USAGE: --host "localhost" is not an IPv4 address$/],
    [['setup', '--yes', '--port', '0'], 2, /^USAGE: --yes needs --passphrase-file FILE to seal the key backup ".*key-backup\.dustkey" \(a passphrase is never taken from the command line\)$/],
    [['setup', '--yes', '--port', '0', '--passphrase-file', join(sb.dir, 'missing')], 1, /^PASSPHRASE_INVALID: passphrase file ".*missing" does not exist$/],
    [['setup', '--yes', '--port', '0', '--passphrase-file', join(sb.dir, 'empty')], 1, /^PASSPHRASE_INVALID: passphrase file ".*empty" is empty$/],
    [['setup', '--yes', '--port', '0', '--passphrase-file', join(sb.dir, 'short')], 1, /^PASSPHRASE_INVALID: passphrase file ".*short": the passphrase has 7 characters; use at least 12/],
    [['setup', '--yes', '--port', '0', '--passphrase-file', sb.passFile, '--import-backup', file], 1, /^BACKUP_INVALID: key backup ".*a file\.txt" is not a dustbox key backup|^BACKUP_INVALID: ".*a file\.txt" is not a dustbox key backup/],
    [['setup', '--frobnicate'], 2, /^USAGE: unknown option '--frobnicate'/]
  ]
  for (const [args, code, re] of cases) {
    const r = sb.run(args)
    assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`)
    assert.match(r.err.trim(), re, args.join(' '))
    assert.equal(r.err.trim().split('\n').length, 1, r.err)
    assert.ok(!r.err.includes('hunter2') && !r.err.includes(PASSPHRASE), 'no passphrase in errors')
  }
  assert.equal(await exists(sb.dbx), false, 'no failed run wrote anything')

  // Ports in use: TCP, then UDP, then the DHT's port+1.
  const tcp = net.createServer()
  await new Promise<void>(resolve => tcp.listen(port, '127.0.0.1', resolve))
  let r = sb.run(base)
  tcp.close()
  assert.equal(r.code, 1)
  assert.match(r.err, new RegExp(`^PORT_IN_USE: port ${port}/tcp \\(TCP peer connections\\) is in use by another program on 127\\.0\\.0\\.1; choose another port \\(--port N\\) or stop that program\\n$`))
  for (const [p, what] of [[port, 'uTP peer connections'], [port + 1, 'DHT']] as const) {
    const udp = dgram.createSocket('udp4')
    await new Promise<void>(resolve => udp.bind(p, '127.0.0.1', resolve))
    r = sb.run(base)
    udp.close()
    assert.equal(r.code, 1)
    assert.match(r.err, new RegExp(`^PORT_IN_USE: port ${p}/udp \\(${what}\\) is in use`))
  }
  assert.equal(await exists(sb.dbx), false)

  // A folder the user may not read. Permission bits do not stop root: as root, run setup as nobody.
  const asNobody = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0
  if (process.getuid?.() === 0 && !asNobody) {
    t.diagnostic('running as root without setpriv: permission bits cannot make a folder unreadable to root; skipped')
  } else {
    const box = await fsp.mkdtemp(join(tmpdir(), 'dustbox-perm-'))
    t.after(async () => { await fsp.rm(box, { recursive: true, force: true }) })
    await fsp.chmod(box, 0o755)
    const locked = join(box, 'locked ü')
    await fsp.mkdir(locked)
    await fsp.mkdir(join(box, 'h'))
    if (asNobody) for (const p of [box, locked, join(box, 'h')]) await fsp.chown(p, 65534, 65534)
    await fsp.chmod(locked, 0o000)
    const argv = [BIN, 'setup', '--yes', '--no-service', '--no-desktop', '--port', '0', '--folder', locked]
    const env = { ...sb.env, HOME: join(box, 'h'), DUSTBOX_HOME: join(box, 'h', 'dbx') }
    const lr = asNobody
      ? spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...argv], { encoding: 'utf8', env, timeout: 60_000 })
      : spawnSync(process.execPath, argv, { encoding: 'utf8', env, timeout: 60_000 })
    await fsp.chmod(locked, 0o700)
    assert.equal(lr.status, 1, lr.stderr)
    assert.match(lr.stderr.trim(), /^FOLDER_INVALID: folder ".*locked ü" is not readable and writable by you \(permission denied\)/)
  }
})

test('identity kept on re-run; --import-backup restores it into a new home; foreign backups are never overwritten', async t => {
  const a = await sandbox(t)
  assert.equal(a.run(['init']).code, 0, 'an identity made before setup')
  const owner = toHex(await loadSecret(a.dbx))
  const r = a.run(['setup', '--yes', '--port', '0', '--no-desktop', '--no-service', '--passphrase-file', a.passFile])
  assert.equal(r.code, 0, r.err)
  assert.match(r.out, /identity +kept/)
  assert.match(r.out, /key backup created/)
  assert.equal(toHex(await loadSecret(a.dbx)), owner)
  const backup = join(a.dbx, 'key-backup.dustkey')

  // A new machine: restore from the backup.
  const b = await sandbox(t)
  const wrongPass = join(b.dir, 'wrong')
  await fsp.writeFile(wrongPass, 'a wrong but long passphrase\n')
  const bad = b.run(['setup', '--yes', '--port', '0', '--no-desktop', '--no-service', '--import-backup', backup, '--passphrase-file', wrongPass])
  assert.equal(bad.code, 1)
  assert.match(bad.err, /^PASSPHRASE_WRONG: the passphrase does not open the key backup ".*key-backup\.dustkey" \(or the file was altered\)\n$/)
  assert.equal(await exists(join(b.dbx, 'secret.key')), false)
  const imp = b.run(['setup', '--yes', '--port', '0', '--no-desktop', '--no-service', '--import-backup', backup, '--passphrase-file', b.passFile])
  assert.equal(imp.code, 0, imp.err)
  assert.match(imp.out, /identity +imported/)
  assert.equal(toHex(await loadSecret(b.dbx)), owner, 'the same identity')
  assert.deepEqual(await fsp.readFile(join(b.dbx, 'key-backup.dustkey')), await fsp.readFile(backup), 'the imported backup is kept as this home\'s backup')
  const again = b.run(['setup', '--yes', '--no-desktop', '--no-service', '--import-backup', backup, '--passphrase-file', b.passFile])
  assert.equal(again.code, 0, again.err)
  assert.match(again.out, /is already this home's identity: nothing to import/)

  // Another identity's home refuses the import, and refuses to overwrite a foreign backup.
  const c = await sandbox(t)
  assert.equal(c.run(['init']).code, 0)
  const refused = c.run(['setup', '--yes', '--port', '0', '--import-backup', backup, '--passphrase-file', c.passFile])
  assert.equal(refused.code, 1)
  assert.match(refused.err, /^IDENTITY_EXISTS: ".*key-backup\.dustkey" is the backup of identity [0-9a-f]{16}…, but ".*" already has identity [0-9a-f]{16}…; restore into another home \(--home DIR\)\n$/)
  const foreign = c.run(['setup', '--yes', '--port', '0', '--backup', backup, '--passphrase-file', c.passFile])
  assert.equal(foreign.code, 1)
  assert.match(foreign.err, /^BACKUP_FOREIGN: ".*key-backup\.dustkey" is the key backup of another identity .*it is not overwritten: move it away, or choose another place with --backup FILE\n$/)
  const d = await sandbox(t)
  const fresh = d.run(['setup', '--yes', '--port', '0', '--backup', backup, '--passphrase-file', d.passFile])
  assert.equal(fresh.code, 1)
  assert.match(fresh.err, /^BACKUP_FOREIGN: .*this home has no identity: restore it with "dustbox setup --import-backup /)
  assert.equal(await exists(join(d.dbx, 'secret.key')), false)
  await fsp.writeFile(join(d.dir, 'junk.dustkey'), 'not a backup')
  const junk = d.run(['setup', '--yes', '--port', '0', '--backup', join(d.dir, 'junk.dustkey'), '--passphrase-file', d.passFile])
  assert.equal(junk.code, 1)
  assert.match(junk.err, /^BACKUP_INVALID: ".*junk\.dustkey" is not a dustbox key backup .*; it is not overwritten: move it away/)
  assert.equal(await fsp.readFile(join(d.dir, 'junk.dustkey'), 'utf8'), 'not a backup')
})

test('interactive: the wizard reads its answers from piped stdin; wrong answers are asked again', async t => {
  const sb = await sandbox(t)
  const folder = join(sb.dir, 'Mes documents')
  await fsp.mkdir(folder)
  const port = await freePort()
  const answers = [
    '', //                      restore from a key backup? default no
    'too short', //             passphrase refused
    PASSPHRASE, PASSPHRASE + 'x', // the two differ
    PASSPHRASE, PASSPHRASE,
    join(sb.dir, 'missing'), // folder refused
    '/', //                      refused
    folder, '', //               one folder, then done
    '512M', '3G', //             donation refused, then accepted
    '80', String(port), //       port refused, then accepted
    'n', //                      no router port mapping
    'lots', '2M' //              relay rate refused, then accepted
  ]
  const r = sb.run(['setup', '--host', '127.0.0.1', '--no-desktop'], { input: answers.join('\n') + '\n' })
  assert.equal(r.code, 0, r.err + r.out)
  assert.ok(!r.out.includes(PASSPHRASE) && !r.err.includes(PASSPHRASE), 'the passphrase is never echoed')
  assert.match(r.out, /Passphrase: \n {2}PASSPHRASE_INVALID: passphrase: the passphrase has 9 characters/)
  assert.match(r.out, /the two passphrases differ; try again/)
  assert.match(r.out, /FOLDER_INVALID: folder ".*missing" does not exist/)
  assert.match(r.out, /FOLDER_INVALID: folder "\/" is the root of the file system/)
  assert.match(r.out, /Fair exchange: the network stores for you at most what you donate to others, plus a 1 GiB grace\./)
  assert.match(r.out, /USAGE: donated space "512M": donate 0/)
  assert.match(r.out, /USAGE: port 80: choose 1024-65534/)
  assert.match(r.out, /Relay end-to-end encrypted traffic for peers that cannot reach each other.*\n {2}USAGE: relay rate "lots" is not a size/)
  const s = JSON.parse(await fsp.readFile(join(sb.dbx, 'settings.json'), 'utf8'))
  assert.deepEqual([s.folders, s.donate, s.port, s.mapPort, s.host, s.relay], [[await fsp.realpath(folder)], 3 * GiB, port, false, '127.0.0.1', 2 * 1024 * 1024])
  const b = await readKeyBackupFile(join(sb.dbx, 'key-backup.dustkey'))
  assert.equal(toHex((await openKeyBackup(b.bytes, passphraseBytes(PASSPHRASE, 'p'), 'b')).root), toHex(await loadSecret(sb.dbx)))

  // Restoring from a key backup, interactively: a wrong passphrase is asked again.
  const sb3 = await sandbox(t)
  const port3 = await freePort()
  const restore = sb3.run(['setup', '--host', '127.0.0.1', '--no-desktop', '--no-service'], {
    input: ['y', join(sb.dbx, 'key-backup.dustkey'), 'not the right passphrase', PASSPHRASE, '', '', String(port3), '', ''].join('\n') + '\n'
  })
  assert.equal(restore.code, 0, restore.err + restore.out)
  assert.match(restore.out, /wrong passphrase; try again/)
  assert.match(restore.out, /identity +imported/)
  assert.match(restore.out, /key backup created/)
  assert.equal(toHex(await loadSecret(sb3.dbx)), toHex(await loadSecret(sb.dbx)))
  assert.ok(!restore.out.includes(PASSPHRASE))

  // Answers that stop early: a clear error, exit 1, nothing written.
  const sb2 = await sandbox(t)
  const cut = sb2.run(['setup', '--no-desktop'], { input: '\n' })
  assert.equal(cut.code, 1)
  assert.match(cut.err, /^INPUT_ENDED: the input ended before setup finished asking \(run "dustbox setup --yes" with flags to set up without questions\) \(question: "Passphrase:"\)\n$/)
  assert.equal(await exists(join(sb2.dbx, 'secret.key')), false)
})

test('interactive on a terminal: the passphrase is not echoed and Tab completes a folder path', async t => {
  if (spawnSync('script', ['--version'], { encoding: 'utf8' }).status !== 0) { t.skip('script(1) from util-linux is not installed: no pseudo-terminal to test with'); return }
  const sb = await sandbox(t)
  await fsp.mkdir(join(sb.dir, 'Zwölf Ordner'))
  const cmd = [process.execPath, BIN, 'setup', '--host', '127.0.0.1', '--port', '0', '--no-desktop', '--no-service', '--donate', '1G', '--relay', '0'].map(shellQuote).join(' ')
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...sb.env, TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] })
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let screen = ''
  child.stdout.on('data', (b: Buffer) => { screen += b.toString('utf8') })
  child.stderr.on('data', (b: Buffer) => { screen += b.toString('utf8') })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const waitFor = async (text: string, from: number): Promise<number> => {
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      const at = screen.indexOf(text, from)
      if (at >= 0) return at + text.length
      if (child.exitCode !== null) break
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    throw new Error(`timed out waiting for ${JSON.stringify(text)}; screen: ${JSON.stringify(screen.slice(-800))}`)
  }
  // Type only once each prompt is shown (raw mode is on by then, so the terminal itself echoes nothing).
  let at = await waitFor('Restore from a key backup? [y/N]: ', 0)
  child.stdin.write('n\r')
  at = await waitFor('Passphrase: ', at)
  child.stdin.write(PASSPHRASE + '\r')
  at = await waitFor('Same passphrase again: ', at)
  child.stdin.write(PASSPHRASE + '\r')
  at = await waitFor('empty line: none, only donate space): ', at)
  child.stdin.write(join(sb.dir, 'Zw') + '\t')
  at = await waitFor('Zwölf Ordner/', at)
  child.stdin.write('\r')
  at = await waitFor('empty line: done): ', at)
  child.stdin.write('\r')
  await waitFor('done. Check everything with: dustbox doctor', at)
  child.stdin.end()
  assert.equal(await exited, 0, screen)
  assert.ok(!screen.includes(PASSPHRASE), `the passphrase appeared on the terminal: ${JSON.stringify(screen)}`)
  assert.ok(!screen.includes('staple'), 'not even part of it')
  const s = JSON.parse(await fsp.readFile(join(sb.dbx, 'settings.json'), 'utf8'))
  assert.deepEqual(s.folders, [await fsp.realpath(join(sb.dir, 'Zwölf Ordner'))], 'the Tab-completed folder was chosen')
})

function escape (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** How an argument without special characters appears in the unit and the desktop entry. */
function shellSafe (p: string): string {
  return /^[A-Za-z0-9/_.,:+=@-]+$/.test(p) ? p : `"${p}"`
}
