// The `.f` stub format v1: encode and decode (docs/stub-format.md). A stub is UTF-8 text a person
// can read; every line before `mac` is authenticated with the owner's stub key. Decoding trusts
// nothing: sizes bounded before reading, every field checked, and errors name the stub.

import type { Crypto } from './crypto.js'
import { HASH_BYTES, PUBLIC_KEY_BYTES, toHex, fromHex, equalBytes } from './crypto.js'
import { StubError, StubCodes } from './errors.js'
import type { ChunkerParams } from './chunker.js'
import { BLOCK_OVERHEAD, MAX_PLAIN_BLOCK } from './block-codec.js'
import { nameProblem } from './names.js'

export const STUB_MAGIC = 'dustbox-stub'
export const STUB_VERSION = 1
export const CHUNKER_NAME = 'fastcdc32'
/** Stubs larger than this are refused unread. */
export const MAX_STUB_BYTES = 64 * 1024 * 1024
/** At most this many blocks in one stub (~390 GiB at the 1 MiB average block). */
export const MAX_BLOCKS = 400_000
const MAX_COMMENT_LINES = 16
const MAX_COMMENT_BYTES = 2048

export interface StubBlock {
  /** BLAKE2b-256 of the encrypted block: its address in stores and on peers. */
  readonly id: Uint8Array
  /** Keyed plaintext hash; derives the block key. */
  readonly ph: Uint8Array
  /** Plaintext bytes. */
  readonly size: number
  /** Encrypted block bytes. */
  readonly stored: number
}

export interface Stub {
  /** Owner id: hex of the Ed25519 public key. */
  readonly owner: string
  readonly name: string
  readonly size: number
  /** Permission bits (& 0o7777). */
  readonly mode: number
  readonly mtimeNs: bigint
  /** Keyed BLAKE2b-256 of the whole file. */
  readonly hash: Uint8Array
  readonly chunker: ChunkerParams
  readonly blocks: readonly StubBlock[]
}

export function isStubBytes (head: Uint8Array): boolean {
  return Buffer.from(head.buffer, head.byteOffset, Math.min(head.byteLength, STUB_MAGIC.length + 1)).toString('latin1') === STUB_MAGIC + ' '
}

function humanSize (n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++ }
  return u === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[u]}`
}

/** Quote a name for a POSIX shell on one line: '...' or, with control characters, $'...'. */
export function shellQuote (s: string): string {
  if (!/[\u0000-\u001f\u007f]/.test(s)) return "'" + s.replace(/'/g, "'\\''") + "'"
  return "$'" + s.replace(/[\\']/g, c => '\\' + c).replace(/[\u0000-\u001f\u007f]/g, c => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0')) + "'"
}

/** Encode a stub; `stubFileName` is only used in the human-readable comment. */
export function encodeStub (crypto: Crypto, macKey: Uint8Array, stub: Stub, stubFileName: string): Buffer {
  const lines: string[] = []
  lines.push(`${STUB_MAGIC} v${STUB_VERSION}`)
  const shown = JSON.stringify(stub.name).slice(1, -1)
  lines.push(`# dustbox stub: "${shown}" (${humanSize(stub.size)}) is stored encrypted in the owner's dustbox.`)
  lines.push(`# To get the file back, double-click this file or run: dustbox open ${shellQuote(stubFileName)}`)
  lines.push('# Do not edit: any change makes this stub invalid. Format: docs/stub-format.md')
  lines.push(`owner ed25519:${stub.owner}`)
  lines.push(`name ${JSON.stringify(stub.name)}`)
  lines.push(`size ${stub.size}`)
  lines.push(`mode ${stub.mode.toString(8).padStart(4, '0')}`)
  lines.push(`mtime ${stub.mtimeNs}`)
  lines.push(`hash ${toHex(stub.hash)}`)
  lines.push(`chunker ${CHUNKER_NAME} ${stub.chunker.min} ${stub.chunker.avg} ${stub.chunker.max}`)
  lines.push(`blocks ${stub.blocks.length}`)
  for (const b of stub.blocks) lines.push(`block ${toHex(b.id)} ${toHex(b.ph)} ${b.size} ${b.stored}`)
  const body = Buffer.from(lines.join('\n') + '\n', 'utf8')
  const mac = crypto.hash(body, macKey)
  return Buffer.concat([body, Buffer.from(`mac ${toHex(mac)}\n`, 'ascii')])
}

const DEC_RE = /^(0|[1-9][0-9]{0,15})$/
const MTIME_RE = /^-?(0|[1-9][0-9]{0,19})$/
const MODE_RE = /^[0-7]{4}$/

export interface DecodeOptions {
  /** Our owner id; a stub with another owner is STUB_FOREIGN. */
  ownerId: string
  macKey: Uint8Array
  /** Parse only, skipping the owner and MAC checks (`dustbox inspect` of a foreign stub). */
  unauthenticated?: boolean
}

/**
 * Decode and authenticate stub bytes. `label` names the stub in errors (its path).
 * STUB_INVALID for anything malformed or altered, STUB_FOREIGN for another owner's stub.
 */
