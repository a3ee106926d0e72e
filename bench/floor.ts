// The file-system floor of stubbing a set of files: what replacing every file by a durable stub costs
// on this machine with no chunking, no crypto and no block store. Each file is read, a stub-sized
// file is written atomically next to it the way stubs are (temp, fsync, no-clobber link, directory
// fsync shared through DirSyncer), and the original is removed, with the engine's file concurrency.
// dustbox cannot go faster than this; the gap between the two is what dustbox itself costs.

import { promises as fsp } from 'node:fs'
import { dirname } from 'node:path'
import { writeFileAtomic } from '../stubs/fsutil.js'
import { DirSyncer } from '../stubs/dir-sync.js'
import { FILE_CONCURRENCY } from '../stubs/engine.js'
import { measure, type Measured } from './measure.js'
import { RSS_SAMPLE_MS } from './config.js'

/** Size of the stand-in stub (a one-block stub is ~800-900 bytes). */
const STUB_BYTES = 900

export async function runFloor (files: readonly string[]): Promise<Measured<number>> {
  const stub = Buffer.alloc(STUB_BYTES, 0x61)
  const dirs = new DirSyncer()
  let next = 0
  return await measure({ sampleMs: RSS_SAMPLE_MS, name: 'floor' }, async () => {
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const f = files[next++]
        await fsp.readFile(f)
        await writeFileAtomic(f + '.f', stub, { mode: 0o644, noClobber: true, syncDir: false })
        await dirs.sync(dirname(f))
        await fsp.unlink(f)
      }
    }
    await Promise.all(Array.from({ length: Math.min(FILE_CONCURRENCY, files.length) }, worker))
    return files.length
  })
}
