// useDashboard: the dashboard's state in a reducer hook, fed by its source: the event stream through
// the EventBatcher (one action per FLUSH_MS at most), a status poll every POLL_MS, the page of files
// the files pane needs (again on FILES_REFRESH_MS), and the keys (navigation goes to the reducer;
// o/p/e/q become control calls). Views get the state and nothing else.

import { useCallback, useEffect, useReducer, useRef, useState } from 'react'
import { useApp, useInput, useStdin, useStdout } from 'ink'
import { errorLine } from '../agent/errors.js'
import { EventBatcher, FLUSH_MS } from './batcher.js'
import { initialState, keystrokes, reducer, selectedFile, wantedFilesOffset, FILES_STEP, type Action, type DashState, type KeyInput } from './state.js'
import type { DashboardSource } from './source.js'
import { screenLayout } from './views/screen.js'

export const POLL_MS = 1000
export const FILES_REFRESH_MS = 3000

export interface DashboardHookOptions {
  readonly mode: 'attached' | 'embedded'
  /** The user quit (q, Ctrl-C): attached, the dashboard closes; embedded, the agent is asked to stop. */
  readonly onQuit: (how: 'quit' | 'stop') => void
  readonly pollMs?: number
  readonly flushMs?: number
}

export function useTerminalSize (): { columns: number, rows: number } {
  const { stdout } = useStdout()
  const [size, setSize] = useState({ columns: stdout.columns ?? 80, rows: stdout.rows ?? 24 })
  useEffect(() => {
    const on = (): void => setSize({ columns: stdout.columns ?? 80, rows: stdout.rows ?? 24 })
    stdout.on('resize', on)
    return () => { stdout.off('resize', on) }
  }, [stdout])
  return size
}

export function useDashboard (source: DashboardSource, o: DashboardHookOptions): { state: DashState, size: { columns: number, rows: number } } {
  const [state, dispatch] = useReducer(reducer, o.mode, initialState)
  const size = useTerminalSize()
  const stateRef = useRef(state)
  stateRef.current = state
  const [filesTick, setFilesTick] = useState(0)
  const { isRawModeSupported } = useStdin()
  const app = useApp()

  // Everything but keys goes through one queue, applied as one action per FLUSH_MS at most, so
  // that events, status and pages of files together cause at most ~10 redraws a second.
  const queue = useRef<Action[]>([])
  const flushTimer = useRef<NodeJS.Timeout | null>(null)
  const flushMs = o.flushMs ?? FLUSH_MS
  const post = useCallback((a: Action): void => {
    queue.current.push(a)
    if (flushTimer.current !== null) return
    flushTimer.current = setTimeout(() => {
      flushTimer.current = null
      const actions = queue.current
      queue.current = []
      if (actions.length > 0) dispatch(actions.length === 1 ? actions[0] : { type: 'batch', actions })
    }, flushMs)
  }, [flushMs])
  useEffect(() => () => { if (flushTimer.current !== null) clearTimeout(flushTimer.current) }, [])

  // Events (coalesced by the batcher into one action per flush); connection changes.
  useEffect(() => {
    const batcher = new EventBatcher(events => post({ type: 'events', events }), { intervalMs: flushMs })
    const offEvents = source.onEvent((event, data) => batcher.push(event, data))
    const offConn = source.onConnection((connected, error) => post({ type: 'connection', connected, error, at: Date.now() }))
    return () => { offEvents(); offConn(); batcher.close() }
  }, [source])

  // Status, polled.
  useEffect(() => {
    let stopped = false
    let timer: NodeJS.Timeout | undefined
    const tick = async (): Promise<void> => {
      try {
        const status = await source.status()
        if (!stopped) post({ type: 'status', status, at: Date.now() })
      } catch (err) {
        if (!stopped) post({ type: 'connection', connected: false, error: errorLine(err), at: Date.now() })
      } finally {
        if (!stopped) timer = setTimeout(() => { void tick() }, o.pollMs ?? POLL_MS)
      }
    }
    void tick()
    return () => { stopped = true; clearTimeout(timer) }
  }, [source])

  // The page of files the files pane shows (and a refresh now and then).
  const folder = state.files.folder
  const filter = state.files.filter
  const offset = wantedFilesOffset(state)
  useEffect(() => {
    if (folder === null || !state.connected) return
    let stopped = false
    const load = async (): Promise<void> => {
      try {
        const page = await source.files({ folder, ...(filter !== '' ? { filter } : {}), offset, limit: FILES_STEP * 3 })
        if (!stopped) post({ type: 'files', folder, filter, page })
      } catch (err) {
        if (!stopped) post({ type: 'notice', text: errorLine(err), level: 'error', at: Date.now() })
      }
    }
    void load()
    const timer = setInterval(() => { void load() }, FILES_REFRESH_MS)
    return () => { stopped = true; clearInterval(timer) }
  }, [source, folder, filter, offset, state.connected, filesTick])

  const act = async (method: 'open' | 'pin' | 'evict', s: DashState): Promise<void> => {
    const f = selectedFile(s)
    if (f === null) {
      dispatch({ type: 'notice', text: 'select a file in Files (or Transfers) first: Tab moves between panes', level: 'warn', at: Date.now() })
      return
    }
    const row = s.focus === 'files' ? s.files.rows[s.sel.files - s.files.offset] : undefined
    const m = method === 'pin' && row?.pinned === true ? 'unpin' : method
    const verb = { open: 'restoring', pin: 'pinning', unpin: 'unpinning', evict: 'evicting' }[m]
    dispatch({ type: 'notice', text: `${verb} ${f.rel}…`, level: 'info', at: Date.now() })
    try {
      await source.call(m, { path: f.path })
      const done = { open: 'restored', pin: 'pinned', unpin: 'unpinned', evict: 'evicting' }[m]
      dispatch({ type: 'notice', text: `${done} ${f.rel}${m === 'evict' ? ' (becomes a stub once verified)' : ''}`, level: 'info', at: Date.now(), log: m !== 'open' })
    } catch (err) {
      dispatch({ type: 'notice', text: `${m} ${f.rel}: ${errorLine(err)}`, level: 'error', at: Date.now(), log: true })
    }
    setFilesTick(t => t + 1)
  }

  // Keys act on the state as of the keys before them: stateRef holds the rendered state with the
  // keys dispatched since applied, so "/" then "o" read in one go (or before React renders) types
  // "o" into the filter instead of opening the selected file.
  useInput((input, key) => {
    if (key.ctrl && input === 'c') { quit(); return }
    const first: KeyInput = { input, tab: key.tab, shift: key.shift, upArrow: key.upArrow, downArrow: key.downArrow, leftArrow: key.leftArrow, rightArrow: key.rightArrow, pageUp: key.pageUp, pageDown: key.pageDown, return: key.return, escape: key.escape, backspace: key.backspace, delete: key.delete }
    for (const k of keystrokes(first)) {
      const s = stateRef.current
      if (s.filterDraft === null && !s.help) {
        if (k.input === 'q') { quit(); return }
        if (k.input === 'o') { void act('open', s); continue }
        if (k.input === 'p') { void act('pin', s); continue }
        if (k.input === 'e') { void act('evict', s); continue }
      }
      const a: Action = { type: 'key', key: k, page: screenLayout(s, size.columns, size.rows).body }
      stateRef.current = reducer(s, a)
      dispatch(a)
    }
  }, { isActive: isRawModeSupported })

  function quit (): void {
    if (o.mode === 'embedded') {
      dispatch({ type: 'stopping' })
      o.onQuit('stop')
    } else {
      o.onQuit('quit')
      app.exit()
    }
  }

  return { state, size }
}
