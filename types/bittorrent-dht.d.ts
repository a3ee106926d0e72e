// Types for the parts of bittorrent-dht 11 (and its k-rpc / k-bucket internals) that dht/ uses. The
// underscored members are the library's internals that dht/dht-node.ts replaces or reads; they are
// pinned by the version range in package.json and covered by test/dht-*.test.ts.
declare module 'bittorrent-dht' {
  import { EventEmitter } from 'node:events'

  export interface KNode { id: Buffer, host: string, port: number, token?: Buffer | null, seen?: number }

  export interface KBucket {
    toArray (): KNode[]
    count (): number
    closest (id: Uint8Array, n?: number): KNode[]
    get (id: Uint8Array): KNode | null
    add (node: KNode): void
    remove (id: Uint8Array): void
    metadata: { lastChange: number }
  }

  export interface KRpc {
    id: Buffer
    nodes: KBucket
    socket: { inflight: number }
    pending: unknown[]
    bootstrap: Array<{ host: string, port: number }>
    response (peer: unknown, query: unknown, res: Record<string, unknown>, nodes?: KNode[]): void
    error (peer: unknown, query: unknown, err: [number, string]): void
  }

  export interface RecordStoreLike {
    add (key: string, value: Buffer): void
    get (key: string, n?: number): Buffer[]
    destroy (): void
  }

  export interface MutableReply { v: Buffer, k: Buffer, sig: Buffer, seq: number, salt?: Buffer, id?: Buffer }

  export interface DHTOptions {
    nodeId?: Buffer
    bootstrap?: false | Array<string | { host: string, port: number }>
    host?: string | false
    socket?: unknown
    verify?: (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean
    concurrency?: number
    maxTables?: number
    maxValues?: number | { max: number, maxAge: number }
    maxPeers?: number
    maxAge?: number
    timeBucketOutdated?: number
    k?: number
    timeout?: number
  }

  export default class DHT extends EventEmitter {
    constructor (opts?: DHTOptions)
    nodeId: Buffer
    nodes: KBucket
    listening: boolean
    destroyed: boolean
    ready: boolean
    _rpc: KRpc
    _peers: RecordStoreLike
    _values: { get (key: string): any, set (key: string, v: any): void, length: number }
    _tables: { length: number }
    _generateToken (host: string): Buffer
    _addPeer (peer: { host: string, port: number }, infoHash: Buffer, from: { host: string, port: number }): void
    _ongetpeers (query: any, peer: any): void
    listen (port: number, host: string, cb?: () => void): void
    address (): { address: string, port: number, family: string }
    addNode (node: { id?: Buffer, host: string, port: number }): void
    lookup (infoHash: Buffer, cb?: (err: Error | null, n?: number) => void): () => void
    announce (infoHash: Buffer, port: number, cb?: (err: Error | null) => void): void
    put (opts: { k: Buffer, v: Buffer, seq: number, salt?: Buffer, sign?: (buf: Buffer) => Buffer, sig?: Buffer, cas?: number },
      cb: (err: Error | null, hash: Buffer, n: number) => void): Buffer
    get (key: Buffer, opts: { salt?: Buffer, cache?: boolean, verify?: (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean },
      cb: (err: Error | null, res: MutableReply | null) => void): void
    destroy (cb?: () => void): void
  }
}
