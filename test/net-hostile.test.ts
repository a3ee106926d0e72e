// Hostile input against a real node (a child process): 10^4 random and mutated frames per `npm test`
// (10^5 under `npm run test:long`) at every state of a connection (before, during and after the
// handshake), over TCP and uTP, while an honest peer keeps transferring on its own connection. The
// node never crashes, its memory stays bounded, each bad connection is closed with a warning, and the
// honest transfers all complete byte-exact. Also: an oversized length prefix, a peer that stalls
// mid-frame (slowloris), a banned identity, and a decoder fuzz of 10^5 (10^6) mutations in-process.

import test from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import sodium from 'sodium-native'
import { startChild } from './helpers/testnet.js'
import { LONG } from './helpers/fixtures.js'
import { initiate, encodePayload1, PROLOGUE } from '../net/handshake.js'
import { NoiseXX, x25519KeyPair, type CipherState } from '../net/noise.js'
import { decodeFrame, encodeRequest, encodeReply, encodeHello, encodeGoodbye, encodeError, MsgTypes, type Request } from '../net/messages.js'
import { NetError } from '../net/errors.js'
import { UtpTransport } from '../net/transport-utp.js'
import { parsePeerId } from '../net/peer-id.js'

const FRAMES = Number(process.env.DUSTBOX_FUZZ_FRAMES ?? (LONG ? 100_000 : 10_000))
const DECODER_MUTATIONS = LONG ? 1_000_000 : 100_000
const PER_CONNECTION = 20

function identity (): { publicKey: Buffer, secretKey: Buffer } {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  return { publicKey, secretKey }
}

let rngState = 0x9e3779b9
function rnd (n: number): number {
  rngState ^= rngState << 13; rngState >>>= 0
  rngState ^= rngState >>> 17
  rngState ^= rngState << 5; rngState >>>= 0
  return rngState % n
}
const rbytes = (n: number): Buffer => randomBytes(n)

/** A well-formed but hostile request: random ids, shards nobody has, unknown types, bad hashes. */
function wellFormed (id: number): Buffer {
  const shards = (): Buffer[] => Array.from({ length: 1 + rnd(40) }, () => rbytes(32))
  const reqs: Array<() => Request> = [
    () => ({ kind: 'PING', nonce: BigInt(rnd(1 << 30)) }),
    () => ({ kind: 'GET_SHARD', shard: rbytes(32) }),
    () => ({ kind: 'HAS', shards: shards() }),
    () => ({ kind: 'DELETE', shards: shards() }),
    () => ({ kind: 'LIST', after: rnd(2) === 0 ? null : rbytes(32), limit: 1 + rnd(4096) }),
    () => ({ kind: 'AUDIT', challenges: Array.from({ length: 1 + rnd(8) }, () => ({ shard: rbytes(32), nonce: rbytes(32), offset: rnd(1 << 20), length: rnd(1 << 20) })) }),
    () => ({ kind: 'SPACE' }),
    () => ({ kind: 'PUT_SHARD', shard: rbytes(32), data: rbytes(rnd(3000)) })
  ]
  const k = rnd(reqs.length + 3)
  if (k < reqs.length) return encodeRequest(id, reqs[k]())
  if (k === reqs.length) {
    // Unknown request type: answered UNKNOWN_TYPE, connection kept.
    const b = Buffer.concat([Buffer.from([0x20 + rnd(0x50)]), Buffer.alloc(4), rbytes(rnd(64))])
    b.writeUInt32BE(id, 1)
    return b
  }
  if (k === reqs.length + 1) return encodeReply(id, { kind: 'PING', nonce: 1n }) // a reply nobody asked for
  return encodeHello({ agent: 'fuzz', utpPort: rnd(65536), tcpPort: rnd(65536), observed: null, maxFrame: rnd(1 << 30), maxRequests: rnd(65536) })
}

const SAMPLES: Buffer[] = [
  encodeRequest(1, { kind: 'HAS', shards: [rbytes(32), rbytes(32), rbytes(32)] }),
  encodeRequest(2, { kind: 'LIST', after: rbytes(32), limit: 5 }),
  encodeRequest(3, { kind: 'AUDIT', challenges: [{ shard: rbytes(32), nonce: rbytes(32), offset: 1, length: 2 }] }),
  encodeReply(4, { kind: 'LIST', more: true, entries: [{ shard: rbytes(32), size: 5 }] }),
  encodeReply(5, { kind: 'SPACE', space: { donated: 1n, used: 2n, free: 3n, quotaForYou: 4n, usedByYou: 5n, maxShard: 6 } }),
  encodeReply(6, { kind: 'HAS', held: [true, false, true] }),
  encodeGoodbye(3, 'bye'),
  encodeError(7, 2, 'x'),
  encodeHello({ agent: 'a', utpPort: 1, tcpPort: 2, observed: { host: '1.2.3.4', port: 5 }, maxFrame: 6, maxRequests: 7 })
]

