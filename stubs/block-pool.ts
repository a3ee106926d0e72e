// A pool of block workers (worker threads) so both cores hash, compress and encrypt. Tasks queue
// FIFO; each worker runs one at a time. A worker that dies fails its task and is replaced.

import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { StubError, StubCodes } from './errors.js'
import type { BlockKeys } from './block-codec.js'
import type { WorkerReply, WorkerTask, WorkerFailure } from './worker-messages.js'

export const POOL_SIZE = Math.max(1, Math.min(8, availableParallelism()))

type Reply<T extends WorkerTask['type']> = Extract<WorkerReply, { type: T }>

interface Job {
  task: WorkerTask
  transfer: ArrayBuffer[]
  resolve: (r: any) => void
  reject: (e: Error) => void
}

class Slot {
  worker: Worker
  job: Job | null = null
  constructor (worker: Worker) { this.worker = worker }
}

export class WorkerTaskError extends Error {
  constructor (readonly failure: WorkerFailure['error']) { super(failure.message) }
}

export class BlockPool {
  readonly size: number
  private readonly keys: BlockKeys
  private readonly slots: Slot[] = []
  private readonly queue: Job[] = []
  private seq = 0
  private closed = false

  constructor (keys: BlockKeys, size = POOL_SIZE) {
    this.keys = keys
    this.size = size
    for (let i = 0; i < size; i++) this.slots.push(this.spawn())
  }

  private spawn (): Slot {
    const worker = new Worker(new URL('./block-worker.js', import.meta.url), {
      workerData: { data: this.keys.data, plainHash: this.keys.plainHash },
      env: process.env
    })
    worker.unref()
    const slot = new Slot(worker)
    worker.on('message', (reply: WorkerReply) => {
      const job = slot.job
      slot.job = null
      if (job !== null) {
        if ('error' in reply) job.reject(new WorkerTaskError(reply.error))
        else job.resolve(reply)
      }
      this.pump()
    })
    const fail = (err: Error): void => {
      const job = slot.job
      slot.job = null
      job?.reject(new StubError(StubCodes.WORKER_FAILED, `block worker failed: ${err.message}`))
      if (this.closed) return
      const i = this.slots.indexOf(slot)
      if (i >= 0) this.slots[i] = this.spawn()
      this.pump()
    }
    worker.on('error', fail)
    worker.on('exit', code => { if (!this.closed) fail(new Error(`exited with code ${code}`)) })
    return slot
  }

  run<T extends WorkerTask['type']> (task: Extract<WorkerTask, { type: T }>, transfer: ArrayBuffer[] = []): Promise<Reply<T>> {
    if (this.closed) return Promise.reject(new StubError(StubCodes.CLOSED, 'block pool is closed'))
    return new Promise<Reply<T>>((resolve, reject) => {
      this.queue.push({ task, transfer, resolve, reject })
      this.pump()
    })
  }

  private pump (): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return
      if (slot.job !== null) continue
      const job = this.queue.shift()!
      slot.job = job
      slot.worker.ref()
      slot.worker.postMessage({ ...job.task, seq: ++this.seq }, job.transfer)
    }
    if (this.slots.every(s => s.job === null)) for (const s of this.slots) s.worker.unref()
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const job of this.queue.splice(0)) job.reject(new StubError(StubCodes.CLOSED, 'block pool is closed'))
    await Promise.all(this.slots.map(async s => await s.worker.terminate()))
  }
}
