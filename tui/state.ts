// The dashboard's state and its reducer: pure functions only. Actions come from the control API
// (status snapshots, batches of events, pages of files), from the keyboard (already mapped to
// navigation) and from the hook (notices, connection changes). Views read this state and nothing
// else. Everything is bounded: transfers, log items, file rows.

import type { AgentStatus } from '../agent/status.js'
import type { TransferStatus } from '../agent/activity.js'

export const PANES = ['folders', 'files', 'transfers', 'peers'] as const
export type Pane = (typeof PANES)[number]

/** Log items kept for <Static>; past it the log restarts (printed lines stay on the terminal). */
export const LOG_MAX = 2000
/** Transfers shown at most (the agent lists at most 256). */
export const TRANSFERS_MAX = 256
/** In one batch, more stubbed files than this are logged as one summary line. */
export const LOG_SUMMARY_OVER = 3
/** Weight of the newest sample in smoothed rates. */
export const RATE_ALPHA = 0.5
/** A transfer not mentioned by events or status for this long is dropped. */
export const TRANSFER_STALE_MS = 5000

export type Level = 'info' | 'warn' | 'error'

export interface FileItem {
  readonly folder: string
  readonly rel: string
  readonly state: string
  readonly size: number
  readonly pinned: boolean
  readonly error: string | null
}

export interface FilesPage {
  readonly total: number
  readonly offset: number
  readonly rows: readonly FileItem[]
}

export interface Transfer extends TransferStatus {
  readonly path: string
  /** Smoothed bytes per second. */
  readonly rate: number
}

export interface LogItem {
  readonly id: number
  readonly at: number
  readonly level: Level
  readonly text: string
}

export interface DashEvent {
  readonly event: string
  readonly data: unknown
  readonly at: number
}

export interface DashState {
  readonly mode: 'attached' | 'embedded'
  readonly connected: boolean
  readonly error: string | null
  readonly status: AgentStatus | null
  readonly statusAt: number
  readonly traffic: { readonly at: number, readonly bytesIn: number, readonly bytesOut: number } | null
  readonly rates: { readonly up: number, readonly down: number }
  readonly transfers: readonly Transfer[]
  /** The files pane: which folder and filter it shows, and the page loaded. */
  readonly files: { readonly folder: string | null, readonly filter: string, readonly total: number, readonly offset: number, readonly rows: readonly FileItem[], readonly loaded: boolean }
  readonly focus: Pane
  readonly sel: Readonly<Record<Pane, number>>
  /** Non-null while `/` is being typed. */
  readonly filterDraft: string | null
  readonly help: boolean
  readonly log: readonly LogItem[]
  /**
   * Log lines from events wait here until the next status (about once a second): every change of
   * <Static> forces Ink to draw at once, bypassing its frame cap, so lines are released in groups.
   */
  readonly pendingLog: ReadonlyArray<Omit<LogItem, 'id'>>
  readonly logEpoch: number
  readonly nextLogId: number
  readonly notice: { readonly text: string, readonly level: Level, readonly at: number } | null
  readonly events: number
  readonly stopping: boolean
}

export interface KeyInput {
  readonly input: string
  readonly tab?: boolean
  readonly shift?: boolean
  readonly upArrow?: boolean
  readonly downArrow?: boolean
  readonly leftArrow?: boolean
  readonly rightArrow?: boolean
  readonly pageUp?: boolean
  readonly pageDown?: boolean
  readonly return?: boolean
  readonly escape?: boolean
  readonly backspace?: boolean
  readonly delete?: boolean
}

export type Action =
  | { type: 'status', status: AgentStatus, at: number }
  | { type: 'events', events: readonly DashEvent[] }
  | { type: 'files', folder: string | null, filter: string, page: FilesPage }
  | { type: 'key', key: KeyInput, page: Readonly<Record<Pane, number>> }
  | { type: 'notice', text: string, level: Level, at: number, log?: boolean }
  | { type: 'connection', connected: boolean, error: string | null, at: number }
  | { type: 'stopping' }
  /** Several actions in one state change (one redraw). */
  | { type: 'batch', actions: readonly Action[] }

