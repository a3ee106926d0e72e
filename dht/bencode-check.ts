// A strict bencode scanner run on every datagram before any decoder sees it. Both bencode decoders
// in the DHT stack (bencode 4 in the guard, bencode 2 inside k-rpc-socket) loop, allocating until the
// process runs out of memory, on a 41-byte datagram with a negative string length
// (`d1:eli201e-3:...`), found by the mutation fuzz test; this scanner refuses it, and any other
// non-canonical or truncated encoding, in one bounded pass.

export const MAX_BENCODE_DEPTH = 16
const MAX_INT_DIGITS = 16
const MAX_LEN_DIGITS = 6

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39

/** Returns null if `buf` is exactly one well-formed bencoded value, else what is wrong (and where). */
export function checkBencode (buf: Uint8Array): string | null {
  let pos = 0
  const stack: Array<{ dict: boolean, expectKey: boolean }> = []
  const fail = (what: string): string => `${what} at byte ${pos}`
  for (;;) {
    if (pos >= buf.byteLength) return fail('truncated')
    const top = stack[stack.length - 1]
    const c = buf[pos]
    if (c === 0x65 /* e */ && top !== undefined) {
      if (top.dict && !top.expectKey) return fail('dictionary key without a value')
      stack.pop()
      pos++
    } else if (top !== undefined && top.dict && top.expectKey && !isDigit(c)) {
      return fail('dictionary key is not a string')
    } else if (c === 0x69 /* i */) {
      let p = pos + 1
      if (buf[p] === 0x2d /* - */) p++
      const start = p
      while (p < buf.byteLength && isDigit(buf[p])) p++
      const digits = p - start
      if (digits === 0 || digits > MAX_INT_DIGITS || buf[p] !== 0x65) return fail('bad integer')
      if (buf[start] === 0x30 && (digits > 1 || start !== pos + 1)) return fail('non-canonical integer')
      pos = p + 1
    } else if (isDigit(c)) {
      let p = pos
      while (p < buf.byteLength && isDigit(buf[p])) p++
      const digits = p - pos
      if (digits > MAX_LEN_DIGITS || buf[p] !== 0x3a /* : */) return fail('bad string length')
      if (buf[pos] === 0x30 && digits > 1) return fail('non-canonical string length')
      let len = 0
      for (let i = pos; i < p; i++) len = len * 10 + buf[i] - 0x30
      if (p + 1 + len > buf.byteLength) return fail('string runs past the end')
      pos = p + 1 + len
    } else if (c === 0x6c /* l */ || c === 0x64 /* d */) {
      if (stack.length >= MAX_BENCODE_DEPTH) return fail('nested too deep')
      stack.push({ dict: c === 0x64, expectKey: true })
      pos++
      continue
    } else {
      return fail(`unexpected byte 0x${c.toString(16).padStart(2, '0')}`)
    }
    // An item is complete (a scalar, or a container just closed): it fills the parent's key or value.
    const parent = stack[stack.length - 1]
    if (parent === undefined) return pos === buf.byteLength ? null : fail('trailing bytes')
    if (parent.dict) parent.expectKey = !parent.expectKey
  }
}
