// Measures one timed benchmark phase: wall time, CPU time of the whole process (user + sys, worker
// threads included), and peak RSS. Peak RSS = max of a periodic process.memoryUsage.rss() sampler and
// the kernel high-water mark (process.resourceUsage().maxRSS), which is reset before the phase through
// /proc/self/clear_refs when the kernel allows it. Block workers are threads of this process, so
// both figures cover them. Optionally records a main-thread CPU profile of the phase.

import { writeFileSync, promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { Session } from 'node:inspector/promises'

export interface Measured<T> {
  readonly value: T
  readonly seconds: number
  readonly cpuSeconds: number
  readonly peakRssBytes: number
  /** False when the high-water mark could not be reset: peak is then the sampler's alone. */
  readonly hwmReset: boolean
}

/** Reset the kernel's peak-RSS mark of this process to its current RSS (Linux >= 4.0). */
function resetPeakRss (): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5')
    return true
  } catch {
    return false
  }
}

export interface MeasureOptions {
  sampleMs: number
  /** Directory for `<name>.main.cpuprofile`, or '' for none. */
  profileDir?: string
  name: string
}

export async function measure<T> (opts: MeasureOptions, fn: () => Promise<T>): Promise<Measured<T>> {
  const hwmReset = resetPeakRss()
  let peak = process.memoryUsage.rss()
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, opts.sampleMs)
  const session = opts.profileDir ? await startProfile() : null
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let value: T
  try {
    value = await fn()
  } finally {
    clearInterval(timer)
  }
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  if (session !== null) await stopProfile(session, join(opts.profileDir!, `${opts.name}.main.cpuprofile`))
  peak = Math.max(peak, process.memoryUsage.rss())
  if (hwmReset) peak = Math.max(peak, process.resourceUsage().maxRSS * 1024)
  return { value, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: peak, hwmReset }
}

async function startProfile (): Promise<Session> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 500 })
  await session.post('Profiler.start')
  return session
}

async function stopProfile (session: Session, path: string): Promise<void> {
  const { profile } = await session.post('Profiler.stop')
  session.disconnect()
  await fsp.writeFile(path, JSON.stringify(profile))
}
