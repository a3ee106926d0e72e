// `dustbox key export|import|show` (docs/setup.md § Key export and import): seal this home's root
// secret into a key backup (binary, or the printable form for paper), restore a home's secret.key
// from either form (auto-detected; `-` reads stdin, typed line by line on a terminal), and show the
// owner (and device) id. Exit codes: 0 ok, 1 failure (`CODE: message` on stderr), 2 usage error.
// Passphrases come from --passphrase-file or a prompt (echo off), never from argv; no secret is
// ever printed, and buffers holding one are zeroed after use.

import { promises as fsp } from 'node:fs'
import { join, resolve } from 'node:path'
import { Writable } from 'node:stream'
import type { Command } from 'commander'
import { parseTunables } from '../agent/config.js'
import { errorLine } from '../agent/errors.js'
import { INDEX_FILE } from '../agent/index-db.js'
import { peerIdFromKey } from '../net/peer-id.js'
import { deriveKeys, loadCrypto, loadSecret, StubError, StubCodes, SECRET_FILE, fromHex, toHex } from '../stubs/index.js'
import { encodeSecretFile } from '../stubs/keys.js'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { createDeviceKey } from '../agent/device.js'
import { SetupError, SetupCodes, fileError } from './errors.js'
import {
  DEFAULT_KDF, KEY_BACKUP_FILE, MIN_PASSPHRASE_CHARS, MAX_PASSPHRASE_ATTEMPTS, askNewPassphrase, openKeyBackup, passphraseBytes, readBounded,
  readPassphraseFile, sealKeyBackup
} from './key-backup.js'
import { decodeKeyBackup, KEY_BACKUP_MAGIC } from './key-backup-format.js'
import { decodePrintable, encodePrintable, looksPrintable, PrintableReader, MAX_PRINTABLE_TEXT_BYTES } from './printable-key.js'
import { Prompter } from './prompts.js'
import { runningAgent } from './ports.js'

/** Passphrase prompts before giving up (export: pairs that must match; import: wrong passphrases). */
export { MAX_PASSPHRASE_ATTEMPTS }
/** Times a terminal user may retype one printable line. */
export const MAX_LINE_ATTEMPTS = 5
/** Input lines read from stdin for one printable backup (blank and '#' lines included). */
export const MAX_INPUT_LINES = 200
/** Largest file `key import` reads (a binary backup is 140 bytes, a printable one ~390). */
export const MAX_IMPORT_BYTES = MAX_PRINTABLE_TEXT_BYTES
/** The device key of this machine (docs/keys.md §10, agent/device.ts): `dustbox-device-key v1\n<64 hex>\n`. */
export const DEVICE_KEY_FILE = 'device.key'
/** The device id is the first 8 hex digits of the device's Ed25519 public key (docs/keys.md §10). */
export const DEVICE_ID_HEX = 8
export const MAX_DEVICE_KEY_BYTES = 4096

export interface KeyCommandContext {
  readonly io: { out: (line: string) => void, err: (line: string) => void }
  /** The resolved dustbox home (--home, $DUSTBOX_HOME, default). */
  readonly home: () => string
  readonly setExitCode: (code: number) => void
}

interface ExportFlags { out?: string, printable?: boolean, passphraseFile?: string, force?: boolean }
interface ImportFlags { passphraseFile?: string, force?: boolean }

const strip = (err: unknown): string => (err as Error).message.replace(/^[A-Z_]+: /, '')
const exists = async (p: string): Promise<boolean> => await fsp.lstat(p).then(() => true, () => false)

export function registerKeyCommands (program: Command, ctx: KeyCommandContext): void {
  const fail = (err: unknown): void => {
    ctx.io.err(errorLine(err))
    ctx.setExitCode(err instanceof SetupError && err.code === SetupCodes.USAGE ? 2 : 1)
  }
  const key = program.command('key')
    .description('export this home\'s identity as a passphrase-sealed key backup (a file, or printable for paper), import one, or show the owner id')

  key.command('export')
    .description(`seal this home's root secret with a passphrase into a key backup (default ./${KEY_BACKUP_FILE}; --printable: text for paper, to stdout unless --out)`)
    .option('--out <file>', `where to write it (default ./${KEY_BACKUP_FILE}; with --printable, stdout; "-" is stdout for --printable)`)
    .option('--printable', 'write the printable form (Crockford base32 lines with check characters) to type back in later')
    .option('--passphrase-file <file>', 'read the passphrase from this file (its only line) instead of asking')
    .option('--force', 'overwrite an existing file')
    .action(async (f: ExportFlags) => {
      try { await exportKey(ctx, f) } catch (err) { fail(err) }
    })

  key.command('import')
    .description('restore this home\'s identity (secret.key) from a key backup file or its printable form (auto-detected); "-" reads stdin (type the printable lines there)')
    .argument('<file>', 'the key backup, binary or printable, or "-" for stdin')
    .option('--passphrase-file <file>', 'read the passphrase from this file (its only line) instead of asking')
    .option('--force', 'replace a different identity of this home (refused while its index lists files or its agent runs; the old secret is kept aside)')
    .action(async (file: string, f: ImportFlags) => {
      try { await importKey(ctx, file, f) } catch (err) { fail(err) }
    })

  key.command('show')
    .description('show this home\'s owner id (and device id); never a secret')
    .option('--json', 'print as one JSON object')
    .action(async (f: { json?: boolean }) => {
      try { await showKey(ctx, f.json === true) } catch (err) { fail(err) }
    })
}

