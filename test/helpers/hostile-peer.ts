// A storage peer that misbehaves on purpose, for the fault tests: the real `dustbox` CLI with its
// shard store patched before it starts, chosen by DUSTBOX_HOSTILE:
// - nodata: stores shards (PUT works) and says it has everything (HAS), but never answers a GET
//   or an AUDIT (a disk that hangs, or a freeloader);
// - slow: answers GET and AUDIT only after DUSTBOX_HOSTILE_DELAY_MS (default 20 s): a slowloris.
// Run by LocalSwarm.startAgent({ bin }) with the same arguments as bin/dustbox.js.

import { ShardStore } from '../../net/shard-store.js'

const mode = process.env.DUSTBOX_HOSTILE
const delay = Number(process.env.DUSTBOX_HOSTILE_DELAY_MS ?? 20_000)
const proto = ShardStore.prototype as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>
const realGet = proto.get
const realAudit = proto.audit
const never = async (): Promise<never> => await new Promise<never>(() => {})
const later = async <T>(p: () => Promise<T>): Promise<T> => { await new Promise(resolve => setTimeout(resolve, delay)); return await p() }

if (mode === 'nodata') {
  proto.get = never
  proto.audit = never
  proto.has = async function (_owner: unknown, ids: unknown) { return (ids as unknown[]).map(() => true) }
} else if (mode === 'slow') {
  proto.get = async function (this: unknown, ...a: unknown[]) { return await later(async () => await realGet.apply(this, a)) }
  proto.audit = async function (this: unknown, ...a: unknown[]) { return await later(async () => await realAudit.apply(this, a)) }
} else {
  process.stderr.write(`hostile-peer: DUSTBOX_HOSTILE must be nodata or slow, not ${String(mode)}\n`)
  process.exit(2)
}

process.env.NODE_ENV ??= 'production'
const { main } = await import('../../agent/cli.js')
process.exitCode = await main(process.argv)
