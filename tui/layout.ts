// Layout: how many rows each pane gets for a terminal size and the lengths of the lists. One column
// below WIDE_COLUMNS (80×24 fits: header, four panes, health and key lines), two columns at or above
// it (folders and files left, transfers and peers right). The frame is kept one line shorter than
// the terminal so that Ink redraws in place instead of clearing the screen.

import type { Pane } from './state.js'

export const WIDE_COLUMNS = 160
export const MIN_COLUMNS = 40
export const MIN_ROWS = 16
/**
 * Lines that are not pane bodies: two header lines, health, key line, and two spare (Ink ends the
 * frame with a newline; a frame as tall as the terminal scrolls and cannot be redrawn in place).
 */
export const CHROME_ROWS = 6
/**
 * Share of the terminal left above the frame for the event log: <Static> prints finished items
 * there, so they scroll up like a log (and stay in the terminal's scrollback).
 */
export const LOG_SHARE = 0.2
export const LOG_MIN_ROWS = 2

export interface Layout {
  readonly columns: number
  readonly rows: number
  readonly wide: boolean
  /** Width of the left column (all of it when not wide) and of the right one (0 when not wide). */
  readonly left: number
  readonly right: number
  /** Body rows per pane (its title line not counted). */
  readonly body: Readonly<Record<Pane, number>>
  /** Terminal lines left above the frame for the log. */
  readonly logRows: number
}

export function layout (columns: number, rows: number, n: { folders: number, transfers: number, peers: number }): Layout {
  const cols = Math.max(MIN_COLUMNS, Math.floor(columns) || 80)
  const rws = Math.max(MIN_ROWS, Math.floor(rows) || 24)
  const logRows = Math.max(LOG_MIN_ROWS, Math.min(Math.floor(rws * LOG_SHARE), rws - CHROME_ROWS - 8))
  const avail = rws - CHROME_ROWS - logRows
  if (cols >= WIDE_COLUMNS) {
    const left = Math.floor((cols - 1) / 2)
    const right = cols - 1 - left
    const colBody = avail - 2 // two titles per column
    const folders = clamp(n.folders, 1, Math.min(8, colBody - 2))
    const transfers = clamp(n.transfers, 1, Math.max(1, Math.floor(colBody / 2)))
    return { columns: cols, rows: rws, wide: true, left, right, body: { folders, files: colBody - folders, transfers, peers: colBody - transfers }, logRows }
  }
  const body = avail - 4 // four titles
  const roomy = rws >= 30
  let folders = clamp(n.folders, 1, 3)
  let transfers = clamp(n.transfers, 1, roomy ? 4 : 2)
  let peers = clamp(n.peers, 1, roomy ? 8 : 3)
  const minFiles = 2
  // Shrink the others, peers first, until files gets its minimum.
  while (folders + transfers + peers + minFiles > body && peers > 1) peers--
  while (folders + transfers + peers + minFiles > body && transfers > 1) transfers--
  while (folders + transfers + peers + minFiles > body && folders > 1) folders--
  const files = Math.max(1, body - folders - transfers - peers)
  return { columns: cols, rows: rws, wide: false, left: cols, right: 0, body: { folders, files, transfers, peers }, logRows }
}

function clamp (v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(v, Math.max(lo, hi)))
}

/** First row to show so that `sel` is visible in a window of `h` rows over `n` items. */
export function scrollTop (sel: number, h: number, n: number): number {
  if (n <= h) return 0
  return Math.max(0, Math.min(sel - Math.floor(h / 2), n - h))
}
