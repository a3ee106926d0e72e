// The printable (paper) form of a key backup (docs/setup.md § Key export and import): a header line
// with the owner id, the 140 backup bytes in Crockford base32 as numbered lines of 6 groups of 4
// characters, each with 2 check characters (a typo is named by its line), and a whole-content check
// line. Strict codec: decoding tolerates case, spaces, '-' and Crockford's I/L→1, O→0, nothing else,
// and checks every line, the content check, the backup's own format and the header's owner id.

import { createHash } from 'node:crypto'
import { base32 } from '../net/peer-id.js'
import { SetupError, SetupCodes } from './errors.js'
import { decodeKeyBackup, KEY_BACKUP_BYTES } from './key-backup-format.js'

/** Crockford's base32 alphabet: digits and letters without I, L, O, U. Value = index. */
export const PRINTABLE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
export const PRINTABLE_VERSION = 1
/** The header line is this prefix followed by the 64-hex owner id. */
export const HEADER_PREFIX = `dustbox key backup v${PRINTABLE_VERSION} owner `
export const GROUP_CHARS = 4
export const GROUPS_PER_LINE = 6
/** Data characters on a full line (24), i.e. LINE_BYTES (15) bytes. */
export const LINE_CHARS = GROUP_CHARS * GROUPS_PER_LINE
export const LINE_BYTES = LINE_CHARS * 5 / 8
/** Check characters per numbered line: the first 10 bits of BLAKE2b-512(ASCII "NN:" || data). */
export const LINE_CHECK_CHARS = 2
/** Characters of the final check line: the first 40 bits of BLAKE2b-512(the backup bytes). */
export const SUM_CHARS = 8
export const CHECK_WORD = 'check'
/** Line numbers have two digits, so at most 99 data lines (1,485 bytes; a v1 backup takes 10). */
export const MAX_DATA_LINES = 99
/** Longest printable text read (bytes); the real one is ~390 bytes, the rest leaves room for comments. */
export const MAX_PRINTABLE_TEXT_BYTES = 16384
/** Longest single input line (characters). */
export const MAX_LINE_CHARS = 512

const VALUE = new Map<string, number>([...PRINTABLE_ALPHABET].map((c, i) => [c, i]))

/** Five bits per character, most significant first; the last character is padded with zero bits. */
export function base32Encode (bytes: Uint8Array): string {
  return base32(bytes, PRINTABLE_ALPHABET)
}

/** Inverse of base32Encode for canonical characters; null if the length or the padding bits are wrong. */
export function base32Decode (text: string): Uint8Array | null {
  if (!validCharCount(text.length)) return null
  const out = new Uint8Array(Math.floor(text.length * 5 / 8))
  let acc = 0
  let bits = 0
  let n = 0
  for (const c of text) {
    const v = VALUE.get(c)
    if (v === undefined) return null
    acc = ((acc << 5) | v) & 0xffff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[n++] = (acc >> bits) & 0xff
    }
  }
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) return null
  return out
}

/** Whether `n` characters are a whole number of bytes (fewer than 5 padding bits): n mod 8 ∈ {0,2,4,5,7}. */
function validCharCount (n: number): boolean {
  return ((n * 5) % 8) < 5
}

function blake2b512 (data: Uint8Array): Buffer {
  return createHash('blake2b512').update(data).digest()
}

/** The 2 check characters of numbered line `n` holding canonical data characters `data`. */
export function lineCheck (n: number, data: string): string {
  const d = blake2b512(Buffer.from(`${String(n).padStart(2, '0')}:${data}`, 'ascii'))
  return PRINTABLE_ALPHABET[d[0] >> 3] + PRINTABLE_ALPHABET[((d[0] & 7) << 2) | (d[1] >> 6)]
}

/** The 8 characters of the check line: the first 40 bits of BLAKE2b-512(bytes). */
export function contentCheck (bytes: Uint8Array): string {
  return base32Encode(blake2b512(bytes).subarray(0, 5))
}

const groups = (s: string): string => (s.match(/.{1,4}/g) ?? []).join(' ')

/** The printable text of a key backup (LF line ends, final LF). The bytes must decode as a backup. */
export function encodePrintable (backup: Uint8Array): string {
  const f = decodeKeyBackup(backup, 'key backup')
  const chars = base32Encode(backup)
  const lines = [HEADER_PREFIX + Buffer.from(f.owner).toString('hex')]
  const count = Math.ceil(chars.length / LINE_CHARS)
  if (count > MAX_DATA_LINES) throw new RangeError('key backup too long for the printable form')
  for (let i = 0; i < count; i++) {
    const data = chars.slice(i * LINE_CHARS, (i + 1) * LINE_CHARS)
    const n = i + 1
    lines.push(`${String(n).padStart(2, '0')}  ${groups(data)}  ${lineCheck(n, data)}`)
  }
  lines.push(`${CHECK_WORD} ${groups(contentCheck(backup))}`)
  return lines.join('\n') + '\n'
}