export function initialState (mode: 'attached' | 'embedded' = 'attached'): DashState {
  return {
    mode,
    connected: false,
    error: null,
    status: null,
    statusAt: 0,
    traffic: null,
    rates: { up: 0, down: 0 },
    transfers: [],
    files: { folder: null, filter: '', total: 0, offset: 0, rows: [], loaded: false },
    focus: 'folders',
    sel: { folders: 0, files: 0, transfers: 0, peers: 0 },
    filterDraft: null,
    help: false,
    log: [],
    pendingLog: [],
    logEpoch: 0,
    nextLogId: 1,
    notice: null,
    events: 0,
    stopping: false
  }
}

export function reducer (s: DashState, a: Action): DashState {
  switch (a.type) {
    case 'status': return onStatus(s, a.status, a.at)
    case 'events': return onEvents(s, a.events)
    case 'files': return onFiles(s, a.folder, a.filter, a.page)
    case 'key': return onKey(s, a.key, a.page)
    case 'notice': {
      const n = { ...s, notice: { text: a.text, level: a.level, at: a.at } }
      return a.log === true ? appendLog(n, [{ at: a.at, level: a.level, text: a.text }]) : n
    }
    case 'connection': {
      if (s.connected === a.connected && s.error === a.error) return s
      // Still down, for another reason: show the new reason, log only the change of state.
      if (!a.connected && !s.connected && s.error !== null) return { ...s, error: a.error }
      const text = a.connected ? 'connected to the agent' : `agent not reachable${a.error !== null ? `: ${a.error}` : ''}`
      return appendLog({ ...s, connected: a.connected, error: a.error }, [{ at: a.at, level: a.connected ? 'info' : 'error', text }])
    }
    case 'stopping': return { ...s, stopping: true }
    case 'batch': return a.actions.reduce(reducer, s)
  }
}

// ---- status ----

function onStatus (s: DashState, st: AgentStatus, at: number): DashState {
  let rates = s.rates
  const t = st.traffic ?? { bytesIn: 0, bytesOut: 0 }
  if (s.traffic !== null && at > s.traffic.at) {
    const dt = (at - s.traffic.at) / 1000
    const up = Math.max(0, t.bytesOut - s.traffic.bytesOut) / dt
    const down = Math.max(0, t.bytesIn - s.traffic.bytesIn) / dt
    rates = { up: smooth(s.rates.up, up), down: smooth(s.rates.down, down) }
  }
  // Transfers: the snapshot is authoritative for what runs; events since may be newer.
  const byPath = new Map(s.transfers.map(x => [x.path, x]))
  const next: Transfer[] = []
  const seen = new Set<string>()
  for (const x of st.transfers ?? []) {
    const path = joinPath(x.folder, x.rel)
    seen.add(path)
    const prev = byPath.get(path)
    if (prev !== undefined && prev.direction === x.direction && prev.updatedAt >= x.updatedAt) next.push(prev)
    else next.push(advance(prev?.direction === x.direction ? prev : undefined, { ...x, path }))
  }
  for (const x of s.transfers) if (!seen.has(x.path) && at - x.updatedAt < TRANSFER_STALE_MS) next.push(x)
  next.sort((a, b) => a.startedAt - b.startedAt)
  const folders = st.folders.map(f => f.path)
  let files = s.files
  const selFolder = Math.min(s.sel.folders, Math.max(0, folders.length - 1))
  const folder = folders[selFolder] ?? null
  if (files.folder !== folder) files = { folder, filter: files.filter, total: 0, offset: 0, rows: [], loaded: false }
  return appendLog({
    ...s,
    pendingLog: [],
    connected: true,
    error: null,
    status: st,
    statusAt: at,
    traffic: { at, bytesIn: t.bytesIn, bytesOut: t.bytesOut },
    rates,
    transfers: next.slice(-TRANSFERS_MAX),
    files,
    sel: { ...s.sel, folders: selFolder, peers: Math.min(s.sel.peers, Math.max(0, st.peers.length - 1)), transfers: Math.min(s.sel.transfers, Math.max(0, next.length - 1)) }
  }, s.pendingLog)
}

function smooth (old: number, sample: number): number {
  return old === 0 ? sample : old * (1 - RATE_ALPHA) + sample * RATE_ALPHA
}

