// One line of text per row of each pane, cut or padded to an exact width: pure functions of the
// state, so that the views only colour them and the tests can check them as strings.

import type { AgentStatus, PeerStatus } from '../agent/status.js'
import { bar, bytes, cut, cutLeft, duration, fit, percent, rate, short } from './format.js'
import { folderTotals, type DashState, type FileItem, type Transfer } from './state.js'

/** Below this width rows use short labels (folder rows need more: FOLDER_ROOMY). */
export const ROOMY = 96
export const FOLDER_ROOMY = 130

export function headerLines (s: DashState, w: number, now: number): [string, string] {
  const st = s.status
  if (st === null) {
    return [fit(`dustbox  ${s.connected ? 'connected, waiting for status…' : s.error !== null ? s.error : 'connecting to the agent…'}`, w), fit('', w)]
  }
  const net = st.network?.bootstrap
  const network = net === undefined || net === 'public' ? 'public DHT' : net === 'none' ? 'own network (no bootstrap)' : `via ${net.slice(0, 2).join(',')}${net.length > 2 ? ',…' : ''}`
  const up = duration((st.uptimeMs + Math.max(0, now - s.statusAt)) / 1000)
  const mode = s.mode === 'attached' ? 'attached' : 'agent'
  const conn = s.connected ? '' : '  [agent not reachable]'
  const one = `dustbox ${mode}  id ${short(st.identity)}  ${network}  up ${up}${conn}`
  const dht = st.dht.ready ? `DHT ${st.dht.nodes} nodes` : 'DHT joining'
  const q = st.queue.pending + st.queue.active
  const r = st.reachability
  const mapped = r?.portMapped !== undefined ? `  mapped ${w >= ROOMY ? `${r.portMapped.host}:${r.portMapped.port}` : ''}`.trimEnd() : ''
  const nat = (r === undefined || r.natType === 'unknown' ? '' : `  ${r.natType === 'open' ? 'reachable' : `NAT ${r.natType}`}${r.publicAddress !== null && r.natType !== 'open' && w >= ROOMY ? ` as ${r.publicAddress.host}:${r.publicAddress.port}` : ''}`) + mapped
  const two = `${w >= ROOMY ? 'uTP/TCP port' : 'port'} ${st.port}  dht ${st.dhtPort}  ${dht}${nat}  ${st.redundancy.k}+${st.redundancy.m}  ↑ ${rate(s.rates.up)}  ↓ ${rate(s.rates.down)}${q > 0 ? `  queue ${q}` : ''}`
  return [fit(one, w), fit(two, w)]
}

export function healthLine (s: DashState, w: number): string {
  const st = s.status
  if (st === null) return fit('', w)
  const h = st.health
  const parts = h === undefined
    ? ['health unknown']
    : w >= ROOMY
      ? [`health: ${h.files} files placed`, `${h.full} at full redundancy`, `${h.degraded} degraded`, `${h.atRisk} at risk`, `${h.unavailable} unavailable`, `${h.repairing} repairs running`]
      : [`health ${h.files}: ${h.full} full, ${h.degraded} degraded, ${h.atRisk} at risk, ${h.unavailable} lost`, `repairs ${h.repairing}`]
  const failed = st.folders.reduce((n, f) => n + (f.files.failed ?? 0), 0)
  if (st.placement.waiting !== null) parts.push(st.placement.waiting)
  if (failed > 0) parts.push(`${failed} file${failed === 1 ? '' : 's'} failed (see the log)`)
  // Sync (docs/sync.md): deletions held by the mass-delete guard come first: they wait for the user.
  for (const h of st.sync?.held ?? []) parts.unshift(`HELD: ${h.files} of ${h.of} files deleted at once in ${cutLeft(h.folder, 40)} — dustbox sync confirm | revert`)
  const conflicts = st.sync?.openConflicts.length ?? 0
  if (conflicts > 0) parts.push(`${conflicts} sync conflict${conflicts === 1 ? '' : 's'} (dustbox sync)`)
  const devices = st.sync?.devices ?? []
  if (devices.length > 0) parts.push(`devices ${devices.filter(d => d.online).length}/${devices.length} online`)
  return fit(parts.join(' · '), w)
}

export function healthLevel (s: DashState): 'ok' | 'warn' | 'bad' {
  const h = s.status?.health
  if (h === undefined) return 'ok'
  if (h.unavailable > 0 || h.atRisk > 0) return 'bad'
  if ((s.status?.sync?.held.length ?? 0) > 0) return 'bad'
  if (h.degraded > 0 || s.status?.placement.waiting !== null || s.status?.folders.some(f => (f.files.failed ?? 0) > 0) === true) return 'warn'
  return 'ok'
}

