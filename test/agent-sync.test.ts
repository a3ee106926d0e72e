// Multi-device sync with real agent processes on 127.0.0.1 (docs/sync.md): two devices of one owner
// (the second made from the owner's key with a device key of its own) on the same folder. Adds,
// changes, renames and deletes go both ways; a device that was off catches up at restart; concurrent
// edits leave exactly one conflict copy with both contents kept; a mass deletion is held until
// confirmed (or reverted); a deleted file comes back from its versions; garbage collection deletes a
// block no kept version needs and keeps one that a version on the other device still lists.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { testSwarm, stubbedCount, brief } from './helpers/agent-swarm.js'
import { BIN, agentStatus, sleep, type SwarmChild } from '../agent/swarm.js'
import { spawnSync } from 'node:child_process'
import { ControlClient } from '../agent/control-client.js'
import { createDeviceKey } from '../agent/device.js'
import type { AgentStatus } from '../agent/status.js'

const TUNABLES = { syncPullMs: 2000, syncRetryMs: 500, deleteSettleMs: 800, massDeleteMin: 6, keepVersions: 2, gcGraceMs: 0, gcHoldMs: 60_000, indexDebounceMs: 60_000 }

async function call<T> (home: string, method: string, params: Record<string, unknown> = {}): Promise<T> {
  const c = await ControlClient.connect(home, { timeoutMs: 3000 })
  try { return await c.call<T>(method, params, { timeoutMs: 120_000 }) } finally { await c.close() }
}

async function exists (p: string): Promise<boolean> {
  return await fsp.lstat(p).then(() => true, () => false)
}

async function until (what: string, fn: () => Promise<boolean>, timeoutMs: number, why: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return
    await sleep(200)
  }
  throw new Error(`timed out waiting for ${what}: ${await why().catch(e => String(e))}`)
}

/** The content of a file on a device: opened through its agent when it is a stub. */
async function content (home: string, path: string): Promise<Buffer> {
  if (!await exists(path)) await call(home, 'open', { path: path + '.f' })
  return await fsp.readFile(path)
}

