// The agent's reachability settings for its NetNode (docs/reachability.md §4-§5): relaying is opt-in
// (--relay RATE or settings.json `relay`), and even then off while NetworkManager says the link is
// metered, unless --relay-on-metered. Tests shrink the timers through DUSTBOX_TUNABLES and may tap the
// relayed bytes (DUSTBOX_RELAY_TAP, a file every forwarded chunk is appended to) to check that a relay
// only ever sees ciphertext.

import { execFile } from 'node:child_process'
import { appendFileSync } from 'node:fs'
import type { ReachOptions } from '../net/reach.js'
import type { AgentConfig } from './config.js'
import { pick } from './agent-control.js'

export const METERED_CHECK_MS = 2_000

/** Whether NetworkManager calls any active device metered; null when it cannot say (no nmcli). */
export async function isMetered (timeoutMs = METERED_CHECK_MS): Promise<boolean | null> {
  return await new Promise(resolve => {
    execFile('nmcli', ['-t', '-f', 'GENERAL.METERED', 'device', 'show'], { timeout: timeoutMs, maxBuffer: 64 * 1024 }, (err, stdout) => {
      if (err !== null) { resolve(null); return }
      resolve(String(stdout).split('\n').some(l => /:yes\b/.test(l)))
    })
  })
}

export async function reachOptions (c: AgentConfig, env: NodeJS.ProcessEnv = process.env): Promise<{ options: ReachOptions, note: string | null }> {
  const rate = c.relayRate ?? 0
  let enabled = rate > 0
  let note: string | null = null
  if (enabled && c.relayOnMetered !== true && await isMetered() === true) {
    enabled = false
    note = 'relaying for other peers is off: the network link is metered (--relay-on-metered to relay anyway)'
  }
  const tapFile = env.DUSTBOX_RELAY_TAP
  const tap = tapFile !== undefined && tapFile !== '' ? (data: Buffer) => { appendFileSync(tapFile, data) } : undefined
  return {
    options: {
      relay: { enabled, rateBytes: rate > 0 ? rate : undefined, ...(tap !== undefined ? { tap } : {}) },
      ...pick(c.tunables, ['indirectAfterMs', 'upgradeIntervalMs', 'punchWindowMs'])
    },
    note
  }
}
