#!/usr/bin/env node
// The package's install script: builds agent/native (the inotify addon behind agent/open-watch.ts)
// with node-gyp. It never fails the install: on any trouble it prints a warning, writes the reason to
// agent/native/build/build-native.log (OpenWatcher quotes it in its `reason`) and exits 0; the agent
// then falls back to inotifywait, or to no open-watching (double-click and `dustbox open` still work).
// DUSTBOX_SKIP_NATIVE=1 skips the build. Runs on Linux only (inotify is Linux's).

import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BUILD_TIMEOUT_MS = 5 * 60_000
const LOAD_TIMEOUT_MS = 30_000
const here = dirname(fileURLToPath(import.meta.url))
const nativeDir = join(here, '..', 'agent', 'native')
const buildDir = join(nativeDir, 'build')
const addon = join(buildDir, 'Release', 'dustbox_inotify.node')
const logFile = join(buildDir, 'build-native.log')

function say (text) { process.stderr.write(`dustbox: ${text}\n`) }

function giveUp (why, output = '') {
  const tail = output.trim().split('\n').slice(-15).join('\n')
  if (tail !== '') process.stderr.write(`${tail}\n`)
  say(`WARNING: the inotify addon was not built: ${why}`)
  say('the agent will use inotifywait (inotify-tools) if installed; otherwise opening a .f stub from another')
  say('program will not restore it (double-click and `dustbox open` still do). Retry: node scripts/build-native.js')
  try {
    mkdirSync(buildDir, { recursive: true })
    writeFileSync(logFile, `${why}\n\n${output.slice(-20_000)}`)
  } catch {}
  process.exit(0)
}

/** node-gyp: npm's own (set for lifecycle scripts), a local one, the one bundled with npm, or PATH. */
function findNodeGyp () {
  const candidates = []
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp)
  try { candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js')) } catch {}
  const prefix = dirname(dirname(process.execPath))
  candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'))
  candidates.push(join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'))
  for (const c of candidates) if (existsSync(c)) return { cmd: process.execPath, args: [c] }
  const r = spawnSync('node-gyp', ['--version'], { stdio: 'ignore', timeout: LOAD_TIMEOUT_MS })
  return r.status === 0 ? { cmd: 'node-gyp', args: [] } : null
}

/**
 * Headers: npm passes its `nodedir` config as npm_config_nodedir. Run by hand, without it node-gyp
 * would download headers; when the running node's own headers are installed, use those instead.
 */
function nodedirArgs () {
  if (process.env.npm_config_nodedir) return []
  const prefixes = [process.config?.variables?.node_prefix, dirname(dirname(process.execPath))]
  for (const prefix of prefixes) {
    if (typeof prefix !== 'string' || prefix === '') continue
    const inc = join(prefix, 'include', 'node')
    if (!existsSync(join(inc, 'node_api.h')) || !existsSync(join(inc, 'common.gypi'))) continue
    if (headerMajor(join(inc, 'node_version.h')) !== process.versions.node.split('.')[0]) continue
    return [`--nodedir=${prefix}`]
  }
  return []
}

function headerMajor (file) {
  try { return /#define NODE_MAJOR_VERSION (\d+)/.exec(readFileSync(file, 'utf8'))?.[1] ?? null } catch { return null }
}

function main () {
  if (process.env.DUSTBOX_SKIP_NATIVE === '1') { say('DUSTBOX_SKIP_NATIVE=1: inotify addon not built'); return }
  if (process.platform !== 'linux') return  // nothing to build: open-watching is Linux only
  const gyp = findNodeGyp()
  if (gyp === null) return giveUp('node-gyp was not found (it comes with npm)')
  rmSync(logFile, { force: true })
  const r = spawnSync(gyp.cmd, [...gyp.args, 'rebuild', ...nodedirArgs()], {
    cwd: nativeDir,
    encoding: 'utf8',
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
    env: process.env
  })
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`
  if (r.error !== undefined) return giveUp(`node-gyp could not run (${r.error.message})`, output)
  if (r.status !== 0) {
    const hint = /python/i.test(output) && /not found|could not find/i.test(output) ? ' (is python3 installed?)'
      : /make: not found|cc: not found|gcc: not found|No such file or directory.*(cc|make)/i.test(output) ? ' (are make and a C compiler installed?)'
        : /node_api\.h/.test(output) ? ' (Node.js headers missing: set npm nodedir or allow node-gyp to download them)' : ''
    return giveUp(`node-gyp exited with ${r.status ?? r.signal}${hint}`, output)
  }
  if (!existsSync(addon)) return giveUp(`the build finished without ${addon}`, output)
  // prove it loads in a fresh process (a crash here must not take the install down)
  const probe = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(addon)}); if (typeof m.Inotify !== 'function') process.exit(3); new m.Inotify(() => {}).close()`], { encoding: 'utf8', timeout: LOAD_TIMEOUT_MS })
  if (probe.status !== 0) return giveUp(`the built addon does not load (${(probe.stderr ?? '').trim().split('\n')[0] || `exit ${probe.status ?? probe.signal}`})`, output + (probe.stderr ?? ''))
  say('inotify addon built')
}

try {
  main()
} catch (err) {
  giveUp(`unexpected error (${err instanceof Error ? err.message : String(err)})`)
}
