// Peer ids: the typeable form of a node's Ed25519 public key (docs/protocol.md §2). 32 bytes →
// RFC 4648 base32 (52 characters) → four groups of 13, each followed by a Luhn mod 32 check character
// → 56 characters, written in 8 groups of 7 joined by '-'. The short id (for display) is the first 7.

import { NetError, NetCodes } from './errors.js'

export const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
export const PEER_ID_BYTES = 32
const GROUP = 13

const value = new Int8Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) {
  value[ALPHABET.charCodeAt(i)] = i
  value[ALPHABET.toLowerCase().charCodeAt(i)] = i
}

/** RFC 4648 base32 without padding (most significant bits first, the last character zero-padded), in `alphabet`. */
export function base32 (bytes: Uint8Array, alphabet: string = ALPHABET): string {
  let out = ''
  let acc = 0
  let bits = 0
  for (const b of bytes) {
    acc = (acc << 8) | b
    bits += 8
    while (bits >= 5) {
      out += alphabet[(acc >>> (bits - 5)) & 31]
      bits -= 5
    }
    acc &= (1 << bits) - 1
  }
  if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31]
  return out
}

function unbase32 (text: string, nbytes: number): Uint8Array | null {
  const out = new Uint8Array(nbytes)
  let acc = 0
  let bits = 0
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const v = value[text.charCodeAt(i)]
    if (v === undefined || v < 0) return null
    acc = (acc << 5) | v
    bits += 5
    if (bits >= 8) {
      if (n >= nbytes) return null
      out[n++] = (acc >>> (bits - 8)) & 255
      bits -= 8
    }
    acc &= (1 << bits) - 1
  }
  // The padding bits of the last character must be zero, so every id has exactly one spelling.
  if (n !== nbytes || acc !== 0) return null
  return out
}

/** Luhn mod 32 check character of a group of base32 characters (docs/protocol.md §2). */
export function luhn32 (group: string): string {
  let factor = 2
  let sum = 0
  for (let i = group.length - 1; i >= 0; i--) {
    const v = value[group.charCodeAt(i)]
    let addend = factor * v
    factor = factor === 2 ? 1 : 2
    addend = Math.floor(addend / 32) + (addend % 32)
    sum += addend
  }
  return ALPHABET[(32 - (sum % 32)) % 32]
}

/** The peer id of a 32-byte Ed25519 public key. */
export function peerIdFromKey (publicKey: Uint8Array): string {
  if (publicKey.byteLength !== PEER_ID_BYTES) throw new NetError(NetCodes.PEER_ID_INVALID, `a public key is ${PEER_ID_BYTES} bytes, not ${publicKey.byteLength}`)
  const b = base32(publicKey)
  let withChecks = ''
  for (let i = 0; i < 4; i++) {
    const g = b.slice(i * GROUP, (i + 1) * GROUP)
    withChecks += g + luhn32(g)
  }
  const groups: string[] = []
  for (let i = 0; i < withChecks.length; i += 7) groups.push(withChecks.slice(i, i + 7))
  return groups.join('-')
}

/**
 * Parse a typed peer id: case-insensitive; spaces and '-' ignored; 0, 1 and 8 read as O, I and B (the
 * usual misreadings). Returns the public key, or throws PEER_ID_INVALID saying what is wrong (never
 * echoing more than a short prefix of the input).
 */
export function parsePeerId (text: string): Uint8Array {
  if (typeof text !== 'string' || text.length > 200) throw new NetError(NetCodes.PEER_ID_INVALID, 'a peer id is 56 base32 characters (63 with dashes)')
  const clean = text.replace(/[\s-]/g, '').toUpperCase().replace(/0/g, 'O').replace(/1/g, 'I').replace(/8/g, 'B')
  const shown = JSON.stringify(text.slice(0, 16) + (text.length > 16 ? '…' : ''))
  if (clean.length !== 56) throw new NetError(NetCodes.PEER_ID_INVALID, `peer id ${shown} has ${clean.length} characters, not 56`)
  let b = ''
  for (let i = 0; i < 4; i++) {
    const g = clean.slice(i * 14, i * 14 + 13)
    const check = clean[i * 14 + 13]
    for (const c of g + check) {
      if (ALPHABET.indexOf(c) < 0) throw new NetError(NetCodes.PEER_ID_INVALID, `peer id ${shown} has a character outside A-Z and 2-7: ${JSON.stringify(c)}`)
    }
    if (luhn32(g) !== check) throw new NetError(NetCodes.PEER_ID_INVALID, `peer id ${shown}: check character of group ${i + 1} is wrong (a typo?)`)
    b += g
  }
  const key = unbase32(b, PEER_ID_BYTES)
  if (key === null) throw new NetError(NetCodes.PEER_ID_INVALID, `peer id ${shown} does not encode a 32-byte key`)
  return key
}

/** The 7-character display form (first group). Not unique enough to authenticate anyone. */
export function shortId (idOrKey: string | Uint8Array): string {
  const id = typeof idOrKey === 'string' ? idOrKey : peerIdFromKey(idOrKey)
  return id.slice(0, 7)
}
