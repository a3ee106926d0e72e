// Screen: the whole live dashboard as a pure function of the state and the terminal size: header,
// folders, files, transfers, peers, health line and key line (or the help overlay). The event log
// is not here: it is printed above by <Static> (app.tsx).

import { Box, Text } from 'ink'
import { layout, scrollTop, type Layout } from '../layout.js'
import type { DashState } from '../state.js'
import { fileRow, folderRow, footerLine, headerLines, healthLevel, healthLine, paneTitle, peerRow, transferRow, KEY_HELP } from '../rows.js'
import { fit } from '../format.js'
import { Pane } from './pane.js'

export interface ScreenProps {
  readonly state: DashState
  readonly columns: number
  readonly rows: number
  /** Clock for uptime and audit ages (tests pass a fixed one). */
  readonly now: number
}

export function screenLayout (s: DashState, columns: number, rows: number): Layout {
  return layout(columns, rows, { folders: s.status?.folders.length ?? 0, transfers: s.transfers.length, peers: s.status?.peers.length ?? 0 })
}

export function Screen ({ state: s, columns, rows, now }: ScreenProps): React.JSX.Element {
  const L = screenLayout(s, columns, rows)
  const [h1, h2] = headerLines(s, L.columns, now)
  const hl = healthLevel(s)
  if (s.help) return <Help width={L.columns} height={L.rows - 1} />
  const leftW = L.left
  const rightW = L.wide ? L.right : L.left
  const folders = folderPane(s, L, leftW)
  const files = filesPane(s, L, leftW)
  const transfers = transfersPane(s, L, rightW)
  const peers = peersPane(s, L, rightW, now)
  return (
    <Box flexDirection='column' width={L.columns}>
      <Text bold>{h1}</Text>
      <Text dimColor={!s.connected}>{h2}</Text>
      {L.wide
        ? (
          <Box flexDirection='row'>
            <Box flexDirection='column' width={leftW}>{folders}{files}</Box>
            <Box width={1}><Text> </Text></Box>
            <Box flexDirection='column' width={rightW}>{transfers}{peers}</Box>
          </Box>
          )
        : <Box flexDirection='column'>{folders}{files}{transfers}{peers}</Box>}
      <Text color={hl === 'bad' ? 'red' : hl === 'warn' ? 'yellow' : 'green'}>{healthLine(s, L.columns)}</Text>
      <Text dimColor={s.notice === null && s.filterDraft === null} color={s.notice?.level === 'error' ? 'red' : undefined}>{footerLine(s, L.columns)}</Text>
    </Box>
  )
}

function folderPane (s: DashState, L: Layout, w: number): React.JSX.Element {
  const list = s.status?.folders ?? []
  const h = L.body.folders
  const top = scrollTop(s.sel.folders, h, list.length)
  return (
    <Pane
      title={paneTitle('Folders', `${list.length}`, w)} focused={s.focus === 'folders'} width={w} height={h}
      rows={list.slice(top, top + h).map(f => folderRow(f, w))} selected={s.sel.folders - top}
      empty={s.status === null ? '' : 'no folder watched: this node only donates space'}
    />
  )
}

function filesPane (s: DashState, L: Layout, w: number): React.JSX.Element {
  const h = L.body.files
  const f = s.files
  const top = scrollTop(s.sel.files, h, f.total)
  const rows = []
  for (let i = top; i < top + h && i < f.total; i++) {
    const r = f.rows[i - f.offset]
    rows.push(r === undefined ? fit('…', w) : fileRow(r, w))
  }
  const folder = f.folder === null ? '' : f.folder
  const detail = `${f.total}${f.filter !== '' ? ` matching "${f.filter}"` : ''}${folder !== '' ? ` in ${folder}` : ''}`
  const colors = rows.map((_, i) => {
    const r = f.rows[top + i - f.offset]
    return r?.state === 'failed' ? 'red' : r?.state === 'uploading' || r?.state === 'hydrating' ? 'yellow' : undefined
  })
  return (
    <Pane
      title={paneTitle('Files', detail, w)} focused={s.focus === 'files'} width={w} height={h}
      rows={rows} selected={s.sel.files - top} colors={colors}
      empty={!f.loaded ? 'loading…' : f.filter !== '' ? 'no file matches the filter' : 'no files yet'}
    />
  )
}

function transfersPane (s: DashState, L: Layout, w: number): React.JSX.Element {
  const h = L.body.transfers
  const list = s.transfers
  const top = scrollTop(s.sel.transfers, h, list.length)
  const up = list.filter(t => t.direction === 'up').length
  return (
    <Pane
      title={paneTitle('Transfers', `${up} up, ${list.length - up} down`, w)} focused={s.focus === 'transfers'} width={w} height={h}
      rows={list.slice(top, top + h).map(t => transferRow(t, w))} selected={s.sel.transfers - top}
      empty='idle'
    />
  )
}

function peersPane (s: DashState, L: Layout, w: number, now: number): React.JSX.Element {
  const h = L.body.peers
  const list = s.status?.peers ?? []
  const top = scrollTop(s.sel.peers, h, list.length)
  const online = list.filter(p => p.connected).length
  return (
    <Pane
      title={paneTitle('Peers', `${online} online of ${list.length}`, w)} focused={s.focus === 'peers'} width={w} height={h}
      rows={list.slice(top, top + h).map(p => peerRow(p, w, now))} selected={s.sel.peers - top}
      colors={list.slice(top, top + h).map(p => p.connected ? undefined : 'gray')}
      empty={s.status === null ? '' : 'no peers yet (looking in the DHT)'}
    />
  )
}

function Help ({ width, height }: { width: number, height: number }): React.JSX.Element {
  const lines = [fit('dustbox dashboard — keys', width), fit('', width), ...KEY_HELP.map(([k, v]) => fit(`  ${k.padEnd(12)} ${v}`, width))]
  lines.push(fit('', width), fit('Press ? or Esc to close.', width))
  return (
    <Box flexDirection='column' width={width}>
      {lines.slice(0, height).map((l, i) => <Text key={i} bold={i === 0}>{l}</Text>)}
    </Box>
  )
}
