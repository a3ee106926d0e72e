#!/usr/bin/env node
// dustbox command-line entry point: runs the compiled CLI (npm ci / npm run build compile it to dist/).
import { existsSync } from 'node:fs'

const cli = new URL('../dist/agent/cli.js', import.meta.url)
if (!existsSync(cli)) {
  process.stderr.write('INTERNAL: dustbox is not built yet: run "npm run build" in its folder\n')
  process.exit(1)
}
// Output piped into a reader that left (`dustbox status | head`): stop quietly, as other tools do.
for (const s of [process.stdout, process.stderr]) s.on('error', err => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); throw err })
// React (the dashboard) in its production build unless asked otherwise: the development build is several times slower.
process.env.NODE_ENV ??= 'production'
const { main } = await import(cli.href)
process.exitCode = await main(process.argv)
