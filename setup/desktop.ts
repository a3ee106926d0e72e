// The desktop handler for `.f` stubs (freedesktop.org): the shared-mime-info package declaring
// application/x-dustbox-stub (glob *.f and the stub's magic line), the hidden .desktop entry whose
// Exec is `dustbox open %f`, and the default-application line merged into mimeapps.list without
// touching other entries. Text generation is pure; install writes only changed files and runs
// update-mime-database / update-desktop-database / xdg-mime where installed.

import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { SetupError, SetupCodes } from './errors.js'
import { readSmall, writeIfChanged, type UserDirs, type WriteResult } from './files.js'
import { agentArgs, runTool, type ServiceSpec } from './service.js'

export const STUB_MIME = 'application/x-dustbox-stub'
export const DESKTOP_ID = 'dustbox-open.desktop'
export const MIME_PACKAGE = 'dustbox-stub.xml'
/** The first bytes of every stub (docs/stub-format.md §3.1). */
export const STUB_MAGIC = 'dustbox-stub v'
/** mimeapps.list bigger than this is not ours to rewrite. */
export const MAX_MIMEAPPS_BYTES = 1024 * 1024

export function mimePackageText (): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!-- dustbox stubs, written by `dustbox setup` (docs/setup.md). -->',
    '<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">',
    `  <mime-type type="${STUB_MIME}">`,
    '    <comment>dustbox stub (a file stored encrypted by dustbox; open it to get the file back)</comment>',
    '    <sub-class-of type="text/plain"/>',
    '    <generic-icon name="text-x-generic"/>',
    '    <magic priority="80">',
    `      <match type="string" value="${STUB_MAGIC}" offset="0"/>`,
    '    </magic>',
    '    <glob pattern="*.f"/>',
    '  </mime-type>',
    '</mime-info>',
    ''
  ].join('\n')
}

