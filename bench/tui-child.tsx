// A dashboard (or, with --reference, a bare event subscriber) attached to an agent's control socket,
// for the tui bench. The dashboard renders through Ink into a fake 120×40 terminal whose output is
// only counted. On SIGTERM it prints one JSON line: its CPU time, frames drawn, bytes written,
// events received and peak RSS, then exits.

import { EventEmitter } from 'node:events'
import { ControlClient } from '../agent/control-client.js'
import { Dashboard } from '../tui/dashboard.js'
import { ControlSource } from '../tui/source.js'

class CountingStdout extends EventEmitter {
  readonly columns = 120
  readonly rows = 40
  readonly isTTY = true
  bytes = 0
  write = (s: string): boolean => { this.bytes += Buffer.byteLength(s); return true }
}

class QuietStdin extends EventEmitter {
  readonly isTTY = true
  setEncoding (): void {}
  setRawMode (): void {}
  resume (): void {}
  pause (): void {}
  ref (): void {}
  unref (): void {}
  read (): null { return null }
}

const home = process.argv[2]
const reference = process.argv.includes('--reference')
const t0 = process.cpuUsage()
let events = 0
let finish: () => Promise<{ renders: number, bytes: number }>

if (reference) {
  const c = await ControlClient.connect(home)
  await c.subscribe(null, () => { events++ })
  finish = async () => { await c.close(); return { renders: 0, bytes: 0 } }
} else {
  const source = new ControlSource(home)
  await source.ready()
  source.onEvent(() => { events++ })
  const out = new CountingStdout()
  const d = new Dashboard({ source, stdout: out as unknown as NodeJS.WriteStream, stdin: new QuietStdin() as unknown as NodeJS.ReadStream, stderr: out as unknown as NodeJS.WriteStream })
  d.ready()
  finish = async () => { await d.close(); await source.close(); return { renders: d.renders, bytes: out.bytes } }
}
process.stdout.write('ready\n')
process.once('SIGTERM', () => {
  void finish().then(r => {
    const cpu = process.cpuUsage(t0)
    process.stdout.write(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, events, ...r, peakRss: process.resourceUsage().maxRSS * 1024 }) + '\n')
    process.exit(0)
  })
})
