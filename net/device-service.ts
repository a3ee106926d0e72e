// DeviceService: answers the two requests that are not about storage (docs/protocol.md §5.6):
// DEVICE, opaque bytes between devices of one owner (served only when the asking peer is another
// certified device of this node's owner, never delivered otherwise), and KEEP_POINTER, an owner's
// signed BEP 44 item handed to a storage peer to re-put. Both go to callbacks of the node; a missing
// callback or a foreign peer is answered REFUSED, and whatever a callback throws becomes an ERROR
// reply (INTERNAL unless it is a NetError with a wire code), never a crash.

import { NetError, NetCodes, isWireCode } from './errors.js'
import { MAX_DEVICE_BYTES } from './messages.js'
import type { Reply, Request } from './messages.js'
import type { Peer } from './peer.js'

export type DeviceHandler = (peer: Peer, body: Buffer, signal: AbortSignal) => Promise<Buffer>
export type KeepPointerHandler = (peer: Peer, item: Buffer) => Promise<void>

export interface DeviceServiceOptions {
  readonly onDevice?: DeviceHandler
  readonly onKeepPointer?: KeepPointerHandler
  /** A callback failed unexpectedly (not a NetError): for the node's warnings. */
  readonly onError?: (err: NetError, peer: Peer) => void
}

export class DeviceService {
  constructor (private readonly opts: DeviceServiceOptions) {}

  async handle (peer: Peer, req: Extract<Request, { kind: 'DEVICE' | 'KEEP_POINTER' }>): Promise<Reply> {
    if (req.kind === 'DEVICE') {
      const cb = this.opts.onDevice
      if (!peer.isOwnDevice) throw new NetError(NetCodes.REFUSED, 'DEVICE requests are served only to other devices of this node\'s owner')
      if (cb === undefined) throw new NetError(NetCodes.REFUSED, 'this device takes no DEVICE requests')
      const body = await this.call(peer, 'DEVICE', async () => await cb(peer, req.body, peer.signal))
      if (!(body instanceof Uint8Array)) throw this.internal(peer, 'DEVICE', new TypeError('the DEVICE handler did not return bytes'))
      if (body.byteLength > MAX_DEVICE_BYTES) throw new NetError(NetCodes.TOO_LARGE, `the answer of ${body.byteLength} bytes is over the ${MAX_DEVICE_BYTES}-byte DEVICE limit`)
      return { kind: 'DEVICE', body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) }
    }
    const cb = this.opts.onKeepPointer
    if (cb === undefined) throw new NetError(NetCodes.REFUSED, 'this node keeps no pointers')
    const item = Buffer.from(req.item)
    await this.call(peer, 'KEEP_POINTER', async () => await cb(peer, item))
    return { kind: 'KEEP_POINTER' }
  }

  private async call<T> (peer: Peer, what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      if (err instanceof NetError && isWireCode(err.code)) throw err
      throw this.internal(peer, what, err)
    }
  }

  private internal (peer: Peer, what: string, err: unknown): NetError {
    const e = new NetError(NetCodes.INTERNAL, `${peer.shortId}: the ${what} handler failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    try { this.opts.onError?.(e, peer) } catch {}
    return e
  }
}
