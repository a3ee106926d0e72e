// The pure parts of setup: systemd and desktop-entry quoting (round-tripped through reference
// parsers of the two specs, and `systemd-analyze verify` on a unit whose node path has spaces,
// quotes, `$`, `%` and Unicode), the launchd plist, the MIME package, the mimeapps.list merge, path
// completion, mountinfo parsing, answer parsing, and the settings codec with configFromFlags.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import {
  systemdUnitText, systemdQuote, launchdPlistText, desktopEntryText, desktopExecArg, mimePackageText, mergeMimeapps,
  completePath, parseMountinfo, mountFor, parsePortAnswer, parseDonate, sizeText, checkFolder, STUB_MIME, DESKTOP_ID
} from '../setup/index.js'
import { decodeSettings, encodeSettings, loadSettings, saveSettings, SETTINGS_FILE } from '../agent/settings.js'
import { configFromFlags } from '../agent/start-cmd.js'
import { tempDir } from './helpers/fixtures.js'

const WEIRD = '/tmp/dir with space/Grüße "q" $HOME %h\\b 数据'
/** What systemd accepts in an executable path: no quote, no backslash. */
const EXE_DIR = '/tmp/dir with space/Grüße $HOME %h 数据'

/** Reference parser of systemd command lines (systemd.service(5)): quotes, C escapes, %% and $$. */
function parseSystemdExec (line: string): string[] {
  const out: string[] = []
  let i = 0
  while (i < line.length) {
    while (line[i] === ' ') i++
    if (i >= line.length) break
    let word = ''
    if (line[i] === '"') {
      i++
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\') { word += line[i + 1]; i += 2 } else word += line[i++]
      }
      i++
    } else {
      while (i < line.length && line[i] !== ' ') word += line[i++]
    }
    // The executable path is not variable-expanded; arguments turn $$ into $.
    out.push(out.length === 0 ? word.replace(/%%/g, '%') : word.replace(/%%/g, '%').replace(/\$\$/g, '$'))
  }
  return out
}

/** Reference parser of a desktop entry Exec value (Desktop Entry spec 1.5, "The Exec key"). */
function parseDesktopExec (value: string): string[] {
  // 1. string-value escapes of the file format
  const s = value.replace(/\\([\\snrt])/g, (_, c: string) => ({ '\\': '\\', s: ' ', n: '\n', r: '\r', t: '\t' })[c]!)
  const out: string[] = []
  let i = 0
  while (i < s.length) {
    while (s[i] === ' ') i++
    if (i >= s.length) break
    let word = ''
    if (s[i] === '"') {
      i++
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && '"`$\\'.includes(s[i + 1])) { word += s[i + 1]; i += 2 } else word += s[i++]
      }
      i++
    } else {
      while (i < s.length && s[i] !== ' ') word += s[i++]
    }
    out.push(word === '%f' ? word : word.replace(/%%/g, '%'))
  }
  return out
}

test('systemd unit: ExecStart quoting round-trips, no secrets, Restart=on-failure; plain args stay bare', () => {
  assert.equal(systemdQuote('/usr/bin/node'), '/usr/bin/node')
  assert.equal(systemdQuote('--no-tui'), '--no-tui')
  assert.equal(systemdQuote('/a b'), '"/a b"')
  assert.equal(systemdQuote('100%'), '"100%%"')
  assert.equal(systemdQuote('/x/$y'), '"/x/$$y"')
  assert.throws(() => systemdQuote('/a\nb'), /control character/)
  assert.equal(systemdQuote('/x/$y', true), '"/x/$y"', 'the executable path is not variable-expanded')
  for (const bad of ['/a"b/node', "/it's/node", '/a\\b/node']) assert.throws(() => systemdQuote(bad, true), /USAGE: systemd unit: systemd cannot run a program whose path has a quote or a backslash/)
  const spec = { node: EXE_DIR + '/node', bin: WEIRD + '/bin/dustbox.js', home: WEIRD + '/home' }
  const text = systemdUnitText(spec)
  const exec = /^ExecStart=(.*)$/m.exec(text)![1]
  assert.deepEqual(parseSystemdExec(exec), [spec.node, spec.bin, '--home', spec.home, 'start', '--no-tui'])
  assert.match(text, /^Restart=on-failure$/m)
  assert.match(text, /^WantedBy=default\.target$/m)
  assert.doesNotMatch(text, /User=|sudo|secret|Environment=/i)
  assert.equal(parseSystemdExec(/^ExecStart=(.*)$/m.exec(systemdUnitText({ ...spec, home: null }))![1]).includes('--home'), false, 'no --home for the default home')
})

