// The real dashboard in a real terminal: `dustbox tui` runs in a tmux session (its own server
// socket) attached to a live local swarm (a DHT node, six storage peers, the owner agent; all real
// processes on 127.0.0.1). The test reads the screen: every peer listed, an upload's progress bar
// moving, a stub restored with `o`, and `q` leaving the agent running. Skipped where tmux is absent.

import test from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { testSwarm, stubbedCount } from './helpers/agent-swarm.js'
import { tempDir, writeTree, exists } from './helpers/fixtures.js'
import { BIN, sleep } from '../agent/swarm.js'

const HAVE_TMUX = spawnSync('tmux', ['-V']).status === 0
const SOCKET = `dustbox-test-${process.pid}`

function tmux (...args: string[]): string {
  const r = spawnSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', timeout: 10_000 })
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

function screen (): string {
  return tmux('capture-pane', '-p', '-t', 'dash')
}

async function waitScreen (what: string, pred: (s: string) => boolean, timeoutMs = 60_000): Promise<string> {
  const end = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < end) {
    try { last = screen() } catch (err) { last = String(err) }
    if (pred(last)) return last
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}; screen:\n${last}`)
}

test('dashboard in tmux against a live swarm: peers, a moving progress bar, o restores a stub, q leaves the agent running', { skip: HAVE_TMUX ? false : 'tmux is not installed' }, async t => {
  t.after(() => { spawnSync('tmux', ['-L', SOCKET, 'kill-server'], { timeout: 10_000 }) }) // first: before the swarm stops
  const ts = await testSwarm(t, { peers: 6 })
  const folder = await tempDir(t, 'dustbox-tui-')
  await writeTree(folder, { 'Grüße.txt': 'Liebe Grüße\n'.repeat(5000), 'notes/日本語.md': '# 日本語\n'.repeat(300), 'small.bin': randomBytes(70_000) })
  await ts.startOwner([folder])
  await ts.waitFor('3 files stubbed', s => stubbedCount(s) === 3)
  const st = await ts.status()

  const env: NodeJS.ProcessEnv = { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TERM: 'xterm-256color' }
  delete env.CI // Ink draws only the last frame under CI
  const cmd = [process.execPath, BIN, '--home', ts.ownerHome, 'tui'].map(a => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
  const r = spawnSync('tmux', ['-L', SOCKET, '-u', '-f', '/dev/null', 'new-session', '-d', '-s', 'dash', '-x', '110', '-y', '32', `env -u CI ${cmd}; echo "dashboard exited with $?"; sleep 60`], { env, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)

  // Peers: every one of the six, by its short id, online.
  const peers = st.peers.filter(p => p.connected).map(p => p.short)
  assert.equal(peers.length, 6)
  await waitScreen('six peers listed', s => s.includes('Peers  6 online of 6') && s.includes(st.identity.slice(0, 8)))
  // The pane shows 8 rows in a 32-row terminal: all six.
  await waitScreen('each peer row', s => peers.every(p => s.includes(p)))
  await waitScreen('health', s => /health: 3 files placed · 3 at full redundancy/.test(s))

  // A progress bar that moves: a large upload, sampled as it goes.
  const big = join(folder, 'großes Video.mkv')
  await fsp.writeFile(big + '.part', randomBytes(160 * 1024 * 1024))
  await fsp.rename(big + '.part', big)
  const seen = new Set<string>()
  const end = Date.now() + 120_000
  while (Date.now() < end) {
    const s = screen()
    const m = /↑ großes Video\.mkv +([█░]+) +(\d+)%/.exec(s)
    if (m !== null) seen.add(m[2])
    if (seen.size >= 2 || (await ts.status().then(stubbedCount, () => 0)) === 4) break
    await sleep(100)
  }
  assert.ok(seen.size >= 2, `progress values seen: ${[...seen].join(', ')}`)
  await ts.waitFor('the big file stubbed', s => stubbedCount(s) === 4, 180_000)
  await waitScreen('stubbed in the log', s => /stubbed +großes Video\.mkv/.test(s))

  // Open a stub with `o`: filter the files pane to it, select it, press o.
  assert.ok(await exists(join(folder, 'Grüße.txt.f')))
  tmux('send-keys', '-t', 'dash', '/')
  tmux('send-keys', '-t', 'dash', '-l', 'Grüße')
  tmux('send-keys', '-t', 'dash', 'Enter')
  await waitScreen('filtered to one file', s => /Files {2}1 matching "Grüße"/.test(s))
  tmux('send-keys', '-t', 'dash', 'o')
  await waitScreen('restored in the log', s => /restored +Grüße\.txt/.test(s))
  assert.equal(await fsp.readFile(join(folder, 'Grüße.txt'), 'utf8'), 'Liebe Grüße\n'.repeat(5000))
  assert.equal(await exists(join(folder, 'Grüße.txt.f')), false)

  // q: the dashboard leaves, the agent stays.
  tmux('send-keys', '-t', 'dash', 'q')
  await waitScreen('the dashboard gone', s => s.includes('dashboard exited with 0'), 15_000)
  const after = await ts.status()
  assert.equal(after.identity, st.identity)
})
