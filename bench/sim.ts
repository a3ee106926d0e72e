// Simulation entry point (`npm run sim -- NAME [flags]`): dispatches to one simulation by name. An
// unknown or missing name prints one USAGE line to stderr and exits 2. Each simulation prints its
// tables to stdout and ends with one JSON line `{"sim":"NAME",...}`; progress goes to stderr.

const SIMS = ['durability'] as const
type SimName = typeof SIMS[number]

function usage (why: string): never {
  process.stderr.write(`USAGE: npm run sim -- ${SIMS.join('|')} [flags]  (${why})\n`)
  process.exit(2)
}

async function main (): Promise<void> {
  const [name, ...rest] = process.argv.slice(2)
  if (name === undefined) usage('no simulation named')
  if (!(SIMS as readonly string[]).includes(name)) usage(`unknown simulation ${JSON.stringify(name)}`)
  switch (name as SimName) {
    case 'durability': {
      const { runDurabilitySim } = await import('./sim-durability.js')
      process.exitCode = await runDurabilitySim(rest)
      break
    }
  }
}

main().catch(err => {
  process.stderr.write(`sim failed: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
