// dht/ parts without the network: the bounded announce store (caps per announcer, per IP, per
// topic, topics, expiry, reply sampling), candidates (back-off, round robin across hosts, bounds),
// the KRPC schema check, bootstrap lists, network names and group secret files.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AnnounceStore } from '../dht/announce-store.js'
import { CandidateTable } from '../dht/candidates.js'
import { checkMessage, defaultAddressPolicy } from '../dht/krpc-guard.js'
import { parseBootstrap, parseGroupSecret, checkNetworkName, groupTopic, publicTopic } from '../dht/index.js'

const peer = (a: number, b: number, port: number): Buffer => Buffer.from([10, 0, a, b, port >> 8, port & 0xff])

test('announce store: per-announcer, per-IP, per-topic and topic caps; expiry; replies favour long-standing peers', () => {
  let now = 1_000_000
  const s = new AnnounceStore({ maxTopics: 3, maxPeersPerTopic: 10, maxPerAnnouncer: 2, maxPerIp: 4, ttlMs: 1000, valuesPerReply: 4, now: () => now })
  for (let i = 0; i < 50; i++) s.add('t', peer(1, 1, 1000 + i), '10.9.9.9:6881')
  assert.equal(s.size, 2, 'one announcing endpoint holds at most 2')
  for (let p = 0; p < 50; p++) s.add('t', peer(1, 2, 2000 + p), `10.9.9.8:${7000 + p}`)
  assert.equal(s.size, 6, 'one announcing IP holds at most 4 (plus the other IP\'s 2)')
  for (let h = 0; h < 50; h++) { now++; s.add('t', peer(2, h, 3000), `10.1.${h}.1:6881`) }
  assert.equal(s.size, 10, 'a topic holds at most 10')
  for (const t of ['u', 'v', 'w']) s.add(t, peer(3, 3, 4000), '10.2.2.2:1')
  assert.equal(s.topicCount, 3)
  assert.deepEqual(s.get('t'), [], 'the least recently announced topic went first')
  // Sampling: the two oldest of a topic are always in a reply of four.
  now += 5000
  const old = [peer(5, 1, 1), peer(5, 2, 2)]
  s.add('x', old[0], '10.5.1.1:1'); now++
  s.add('x', old[1], '10.5.1.2:1'); now++
  for (let h = 0; h < 9; h++) s.add('x', peer(6, h, 9), `10.6.${h}.1:1`)
  for (let i = 0; i < 20; i++) {
    const r = s.get('x')
    assert.equal(r.length, 4)
    assert.ok(old.every(o => r.some(x => x.equals(o))))
  }
  // A peer re-announced by an announcer already at its cap moves to it within the cap.
  const h = new AnnounceStore({ maxPerAnnouncer: 2, now: () => now })
  for (let i = 0; i < 5; i++) h.add('t', peer(7, i, 1), `10.7.${i}.1:1`)
  h.add('t', peer(7, 9, 1), '10.7.9.9:1'); h.add('t', peer(7, 8, 1), '10.7.9.9:1')
  for (let i = 0; i < 5; i++) h.add('t', peer(7, i, 1), '10.7.9.9:1')
  assert.equal(h.size, 2, 'the third and later hand-overs evict that announcer\'s stalest')
  now += 2000
  assert.deepEqual(s.get('x'), [], 'expired')
  s.sweep()
  assert.equal(s.size, 0)
})

test('candidates: back-off doubles up to its cap, hosts are served round robin, the table is bounded', () => {
  const c = new CandidateTable({ backoffBaseMs: 1000, backoffMaxMs: 8000, maxCandidates: 50, maxQueue: 40 })
  for (let p = 1; p <= 10; p++) c.offer('10.0.0.1', p, 'public', null, 0)
  c.offer('10.0.0.2', 1, 'public', null, 0)
  c.offer('10.0.0.3', 1, 'public', null, 0)
  const order = [c.take(), c.take(), c.take(), c.take()].map(x => x!.host)
  assert.deepEqual(order, ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1'], 'one host\'s many ports do not crowd out the others')
  const x = c.get('10.0.0.2:1')!
  const waits = [1, 2, 3, 4, 5].map(() => c.fail(x, 0))
  for (const [i, w] of waits.entries()) {
    const base = Math.min(8000, 1000 * 2 ** i)
    assert.ok(w >= base * 0.75 && w <= base * 1.25, `${w} for failure ${i + 1}`)
  }
  assert.equal(c.offer('10.0.0.2', 1, 'public', null, 1).queued, false, 'not retried during its back-off')
  assert.equal(c.offer('10.0.0.2', 1, 'public', null, 20_000).queued, true, 'retried after it')
  // The same address expected as a given identity is a separate candidate with its own back-off.
  assert.equal(c.offer('10.0.0.2', 1, 'owner:ab', Buffer.alloc(32, 0xab), 1).fresh, true)
  for (let i = 0; i < 200; i++) c.offer(`10.1.${i}.1`, 1, 'public', null, 2)
  assert.ok(c.size <= 50)
  assert.ok(c.queueLength <= 40)
})

