// Golden vectors of docs/discovery.md (docs/vectors/dht-v1.json): topics (public, group, owner, per
// epoch), the epochs used near a boundary, and the BEP 44 pointer (target, signed bytes, sealed
// value, signature). Regenerate after a deliberate change with:
//   npx tsc -p . && DUSTBOX_WRITE_VECTORS=1 node test/run.js dht-vectors

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { LABELS, publicTopic, groupKey, groupTopic, ownerTopic, epochsAt, pointerTarget, sealPointer, openPointer, signItem, verifyItem, POINTER_SALT } from '../dht/index.js'
import { signedBytes } from '../dht/pointer.js'

const FILE = fileURLToPath(new URL('../../docs/vectors/dht-v1.json', import.meta.url))
const V1 = fileURLToPath(new URL('../../docs/vectors/v1.json', import.meta.url))
const WRITE = process.env.DUSTBOX_WRITE_VECTORS === '1'
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

async function build (): Promise<Record<string, unknown>> {
  const keys = JSON.parse(await fsp.readFile(V1, 'utf8')).keys
  const pk = Buffer.from(keys.ed25519PublicKey, 'hex')
  const sk = Buffer.from(keys.ed25519SecretKey, 'hex')
  const kPointer = Buffer.from(keys.pointer, 'hex')
  const group = { name: 'famille Müller 🏡', secret: 'dustbox test group secret 0001' }
  const epochs = [0, 20417, 20418, 4294967295]
  const g = groupTopic(group.name, Buffer.from(group.secret, 'utf8'))
  const o = ownerTopic(pk)
  const seq = 3
  const payload = Buffer.from('index root 7f3a — Grüße 数据 🎉', 'utf8')
  const nonce = Buffer.from(Array.from({ length: 24 }, (_, i) => 0xa0 + i))
  const v = sealPointer(kPointer, pk, seq, payload, nonce)
  const MS = [1764028800000, 1764028800000 + 14 * 60_000, 1764028800000 + 16 * 60_000, 1764028800000 + 86_400_000 - 10 * 60_000]
  return {
    about: 'docs/discovery.md. Keys from docs/vectors/v1.json (root 000102…1f): the Ed25519 pair keys.ed25519PublicKey/SecretKey and K_pointer = keys.pointer. Hex unless noted; epochs are UTC days (floor(unix ms / 86400000)).',
    labels: LABELS,
    public: { topic: hex(publicTopic().at(0)) },
    group: {
      name: group.name,
      secretUtf8: group.secret,
      key: hex(groupKey(group.name, Buffer.from(group.secret, 'utf8'))),
      topics: epochs.map(e => ({ epoch: e, topic: hex(g.at(e)) }))
    },
    owner: { publicKey: hex(pk), topics: epochs.map(e => ({ epoch: e, topic: hex(o.at(e)) })) },
    epochsAt: MS.map(ms => ({ nowMs: ms, skewMs: 15 * 60_000, epochs: epochsAt(ms, 15 * 60_000) })),
    pointer: {
      publicKey: hex(pk),
      salt: POINTER_SALT.toString('ascii'),
      target: hex(pointerTarget(pk)),
      seq,
      payloadUtf8: payload.toString('utf8'),
      nonce: hex(nonce),
      v: hex(v),
      signedBytes: hex(signedBytes(seq, v)),
      sig: hex(signItem(sk, seq, v))
    }
  }
}

if (WRITE) {
  test('write docs/vectors/dht-v1.json (DUSTBOX_WRITE_VECTORS=1)', async () => {
    await fsp.writeFile(FILE, JSON.stringify(await build(), null, 1) + '\n')
  })
} else {
  test('dht vectors: topics, epochs and the pointer match docs/vectors/dht-v1.json', async () => {
    const want = JSON.parse(await fsp.readFile(FILE, 'utf8'))
    const got = JSON.parse(JSON.stringify(await build()))
    for (const k of Object.keys(want)) assert.deepEqual(got[k], want[k], k)
    assert.deepEqual(Object.keys(got), Object.keys(want))
    const p = want.pointer
    const pk = Buffer.from(p.publicKey, 'hex')
    const kPointer = Buffer.from(JSON.parse(await fsp.readFile(V1, 'utf8')).keys.pointer, 'hex')
    assert.ok(verifyItem(pk, Buffer.from(p.sig, 'hex'), p.seq, Buffer.from(p.v, 'hex')))
    assert.equal(openPointer(kPointer, pk, p.seq, Buffer.from(p.v, 'hex')).toString('utf8'), p.payloadUtf8)
    assert.throws(() => openPointer(kPointer, pk, p.seq + 1, Buffer.from(p.v, 'hex')), /POINTER_INVALID/, 'the seq is bound into the seal')
    // The signed bytes are exactly BEP 44's: bencoded {salt, seq, v} without the outer d…e.
    assert.equal(Buffer.from(p.signedBytes, 'hex').toString('latin1').slice(0, 38), `4:salt18:dustbox/v1/pointer3:seqi${p.seq}e1:v`)
  })
}

test('dht vectors: the independent Python reimplementation agrees (skipped without python3 + cryptography)', t => {
  const probe = spawnSync('python3', ['-c', 'import cryptography'], { encoding: 'utf8' })
  if (probe.status !== 0) { t.skip('python3 with the cryptography package is not available'); return }
  const r = spawnSync('python3', [fileURLToPath(new URL('../../docs/vectors/check_dht_v1.py', import.meta.url))], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(r.status, 0, r.stdout + r.stderr)
  t.diagnostic(r.stdout.trim().split('\n').at(-1) ?? '')
})
