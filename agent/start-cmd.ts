// `dustbox start`: runs the agent in the foreground until SIGINT/SIGTERM or `dustbox stop`. On a
// terminal it shows the Ink dashboard (tui/, through the control socket); with --no-tui or without a
// terminal it prints one plain line per event. Flags are validated into an AgentConfig; nothing secret is ever printed.

import { Agent } from './agent.js'
import {
  DEFAULT_CACHE, DEFAULT_DONATE, DEFAULT_EVICT_AFTER_S, DEFAULT_K, DEFAULT_M, DEFAULT_SETTLE_S,
  checkFolders, parseBootstrapFlag, parseHost, parsePortFlag, parseRedundancy, parseSeconds, parseSize, parseTunables,
  type AgentConfig
} from './config.js'
import { humanBytes } from './format.js'
import { loadSettings, settingsPath, SETTINGS_VERSION, type Settings } from './settings.js'
import { AgentError, AgentCodes } from './errors.js'

export interface StartFlags {
  folder?: string[]
  host?: string
  port?: string
  dhtPort?: string
  bootstrap?: string
  donate?: string
  redundancy?: string
  cache?: string
  settle?: string
  evictAfter?: string
  lostAfter?: string
  watcher?: string
  relay?: string
  relayOnMetered?: boolean
  tui?: boolean
}

/** Warnings of the same code are printed at most this often. */
export const WARNING_GAP_MS = 10_000

/**
 * The agent's configuration: each setting from its flag, else from `<home>/settings.json` (written by
 * `dustbox setup`), else the built-in default. `--folder` replaces the settings' folders (no merge).
 */
export async function configFromFlags (home: string, f: StartFlags, env: NodeJS.ProcessEnv = process.env): Promise<AgentConfig> {
  const s: Settings = (await loadSettings(home)) ?? { version: SETTINGS_VERSION }
  const { k, m } = f.redundancy !== undefined ? parseRedundancy(f.redundancy) : { k: DEFAULT_K, m: DEFAULT_M }
  const port = f.port !== undefined ? parsePortFlag(f.port) : (s.port ?? 0)
  const watcher = f.watcher ?? 'auto'
  if (watcher !== 'auto' && watcher !== 'parcel' && watcher !== 'chokidar') throw new AgentError(AgentCodes.USAGE, `--watcher ${JSON.stringify(watcher)}: auto, parcel or chokidar`)
  let folders: string[]
  if (f.folder !== undefined) folders = await checkFolders(f.folder, home)
  else {
    try {
      folders = await checkFolders(s.folders ?? [], home)
    } catch (err) {
      throw new AgentError(AgentCodes.CONFIG_INVALID, `${JSON.stringify(settingsPath(home))}: ${(err as Error).message.replace(/^[A-Z_]+: --folder /, 'folder ')} (fix it with "dustbox setup" or override it with --folder)`, { cause: err })
    }
  }
  const dhtPort = f.dhtPort !== undefined ? parsePortFlag(f.dhtPort, '--dht-port') : f.port === undefined && s.dhtPort !== undefined ? s.dhtPort : undefined
  return {
    home,
    folders,
    host: f.host !== undefined ? parseHost(f.host) : (s.host ?? '0.0.0.0'),
    port,
    dhtPort: dhtPort ?? (port === 0 ? 0 : Math.min(65535, port + 1)),
    bootstrap: parseBootstrapFlag(f.bootstrap ?? s.bootstrap),
    donate: f.donate !== undefined ? parseSize(f.donate, '--donate') : (s.donate ?? DEFAULT_DONATE),
    k,
    m,
    cache: f.cache !== undefined ? parseSize(f.cache, '--cache') : DEFAULT_CACHE,
    settleMs: parseSeconds(f.settle ?? String(DEFAULT_SETTLE_S), '--settle', 3600),
    evictAfterMs: parseSeconds(f.evictAfter ?? String(DEFAULT_EVICT_AFTER_S), '--evict-after'),
    ...(f.lostAfter !== undefined ? { lostAfterMs: parseSeconds(f.lostAfter, '--lost-after') } : {}),
    watcher,
    mapPort: s.mapPort ?? false,
    relayRate: f.relay !== undefined ? parseSize(f.relay, '--relay') : (s.relay ?? 0),
    relayOnMetered: f.relayOnMetered === true,
    tunables: parseTunables(env.DUSTBOX_TUNABLES)
  }
}

/** Print the agent's events as plain lines. */
export function logEvents (agent: Agent, out: (line: string) => void): void {
  const lastWarning = new Map<string, number>()
  agent.on('file', e => {
    if (e.state === 'stubbed') out(`stubbed   ${e.rel}${e.size !== undefined ? ` (${humanBytes(e.size)})` : ''}`)
    else if (e.state === 'hydrated' && e.bytes !== undefined) out(`restored  ${e.rel} (${humanBytes(e.size ?? 0)})`)
    else if (e.state === 'failed') out(`failed    ${e.rel}: ${e.error ?? ''}`)
    else if (e.state === 'removed') out(`removed   ${e.rel}`)
  })
  agent.on('peer', p => out(`peer      ${p.id.slice(0, 12)} ${p.state}`))
  agent.on('waiting', r => out(r === null ? 'placing   peers available again' : `waiting   ${r}`))
  agent.on('warning', w => {
    const now = Date.now()
    if (now - (lastWarning.get(w.code) ?? 0) < WARNING_GAP_MS) return
    lastWarning.set(w.code, now)
    out(`warning   ${w.message}`)
  })
}

export async function runStart (home: string, flags: StartFlags, io: { out: (l: string) => void, err: (l: string) => void }): Promise<void> {
  const config = await configFromFlags(home, flags)
  const agent = new Agent(config)
  // On a terminal the dashboard replaces the log lines (--no-tui keeps them); it is loaded only then.
  const tui = flags.tui !== false && process.stdout.isTTY === true && process.stdin.isTTY === true && process.env.DUSTBOX_EXIT_WITH_PARENT !== '1'
  if (!tui) logEvents(agent, io.out)
  const stop = (): void => agent.requestStop()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const unwatch = exitWithParent(stop)
  try {
    await agent.ready()
    if (tui) {
      const { embedDashboard } = await import('../tui/tui-cmd.js')
      await embedDashboard(home, agent.stopped, stop)
    } else {
      const s = agent.status()
      io.out(`dustbox agent ${s.identity.slice(0, 16)}… on ${s.host}:${s.port} (uTP+TCP), DHT udp ${s.dhtPort}, home ${home}`)
      io.out(`redundancy ${config.k}+${config.m}, donating ${humanBytes(config.donate)}, cache ${humanBytes(config.cache)}, ${config.folders.length === 0 ? 'no folder (donating space only)' : `watching ${config.folders.join(', ')}`}`)
    }
    await agent.stopped
    io.out('stopping…')
  } finally {
    process.removeListener('SIGINT', stop)
    process.removeListener('SIGTERM', stop)
    unwatch()
    await agent.close()
  }
}

/** With DUSTBOX_EXIT_WITH_PARENT=1 (a LocalSwarm child), stop when stdin closes: the parent died. */
export function exitWithParent (stop: () => void): () => void {
  if (process.env.DUSTBOX_EXIT_WITH_PARENT !== '1') return () => {}
  process.stdin.on('end', stop)
  process.stdin.on('close', stop)
  process.stdin.on('error', stop)
  process.stdin.resume()
  // Undo: stop reading so the process can exit.
  return () => {
    process.stdin.removeListener('end', stop)
    process.stdin.removeListener('close', stop)
    process.stdin.destroy()
  }
}
