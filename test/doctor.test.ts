// `dustbox doctor` (real child processes, a temporary HOME): one line per check with a fix, the exit
// code, the --json shape; with no agent (the agent check fails with its hint, ports are bind-checked),
// and against a real agent started from setup's settings (agent, ports and DHT ok; setup re-run while
// it runs does not call its own ports "in use"); the inotify limit and the sysctl it suggests.

import test from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { spawn } from 'node:child_process'
import net from 'node:net'
import { join } from 'node:path'
import { Doctor, countDirectories, suggestedWatches, sealKeyBackup, passphraseBytes, type DoctorReport } from '../setup/index.js'
import { LocalSwarm, LOCAL_TUNABLES, agentStatus, sleep } from '../agent/swarm.js'
import type { AgentStatus } from '../agent/status.js'
import { sandbox, freePort, BIN } from './helpers/setup-sandbox.js'
import { reachabilityCheck } from '../setup/doctor-reach.js'

const IDS = ['identity', 'settings', 'key-backup', 'service', 'agent', 'ports', 'dht', 'reachability', 'inotify', 'space']

function lineOf (out: string, id: string): string {
  const l = out.split('\n').find(x => new RegExp(`^\\w+ +${id} `).test(x))
  assert.ok(l !== undefined, `no line for ${id} in:\n${out}`)
  return l
}

test('doctor with no agent: one line per check with a fix, the agent check fails, --json shape', async t => {
  const sb = await sandbox(t)
  // Nothing set up yet.
  const empty = sb.run(['doctor'])
  assert.equal(empty.code, 1)
  assert.match(lineOf(empty.out, 'identity'), /^fail {2}identity +KEY_MISSING: no identity in .*\(fix: dustbox setup \(creates one, or restores yours with --import-backup FILE\)\)$/)
  assert.match(lineOf(empty.out, 'settings'), /^warn {2}settings +no .*settings\.json: dustbox start runs on its defaults and flags {2}\(fix: dustbox setup\)$/)
  assert.match(lineOf(empty.out, 'key-backup'), /^warn {2}key-backup +no key backup at .*: if this computer is lost, your data is gone/)
  assert.match(lineOf(empty.out, 'service'), /^warn {2}service +no systemd user unit .*dustbox\.service: the agent does not start at login {2}\(fix: dustbox setup\)$/)

  const folder = join(sb.dir, 'Bilder')
  await fsp.mkdir(join(folder, 'a', 'b'), { recursive: true })
  const port = await freePort()
  const s = sb.run(['setup', '--yes', '--folder', folder, '--port', String(port), '--host', '127.0.0.1', '--donate', '1G', '--passphrase-file', sb.passFile])
  assert.equal(s.code, 0, s.err)
  const r = sb.run(['doctor'])
  assert.equal(r.code, 1, 'a failed check makes the exit code 1')
  assert.equal(r.err, '')
  const lines = r.out.trim().split('\n')
  assert.equal(lines.length, IDS.length + 1)
  assert.match(lineOf(r.out, 'identity'), /^ok {4}identity +identity [0-9a-f]{16}… in /)
  assert.match(lineOf(r.out, 'key-backup'), /^ok {4}key-backup +.*key-backup\.dustkey \(Argon2id 1 pass, 64\.0 KiB, this identity\); keep a copy away from this computer$/)
  assert.match(lineOf(r.out, 'service'), /^warn {2}service +.*dustbox\.service installed; its state is unknown \(no systemd user manager answers\) {2}\(fix: systemctl --user enable --now dustbox\.service in your desktop session\)$/)
  assert.match(lineOf(r.out, 'agent'), /^fail {2}agent +no agent answers on .* {2}\(fix: systemctl --user start dustbox\.service \(or run: dustbox start\)\)$/)
  assert.match(lineOf(r.out, 'ports'), new RegExp(`^ok {4}ports +port ${port} \\(tcp, udp\\) and DHT udp ${port + 1} are free for the agent$`))
  assert.match(lineOf(r.out, 'dht'), /^skip {2}dht +not checked: the agent is not running$/)
  assert.match(lineOf(r.out, 'reachability'), /^skip {2}reachability +not checked: the agent is not running$/)
  assert.match(lineOf(r.out, 'inotify'), /^ok {4}inotify +the folders hold 3 directories; inotify watch limit \d+$/)
  assert.match(lineOf(r.out, 'space'), /^ok {4}space +home .* free \(donating 1\.0 GiB, 0 B of it in use\); .*Bilder .* free$/)
  assert.equal(lines[lines.length - 1], '1 failed, 1 warning(s)')

  const j = sb.run(['doctor', '--json'])
  assert.equal(j.code, 1)
  const report = JSON.parse(j.out) as DoctorReport
  assert.equal(report.ok, false)
  assert.equal(report.home, sb.dbx)
  assert.deepEqual(report.checks.map(c => c.id), IDS)
  for (const c of report.checks) {
    assert.ok(['ok', 'warn', 'fail', 'skip'].includes(c.status), c.id)
    assert.equal(typeof c.message, 'string')
    if (c.status === 'warn' || c.status === 'fail') assert.equal(typeof c.hint, 'string', `${c.id} has a fix`)
  }

  // The port taken by another program; a key backup of another identity.
  const tcp = net.createServer()
  await new Promise<void>(resolve => tcp.listen(port, '127.0.0.1', resolve))
  const busy = sb.run(['doctor'])
  tcp.close()
  assert.match(lineOf(busy.out, 'ports'), new RegExp(`^fail {2}ports +port ${port}/tcp \\(TCP peer connections\\) is in use by another program on 127\\.0\\.0\\.1.*\\(fix: stop the program holding it, or choose another port: dustbox setup --port N\\)$`))
  const backup = join(sb.dbx, 'key-backup.dustkey')
  await fsp.writeFile(backup, await sealKeyBackup(new Uint8Array(32).fill(9), passphraseBytes('another identity passphrase', 'p'), { opslimit: 1, memlimitKib: 8 }))
  assert.match(lineOf(sb.run(['doctor']).out, 'key-backup'), /^fail {2}key-backup +.*key-backup\.dustkey is the backup of another identity/)
  await fsp.writeFile(backup, 'garbage')
  assert.match(lineOf(sb.run(['doctor']).out, 'key-backup'), /^fail {2}key-backup +BACKUP_INVALID: ".*key-backup\.dustkey" is not a dustbox key backup/)
})

