// One node of the reach bench (bench/reach.ts), in its own process inside a network namespace of the
// NAT lab (`ip netns exec NS node dist/bench/reach-node.js --name N --host IP [--store DIR]
// [--relay off|uncapped|default]`). It starts a NetNode (uTP only), prints `{"ready":...}` on stdout,
// then takes one JSON command per line on stdin and answers each with one JSON line `{"id":..,
// "ok":true,...}` or `{"id":..,"ok":false,"error":".."}`: connect (direct), punch (introduction +
// hole punching through a connected third node), relay (a circuit through a connected relay), close,
// waitGone, put / get (timed, several in flight), stats (CPU, relay counters, peak RSS), exit.
// Progress and the node's warnings go to stderr. The process ends when stdin closes, on `exit`, and
// in any case after --max-s seconds.

import { randomFillSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import sodium from 'sodium-native'
import { NetNode, shardIdOf, type Peer } from '../net/index.js'

const argv = process.argv.slice(2)
function arg (name: string, def: string): string {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def
}
const NAME = arg('name', 'node')
const HOST = arg('host', '0.0.0.0')
const STORE = arg('store', '')
const RELAY = arg('relay', 'off') as 'off' | 'uncapped' | 'default'
const MAX_S = Number(arg('max-s', '300'))
const REQUEST_TIMEOUT_MS = 120_000

setTimeout(() => { process.stderr.write(`reach-node ${NAME}: still running after ${MAX_S} s, exiting\n`); process.exit(3) }, MAX_S * 1000).unref()

const out = (m: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(m) + '\n') }
const log = (s: string): void => { process.stderr.write(`# ${NAME}: ${s}\n`) }

function identity (): { publicKey: Buffer, secretKey: Buffer } {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  return { publicKey, secretKey }
}

function procStatus (field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))
    return m === null ? null : Number(m[1]) * 1024
  } catch { return null }
}

function sysctl (name: string): number | null {
  try { return Number(readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim()) } catch { return null }
}

const cpuUs = (): number => { const c = process.cpuUsage(); return c.user + c.system }

const node = new NetNode({
  identity: identity(),
  host: HOST,
  transports: ['utp'],
  stateDir: null,
  store: STORE === '' ? null : { dir: STORE, donatedBytes: 4 * 1024 ** 3, reserveDiskBytes: 0 },
  banMs: 0,
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
  reach: {
    relay: RELAY === 'off' ? { enabled: false } : RELAY === 'uncapped' ? { enabled: true, rateBytes: 1e12 } : { enabled: true },
    // Measured here, not raced by the node on its own: no automatic upgrade of relayed connections.
    upgradeIntervalMs: 3_600_000
  }
})
const warnings: string[] = []
node.on('warning', w => {
  warnings.push(w.error.message)
  if (warnings.length <= 20) log(`warning: ${w.error.message}`)
})

/** The shards this node last put to each peer (key hex → shards), for `get`. */
const sent = new Map<string, Buffer[]>()

function peerOf (keyHex: string): Peer {
  const p = node.peer(Buffer.from(keyHex, 'hex'))
  if (p === undefined || !p.isOpen) throw new Error(`not connected to ${keyHex.slice(0, 8)}`)
  return p
}

async function waitUntil (what: string, cond: () => boolean, ms: number): Promise<number> {
  const t0 = performance.now()
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  return performance.now() - t0
}

/** `count` distinct random shards of `bytes` each (a tag and index in the first bytes). */
function makeShards (count: number, bytes: number, tag: number): Buffer[] {
  const base = randomFillSync(Buffer.allocUnsafe(bytes))
  return Array.from({ length: count }, (_, i) => {
    const d = Buffer.from(base)
    d.writeUInt32BE(tag, 0)
    d.writeUInt32BE(i, 4)
    return d
  })
}

/** Run `tasks` with at most `parallel` at once. */
async function pool (n: number, parallel: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, async () => {
    while (next < n) { const i = next++; await task(i) }
  }))
}

type Cmd = { id: number, cmd: string } & Record<string, any>

