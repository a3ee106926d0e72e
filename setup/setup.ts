// `dustbox setup`: the first-run wizard and its scriptable form. Checks every flag first, asks for
// what flags did not give (unless --yes), and only then writes, in order: the identity (created or
// imported), the passphrase-sealed key backup, settings.json, the service, the desktop handler.
// Each file is written only when its bytes change, so a second run changes nothing and says so.

import { promises as fsp } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { deriveKeys, loadCrypto, loadSecret, createSecret, StubError, StubCodes, SECRET_FILE } from '../stubs/index.js'
import { encodeSecretFile } from '../stubs/keys.js'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { createDeviceKey } from '../agent/device.js'
import { DEFAULT_DONATE, parseHost, parseSize } from '../agent/config.js'
import { loadSettings, saveSettings, settingsPath, SETTINGS_VERSION, type Settings } from '../agent/settings.js'
import { humanBytes } from '../agent/format.js'
import { SetupError, SetupCodes, fileError } from './errors.js'
import { userDirs, type UserDirs, type WriteResult } from './files.js'
import { checkFolder, completePath, readMountinfo, type FolderContext } from './folders.js'
import { DEFAULT_SETUP_PORT, agentPorts, checkPortsFree, parsePortAnswer, runningAgent } from './ports.js'
import {
  DEFAULT_KDF, KEY_BACKUP_FILE, MIN_PASSPHRASE_CHARS, MAX_PASSPHRASE_ATTEMPTS, askNewPassphrase, openKeyBackup, passphraseBytes, readKeyBackupFile,
  readPassphraseFile, sealKeyBackup, writeKeyBackupFile, type KdfParams
} from './key-backup.js'
import { Prompter } from './prompts.js'
import { installService, systemdUnitText, type ServiceReport, type ServiceSpec } from './service.js'
import { desktopEntryText, installDesktop, type DesktopReport } from './desktop.js'

const GiB = 1024 ** 3
/** Smallest non-zero donation; 0 means "use without donating" (then only the 1 GiB grace can be stored). */
export const MIN_DONATE = GiB
export const MAX_DONATE = 1024 ** 5
/** Router port mapping is asked for by default (the agent applies it from issue 9 on). */
export const DEFAULT_MAP_PORT = true
/** Wrong answers tolerated per question before giving up. */
export const MAX_ATTEMPTS = 5
export { MAX_PASSPHRASE_ATTEMPTS }
/** bin/dustbox.js, which the service and the desktop entry run. */
export const DUSTBOX_BIN = fileURLToPath(new URL('../../bin/dustbox.js', import.meta.url))

export interface SetupOptions {
  /** The dustbox home (state directory), resolved. */
  readonly home: string
  readonly folders?: readonly string[]
  readonly donate?: string
  readonly port?: string
  readonly host?: string
  readonly passphraseFile?: string
  readonly importBackup?: string
  /** Where the key backup goes (default: settings' keyBackup, else <home>/key-backup.dustkey). */
  readonly backup?: string
  readonly mapPort?: boolean
  /** Relay rate for peers that cannot reach each other (bytes per second or "2M"; "0": off). */
  readonly relay?: string
  /** false: do not write or enable the service. */
  readonly service?: boolean
  /** false: do not register the desktop handler. */
  readonly desktop?: boolean
  /** Never ask: flags, else the current settings, else the defaults. */
  readonly yes?: boolean
  readonly out: (line: string) => void
  readonly env?: NodeJS.ProcessEnv
  readonly platform?: NodeJS.Platform
  readonly input?: NodeJS.ReadableStream & { isTTY?: boolean }
  readonly output?: NodeJS.WritableStream & { isTTY?: boolean }
  readonly kdf?: Partial<KdfParams>
  readonly minPassphraseChars?: number
  /** The node binary and bin/dustbox.js written into the service and desktop files. */
  readonly node?: string
  readonly bin?: string
  /** /proc/self/mountinfo text (tests). */
  readonly mountinfo?: string
}

export interface SetupResult {
  readonly ownerId: string
  readonly identity: 'created' | 'imported' | 'kept'
  readonly backup: { readonly path: string, readonly result: WriteResult }
  readonly settings: { readonly path: string, readonly result: WriteResult }
  readonly service: ServiceReport | null
  readonly desktop: DesktopReport | null
  /** Whether any file was written. */
  readonly changed: boolean
}

