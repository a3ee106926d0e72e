// One side of the transport bench (bench/transport.ts), in its own process: a raw TCP sink or
// source, or a NetNode that receives shards into a ShardStore, or one that sends them. Reports its own
// CPU time and peak RSS over IPC. Every wait is bounded.

import net from 'node:net'
import { randomFillSync } from 'node:crypto'
import sodium from 'sodium-native'
import { NetNode } from '../net/index.js'
import { shardIdOf } from '../net/shard-store.js'

interface Job { role: 'raw-sink' | 'raw-source' | 'node-recv' | 'node-send', bytes: number, shard: number, port?: number, transport?: 'utp' | 'tcp', storeDir?: string, expect?: string, parallel?: number, seconds: number }

const job = JSON.parse(process.argv[2]) as Job
const send = (m: unknown): void => { process.send?.(m) }
let peak = 0
setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 25).unref()
setTimeout(() => process.exit(3), (job.seconds + 30) * 1000).unref()
const stats = (cpu0: NodeJS.CpuUsage, t0: number): Record<string, number> => {
  const c = process.cpuUsage(cpu0)
  return { cpuS: (c.user + c.system) / 1e6, wallS: (performance.now() - t0) / 1000, peakRssMiB: Math.max(peak, process.memoryUsage().rss) / 1048576 }
}
process.on('message', (m: unknown) => { if (m === 'stop') setTimeout(() => process.exit(0), 100) })

function identity (): { publicKey: Buffer, secretKey: Buffer } {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  return { publicKey, secretKey }
}

async function main (): Promise<void> {
  if (job.role === 'raw-sink') {
    const server = net.createServer(s => {
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      let n = 0
      s.on('data', d => { n += d.length; if (n >= job.bytes) { send({ done: stats(cpu0, t0) }); s.destroy() } })
    })
    server.listen(0, '127.0.0.1', () => send({ port: (server.address() as net.AddressInfo).port }))
    return
  }
  if (job.role === 'raw-source') {
    const chunk = randomFillSync(Buffer.allocUnsafe(job.shard))
    const s = net.connect(job.port!, '127.0.0.1')
    s.setNoDelay(true)
    await new Promise(resolve => s.once('connect', resolve))
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    let sent = 0
    while (sent < job.bytes) {
      sent += chunk.length
      if (!s.write(chunk)) await new Promise(resolve => s.once('drain', resolve))
    }
    send({ done: stats(cpu0, t0) })
    s.on('error', () => {})
    return
  }
  const node = new NetNode({
    identity: identity(),
    host: '127.0.0.1',
    transports: [job.transport!],
    store: job.role === 'node-recv' ? { dir: job.storeDir!, donatedBytes: job.bytes * 2, reserveDiskBytes: 0 } : null,
    stateDir: null
  })
  await node.ready()
  if (job.role === 'node-recv') {
    let cpu0 = process.cpuUsage()
    let t0 = performance.now()
    node.on('peer', () => { cpu0 = process.cpuUsage(); t0 = performance.now(); peak = process.memoryUsage().rss })
    process.on('message', (m: unknown) => { if (m === 'report') send({ done: stats(cpu0, t0) }) })
    send({ port: node.port, id: node.id })
    return
  }
  const peer = await node.connect({ host: '127.0.0.1', port: job.port! }, { expect: job.expect, transports: [job.transport!] })
  peak = process.memoryUsage().rss
  const base = randomFillSync(Buffer.allocUnsafe(job.shard))
  const count = Math.ceil(job.bytes / job.shard)
  // Each shard distinct (its index in the first bytes), so each is really stored. Their ids are
  // computed before the clock starts: hashing is the owner's ingest work, not the transport's (the
  // receiver's verification of every id is measured).
  const shardAt = (i: number): Buffer => { const d = Buffer.from(base); d.writeUInt32BE(i, 0); return d }
  const ids = Array.from({ length: count }, (_, i) => shardIdOf(shardAt(i)))
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: job.parallel ?? 8 }, async () => {
    while (next < count) {
      const i = next++
      await peer.put(ids[i], shardAt(i), { timeoutMs: job.seconds * 1000 })
    }
  }))
  send({ done: stats(cpu0, t0) })
  await node.close()
}

main().catch(err => { process.stderr.write(`transport bench child (${job.role}): ${(err as Error).stack ?? String(err)}\n`); process.exit(1) })
