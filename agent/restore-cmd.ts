// `dustbox restore --to DIR [--hydrate]`: bring every folder back on a machine that has only the key
// (imported with `dustbox key import` or `dustbox setup --import-backup`). Uses the running agent
// of this home when there is one, else starts one in this process for the restore. The restored
// folders are added to settings.json, so the next `dustbox start` watches them.

import { resolve } from 'node:path'
import { Agent } from './agent.js'
import { configFromFlags, type StartFlags } from './start-cmd.js'
import { ControlClient } from './control-client.js'
import { loadSettings, saveSettings, SETTINGS_VERSION } from './settings.js'
import { AgentError, AgentCodes } from './errors.js'
import type { RestoreResult } from './restore.js'

/** A pointer just put, or a DHT still filling its routing table: ask again this many times. */
export const RESTORE_FIND_ATTEMPTS = 12
export const RESTORE_FIND_GAP_MS = 5_000

export interface RestoreFlags extends StartFlags {
  to: string
  hydrate?: boolean
  json?: boolean
}

async function viaAgent (agent: Agent, to: string, hydrate: boolean, err: (l: string) => void): Promise<RestoreResult> {
  const attempts = Number(process.env.DUSTBOX_RESTORE_ATTEMPTS ?? RESTORE_FIND_ATTEMPTS)
  for (let i = 1; ; i++) {
    try {
      return await agent.restore({ to, hydrate })
    } catch (e) {
      if (!(e instanceof AgentError) || e.code !== AgentCodes.INDEX_NOT_FOUND || i >= attempts) throw e
      err(`${e.message}; asking again (${i}/${attempts})`)
      await new Promise(resolve => setTimeout(resolve, RESTORE_FIND_GAP_MS))
    }
  }
}

export async function restoreCmd (home: string, flags: RestoreFlags, io: { out: (l: string) => void, err: (l: string) => void }): Promise<number> {
  const to = resolve(flags.to)
  let result: RestoreResult
  const client = await ControlClient.connect(home, { timeoutMs: 3000 }).catch(() => null)
  if (client !== null) {
    try {
      result = await client.call<RestoreResult>('restore', { to, hydrate: flags.hydrate === true }, { timeoutMs: 7 * 24 * 3600_000 })
    } finally { await client.close() }
  } else {
    const config = await configFromFlags(home, { ...flags, folder: [] })
    const agent = new Agent(config)
    try {
      await agent.ready()
      if (flags.json !== true) io.out(`looking up the folder index of ${agent.status().identity.slice(0, 16)}… in the DHT`)
      result = await viaAgent(agent, to, flags.hydrate === true, io.err)
    } finally {
      await agent.close()
    }
  }
  // The restored folders are this home's folders from now on.
  const s = (await loadSettings(home)) ?? { version: SETTINGS_VERSION }
  const folders = [...new Set([...(s.folders ?? []), ...result.folders])]
  await saveSettings(home, { ...s, folders })
  if (flags.json === true) io.out(JSON.stringify(result))
  else {
    io.out(`restored ${result.files} file${result.files === 1 ? '' : 's'}${flags.hydrate === true ? ` (${result.hydrated} hydrated)` : ' as .f stubs'} into ${result.folders.length} folder${result.folders.length === 1 ? '' : 's'} under ${to} (index root ${result.seq})`)
    for (const f of result.folders) io.out(`  ${f}`)
    for (const r of result.refused.slice(0, 100)) io.err(`refused  ${r.entry}: ${r.error}`)
    if (result.refused.length > 100) io.err(`… and ${result.refused.length - 100} more refused`)
  }
  return result.refused.length > 0 ? 1 : 0
}