/**
 * One prompter on stdin for the whole command. Prompts go to stderr (stdout may carry the backup),
 * and only on a terminal: piped answers are read without questions printed. Messages always go to stderr.
 */
class Asker {
  private p: Prompter | null = null
  get prompter (): Prompter {
    this.p ??= new Prompter({ input: process.stdin, output: this.terminal ? process.stderr : new Writable({ write: (_c, _e, cb) => { cb() } }) })
    return this.p
  }

  get terminal (): boolean { return process.stdin.isTTY === true }
  say (line: string): void { process.stderr.write(line + '\n') }
  close (): void { this.p?.close() }
}

/** A Prompter error when stdin ended, reworded for these commands. */
function ended (err: unknown, what: string): unknown {
  if (err instanceof SetupError && err.code === SetupCodes.INPUT_ENDED) {
    return new SetupError(SetupCodes.INPUT_ENDED, /cancel/.test(err.message) ? `cancelled (Ctrl-C); nothing was written` : `stdin ended before ${what}; nothing was written`)
  }
  return err
}

// ---- export ----

async function exportKey (ctx: KeyCommandContext, f: ExportFlags): Promise<void> {
  const printable = f.printable === true
  if (f.out === '-' && !printable) throw new SetupError(SetupCodes.USAGE, '--out - (stdout) needs --printable: the binary backup goes to a file')
  if (f.out !== undefined && f.out.trim() === '') throw new SetupError(SetupCodes.USAGE, '--out needs a file name')
  const toStdout = printable && (f.out === undefined || f.out === '-')
  const target = toStdout ? null : resolve(f.out ?? KEY_BACKUP_FILE)
  const say = toStdout ? ctx.io.err : ctx.io.out
  if (target !== null && f.force !== true && await exists(target)) {
    throw new SetupError(SetupCodes.FILE_FAILED, `${JSON.stringify(target)} already exists; refusing to overwrite it (use --force, or choose another --out FILE)`)
  }
  const home = ctx.home()
  const crypto = await loadCrypto()
  const root = await loadSecret(home)
  const asker = new Asker()
  let passphrase: Uint8Array | null = null
  try {
    const ownerId = deriveKeys(crypto, root).ownerId
    passphrase = f.passphraseFile !== undefined
      ? await readPassphraseFile(resolve(f.passphraseFile))
      : await newPassphrase(asker)
    const tun = parseTunables(process.env.DUSTBOX_TUNABLES)
    const kdf = {
      opslimit: tun.kdfOpslimit ?? DEFAULT_KDF.opslimit,
      memlimitKib: tun.kdfMemlimitKib ?? DEFAULT_KDF.memlimitKib
    }
    say(`sealing the key of ${ownerId} with Argon2id (${kdf.memlimitKib} KiB, ${kdf.opslimit} pass${kdf.opslimit === 1 ? '' : 'es'})…`)
    const backup = await sealKeyBackup(root, passphrase, kdf)
    let bytes: Uint8Array = backup
    if (printable) {
      const text = encodePrintable(backup)
      // Self-check: what is printed reads back to the same bytes.
      if (!Buffer.from(decodePrintable(text, 'printable')).equals(backup)) throw new Error('the printable form does not read back (a bug)')
      bytes = Buffer.from(text, 'ascii')
      if (toStdout) {
        for (const line of text.replace(/\n$/, '').split('\n')) ctx.io.out(line)
      }
    }
    if (target !== null) await writeNew(target, bytes, f.force === true)
    say(`exported the key backup of ${ownerId}${target !== null ? ` to ${JSON.stringify(target)}` : ' (printable, above)'}`)
    say(printable
      ? 'Print or write it down and keep it away from this computer; restore with "dustbox key import FILE" (or "-" to type it in) and the passphrase.'
      : 'Copy it away from this computer; restore with "dustbox key import FILE" and the passphrase.')
  } finally {
    asker.close()
    root.fill(0)
    passphrase?.fill(0)
  }
}

