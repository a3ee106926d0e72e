// The agent's port mapping (docs/reachability.md §3): when the settings say `mapPort` (dustbox setup
// --map-port), a PortMapper (net/port-mapper.ts) for the node's port starts once the node listens;
// its warnings go to the agent's bus; close deletes the mapping before the node closes. Tunables
// (DUSTBOX_TUNABLES): portMapTtlSeconds, portMapRenewMs, portMapRetryMs, portMapSearchTimeoutMs.

import { PortMapper, type PortMappingStatus } from '../net/index.js'
import type { Agent } from './agent.js'

const mappers = new WeakMap<Agent, PortMapper>()

/** Start mapping the agent's port when its config asks for it (after `net.ready()`); null when it does not. */
export function startPortMapping (a: Agent): PortMapper | null {
  if (a.config.mapPort !== true) return null
  const had = mappers.get(a)
  if (had !== undefined) return had
  const t = a.config.tunables
  const pm = new PortMapper({
    port: a.net.port,
    host: a.config.host,
    ttlSeconds: t.portMapTtlSeconds,
    renewMs: t.portMapRenewMs,
    retryMs: t.portMapRetryMs,
    searchTimeoutMs: t.portMapSearchTimeoutMs,
    description: `dustbox ${a.net.port}`,
    onWarning: e => { a.emit('warning', { code: e.code, message: e.message }) },
    // A mapping makes the node reachable at the router's address: say so in introductions and the DHT.
    onChange: s => {
      const mapped = s.state === 'mapped' && s.externalHost !== undefined && s.externalPort !== undefined
      a.net.setPortMapped(mapped ? { host: s.externalHost!, port: s.externalPort! } : null)
      try { a.discovery?.setAnnouncePort(mapped ? s.externalPort! : a.net.port) } catch {}
    }
  })
  mappers.set(a, pm)
  pm.start()
  return pm
}

/** Stop renewing and delete the mapping (bounded; never rejects). */
export async function stopPortMapping (a: Agent): Promise<void> {
  const pm = mappers.get(a)
  if (pm === undefined) return
  await pm.close()
}

/** The `portMapping` field of the agent's status: `off` unless mapping was asked for. */
export function portMappingStatus (a: Agent): PortMappingStatus {
  return mappers.get(a)?.status() ?? { state: 'off' }
}
