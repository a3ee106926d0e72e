// Process figures and lifetime for the benches that run agents as child processes: peak RSS and CPU
// seconds read from /proc, whether a child still runs, and killing a swarm (and removing its files)
// when the bench itself is interrupted.

import { promises as fsp, readFileSync } from 'node:fs'
import type { LocalSwarm, SwarmChild } from '../agent/swarm.js'

/** Peak RSS (kernel high-water mark) of a live process, bytes; null once it is gone. */
export function vmHwm (pid: number | undefined): number | null {
  if (pid === undefined) return null
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? null : Number(m[1]) * 1024
  } catch { return null }
}

/** User + system CPU seconds of a live process so far (/proc/PID/stat, clock ticks of 1/100 s); null once gone. */
export function cpuSeconds (pid: number | undefined): number | null {
  if (pid === undefined) return null
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(f[11]) + Number(f[12])) / 100
  } catch { return null }
}

export const alive = (c: SwarmChild): boolean => c.proc.exitCode === null && c.proc.signalCode === null

/** On SIGINT/SIGTERM: kill the swarm's children, remove `base`, exit 130. Returns the function that unhooks it. */
export function killOnSignal (swarm: LocalSwarm, base: string): () => void {
  const onSignal = (): void => {
    for (const c of swarm.children) if (alive(c)) c.proc.kill('SIGKILL')
    void fsp.rm(base, { recursive: true, force: true }).finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  return () => {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
}
