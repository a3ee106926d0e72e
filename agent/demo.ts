// `dustbox demo` (what `npm start` runs): a whole local swarm on 127.0.0.1 under one temporary
// directory: a DHT bootstrap node and six storage peers (child processes), and this process's own
// agent watching a demo folder of sample files. The user sees the files become .f stubs, one
// opened back byte-exact, and can drop more files in; Ctrl-C stops everything cleanly.

import { promises as fsp } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { Agent } from './agent.js'
import { LocalSwarm, LOCAL_TUNABLES, LOCAL_REDUNDANCY } from './swarm.js'
import { configFromFlags, logEvents } from './start-cmd.js'
import { humanBytes, count } from './format.js'

export const DEMO_PEERS = 6
export const DEMO_TIMEOUT_MS = 120_000

export interface DemoOptions {
  dir?: string
  keep: boolean
  /** Leave after the walk-through instead of running until Ctrl-C. */
  exit: boolean
  peers?: number
  out: (line: string) => void
}

async function walk (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await walk(p))
    else if (e.isFile()) out.push(p)
  }
  return out.sort()
}

async function du (files: string[]): Promise<number> {
  let n = 0
  for (const f of files) n += (await fsp.stat(f)).size
  return n
}

function samples (): Record<string, Uint8Array> {
  return {
    'photos/sunset 🌅.jpg': randomBytes(3 * 1024 * 1024 + 17),
    'photos/Zürich/Großmünster.raw': randomBytes(9 * 1024 * 1024),
    'notes/Ünïcødé/Grüße.txt': Buffer.from('Liebe Grüße aus dem dustbox-Demo!\n'.repeat(2000)),
    'report.md': Buffer.from(Array.from({ length: 60000 }, (_, i) => `| ${i} | row ${i * 7919 % 1000} | dustbox |\n`).join('')),
    'empty.txt': new Uint8Array(0)
  }
}

export async function runDemo (opts: DemoOptions): Promise<void> {
  const { out } = opts
  const base = opts.dir ?? await fsp.mkdtemp(join(tmpdir(), 'dustbox-demo-'))
  const folder = join(base, 'folder')
  const swarm = new LocalSwarm(base)
  let agent: Agent | null = null
  const stop = new AbortController()
  const onSignal = (): void => stop.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const n = opts.peers ?? DEMO_PEERS
    out(`dustbox demo in ${base} (everything on 127.0.0.1)`)
    out(`starting a DHT bootstrap node and ${n} storage peers…`)
    await swarm.startBootstrap()
    await swarm.startPeers(n)
    out(`  bootstrap ${swarm.bootstrap}; peers up: ${swarm.children.filter(c => c.name.startsWith('peer')).map(c => c.proc.pid).join(', ')} (pids)`)

    const data = samples()
    for (const [rel, bytes] of Object.entries(data)) {
      await fsp.mkdir(join(folder, rel, '..'), { recursive: true })
      await fsp.writeFile(join(folder, rel), bytes)
    }
    const before = await walk(folder)
    const beforeBytes = await du(before)
    out(`demo folder ${folder}: ${count(before.length, 'file')}, ${humanBytes(beforeBytes)}`)

    const config = await configFromFlags(join(base, 'owner'), { folder: [folder], host: '127.0.0.1', port: '0', bootstrap: swarm.bootstrap, settle: '1', donate: '1G', redundancy: LOCAL_REDUNDANCY }, { DUSTBOX_TUNABLES: JSON.stringify(LOCAL_TUNABLES) })
    agent = new Agent(config)
    logEvents(agent, line => out('  ' + line))
    const stubbed = new Set<string>()
    const allStubbed = new Promise<void>(resolve => {
      agent!.on('file', e => {
        if (e.state === 'stubbed') stubbed.add(e.path)
        if (stubbed.size >= before.length) resolve()
      })
    })
    await agent.ready()
    out(`owner agent ${agent.engine.keys.ownerId.slice(0, 16)}… watching the folder; files are stubbed once all ${config.k + config.m} shards of every block sit on ${config.k + config.m} distinct peers and a sample was read back`)
    const timeout = new Promise<void>(resolve => setTimeout(resolve, DEMO_TIMEOUT_MS).unref())
    await Promise.race([allStubbed, timeout, new Promise(resolve => stop.signal.addEventListener('abort', resolve, { once: true }))])
    if (stop.signal.aborted) return
    const after = await walk(folder)
    out(`\nafter: ${count(after.length, 'file')} in the folder, ${humanBytes(await du(after))} (was ${humanBytes(beforeBytes)})`)
    for (const f of after) out(`  ${relative(folder, f)}`)
    const photoStub = after.find(f => f.includes('sunset'))
    if (photoStub !== undefined && photoStub.endsWith('.f')) {
      out(`\n$ dustbox open '${relative(folder, photoStub)}' --no-launch`)
      const r = await agent.open(photoStub)
      const same = createHash('sha256').update(await fsp.readFile(r.path)).digest('hex') === createHash('sha256').update(data['photos/sunset 🌅.jpg']).digest('hex')
      out(`restored ${relative(folder, r.path)} from the peers, ${humanBytes(r.size)}, byte-exact: ${same ? 'yes' : 'NO'}`)
    }
    const s = agent.status()
    out(`\nmy shards on peers: ${humanBytes(s.placement.taken)} (${(s.placement.taken / Math.max(1, beforeBytes)).toFixed(2)}x the data, ${config.k}+${config.m} Reed-Solomon)`)
    for (const p of s.peers.filter(p => p.connected)) out(`  peer ${p.short} holds ${humanBytes(p.holdsForMe)}`)
    if (opts.exit) return
    out(`\nthe agent keeps watching ${folder}: drop files in to see them stubbed, or in another terminal:`)
    out(`  dustbox --home ${join(base, 'owner')} tui        (the dashboard)`)
    out(`  dustbox --home ${join(base, 'owner')} status`)
    out(`  dustbox --home ${join(base, 'owner')} open '${folder}/…/FILE.f' --no-launch`)
    out(`Ctrl-C (or dustbox --home ${join(base, 'owner')} stop) stops everything.`)
    await Promise.race([agent.stopped, new Promise(resolve => stop.signal.addEventListener('abort', resolve, { once: true }))])
  } finally {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    out('stopping the agent and the swarm…')
    await agent?.close()
    await swarm.close()
    if (!opts.keep && opts.dir === undefined) await fsp.rm(base, { recursive: true, force: true })
    else out(`kept ${base}`)
  }
}
