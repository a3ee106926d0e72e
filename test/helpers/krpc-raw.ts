// Raw KRPC over UDP for tests: a socket that sends hand-made (and malformed) DHT messages to a
// node on 127.0.0.1, awaits replies by transaction id, and can play a hostile DHT node that answers
// queries with whatever a test wants.

import dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import bencode from 'bencode'

export interface Raw {
  readonly sock: dgram.Socket
  readonly port: number
  send: (port: number, msg: unknown) => void
  sendBytes: (port: number, buf: Uint8Array) => void
  query: (port: number, q: string, a: Record<string, unknown>, timeoutMs?: number) => Promise<any>
  close: () => void
}

export async function rawSocket (onQuery?: (m: any, reply: (r: Record<string, unknown>) => void, from: dgram.RemoteInfo) => void): Promise<Raw> {
  const sock = dgram.createSocket('udp4')
  const waiting = new Map<string, (m: any) => void>()
  sock.on('message', (buf, rinfo) => {
    let m: any
    try { m = bencode.decode(buf) } catch { return }
    const y = m?.y instanceof Uint8Array ? Buffer.from(m.y).toString() : ''
    if ((y === 'r' || y === 'e') && m.t instanceof Uint8Array) {
      const w = waiting.get(Buffer.from(m.t).toString('hex'))
      if (w !== undefined) { waiting.delete(Buffer.from(m.t).toString('hex')); w(m) }
    } else if (y === 'q' && onQuery !== undefined) {
      onQuery(m, (r) => { sock.send(Buffer.from(bencode.encode({ t: m.t, y: 'r', r })), rinfo.port, rinfo.address) }, rinfo)
    }
  })
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  const port = sock.address().port
  const sendBytes = (to: number, buf: Uint8Array): void => { sock.send(buf, to, '127.0.0.1') }
  return {
    sock,
    port,
    send: (to, msg) => sendBytes(to, Buffer.from(bencode.encode(msg))),
    sendBytes,
    query: async (to, q, a, timeoutMs = 2000) => {
      const t = randomBytes(2)
      const p = new Promise<any>((resolve) => {
        const timer = setTimeout(() => { waiting.delete(t.toString('hex')); resolve(null) }, timeoutMs)
        waiting.set(t.toString('hex'), (m) => { clearTimeout(timer); resolve(m) })
      })
      sendBytes(to, Buffer.from(bencode.encode({ t, y: 'q', q, a })))
      return await p
    },
    close: () => { try { sock.close() } catch {} }
  }
}
