// The doctor's `reachability` check (docs/setup.md §7): can peers on the internet reach this node, and
// how (docs/reachability.md)? Read from the running agent's status: the router's port mapping, the NAT
// type its peers observe, and how its connections got through. Pure: status in, one check out.

import type { AgentStatus } from '../agent/status.js'
import { portMappingLine } from '../agent/format.js'
import type { Check } from './doctor.js'

export function reachabilityCheck (status: AgentStatus | null): Check {
  const id = 'reachability'
  if (status === null) return { id, status: 'skip', message: 'not checked: the agent is not running' }
  const r = status.reachability
  const pm = status.portMapping
  const paths = (status.peers ?? []).filter(p => p.connected)
  const punched = paths.filter(p => p.path === 'punched').length
  const relayed = paths.filter(p => p.path === 'relayed').length
  const via = punched + relayed > 0 ? `; of ${paths.length} connected peers, ${punched} through punched holes and ${relayed} through relays` : ''
  const mapping = pm !== undefined && pm.state !== 'off' && pm.state !== 'mapped' ? `; ${portMappingLine(pm)}` : ''
  const forward = `port ${status.port} (udp and tcp)`
  const fix = pm === undefined || pm.state === 'off'
    ? `let the router forward ${forward} to this computer: turn on UPnP or NAT-PMP in the router and run dustbox setup --map-port, or forward it by hand`
    : `turn on UPnP, NAT-PMP or PCP in the router, or forward ${forward} to this computer by hand`
  if (pm?.state === 'mapped') {
    return { id, status: 'ok', message: `reachable from the internet: the router forwards ${pm.externalHost ?? '?'}:${pm.externalPort ?? '?'} to this node (${portMappingLine(pm).replace(/^port mapping: /, '')})${via}` }
  }
  if (r === undefined || r.natType === 'unknown') {
    return { id, status: 'warn', message: `not known yet: no peer has said where it sees this node${mapping}`, hint: 'wait until the agent has met peers over uTP (dustbox status lists them); if it stays so, let UDP port ' + String(status.port) + ' through the firewall' }
  }
  const seen = r.publicAddress !== null ? `seen at ${r.publicAddress.host}:${r.publicAddress.port} by ${r.observers} peer(s) on ${r.observerHosts} host(s)` : `${r.observers} peer(s) reported`
  switch (r.natType) {
    case 'open':
      return { id, status: 'ok', message: `reachable directly, ${seen}${via}` }
    case 'endpoint-independent':
      return { id, status: 'ok', message: `behind a NAT that keeps one mapping for every destination, ${seen}: peers behind NATs reach this node by hole punching${via}${mapping}` }
    case 'symmetric':
      return { id, status: 'warn', message: `behind a symmetric NAT (${r.mappedPorts} ports for ${r.observerHosts} hosts), ${seen}: peers behind other NATs reach this node only through relays${via}${mapping}`, hint: fix }
    default:
      return { id, status: 'warn', message: `behind a NAT, ${seen}; whether hole punching works is not known yet (peers on fewer than 2 hosts)${via}${mapping}`, hint: fix }
  }
}
