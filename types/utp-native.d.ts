// The subset of utp-native 2.x that net/transport-utp.ts and bench/utp-probe.ts use (the package ships no
// types). A Connection is a readable-stream v3 Duplex, not a node:stream one: net/ wraps it.
declare module 'utp-native' {
  import { EventEmitter } from 'node:events'

  namespace UTP {
    interface Connection extends EventEmitter {
      readonly remoteAddress: string
      readonly remotePort: number
      readonly destroyed: boolean
      write (chunk: Buffer, cb?: (err?: Error | null) => void): boolean
      end (cb?: () => void): void
      cork (): void
      uncork (): void
      destroy (err?: Error): void
      /** Deliver reads only once `size` bytes (max 65536) are buffered; 0 = every packet. */
      setPacketSize (size: number): void
    }
  }

  interface UTP extends EventEmitter {
    readonly connections: UTP.Connection[]
    listen (port: number, host: string, onListening?: () => void): void
    bind (port: number, host: string, onListening?: () => void): void
    connect (port: number, host: string): UTP.Connection
    address (): { address: string, family: string, port: number }
    close (onClose?: () => void): void
    /** Reject (true) or accept (false) incoming connections. */
    firewall (yes: boolean): void
    ref (): void
    unref (): void
    /** SO_RCVBUF / SO_SNDBUF of the UDP socket; callable after bind. Returns the kernel's value. */
    setRecvBufferSize (n: number): number
    setSendBufferSize (n: number): number
    getRecvBufferSize (): number
    getSendBufferSize (): number
    /** A raw UDP datagram from the socket (not uTP); datagrams that are not uTP arrive as 'message'. */
    send (buf: Buffer, offset: number, len: number, port: number, host: string, cb?: (err?: Error) => void): void
  }

  interface UTPConstructor {
    (opts?: { allowHalfOpen?: boolean }): UTP
    new (opts?: { allowHalfOpen?: boolean }): UTP
    createServer (opts: { allowHalfOpen?: boolean } | null, onConnection?: (c: UTP.Connection) => void): UTP
  }

  const UTP: UTPConstructor
  export = UTP
}
