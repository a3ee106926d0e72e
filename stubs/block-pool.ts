// A pool of block workers (worker threads) so both cores hash, compress and encrypt. Tasks queue
// FIFO; an idle worker gets the next task, or, when small tasks are waiting, a batch of them in one
// message (a message costs a thread wake-up, which for a 30 KB block costs more than the block).
// A worker that dies fails its tasks and is replaced.

import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { StubError, StubCodes } from './errors.js'
import type { BlockKeys } from './block-codec.js'
import type { WorkerReply, WorkerTask, WorkerFailure } from './worker-messages.js'

export const POOL_SIZE = Math.max(1, Math.min(8, availableParallelism()))
/** At most this many tasks in one message to a worker... */
export const BATCH_TASKS = 32
/** ...and at most this many bytes of block data (a big block always goes alone). */
export const BATCH_BYTES = 1024 * 1024
/** Workers that die this many times in a row, with no task done in between, break the pool. */
export const MAX_WORKER_FAILURES = 5

type Reply<T extends WorkerTask['type']> = Extract<WorkerReply, { type: T }>

interface Job {
  task: WorkerTask
  transfer: ArrayBuffer[]
  resolve: (r: any) => void
  reject: (e: Error) => void
}

class Slot {
  worker: Worker
  /** The jobs of the batch the worker is running, in order; empty when idle. */
  jobs: Job[] = []
  dead = false
  constructor (worker: Worker) { this.worker = worker }
}

/** Bytes of block data a task carries. */
function taskBytes (task: WorkerTask): number {
  return task.type === 'encode' ? task.plain.byteLength : task.block.byteLength
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
  /** Worker deaths since the last batch that came back. */
  private failures = 0
  /** Set when workers keep dying (e.g. cannot even start): every task then fails with it. */
  private broken: StubError | null = null

  /** `script` is the worker's module (tests give one that fails). */
  constructor (keys: BlockKeys, size = POOL_SIZE, private readonly script: URL = new URL('./block-worker.js', import.meta.url)) {
    this.keys = keys
    this.size = size
    for (let i = 0; i < size; i++) this.slots.push(this.spawn())
  }

  private spawn (): Slot {
    const worker = new Worker(this.script, {
      workerData: { data: this.keys.data, plainHash: this.keys.plainHash },
      env: process.env,
      // Not the parent's flags: some (--input-type, --eval...) are invalid in a worker and kill it.
      execArgv: []
    })
    worker.unref()
    const slot = new Slot(worker)
    worker.on('message', (batch: { replies: WorkerReply[] }) => {
      this.failures = 0
      const jobs = slot.jobs
      slot.jobs = []
      jobs.forEach((job, i) => {
        const reply = batch.replies[i]
        if (reply === undefined) job.reject(new StubError(StubCodes.WORKER_FAILED, 'block worker sent no reply'))
        else if ('error' in reply) job.reject(new WorkerTaskError(reply.error))
        else job.resolve(reply)
      })
      this.pump()
    })
    const fail = (err: Error): void => {
      if (slot.dead) return // 'error' and then 'exit': one death
      slot.dead = true
      const jobs = slot.jobs
      slot.jobs = []
      for (const job of jobs) job.reject(new StubError(StubCodes.WORKER_FAILED, `block worker failed: ${err.message}`))
      if (this.closed || this.broken !== null) return
      if (++this.failures >= MAX_WORKER_FAILURES) {
        this.broken = new StubError(StubCodes.WORKER_FAILED, `block workers keep failing (${this.failures} in a row), last: ${err.message}`)
        for (const job of this.queue.splice(0)) job.reject(this.broken)
        return
      }
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
    if (this.broken !== null) return Promise.reject(this.broken)
    return new Promise<Reply<T>>((resolve, reject) => {
      this.queue.push({ task, transfer, resolve, reject })
      this.pump()
    })
  }

  private pump (): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) break
      if (slot.jobs.length !== 0 || slot.dead) continue
      // The first job always goes; small ones behind it join it while the batch stays small. Only
      // as many as leave the other idle workers a share of what is waiting.
      const idle = this.slots.filter(s => s.jobs.length === 0 && !s.dead).length
      const share = Math.max(1, Math.min(BATCH_TASKS, Math.ceil(this.queue.length / idle)))
      const jobs = [this.queue.shift()!]
      let bytes = taskBytes(jobs[0].task)
      while (jobs.length < share && this.queue.length > 0 && bytes + taskBytes(this.queue[0].task) <= BATCH_BYTES) {
        const job = this.queue.shift()!
        bytes += taskBytes(job.task)
        jobs.push(job)
      }
      slot.jobs = jobs
      slot.worker.ref()
      slot.worker.postMessage({ tasks: jobs.map(j => ({ ...j.task, seq: ++this.seq })) }, jobs.flatMap(j => j.transfer))
    }
    if (this.slots.every(s => s.jobs.length === 0)) for (const s of this.slots) s.worker.unref()
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const job of this.queue.splice(0)) job.reject(new StubError(StubCodes.CLOSED, 'block pool is closed'))
    await Promise.all(this.slots.map(async s => await s.worker.terminate()))
  }
}