test('systemd unit: systemd-analyze verify accepts it, with paths full of spaces, quotes, $, %, \\ and Unicode', async t => {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
  if (probe.status !== 0) { t.skip('systemd-analyze is not installed'); return }
  const dir = await tempDir(t)
  const exe = join(dir, 'dir with space', 'Grüße $HOME %h 数据')
  const weird = join(dir, 'dir with space', 'Grüße "q" \'s $HOME %h\\b 数据')
  await fsp.mkdir(exe, { recursive: true })
  await fsp.symlink(process.execPath, join(exe, 'node'))
  const unit = join(dir, 'dustbox.service')
  await fsp.writeFile(unit, systemdUnitText({ node: join(exe, 'node'), bin: join(weird, 'dustbox.js'), home: join(weird, 'home') }))
  const r = spawnSync('systemd-analyze', ['--user', 'verify', '--man=false', unit], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, HOME: dir, XDG_RUNTIME_DIR: dir, XDG_CONFIG_HOME: join(dir, 'cfg') }
  })
  if (r.status !== 0 && /Failed to (initialize manager|connect|lookup RuntimeDirectory)/.test(r.stderr)) { t.skip(`systemd-analyze cannot run here: ${r.stderr.split('\n')[0]}`); return }
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stderr.trim(), '', 'no warning: every line parsed, the executable found at its quoted path')
  // The same unit with a node path that does not exist is refused: the path really was parsed.
  await fsp.writeFile(unit, systemdUnitText({ node: join(exe, 'nodeX'), bin: '/x.js', home: null }))
  const bad = spawnSync('systemd-analyze', ['--user', 'verify', '--man=false', unit], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HOME: dir, XDG_RUNTIME_DIR: dir } })
  assert.notEqual(bad.status, 0)
  assert.ok(bad.stderr.includes('nodeX'), bad.stderr)
})

test('launchd plist: XML-escaped program arguments, restart on failure, a log file', () => {
  const text = launchdPlistText({ node: '/usr/local/bin/node', bin: '/Apps/a & b <c>/bin/dustbox.js', home: '/Users/zoë/it\'s "home"' }, '/Users/zoë/Library/Logs/dustbox.log')
  assert.match(text, /<string>\/Apps\/a &amp; b &lt;c&gt;\/bin\/dustbox\.js<\/string>/)
  assert.match(text, /<string>\/Users\/zoë\/it&apos;s &quot;home&quot;<\/string>/)
  assert.match(text, /<key>Label<\/key>\n {2}<string>net\.dustbox\.agent<\/string>/)
  assert.match(text, /<key>KeepAlive<\/key>\n {2}<dict>\n {4}<key>SuccessfulExit<\/key>\n {4}<false\/>/)
  const args = [...text.matchAll(/^ {4}<string>(.*)<\/string>$/gm)].map(m => m[1])
  assert.deepEqual(args, ['/usr/local/bin/node', '/Apps/a &amp; b &lt;c&gt;/bin/dustbox.js', '--home', '/Users/zoë/it&apos;s &quot;home&quot;', 'start', '--no-tui'])
  assert.throws(() => launchdPlistText({ node: '/n', bin: '/b\u0007', home: null }, '/l'), /control character/)
})

