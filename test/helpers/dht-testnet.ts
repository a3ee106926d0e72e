// DHT testnets on 127.0.0.1: `testnet(t, n)` starts n real DHT nodes in this process (the first with
// `bootstrap: false`, the others bootstrapped from it) and closes them after the test; `startAgent`
// forks an agent's discovery (NetNode + Discovery, test/helpers/dht-child.ts) on a testnet. Every
// node's address policy admits 127.0.0.1 only, so nothing here can send a datagram anywhere else.

import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { TestContext } from 'node:test'
import { DhtNode, type DhtNodeOptions } from '../../dht/index.js'
import { forkChild, type Forked } from './testnet.js'
import { tempDir } from './fixtures.js'

const CHILD = fileURLToPath(new URL('./dht-child.js', import.meta.url))

export const loopbackOnly = (host: string): boolean => host === '127.0.0.1'

export interface Testnet {
  readonly nodes: DhtNode[]
  /** `127.0.0.1:port` of the first node, for `bootstrap`. */
  readonly bootstrap: string[]
  /** Datagrams any node refused to send (to an address other than 127.0.0.1). */
  blockedSends: () => number
}

export async function startDhtNode (t: TestContext, opts: DhtNodeOptions = {}): Promise<DhtNode> {
  const node = new DhtNode({ host: '127.0.0.1', port: 0, allowAddress: loopbackOnly, ...opts })
  node.on('warning', () => {})
  t.after(async () => await node.close())
  await node.ready()
  return node
}

export async function testnet (t: TestContext, n: number, opts: DhtNodeOptions = {}): Promise<Testnet> {
  const first = await startDhtNode(t, { ...opts, bootstrap: false })
  const bootstrap = [`127.0.0.1:${first.port}`]
  const rest = await Promise.all(Array.from({ length: n - 1 }, async () => await startDhtNode(t, { bootstrap, ...opts })))
  const nodes = [first, ...rest]
  return { nodes, bootstrap, blockedSends: () => nodes.reduce((s, x) => s + (x.stats().guard.blockedSends), 0) }
}

export interface Agent extends Forked {
  readonly publicKey: string
  readonly seed: string
  readonly netPort: number
  readonly dhtPort: number
  readonly stateDir: string
}

export interface AgentSpec {
  readonly bootstrap: string[] | false
  readonly group?: { name: string, secret: string }
  readonly seed?: string
  readonly stateDir?: string
  readonly dhtPort?: number
  readonly netPort?: number
  readonly announce?: boolean
  readonly pointerKey?: string
  readonly tunables?: Record<string, unknown>
}

/** Test tunables: quick lookups and dials, no waiting between repeats. */
export const FAST = { lookupMinGapMs: 0, announceMinGapMs: 0, lookupIntervalMs: 1000, announceIntervalMs: 2000, dialTimeoutMs: 3000 }

export async function startAgent (t: TestContext, spec: AgentSpec): Promise<Agent> {
  const child = await forkChild(t, CHILD, 'dustbox-dht-')
  const seed = spec.seed ?? randomBytes(32).toString('hex')
  const stateDir = spec.stateDir ?? await tempDir(t, 'dustbox-dht-state-')
  const r = await child.call<{ publicKey: string, netPort: number, dhtPort: number }>('start', {
    seed, stateDir, bootstrap: spec.bootstrap, group: spec.group, dhtPort: spec.dhtPort, netPort: spec.netPort,
    announce: spec.announce, pointerKey: spec.pointerKey, tunables: { ...FAST, ...spec.tunables }
  })
  return { ...child, ...r, seed, stateDir }
}