/** Atomic write, mode 0600; never over an existing file unless `force`. */
async function writeNew (path: string, bytes: Uint8Array, force: boolean): Promise<void> {
  try {
    await writeFileAtomic(path, bytes, { mode: 0o600, noClobber: !force })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new SetupError(SetupCodes.FILE_FAILED, `${JSON.stringify(path)} appeared meanwhile; refusing to overwrite it (use --force)`)
    throw fileError('write', path, err)
  }
}

/** A new passphrase, asked twice with echo off (as `dustbox setup` does). */
async function newPassphrase (asker: Asker): Promise<Uint8Array> {
  const p = asker.prompter
  if (asker.terminal) asker.say(`The key backup is sealed with a passphrase: at least ${MIN_PASSPHRASE_CHARS} characters; nothing you type is shown.`)
  try {
    return await askNewPassphrase({ askSecret: async q => await p.askSecret(q), say: line => asker.say(line) })
  } catch (err) { throw ended(err, 'the passphrase was given (use --passphrase-file FILE to script it)') }
}

// ---- import ----

interface Source { bytes: Uint8Array, name: string }

async function importKey (ctx: KeyCommandContext, file: string, f: ImportFlags): Promise<void> {
  if (file.trim() === '') throw new SetupError(SetupCodes.USAGE, 'key import needs a FILE (or - for stdin)')
  const home = ctx.home()
  const secretPath = join(home, SECRET_FILE)
  const asker = new Asker()
  let passphrase: Uint8Array | null = null
  let root: Uint8Array | null = null
  let oldRoot: Uint8Array | null = null
  try {
    // The passphrase file first: a bad one is reported before anything is typed.
    if (f.passphraseFile !== undefined) passphrase = await readPassphraseFile(resolve(f.passphraseFile), 1)
    const src = await readSource(file, f.passphraseFile === undefined, asker)
    const owner = toHex(decodeKeyBackup(src.bytes, src.name).owner)

    // What the home holds now.
    const crypto = await loadCrypto()
    oldRoot = await existingSecret(home)
    const oldOwner = oldRoot === null ? null : deriveKeys(crypto, oldRoot).ownerId
    if (oldOwner === owner) {
      ctx.io.out(`identity ${owner} is already this home's identity (${JSON.stringify(secretPath)}): already imported, nothing changed`)
      return
    }
    if (oldOwner !== null) {
      if (f.force !== true) {
        throw new SetupError(SetupCodes.IDENTITY_EXISTS, `${JSON.stringify(home)} already has identity ${oldOwner.slice(0, 16)}…, and ${src.name === 'stdin' ? 'stdin' : JSON.stringify(src.name)} is the backup of ${owner.slice(0, 16)}…; import into another home (--home DIR), or replace it with --force`)
      }
      await checkReplaceable(home, oldOwner)
    }

    // Open the backup.
    root = passphrase !== null
      ? (await openKeyBackup(src.bytes, passphrase, src.name)).root
      : await openAsking(asker, src)

    if (oldRoot === null) {
      try {
        await fsp.mkdir(home, { recursive: true, mode: 0o700 })
        await writeFileAtomic(secretPath, Buffer.from(encodeSecretFile(root), 'ascii'), { mode: 0o600, noClobber: true })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new SetupError(SetupCodes.IDENTITY_EXISTS, `${JSON.stringify(secretPath)} appeared meanwhile; refusing to replace an identity`)
        throw fileError('write', secretPath, err)
      }
      ctx.io.out(`imported identity ${owner} into ${JSON.stringify(secretPath)}`)
    } else {
      const aside = await keepAside(home, secretPath, oldOwner!)
      try {
        await writeFileAtomic(secretPath, Buffer.from(encodeSecretFile(root), 'ascii'), { mode: 0o600 })
      } catch (err) { throw fileError('write', secretPath, err) }
      ctx.io.out(`imported identity ${owner} into ${JSON.stringify(secretPath)}, replacing ${oldOwner!} (its secret is kept in ${JSON.stringify(aside)})`)
    }
    await createDeviceKey(home) // another device of this owner (docs/sync.md §2)
    ctx.io.out('next: "dustbox restore --to DIR" brings your folders back from the peers; "dustbox setup" configures this machine')
  } finally {
    asker.close()
    passphrase?.fill(0)
    root?.fill(0)
    oldRoot?.fill(0)
  }
}

