// A NetNode in its own process, driven by its parent over IPC (test/helpers/testnet.ts). The identity
// seed arrives over IPC, never in argv. Operations are small and deterministic: shard data is
// generated here from a seed (prng) so that big transfers do not cross the IPC channel.

import sodium from 'sodium-native'
import { NetNode, shardIdOf, NetError, type NetNodeOptions } from '../../net/index.js'
import type { Peer } from '../../net/peer.js'
import { prng } from './fixtures.js'

interface Msg { id: number, op: string, args: Record<string, any> }

let node: NetNode | null = null
const warnings: Array<{ code: string, message: string }> = []
let peakRss = 0
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }, 50)
sampler.unref()

function send (m: unknown): void {
  if (process.connected) process.send!(m)
}

function peerOf (id: string): Peer {
  const p = node!.peer(id)
  if (p === undefined) throw new NetError('CLOSED', `not connected to ${id.slice(0, 7)}`)
  return p
}

function shardData (seed: string, i: number, size: number): Buffer {
  return prng(`${seed}/${i}`, size)
}

const ops: Record<string, (a: Record<string, any>) => Promise<unknown>> = {
  async start (a) {
    const pk = Buffer.alloc(32)
    const sk = Buffer.alloc(64)
    sodium.crypto_sign_seed_keypair(pk, sk, Buffer.from(a.seed, 'hex'))
    const opts: NetNodeOptions = { ...a.opts, identity: { publicKey: pk, secretKey: sk } }
    node = new NetNode(opts)
    node.on('warning', w => { if (warnings.length < 10_000) warnings.push({ code: w.error.code, message: w.error.message }) })
    await node.ready()
    return { id: node.id, port: node.port, utpPort: node.utpPort, tcpPort: node.tcpPort }
  },
  async connect (a) {
    const p = await node!.connect({ host: a.host, port: a.port }, { expect: a.expect, transports: a.transports })
    return { id: p.id, transport: p.transport }
  },
  /** PUT `count` generated shards of `size` bytes, `parallel` at a time; returns their ids (hex). */
  async putGen (a) {
    const p = peerOf(a.peer)
    const ids: string[] = new Array(a.count)
    let next = 0
    let stored = 0
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    await Promise.all(Array.from({ length: a.parallel ?? 8 }, async () => {
      while (next < a.count) {
        const i = next++
        const data = shardData(a.seed, i, a.size)
        const id = shardIdOf(data)
        const r = await p.put(id, data, { timeoutMs: a.timeoutMs })
        if (r.stored) stored++
        ids[i] = id.toString('hex')
      }
    }))
    const cpu = process.cpuUsage(cpu0)
    return { ids, stored, ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 }
  },
  /** GET the generated shards back and compare. */
  async getGen (a) {
    const p = peerOf(a.peer)
    let ok = 0
    let next = 0
    const t0 = performance.now()
    await Promise.all(Array.from({ length: a.parallel ?? 8 }, async () => {
      while (next < a.count) {
        const i = next++
        const data = shardData(a.seed, i, a.size)
        const got = await p.get(shardIdOf(data), { timeoutMs: a.timeoutMs })
        if (got.equals(data)) ok++
      }
    }))
    return { ok, ms: performance.now() - t0 }
  },
  async put (a) {
    const r = await peerOf(a.peer).put(Buffer.from(a.shard, 'hex'), Buffer.from(a.data, 'hex'))
    return { stored: r.stored, usedByYou: String(r.usedByYou), quotaForYou: String(r.quotaForYou) }
  },
  async get (a) { return (await peerOf(a.peer).get(Buffer.from(a.shard, 'hex'))).toString('hex') },
  async has (a) { return await peerOf(a.peer).has(a.shards.map((s: string) => Buffer.from(s, 'hex'))) },
  async del (a) {
    const r = await peerOf(a.peer).delete(a.shards.map((s: string) => Buffer.from(s, 'hex')))
    return { deleted: r.deleted, usedByYou: String(r.usedByYou) }
  },
  async listAll (a) {
    const entries = await peerOf(a.peer).listAll({ pageSize: a.pageSize })
    return entries.map(e => ({ shard: e.shard.toString('hex'), size: e.size }))
  },
  async audit (a) {
    const answers = await peerOf(a.peer).audit(a.challenges.map((c: any) => ({ shard: Buffer.from(c.shard, 'hex'), nonce: Buffer.from(c.nonce, 'hex'), offset: c.offset, length: c.length })))
    return answers.map(x => ({ status: x.status, proof: x.proof.toString('hex') }))
  },
  async space (a) {
    const s = await peerOf(a.peer).space()
    return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, String(v)]))
  },
  async ping (a) { return await peerOf(a.peer).ping() },
  async usage () { return Object.fromEntries(node!.usage()) },
  async peers () { return node!.peers().map(p => ({ id: p.id, transport: p.transport, open: p.isOpen })) },
  async warnings () { return warnings },
  async mem () { return { rss: process.memoryUsage().rss, peakRss, heapUsed: process.memoryUsage().heapUsed } },
  async resetPeak () { peakRss = process.memoryUsage().rss; return peakRss },
  /** Stop (or resume) reading from every connected peer: a slow receiver. */
  async pauseAll (a) {
    for (const p of node!.peers()) (p as any).channel[a.resume === true ? 'resume' : 'pause']()
    return node!.peers().length
  },
  async close () { await node?.close(); return true }
}

process.on('message', (m: Msg) => {
  const op = ops[m.op]
  if (op === undefined) { send({ id: m.id, ok: false, error: { code: 'USAGE', message: `no op ${m.op}` } }); return }
  op(m.args ?? {}).then(result => send({ id: m.id, ok: true, result }), (err: any) => send({ id: m.id, ok: false, error: { code: err?.code ?? 'INTERNAL', message: err?.message ?? String(err) } }))
})
process.on('disconnect', () => { void node?.close().finally(() => process.exit(0)) })
send({ ready: true })
