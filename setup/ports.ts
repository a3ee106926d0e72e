// Port answers and checks: parse and bound the port, then really bind it (TCP and UDP for uTP+TCP,
// UDP for the DHT on port+1) to tell "in use" before the agent fails on it; and a TCP connect probe
// for `dustbox doctor`; and the status of this home's running agent, whose own ports are not "in use".
// Every socket opened here is closed before returning.

import net from 'node:net'
import dgram from 'node:dgram'
import { ControlClient } from '../agent/control-client.js'
import type { AgentStatus } from '../agent/status.js'
import { SetupError, SetupCodes } from './errors.js'

/** The port setup proposes: uTP and TCP on it, the DHT on the next one. */
export const DEFAULT_SETUP_PORT = 45310
/** Unprivileged ports only (the service runs as the user); the top port has no port+1 for the DHT. */
export const MIN_PORT = 1024
export const MAX_PORT = 65534
export const PROBE_TIMEOUT_MS = 3000

export type Proto = 'tcp' | 'udp'

/** "45310" → 45310; 0 means "any free port". USAGE error otherwise. */
export function parsePortAnswer (text: string, what = '--port'): number {
  const t = text.trim()
  if (!/^\d{1,5}$/.test(t)) throw new SetupError(SetupCodes.USAGE, `${what} ${JSON.stringify(text)} is not a port number (${MIN_PORT}-${MAX_PORT}, or 0 for any free port)`)
  const n = Number(t)
  if (n !== 0 && (n < MIN_PORT || n > MAX_PORT)) {
    throw new SetupError(SetupCodes.USAGE, `${what} ${n}: choose ${MIN_PORT}-${MAX_PORT} (ports below ${MIN_PORT} need root, and the DHT uses port+1), or 0 for any free port`)
  }
  return n
}

/** Whether `port` can be bound on `host` with `proto`: null when free, else the errno code. */
export async function bindProbe (host: string, port: number, proto: Proto): Promise<string | null> {
  return await new Promise(resolve => {
    let done = false
    const finish = (code: string | null, close: () => void): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      try { close() } catch {}
      resolve(code)
    }
    let closeFn = (): void => {}
    const timer = setTimeout(() => finish('ETIMEDOUT', closeFn), PROBE_TIMEOUT_MS)
    if (proto === 'tcp') {
      const srv = net.createServer()
      closeFn = () => { srv.close() }
      srv.once('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'EUNKNOWN', () => {}))
      srv.listen({ host, port, exclusive: true }, () => finish(null, closeFn))
    } else {
      const sock = dgram.createSocket({ type: 'udp4', reuseAddr: false })
      closeFn = () => { sock.close() }
      sock.once('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'EUNKNOWN', () => { try { sock.close() } catch {} }))
      sock.bind({ address: host, port, exclusive: true }, () => finish(null, closeFn))
    }
  })
}

/** PORT_IN_USE (or a clear error) unless every (port, proto) can be bound now. */
export async function checkPortsFree (host: string, wanted: ReadonlyArray<{ port: number, proto: Proto, role: string }>): Promise<void> {
  for (const w of wanted) {
    if (w.port === 0) continue
    const code = await bindProbe(host, w.port, w.proto)
    if (code === null) continue
    if (code === 'EADDRINUSE') {
      throw new SetupError(SetupCodes.PORT_IN_USE, `port ${w.port}/${w.proto} (${w.role}) is in use by another program on ${host}; choose another port (--port N) or stop that program`)
    }
    if (code === 'EACCES') throw new SetupError(SetupCodes.PORT_IN_USE, `port ${w.port}/${w.proto} (${w.role}) cannot be bound on ${host}: permission denied`)
    if (code === 'EADDRNOTAVAIL') throw new SetupError(SetupCodes.USAGE, `address ${host} is not an address of this machine (binding port ${w.port}/${w.proto} failed)`)
    throw new SetupError(SetupCodes.PORT_IN_USE, `port ${w.port}/${w.proto} (${w.role}) cannot be bound on ${host} (${code})`)
  }
}

/** The sockets the agent will bind for a port: uTP+TCP on it, the DHT's UDP on dhtPort. */
export function agentPorts (port: number, dhtPort: number): Array<{ port: number, proto: Proto, role: string }> {
  return [
    { port, proto: 'tcp', role: 'TCP peer connections' },
    { port, proto: 'udp', role: 'uTP peer connections' },
    { port: dhtPort, proto: 'udp', role: 'DHT' }
  ]
}

/** A TCP connect to host:port: true when something accepts within the timeout. */
export async function tcpConnects (host: string, port: number, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return await new Promise(resolve => {
    const s = net.connect({ host, port })
    const t = setTimeout(() => { s.destroy(); resolve(false) }, timeoutMs)
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true) })
    s.once('error', () => { clearTimeout(t); s.destroy(); resolve(false) })
  })
}

/** This home's running agent (its ports), or null when none answers. */
export async function runningAgent (home: string, timeoutMs = 1500): Promise<AgentStatus | null> {
  let c: ControlClient
  try { c = await ControlClient.connect(home, { timeoutMs }) } catch { return null }
  try { return await c.call<AgentStatus>('status', {}, { timeoutMs: 5000 }) } catch { return null } finally { await c.close() }
}
