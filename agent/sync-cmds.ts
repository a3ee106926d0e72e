// `dustbox sync [confirm|revert]`, `dustbox versions FILE`, `dustbox restore-version FILE --at X` and
// `dustbox gc` (docs/sync.md §8): thin clients of the running agent's control API.

import { resolve } from 'node:path'
import type { Command } from 'commander'
import { withAgent } from './client-cmds.js'
import { errorLine, AgentCodes } from './errors.js'
import { humanBytes } from './format.js'
import type { SyncServiceStatus } from './sync-service.js'

export interface SyncCommandContext {
  readonly io: { out: (line: string) => void, err: (line: string) => void }
  readonly home: () => string
  readonly setExitCode: (code: number) => void
}

const when = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')

export function registerSyncCommands (program: Command, ctx: SyncCommandContext): void {
  const { io } = ctx
  const run = (fn: (...a: any[]) => Promise<void>) => async (...a: any[]): Promise<void> => {
    try { await fn(...a) } catch (err) {
      io.err(errorLine(err))
      ctx.setExitCode((err as { code?: string }).code === AgentCodes.BAD_PARAMS ? 2 : 1)
    }
  }

  program.command('sync')
    .description('this device and the owner\'s other devices, open conflicts and held deletions; "confirm" lets held deletions go to the other devices, "revert" brings their stubs back')
    .argument('[action]', 'confirm | revert')
    .option('--folder <dir>', 'only this folder\'s held deletions')
    .option('--json', 'print as JSON')
    .action(run(async (action: string | undefined, opts: { folder?: string, json?: boolean }) => {
      if (action !== undefined && action !== 'confirm' && action !== 'revert') { io.err(`USAGE: unknown action ${JSON.stringify(action)} (confirm or revert)`); ctx.setExitCode(2); return }
      const r = await withAgent(ctx.home(), async c => action === undefined
        ? await c.call<SyncServiceStatus>('sync', {})
        : await c.call<{ confirmed: number, reverted: number }>('sync', { action, ...(opts.folder !== undefined ? { folder: resolve(opts.folder) } : {}) }))
      if (opts.json === true) { io.out(JSON.stringify(r)); return }
      if (action !== undefined) {
        const x = r as { confirmed: number, reverted: number }
        io.out(action === 'confirm' ? `${x.confirmed} held deletions sent to the other devices` : `${x.reverted} held deletions reverted: their stubs are back`)
        return
      }
      const s = r as SyncServiceStatus
      io.out(`this device: ${s.device.id} (${s.device.name})`)
      if (s.devices.length === 0) io.out('no other device of this owner seen yet')
      for (const d of s.devices) io.out(`  device ${d.id} ${JSON.stringify(d.name)}: ${d.online ? 'online' : 'offline'}, last seen ${when(d.lastSeen)}, pulled to ${d.pulled}`)
      io.out(`${s.openConflicts.length} open conflicts${s.openConflicts.length > 0 ? ':' : ''}`)
      for (const c of s.openConflicts) io.out(`  ${c.folder}/${c.rel}`)
      for (const h of s.held) io.out(`HELD: ${h.files} of ${h.of} files of ${h.folder} deleted at once since ${when(h.since)}; "dustbox sync confirm" or "dustbox sync revert"`)
    }))

  program.command('versions')
    .description('the kept versions of a file (also of a deleted one), newest first')
    .argument('<file>', 'the file, or its .f stub, in a watched folder')
    .option('--json', 'print as JSON')
    .action(run(async (file: string, opts: { json?: boolean }) => {
      const r = await withAgent(ctx.home(), async c => await c.call<{ path: string, state: string, deletedAt: number | null, versions: Array<{ n: number, at: number, size: number, device: string, hash: string, current: boolean }> }>('versions', { path: resolve(file) }))
      if (opts.json === true) { io.out(JSON.stringify(r)); return }
      io.out(`${r.path}${r.state === 'deleted' && r.deletedAt !== null ? ` (deleted ${when(r.deletedAt)})` : ''}`)
      for (const v of r.versions) io.out(`  ${String(v.n).padStart(3)}  ${when(v.at)}  ${humanBytes(v.size).padStart(10)}  device ${v.device || '-'}  ${v.hash}${v.current ? '  (current)' : ''}`)
    }))

  program.command('restore-version')
    .description('make a kept version of a file the current one again (on every device); brings a deleted file back')
    .argument('<file>', 'the file, or its .f stub, in a watched folder')
    .requiredOption('--at <n|time>', 'a version number from "dustbox versions" (1 = newest) or a time (ISO 8601): the newest version at or before it')
    .option('--json', 'print as JSON')
    .action(run(async (file: string, opts: { at: string, json?: boolean }) => {
      const at = /^\d{1,5}$/.test(opts.at) ? Number(opts.at) : opts.at
      const r = await withAgent(ctx.home(), async c => await c.call<{ path: string, n: number, at: number, size: number }>('restoreVersion', { path: resolve(file), at }))
      if (opts.json === true) io.out(JSON.stringify(r))
      else io.out(`${r.path}: version ${r.n} of ${when(r.at)} (${humanBytes(r.size)}) is current again, as a stub`)
    }))

  program.command('gc')
    .description('drop versions past the retention and delete from peers the blocks no kept version needs')
    .option('--json', 'print as JSON')
    .action(run(async (opts: { json?: boolean }) => {
      const r = await withAgent(ctx.home(), async c => await c.call<Record<string, number | boolean>>('gc', {}, { timeoutMs: 3600_000 }))
      if (opts.json === true) io.out(JSON.stringify(r))
      else io.out(`${String(r.pruned)} versions dropped, ${String(r.collected)} blocks collected, ${String(r.deletedCopies)} copies deleted, ${String(r.leftCopies)} left on unreachable peers${r.waitingForDevices === true ? '; waiting for every device to be online to delete blocks' : ''}`)
    }))
}