/** The home's current root secret, or null when it has none. */
async function existingSecret (home: string): Promise<Uint8Array | null> {
  try {
    return await loadSecret(home)
  } catch (err) {
    if (err instanceof StubError && err.code === StubCodes.KEY_MISSING) return null
    throw err
  }
}

/** --force may replace another identity only while nothing depends on it here. */
async function checkReplaceable (home: string, oldOwner: string): Promise<void> {
  const indexPath = join(home, INDEX_FILE)
  const files = await indexedFiles(indexPath)
  if (files !== null && files > 0) {
    throw new SetupError(SetupCodes.IDENTITY_EXISTS, `refusing to replace identity ${oldOwner.slice(0, 16)}… even with --force: its index ${JSON.stringify(indexPath)} lists ${files} file${files === 1 ? '' : 's'} stored under it, which only that key can read back; import into another home (--home DIR)`)
  }
  if (await runningAgent(home) !== null) {
    throw new SetupError(SetupCodes.IDENTITY_EXISTS, `refusing to replace identity ${oldOwner.slice(0, 16)}…: the agent of ${JSON.stringify(home)} is running with it; stop it first (dustbox stop)`)
  }
}

/** Rows in the index's files table (null when there is no index). Read-only. */
async function indexedFiles (path: string): Promise<number | null> {
  if (!await exists(path)) return null
  const { default: Database } = await import('better-sqlite3')
  let db: InstanceType<typeof Database> | null = null
  try {
    db = new Database(path, { readonly: true, fileMustExist: true })
    const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'files'").get()
    if (table === undefined) return 0
    return (db.prepare('SELECT COUNT(*) AS n FROM files').get() as { n: number }).n
  } catch (err) {
    throw new SetupError(SetupCodes.FILE_FAILED, `cannot read ${JSON.stringify(path)} to check that it lists no files (${(err as NodeJS.ErrnoException).code ?? strip(err)}); refusing to replace the identity`, { cause: err })
  } finally {
    db?.close()
  }
}

/** Copy the current secret file to secret.key.replaced-<owner prefix>-<time> (0600, never over a file). */
async function keepAside (home: string, secretPath: string, oldOwner: string): Promise<string> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')
  const aside = join(home, `${SECRET_FILE}.replaced-${oldOwner.slice(0, 16)}-${stamp}`)
  const bytes = await fsp.readFile(secretPath)
  try {
    await writeFileAtomic(aside, bytes, { mode: 0o600, noClobber: true })
  } catch (err) {
    throw fileError('keep the old secret in', aside, err)
  } finally {
    bytes.fill(0)
  }
  return aside
}

/** The backup bytes, from a file or stdin, binary or printable. */
async function readSource (file: string, stdinAnswers: boolean, asker: Asker): Promise<Source> {
  if (file === '-') {
    // With the passphrase also coming from stdin (or on a terminal), read lines through the prompter.
    if (stdinAnswers || asker.terminal) return { bytes: await readPrintableLines(asker), name: 'stdin' }
    return { bytes: parseBackup(await readStdin(MAX_IMPORT_BYTES), 'stdin'), name: 'stdin' }
  }
  const path = resolve(file)
  return { bytes: parseBackup(await readBounded(path, MAX_IMPORT_BYTES, 'key backup', SetupCodes.BACKUP_INVALID), path), name: path }
}

/** Auto-detect: the binary file starts with "DUSTKEY\n"; the printable form with "dustbox key backup". */
function parseBackup (bytes: Uint8Array, name: string): Uint8Array {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (b.subarray(0, KEY_BACKUP_MAGIC.byteLength).equals(KEY_BACKUP_MAGIC)) {
    decodeKeyBackup(b, name)
    return bytes
  }
  const shown = name === 'stdin' ? 'stdin' : JSON.stringify(name)
  let text: string | null = null
  try { text = new TextDecoder('utf-8', { fatal: true }).decode(b) } catch { text = null }
  if (text === null || !looksPrintable(text)) {
    throw new SetupError(SetupCodes.BACKUP_INVALID, `${shown} is neither a dustbox key backup (it does not start with "DUSTKEY") nor its printable form (a first line "dustbox key backup v1 owner …")`)
  }
  return decodePrintable(text, shown)
}