test('desktop entry: Exec quoting round-trips per the spec; MimeType, NoDisplay', () => {
  assert.equal(desktopExecArg('/usr/bin/node'), '/usr/bin/node')
  assert.equal(desktopExecArg('/a b'), '"/a b"')
  assert.equal(desktopExecArg('/a\\b'), '"/a\\\\\\\\b"', 'a backslash is escaped for the quotes, then for the string value')
  assert.equal(desktopExecArg('/50%'), '/50%%')
  const spec = { node: WEIRD + '/node', bin: '/opt/düstbox/bin/dustbox.js', home: WEIRD + "/it's `home`" }
  const text = desktopEntryText(spec)
  const exec = /^Exec=(.*)$/m.exec(text)![1]
  assert.deepEqual(parseDesktopExec(exec), [spec.node, spec.bin, '--home', spec.home, 'open', '%f'])
  assert.match(text, /^\[Desktop Entry\]\nType=Application\n/)
  assert.match(text, new RegExp(`^MimeType=${STUB_MIME.replace(/[/.]/g, '\\$&')};$`, 'm'))
  assert.match(text, /^NoDisplay=true$/m)
  assert.match(text, /^Terminal=false$/m)
  assert.deepEqual(parseDesktopExec(/^Exec=(.*)$/m.exec(desktopEntryText({ node: '/usr/bin/node', bin: '/b/dustbox.js', home: null }))![1]), ['/usr/bin/node', '/b/dustbox.js', 'open', '%f'])
})

test('MIME package: the stub type with its glob, the stub magic at offset 0, a text/plain subclass', () => {
  const x = mimePackageText()
  assert.match(x, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n/)
  assert.match(x, /<mime-type type="application\/x-dustbox-stub">/)
  assert.match(x, /<glob pattern="\*\.f"\/>/)
  assert.match(x, /<magic priority="80">\n\s*<match type="string" value="dustbox-stub v" offset="0"\/>/)
  assert.match(x, /<sub-class-of type="text\/plain"\/>/)
})

test('mimeapps.list merge: our default first, other entries and comments kept byte for byte, idempotent', () => {
  const fresh = mergeMimeapps(null)
  assert.equal(fresh, `[Default Applications]\n${STUB_MIME}=${DESKTOP_ID};\n\n[Added Associations]\n${STUB_MIME}=${DESKTOP_ID};\n`)
  assert.equal(mergeMimeapps(fresh), fresh)
  const mine = '# my associations\n[Added Associations]\ntext/plain=gedit.desktop;\n\n[Default Applications]\ntext/html=firefox.desktop;\napplication/x-dustbox-stub=other.desktop;gedit.desktop;\n\n[Removed Associations]\nimage/png=gimp.desktop;'
  const merged = mergeMimeapps(mine)
  assert.equal(merged, '# my associations\n[Added Associations]\ntext/plain=gedit.desktop;\napplication/x-dustbox-stub=dustbox-open.desktop;\n\n[Default Applications]\ntext/html=firefox.desktop;\napplication/x-dustbox-stub=dustbox-open.desktop;other.desktop;gedit.desktop;\n\n[Removed Associations]\nimage/png=gimp.desktop;\n')
  assert.equal(mergeMimeapps(merged), merged)
  // A file that already says so (even without a final newline, as xdg-mime may write it) is left as is.
  const already = `[Default Applications]\n${STUB_MIME}=${DESKTOP_ID}\n[Added Associations]\n${STUB_MIME}=x.desktop;${DESKTOP_ID};`
  assert.equal(mergeMimeapps(already), already)
})

test('folder path completion: directories only, hidden ones on a dot, ~ kept as typed, bounded', async t => {
  const dir = await tempDir(t)
  for (const d of ['Documents', 'Downloads', 'Düsseldorf photos', '.hidden', 'Music']) await fsp.mkdir(join(dir, d))
  await fsp.writeFile(join(dir, 'Dfile.txt'), 'x')
  const [hits] = completePath(join(dir, 'D'), '/nowhere')
  assert.deepEqual(hits, ['Documents/', 'Downloads/', 'Düsseldorf photos/'].map(n => join(dir, n)))
  assert.deepEqual(completePath(join(dir, 'Mu'), '/nowhere')[0], [join(dir, 'Music/')])
  assert.deepEqual(completePath(join(dir, '.h'), '/nowhere')[0], [join(dir, '.hidden/')])
  assert.equal(completePath(dir + '/', '/nowhere')[0].length, 4, 'hidden entries only when asked for')
  assert.deepEqual(completePath('~/Do', dir)[0], ['~/Documents/', '~/Downloads/'])
  assert.deepEqual(completePath('/no/such/dir/x', dir)[0], [])
  assert.deepEqual(completePath(join(dir, 'D'), '/nowhere', true)[0], ['Dfile.txt', 'Documents/', 'Downloads/', 'Düsseldorf photos/'].map(n => join(dir, n)), 'files too when a file is asked for')
})

