// Text formatting for the dashboard: sizes, rates, durations, progress bars, and cutting or padding
// to a terminal width (by display columns: CJK and emoji take two, combining marks none).

import stringWidth from 'string-width'

const UNITS = ['B', 'K', 'M', 'G', 'T', 'P']

/** 0 → "0 B", 1536 → "1.5K", 3.2e9 → "3.0G" (binary units, at most 5 columns). */
export function bytes (n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?'
  if (n < 1024) return `${Math.round(n)} B`
  let v = n
  let u = 0
  while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++ }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)}${UNITS[u]}`
}

/** Bytes per second as MB/s (decimal, as throughput is usually quoted). */
export function rate (bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) return '0.0 MB/s'
  const mb = bytesPerSecond / 1e6
  return `${mb >= 100 ? mb.toFixed(0) : mb.toFixed(1)} MB/s`
}

/** 75 → "1m15s", 7300 → "2h01m", 0.4 → "0s"; Infinity/NaN → "--". */
export function duration (seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--'
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`
}

/** A bar of `width` cells: █ for done, ░ for the rest. */
export function bar (done: number, total: number, width: number): string {
  const w = Math.max(0, Math.floor(width))
  const f = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1
  const full = Math.round(f * w)
  return '█'.repeat(full) + '░'.repeat(w - full)
}

export function percent (done: number, total: number): string {
  const f = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1
  return `${Math.floor(f * 100)}%`.padStart(4)
}

// Printable ASCII: one column per character, no need to ask string-width (which is the costliest
// part of drawing a frame otherwise).
// eslint-disable-next-line no-control-regex
const ASCII = /^[\x20-\x7e]*$/

/** Display width of a string in terminal columns. */
export function width (s: string): number {
  return ASCII.test(s) ? s.length : stringWidth(s)
}

/** Results of cut(), by width and text: rows repeat from frame to frame. Cleared when full. */
const CUT_CACHE = new Map<string, string>()
export const CUT_CACHE_MAX = 20_000

/** Cut `s` to at most `w` columns, ending in "…" when cut. Control characters are shown as "?". */
export function cut (s: string, w: number): string {
  if (w <= 0) return ''
  if (ASCII.test(s)) return s.length <= w ? s : s.slice(0, Math.max(0, w - 1)) + '…'
  const key = `${w}\u0000${s}`
  const hit = CUT_CACHE.get(key)
  if (hit !== undefined) return hit
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
  let out: string
  if (stringWidth(clean) <= w) {
    out = clean
  } else {
    out = ''
    let used = 0
    for (const ch of clean) {
      const cw = stringWidth(ch)
      if (used + cw > w - 1) break
      out += ch
      used += cw
    }
    out += '…'
  }
  if (CUT_CACHE.size >= CUT_CACHE_MAX) CUT_CACHE.clear()
  CUT_CACHE.set(key, out)
  return out
}

/** Cut the start of a path rather than its end: "…/photos/2024/beach.jpg". */
export function cutLeft (s: string, w: number): string {
  if (width(s) <= w) return cut(s, w)
  if (ASCII.test(s)) return '…' + s.slice(s.length - (w - 1))
  const chars = [...s]
  let out = ''
  let used = 0
  for (let i = chars.length - 1; i >= 0; i--) {
    const cw = stringWidth(chars[i])
    if (used + cw > w - 1) break
    out = chars[i] + out
    used += cw
  }
  return cut('…' + out, w)
}

/** Cut or pad with spaces to exactly `w` columns. */
export function fit (s: string, w: number, align: 'left' | 'right' = 'left'): string {
  const c = cut(s, w)
  const pad = ' '.repeat(Math.max(0, w - width(c)))
  return align === 'left' ? c + pad : pad + c
}

/** Short peer or identity id: the first 8 hex digits. */
export function short (id: string): string {
  return id.slice(0, 8)
}
