// The agent as a per-user service: the systemd user unit (Linux) and the launchd agent plist (macOS)
// as pure text functions, their installation (written only when the bytes change), and enabling the
// unit with `systemctl --user` where a user manager answers; otherwise the exact commands to run.
// No root, no secrets: the unit runs `dustbox start --no-tui`, which reads settings.json.

import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { SetupError, SetupCodes } from './errors.js'
import { writeIfChanged, type UserDirs, type WriteResult } from './files.js'

export const UNIT_NAME = 'dustbox.service'
export const LAUNCHD_LABEL = 'net.dustbox.agent'
/** How long one systemctl call may take. */
export const SYSTEMCTL_TIMEOUT_MS = 20_000

/** What the service runs: `node bin/dustbox.js [--home H] start --no-tui`. */
export interface ServiceSpec {
  /** Absolute path of the node binary. */
  readonly node: string
  /** Absolute path of bin/dustbox.js. */
  readonly bin: string
  /** The dustbox home, or null for the default (~/.local/state/dustbox). */
  readonly home: string | null
}

export function agentArgs (spec: ServiceSpec, command: string[]): string[] {
  return [spec.node, spec.bin, ...(spec.home !== null ? ['--home', spec.home] : []), ...command]
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

function noControl (arg: string, where: string): void {
  if (CONTROL.test(arg)) throw new SetupError(SetupCodes.USAGE, `${where}: the path ${JSON.stringify(arg)} has a control character (newline, tab, ...) that cannot be written there; move dustbox or its home to a path without one`)
}

/**
 * One argument of a systemd command line (systemd.service(5) "Command lines", systemd.unit(5)
 * "Specifiers"): `%` → `%%`; in arguments `$` → `$$` (the executable path is not
 * variable-expanded); an argument with anything but [A-Za-z0-9/_.,:+=@-] (or non-ASCII) is
 * double-quoted with `\` and `"` backslash-escaped. systemd refuses an executable path holding `"`,
 * `'` or `\` ("special characters"): that is a clear error here.
 */
export function systemdQuote (arg: string, executable = false): string {
  noControl(arg, 'systemd unit')
  if (executable && /["'\\]/.test(arg)) {
    throw new SetupError(SetupCodes.USAGE, `systemd unit: systemd cannot run a program whose path has a quote or a backslash: ${JSON.stringify(arg)}; install node at another path, or use --no-service and start the agent yourself`)
  }
  const spec = executable ? arg.replace(/%/g, '%%') : arg.replace(/%/g, '%%').replace(/\$/g, '$$$$')
  if (/^[A-Za-z0-9/_.,:+=@-]+$/.test(arg)) return spec
  return '"' + spec.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"'
}

export function systemdUnitText (spec: ServiceSpec): string {
  const exec = agentArgs(spec, ['start', '--no-tui']).map((a, i) => systemdQuote(a, i === 0)).join(' ')
  return [
    '# dustbox agent as a systemd user service, written by `dustbox setup` (docs/setup.md).',
    '# Re-run `dustbox setup` to change it; settings live in the dustbox home\'s settings.json.',
    '[Unit]',
    'Description=dustbox agent: your folders as a private, peer-to-peer, encrypted cloud',
    'StartLimitIntervalSec=600',
    'StartLimitBurst=5',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${exec}`,
    'Restart=on-failure',
    'RestartSec=10',
    'TimeoutStopSec=30',
    'Nice=10',
    'NoNewPrivileges=true',
    '',
    '[Install]',
    'WantedBy=default.target',
    ''
  ].join('\n')
}

/** XML text escaping for plist strings (control characters are refused: XML 1.0 cannot hold them). */
export function xmlEscape (s: string): string {
  noControl(s, 'XML file')
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')
}

export function launchdPlistText (spec: ServiceSpec, logFile: string): string {
  const args = agentArgs(spec, ['start', '--no-tui']).map(a => `    <string>${xmlEscape(a)}</string>`)
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!-- dustbox agent as a launchd user agent, written by `dustbox setup` (docs/setup.md). -->',
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  <string>${LAUNCHD_LABEL}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...args,
    '  </array>',
    '  <key>RunAtLoad</key>',
    '  <true/>',
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key>',
    '    <false/>',
    '  </dict>',
    '  <key>ThrottleInterval</key>',
    '  <integer>10</integer>',
    '  <key>ProcessType</key>',
    '  <string>Background</string>',
    '  <key>StandardOutPath</key>',
    `  <string>${xmlEscape(logFile)}</string>`,
    '  <key>StandardErrorPath</key>',
    `  <string>${xmlEscape(logFile)}</string>`,
    '</dict>',
    '</plist>',
    ''
  ].join('\n')
}

export function systemdUnitPath (dirs: UserDirs): string {
  return join(dirs.config, 'systemd', 'user', UNIT_NAME)
}

export function launchdPlistPath (dirs: UserDirs): string {
  return join(dirs.home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`)
}

export interface CommandResult { readonly ok: boolean, readonly missing: boolean, readonly out: string, readonly err: string }

/** Run a helper program (no shell), bounded in time and output; `missing` when it is not installed. */
export async function runTool (cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = SYSTEMCTL_TIMEOUT_MS): Promise<CommandResult> {
  return await new Promise(resolve => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 256 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = (err as NodeJS.ErrnoException | null)?.code
      resolve({ ok: err === null, missing: code === 'ENOENT', out: String(stdout ?? '').trim(), err: String(stderr ?? '').trim() })
    })
  })
}