/** Characters that force an Exec argument into double quotes (Desktop Entry spec, "The Exec key"). */
const RESERVED = /[ \t\n"'\\><~|&;$*?#()`]/

/**
 * One Exec argument: `%` → `%%`; quoted when it has a reserved character, with `"`, `` ` ``, `$`
 * and `\` backslash-escaped inside the quotes; then the string-value escaping of the whole file
 * (`\` → `\\`). Non-ASCII is written as UTF-8.
 */
export function desktopExecArg (arg: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(arg)) throw new SetupError(SetupCodes.USAGE, `desktop entry: the path ${JSON.stringify(arg)} has a control character; move dustbox or its home to a path without one`)
  let a = arg.replace(/%/g, '%%')
  if (RESERVED.test(arg)) a = '"' + a.replace(/(["`$\\])/g, '\\$1') + '"'
  return a.replace(/\\/g, '\\\\')
}

export function desktopEntryText (spec: ServiceSpec): string {
  const exec = agentArgs(spec, ['open']).map(desktopExecArg).join(' ') + ' %f'
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Version=1.0',
    'Name=dustbox',
    'GenericName=Restore a dustbox stub',
    'Comment=Bring back a file stored by dustbox and open it with its usual application',
    `Exec=${exec}`,
    `MimeType=${STUB_MIME};`,
    'Terminal=false',
    'NoDisplay=true',
    'Categories=Utility;',
    ''
  ].join('\n')
}

/**
 * Merge "our stub type → our entry" into mimeapps.list text (null: no file yet): first in
 * [Default Applications] (the default handler), present in [Added Associations]. Every other line
 * is kept byte for byte; a file already saying so comes back identical.
 */
export function mergeMimeapps (text: string | null, mime = STUB_MIME, desktopId = DESKTOP_ID): string {
  const lines = text === null || text === '' ? [] : text.replace(/\n$/, '').split('\n')
  let changed = false
  const want: Array<{ group: string, first: boolean }> = [{ group: 'Default Applications', first: true }, { group: 'Added Associations', first: false }]
  for (const w of want) {
    let start = -1
    let end = lines.length
    for (let i = 0; i < lines.length; i++) {
      const g = /^\s*\[(.*)\]\s*$/.exec(lines[i])
      if (g === null) continue
      if (start >= 0) { end = i; break }
      if (g[1] === w.group) start = i
    }
    if (start < 0) {
      if (lines.length > 0 && lines[lines.length - 1].trim() !== '') lines.push('')
      lines.push(`[${w.group}]`, `${mime}=${desktopId};`)
      changed = true
      continue
    }
    let found = false
    for (let i = start + 1; i < end; i++) {
      const kv = /^\s*([^=#\s][^=]*?)\s*=(.*)$/.exec(lines[i])
      if (kv === null || kv[1] !== mime) continue
      found = true
      const ids = kv[2].split(';').map(s => s.trim()).filter(s => s !== '')
      const ok = w.first ? ids[0] === desktopId : ids.includes(desktopId)
      if (!ok) {
        lines[i] = `${mime}=${[desktopId, ...ids.filter(x => x !== desktopId)].join(';')};`
        changed = true
      }
      break
    }
    if (!found) {
      let at = end
      while (at > start + 1 && lines[at - 1].trim() === '') at--
      lines.splice(at, 0, `${mime}=${desktopId};`)
      changed = true
    }
  }
  return !changed && text !== null ? text : lines.join('\n') + '\n'
}

export function mimePackagePath (dirs: UserDirs): string {
  return join(dirs.data, 'mime', 'packages', MIME_PACKAGE)
}

export function desktopEntryPath (dirs: UserDirs): string {
  return join(dirs.data, 'applications', DESKTOP_ID)
}

export function mimeappsPath (dirs: UserDirs): string {
  return join(dirs.config, 'mimeapps.list')
}

export interface DesktopReport {
  readonly files: Array<{ readonly path: string, readonly result: WriteResult | 'skipped' }>
  /** Helper programs run, or skipped because not installed. */
  readonly tools: Array<{ readonly name: string, readonly state: 'ran' | 'not installed' | 'failed' | 'not needed', readonly detail?: string }>
}

export async function installDesktop (o: { dirs: UserDirs, spec: ServiceSpec, env: NodeJS.ProcessEnv }): Promise<DesktopReport> {
  const files: DesktopReport['files'] = []
  const mimeFile = mimePackagePath(o.dirs)
  const mime = await writeIfChanged(mimeFile, Buffer.from(mimePackageText()))
  files.push({ path: mimeFile, result: mime })
  const entryFile = desktopEntryPath(o.dirs)
  const entry = await writeIfChanged(entryFile, Buffer.from(desktopEntryText(o.spec)))
  files.push({ path: entryFile, result: entry })
  const listFile = mimeappsPath(o.dirs)
  const old = await readSmall(listFile, MAX_MIMEAPPS_BYTES)
  let list: WriteResult | 'skipped'
  if (old === null && await existsAt(listFile)) {
    list = 'skipped' // not a regular file, or too big to be a mimeapps.list we should rewrite
  } else {
    list = await writeIfChanged(listFile, Buffer.from(mergeMimeapps(old === null ? null : old.toString('utf8'))))
  }
  files.push({ path: listFile, result: list })

  const tools: DesktopReport['tools'] = []
  const run = async (name: string, needed: boolean, args: string[]): Promise<void> => {
    if (!needed) { tools.push({ name, state: 'not needed' }); return }
    const r = await runTool(name, args, o.env)
    tools.push({ name, state: r.ok ? 'ran' : r.missing ? 'not installed' : 'failed', ...(r.ok || r.missing ? {} : { detail: (r.err.split('\n')[0] ?? '').slice(0, 200) }) })
  }
  await run('update-mime-database', mime !== 'unchanged', [join(o.dirs.data, 'mime')])
  await run('update-desktop-database', entry !== 'unchanged', [join(o.dirs.data, 'applications')])
  await run('xdg-mime', list !== 'unchanged' && list !== 'skipped', ['default', DESKTOP_ID, STUB_MIME])
  return { files, tools }
}

async function existsAt (path: string): Promise<boolean> {
  return await fsp.lstat(path).then(() => true, () => false)
}