test('KRPC schema: valid messages pass, each broken rule is named', () => {
  const id = Buffer.alloc(20, 1)
  const t = Buffer.from('aa')
  const q = (name: string, a: Record<string, unknown>): unknown => ({ t, y: Buffer.from('q'), q: Buffer.from(name), a: { id, ...a } })
  assert.equal(checkMessage(q('ping', {})), null)
  assert.equal(checkMessage(q('announce_peer', { info_hash: id, token: Buffer.from('x'), implied_port: 1 })), null)
  assert.equal(checkMessage(q('announce_peer', { info_hash: id, token: 5, port: 80 })), 'announce_peer a.token must be 1..64 bytes')
  assert.equal(checkMessage(q('put', { token: Buffer.from('x'), v: Buffer.from('v'), k: Buffer.alloc(32), sig: Buffer.alloc(64) })), 'put a.seq must be a non-negative integer')
  assert.equal(checkMessage({ t: Buffer.from([0, 1]), y: Buffer.from('r'), r: { id, nodes: Buffer.alloc(27) } }), 'r.nodes must be a multiple of 26 bytes, at most 64 nodes')
  assert.equal(checkMessage({ t: Buffer.from([0, 1]), y: Buffer.from('x') }), 'unknown message type "x"')
  const policy = defaultAddressPolicy(false)
  assert.deepEqual(['1.2.3.4', '192.168.1.2', '127.0.0.1', '0.1.2.3', '224.0.0.1', '255.255.255.255', '::1'].map(h => policy(h, 80)), [true, true, false, false, false, false, false])
  assert.equal(defaultAddressPolicy(true)('127.0.0.1', 80), true)
  assert.equal(policy('1.2.3.4', 0), false)
})

test('config input: bootstrap lists, network names and group secret files are checked and named', () => {
  assert.deepEqual(parseBootstrap('127.0.0.1:6881, router.bittorrent.com:6881'), [{ host: '127.0.0.1', port: 6881 }, { host: 'router.bittorrent.com', port: 6881 }])
  for (const bad of ['nohost', '1.2.3:80', '1.2.3.4:0', '1.2.3.4:70000', 'a b:1', '[::1]:80']) {
    assert.throws(() => parseBootstrap(bad), /^DhtError: CONFIG_INVALID: bootstrap address/, bad)
  }
  assert.throws(() => parseBootstrap(Array.from({ length: 65 }, () => '1.2.3.4:1')), /at most 64/)
  assert.equal(checkNetworkName('famille Müller 🏡'), 'famille Müller 🏡')
  for (const bad of ['', ' x', 'a/b', 'x'.repeat(65), 'a\nb']) assert.throws(() => checkNetworkName(bad), /CONFIG_INVALID: network name/)
  assert.deepEqual(parseGroupSecret('g.secret', Buffer.from('0123456789abcdef\r\n')), Buffer.from('0123456789abcdef'))
  assert.throws(() => parseGroupSecret('/etc/dustbox/g.secret', Buffer.from('short\n')), /CONFIG_INVALID: group secret file \/etc\/dustbox\/g.secret must hold 16..4096 bytes/)
  const a = groupTopic('g', Buffer.from('0123456789abcdef'))
  assert.notDeepEqual(a.at(1), groupTopic('h', Buffer.from('0123456789abcdef')).at(1), 'the name matters')
  assert.notDeepEqual(a.at(1), a.at(2), 'group topics change every epoch')
  assert.deepEqual(publicTopic().at(1), publicTopic().at(2), 'the public topic does not')
})

