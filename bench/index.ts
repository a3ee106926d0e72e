// Benchmark entry point (`npm run bench -- [NAME...] [--flag=value...]`): runs the named benches,
// or every known bench when none is named. An unknown name or flag prints one USAGE line, exit 2.
// Benches print their table to stdout and end with a one-line JSON summary; progress goes to stderr.

const KNOWN = ['ingest', 'transport', 'dht', 'erasure', 'audit', 'e2e', 'repair', 'tui', 'restore', 'sync', 'reach', 'igd'] as const
type BenchName = typeof KNOWN[number]

async function load (name: BenchName): Promise<() => Promise<void>> {
  switch (name) {
    case 'ingest': return (await import('./ingest.js')).runIngestBench
    case 'transport': return (await import('./transport.js')).runTransportBench
    case 'dht': return (await import('./dht.js')).runDhtBench
    case 'erasure': return (await import('./erasure.js')).runErasureBench
    case 'audit': return (await import('./audit.js')).runAuditBench
    case 'e2e': return (await import('./e2e.js')).runE2eBench
    case 'repair': return (await import('./repair.js')).runRepairBench
    case 'tui': return (await import('./tui.js')).runTuiBench
    case 'restore': return (await import('./restore.js')).runRestoreBench
    case 'sync': return (await import('./sync.js')).runSyncBench
    case 'reach': return (await import('./reach.js')).runReachBench
    case 'igd': return (await import('./igd.js')).runIgdBench
  }
}

function usage (flagsUsage: string, why?: string): never {
  process.stderr.write(`USAGE: npm run bench -- [${KNOWN.join('|')}]... ${flagsUsage}${why ? `  (${why})` : ''}\n`)
  process.exit(2)
}

async function main (): Promise<void> {
  let config: typeof import('./config.js')
  try {
    config = await import('./config.js')
  } catch (err) {
    usage('[--flag=value]...', (err as Error).message)
  }
  const unknown = config.BENCH_NAMES.filter(n => !(KNOWN as readonly string[]).includes(n))
  if (unknown.length > 0) usage(config.FLAGS_USAGE, `unknown bench ${unknown.join(', ')}`)
  if (config.UNKNOWN_FLAGS.length > 0) usage(config.FLAGS_USAGE, `unknown flag ${config.UNKNOWN_FLAGS.join(', ')}`)
  const names = config.BENCH_NAMES.length > 0 ? config.BENCH_NAMES as BenchName[] : [...KNOWN]
  for (const name of names) await (await load(name))()
}

main().catch(err => {
  process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
