// Fetcher: the BlockSource a hydrate reads through. A block comes from the local cache when it is
// there; otherwise k of its k+m shards are fetched in parallel from the peers holding them (the
// fastest first: connected peers, then by measured round-trip time), each checked against its id,
// then Reed-Solomon decoded and checked against the block id. A peer that fails or sends bad bytes
// is replaced by the holder of another shard; a block fails only when fewer than k good shards
// can be had. Fetched blocks of files small enough go into the bounded local cache.

import type { NetNode, Peer } from '../net/index.js'
import { shardIdOf, shortId } from '../net/index.js'
import { decodeShards } from '../stubs/erasure.js'
import type { BlockStore, Crypto } from '../stubs/index.js'
import { equalBytes } from '../stubs/crypto.js'
import type { IndexDb, ShardRow } from './index-db.js'
import { AgentError, AgentCodes } from './errors.js'

export const GET_TIMEOUT_MS = 30_000
export const CONNECT_TIMEOUT_MS = 10_000
/** A block still short of k shards this long after its fetch began gets one more request (up to m). */
export const HEDGE_MS = 2_000
/** A GET whose connection closed under it (dropped, or replaced by a better path) is asked again this many times, on the peer's current connection. */
export const CLOSED_RETRIES = 2
export const CLOSED_RETRY_MS = 250

/** Per-fetch choices: which copies may be used, and who hears about each copy's outcome. */
export interface FetchChoice {
  readonly signal?: AbortSignal
  /** Use only copies this accepts (repair skips bad copies and lost peers). */
  readonly accept?: (r: ShardRow) => boolean
  /** A copy the peer says it no longer has, or whose bytes do not hash to its id. */
  readonly onBadCopy?: (r: ShardRow, why: string) => void
  /** Each request to a connected peer: answered well (true) or failed / timed out (false). */
  readonly onPeerResult?: (peerHex: string, ok: boolean) => void
}

export interface FetcherOptions {
  readonly net: NetNode
  readonly db: IndexDb
  readonly crypto: Crypto
  /** Local block store used as the cache (null: no cache). */
  readonly cache: BlockStore | null
  /** Open a connection to a peer not connected now (by its last address, then the DHT). */
  readonly connect: (key: Buffer, signal?: AbortSignal) => Promise<Peer>
  readonly getTimeoutMs?: number
  readonly hedgeMs?: number
  /** Called for every fetch (hydrate and repair) unless the fetch gives its own. */
  readonly onPeerResult?: (peerHex: string, ok: boolean) => void
  readonly onBadCopy?: (r: ShardRow, why: string) => void
  /** Copies every fetch may use (default: those not marked bad). */
  readonly accept?: (r: ShardRow) => boolean
}

export class Fetcher {
  private readonly opts: FetcherOptions
  private readonly rtt = new Map<string, number>()
  bytesFetched = 0

  constructor (opts: FetcherOptions) {
    this.opts = opts
  }

  /** A BlockSource for one operation (`cacheable`: keep what is fetched in the local cache). */
  source (opts: { signal?: AbortSignal, cacheable?: boolean } = {}): { readInto: (id: Uint8Array, what: string, out: Uint8Array) => Promise<void> } {
    return { readInto: async (id, what, out) => await this.readInto(id, what, out, opts) }
  }

  async readInto (id: Uint8Array, what: string, out: Uint8Array, opts: { signal?: AbortSignal, cacheable?: boolean } = {}): Promise<void> {
    const { db, cache } = this.opts
    if (cache !== null && await cache.has(id)) {
      try {
        await cache.readInto(id, what, out)
        db.cacheTouch(id, out.byteLength)
        return
      } catch {
        db.cacheDrop(id) // gone or damaged: fetch it
      }
    }
    await this.fetch(id, what, out, { signal: opts.signal })
    if (cache !== null && opts.cacheable === true) {
      try {
        await cache.put(id, out)
        db.cacheTouch(id, out.byteLength)
      } catch {}
    }
  }

  private async peerFor (key: Buffer, signal?: AbortSignal): Promise<Peer> {
    const p = this.opts.net.peer(key)
    if (p !== undefined && p.isOpen) return p
    return await this.opts.connect(key, signal)
  }

  private order (rows: ShardRow[]): ShardRow[] {
    const score = (r: ShardRow): number => {
      const p = this.opts.net.peer(r.peer)
      const connected = p !== undefined && p.isOpen ? 0 : 1e6
      return connected + (this.rtt.get(r.peer.toString('hex')) ?? 500) + Math.random()
    }
    return rows.map(r => ({ r, s: score(r) })).sort((a, b) => a.s - b.s).map(x => x.r)
  }

  /** Fetch one block from its shards, never from the cache (repair reads through this). */
  async readBlock (id: Uint8Array, out: Uint8Array, choice: FetchChoice = {}): Promise<void> {
    await this.fetch(id, `block ${Buffer.from(id).toString('hex').slice(0, 12)}`, out, choice)
  }

