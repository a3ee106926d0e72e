// `dustbox demo` (what `npm start` runs at this stage): an offline walk through the core on a
// temporary home and a folder of sample files: stub them all, show a stub, verify, hydrate one back.

import { promises as fsp } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { StubEngine, createSecret, loadCrypto } from '../stubs/index.js'
import { humanBytes, count } from './format.js'

export interface DemoOptions {
  dir?: string
  keep: boolean
  out: (line: string) => void
}

async function walk (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await walk(p))
    else if (e.isFile()) out.push(p)
  }
  return out.sort()
}

async function du (files: string[]): Promise<number> {
  let n = 0
  for (const f of files) n += (await fsp.stat(f)).size
  return n
}

export async function runDemo (opts: DemoOptions): Promise<void> {
  const { out } = opts
  const base = opts.dir ?? await fsp.mkdtemp(join(tmpdir(), 'dustbox-demo-'))
  const home = join(base, 'home')
  const folder = join(base, 'folder')
  try {
    await fsp.mkdir(join(folder, 'photos'), { recursive: true })
    await fsp.mkdir(join(folder, 'notes', 'Ünïcødé'), { recursive: true })
    const samples: Record<string, Uint8Array> = {
      'photos/sunset 🌅.jpg': randomBytes(3 * 1024 * 1024 + 17),
      'notes/Ünïcødé/Grüße.txt': Buffer.from('Liebe Grüße aus dem dustbox-Demo!\n'.repeat(2000)),
      'report.md': Buffer.from(Array.from({ length: 60000 }, (_, i) => `| ${i} | row ${i * 7919 % 1000} | dustbox |\n`).join('')),
      'empty.txt': new Uint8Array(0)
    }
    for (const [rel, data] of Object.entries(samples)) await fsp.writeFile(join(folder, rel), data)
    const before = await walk(folder)
    out(`demo folder: ${folder}`)
    out(`  ${before.length} files, ${humanBytes(await du(before))}`)

    const crypto = await loadCrypto()
    await createSecret(crypto, home)
    const engine = await StubEngine.open({ home })
    try {
      out(`identity: ${engine.keys.ownerId.slice(0, 16)}…  crypto: ${crypto.name}`)
      const stubbed = await engine.stubMany(before)
      for (const o of stubbed) {
        if (o.ok) out(`  stubbed ${relative(folder, o.result.path)} -> ${relative(folder, o.result.stubPath)} (${count(o.result.blocks, 'block')})`)
        else out(`  FAILED ${o.path}: ${o.error.message}`)
      }
      const after = await walk(folder)
      out(`after stubbing: ${count(after.length, 'stub')}, ${humanBytes(await du(after))} in the folder; the blocks are in ${engine.store.root}`)
      const photoStub = after.find(f => f.includes('sunset'))!
      out(`\n$ cat '${relative(folder, photoStub)}'`)
      const text = await fsp.readFile(photoStub, 'utf8')
      for (const line of text.split('\n').filter(l => l !== '')) out('  ' + (line.length > 110 ? line.slice(0, 110) + '…' : line))
      const v = await engine.verify(photoStub)
      out(`\nverify: ${count(v.blocks, 'block')} present, intact, decrypting to their hashes`)
      const h = await engine.hydrate(photoStub)
      const same = createHash('sha256').update(await fsp.readFile(h.path)).digest('hex') ===
        createHash('sha256').update(samples['photos/sunset 🌅.jpg']).digest('hex')
      out(`hydrate: ${relative(folder, h.path)} restored, ${humanBytes(h.size)}, byte-exact: ${same ? 'yes' : 'NO'}`)
    } finally {
      await engine.close()
    }
    out('\nThe next steps of dustbox put these encrypted blocks on peers found in the DHT (see README).')
  } finally {
    if (!opts.keep && opts.dir === undefined) await fsp.rm(base, { recursive: true, force: true })
    else out(`kept ${base}`)
  }
}
