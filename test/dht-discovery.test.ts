// Discovery on real DHT nodes and real agents (child processes with a NetNode each) on 127.0.0.1:
// agents of one topic find and prove each other, another private group stays apart, a lookup on a
// 20-node testnet, rejoining from the saved routing table without the bootstrap node, and finding a
// known identity again after its address changed (with a poisoned address backed off).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { testnet, startAgent, startDhtNode, loopbackOnly } from './helpers/dht-testnet.js'
import { DhtNode } from '../dht/index.js'
import { tempDir } from './helpers/fixtures.js'

test('two agents of a private group find and prove each other; an agent of another group does not find them', async (t) => {
  const net = await testnet(t, 6)
  const group = { name: 'famille Müller 🏡', secret: randomBytes(32).toString('hex') }
  const other = { name: 'famille Müller 🏡', secret: randomBytes(32).toString('hex') }
  const a = await startAgent(t, { bootstrap: net.bootstrap, group })
  const b = await startAgent(t, { bootstrap: net.bootstrap, group })
  const c = await startAgent(t, { bootstrap: net.bootstrap, group: other })
  const [ra, rb] = await Promise.all([a.call('waitPeers', { n: 1 }), b.call('waitPeers', { n: 1 })])
  assert.equal(ra.count, 1)
  assert.equal(rb.count, 1)
  const pa = await a.call('peers')
  const pb = await b.call('peers')
  assert.deepEqual(pa.map((p: any) => p.publicKey), [b.publicKey], 'a proved b, and only b')
  assert.deepEqual(pb.map((p: any) => p.publicKey), [a.publicKey])
  assert.equal(pa[0].port, b.netPort)
  assert.deepEqual(pa[0].topics, [`group:${group.name}`])
  const rc = await c.call('waitPeers', { n: 1, timeoutMs: 1500 })
  assert.equal(rc.count, 0, 'the other group (same name, other secret) finds nobody')
  assert.deepEqual(await c.call('lookup'), [{ host: '127.0.0.1', port: c.netPort }], 'its own topic holds only itself')
  assert.equal(net.blockedSends(), 0)
})

test('with 20 nodes a lookup finds an announced peer; an agent on the public topic proves it', async (t) => {
  const t0 = performance.now()
  const net = await testnet(t, 20)
  const tNet = performance.now() - t0
  const a = await startAgent(t, { bootstrap: net.bootstrap })
  const t1 = performance.now()
  const b = await startAgent(t, { bootstrap: [`127.0.0.1:${net.nodes[13].port}`] })
  const r = await b.call('waitPeers', { n: 1 })
  const tFind = performance.now() - t1
  assert.equal(r.count, 1)
  assert.deepEqual((await b.call('peers')).map((p: any) => p.publicKey), [a.publicKey])
  const lookups = await b.call('lookups')
  t.diagnostic(`20-node testnet up in ${tNet.toFixed(0)} ms; agent start to first proven peer ${tFind.toFixed(0)} ms (in-child ${r.firstPeerMs?.toFixed(0)} ms); lookups ${lookups.map((l: any) => `${l.found}@${l.ms}ms`).join(' ')}`)
  for (const n of net.nodes) assert.ok(n.stats().nodes >= 5, 'every node knows others')
  assert.equal(net.blockedSends(), 0)
})

test('a node restarted with its saved routing table rejoins without the bootstrap node', async (t) => {
  const net = await testnet(t, 8)
  const dir = await tempDir(t, 'dustbox-dht-restart-')
  const first = new DhtNode({ host: '127.0.0.1', port: 0, bootstrap: net.bootstrap, stateDir: dir, allowAddress: loopbackOnly })
  first.on('warning', () => {})
  await first.ready()
  const id = first.nodeId.toString('hex')
  await first.close()
  const saved = JSON.parse(await fsp.readFile(join(dir, 'dht.json'), 'utf8'))
  assert.equal(saved.nodeId, id)
  assert.ok(saved.nodes.length >= 5, `saved ${saved.nodes.length} nodes`)
  await net.nodes[0].close() // the bootstrap node is gone
  const topic = randomBytes(20)
  await net.nodes[3].announce(topic, 7777)
  const t0 = performance.now()
  const again = new DhtNode({ host: '127.0.0.1', port: 0, bootstrap: net.bootstrap, stateDir: dir, allowAddress: loopbackOnly, readyTimeoutMs: 10_000 })
  again.on('warning', () => {})
  t.after(async () => await again.close())
  await again.ready()
  let firstMs = 0
  const found = await again.lookup(topic, { onPeer: () => { firstMs ||= performance.now() - t0 } })
  const ms = performance.now() - t0
  assert.equal(again.nodeId.toString('hex'), id, 'same node id')
  assert.deepEqual(found, [{ host: '127.0.0.1', port: 7777 }])
  t.diagnostic(`restart with a saved table and a dead bootstrap: announced peer found after ${firstMs.toFixed(0)} ms, lookup done after ${ms.toFixed(0)} ms`)
  // A corrupt file costs a warning and a fresh start, not a crash.
  await fsp.writeFile(join(dir, 'dht.json'), '{"format":1,"nodeId":"zz"')
  const warnings: string[] = []
  const fresh = new DhtNode({ host: '127.0.0.1', port: 0, bootstrap: [`127.0.0.1:${net.nodes[1].port}`], stateDir: dir, allowAddress: loopbackOnly })
  fresh.on('warning', w => warnings.push(w.error.message))
  t.after(async () => await fresh.close())
  await fresh.ready()
  assert.ok(warnings.some(w => w.startsWith('STATE_INVALID') && w.includes('dht.json')), warnings.join('\n'))
})

