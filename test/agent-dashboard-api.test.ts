// What the dashboard reads from the agent, over the real control socket of a real swarm: the
// `files` method (paging, filter, bad params), the status fields added for it (peer address,
// transport, RTT; traffic; health by reachable shards), and health falling as peers die.

import test from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { testSwarm, stubbedCount } from './helpers/agent-swarm.js'
import { tempDir, writeTree } from './helpers/fixtures.js'
import type { FilesPage } from '../tui/state.js'

test('files pages and filters; status has addresses, RTT, traffic and health; health drops as peers die', async t => {
  const ts = await testSwarm(t, { peers: 6 })
  const folder = await tempDir(t, 'dustbox-api-')
  const tree: Record<string, Uint8Array | string> = {}
  for (let i = 0; i < 12; i++) tree[`Bilder/Foto ${String(i).padStart(2, '0')} 📷.jpg`] = randomBytes(5000 + i)
  tree['100%_sicher.txt'] = 'x'.repeat(3000)
  await writeTree(folder, tree)
  // A short keepalive: a SIGKILLed peer's uTP connection gets no reset, so the owner notices it after two
  // silent keepalive periods (4 s here; 30 s with the product's default).
  await ts.startOwner([folder], [], { healthCacheMs: 200, keepaliveMs: 2000 })
  await ts.waitFor('13 stubbed', s => stubbedCount(s) === 13)

  const all = await ts.call<FilesPage>('files', { folder, limit: 5 })
  assert.equal(all.total, 13)
  assert.equal(all.rows.length, 5)
  assert.equal(all.rows[0].rel, '100%_sicher.txt', 'sorted by path')
  const page2 = await ts.call<FilesPage>('files', { folder, offset: 10, limit: 5 })
  assert.deepEqual(page2.rows.map(r => r.rel), ['Bilder/Foto 09 📷.jpg', 'Bilder/Foto 10 📷.jpg', 'Bilder/Foto 11 📷.jpg'])
  assert.ok(page2.rows.every(r => r.state === 'stubbed' && r.pinned === false && r.size > 5000))
  assert.equal((await ts.call<FilesPage>('files', { filter: 'foto 1' })).total, 2, 'filter: case-insensitive substring')
  assert.equal((await ts.call<FilesPage>('files', { filter: '%' })).total, 1, '% is a literal')
  assert.equal((await ts.call<FilesPage>('files', { filter: '_' })).total, 1, '_ is a literal')
  for (const [params, code] of [[{ limit: 0 }, 'BAD_PARAMS'], [{ limit: 501 }, 'BAD_PARAMS'], [{ offset: -1 }, 'BAD_PARAMS'], [{ offset: 1.5 }, 'BAD_PARAMS'], [{ filter: 7 }, 'BAD_PARAMS'], [{ folder: '/etc' }, 'NOT_WATCHED']] as const) {
    await assert.rejects(ts.call('files', params), (e: Error & { code?: string }) => e.code === code, JSON.stringify(params))
  }

  const s = await ts.waitFor('RTTs and full health', x => x.peers.filter(p => p.connected).every(p => p.rttMs !== null) && x.health.full === 13)
  for (const p of s.peers.filter(x => x.connected)) {
    assert.match(p.address ?? '', /^127\.0\.0\.1:\d+$/)
    assert.ok(p.transport === 'utp' || p.transport === 'tcp')
    assert.equal(p.lastAudit, null)
  }
  assert.ok(s.traffic.bytesOut > 13 * 5000, 'shards went out')
  assert.deepEqual(s.network.bootstrap, [ts.swarm.bootstrap])
  assert.deepEqual({ ...s.health, checkedAt: 0 }, { files: 13, full: 13, degraded: 0, atRisk: 0, unavailable: 0, repairing: 0, unrecoverable: 0, checkedAt: 0 })

  // Two of six peers gone: every file has exactly k=4 shards left (each peer holds one of six).
  await ts.swarm.stop(ts.peers[0], 'SIGKILL')
  const one = await ts.waitFor('degraded', x => x.health.degraded === 13, 60_000)
  assert.equal(one.health.full, 0)
  await ts.swarm.stop(ts.peers[1], 'SIGKILL')
  const two = await ts.waitFor('at risk', x => x.health.atRisk === 13, 60_000)
  assert.equal(two.health.unavailable, 0)
  await ts.swarm.stop(ts.peers[2], 'SIGKILL')
  await ts.waitFor('unavailable', x => x.health.unavailable === 13, 60_000)
})