/** "10G" for whole GiB, "512M" for whole MiB, else bytes. */
export function sizeText (n: number): string {
  if (n > 0 && n % GiB === 0) return `${n / GiB}G`
  if (n > 0 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)}M`
  return String(n)
}

export function parseDonate (text: string, what = '--donate'): number {
  let n: number
  try { n = parseSize(text, what) } catch (err) { throw new SetupError(SetupCodes.USAGE, (err as Error).message.replace(/^[A-Z_]+: /, '')) }
  if (n !== 0 && n < MIN_DONATE) throw new SetupError(SetupCodes.USAGE, `${what} ${JSON.stringify(text)}: donate 0 (use without donating) or at least ${humanBytes(MIN_DONATE)}`)
  if (n > MAX_DONATE) throw new SetupError(SetupCodes.USAGE, `${what} ${JSON.stringify(text)} is more than ${humanBytes(MAX_DONATE)}`)
  return n
}

/** Most a node may offer to relay (bytes per second): 1 GiB/s, past any home link. */
export const MAX_RELAY_RATE = GiB

export function parseRelay (text: string, what = '--relay'): number {
  let n: number
  try { n = parseSize(text, what) } catch (err) { throw new SetupError(SetupCodes.USAGE, (err as Error).message.replace(/^[A-Z_]+: /, '')) }
  if (n > MAX_RELAY_RATE) throw new SetupError(SetupCodes.USAGE, `${what} ${JSON.stringify(text)} is more than ${humanBytes(MAX_RELAY_RATE)} per second`)
  return n
}

export const FAIR_EXCHANGE_LINE = 'Fair exchange: the network stores for you at most what you donate to others, plus a 1 GiB grace.'

export class Setup {
  private readonly o: SetupOptions
  private readonly env: NodeJS.ProcessEnv
  private readonly dirs: UserDirs
  private prompter: Prompter | null = null
  private filePassphrase: Uint8Array | null = null

  constructor (o: SetupOptions) {
    this.o = o
    this.env = o.env ?? process.env
    this.dirs = userDirs(this.env)
  }

  private say (line: string): void { this.o.out(line) }

  private get asking (): boolean { return this.o.yes !== true }

  private ask (): Prompter {
    this.prompter ??= new Prompter({
      input: this.o.input ?? process.stdin,
      output: this.o.output ?? process.stdout,
      completePath: (line, files) => completePath(line, this.dirs.home, files)
    })
    return this.prompter
  }

  /** Ask until `parse` accepts the answer (bounded); SetupErrors are shown and asked again. */
  private async askValid<T> (question: string, def: string | undefined, parse: (a: string) => Promise<T>, paths?: 'dirs' | 'files'): Promise<T> {
    let last: unknown
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const a = await this.ask().ask(question, { def, paths })
      try { return await parse(a) } catch (err) {
        if (!(err instanceof SetupError) || err.code === SetupCodes.INPUT_ENDED) throw err
        last = err
        this.ask().say(`  ${err.message}`)
      }
    }
    throw last
  }

  async run (): Promise<SetupResult> {
    try {
      return await this.steps()
    } finally {
      this.prompter?.close()
      this.filePassphrase?.fill(0)
    }
  }

  private async steps (): Promise<SetupResult> {
    const o = this.o
    const home = o.home
    this.say(`dustbox setup: home ${home}`)
    let old: Settings | null
    try {
      old = await loadSettings(home)
    } catch (err) {
      throw new SetupError(SetupCodes.FILE_FAILED, `${(err as Error).message.replace(/^[A-Z_]+: /, '')}; fix it, or move it away to start from the defaults, then run setup again`, { cause: err })
    }
    const crypto = await loadCrypto()
    const mountinfo = o.mountinfo ?? readMountinfo()

    // 0. Every flag is checked before any question and any write.
    const ctx = (chosen: string[]): FolderContext => ({ stateDir: home, userHome: this.dirs.home, chosen, configured: old?.folders ?? [], mountinfo })
    const flagFolders = o.folders !== undefined ? await this.foldersFromFlags(o.folders, ctx) : undefined
    const flagDonate = o.donate !== undefined ? parseDonate(o.donate) : undefined
    const flagRelay = o.relay !== undefined ? parseRelay(o.relay) : undefined
    let host = old?.host ?? '0.0.0.0'
    if (o.host !== undefined) {
      try { host = parseHost(o.host) } catch (err) { throw new SetupError(SetupCodes.USAGE, (err as Error).message.replace(/^[A-Z_]+: /, '')) }
    }
    const flagPort = o.port !== undefined ? parsePortAnswer(o.port) : undefined
    const dhtFor = (p: number): number => old?.dhtPort !== undefined && old.port === p ? old.dhtPort : p + 1
    if (flagPort !== undefined) await this.checkPorts(host, flagPort, dhtFor(flagPort))
    if (o.passphraseFile !== undefined) this.filePassphrase = await readPassphraseFile(resolve(o.passphraseFile), o.minPassphraseChars ?? MIN_PASSPHRASE_CHARS)
    const importFile = o.importBackup !== undefined ? await readKeyBackupFile(resolve(o.importBackup)) : undefined
    const spec: ServiceSpec = { node: o.node ?? process.execPath, bin: o.bin ?? DUSTBOX_BIN, home: home === this.dirs.defaultDustboxHome ? null : home }
    const platform = o.platform ?? process.platform
    if (o.service !== false && platform === 'linux') systemdUnitText(spec) // paths systemd cannot hold: refused before any write
    if (o.desktop !== false && platform === 'linux') desktopEntryText(spec)

    // 1. Identity: keep, create or import (written in step 6).
    let root = await this.loadIdentity()
    let ownerId = root === null ? null : deriveKeys(crypto, root).ownerId
    let identity: SetupResult['identity'] = root === null ? 'created' : 'kept'
    let imported: { bytes: Uint8Array, path: string } | null = null
    let importPath = importFile !== undefined ? resolve(o.importBackup!) : undefined
    let importData = importFile
    if (root === null && importData === undefined && this.asking) {
      this.ask().say('This home has no identity yet: dustbox can create a new one, or restore yours from a key backup file.')
      const restore = await this.ask().confirm('Restore from a key backup?', false)
      if (restore) {
        importData = await this.askValid('Key backup file', undefined, async a => {
          importPath = resolve(a.startsWith('~/') ? join(this.dirs.home, a.slice(2)) : a)
          return await readKeyBackupFile(importPath)
        }, 'files')
      }
    }
    if (importData !== undefined && importPath !== undefined) {
      if (ownerId !== null && importData.ownerId !== ownerId) {
        throw new SetupError(SetupCodes.IDENTITY_EXISTS, `${JSON.stringify(importPath)} is the backup of identity ${importData.ownerId.slice(0, 16)}…, but ${JSON.stringify(home)} already has identity ${ownerId.slice(0, 16)}…; restore into another home (--home DIR)`)
      }
      if (ownerId === null) {
        root = await this.openBackup(importData.bytes, importPath)
        ownerId = importData.ownerId
        identity = 'imported'
      } else {
        this.say(`identity   ${ownerId.slice(0, 16)}… is already this home's identity: nothing to import`)
      }
      imported = { bytes: importData.bytes, path: importPath }
    }

    // 2. The key backup: keep a valid one, refuse to overwrite anything else, else seal a new one.
    const backupPath = resolve(o.backup ?? old?.keyBackup ?? join(home, KEY_BACKUP_FILE))
    const existing = await this.existingBackup(backupPath, ownerId)
    let newBackup: Uint8Array | null = null
    let passphrase: Uint8Array | null = null
    if (existing === null) {
      if (imported !== null) newBackup = imported.bytes
      else passphrase = await this.newPassphrase(backupPath)
    }

    // 3. Folders.
    const folders = flagFolders ?? (this.asking ? await this.askFolders(ctx, old?.folders ?? []) : [...(old?.folders ?? [])])

    // 4. Donated space.
    if (flagDonate === undefined && this.asking) this.ask().say(FAIR_EXCHANGE_LINE)
    const donate = flagDonate ?? (this.asking
      ? await this.askValid(`Space to donate to other users (0 = none: you can then store only the 1 GiB grace; minimum otherwise ${humanBytes(MIN_DONATE)})`, sizeText(old?.donate ?? DEFAULT_DONATE), async a => parseDonate(a, 'donated space'))
      : old?.donate ?? DEFAULT_DONATE)
    await this.checkFreeSpace(home, donate)

    // 5. Port and port mapping.
    let port: number
    if (flagPort !== undefined) port = flagPort
    else if (this.asking) {
      port = await this.askValid('Port for peer connections (uTP and TCP; the DHT uses the next port; 0 = any free port)', String(old?.port ?? DEFAULT_SETUP_PORT), async a => {
        const p = parsePortAnswer(a, 'port')
        await this.checkPorts(host, p, dhtFor(p))
        return p
      })
    } else {
      port = old?.port ?? DEFAULT_SETUP_PORT
      await this.checkPorts(host, port, dhtFor(port))
    }
    let mapPort = o.mapPort ?? (port === 0 ? false : old?.mapPort ?? DEFAULT_MAP_PORT)
    if (o.mapPort === undefined && this.asking && port !== 0) {
      mapPort = await this.ask().confirm(`Ask your router to forward port ${port} (UPnP / NAT-PMP) so that peers can reach you?`, mapPort)
    }
    // Relaying (docs/reachability.md §5): opt-in, kept from the current settings, asked with the rest.
    const relay = flagRelay ?? (this.asking
      ? await this.askValid('Relay end-to-end encrypted traffic for peers that cannot reach each other, at most this many bytes per second (0 = no; e.g. 1M; never on a metered link)', sizeText(old?.relay ?? 0), async a => parseRelay(a, 'relay rate'))
      : old?.relay ?? 0)

    // 6. Write: identity, backup, settings, service, desktop.
    let secretWritten = false
    if (root === null) {
      root = await createSecret(crypto, home)
      ownerId = deriveKeys(crypto, root).ownerId
      secretWritten = true
    } else if (identity === 'imported') {
      await this.writeSecret(home, root)
      await createDeviceKey(home) // an imported key makes this home another device of the owner (docs/sync.md §2)
      secretWritten = true
    }
    const owner = ownerId ?? deriveKeys(crypto, root).ownerId
    this.say(`identity   ${identity.padEnd(9)} ${owner.slice(0, 16)}… (${join(home, SECRET_FILE)})`)

    let backupResult: WriteResult = 'unchanged'
    if (existing === null) {
      if (newBackup === null) {
        const ops = o.kdf?.opslimit ?? DEFAULT_KDF.opslimit
        this.say(`key backup sealing with Argon2id (${humanBytes((o.kdf?.memlimitKib ?? DEFAULT_KDF.memlimitKib) * 1024)}, ${ops} pass${ops === 1 ? '' : 'es'})…`)
        newBackup = await sealKeyBackup(root, passphrase!, { ...DEFAULT_KDF, ...o.kdf })
        passphrase!.fill(0)
      }
      const existed = await fsp.lstat(backupPath).then(() => true, () => false)
      await writeKeyBackupFile(backupPath, newBackup)
      backupResult = existed ? 'updated' : 'created'
    }
    root.fill(0)
    this.say(`key backup ${backupResult.padEnd(9)} ${backupPath}`)
    if (backupResult !== 'unchanged') {
      this.say('           Copy this file somewhere safe, away from this computer (another disk, a USB stick, a cloud drive).')
      this.say('           If this computer is lost, the backup and its passphrase are the only way to your data: without them it is gone.')
    }

    const settings: Settings = {
      version: SETTINGS_VERSION,
      folders,
      ...(host !== '0.0.0.0' ? { host } : {}),
      port,
      ...(old?.dhtPort !== undefined && old.port === port ? { dhtPort: old.dhtPort } : {}),
      ...(old?.bootstrap !== undefined ? { bootstrap: old.bootstrap } : {}),
      donate,
      mapPort,
      ...(relay > 0 ? { relay } : {}),
      keyBackup: backupPath
    }
    let settingsResult: WriteResult
    try { settingsResult = await saveSettings(home, settings) } catch (err) { throw fileError('write', settingsPath(home), err) }
    this.say(`settings   ${settingsResult.padEnd(9)} ${settingsPath(home)}`)
    this.say(`           ${folders.length === 0 ? 'no folder: this node only donates space' : `folders ${folders.join(', ')}`}; donating ${donate === 0 ? 'nothing' : humanBytes(donate)} (so the network stores up to ${humanBytes(donate + GiB)} for you: what you give plus a 1 GiB grace); port ${port === 0 ? 'any' : `${port} (DHT ${dhtFor(port)})`}${mapPort ? ', router port mapping on' : ''}${relay > 0 ? `, relaying for others up to ${humanBytes(relay)}/s` : ''}`)

    let service: ServiceReport | null = null
    if (o.service !== false) {
      service = await installService({ platform, dirs: this.dirs, spec, env: this.env, settingsChanged: settingsResult !== 'unchanged' || secretWritten })
      this.reportService(service)
    } else {
      this.say('service    skipped (--no-service); run the agent with: dustbox start')
    }
    let desktop: DesktopReport | null = null
    if (o.desktop !== false && platform === 'linux') {
      desktop = await installDesktop({ dirs: this.dirs, spec, env: this.env })
      for (const f of desktop.files) this.say(`desktop    ${f.result.padEnd(9)} ${f.path}${f.result === 'skipped' ? ' (not a regular file or too big: left alone)' : ''}`)
      const missing = desktop.tools.filter(t => t.state === 'not installed').map(t => t.name)
      for (const t of desktop.tools.filter(t => t.state === 'ran' || t.state === 'failed')) this.say(`           ${t.name}: ${t.state}${t.detail !== undefined ? ` (${t.detail})` : ''}`)
      if (missing.length > 0) this.say(`           not installed, skipped: ${missing.join(', ')} (file managers still read the files above)`)
    } else if (o.desktop === false) {
      this.say('desktop    skipped (--no-desktop)')
    }

    const changed = secretWritten || backupResult !== 'unchanged' || settingsResult !== 'unchanged' ||
      (service !== null && service.result !== 'unchanged' && service.result !== 'unsupported') ||
      (desktop !== null && desktop.files.some(f => f.result === 'created' || f.result === 'updated'))
    this.say(changed ? 'done. Check everything with: dustbox doctor' : 'done: everything was already set up this way, nothing changed (unchanged).')
    return { ownerId: owner, identity, backup: { path: backupPath, result: backupResult }, settings: { path: settingsPath(home), result: settingsResult }, service, desktop, changed }
  }

  private reportService (s: ServiceReport): void {
    this.say(`service    ${s.result.padEnd(9)} ${s.file ?? '(none)'}`)
    if (s.state === 'running') this.say('           enabled and running (systemctl --user)')
    else if (s.state === 'restarted') this.say('           restarted to apply the new settings (systemctl --user)')
    else {
      if (s.reason !== null) this.say(`           ${s.reason}; to start the agent now and at every login, run:`)
      for (const c of s.commands) this.say(`             ${c}`)
    }
  }

  private async loadIdentity (): Promise<Uint8Array | null> {
    try {
      return await loadSecret(this.o.home)
    } catch (err) {
      if (err instanceof StubError && err.code === StubCodes.KEY_MISSING) return null
      throw err
    }
  }

  private async writeSecret (home: string, root: Uint8Array): Promise<void> {
    const path = join(home, SECRET_FILE)
    try {
      await fsp.mkdir(home, { recursive: true, mode: 0o700 })
      await writeFileAtomic(path, Buffer.from(encodeSecretFile(root), 'ascii'), { mode: 0o600, noClobber: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new SetupError(SetupCodes.IDENTITY_EXISTS, `${JSON.stringify(path)} appeared while setup ran; refusing to replace an identity`)
      throw fileError('write', path, err)
    }
  }

  /** The backup already at `path` if it is a valid backup of `ownerId`; null when absent; else an error. */
  private async existingBackup (path: string, ownerId: string | null): Promise<Uint8Array | null> {
    const there = await fsp.lstat(path).then(() => true, () => false)
    if (!there) return null
    let b: Awaited<ReturnType<typeof readKeyBackupFile>>
    try {
      b = await readKeyBackupFile(path)
    } catch (err) {
      throw new SetupError(SetupCodes.BACKUP_INVALID, `${(err as Error).message.replace(/^[A-Z_]+: /, '')}; it is not overwritten: move it away, or choose another place with --backup FILE`)
    }
    if (ownerId === null) {
      throw new SetupError(SetupCodes.BACKUP_FOREIGN, `${JSON.stringify(path)} is the key backup of identity ${b.ownerId.slice(0, 16)}…, and this home has no identity: restore it with "dustbox setup --import-backup ${path}", or move it away`)
    }
    if (b.ownerId !== ownerId) {
      throw new SetupError(SetupCodes.BACKUP_FOREIGN, `${JSON.stringify(path)} is the key backup of another identity (${b.ownerId.slice(0, 16)}…, this home is ${ownerId.slice(0, 16)}…); it is not overwritten: move it away, or choose another place with --backup FILE`)
    }
    return b.bytes
  }

  /** The passphrase sealing a new backup: from --passphrase-file, else asked twice (echo off). */
  private async newPassphrase (backupPath: string): Promise<Uint8Array> {
    if (this.filePassphrase !== null) return Uint8Array.from(this.filePassphrase)
    if (!this.asking) throw new SetupError(SetupCodes.USAGE, `--yes needs --passphrase-file FILE to seal the key backup ${JSON.stringify(backupPath)} (a passphrase is never taken from the command line)`)
    const p = this.ask()
    const min = this.o.minPassphraseChars ?? MIN_PASSPHRASE_CHARS
    p.say(`Your key backup (${backupPath}) is sealed with a passphrase: at least ${min} characters; nothing you type is shown.`)
    p.say('Without the backup and this passphrase, your data cannot be recovered if this computer is lost.')
    return await askNewPassphrase(p, min)
  }

  /** Open a backup being imported: the passphrase from the file, else asked (a few tries). */
  private async openBackup (bytes: Uint8Array, path: string): Promise<Uint8Array> {
    if (this.filePassphrase !== null) return (await openKeyBackup(bytes, this.filePassphrase, path)).root
    if (!this.asking) throw new SetupError(SetupCodes.USAGE, `--yes needs --passphrase-file FILE to open ${JSON.stringify(path)}`)
    let last: unknown
    for (let i = 0; i < MAX_PASSPHRASE_ATTEMPTS; i++) {
      const pass = Buffer.from((await this.ask().askSecret(`Passphrase of ${path}`)).normalize('NFC'), 'utf8')
      try {
        return (await openKeyBackup(bytes, pass, path)).root
      } catch (err) {
        if (!(err instanceof SetupError) || err.code !== SetupCodes.PASSPHRASE_WRONG) throw err
        last = err
        this.ask().say('  wrong passphrase; try again')
      } finally {
        pass.fill(0)
      }
    }
    throw last
  }

  private async foldersFromFlags (list: readonly string[], ctx: (chosen: string[]) => FolderContext): Promise<string[]> {
    const chosen: string[] = []
    for (const f of list) {
      const c = await checkFolder(f, ctx(chosen))
      for (const w of c.warnings) this.say(`warning: ${w}`)
      for (const n of c.notes) this.say(`note: ${n}`)
      chosen.push(c.path)
    }
    return chosen
  }

  private async askFolders (ctx: (chosen: string[]) => FolderContext, configured: readonly string[]): Promise<string[]> {
    const p = this.ask()
    const chosen: string[] = []
    if (configured.length > 0) {
      p.say(`Watched folders now: ${configured.join(', ')}`)
      if (await p.confirm('Keep them?', true)) {
        for (const f of configured) {
          try { chosen.push((await checkFolder(f, ctx(chosen))).path) } catch (err) { p.say(`  dropped: ${(err as Error).message}`) }
        }
      }
    }
    p.say('Folders whose files dustbox stores encrypted on peers and replaces by small .f stubs.')
    let bad = 0
    for (let i = 0; i < 64 && bad < MAX_ATTEMPTS * 2; i++) {
      const a = await p.ask(chosen.length === 0 ? 'Folder (Tab completes; empty line: none, only donate space)' : 'Another folder (Tab completes; empty line: done)', { paths: 'dirs' })
      if (a === '') break
      try {
        const c = await checkFolder(a, ctx(chosen))
        for (const n of c.notes) p.say(`  ${n}`)
        let ok = true
        for (const w of c.warnings) {
          p.say(`  warning: ${w}`)
          ok = ok && await p.confirm('  Use it anyway?', false)
        }
        if (ok) chosen.push(c.path)
      } catch (err) {
        if (!(err instanceof SetupError) || err.code === SetupCodes.INPUT_ENDED) throw err
        bad++
        p.say(`  ${err.message}`)
      }
    }
    return chosen
  }

  /** PORT_IN_USE unless the agent's ports are free, or held by this home's own running agent. */
  private async checkPorts (host: string, port: number, dhtPort = port + 1): Promise<void> {
    if (port === 0) return
    const running = await runningAgent(this.o.home)
    const wanted = agentPorts(port, dhtPort).filter(w => !(running !== null && (running.port === w.port || (w.role === 'DHT' && running.dhtPort === w.port))))
    await checkPortsFree(host, wanted)
  }

  private async checkFreeSpace (home: string, donate: number): Promise<void> {
    if (donate === 0) return
    let dir = home
    for (let i = 0; i < 64; i++) {
      try {
        const st = await fsp.statfs(dir)
        const free = st.bavail * st.bsize
        if (free < donate) this.say(`warning: donating ${humanBytes(donate)}, but the file system of ${dir} has only ${humanBytes(free)} free; the agent stores others' shards there as space allows`)
        return
      } catch {
        const up = dirname(dir)
        if (up === dir) return
        dir = up
      }
    }
  }
}