  private async fetch (id: Uint8Array, what: string, out: Uint8Array, choice: FetchChoice): Promise<void> {
    const { db } = this.opts
    const signal = choice.signal
    const onBad = choice.onBadCopy ?? this.opts.onBadCopy
    const onResult = choice.onPeerResult ?? this.opts.onPeerResult
    const block = db.block(id)
    const idHex = Buffer.from(id).toString('hex').slice(0, 12)
    if (block === null) throw new AgentError(AgentCodes.FETCH_FAILED, `${what}: block ${idHex} is not in this node's index (was the file stubbed by this identity on another machine?)`)
    if (block.stored !== out.byteLength) throw new AgentError(AgentCodes.FETCH_FAILED, `${what}: block ${idHex} is ${block.stored} bytes in the index, the stub says ${out.byteLength}`)
    const { k, m } = block
    const all = db.shards(id)
    const accept = choice.accept ?? this.opts.accept ?? ((r: ShardRow) => r.bad == null)
    const rows = this.order(all.filter(accept))
    const got: Array<Buffer | null> = new Array(k + m).fill(null)
    const problems: string[] = []
    let next = 0
    let have = 0
    // Requests still running when k shards are in (slow peers, hedges) are cancelled.
    const inner = new AbortController()
    const sig = signal === undefined ? inner.signal : AbortSignal.any([signal, inner.signal])
    // Each row (a shard index on one peer) is tried once; skip indexes already had.
    const take = (): ShardRow | null => {
      while (next < rows.length) {
        const r = rows[next++]
        if (got[r.idx] === null) return r
      }
      return null
    }
    const worker = async (): Promise<void> => {
      for (;;) {
        if (have >= k || sig.aborted) return
        const r = take()
        if (r === null) return
        const hex = r.peer.toString('hex')
        const started = performance.now()
        let peer: Peer | null = null
        try {
          let data: Buffer
          for (let again = 0; ; again++) {
            try {
              peer = await this.peerFor(r.peer, sig)
              data = await peer.get(r.shardId, { timeoutMs: this.opts.getTimeoutMs ?? GET_TIMEOUT_MS, signal: sig })
              break
            } catch (err) {
              // The connection went away under the request (a NAT remap, a relayed path replaced
              // by a punched one): the peer is redialled at once; ask it again there, bounded.
              if ((err as { code?: string }).code !== 'CLOSED' || again >= CLOSED_RETRIES || sig.aborted) throw err
              await new Promise(resolve => setTimeout(resolve, CLOSED_RETRY_MS))
            }
          }
          if (!equalBytes(shardIdOf(data), r.shardId)) {
            onBad?.(r, `peer ${shortId(hex)} sent bytes that do not hash to shard ${r.idx}'s id`)
            throw new Error('sent bytes that do not hash to the shard id')
          }
          this.rtt.set(hex, performance.now() - started)
          onResult?.(hex, true)
          if (got[r.idx] === null && have < k) { got[r.idx] = data; have++; this.bytesFetched += data.byteLength }
        } catch (err) {
          if (signal?.aborted === true) throw err
          const elapsed = performance.now() - started
          if (inner.signal.aborted) {
            // Cancelled because k shards came from faster peers: remember this one was slow, and
            // one that had not answered in a whole hedge period counts as a failed request.
            this.rtt.set(hex, Math.max(this.rtt.get(hex) ?? 0, elapsed))
            if (peer !== null && elapsed >= (this.opts.hedgeMs ?? HEDGE_MS)) onResult?.(hex, false)
            return
          }
          this.rtt.set(hex, 60_000)
          if (peer !== null) {
            onResult?.(hex, false)
            if ((err as { code?: string }).code === 'NOT_FOUND') onBad?.(r, `peer ${shortId(hex)} no longer has shard ${r.idx}`)
          }
          if (problems.length < 8) problems.push(`peer ${shortId(hex)} shard ${r.idx}: ${(err as Error).message}`)
        }
      }
    }
    await new Promise<void>(resolve => {
      let running = 0
      let extra = 0
      const spawn = (): void => {
        running++
        void worker().catch(() => {}).finally(() => {
          running--
          if (have >= k || running === 0) { clearInterval(hedge); resolve() }
        })
      }
      // A worker that waits on a slow or silent peer is joined by one more, every hedgeMs.
      const hedge = setInterval(() => {
        if (have < k && extra < m && next < rows.length) { extra++; spawn() }
      }, this.opts.hedgeMs ?? HEDGE_MS)
      hedge.unref()
      for (let i = 0; i < k; i++) spawn()
    })
    inner.abort()
    signal?.throwIfAborted()
    if (have < k) {
      throw new AgentError(AgentCodes.FETCH_FAILED, `${what}: only ${have} of the ${k} shards needed for block ${idHex} could be fetched (${rows.length} usable of ${all.length} known): ${problems.join('; ') || 'no holder known'}`)
    }
    await decodeShards(got, k, m, block.stored, out)
    if (!equalBytes(this.opts.crypto.hash(out), id)) {
      throw new AgentError(AgentCodes.FETCH_FAILED, `${what}: block ${idHex} decoded from its shards does not hash to its id`)
    }
  }
}