/** Whether text (after blank and '#' lines) starts like the printable form: used to auto-detect it. */
export function looksPrintable (text: string): boolean {
  for (const raw of text.replace(/^\uFEFF/, '').split('\n', 64)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    return /^dustbox\s+key\s+backup\b/i.test(line)
  }
  return false
}

/** Uppercase, spaces and '-' removed, I/L → 1, O → 0 (Crockford's reading rules). */
function canonical (s: string): string {
  return s.replace(/[\s-]/g, '').toUpperCase().replace(/[IL]/g, '1').replace(/O/g, '0')
}

function badChar (s: string): string | undefined {
  for (const c of s) if (!VALUE.has(c)) return c
  return undefined
}

const CROCKFORD_HINT = 'the printable form uses 0-9 and A-Z without I, L, O, U'

/**
 * Reads the printable form one line at a time, so a terminal can ask again for a mistyped line.
 * feed() either accepts a line (state advances) or throws a SetupError naming the line and changes
 * nothing. `name` is the file name (or "stdin") used in errors.
 */
export class PrintableReader {
  private owner: string | null = null
  private readonly data: string[] = []
  /** Set when a line shorter than LINE_CHARS was read: no further data line may follow. */
  private shortLine: number | null = null
  private sum: string | null = null
  private inputLine = 0

  constructor (private readonly name: string) {}

  /** What the next line must be: 'header', a data line number (or the check line), or 'done'. */
  get expecting (): 'header' | number | 'done' {
    if (this.owner === null) return 'header'
    if (this.sum !== null) return 'done'
    return this.data.length + 1
  }

  private fail (label: string, why: string): never {
    throw new SetupError(SetupCodes.BACKUP_INVALID, `${this.name}${label === '' ? '' : ` ${label}`} (input line ${this.inputLine}): ${why}`)
  }

  /** Feed one input line; returns true once the check line (the end) has been read. */
  feed (raw: string): boolean {
    this.inputLine++
    const line = raw.replace(/^\uFEFF/, '').trim()
    if (line === '' || line.startsWith('#')) return this.sum !== null
    if (line.length > MAX_LINE_CHARS) this.fail('', `the line is longer than ${MAX_LINE_CHARS} characters`)
    if (this.sum !== null) this.fail('after the check line', 'nothing may follow the check line (it ends the backup)')
    if (this.owner === null) {
      this.header(line)
      return false
    }
    // Numbered lines start with digits, so a line starting with the word (spaces optional) is the check line.
    if (canonical(line).startsWith(CHECK_WORD.toUpperCase())) {
      this.checkLine(canonical(line).slice(CHECK_WORD.length))
      return true
    }
    this.dataLine(line)
    return false
  }

  private header (line: string): void {
    const m = /^dustbox\s+key\s+backup\s+v(\d{1,3})\s+owner\s+(.*)$/i.exec(line)
    if (m === null) this.fail('header', `the first line must be "${HEADER_PREFIX}<owner id>"`)
    if (Number(m[1]) !== PRINTABLE_VERSION) this.fail('header', `printable key backup version ${m[1]} is not supported (this dustbox reads version ${PRINTABLE_VERSION})`)
    // Hex has no I, L or O: read them as 1 and 0 here too.
    const owner = m[2].replace(/[\s-]/g, '').toLowerCase().replace(/[il]/g, '1').replace(/o/g, '0')
    if (!/^[0-9a-f]{64}$/.test(owner)) this.fail('header', `the owner id must be 64 hex digits (found ${owner.length} characters${/[^0-9a-f]/.test(owner) ? ', not all hex' : ''})`)
    this.owner = owner
  }