async function run (c: Cmd): Promise<Record<string, unknown>> {
  switch (c.cmd) {
    case 'connect': {
      const t0 = performance.now()
      const p = await node.connect({ host: c.host, port: c.port }, { expect: Buffer.from(c.key, 'hex'), transports: ['utp'], signal: AbortSignal.timeout(20_000) })
      return { ms: performance.now() - t0, path: p.path, transport: p.transport }
    }
    case 'punch': {
      const t0 = performance.now()
      const p = await node.reach.connectIndirect({ key: Buffer.from(c.key, 'hex'), host: c.host }, AbortSignal.timeout(20_000))
      return { ms: performance.now() - t0, path: p.path, transport: p.transport }
    }
    case 'relay': {
      const t0 = performance.now()
      const p = await node.reach.relayTo(Buffer.from(c.key, 'hex'), AbortSignal.timeout(20_000))
      return { ms: performance.now() - t0, path: p.path, transport: p.transport }
    }
    case 'close': {
      node.peer(Buffer.from(c.key, 'hex'))?.close()
      return {}
    }
    case 'waitGone': {
      const key = Buffer.from(c.key, 'hex')
      return { ms: await waitUntil(`${c.key.slice(0, 8)} to go`, () => node.peer(key) === undefined, c.timeoutMs ?? 10_000) }
    }
    case 'waitPeer': {
      const key = Buffer.from(c.key, 'hex')
      await waitUntil(`${c.key.slice(0, 8)} to connect`, () => node.peer(key)?.isOpen === true && (c.path === undefined || node.peer(key)?.path === c.path), c.timeoutMs ?? 10_000)
      return { path: node.peer(key)!.path }
    }
    case 'put': {
      const p = peerOf(c.key)
      const shards = makeShards(c.count, c.bytes, c.tag)
      const ids = shards.map(s => shardIdOf(s)) // the owner's work, before the clock starts
      const cpu0 = cpuUs()
      const t0 = performance.now()
      await pool(shards.length, c.parallel, async i => {
        const r = await p.put(ids[i], shards[i], { timeoutMs: REQUEST_TIMEOUT_MS })
        if (!r.stored) throw new Error(`shard ${i} not stored`)
      })
      const ms = performance.now() - t0
      sent.set(c.key, shards)
      return { ms, bytes: shards.length * c.bytes, cpuUs: cpuUs() - cpu0, path: p.path }
    }
    case 'get': {
      const p = peerOf(c.key)
      const shards = sent.get(c.key) ?? []
      const ids = shards.map(s => shardIdOf(s))
      const cpu0 = cpuUs()
      const t0 = performance.now()
      await pool(shards.length, c.parallel, async i => {
        const d = await p.get(ids[i], { timeoutMs: REQUEST_TIMEOUT_MS })
        if (!d.equals(shards[i])) throw new Error(`shard ${i} came back different`)
      })
      sent.delete(c.key) // each phase sends new shards: do not carry these into the next one's RSS
      return { ms: performance.now() - t0, bytes: shards.reduce((n, s) => n + s.length, 0), cpuUs: cpuUs() - cpu0 }
    }
    case 'stats':
      return { cpuUs: cpuUs(), relay: node.relayStats(), rss: procStatus('VmRSS'), hwm: procStatus('VmHWM'), warnings: warnings.length, peers: node.peers().map(p => ({ key: p.key.toString('hex'), path: p.path })) }
    case 'exit':
      setTimeout(() => { void node.close().finally(() => process.exit(0)) }, 10)
      setTimeout(() => process.exit(0), 3000).unref()
      return {}
    default:
      throw new Error(`unknown command ${String(c.cmd)}`)
  }
}

async function main (): Promise<void> {
  await node.ready()
  out({ ready: true, name: NAME, id: node.id, key: node.key.toString('hex'), port: node.port, rmemMax: sysctl('net.core.rmem_max'), wmemMax: sysctl('net.core.wmem_max') })
  const rl = createInterface({ input: process.stdin })
  rl.on('line', line => {
    let c: Cmd
    try { c = JSON.parse(line) as Cmd } catch { log(`bad command line ${line.slice(0, 80)}`); return }
    run(c).then(r => out({ id: c.id, ok: true, ...r }), (err: unknown) => out({ id: c.id, ok: false, error: (err as Error)?.message ?? String(err) }))
  })
  rl.on('close', () => { void node.close().finally(() => process.exit(0)); setTimeout(() => process.exit(0), 3000).unref() })
}

main().catch(err => { process.stderr.write(`reach-node ${NAME}: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) })