/** The printable form read line by line from stdin; on a terminal a rejected line is asked again. */
async function readPrintableLines (asker: Asker): Promise<Uint8Array> {
  const p = asker.prompter
  const terminal = asker.terminal
  const r = new PrintableReader('stdin')
  if (terminal) asker.say('Type the printable key backup: its first line, the numbered lines (case and spaces do not matter), then its check line.')
  try {
    let tries = 0
    for (let i = 0; i < MAX_INPUT_LINES; i++) {
      const exp = r.expecting
      const a = await p.ask(exp === 'header' ? 'First line (dustbox key backup v1 owner …)' : `Line ${String(exp).padStart(2, '0')} (or the check line)`)
      try {
        if (r.feed(a)) return r.finish()
        tries = 0
      } catch (err) {
        if (!terminal || !(err instanceof SetupError) || ++tries >= MAX_LINE_ATTEMPTS) throw err
        asker.say(`  ${strip(err)}; type it again`)
      }
    }
  } catch (err) { throw ended(err, 'the check line of the printable key backup') }
  throw new SetupError(SetupCodes.BACKUP_INVALID, `stdin: more than ${MAX_INPUT_LINES} lines without the check line`)
}

/** Ask the passphrase until it opens the backup (a few tries); wrong ones are said, never echoed. */
async function openAsking (asker: Asker, src: Source): Promise<Uint8Array> {
  const p = asker.prompter
  let last: unknown
  try {
    for (let i = 0; i < MAX_PASSPHRASE_ATTEMPTS; i++) {
      const pass = Buffer.from((await p.askSecret(`Passphrase of ${src.name === 'stdin' ? 'the key backup' : src.name}`)).normalize('NFC'), 'utf8')
      try {
        return (await openKeyBackup(src.bytes, pass, src.name)).root
      } catch (err) {
        if (!(err instanceof SetupError) || err.code !== SetupCodes.PASSPHRASE_WRONG) throw err
        last = err
        if (i < MAX_PASSPHRASE_ATTEMPTS - 1) asker.say('  wrong passphrase; try again')
      } finally {
        pass.fill(0)
      }
    }
  } catch (err) { throw ended(err, 'the passphrase was given (use --passphrase-file FILE to script it)') }
  throw last
}

async function readStdin (max: number): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of process.stdin) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(String(c))
    n += b.byteLength
    if (n > max) throw new SetupError(SetupCodes.BACKUP_INVALID, `stdin holds more than ${max} bytes: not a key backup`)
    chunks.push(b)
  }
  if (n === 0) throw new SetupError(SetupCodes.BACKUP_INVALID, 'stdin is empty: no key backup')
  return Buffer.concat(chunks)
}


// ---- show ----

async function showKey (ctx: KeyCommandContext, json: boolean): Promise<void> {
  const home = ctx.home()
  const crypto = await loadCrypto()
  const root = await loadSecret(home)
  const ownerId = deriveKeys(crypto, root).ownerId
  root.fill(0)
  const device = await readDeviceKey(join(home, DEVICE_KEY_FILE))
  let devicePk: Uint8Array | null = null
  if (device !== null) {
    devicePk = crypto.signKeypair(device).publicKey
    device.fill(0)
  }
  if (json) {
    ctx.io.out(JSON.stringify({ home, owner: ownerId, ...(devicePk !== null ? { device: toHex(devicePk).slice(0, DEVICE_ID_HEX), deviceKey: toHex(devicePk), devicePeerId: peerIdFromKey(devicePk) } : {}) }))
    return
  }
  ctx.io.out(`owner   ${ownerId}`)
  if (devicePk !== null) ctx.io.out(`device  ${toHex(devicePk).slice(0, DEVICE_ID_HEX)} (public key ${toHex(devicePk)})`)
}

/** The device key's 32-byte seed, or null when the home has none; a damaged file is an error. */
async function readDeviceKey (path: string): Promise<Uint8Array | null> {
  let text: string
  try {
    const st = await fsp.lstat(path)
    if (!st.isFile()) throw new SetupError(SetupCodes.FILE_FAILED, `${JSON.stringify(path)} is not a regular file`)
    if (st.size > MAX_DEVICE_KEY_BYTES) throw new SetupError(SetupCodes.FILE_FAILED, `${JSON.stringify(path)} is larger than ${MAX_DEVICE_KEY_BYTES} bytes: not a device key`)
    text = await fsp.readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw fileError('read', path, err)
  }
  // As strict as agent/device.ts: the header line, 64 lowercase hex digits, LF endings.
  const m = /^dustbox-device-key v1\n([0-9a-f]{64})\n$/.exec(text)
  if (m === null) throw new SetupError(SetupCodes.FILE_FAILED, `${JSON.stringify(path)} is not a dustbox device key file (expected the line "dustbox-device-key v1" and a line of 64 lowercase hex digits)`)
  const seed = fromHex(m[1], 32)!
  return seed
}