export function folderRow (f: AgentStatus['folders'][number], w: number): string {
  const t = folderTotals(f)
  const counts = w >= FOLDER_ROOMY
    ? `stubbed ${t.stubbed}  hydrated ${t.hydrated}  pending ${t.pending}  uploading ${t.uploading}${t.failed > 0 ? `  failed ${t.failed}` : ''}  │ local ${bytes(t.local)}  network ${bytes(t.network)}  freed ${bytes(t.freed)}`
    : [[t.stubbed, 'stub'], [t.hydrated, 'local'], [t.pending, 'pend'], [t.uploading, 'up'], [t.failed, 'FAIL']].filter(([n]) => n !== 0).map(([n, l]) => `${n} ${l}`).join(' ') + ` │ ${bytes(t.local)} here ${bytes(t.network)} net`
  const nameW = Math.max(8, w - counts.length - 2)
  return fit(`${fit(cutLeft(f.path, nameW), nameW)}  ${counts}`, w)
}

const STATE_LABEL: Record<string, string> = {
  stubbed: 'stub',
  hydrated: 'local',
  uploading: 'upload',
  hydrating: 'restore',
  pending: 'pending',
  waiting: 'waiting',
  failed: 'FAILED'
}

export function fileRow (f: FileItem, w: number): string {
  const state = STATE_LABEL[f.state] ?? f.state
  const right = `${fit(bytes(f.size), 6, 'right')}  ${fit(state, 7)}${f.pinned ? ' pin' : '    '}`
  const nameW = Math.max(4, w - right.length - 1)
  const err = f.state === 'failed' && f.error !== null && w >= ROOMY ? ` ${f.error}` : ''
  return fit(`${fit(cutLeft(f.rel, nameW), nameW)} ${right}${err}`, w)
}

export function transferRow (t: Transfer, w: number): string {
  const arrow = t.direction === 'up' ? '↑' : '↓'
  const left = t.rate > 0 ? (t.size - t.bytes) / t.rate : Infinity
  const stats = `${percent(t.bytes, t.size)} ${fit(rate(t.rate), 10, 'right')}  ETA ${fit(t.bytes >= t.size ? '0s' : duration(left), 6)}`
  const barW = w >= ROOMY ? 30 : Math.max(8, Math.min(20, Math.floor(w / 5)))
  const nameW = Math.max(4, w - stats.length - barW - 5)
  return fit(`${arrow} ${fit(cutLeft(t.rel, nameW), nameW)} ${bar(t.bytes, t.size, barW)} ${stats}`, w)
}

/** The way to a peer: its transport when direct, else how it was reached (punched hole, relay). */
function via (p: PeerStatus): string {
  if (p.path === 'punched') return 'punch'
  if (p.path === 'relayed') return 'relay'
  return p.transport ?? '-'
}

export function peerRow (p: PeerStatus, w: number, now: number): string {
  const state = p.connected ? 'online' : 'offline'
  const rtt = p.rttMs === null || p.rttMs === undefined ? '-' : p.rttMs < 10 ? `${p.rttMs.toFixed(1)}ms` : `${Math.round(p.rttMs)}ms`
  const audit = p.lastAudit === null || p.lastAudit === undefined ? '-' : `${p.lastAudit.ok ? 'ok' : 'FAIL'} ${duration((now - p.lastAudit.at) / 1000)} ago`
  if (w >= ROOMY) {
    return fit(`${p.short}  ${fit(p.address ?? '-', 21)}  ${fit(via(p), 5)}  ${fit(rtt, 7, 'right')}  ${fit(state, 7)}  holds for me ${fit(bytes(p.holdsForMe), 6, 'right')}  I hold ${fit(bytes(p.iHoldForThem), 6, 'right')}  audit ${audit}`, w)
  }
  return fit(`${p.short} ${fit(p.address ?? '-', 21)} ${fit(via(p), 5)} ${fit(rtt, 6, 'right')} ${fit(state, 7)} ↑${fit(bytes(p.holdsForMe), 6, 'right')} ↓${fit(bytes(p.iHoldForThem), 6, 'right')} ${cut(audit, 8)}`, w)
}

export function paneTitle (name: string, detail: string, w: number): string {
  return fit(`${name}${detail !== '' ? `  ${detail}` : ''}`, w)
}

export const KEY_HELP: ReadonlyArray<readonly [string, string]> = [
  ['Tab / ← →', 'move between panes'],
  ['↑ ↓  j k', 'move between rows (PgUp/PgDn, g/G: page, first, last)'],
  ['Enter', 'on a folder: show its files'],
  ['o', 'open (restore) the selected file'],
  ['p', 'pin the selected file (keep it local) / unpin it'],
  ['e', 'evict the selected file (make it a stub again now)'],
  ['/', 'filter files by name (Enter applies, Esc clears)'],
  ['?', 'this help'],
  ['q', 'quit the dashboard (an attached agent keeps running)']
]

export function footerLine (s: DashState, w: number): string {
  if (s.filterDraft !== null) return fit(`/ filter: ${s.filterDraft}█  (Enter apply, Esc cancel)`, w)
  if (s.stopping) return fit('stopping the agent…', w)
  if (s.notice !== null) return fit(s.notice.text, w)
  const q = s.mode === 'attached' ? 'q quit (agent keeps running)' : 'q stop agent'
  return fit(`Tab pane  ↑↓ row  o open  p pin  e evict  / filter  ? help  ${q}`, w)
}
