// Transport: the small interface between the secure channel and the byte streams under it (uTP via
// utp-native, TCP via node:net). A transport only moves bytes; identity, encryption and framing live
// above it (handshake.ts, channel.ts), so both transports carry exactly the same protocol.

import type { Duplex } from 'node:stream'

export const TransportNames = { utp: 'utp', tcp: 'tcp' } as const
export type TransportName = (typeof TransportNames)[keyof typeof TransportNames]

export interface Endpoint {
  readonly host: string
  readonly port: number
}

/** What a connection runs over: a transport, or a circuit through a relay (relay.ts). */
export type LinkName = TransportName | 'relay'

/** How a connection reached its peer (docs/reachability.md §5): the dashboard and status show it. */
export const PathNames = { direct: 'direct', punched: 'punched', relayed: 'relayed' } as const
export type PathName = (typeof PathNames)[keyof typeof PathNames]

/** A connected byte stream (Node Duplex semantics: write() returns false past the high-water mark, 'drain'). */
export interface RawConnection {
  readonly stream: Duplex
  readonly transport: LinkName
  readonly remote: Endpoint
}

export interface TransportOptions {
  /** Called for every accepted connection. Must not throw. */
  readonly onConnection: (conn: RawConnection) => void
}

export interface Transport {
  readonly name: TransportName
  /** Bind to host:port (port 0 picks one) and accept connections; resolves with the bound port. */
  listen (port: number, host: string): Promise<number>
  /** Open a connection; rejects on refusal, timeout or abort. Works before listen() (binds an ephemeral port). */
  connect (remote: Endpoint, signal?: AbortSignal): Promise<RawConnection>
  /** Stop accepting and close every connection this transport made or accepted. Idempotent. */
  close (): Promise<void>
}
