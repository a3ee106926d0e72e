// Ledger: the other direction of the accounting, bytes that each peer holds for me (the ShardStore
// knows what I hold for them). Two figures per peer: `stored`, my own tally from acknowledged PUTs
// (new shards) minus acknowledged DELETEs, and `reported`, the peer's latest own figure (from PUT,
// DELETE and SPACE replies). The agent compares them and enforces give ≥ take. Saved atomically to
// ledger.json in the state directory (debounced, and at close).

import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { fsError } from './errors.js'

export const LEDGER_FILE = 'ledger.json'
export const LEDGER_SAVE_DELAY_MS = 1000
const MAX_LEDGER_BYTES = 16 * 1024 * 1024
const MAX_PEERS = 100_000

export interface LedgerEntry { stored: number, reported: number, updatedAt: number }

export class Ledger {
  private readonly entries = new Map<string, LedgerEntry>()
  private timer: NodeJS.Timeout | null = null
  private saving: Promise<void> = Promise.resolve()

  constructor (private readonly dir: string | null, private readonly saveDelayMs = LEDGER_SAVE_DELAY_MS) {}

  async load (): Promise<void> {
    if (this.dir === null) return
    const path = join(this.dir, LEDGER_FILE)
    let text: string
    try {
      const st = await fsp.stat(path)
      if (st.size > MAX_LEDGER_BYTES) return
      text = await fsp.readFile(path, 'utf8')
    } catch { return }
    try {
      const j = JSON.parse(text) as { v?: unknown, peers?: Record<string, Partial<LedgerEntry>> }
      if (j.v !== 1 || typeof j.peers !== 'object' || j.peers === null) return
      for (const [id, e] of Object.entries(j.peers).slice(0, MAX_PEERS)) {
        if (!/^[0-9a-f]{64}$/.test(id)) continue
        const ok = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0
        if (ok(e.stored) && ok(e.reported) && ok(e.updatedAt)) this.entries.set(id, { stored: e.stored, reported: e.reported, updatedAt: e.updatedAt })
      }
    } catch {}
  }

  get (keyHex: string): LedgerEntry {
    return { ...(this.entries.get(keyHex) ?? { stored: 0, reported: 0, updatedAt: 0 }) }
  }

  all (): Map<string, LedgerEntry> {
    return new Map([...this.entries].map(([k, v]) => [k, { ...v }]))
  }

  /** Record a change: `delta` to my tally (new shard +size, deleted −size), and the peer's report. */
  record (keyHex: string, delta: number, reported: bigint | null): void {
    const e = this.entries.get(keyHex) ?? { stored: 0, reported: 0, updatedAt: 0 }
    e.stored = Math.max(0, e.stored + delta)
    if (reported !== null) e.reported = Number(reported > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : reported)
    e.updatedAt = Date.now()
    if (this.entries.size < MAX_PEERS || this.entries.has(keyHex)) this.entries.set(keyHex, e)
    this.scheduleSave()
  }

  private scheduleSave (): void {
    if (this.dir === null || this.timer !== null) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.saving = this.saving.then(async () => await this.save()).catch(() => {})
    }, this.saveDelayMs)
    this.timer.unref()
  }

  async save (): Promise<void> {
    if (this.dir === null) return
    const peers: Record<string, LedgerEntry> = {}
    for (const [k, v] of this.entries) peers[k] = v
    const path = join(this.dir, LEDGER_FILE)
    try {
      await writeFileAtomic(path, Buffer.from(JSON.stringify({ v: 1, peers }) + '\n'), { mode: 0o600 })
    } catch (err) { throw fsError('save ledger', path, err) }
  }

  async close (): Promise<void> {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    await this.saving
    await this.save()
  }
}
