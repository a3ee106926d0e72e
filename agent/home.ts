// Where a dustbox home (identity, block store, later config and index) lives:
// --home DIR, else $DUSTBOX_HOME, else $XDG_STATE_HOME/dustbox, else ~/.local/state/dustbox.

import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { AgentError, AgentCodes } from './errors.js'

export function resolveHome (flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? env.DUSTBOX_HOME
  if (chosen !== undefined) {
    if (chosen.trim() === '' || chosen.includes('\0')) throw new AgentError(AgentCodes.HOME_INVALID, 'home directory must be a non-empty path')
    return resolve(chosen)
  }
  const state = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state')
  return resolve(state, 'dustbox')
}
