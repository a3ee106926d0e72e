// An agent's discovery half in its own process: a NetNode (the transport, for the handshake that
// proves each candidate) and a Discovery on the given bootstrap, driven by its parent over IPC
// (test/helpers/dht-testnet.ts). The identity seed and group secret arrive over IPC, never in argv.

import sodium from 'sodium-native'
import { NetNode } from '../../net/index.js'
import { Discovery, groupTopic, publicTopic, ownerTopic, type PeerEvent } from '../../dht/index.js'

interface Msg { id: number, op: string, args: Record<string, any> }

let net: NetNode | null = null
let disc: Discovery | null = null
const peers = new Map<string, PeerEvent>()
const failed: Array<{ host: string, port: number, code: string, retryInMs: number }> = []
const warnings: Array<{ code: string, message: string }> = []
const lookups: Array<{ topic: string, found: number, ms: number }> = []
let startedAt = 0
let firstPeerMs: number | null = null

function send (m: unknown): void {
  if (process.connected) process.send!(m)
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const ops: Record<string, (a: Record<string, any>) => Promise<unknown>> = {
  async start (a) {
    startedAt = performance.now()
    const pk = Buffer.alloc(32)
    const sk = Buffer.alloc(64)
    sodium.crypto_sign_seed_keypair(pk, sk, Buffer.from(a.seed, 'hex'))
    const identity = { publicKey: pk, secretKey: sk }
    net = new NetNode({ identity, host: '127.0.0.1', port: a.netPort ?? 0, transports: ['tcp'], connectTimeoutMs: 3000, handshakeTimeoutMs: 3000 })
    net.on('warning', () => {})
    await net.ready()
    const topics = a.group !== undefined ? [groupTopic(a.group.name, Buffer.from(a.group.secret, 'hex'))] : [publicTopic()]
    disc = new Discovery({
      identity,
      host: '127.0.0.1',
      port: a.dhtPort ?? 0,
      bootstrap: a.bootstrap,
      allowAddress: (h: string) => h === '127.0.0.1',
      stateDir: a.stateDir,
      topics,
      announcePort: a.announce === false ? undefined : net.port,
      pointerKey: a.pointerKey !== undefined ? Buffer.from(a.pointerKey, 'hex') : undefined,
      // A handshake at this address (NetNode's connect with `expect` would return any open connection to that identity).
      dial: async (to, o) => (await net!.connect({ host: to.host, port: to.port }, { signal: o.signal })).key,
      ...a.tunables
    })
    disc.on('peer', (p) => {
      if (firstPeerMs === null) firstPeerMs = performance.now() - startedAt
      peers.set(hex(p.publicKey), p)
    })
    disc.on('dial-failed', (d) => { if (failed.length < 10_000) failed.push({ host: d.host, port: d.port, code: d.error.code, retryInMs: d.retryInMs }) })
    disc.on('warning', (w) => { if (warnings.length < 1000) warnings.push({ code: w.error.code, message: w.error.message }) })
    disc.on('lookup', (l) => { if (lookups.length < 1000) lookups.push(l) })
    await disc.ready()
    return { publicKey: hex(pk), netPort: net.port, dhtPort: disc.address().port, ownTopic: hex(ownerTopic(pk).at(0)).length }
  },
  async peers () {
    return [...peers.values()].map(p => ({ publicKey: hex(p.publicKey), host: p.host, port: p.port, topics: p.topics }))
  },
  /** Resolves when `n` distinct identities have been proven (or after timeoutMs with what there is). */
  async waitPeers (a) {
    const until = Date.now() + (a.timeoutMs ?? 20_000)
    while (peers.size < a.n && Date.now() < until) {
      if (disc !== null) await disc.lookup().catch(() => [])
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    return { count: peers.size, firstPeerMs }
  },
  async lookup () { return await disc!.lookup() },
  async announce () { return await disc!.announce() },
  async findPeer (a) { return await disc!.findPeer(Buffer.from(a.publicKey, 'hex'), { timeoutMs: a.timeoutMs }) },
  async putPointer (a) { return await disc!.putPointer(Buffer.from(a.payload, 'hex')) },
  async getPointer (a) {
    const p = await disc!.getPointer({ minSeq: a.minSeq })
    return p === null ? null : { seq: p.seq, payload: hex(p.payload), source: p.source }
  },
  async failed () { return failed },
  async warnings () { return warnings },
  async lookups () { return lookups },
  async stats () { return disc!.stats() },
  async close () { await disc?.close(); await net?.close(); return true }
}

process.on('message', (m: Msg) => {
  const op = ops[m.op]
  if (op === undefined) { send({ id: m.id, ok: false, error: { code: 'USAGE', message: `no op ${m.op}` } }); return }
  op(m.args ?? {}).then(result => send({ id: m.id, ok: true, result }), (err: any) => send({ id: m.id, ok: false, error: { code: err?.code ?? 'INTERNAL', message: err?.message ?? String(err) } }))
})
process.on('disconnect', () => { void Promise.allSettled([disc?.close(), net?.close()]).finally(() => process.exit(0)) })
send({ ready: true })