/** Update a transfer with a newer progress sample, deriving its rate. */
function advance (prev: Transfer | undefined, x: TransferStatus & { path: string }): Transfer {
  if (prev === undefined) {
    const dt = (x.updatedAt - x.startedAt) / 1000
    return { ...x, rate: dt > 0.2 ? x.bytes / dt : 0 }
  }
  const dt = (x.updatedAt - prev.updatedAt) / 1000
  const sample = dt > 0 ? Math.max(0, x.bytes - prev.bytes) / dt : prev.rate
  return { ...x, startedAt: prev.startedAt, rate: dt > 0.05 ? smooth(prev.rate, sample) : prev.rate }
}

export function joinPath (folder: string, rel: string): string {
  return folder.endsWith('/') ? folder + rel : `${folder}/${rel}`
}

// ---- events ----

interface FileEv { folder: string, path: string, rel: string, state: string, size?: number, bytes?: number, error?: string }

function asFileEvent (d: unknown): FileEv | null {
  const o = d as Record<string, unknown> | null
  if (o === null || typeof o !== 'object') return null
  if (typeof o.folder !== 'string' || typeof o.path !== 'string' || typeof o.rel !== 'string' || typeof o.state !== 'string') return null
  const num = (v: unknown): number | undefined => typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined
  return { folder: o.folder, path: o.path, rel: o.rel, state: o.state, size: num(o.size), bytes: num(o.bytes), error: typeof o.error === 'string' ? o.error : undefined }
}

function onEvents (s: DashState, events: readonly DashEvent[]): DashState {
  if (events.length === 0) return s
  const transfers = new Map(s.transfers.map(x => [x.path, x]))
  const logs: Array<Omit<LogItem, 'id'>> = []
  const stubbed: Array<{ rel: string, size: number, at: number }> = []
  const fileStates = new Map<string, FileEv>()
  const warned = new Set<string>()
  for (const ev of events) {
    if (ev.event === 'file') {
      const e = asFileEvent(ev.data)
      if (e === null) continue
      fileStates.set(e.path, e)
      if (e.state === 'uploading' || e.state === 'hydrating') {
        const direction = e.state === 'uploading' ? 'up' : 'down'
        const prev = transfers.get(e.path)
        const same = prev !== undefined && prev.direction === direction ? prev : undefined
        transfers.delete(e.path)
        transfers.set(e.path, advance(same, { folder: e.folder, rel: e.rel, path: e.path, direction, size: e.size ?? same?.size ?? 0, bytes: e.bytes ?? same?.bytes ?? 0, startedAt: same?.startedAt ?? ev.at, updatedAt: ev.at }))
        continue
      }
      if (e.state === 'queued') continue
      transfers.delete(e.path)
      if (e.state === 'stubbed') stubbed.push({ rel: e.rel, size: e.size ?? 0, at: ev.at })
      else if (e.state === 'hydrated' && e.bytes !== undefined) logs.push({ at: ev.at, level: 'info', text: `restored  ${e.rel} (${fmtSize(e.size ?? e.bytes)})` })
      else if (e.state === 'failed') logs.push({ at: ev.at, level: 'error', text: `failed    ${e.rel}: ${e.error ?? ''}` })
      else if (e.state === 'removed') logs.push({ at: ev.at, level: 'info', text: `removed   ${e.rel}` })
    } else if (ev.event === 'peer') {
      const p = ev.data as { id?: unknown, short?: unknown, state?: unknown } | null
      if (p === null || typeof p !== 'object' || typeof p.id !== 'string' || typeof p.state !== 'string') continue
      const name = typeof p.short === 'string' ? p.short : p.id
      logs.push({ at: ev.at, level: p.state === 'connected' ? 'info' : 'warn', text: `peer      ${name.slice(0, 8)} ${p.state}` })
    } else if (ev.event === 'waiting') {
      const r = (ev.data as { reason?: unknown } | null)?.reason
      logs.push(typeof r === 'string' ? { at: ev.at, level: 'warn', text: `waiting   ${r}` } : { at: ev.at, level: 'info', text: 'placing   peers available again' })
    } else if (ev.event === 'warning') {
      const w = ev.data as { code?: unknown, message?: unknown } | null
      if (w === null || typeof w !== 'object' || typeof w.message !== 'string') continue
      const code = typeof w.code === 'string' ? w.code : ''
      if (warned.has(code)) continue
      warned.add(code)
      logs.push({ at: ev.at, level: 'warn', text: `warning   ${w.message}` })
    } else if (ev.event === 'dropped') {
      const n = (ev.data as { count?: unknown } | null)?.count
      logs.push({ at: ev.at, level: 'warn', text: `dashboard fell behind: ${typeof n === 'number' ? n : 'some'} events skipped (counts stay right)` })
    }
  }
  if (stubbed.length > LOG_SUMMARY_OVER) {
    const total = stubbed.reduce((n, x) => n + x.size, 0)
    logs.push({ at: stubbed[stubbed.length - 1].at, level: 'info', text: `stubbed   ${stubbed.length} files (${fmtSize(total)}), last ${stubbed[stubbed.length - 1].rel}` })
  } else {
    for (const x of stubbed) logs.push({ at: x.at, level: 'info', text: `stubbed   ${x.rel} (${fmtSize(x.size)})` })
  }
  logs.sort((a, b) => a.at - b.at)
  // Keep the files pane's rows current without refetching.
  let files = s.files
  if (fileStates.size > 0 && files.rows.length > 0) {
    let changed = false
    const rows = files.rows.map(r => {
      const e = fileStates.get(joinPath(r.folder, r.rel))
      if (e === undefined || e.state === 'queued' || e.state === r.state) return r
      changed = true
      return { ...r, state: e.state === 'hydrating' ? 'hydrating' : e.state, size: e.size ?? r.size, error: e.error ?? null }
    })
    if (changed) files = { ...files, rows }
  }
  const list = [...transfers.values()].sort((a, b) => a.startedAt - b.startedAt).slice(-TRANSFERS_MAX)
  const pendingLog = [...s.pendingLog, ...logs].slice(-LOG_MAX)
  return { ...s, transfers: list, files, events: s.events + events.length, pendingLog }
}

