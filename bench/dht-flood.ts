// The victim of the DHT bench's announce flood (bench/dht.ts), in its own process started with
// --expose-gc so its heap can be measured after a full collection: a dustbox DhtNode, or a plain
// bittorrent-dht node as the reference, on 127.0.0.1. Sends `{port}` once listening, answers 'mem'
// with `{mem}` (heap and RSS after gc, peak RSS since the previous 'mem', stored announces) and
// exits on 'stop'. Every wait is bounded.

import DHT from 'bittorrent-dht'
import { DhtNode } from '../dht/index.js'

interface Job { kind: 'dustbox' | 'plain', seconds: number, guard: Record<string, number>, store: Record<string, number> }

export interface VictimMem {
  heapUsed: number
  rss: number
  external: number
  peakRss: number
  /** Peers stored for others (dustbox: the announce store; plain: the library's record cache). */
  stored: number
  topics: number
  /** Peers stored on the fullest topic. */
  largestTopic: number
  stats: Record<string, unknown> | null
}

const job = JSON.parse(process.argv[2]) as Job
const send = (m: unknown): void => { process.send?.(m) }
setTimeout(() => process.exit(3), job.seconds * 1000).unref()
let peak = 0
setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, 25).unref()

async function settle (): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc
  for (let i = 0; i < 3; i++) {
    gc?.()
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** record-cache's two generations (fresh, stale) of topic → peer set: topics, and peers of the fullest. */
function plainTopics (d: DHT): { topics: number, largestTopic: number } {
  type Gen = { records: Map<string, { list: unknown[] }> }
  const c = d._peers as unknown as { _fresh: Gen, _stale: Gen }
  const sizes = new Map<string, number>()
  for (const g of [c._fresh, c._stale]) for (const [k, r] of g.records) sizes.set(k, (sizes.get(k) ?? 0) + r.list.length)
  return { topics: sizes.size, largestTopic: Math.max(0, ...sizes.values()) }
}

/** The announce store's topic → peers map (private; read for the figures only). */
function storeLargest (node: DhtNode): number {
  const store = (node as unknown as { dht: { store: { topics: Map<string, Map<string, unknown>> } } }).dht.store
  return Math.max(0, ...[...store.topics.values()].map(t => t.size))
}

async function main (): Promise<void> {
  let port: number
  let mem: () => Pick<VictimMem, 'stored' | 'topics' | 'largestTopic' | 'stats'>
  let close: () => Promise<void>
  if (job.kind === 'dustbox') {
    const node = new DhtNode({ host: '127.0.0.1', port: 0, bootstrap: false, allowAddress: h => h === '127.0.0.1', guard: job.guard, store: job.store })
    node.on('warning', () => {})
    await node.ready()
    port = node.port
    mem = () => { const s = node.stats(); return { stored: s.announces, topics: s.announceTopics, largestTopic: storeLargest(node), stats: s as unknown as Record<string, unknown> } }
    close = async () => await node.close()
  } else {
    const d = new DHT({ bootstrap: false })
    d.on('warning', () => {})
    d.on('error', () => {})
    await new Promise<void>(resolve => d.listen(0, '127.0.0.1', () => resolve()))
    port = d.address().port
    mem = () => ({ stored: (d._peers as unknown as { size: number }).size, ...plainTopics(d), stats: null })
    close = async () => await new Promise<void>(resolve => d.destroy(() => resolve()))
  }
  process.on('message', (m: unknown) => {
    if (m === 'mem') {
      void settle().then(() => {
        const u = process.memoryUsage()
        const out: VictimMem = { heapUsed: u.heapUsed, rss: u.rss, external: u.external, peakRss: Math.max(peak, u.rss), ...mem() }
        peak = u.rss
        send({ mem: out })
      })
    } else if (m === 'stop') {
      void close().finally(() => process.exit(0))
    }
  })
  await settle()
  peak = process.memoryUsage.rss()
  send({ port })
}

main().catch(err => {
  process.stderr.write(`dht-flood child: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