test('two devices of one owner converge: add, change, rename, delete, offline catch-up, conflict, mass delete, undelete, GC', async (t) => {
  const ts = await testSwarm(t, { peers: 6 })
  const base = ts.base
  const A = join(base, 'A', 'Sync ü')
  const B = join(base, 'B', 'Sync ü')
  await fsp.mkdir(A, { recursive: true })
  await fsp.mkdir(B, { recursive: true })
  const beta = randomBytes(300 * 1024)
  await fsp.mkdir(join(A, 'dir ü'))
  await fsp.writeFile(join(A, 'α ü.txt'), 'alpha v1')
  await fsp.writeFile(join(A, 'dir ü', 'β.bin'), beta)
  for (let i = 0; i < 10; i++) {
    await fsp.mkdir(join(A, 'fill'), { recursive: true })
    await fsp.writeFile(join(A, 'fill', `${i}.txt`), `filler ${i} ${randomBytes(8).toString('hex')}`)
  }
  const homeA = ts.ownerHome
  const homeB = join(base, 'deviceB')
  await ts.startOwner([A], [], TUNABLES)
  await ts.waitFor('device A stubbed its 12 files', st => stubbedCount(st) === 12, 90_000)

  // Device B: the owner's key, and a device key of its own (what `dustbox key import` makes).
  await fsp.mkdir(homeB, { recursive: true, mode: 0o700 })
  await fsp.copyFile(join(homeA, 'secret.key'), join(homeB, 'secret.key'))
  await fsp.chmod(join(homeB, 'secret.key'), 0o600)
  await createDeviceKey(homeB)
  let devB: SwarmChild = await ts.swarm.startAgent({ name: 'deviceB', home: homeB, folders: [B], extraArgs: ['--settle', '0.3'], tunables: TUNABLES })
  const stB = async (): Promise<string> => brief(await agentStatus(homeB)) + ' sync ' + JSON.stringify((await agentStatus(homeB)).sync).slice(0, 600) + ' log ' + devB.output.slice(-6).join(' | ')
  const stA = async (): Promise<string> => brief(await agentStatus(homeA)) + ' sync ' + JSON.stringify((await agentStatus(homeA)).sync).slice(0, 600) + ' log ' + ts.owner!.output.slice(-6).join(' | ')
  const sa = await agentStatus(homeA)
  const sb = await agentStatus(homeB)
  assert.equal(sa.identity, sb.identity, 'one owner')
  assert.notEqual(sa.sync!.device.id, sb.sync!.device.id, 'two devices')

  await t.test('a file added on A appears on B as a stub', async () => {
    await until('B has the stubs of A\'s files', async () => await exists(join(B, 'α ü.txt.f')) && await exists(join(B, 'dir ü', 'β.bin.f')) && await exists(join(B, 'fill', '9.txt.f')), 60_000, stB)
    assert.equal((await content(homeB, join(B, 'α ü.txt'))).toString(), 'alpha v1')
    const s = await agentStatus(homeB)
    assert.equal(s.sync!.devices.length, 1)
    assert.equal(s.sync!.devices[0].id, sa.sync!.device.id)
  })

  await t.test('a file added on B appears on A', async () => {
    await fsp.writeFile(join(B, 'von B ✓.txt'), 'from B')
    await until('A has B\'s file', async () => await exists(join(A, 'von B ✓.txt.f')), 60_000, stA)
    assert.equal((await content(homeA, join(A, 'von B ✓.txt'))).toString(), 'from B')
  })

  await t.test('a change on A reaches B, which keeps the file hydrated', async () => {
    await content(homeA, join(A, 'α ü.txt')) // hydrate on A, then edit
    await sleep(50)
    await fsp.writeFile(join(A, 'α ü.txt'), 'alpha v2')
    await until('B has the new content, hydrated', async () => await exists(join(B, 'α ü.txt')) && (await fsp.readFile(join(B, 'α ü.txt'))).toString() === 'alpha v2', 60_000, stB)
  })

  await t.test('a stub renamed on B is renamed on A', async () => {
    await fsp.rename(join(B, 'dir ü', 'β.bin.f'), join(B, 'dir ü', 'β renamed.bin.f'))
    await until('A has the new name and not the old', async () => await exists(join(A, 'dir ü', 'β renamed.bin.f')) && !await exists(join(A, 'dir ü', 'β.bin.f')), 60_000, stA)
    assert.ok((await content(homeA, join(A, 'dir ü', 'β renamed.bin'))).equals(beta))
    await call(homeA, 'evict', { path: join(A, 'dir ü', 'β renamed.bin') })
    await until('A stubbed it again', async () => await exists(join(A, 'dir ü', 'β renamed.bin.f')), 60_000, stA)
  })

  await t.test('a file deleted on A is deleted on B', async () => {
    await fsp.unlink(join(A, 'von B ✓.txt'))
    await until('B no longer has it', async () => !await exists(join(B, 'von B ✓.txt.f')) && !await exists(join(B, 'von B ✓.txt')), 60_000, stB)
  })

  await t.test('a device that was off catches up at restart, both ways', async () => {
    await ts.swarm.stop(devB)
    await fsp.writeFile(join(A, 'während weg.txt'), 'while B was away')
    await fsp.unlink(join(A, 'dir ü', 'β renamed.bin.f'))
    await fsp.writeFile(join(B, 'B offline.txt'), 'written while B was off')
    await ts.waitFor('A placed the new file', async st => st.folders.some(f => (f.files.stubbed ?? 0) > 0) && await exists(join(A, 'während weg.txt.f')), 60_000)
    devB = await ts.swarm.startAgent({ name: 'deviceB', home: homeB, folders: [B], extraArgs: ['--settle', '0.3'], tunables: TUNABLES })
    await until('B caught up', async () => await exists(join(B, 'während weg.txt.f')) && !await exists(join(B, 'dir ü', 'β renamed.bin.f')), 60_000, stB)
    await until('A has B\'s offline file', async () => await exists(join(A, 'B offline.txt.f')), 60_000, stA)
    assert.equal((await content(homeA, join(A, 'B offline.txt'))).toString(), 'written while B was off')
  })

  let conflictName = ''
  await t.test('concurrent edits: one conflict copy, both contents kept', async () => {
    await ts.swarm.stop(devB)
    await fsp.writeFile(join(A, 'α ü.txt'), 'alpha A-edit')
    await until('A recorded its edit', async () => (await call<{ versions: unknown[] }>(homeA, 'versions', { path: join(A, 'α ü.txt') })).versions.length >= 3, 60_000, stA)
    await sleep(1100)
    await fsp.writeFile(join(B, 'α ü.txt'), 'alpha B-edit (later)')
    devB = await ts.swarm.startAgent({ name: 'deviceB', home: homeB, folders: [B], extraArgs: ['--settle', '0.3'], tunables: TUNABLES })
    const conflictOn = async (dir: string): Promise<string[]> => (await fsp.readdir(dir)).filter(n => n.includes('.sync-conflict-'))
    await until('A and B both hold the later edit and one conflict copy', async () => {
      const ca = await conflictOn(A)
      const cb = await conflictOn(B)
      return ca.length === 1 && cb.length === 1 && (await content(homeA, join(A, 'α ü.txt'))).toString() === 'alpha B-edit (later)' &&
        (await content(homeB, join(B, 'α ü.txt'))).toString() === 'alpha B-edit (later)'
    }, 90_000, async () => `${await stA()} || ${await stB()} || A: ${(await fsp.readdir(A)).join(',')} B: ${(await fsp.readdir(B)).join(',')}`)
    const ca = (await conflictOn(A))[0]
    conflictName = ca.endsWith('.f') ? ca.slice(0, -2) : ca
    assert.match(conflictName, new RegExp(`^α ü\\.sync-conflict-\\d{8}-\\d{6}-${sa.sync!.device.id}\\.txt$`))
    assert.equal((await content(homeA, join(A, conflictName))).toString(), 'alpha A-edit')
    assert.equal((await content(homeB, join(B, conflictName))).toString(), 'alpha A-edit')
    await until('status lists the open conflict on both devices', async () => {
      const [x, y] = [await agentStatus(homeA), await agentStatus(homeB)]
      return x.sync!.openConflicts.some(c => c.rel === conflictName) && y.sync!.openConflicts.some(c => c.rel === conflictName)
    }, 30_000, stB)
    const cli = spawnSync(process.execPath, [BIN, '--home', homeB, 'status'], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(cli.status, 0, cli.stderr)
    assert.match(cli.stdout, /CONFLICTS: 1 open/)
    assert.ok(cli.stdout.includes(conflictName), cli.stdout)
  })

  await t.test('a mass deletion is held, reverted, then confirmed', async () => {
    const gone = Array.from({ length: 8 }, (_, i) => join('fill', `${i}.txt`))
    const drop = async (): Promise<void> => { for (const r of gone) await fsp.unlink(join(A, r + '.f')).catch(async () => await fsp.unlink(join(A, r))) }
    await drop()
    let held: AgentStatus['sync'] | undefined
    await until('A holds the deletions', async () => { held = (await agentStatus(homeA)).sync; return held!.held.length === 1 && held!.held[0].files === 8 }, 30_000, stA)
    const cli = spawnSync(process.execPath, [BIN, '--home', homeA, 'sync'], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(cli.status, 0, cli.stderr)
    assert.match(cli.stdout, /HELD: 8 of \d+ files of .*Sync ü deleted at once/)
    await sleep(3000)
    for (const r of gone) assert.ok(await exists(join(B, r + '.f')), `${r} must still be on B while held`)
    const rev = await call<{ reverted: number }>(homeA, 'sync', { action: 'revert' })
    assert.equal(rev.reverted, 8)
    for (const r of gone) assert.ok(await exists(join(A, r + '.f')), `${r} is back on A`)
    assert.equal((await agentStatus(homeA)).sync!.held.length, 0)
    await sleep(1500) // the watcher reports the stubs back before they go again
    await drop()
    await until('held again', async () => (await agentStatus(homeA)).sync!.held.length === 1, 30_000, stA)
    const conf = await call<{ confirmed: number }>(homeA, 'sync', { action: 'confirm' })
    assert.equal(conf.confirmed, 8)
    await until('B deleted them', async () => { for (const r of gone) if (await exists(join(B, r + '.f'))) return false; return true }, 60_000, stB)
    assert.ok(await exists(join(B, 'fill', '9.txt.f')), 'the rest stays')
  })

  await t.test('a deleted file comes back from its versions, on both devices', async () => {
    const v = await call<{ state: string, versions: unknown[] }>(homeA, 'versions', { path: join(A, 'dir ü', 'β renamed.bin') })
    assert.equal(v.state, 'deleted')
    assert.ok(v.versions.length >= 1)
    await call(homeA, 'restoreVersion', { path: join(A, 'dir ü', 'β renamed.bin'), at: 1 })
    assert.ok(await exists(join(A, 'dir ü', 'β renamed.bin.f')))
    await until('B has it back', async () => await exists(join(B, 'dir ü', 'β renamed.bin.f')), 60_000, stB)
    assert.ok((await content(homeB, join(B, 'dir ü', 'β renamed.bin'))).equals(beta))
  })

  await t.test('GC never deletes a block a kept version of the other device lists, and deletes it once no device keeps it', async () => {
    // B writes the content of α's first version (a block A placed): A's α history drops that version,
    // but B's new file still lists the block.
    await fsp.writeFile(join(B, 'kopie.txt'), 'alpha v1')
    await until('A has kopie.txt', async () => await exists(join(A, 'kopie.txt.f')), 60_000, stA)
    type Gc = { pruned: number, collected: number, deletedCopies: number, neededElsewhere: number, waitingForDevices: boolean }
    await call<Gc>(homeB, 'gc')
    const g1 = await call<Gc>(homeA, 'gc')
    // A keeps 2 versions of α (B-edit, A-edit) and drops "alpha v2"; B still keeps "alpha v2": needed.
    assert.equal(g1.waitingForDevices, false, JSON.stringify(g1))
    assert.ok(g1.neededElsewhere >= 1, `B's kept version protects its block: ${JSON.stringify(g1)}`)
    assert.equal((await call<{ versions: unknown[] }>(homeA, 'versions', { path: join(A, 'α ü.txt') })).versions.length, 2)
    // Two more edits: now no device keeps "alpha v2" any more.
    for (const text of ['gamma 1', 'gamma 2']) {
      await fsp.writeFile(join(A, 'α ü.txt'), text)
      await until(`B has ${text}`, async () => (await content(homeB, join(B, 'α ü.txt'))).toString() === text, 60_000, stB)
    }
    await call<Gc>(homeB, 'gc')
    const g2 = await call<Gc>(homeA, 'gc')
    assert.ok(g2.collected >= 1 && g2.deletedCopies >= 1, `A collected what no kept version lists: ${JSON.stringify(g2)}`)
    // Every file on both devices still opens byte-exact, kopie.txt included (its block was kept).
    for (const [home, dir] of [[homeA, A], [homeB, B]] as const) {
      assert.equal((await content(home, join(dir, 'kopie.txt'))).toString(), 'alpha v1')
      assert.equal((await content(home, join(dir, 'α ü.txt'))).toString(), 'gamma 2')
      assert.equal((await content(home, join(dir, conflictName))).toString(), 'alpha A-edit')
      assert.equal((await content(home, join(dir, 'während weg.txt'))).toString(), 'while B was away')
      assert.equal((await content(home, join(dir, 'B offline.txt'))).toString(), 'written while B was off')
      assert.ok((await content(home, join(dir, 'dir ü', 'β renamed.bin'))).equals(beta))
      assert.equal((await content(home, join(dir, 'fill', '9.txt'))).toString().slice(0, 9), 'filler 9 ')
    }
  })
})