test('an owner finds its peer again after the peer moved, and a poisoned address in the owner topic is backed off', async (t) => {
  const net = await testnet(t, 6)
  const owner = await startAgent(t, { bootstrap: net.bootstrap, announce: false })
  const seed = randomBytes(32).toString('hex')
  const stateDir = await tempDir(t, 'dustbox-dht-holder-')
  const holder1 = await startAgent(t, { bootstrap: net.bootstrap, seed, stateDir })
  await holder1.call('announce')
  const at1 = await owner.call('findPeer', { publicKey: holder1.publicKey })
  assert.deepEqual(at1, [{ host: '127.0.0.1', port: holder1.netPort }])
  await holder1.call('close')
  holder1.proc.kill()
  // Same identity, new transport port: found again by its key.
  const holder2 = await startAgent(t, { bootstrap: net.bootstrap, seed, stateDir })
  await holder2.call('announce')
  assert.notEqual(holder2.netPort, holder1.netPort)
  const at2 = await owner.call('findPeer', { publicKey: holder2.publicKey })
  assert.deepEqual(at2, [{ host: '127.0.0.1', port: holder2.netPort }], 'only the live address proves the identity')
  // Someone else announces its own port under the holder's owner topic: the handshake proves another identity.
  const liar = await startAgent(t, { bootstrap: net.bootstrap })
  const { ownerTopic, epochsAt } = await import('../dht/index.js')
  const poison = await startDhtNode(t, { bootstrap: net.bootstrap })
  for (const e of epochsAt(Date.now())) await poison.announce(ownerTopic(Buffer.from(holder2.publicKey, 'hex')).at(e), liar.netPort)
  const at3 = await owner.call('findPeer', { publicKey: holder2.publicKey })
  assert.deepEqual(at3, [{ host: '127.0.0.1', port: holder2.netPort }])
  const failed = await owner.call('failed')
  const bad = failed.filter((f: any) => f.port === liar.netPort)
  assert.equal(bad.length, 1)
  assert.ok(bad[0].retryInMs >= 30_000, 'backed off')
  await owner.call('findPeer', { publicKey: holder2.publicKey })
  assert.equal((await owner.call('failed')).filter((f: any) => f.port === liar.netPort).length, 1, 'not dialed again during the back-off')
  assert.equal(net.blockedSends(), 0)
})

test('without a dial function, lookups yield candidates, and the caller reports handshakes back', async (t) => {
  const net = await testnet(t, 4)
  const { Discovery, publicTopic } = await import('../dht/index.js')
  const sodium = (await import('sodium-native')).default
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  const d = new Discovery({ identity: { publicKey, secretKey }, host: '127.0.0.1', port: 0, bootstrap: net.bootstrap, allowAddress: loopbackOnly, autoStart: false, lookupMinGapMs: 0 })
  const seen: string[] = []
  d.on('candidate', c => seen.push(`${c.host}:${c.port} ${c.topic}`))
  t.after(async () => await d.close())
  await d.ready()
  await net.nodes[2].announce(publicTopic().at(0), 9999)
  assert.deepEqual(await d.lookup(), [{ host: '127.0.0.1', port: 9999 }])
  assert.deepEqual(seen, ['127.0.0.1:9999 public'])
  await assert.rejects(d.announce(), /CONFIG_INVALID: no announce port configured/)
  await assert.rejects(d.findPeer(publicKey), /CONFIG_INVALID: findPeer needs a dial function/)
  const to = { host: '127.0.0.1', port: 9999 }
  assert.equal(d.backedOff(to), false)
  const wait = d.reportFailure(to)!
  assert.ok(wait >= 45_000 && wait <= 75_000, `${wait}`)
  assert.equal(d.backedOff(to), true)
  await d.lookup()
  assert.equal(seen.length, 1, 'a known candidate is not announced again')
  d.reportSuccess(to, Buffer.alloc(32, 1))
  assert.equal(d.backedOff(to), false)
  assert.equal(d.candidates()[0].state, 'verified')
})