export interface ServiceReport {
  /** The unit or plist file, null when the platform has neither. */
  readonly file: string | null
  readonly result: WriteResult | 'unsupported'
  /** 'running': enabled and started by us; 'manual': the user must run `commands`. */
  readonly state: 'running' | 'restarted' | 'manual' | 'unsupported'
  /** Commands the user should run (when we could not). */
  readonly commands: string[]
  /** Why we could not run them, if so. */
  readonly reason: string | null
}

export interface InstallServiceOptions {
  readonly platform: NodeJS.Platform
  readonly dirs: UserDirs
  readonly spec: ServiceSpec
  readonly env: NodeJS.ProcessEnv
  /** Settings changed in this run: a running agent is restarted to read them. */
  readonly settingsChanged: boolean
}

export async function installService (o: InstallServiceOptions): Promise<ServiceReport> {
  if (o.platform === 'darwin') {
    const file = launchdPlistPath(o.dirs)
    const result = await writeIfChanged(file, Buffer.from(launchdPlistText(o.spec, join(o.dirs.home, 'Library', 'Logs', 'dustbox.log'))))
    const q = shellQuote(file)
    return {
      file,
      result,
      state: 'manual',
      commands: result === 'unchanged' && !o.settingsChanged
        ? [`launchctl bootstrap gui/$(id -u) ${q}   # only if not loaded yet`]
        : [`launchctl bootout gui/$(id -u)/${LAUNCHD_LABEL} 2>/dev/null; launchctl bootstrap gui/$(id -u) ${q}`],
      reason: 'launchd agents are loaded by the user'
    }
  }
  if (o.platform !== 'linux') return { file: null, result: 'unsupported', state: 'unsupported', commands: [agentArgs(o.spec, ['start', '--no-tui']).map(shellQuote).join(' ')], reason: `no service manager support on ${o.platform}` }
  const file = systemdUnitPath(o.dirs)
  const result = await writeIfChanged(file, Buffer.from(systemdUnitText(o.spec)))
  const manual = ['systemctl --user daemon-reload', `systemctl --user enable --now ${UNIT_NAME}`]
  const changed = result !== 'unchanged' || o.settingsChanged
  const reload = await runTool('systemctl', ['--user', 'daemon-reload'], o.env)
  if (!reload.ok) {
    const reason = reload.missing ? 'systemctl is not installed (no systemd)' : `no systemd user manager answers (${firstLine(reload.err) || 'systemctl --user failed'})`
    return { file, result, state: 'manual', commands: changed ? [...manual, `systemctl --user restart ${UNIT_NAME}   # if it was already running`] : manual, reason }
  }
  const wasActive = (await runTool('systemctl', ['--user', 'is-active', '--quiet', UNIT_NAME], o.env)).ok
  const enable = await runTool('systemctl', ['--user', 'enable', '--now', UNIT_NAME], o.env)
  if (!enable.ok) return { file, result, state: 'manual', commands: manual.slice(1), reason: `systemctl --user enable failed (${firstLine(enable.err)})` }
  if (wasActive && changed) {
    const restart = await runTool('systemctl', ['--user', 'restart', UNIT_NAME], o.env)
    if (!restart.ok) return { file, result, state: 'manual', commands: [`systemctl --user restart ${UNIT_NAME}`], reason: `systemctl --user restart failed (${firstLine(restart.err)})` }
    return { file, result, state: 'restarted', commands: [], reason: null }
  }
  return { file, result, state: 'running', commands: [], reason: null }
}

/** POSIX shell single-quoting, for commands we print. */
export function shellQuote (s: string): string {
  return /^[A-Za-z0-9/_.,:+=@-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`
}

function firstLine (s: string): string {
  const i = s.indexOf('\n')
  return (i < 0 ? s : s.slice(0, i)).slice(0, 200)
}
