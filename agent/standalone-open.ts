// `dustbox open` with no agent running: the home's key and index are enough. A transport node of
// its own (ephemeral port, storing nothing for anyone) reaches the peers the index lists at their
// last addresses (and through the DHT when a bootstrap is known), fetches k shards per block, and
// the engine restores the file exactly as the agent would (temp, fsync, rename, stub removed).

import { join } from 'node:path'
import { StubEngine } from '../stubs/index.js'
import { NetNode } from '../net/index.js'
import { Discovery } from '../dht/index.js'
import { IndexDb, INDEX_FILE } from './index-db.js'
import { Fetcher } from './fetcher.js'
import { PeerKeeper } from './peer-keeper.js'
import { exists } from '../stubs/fsutil.js'

export async function openStandalone (home: string, stubPath: string, opts: { bootstrap?: string, onProgress?: (done: number, total: number) => void } = {}): Promise<{ path: string, size: number, blocks: number }> {
  const engine = await StubEngine.open({ home })
  let db: IndexDb | null = null
  let net: NetNode | null = null
  let discovery: Discovery | null = null
  let peers: PeerKeeper | null = null
  try {
    if (!await exists(join(home, INDEX_FILE))) {
      // A home without an index (stubs made by `dustbox stub`): the blocks are in the local store.
      const r = await engine.hydrate(stubPath, { onProgress: p => opts.onProgress?.(p.bytes, p.total) })
      return { path: r.path, size: r.size, blocks: r.blocks }
    }
    db = new IndexDb(home)
    net = new NetNode({ identity: engine.keys.identity, host: '0.0.0.0', port: 0, store: null })
    net.on('warning', () => {})
    await net.ready()
    if (opts.bootstrap !== undefined && opts.bootstrap !== 'none') {
      discovery = new Discovery({
        identity: engine.keys.identity,
        port: 0,
        bootstrap: opts.bootstrap.split(','),
        autoStart: false,
        dial: async (to, o) => (await net!.connect({ host: to.host, port: to.port }, { signal: o.signal })).key
      })
      discovery.on('warning', () => {})
      await discovery.ready().catch(() => {})
    }
    peers = new PeerKeeper({ net, db, discovery })
    const fetcher = new Fetcher({ net, db, crypto: engine.crypto, cache: engine.store, connect: async (key, signal) => await peers!.connect(key, signal) })
    const r = await engine.hydrate(stubPath, { source: fetcher.source({ cacheable: false }), onProgress: p => opts.onProgress?.(p.bytes, p.total) })
    return { path: r.path, size: r.size, blocks: r.blocks }
  } finally {
    peers?.close()
    await discovery?.close().catch(() => {})
    await net?.close().catch(() => {})
    db?.close()
    await engine.close()
  }
}
