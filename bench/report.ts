// Output formatting shared by the benches: a plain-text table with aligned columns, number
// formatting, and the final one-line JSON summary (always the last line of stdout).

export const MB = 1e6
export const MiB = 1024 * 1024

/** A number rounded to `digits` decimals, or null (JSON) when absent or not finite. */
export function round (x: number | null | undefined, digits = 1): number | null {
  if (x === null || x === undefined || !Number.isFinite(x)) return null
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** Table cell text for a number ('-' when absent). */
export function cell (x: number | null | undefined, digits = 1): string {
  const r = round(x, digits)
  return r === null ? '-' : r.toFixed(digits)
}

/** Render rows under a header; numeric-looking cells are right-aligned. */
export function table (header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const numeric = /^[-+]?[\d.]+(x|%)?$|^-$/
  const line = (r: readonly string[]): string => r.map((c, i) => numeric.test(c) && i > 0 ? c.padStart(widths[i]) : c.padEnd(widths[i])).join('  ').trimEnd()
  return [line(header), widths.map(w => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

export function printJsonLine (obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n')
}
