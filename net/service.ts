// StorageService: answers other owners' requests from the node's ShardStore. The owner of every
// request is the authenticated owner of the connection it came on (the identity of its verified
// device certificate, else its own key: Peer.owner), never a field of the message, so every device
// of an owner shares one namespace and nobody can read, list or delete another owner's shards. A node
// with no store answers the storage requests with SPACE_EXCEEDED (it donates nothing) and still
// answers PING. DEVICE and KEEP_POINTER go to the DeviceService; INTRODUCE, PUNCH and RELAY_* to
// Reach (docs/reachability.md §4-§5).

import { NetError, NetCodes } from './errors.js'
import type { Reply, Request } from './messages.js'
import type { Peer, RequestHandler } from './peer.js'
import type { ShardStore } from './shard-store.js'
import { DeviceService } from './device-service.js'
import type { Reach } from './reach.js'

type ReachRequest = Parameters<Reach['handle']>[1]
const REACH_KINDS: ReadonlySet<string> = new Set(['INTRODUCE', 'PUNCH', 'RELAY_OPEN', 'RELAY_ACCEPT', 'RELAY_DATA', 'RELAY_CLOSE'])
const isReach = (r: Request): r is ReachRequest => REACH_KINDS.has(r.kind)

export class StorageService implements RequestHandler {
  constructor (private readonly store: ShardStore | null, private readonly devices: DeviceService = new DeviceService({}), private readonly reach: Reach | null = null) {}

  async handle (peer: Peer, req: Request): Promise<Reply> {
    if (req.kind === 'PING') return { kind: 'PING', nonce: req.nonce }
    if (req.kind === 'DEVICE' || req.kind === 'KEEP_POINTER') return await this.devices.handle(peer, req)
    if (isReach(req)) {
      if (this.reach === null) throw new NetError(NetCodes.REFUSED, 'this node does not introduce, punch or relay')
      return await this.reach.handle(peer, req)
    }
    const store = this.store
    if (store === null) {
      if (req.kind === 'SPACE') return { kind: 'SPACE', space: { donated: 0n, used: 0n, free: 0n, quotaForYou: 0n, usedByYou: 0n, maxShard: 0 } }
      throw new NetError(NetCodes.SPACE_EXCEEDED, 'this node donates no space')
    }
    const owner = peer.owner
    switch (req.kind) {
      case 'PUT_SHARD': {
        const r = await store.put(owner, req.shard, req.data)
        return { kind: 'PUT_SHARD', status: r.status, usedByYou: BigInt(r.usedByYou), quotaForYou: BigInt(r.quotaForYou) }
      }
      case 'GET_SHARD': return { kind: 'GET_SHARD', data: await store.get(owner, req.shard) }
      case 'HAS': return { kind: 'HAS', held: await store.has(owner, req.shards) }
      case 'DELETE': {
        const r = await store.delete(owner, req.shards)
        return { kind: 'DELETE', deleted: r.deleted, usedByYou: BigInt(r.usedByYou) }
      }
      case 'LIST': return { kind: 'LIST', ...(await store.list(owner, req.after, req.limit)) }
      case 'AUDIT': return { kind: 'AUDIT', answers: await store.audit(owner, req.challenges) }
      case 'SPACE': return { kind: 'SPACE', space: await store.space(owner) }
    }
  }
}