test('mountinfo: the mount holding a path, octal escapes, network file systems', () => {
  const info = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    '40 22 0:35 / /home rw shared:2 - ext4 /dev/sda2 rw',
    '41 40 0:50 / /home/me/nas\\040share rw shared:3 - nfs4 server:/export rw',
    '42 40 0:51 / /home/me/ssh rw - fuse.sshfs me@host:/ rw'
  ].join('\n')
  assert.equal(parseMountinfo(info).length, 4)
  assert.equal(mountFor('/home/me/nas share/Photos', info)?.fstype, 'nfs4')
  assert.equal(mountFor('/home/me/nas share/Photos', info)?.mountPoint, '/home/me/nas share')
  assert.equal(mountFor('/home/me/nas', info)?.fstype, 'ext4')
  assert.equal(mountFor('/home/me/ssh/x', info)?.fstype, 'fuse.sshfs')
  assert.equal(mountFor('/etc', info)?.mountPoint, '/')
})

test('checkFolder warns on network mounts and the whole home, refuses the state dir and overlaps', async t => {
  const dir = await tempDir(t)
  const nas = join(dir, 'nas')
  const home = join(dir, 'me')
  const state = join(home, '.local', 'state', 'dustbox')
  await fsp.mkdir(nas)
  await fsp.mkdir(state, { recursive: true })
  const mountinfo = `22 1 8:1 / / rw - ext4 /dev/sda1 rw\n41 22 0:50 / ${nas.replace(/ /g, '\\040')} rw - cifs //server/share rw`
  const ctx = { stateDir: state, userHome: home, chosen: [], configured: [], mountinfo }
  const n = await checkFolder(nas, ctx)
  assert.equal(n.warnings.length, 1)
  assert.match(n.warnings[0], /network file system \(cifs/)
  const whole = await checkFolder(home, ctx)
  assert.match(whole.warnings.join('\n'), /is your whole home folder/, 'the home folder holds the default state dir: allowed, with a warning')
  const holder = await checkFolder(dir, ctx)
  assert.match(holder.warnings.join('\n'), /contains the dustbox state directory/)
  await assert.rejects(checkFolder(state, ctx), /FOLDER_INVALID: folder ".*dustbox" is the dustbox state directory/)
  const other = { ...ctx, stateDir: join(dir, 'elsewhere') }
  const h = await checkFolder(home, other)
  assert.match(h.warnings[0], /is your whole home folder/)
  await assert.rejects(checkFolder(join(home, '.local'), { ...other, chosen: [await fsp.realpath(home)] }), /overlaps/)
  assert.deepEqual((await checkFolder(nas, { ...other, configured: [await fsp.realpath(nas)] })).notes.length, 1)
})

test('answers: ports and donated space are bounded with clear USAGE errors', () => {
  assert.equal(parsePortAnswer('45310'), 45310)
  assert.equal(parsePortAnswer('0'), 0)
  for (const bad of ['80', '65535', '70000', 'abc', '-1', '']) assert.throws(() => parsePortAnswer(bad), /USAGE: --port .*(not a port number|choose 1024-65534)/, bad)
  assert.equal(parseDonate('0'), 0)
  assert.equal(parseDonate('10G'), 10 * 2 ** 30)
  assert.throws(() => parseDonate('512M'), /USAGE: --donate "512M": donate 0 \(use without donating\) or at least 1\.0 GiB/)
  assert.throws(() => parseDonate('lots'), /USAGE: --donate "lots" is not a size/)
  assert.equal(sizeText(10 * 2 ** 30), '10G')
  assert.equal(sizeText(1536 * 2 ** 20), '1536M')
})

test('settings.json: strict codec with errors naming the file and field; start uses it, flags override', async t => {
  const p = '/h/settings.json'
  assert.deepEqual(decodeSettings('{"version":1,"donate":"2G","port":4000,"mapPort":false}', p), { version: 1, donate: 2 * 2 ** 30, port: 4000, mapPort: false })
  assert.deepEqual(decodeSettings('{"version":1,"relay":"2M"}', p), { version: 1, relay: 2 * 2 ** 20 })
  assert.deepEqual(decodeSettings('{"version":1,"relay":0}', p), { version: 1, relay: 0 })
  const bad: Array<[string, RegExp]> = [
    ['nope', /CONFIG_INVALID: "\/h\/settings\.json": is not valid JSON/],
    ['[]', /must hold a JSON object/],
    ['{"version":2}', /field "version" must be 1 \(found 2\)/],
    ['{"version":1,"prot":1}', /field "prot" is unknown/],
    ['{"version":1,"port":70000}', /field "port" must be an integer 0-65535/],
    ['{"version":1,"folders":["rel/path"]}', /field "folders\[0\]" must be an absolute path/],
    ['{"version":1,"host":"example.com"}', /field "host" "example\.com" is not an IPv4 address/],
    ['{"version":1,"donate":-5}', /field "donate" must be a number of bytes/],
    ['{"version":1,"bootstrap":"nohost"}', /field "bootstrap"/],
    ['{"version":1,"mapPort":"yes"}', /field "mapPort" must be true or false/],
    ['{"version":1,"relay":"fast"}', /field "relay"/],
    ['{"version":1,"relay":-1}', /field "relay"/]
  ]
  for (const [text, re] of bad) assert.throws(() => decodeSettings(text, p), re, text)
  const s = { version: 1 as const, keyBackup: '/k', mapPort: true, folders: ['/a'], port: 5 }
  assert.equal(Buffer.from(encodeSettings(s)).toString(), '{\n  "version": 1,\n  "folders": [\n    "/a"\n  ],\n  "port": 5,\n  "mapPort": true,\n  "keyBackup": "/k"\n}\n', 'fixed field order')

  const dir = await tempDir(t)
  const home = join(dir, 'home')
  const folder = join(dir, 'Fotos ü')
  const other = join(dir, 'other')
  await fsp.mkdir(folder)
  await fsp.mkdir(other)
  assert.equal(await loadSettings(home), null)
  const none = await configFromFlags(home, {}, {})
  assert.deepEqual([none.folders, none.port, none.dhtPort, none.host, none.donate, none.mapPort], [[], 0, 0, '0.0.0.0', 10 * 2 ** 30, false], 'no settings: the built-in defaults')
  assert.equal(await saveSettings(home, { version: 1, folders: [folder], host: '127.0.0.1', port: 45999, donate: 3 * 2 ** 30, mapPort: true, bootstrap: 'none' }), 'created')
  assert.equal(await saveSettings(home, { version: 1, folders: [folder], host: '127.0.0.1', port: 45999, donate: 3 * 2 ** 30, mapPort: true, bootstrap: 'none' }), 'unchanged')
  const c = await configFromFlags(home, {}, {})
  assert.deepEqual([c.folders, c.host, c.port, c.dhtPort, c.donate, c.bootstrap, c.mapPort], [[await fsp.realpath(folder)], '127.0.0.1', 45999, 46000, 3 * 2 ** 30, false, true])
  const f = await configFromFlags(home, { folder: [other], port: '0', donate: '1G', host: '127.0.0.2', bootstrap: '127.0.0.1:9' }, {})
  assert.deepEqual([f.folders, f.host, f.port, f.dhtPort, f.donate, f.bootstrap], [[await fsp.realpath(other)], '127.0.0.2', 0, 0, 2 ** 30, ['127.0.0.1:9']], 'flags override the settings')
  await fsp.rm(folder, { recursive: true })
  await assert.rejects(configFromFlags(home, {}, {}), /CONFIG_INVALID: ".*settings\.json": folder ".*Fotos ü": does not exist \(fix it with "dustbox setup" or override it with --folder\)/)
  await fsp.writeFile(join(home, SETTINGS_FILE), '{"version":1,"port":"x"}')
  await assert.rejects(configFromFlags(home, {}, {}), /CONFIG_INVALID: ".*settings\.json": field "port" must be an integer/)
  await fsp.writeFile(join(home, SETTINGS_FILE), ' '.repeat(70_000))
  await assert.rejects(loadSettings(home), /is larger than 65536 bytes/)
})