function fmtSize (n: number): string {
  if (n < 1024) return `${n} B`
  const u = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++ }
  return `${v.toFixed(1)} ${u[i]}`
}

function appendLog (s: DashState, items: ReadonlyArray<Omit<LogItem, 'id'>>): DashState {
  if (items.length === 0) return s
  let id = s.nextLogId
  const add = items.map(x => ({ ...x, id: id++ }))
  if (s.log.length + add.length > LOG_MAX) return { ...s, log: add.slice(-LOG_MAX), logEpoch: s.logEpoch + 1, nextLogId: id }
  return { ...s, log: [...s.log, ...add], nextLogId: id }
}

// ---- files ----

function onFiles (s: DashState, folder: string | null, filter: string, page: FilesPage): DashState {
  if (folder !== s.files.folder || filter !== s.files.filter) return s // an answer to an older question
  const total = page.total
  return { ...s, files: { folder, filter, total, offset: page.offset, rows: page.rows, loaded: true }, sel: { ...s.sel, files: Math.min(s.sel.files, Math.max(0, total - 1)) } }
}

/** Rows per step of the files pane's paging: a page is FILES_STEP * 3 rows around the selection. */
export const FILES_STEP = 50

/** The offset of the page of files to load so that the selection and the rows around it are in it. */
export function wantedFilesOffset (s: DashState): number {
  return Math.max(0, Math.floor(s.sel.files / FILES_STEP) * FILES_STEP - FILES_STEP)
}

// ---- keys ----

function listLength (s: DashState, p: Pane): number {
  switch (p) {
    case 'folders': return s.status?.folders.length ?? 0
    case 'files': return s.files.total
    case 'transfers': return s.transfers.length
    case 'peers': return s.status?.peers.length ?? 0
  }
}

/**
 * The keystrokes in one read from the terminal. Ink hands a chunk of plain text over whole (a paste,
 * or keys typed faster than the dashboard reads them, as tmux's send-keys does on a busy machine),
 * so "/Grüße\r" would be one unknown key. A chunk of more than one character is split into its
 * characters, with CR/LF as Enter, TAB as Tab and DEL/BS as Backspace, so it acts exactly as the
 * same keys typed one by one. Escape sequences (arrows, pages) are split by Ink before this.
 */
export function keystrokes (k: KeyInput): KeyInput[] {
  const chars = [...k.input]
  if (chars.length <= 1) return [k]
  return chars.map(c => {
    if (c === '\r' || c === '\n') return { input: '', return: true }
    if (c === '\t') return { input: '', tab: true }
    if (c === '\u007f' || c === '\b') return { input: '', backspace: true }
    return { input: c, ...(/\p{Lu}/u.test(c) ? { shift: true } : {}) }
  })
}