/** A mutated or random frame: bit flips, truncation, extension, count fields blown up, pure noise. */
function mutated (): Buffer {
  const b = Buffer.from(SAMPLES[rnd(SAMPLES.length)])
  switch (rnd(6)) {
    case 0: for (let i = 0, n = 1 + rnd(4); i < n; i++) b[rnd(b.length)] ^= 1 << rnd(8); return b
    case 1: return b.subarray(0, rnd(b.length))
    case 2: return Buffer.concat([b, rbytes(1 + rnd(40))])
    case 3: { const i = 5 + rnd(Math.max(1, b.length - 6)); if (i + 1 < b.length) b.writeUInt16BE(rnd(65536), i); return b }
    case 4: return rbytes(rnd(200))
    default: { b[0] = rnd(256); return b }
  }
}

function record (cipher: CipherState, plaintext: Buffer): Buffer {
  const c = cipher.encryptWithAd(null, plaintext)
  const h = Buffer.alloc(4)
  h.writeUInt32BE(c.byteLength)
  return Buffer.concat([h, c])
}

async function openRaw (port: number, viaUtp: UtpTransport | null): Promise<net.Socket | import('node:stream').Duplex> {
  if (viaUtp !== null) return (await viaUtp.connect({ host: '127.0.0.1', port })).stream
  const s = net.connect(port, '127.0.0.1')
  s.on('error', () => {})
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  return s
}

async function closed (s: import('node:stream').Duplex, ms: number): Promise<boolean> {
  if (s.destroyed) return true
  return await new Promise<boolean>(resolve => {
    // uTP reports the peer's close as an end of stream.
    const timer = setTimeout(() => { s.off('close', done); s.off('end', done); resolve(false) }, ms)
    const done = (): void => { clearTimeout(timer); s.off('close', done); s.off('end', done); resolve(true) }
    s.once('close', done)
    s.once('end', done)
    s.resume()
  })
}

/** One hostile connection; returns how many frames (or handshake messages) it sent. */
async function hostileConnection (port: number, utp: UtpTransport | null, mode: number): Promise<number> {
  const s = await openRaw(port, utp)
  s.on('error', () => {})
  try {
    if (mode === 0) {
      // Before the handshake: noise, or a length prefix and garbage.
      s.write(rbytes(1 + rnd(3000)))
      await closed(s, 3000)
      return 1
    }
    if (mode === 1) {
      // During the handshake: a real message 1, then a mutated message 3.
      const hs = new NoiseXX(true, x25519KeyPair(), PROLOGUE)
      const m1 = hs.writeMessage(encodePayload1(1, 1))
      const h = Buffer.alloc(2); h.writeUInt16BE(m1.length)
      s.write(Buffer.concat([h, m1]))
      const junk = rbytes(48 + rnd(100))
      const h3 = Buffer.alloc(2); h3.writeUInt16BE(junk.length)
      s.write(Buffer.concat([h3, junk]))
      await closed(s, 3000)
      return 2
    }
    // After the handshake: well-formed hostile requests, then mutated frames and record-level attacks.
    const r = await initiate(s, { identity: identity(), remoteLabel: 'victim', timeoutMs: 5000 })
    const out: Buffer[] = []
    for (let i = 0; i < PER_CONNECTION - 5; i++) out.push(record(r.send, wellFormed(1 + rnd(1000))))
    for (let i = 0; i < 4; i++) out.push(record(r.send, mutated()))
    switch (rnd(3)) {
      case 0: { const bad = record(r.send, wellFormed(1)); bad[4 + rnd(bad.length - 4)] ^= 0x40; out.push(bad); break }
      case 1: out.push(Buffer.from([0xff, 0xff, 0xff, 0xff])); break
      default: out.push(Buffer.from([0, 0, 0, 3, 1, 2, 3]))
    }
    s.write(Buffer.concat(out))
    await closed(s, 3000)
    return PER_CONNECTION
  } finally {
    s.destroy()
  }
}

