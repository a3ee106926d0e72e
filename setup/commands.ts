// The `setup` and `doctor` commands on the dustbox command line (commander): flags → Setup / Doctor
// options, output through the CLI's io, and exit codes: 0 ok, 1 failure (`CODE: message` on stderr),
// 2 usage error. The passphrase comes from --passphrase-file or a prompt, never from argv.

import { Option, type Command } from 'commander'
import { parseTunables } from '../agent/config.js'
import { errorLine } from '../agent/errors.js'
import { Setup } from './setup.js'
import { Doctor, formatReport } from './doctor.js'
import { SetupError, SetupCodes } from './errors.js'

export interface SetupCommandContext {
  readonly io: { out: (line: string) => void, err: (line: string) => void }
  /** The resolved dustbox home (--home, $DUSTBOX_HOME, default). */
  readonly home: () => string
  /** Set the process exit code. */
  readonly setExitCode: (code: number) => void
}

interface SetupFlags {
  folder?: string[]
  donate?: string
  port?: string
  host?: string
  passphraseFile?: string
  importBackup?: string
  backup?: string
  mapPort?: boolean
  relay?: string
  service?: boolean
  desktop?: boolean
  yes?: boolean
}

export function registerSetupCommands (program: Command, ctx: SetupCommandContext): void {
  const fail = (err: unknown): void => {
    ctx.io.err(errorLine(err))
    ctx.setExitCode(err instanceof SetupError && err.code === SetupCodes.USAGE ? 2 : 1)
  }

  program.command('setup')
    .description('first-run setup (interactive, or scripted with flags and --yes): identity and passphrase-sealed key backup, folders, donated space, port, settings.json, the systemd user service and the .f desktop handler; re-running changes only what differs')
    .option('--folder <dir...>', 'folders to watch (replaces the configured list)')
    .option('--donate <size>', 'space given to other owners, e.g. 10G (0 = none; else at least 1 GiB; default 10 GiB)')
    .option('--port <port>', 'uTP and TCP port, the DHT on port+1 (1024-65534, 0 = any; default 45310)')
    .option('--host <address>', 'IPv4 address the agent binds (default 0.0.0.0)')
    .option('--passphrase-file <file>', 'read the key backup passphrase from this file (its only line)')
    .option('--import-backup <file>', 'restore the identity from a key backup instead of creating one')
    .option('--backup <file>', 'where to write the key backup (default DIR/key-backup.dustkey)')
    .option('--map-port', 'ask the router to forward the port (UPnP / NAT-PMP; default yes)')
    .option('--no-map-port', 'do not ask the router for a port mapping')
    .option('--relay <rate>', 'relay end-to-end encrypted traffic for peers that cannot reach each other, at most RATE bytes per second, e.g. 1M (0 = off, the default; never while the link is metered)')
    .addOption(new Option('--no-service', 'do not install or enable the service'))
    .addOption(new Option('--no-desktop', 'do not register the desktop handler for .f files'))
    .option('-y, --yes', 'never ask: flags, else the current settings, else the defaults')
    .action(async (f: SetupFlags) => {
      try {
        const tun = parseTunables(process.env.DUSTBOX_TUNABLES)
        await new Setup({
          home: ctx.home(),
          folders: f.folder,
          donate: f.donate,
          port: f.port,
          host: f.host,
          passphraseFile: f.passphraseFile,
          importBackup: f.importBackup,
          backup: f.backup,
          mapPort: f.mapPort,
          relay: f.relay,
          service: f.service,
          desktop: f.desktop,
          yes: f.yes === true,
          out: ctx.io.out,
          kdf: {
            ...(tun.kdfOpslimit !== undefined ? { opslimit: tun.kdfOpslimit } : {}),
            ...(tun.kdfMemlimitKib !== undefined ? { memlimitKib: tun.kdfMemlimitKib } : {})
          }
        }).run()
      } catch (err) { fail(err) }
    })

  program.command('doctor')
    .description('check this machine\'s dustbox: identity, key backup, service, agent, ports, DHT, reachability from the internet, inotify watch limit, free space; one line per check with a fix; exit 1 if any check fails')
    .option('--json', 'print the report as one JSON object')
    .action(async (opts: { json?: boolean }) => {
      try {
        const report = await new Doctor({ home: ctx.home() }).run()
        if (opts.json === true) ctx.io.out(JSON.stringify(report))
        else for (const line of formatReport(report)) ctx.io.out(line)
        ctx.setExitCode(report.ok ? 0 : 1)
      } catch (err) { fail(err) }
    })
}
