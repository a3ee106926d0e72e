// Human-readable formatting for CLI output.

export function humanBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++ }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`
}

/** "1 block", "3 blocks". */
export function count (n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

const MAPPING_METHODS: Record<string, string> = { upnp: 'UPnP-IGD', pcp: 'PCP', 'nat-pmp': 'NAT-PMP' }

/** The `dustbox status` line for the router's port mapping (docs/reachability.md §3). */
export function portMappingLine (pm: { state: string, method?: string, externalHost?: string, externalPort?: number, tcpExternalPort?: number, expiresAt?: number, renewals?: number, error?: string }, now = Date.now()): string {
  switch (pm.state) {
    case 'searching': return 'port mapping: asking the router…'
    case 'mapped': {
      const tcp = pm.tcpExternalPort !== undefined && pm.tcpExternalPort !== pm.externalPort ? ` (TCP at port ${pm.tcpExternalPort})` : ''
      const left = pm.expiresAt !== undefined ? `, renewed ${count(pm.renewals ?? 0, 'time')}, lease ${Math.max(0, Math.round((pm.expiresAt - now) / 60_000))} min left` : ''
      return `port mapping: mapped by ${MAPPING_METHODS[pm.method ?? ''] ?? pm.method ?? '?'} at ${pm.externalHost ?? '?'}:${pm.externalPort ?? '?'}${tcp}${left}`
    }
    case 'unavailable': return `port mapping: unavailable, no router on this network offers it${pm.error !== undefined ? ` (${pm.error})` : ''}`
    case 'failed': return `port mapping FAILED: ${pm.error ?? 'the router refused'}`
    default: return `port mapping: ${pm.state}`
  }
}
