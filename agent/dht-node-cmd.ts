// `dustbox dht-node`: a standalone DHT node that others bootstrap from (a private network, tests, the
// demo). Prints its address, saves its routing table in <home>/dht-node on exit, stops on SIGINT or
// SIGTERM (or the given AbortSignal).

import { join } from 'node:path'
import { DhtNode, parseBootstrap, PUBLIC_BOOTSTRAP, DEFAULT_DHT_PORT } from '../dht/index.js'
import { AgentError, AgentCodes } from './errors.js'
import { exitWithParent } from './start-cmd.js'

export interface DhtNodeCmdOptions {
  readonly home: string
  readonly port?: string
  readonly host?: string
  readonly bootstrap?: string
  readonly out: (line: string) => void
  readonly err: (line: string) => void
  readonly signal?: AbortSignal
}

export function parsePort (text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new AgentError(AgentCodes.USAGE, `--port ${JSON.stringify(text.slice(0, 20))} is not a port number 0..65535`)
  return Number(text)
}

export async function runDhtNode (o: DhtNodeCmdOptions): Promise<void> {
  const port = parsePort(o.port, DEFAULT_DHT_PORT)
  const bootstrap = o.bootstrap === 'none' ? false : parseBootstrap(o.bootstrap ?? PUBLIC_BOOTSTRAP).map(b => `${b.host}:${b.port}`)
  const node = new DhtNode({ port, host: o.host ?? '0.0.0.0', bootstrap, stateDir: join(o.home, 'dht-node') })
  node.on('warning', w => o.err(`warning ${w.error.message}`))
  const stop = new AbortController()
  const onSignal = (): void => stop.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const unwatch = exitWithParent(onSignal)
  o.signal?.addEventListener('abort', onSignal, { once: true })
  try {
    await node.ready()
    const a = node.address()
    const shown = a.host === '0.0.0.0' ? '<this host\'s address>' : a.host
    o.out(`dht-node listening on udp ${a.host}:${a.port} (node id ${node.nodeId.toString('hex').slice(0, 12)}…, ${node.stats().nodes} nodes known)`)
    o.out(`bootstrap others with: --bootstrap ${shown}:${a.port}`)
    if (!stop.signal.aborted) await new Promise(resolve => stop.signal.addEventListener('abort', resolve, { once: true }))
    o.out(`dht-node stopping (${node.stats().nodes} nodes known, table saved in ${join(o.home, 'dht-node')})`)
  } finally {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    unwatch()
    await node.close()
  }
}