  private dataLine (line: string): void {
    const c = canonical(line)
    const expected = this.data.length + 1
    if (!/^[0-9]{2}/.test(c)) this.fail(`line ${String(expected).padStart(2, '0')}`, 'a numbered line must start with its two-digit number (e.g. 01), and the last line is "check XXXX XXXX"')
    const n = Number(c.slice(0, 2))
    const label = `line ${c.slice(0, 2)}`
    if (n === 0 || n > MAX_DATA_LINES) this.fail(label, `line numbers run from 01 to ${MAX_DATA_LINES}`)
    if (n < expected) this.fail(label, `line ${c.slice(0, 2)} was already read (lines must come once, in order; expected line ${String(expected).padStart(2, '0')})`)
    if (n > expected) this.fail(label, `line ${String(expected).padStart(2, '0')} is missing (lines must come once, in order)`)
    if (this.shortLine !== null) this.fail(label, `line ${String(this.shortLine).padStart(2, '0')} has fewer than ${LINE_CHARS} characters, so it must be the last one: a character is missing from it`)
    const body = c.slice(2)
    const bad = badChar(body)
    if (bad !== undefined) this.fail(label, `${JSON.stringify(bad)} is not a character of this backup (${CROCKFORD_HINT})`)
    if (body.length <= LINE_CHECK_CHARS) this.fail(label, `the line has no data, only ${body.length} character${body.length === 1 ? '' : 's'} after its number`)
    const data = body.slice(0, -LINE_CHECK_CHARS)
    const check = body.slice(-LINE_CHECK_CHARS)
    if (lineCheck(n, data) !== check) {
      const len = data.length === LINE_CHARS ? '' : ` (it has ${data.length} data characters; a full line has ${LINE_CHARS})`
      this.fail(label, `the check characters ${check} do not match: a character of this line is mistyped, missing or extra${len}`)
    }
    if (data.length > LINE_CHARS) this.fail(label, `the line has ${data.length} data characters; a line has at most ${LINE_CHARS}`)
    if (data.length < LINE_CHARS) {
      if (!validCharCount(data.length)) this.fail(label, `${data.length} characters do not make whole bytes: a character is missing or extra`)
      this.shortLine = n
    }
    this.data.push(data)
  }

  private checkLine (rest: string): void {
    const label = 'check line'
    if (this.data.length === 0) this.fail(label, 'no numbered line came before the check line')
    const c = canonical(rest)
    const bad = badChar(c)
    if (bad !== undefined) this.fail(label, `${JSON.stringify(bad)} is not a character of this backup (${CROCKFORD_HINT})`)
    if (c.length !== SUM_CHARS) this.fail(label, `the check line has ${c.length} characters after "${CHECK_WORD}"; it has ${SUM_CHARS}`)
    this.sum = c
  }

  /** The backup bytes, once the check line was read: every whole-content check done. */
  finish (): Uint8Array {
    if (this.owner === null) throw new SetupError(SetupCodes.BACKUP_INVALID, `${this.name} is empty: no "${HEADER_PREFIX}…" line`)
    if (this.sum === null) {
      const next = String(this.data.length + 1).padStart(2, '0')
      throw new SetupError(SetupCodes.BACKUP_INVALID, `${this.name} ends before its check line ("${CHECK_WORD} XXXX XXXX")${this.data.length > 0 ? `: line ${next} or the check line is missing` : ': no numbered line'}`)
    }
    const chars = this.data.join('')
    const bytes = base32Decode(chars)
    if (bytes === null) {
      // Each line was checked, so a whole line must be missing or extra.
      throw new SetupError(SetupCodes.BACKUP_INVALID, `${this.name}: its ${this.data.length} lines do not make whole bytes (is a line missing?)`)
    }
    if (contentCheck(bytes) !== this.sum) {
      throw new SetupError(SetupCodes.BACKUP_INVALID, `${this.name} check line: it does not match the numbered lines: the check line is mistyped, or a numbered line is missing at the end (${this.data.length} read)`)
    }
    if (bytes.byteLength !== KEY_BACKUP_BYTES) {
      throw new SetupError(SetupCodes.BACKUP_INVALID, `${this.name}: its lines hold ${bytes.byteLength} bytes; a version 1 key backup has ${KEY_BACKUP_BYTES} (is a line missing?)`)
    }
    const f = decodeKeyBackup(bytes, this.name)
    const inside = Buffer.from(f.owner).toString('hex')
    if (inside !== this.owner) {
      throw new SetupError(SetupCodes.BACKUP_INVALID, `${this.name} header: the owner id ${this.owner.slice(0, 16)}… does not match the one inside the backup (${inside.slice(0, 16)}…): the header line is mistyped`)
    }
    return bytes
  }
}

/** Decode a whole printable text; errors name `name` and the line. */
export function decodePrintable (text: string, name: string): Uint8Array {
  if (Buffer.byteLength(text, 'utf8') > MAX_PRINTABLE_TEXT_BYTES) throw new SetupError(SetupCodes.BACKUP_INVALID, `${name} is larger than ${MAX_PRINTABLE_TEXT_BYTES} bytes: not a printable key backup`)
  const r = new PrintableReader(name)
  for (const line of text.split(/\r?\n/)) r.feed(line)
  return r.finish()
}