test('bencode scanner: canonical encodings pass; the datagram that makes both bencode decoders run out of memory does not', async () => {
  const { checkBencode } = await import('../dht/bencode-check.js')
  const bencode = (await import('bencode')).default
  const ok = [{ t: Buffer.from('aa'), y: 'q', q: 'ping', a: { id: Buffer.alloc(20) } }, [1, -5, 0, [[]], {}], Buffer.alloc(0), 12345678901234]
  for (const v of ok) assert.equal(checkBencode(bencode.encode(v)), null, JSON.stringify(v))
  const bad: Array<[string, RegExp]> = [
    ['d1:eli201e-3:Generic&rrore1:t2:ab1:y1:ee', /unexpected byte 0x2d/], // found by the mutation fuzz: OOMs bencode 2 and 4
    ['li-3:abce', /bad integer/], ['i-0e', /non-canonical integer/], ['i012e', /non-canonical integer/], ['ie', /bad integer/],
    ['03:abc', /non-canonical string length/], ['5:abc', /string runs past the end/], ['d1:ae', /dictionary key without a value/],
    ['di1ei2ee', /dictionary key is not a string/], ['dl1:ae1:be', /dictionary key is not a string/], ['l', /truncated/], ['4:spam4:eggs', /trailing bytes/],
    ['l'.repeat(17) + 'e'.repeat(17), /nested too deep/], ['i1234567890123456789e', /bad integer/], ['', /truncated/], ['e', /unexpected byte 0x65/]
  ]
  for (const [input, want] of bad) assert.match(checkBencode(Buffer.from(input, 'latin1')) ?? 'passed', want, input)
  // Nested containers as dict values keep the key/value alternation right.
  assert.equal(checkBencode(Buffer.from('d1:ad1:bl1:cee1:di1ee')), null)
})

test('decoder chain fuzz: whatever the guard passes, the library\'s own decoder (bencode 2) decodes', async () => {
  const { createRequire } = await import('node:module')
  const { checkBencode } = await import('../dht/bencode-check.js')
  const { checkMessage } = await import('../dht/krpc-guard.js')
  const { LONG } = await import('./helpers/fixtures.js')
  const bencode = (await import('bencode')).default
  const req = createRequire(createRequire(import.meta.url).resolve('k-rpc-socket/package.json'))
  const b2 = req('bencode') as { decode: (b: Uint8Array) => unknown }
  const seeds = [
    { t: Buffer.from('af'), y: 'q', q: 'put', a: { id: Buffer.alloc(20, 1), token: Buffer.alloc(20, 1), v: Buffer.from('value'), k: Buffer.alloc(32, 2), sig: Buffer.alloc(64, 3), seq: 4, salt: Buffer.from('s') } },
    { t: Buffer.from([0, 1]), y: 'r', r: { id: Buffer.alloc(20, 4), nodes: Buffer.alloc(26 * 4, 5), token: Buffer.alloc(20), values: [Buffer.alloc(6, 6)] } },
    { t: Buffer.from([0, 2]), y: 'e', e: [201, Buffer.from('Generic Error')] },
    { t: Buffer.from('ad'), y: 'q', q: 'announce_peer', a: { id: Buffer.alloc(20, 7), info_hash: Buffer.alloc(20, 8), port: 6881, token: Buffer.alloc(20, 1), implied_port: 0 } }
  ].map(m => Buffer.from(bencode.encode(m)))
  const n = LONG ? 1_000_000 : 100_000
  let passed = 0
  let x = 12345
  const rnd = (m: number): number => { x = (x * 1103515245 + 12345) >>> 0; return x % m }
  for (let i = 0; i < n; i++) {
    const b = Buffer.from(seeds[i % seeds.length])
    for (let k = 0; k <= i % 4; k++) {
      const at = rnd(b.length)
      const op = rnd(3)
      if (op === 0) b[at] = rnd(256)
      else if (op === 1) b[at] = '0123456789:ilde-'.charCodeAt(rnd(16))
      else b.copyWithin(at, rnd(b.length))
    }
    const buf = i % 5 === 0 ? b.subarray(0, rnd(b.length)) : b
    if (checkBencode(buf) !== null || checkMessage(bencode.decode(buf)) !== null) continue
    passed++
    b2.decode(buf) // must not throw, hang or run out of memory
  }
  assert.ok(passed > n / 50, `${passed} of ${n} passed the guard`)
})
