// `dustbox tui` (attach the dashboard to the running agent of a home) and the embedded dashboard of
// `dustbox start` on a terminal. Both go through the control socket, never agent internals.

import { AgentError, AgentCodes } from '../agent/errors.js'
import { Dashboard } from './dashboard.js'
import { ControlSource } from './source.js'

/** True when both ends are a terminal (the dashboard needs raw keys and cursor movement). */
export function isInteractive (): boolean {
  return process.stdout.isTTY === true && process.stdin.isTTY === true
}

/** Attach to the agent of `home` until the user quits; the agent keeps running. */
export async function runTui (home: string): Promise<void> {
  if (!isInteractive()) throw new AgentError(AgentCodes.USAGE, 'the dashboard needs a terminal; use "dustbox status" (or --json) instead')
  const source = new ControlSource(home)
  await source.ready() // NOT_RUNNING: a clear error and exit code from the CLI
  const d = new Dashboard({ source, mode: 'attached' })
  try {
    d.ready()
    await d.done
  } finally {
    await d.close()
    await source.close()
  }
}

/**
 * The dashboard over an agent this process runs: shown until the agent stops or the user asks it
 * to (q / Ctrl-C call `stop` through the control API, as `dustbox stop` would).
 */
export async function embedDashboard (home: string, stopped: Promise<void>, requestStop: () => void): Promise<void> {
  const source = new ControlSource(home)
  await source.ready()
  const d = new Dashboard({ source, mode: 'embedded' })
  try {
    d.ready()
    const how = await Promise.race([d.done, stopped.then(() => 'stopped' as const)])
    if (how === 'stop' || how === 'quit') {
      try { await source.call('stop', {}) } catch { requestStop() }
    }
  } finally {
    await d.close()
    await source.close()
  }
}