test('doctor against a running agent started from setup\'s settings: agent, ports and DHT ok', async t => {
  const sb = await sandbox(t)
  const swarm = new LocalSwarm(join(sb.dir, 'swarm'))
  sb.defer(async () => await swarm.close())
  const bootstrap = await swarm.startBootstrap()
  const folder = join(sb.dir, 'Documents ü')
  await fsp.mkdir(folder)
  const port = await freePort()
  const setupArgs = ['setup', '--yes', '--folder', folder, '--port', String(port), '--host', '127.0.0.1', '--passphrase-file', sb.passFile]
  assert.equal(sb.run(setupArgs).code, 0)

  // `dustbox start` with no folder, host or port flag: all of them come from settings.json.
  const agent = spawn(process.execPath, [BIN, 'start', '--no-tui', '--bootstrap', bootstrap], {
    env: { ...sb.env, DUSTBOX_EXIT_WITH_PARENT: '1', DUSTBOX_TUNABLES: JSON.stringify(LOCAL_TUNABLES) },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  const log: string[] = []
  agent.stdout.on('data', (b: Buffer) => log.push(b.toString()))
  agent.stderr.on('data', (b: Buffer) => log.push(b.toString()))
  const exited = new Promise<void>(resolve => agent.once('exit', () => resolve()))
  sb.defer(async () => {
    if (agent.exitCode === null && agent.signalCode === null) {
      agent.kill('SIGTERM')
      const timer = setTimeout(() => agent.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  })
  let status: AgentStatus | null = null
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (agent.exitCode !== null) break
    try { status = await agentStatus(sb.dbx) } catch {}
    if (status !== null && status.dht.nodes > 0) break
    await sleep(200)
  }
  assert.ok(status !== null, `the agent did not answer: ${log.join('')}`)
  assert.equal(status.port, port, 'the agent took its port from settings.json')
  assert.equal(status.host, '127.0.0.1')
  assert.deepEqual(status.folders.map(f => f.path), [await fsp.realpath(folder)])
  assert.ok(status.dht.nodes > 0, 'the DHT connected to the bootstrap node')

  const r = sb.run(['doctor'])
  assert.equal(r.code, 0, r.out + r.err)
  assert.match(lineOf(r.out, 'agent'), /^ok {4}agent +agent running on .*, up \d+ s$/)
  assert.match(lineOf(r.out, 'ports'), new RegExp(`^ok {4}ports +port ${port}/tcp accepts connections on 127\\.0\\.0\\.1; uTP udp ${port} and DHT udp ${port + 1} held by the agent`))
  assert.match(lineOf(r.out, 'dht'), /^ok {4}dht +DHT connected: \d+ node\(s\) known, udp \d+$/)
  // No storage peer here, so no peer has reported where it sees the node; setup turned mapping on,
  // and no router answers on this machine's network (or one does: either way the line says so).
  assert.match(lineOf(r.out, 'reachability'), /^(warn|ok) +reachability +(not known yet: no peer has said where it sees this node|reachable from the internet)/)
  const report = JSON.parse(sb.run(['doctor', '--json']).out) as DoctorReport
  assert.equal(report.ok, true)
  assert.deepEqual(report.checks.filter(c => c.status === 'fail'), [])

  // Setup again while the agent runs: its own ports are not "in use"; nothing changes.
  const again = sb.run(setupArgs)
  assert.equal(again.code, 0, again.err)
  assert.match(again.out, /nothing changed \(unchanged\)/)
})

test('inotify: a watch limit below the folders\' directories fails with the exact sysctl to run; the walk is bounded', async t => {
  const sb = await sandbox(t)
  const folder = join(sb.dir, 'Tief')
  for (const d of ['a/b/c', 'd', 'e']) await fsp.mkdir(join(folder, d), { recursive: true })
  assert.equal(sb.run(['setup', '--yes', '--folder', folder, '--port', '0', '--no-service', '--no-desktop', '--passphrase-file', sb.passFile]).code, 0)
  const check = async (limit: number): Promise<DoctorReport['checks'][number]> =>
    (await new Doctor({ home: sb.dbx, env: sb.env, inotifyLimit: limit }).run()).checks.find(c => c.id === 'inotify')!
  const fail = await check(4)
  assert.equal(fail.status, 'fail')
  assert.equal(fail.message, 'the folders hold 6 directories, more than the inotify watch limit 4: changes in some are not noticed')
  assert.equal(fail.hint, 'sudo sysctl fs.inotify.max_user_watches=524288, and to keep it after a reboot: echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-dustbox-inotify.conf')
  assert.equal((await check(10)).status, 'warn')
  assert.equal((await check(100)).status, 'ok')
  assert.equal(suggestedWatches(1_000_000), 2_097_152)
  assert.deepEqual(await countDirectories([folder], 3), { dirs: 3, complete: false })
  assert.deepEqual(await countDirectories([folder]), { dirs: 6, complete: true })
})

test('reachability: mapped, open, endpoint-independent are ok; symmetric, unknown behaviour, nothing known warn with the fix', () => {
  const base = { port: 45310, peers: [] as unknown[] }
  const st = (x: Record<string, unknown>): AgentStatus => ({ ...base, ...x }) as unknown as AgentStatus
  const seen = (natType: string, observers = 5, hosts = 4, ports = 1): Record<string, unknown> => ({ natType, publicAddress: { host: '203.0.113.7', port: 51000 }, observers, observerHosts: hosts, mappedPorts: ports })
  assert.deepEqual(reachabilityCheck(null), { id: 'reachability', status: 'skip', message: 'not checked: the agent is not running' })

  const mapped = reachabilityCheck(st({ reachability: seen('symmetric'), portMapping: { state: 'mapped', method: 'upnp', externalHost: '198.51.100.4', externalPort: 45310, expiresAt: Date.now() + 3_600_000, renewals: 2 } }))
  assert.equal(mapped.status, 'ok')
  assert.match(mapped.message, /^reachable from the internet: the router forwards 198\.51\.100\.4:45310 to this node \(mapped by UPnP-IGD at 198\.51\.100\.4:45310, renewed 2 times, lease 60 min left\)$/)

  const open = reachabilityCheck(st({ reachability: seen('open'), portMapping: { state: 'off' } }))
  assert.deepEqual([open.status, open.message], ['ok', 'reachable directly, seen at 203.0.113.7:51000 by 5 peer(s) on 4 host(s)'])

  const eim = reachabilityCheck(st({ reachability: seen('endpoint-independent'), peers: [{ connected: true, path: 'punched' }, { connected: true, path: 'direct' }, { connected: false, path: 'relayed' }] }))
  assert.equal(eim.status, 'ok')
  assert.match(eim.message, /hole punching; of 2 connected peers, 1 through punched holes and 0 through relays$/)

  const sym = reachabilityCheck(st({ reachability: seen('symmetric', 3, 3, 3), portMapping: { state: 'failed', error: 'UPnP map udp 192.168.1.5:45310 at 192.168.1.1:5000: UPnP error 718 (ConflictInMappingEntry)' } }))
  assert.equal(sym.status, 'warn')
  assert.match(sym.message, /^behind a symmetric NAT \(3 ports for 3 hosts\).*only through relays; port mapping FAILED: UPnP map .*error 718/)
  assert.match(sym.hint ?? '', /^turn on UPnP, NAT-PMP or PCP in the router, or forward port 45310 \(udp and tcp\)/)

  const nat = reachabilityCheck(st({ reachability: seen('nat', 1, 1), portMapping: { state: 'off' } }))
  assert.equal(nat.status, 'warn')
  assert.match(nat.hint ?? '', /dustbox setup --map-port/)
  const none = reachabilityCheck(st({ reachability: { natType: 'unknown', publicAddress: null, observers: 0, observerHosts: 0, mappedPorts: 0 } }))
  assert.equal(none.status, 'warn')
  assert.match(none.message, /^not known yet/)
})
