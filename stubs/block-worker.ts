// Worker-thread side of the block pool: hashes, compresses, encrypts, checks and decrypts blocks off
// the main thread. It receives only the two keys it needs (K_data, K_plain-hash) at start, works in
// buffers the main thread lends it, and hands them back with each reply.

import { parentPort, workerData } from 'node:worker_threads'
import { loadCrypto, equalBytes } from './crypto.js'
import { encodeBlock, decodeBlock, BlockDecodeError, Scratch } from './block-codec.js'
import type { WorkerRequest, WorkerReply } from './worker-messages.js'

const keys = { data: new Uint8Array(workerData.data), plainHash: new Uint8Array(workerData.plainHash) }
const cryptoReady = loadCrypto()
const scratch = new Scratch()
const port = parentPort!

// One message carries a batch of tasks; one reply carries their replies, in the same order.
port.on('message', (batch: { tasks: WorkerRequest[] }) => {
  run(batch.tasks).then(
    ({ replies, transfer }) => port.postMessage({ replies }, transfer),
    (err: Error) => port.postMessage({ replies: batch.tasks.map(t => ({ seq: t.seq, error: { kind: 'internal', message: err?.message ?? String(err) } })) })
  )
})

async function run (tasks: WorkerRequest[]): Promise<{ replies: WorkerReply[], transfer: ArrayBuffer[] }> {
  const replies: WorkerReply[] = []
  const transfer: ArrayBuffer[] = []
  for (const req of tasks) {
    try {
      const r = await handle(req)
      replies.push(r.reply)
      transfer.push(...r.transfer)
    } catch (err) {
      replies.push({ seq: req.seq, error: { kind: 'internal', message: (err as Error)?.message ?? String(err) } })
    }
  }
  return { replies, transfer }
}

async function handle (req: WorkerRequest): Promise<{ reply: WorkerReply, transfer: ArrayBuffer[] }> {
  const crypto = await cryptoReady
  switch (req.type) {
    case 'encode': {
      const e = encodeBlock(crypto, keys, req.plain, scratch, req.out)
      return {
        reply: { seq: req.seq, type: 'encode', ph: e.ph, id: e.id, block: e.block, codec: e.codec, plain: req.plain },
        transfer: [e.block.buffer as ArrayBuffer, req.plain.buffer as ArrayBuffer]
      }
    }
    case 'decode': {
      if (!equalBytes(crypto.hash(req.block), req.id)) return { reply: { seq: req.seq, error: { kind: 'corrupt', message: 'its bytes do not match its id' } }, transfer: [] }
      try {
        const plain = decodeBlock(crypto, keys, req.ph, req.block, req.size, scratch, req.out)
        return { reply: { seq: req.seq, type: 'decode', plain, block: req.block }, transfer: [plain.buffer as ArrayBuffer, req.block.buffer as ArrayBuffer] }
      } catch (err) {
        if (err instanceof BlockDecodeError) return { reply: { seq: req.seq, error: { kind: 'corrupt', message: err.message } }, transfer: [] }
        throw err
      }
    }
  }
}
