// Worker-thread side of the block pool: hashes, compresses, encrypts, verifies and decrypts blocks
// off the main thread. It receives only the two keys it needs (K_data, K_plain-hash) at start.

import { parentPort, workerData } from 'node:worker_threads'
import { promises as fsp } from 'node:fs'
import { loadCrypto, equalBytes } from './crypto.js'
import { encodeBlock, decodeBlock, BlockDecodeError } from './block-codec.js'
import type { WorkerRequest, WorkerReply } from './worker-messages.js'

const keys = { data: new Uint8Array(workerData.data), plainHash: new Uint8Array(workerData.plainHash) }
const cryptoReady = loadCrypto()
const port = parentPort!

port.on('message', (req: WorkerRequest) => {
  handle(req).then(
    ({ reply, transfer }) => port.postMessage(reply, transfer),
    (err: Error) => port.postMessage({ seq: req.seq, error: { kind: 'internal', message: err?.message ?? String(err) } } satisfies WorkerReply)
  )
})

async function handle (req: WorkerRequest): Promise<{ reply: WorkerReply, transfer: ArrayBuffer[] }> {
  const crypto = await cryptoReady
  switch (req.type) {
    case 'encode': {
      const e = encodeBlock(crypto, keys, req.plain)
      return { reply: { seq: req.seq, type: 'encode', ph: e.ph, id: e.id, block: e.block, codec: e.codec }, transfer: [e.block.buffer as ArrayBuffer] }
    }
    case 'decode': {
      if (!equalBytes(crypto.hash(req.block), req.id)) return { reply: { seq: req.seq, error: { kind: 'corrupt', message: 'its bytes do not match its id' } }, transfer: [] }
      try {
        const plain = decodeBlock(crypto, keys, req.ph, req.block, req.size)
        const own = plain.byteOffset === 0 && plain.byteLength === plain.buffer.byteLength ? plain : plain.slice()
        return { reply: { seq: req.seq, type: 'decode', plain: own }, transfer: [own.buffer as ArrayBuffer] }
      } catch (err) {
        if (err instanceof BlockDecodeError) return { reply: { seq: req.seq, error: { kind: 'corrupt', message: err.message } }, transfer: [] }
        throw err
      }
    }
    case 'verify': {
      let bytes: Uint8Array
      try {
        bytes = await fsp.readFile(req.path)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        return { reply: { seq: req.seq, error: { kind: code === 'ENOENT' ? 'missing' : 'io', message: `${code ?? ''} ${(err as Error).message}` } }, transfer: [] }
      }
      if (bytes.byteLength !== req.stored) return { reply: { seq: req.seq, error: { kind: 'corrupt', message: `it is ${bytes.byteLength} bytes, expected ${req.stored}` } }, transfer: [] }
      if (!equalBytes(crypto.hash(bytes), req.id)) return { reply: { seq: req.seq, error: { kind: 'corrupt', message: 'its bytes do not match its id' } }, transfer: [] }
      return { reply: { seq: req.seq, type: 'verify' }, transfer: [] }
    }
  }
}