test(`hostile: ${FRAMES} random and mutated frames at every connection state; the node carries on`, async t => {
  const victim = await startChild(t, { opts: { frameTimeoutMs: 2000, handshakeTimeoutMs: 3000 } })
  const honest = await startChild(t)
  await honest.call('connect', { host: '127.0.0.1', port: victim.port, expect: victim.id, transports: ['tcp'] })
  await victim.call('resetPeak')
  const utp = new UtpTransport({ onConnection: () => {} })
  t.after(async () => { await utp.close() })

  // The honest peer keeps storing and fetching throughout.
  let honestDone = false
  const honestWork = (async () => {
    let rounds = 0
    while (!honestDone && rounds < 1000) {
      const r = await honest.call('putGen', { peer: victim.id, seed: `h${rounds % 4}`, count: 8, size: 200_000, parallel: 4 })
      const g = await honest.call('getGen', { peer: victim.id, seed: `h${rounds % 4}`, count: 8, size: 200_000, parallel: 4 })
      assert.equal(r.ids.length, 8)
      assert.equal(g.ok, 8)
      rounds++
    }
    return rounds
  })()

  let sent = 0
  let conns = 0
  const deadline = Date.now() + (LONG ? 3_600_000 : 240_000)
  await Promise.all(Array.from({ length: 8 }, async (_, lane) => {
    while (sent < FRAMES && Date.now() < deadline) {
      const mode = rnd(10) === 0 ? 0 : rnd(10) === 0 ? 1 : 2
      // (Not `sent += await ...`: that reads `sent` before the await and loses the other lanes' counts.)
      const n = await hostileConnection(victim.port, lane % 4 === 0 ? utp : null, mode).catch(() => 1)
      sent += n
      conns++
    }
  }))
  honestDone = true
  const rounds = await honestWork
  assert.ok(sent >= FRAMES, `only ${sent} frames sent before the deadline`)
  assert.ok(rounds >= 1)

  // Still alive and serving; the honest connection never dropped.
  const peers = await honest.call('peers')
  assert.equal(peers.length, 1)
  assert.ok(peers[0].open)
  assert.ok(Number(await honest.call('ping', { peer: victim.id })) >= 0)
  const mem = await victim.call('mem')
  assert.ok(mem.peakRss < 512 * 1024 * 1024, `victim peak RSS ${mem.peakRss >> 20} MiB`)
  const warnings: Array<{ code: string, message: string }> = await victim.call('warnings')
  const codes = new Set(warnings.map(w => w.code))
  for (const c of ['BAD_MESSAGE', 'FRAME_INVALID', 'FRAME_TOO_LARGE', 'HANDSHAKE_FAILED']) assert.ok(codes.has(c), `no ${c} warning among ${[...codes].join(', ')}`)
  assert.ok(warnings.length >= conns / 2, `${warnings.length} warnings for ${conns} hostile connections`)
  t.diagnostic(`${sent} frames on ${conns} connections; victim peak RSS ${mem.peakRss >> 20} MiB; ${warnings.length} warnings; ${rounds} honest rounds`)
})

test('hostile: a peer that stalls mid-frame is cut off; an oversized length is refused at once; bans hold', async t => {
  const victim = await startChild(t, { opts: { frameTimeoutMs: 300, minFrameRate: 1024 * 1024 } })
  const key = parsePeerId(victim.id)
  // Slowloris: a record header and a few bytes, then nothing.
  const s = await openRaw(victim.port, null)
  const r = await initiate(s, { identity: identity(), remoteLabel: 'victim', expectKey: key })
  s.write(Buffer.from([0, 0, 0x10, 0, 1, 2, 3]))
  const t0 = Date.now()
  assert.ok(await closed(s, 10_000), 'a stalled frame must close the connection')
  assert.ok(Date.now() - t0 < 8000)
  void r
  // Oversized: closed before any body is read.
  const mallory = identity()
  const s2 = await openRaw(victim.port, null)
  await initiate(s2, { identity: mallory, remoteLabel: 'victim' })
  s2.write(Buffer.from([0x7f, 0xff, 0xff, 0xff]))
  assert.ok(await closed(s2, 5000))
  const warnings: Array<{ code: string, message: string }> = await victim.call('warnings')
  assert.ok(warnings.some(w => w.code === 'STALLED' && /stalled mid-frame/.test(w.message)), JSON.stringify(warnings))
  assert.ok(warnings.some(w => w.code === 'FRAME_TOO_LARGE' && /announced a 2147483647-byte frame/.test(w.message)))
  // Mallory is banned now: her next handshake completes, then she is refused with the reason.
  const s3 = await openRaw(victim.port, null)
  await initiate(s3, { identity: mallory, remoteLabel: 'victim' })
  const got: Buffer[] = []
  s3.on('data', d => got.push(d))
  assert.ok(await closed(s3, 5000))
  assert.ok(Buffer.concat(got).length > 0, 'a GOODBYE record was sent')
})

test(`hostile: the frame decoder, fed ${DECODER_MUTATIONS} mutations, only ever throws BAD_MESSAGE`, () => {
  const seeds = [...SAMPLES, ...Array.from({ length: 50 }, (_, i) => wellFormed(1 + i))]
  let decoded = 0
  for (let i = 0; i < DECODER_MUTATIONS; i++) {
    const b = Buffer.from(seeds[rnd(seeds.length)])
    const n = 1 + rnd(3)
    let m: Buffer = b
    for (let j = 0; j < n; j++) {
      switch (rnd(4)) {
        case 0: if (m.length > 0) m[rnd(m.length)] = rnd(256); break
        case 1: m = m.subarray(0, rnd(m.length + 1)); break
        case 2: m = Buffer.concat([m, rbytes(rnd(9))]); break
        default: if (m.length > 0) m[0] = [MsgTypes.HAS, MsgTypes.LIST, MsgTypes.AUDIT, 0x85, 0x87, 0x88, 0x89, 0xff][rnd(8)]
      }
    }
    try {
      decodeFrame(m)
      decoded++
    } catch (err) {
      assert.ok(err instanceof NetError && err.code === 'BAD_MESSAGE', `mutation ${i}: ${String(err)}`)
    }
  }
  assert.ok(decoded > 0)
})
