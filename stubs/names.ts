// File-name rules shared by stub and hydrate: what a valid name is, the stub's file name for a
// file name (NAME.f, or a shortened form when NAME.f would pass the 255-byte limit), and the name a
// stub restores to. Nothing here touches the disk.

import { createHash } from 'node:crypto'

export const STUB_SUFFIX = '.f'
export const NAME_MAX_BYTES = 255
/** Prefix of every temporary file dustbox writes next to user files; never ingested, safe to delete. */
export const TEMP_PREFIX = '.dustbox-tmp.'

/** Why `name` is not a single valid path component, or null when it is. */
export function nameProblem (name: string): string | null {
  if (name.length === 0) return 'empty name'
  if (name === '.' || name === '..') return `"${name}" is not a file name`
  if (name.includes('/')) return 'name contains "/"'
  if (name.includes('\0')) return 'name contains a NUL byte'
  if (Buffer.byteLength(name, 'utf8') > NAME_MAX_BYTES) return `name longer than ${NAME_MAX_BYTES} bytes`
  if (name.includes('\uFFFD')) return 'name is not valid UTF-8'
  if (/[\uD800-\uDFFF]/.test(name.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) return 'name has an unpaired surrogate'
  return null
}

/** Truncate a string to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8 (s: string, max: number): string {
  let out = ''
  let bytes = 0
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8')
    if (bytes + n > max) break
    out += ch
    bytes += n
  }
  return out
}

/**
 * The stub file name for a file name: NAME.f, or, when that would pass 255 bytes,
 * the name cut to 244 bytes + "~" + 8 hex digits of BLAKE2b-512(name) + ".f".
 */
export function stubNameFor (name: string): string {
  if (Buffer.byteLength(name, 'utf8') + STUB_SUFFIX.length <= NAME_MAX_BYTES) return name + STUB_SUFFIX
  const tag = createHash('blake2b512').update(name, 'utf8').digest('hex').slice(0, 8)
  return truncateUtf8(name, NAME_MAX_BYTES - STUB_SUFFIX.length - 9) + '~' + tag + STUB_SUFFIX
}

/**
 * The name a stub restores to: the recorded name when the stub still has the file name dustbox gave
 * it, else (the user renamed the stub) the stub's file name without ".f".
 */
export function targetNameFor (stubFileName: string, recordedName: string): string {
  if (stubNameFor(recordedName) === stubFileName) return recordedName
  return stubFileName.endsWith(STUB_SUFFIX) ? stubFileName.slice(0, -STUB_SUFFIX.length) : stubFileName
}

export function isStubName (name: string): boolean {
  return name.endsWith(STUB_SUFFIX) && name.length > STUB_SUFFIX.length
}

export function isTempName (name: string): boolean {
  return name.startsWith(TEMP_PREFIX)
}