export function decodeStub (crypto: Crypto, bytes: Uint8Array, opts: DecodeOptions, label: string): Stub {
  const where = JSON.stringify(label)
  const bad = (why: string): StubError => new StubError(StubCodes.STUB_INVALID, `${where} is not a valid dustbox stub: ${why}`)
  if (bytes.byteLength === 0) throw bad('file is empty')
  if (bytes.byteLength > MAX_STUB_BYTES) throw bad(`larger than ${MAX_STUB_BYTES} bytes`)
  if (!isStubBytes(bytes)) throw bad(`does not start with "${STUB_MAGIC} "`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw bad('not valid UTF-8 text')
  }
  if (!text.endsWith('\n')) throw bad('truncated (no final newline)')
  const lines = text.slice(0, -1).split('\n')
  let li = 0
  const next = (what: string): string => {
    if (li >= lines.length) throw bad(`truncated before "${what}"`)
    return lines[li++]
  }
  const field = (key: string): string => {
    const line = next(key)
    if (!line.startsWith(key + ' ')) throw bad(`line ${li}: expected "${key} ...", found ${JSON.stringify(line.slice(0, 40))}`)
    return line.slice(key.length + 1)
  }
  const decimal = (key: string, max: number): number => {
    const v = field(key)
    if (!DEC_RE.test(v)) throw bad(`${key} is not a decimal number`)
    const n = Number(v)
    if (n > max) throw bad(`${key} ${n} is larger than ${max}`)
    return n
  }

  const magic = next('magic')
  const m = /^dustbox-stub v([0-9]{1,6})$/.exec(magic)
  if (m === null) throw bad('bad first line')
  if (Number(m[1]) !== STUB_VERSION) throw bad(`format version ${m[1]} is not supported (this dustbox reads v${STUB_VERSION})`)
  let comments = 0
  while (li < lines.length && lines[li].startsWith('#')) {
    if (++comments > MAX_COMMENT_LINES || Buffer.byteLength(lines[li]) > MAX_COMMENT_BYTES) throw bad('too many or too long comment lines')
    li++
  }
  const ownerField = field('owner')
  if (!ownerField.startsWith('ed25519:') || fromHex(ownerField.slice(8), PUBLIC_KEY_BYTES) === null) throw bad('owner is not "ed25519:<64 hex digits>"')
  const owner = ownerField.slice(8)
  let name: unknown
  const nameField = field('name')
  try { name = JSON.parse(nameField) } catch { throw bad('name is not a JSON string') }
  if (typeof name !== 'string' || !nameField.startsWith('"')) throw bad('name is not a JSON string')
  const np = nameProblem(name)
  if (np !== null) throw bad(`name: ${np}`)
  const size = decimal('size', Number.MAX_SAFE_INTEGER)
  const modeField = field('mode')
  if (!MODE_RE.test(modeField)) throw bad('mode is not 4 octal digits')
  const mode = parseInt(modeField, 8)
  const mtimeField = field('mtime')
  if (!MTIME_RE.test(mtimeField)) throw bad('mtime is not an integer')
  const mtimeNs = BigInt(mtimeField)
  if (mtimeNs > 2n ** 63n - 1n || mtimeNs < -(2n ** 63n)) throw bad('mtime out of range')
  const hash = fromHex(field('hash'), HASH_BYTES)
  if (hash === null) throw bad('hash is not 64 hex digits')
  const ch = field('chunker').split(' ')
  if (ch.length !== 4 || ch[0] !== CHUNKER_NAME || !ch.slice(1).every(x => DEC_RE.test(x))) throw bad(`chunker is not "${CHUNKER_NAME} MIN AVG MAX"`)
  const chunker = { min: Number(ch[1]), avg: Number(ch[2]), max: Number(ch[3]) }
  if (!(chunker.min < chunker.avg && chunker.avg < chunker.max && chunker.max <= MAX_PLAIN_BLOCK)) throw bad('chunker sizes out of range')
  const count = decimal('blocks', MAX_BLOCKS)
  if (lines.length - li !== count + 1) throw bad(`says ${count} blocks but has ${Math.max(0, lines.length - li - 1)} block lines`)
  const blocks: StubBlock[] = []
  let total = 0
  for (let i = 0; i < count; i++) {
    const parts = field('block').split(' ')
    if (parts.length !== 4) throw bad(`block ${i}: expected "ID PH SIZE STORED"`)
    const id = fromHex(parts[0], HASH_BYTES)
    const ph = fromHex(parts[1], HASH_BYTES)
    if (id === null || ph === null) throw bad(`block ${i}: id or hash is not 64 hex digits`)
    if (!DEC_RE.test(parts[2]) || !DEC_RE.test(parts[3])) throw bad(`block ${i}: sizes are not decimal numbers`)
    const bsize = Number(parts[2])
    const stored = Number(parts[3])
    if (bsize < 1 || bsize > chunker.max) throw bad(`block ${i}: size ${bsize} out of range`)
    if (stored < BLOCK_OVERHEAD || stored > bsize + BLOCK_OVERHEAD) throw bad(`block ${i}: stored size ${stored} out of range`)
    total += bsize
    blocks.push({ id, ph, size: bsize, stored })
  }
  if (total !== size) throw bad(`blocks add up to ${total} bytes, size says ${size}`)
  const macLineStart = bytes.byteLength - (lines[li].length + 1)
  const macField = field('mac')
  const mac = fromHex(macField, HASH_BYTES)
  if (mac === null) throw bad('mac is not 64 hex digits')
  const stub: Stub = { owner, name, size, mode, mtimeNs, hash, chunker, blocks }
  if (opts.unauthenticated === true) return stub
  if (owner !== opts.ownerId) {
    throw new StubError(StubCodes.STUB_FOREIGN, `${where} belongs to another identity (owner ${owner.slice(0, 16)}…, this dustbox is ${opts.ownerId.slice(0, 16)}…)`)
  }
  const expected = crypto.hash(bytes.subarray(0, macLineStart), opts.macKey)
  if (!equalBytes(expected, mac)) throw bad('authentication failed (the stub was altered)')
  return stub
}
