// Types for bencode 4 (it ships none): byte strings decode to Uint8Array, integers to numbers.
declare module 'bencode' {
  const bencode: {
    encode: (value: unknown) => Uint8Array
    decode: (buf: Uint8Array, start?: number, end?: number, encoding?: string) => any
    byteLength: (value: unknown) => number
  }
  export default bencode
}