function onKey (s: DashState, k: KeyInput, page: Readonly<Record<Pane, number>>): DashState {
  if (s.filterDraft !== null) {
    if (k.escape === true) return { ...s, filterDraft: null }
    if (k.return === true) return setFilter({ ...s, filterDraft: null, focus: 'files' }, s.filterDraft)
    if (k.backspace === true || k.delete === true) return { ...s, filterDraft: [...s.filterDraft].slice(0, -1).join('') }
    // eslint-disable-next-line no-control-regex
    const text = k.input.replace(/[\u0000-\u001f\u007f]/g, '')
    if (text !== '' && s.filterDraft.length + text.length <= 256) return { ...s, filterDraft: s.filterDraft + text }
    return s
  }
  if (s.help) return k.escape === true || k.input === '?' || k.input === 'q' || k.return === true ? { ...s, help: false } : s
  if (k.input === '?') return { ...s, help: true }
  if (k.input === '/') return { ...s, filterDraft: s.files.filter }
  if (k.escape === true) return s.files.filter !== '' ? setFilter(s, '') : { ...s, notice: null }
  const i = PANES.indexOf(s.focus)
  if (k.tab === true || k.rightArrow === true || k.leftArrow === true) {
    const back = (k.tab === true && k.shift === true) || k.leftArrow === true
    return { ...s, focus: PANES[(i + (back ? PANES.length - 1 : 1)) % PANES.length] }
  }
  if (k.return === true && s.focus === 'folders') return { ...s, focus: 'files' }
  const n = listLength(s, s.focus)
  const cur = s.sel[s.focus]
  const h = Math.max(1, page[s.focus])
  let next = cur
  if (k.upArrow === true || k.input === 'k') next = cur - 1
  else if (k.downArrow === true || k.input === 'j') next = cur + 1
  else if (k.pageUp === true) next = cur - h
  else if (k.pageDown === true) next = cur + h
  else if (k.input === 'g') next = 0
  else if (k.input === 'G') next = n - 1
  else return s
  next = Math.max(0, Math.min(next, n - 1))
  if (next === cur) return s
  const sel = { ...s.sel, [s.focus]: next }
  if (s.focus === 'folders') {
    const folder = s.status?.folders[next]?.path ?? null
    return { ...s, sel: { ...sel, files: 0 }, files: { folder, filter: s.files.filter, total: 0, offset: 0, rows: [], loaded: false } }
  }
  return { ...s, sel }
}

function setFilter (s: DashState, filter: string): DashState {
  if (filter === s.files.filter) return s
  return { ...s, sel: { ...s.sel, files: 0 }, files: { ...s.files, filter, total: 0, offset: 0, rows: [], loaded: false } }
}

// ---- selectors ----

/** The file the `o`, `p` and `e` keys act on: the selected row of the files or transfers pane. */
export function selectedFile (s: DashState): { folder: string, rel: string, path: string } | null {
  if (s.focus === 'files') {
    const r = s.files.rows[s.sel.files - s.files.offset]
    return r === undefined ? null : { folder: r.folder, rel: r.rel, path: joinPath(r.folder, r.rel) }
  }
  if (s.focus === 'transfers') {
    const t = s.transfers[s.sel.transfers]
    return t === undefined ? null : { folder: t.folder, rel: t.rel, path: t.path }
  }
  return null
}

/** Folder totals the folders pane shows. */
export function folderTotals (f: AgentStatus['folders'][number]): { stubbed: number, hydrated: number, pending: number, uploading: number, failed: number, local: number, network: number, freed: number } {
  const n = (k: string): number => f.files[k] ?? 0
  const b = (k: string): number => f.bytes[k] ?? 0
  return {
    stubbed: n('stubbed'),
    hydrated: n('hydrated'),
    pending: n('pending') + n('waiting'),
    uploading: n('uploading'),
    failed: n('failed'),
    local: b('hydrated') + b('pending') + b('waiting') + b('uploading') + b('failed'),
    network: b('stubbed') + b('hydrated'),
    freed: b('stubbed')
  }
}
