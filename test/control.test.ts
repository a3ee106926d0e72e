// The agent's control API over real unix sockets in temp dirs: request/response, id matching, the
// in-flight and connection limits, error codes passed through (and internal errors hidden), oversize
// lines and garbage on both sides, events with filters, a slow subscriber that loses events but not
// memory, socket mode 0600, a stale socket left by a killed process, a second agent on the same
// home, cancellation (disconnect, timeout, abort), the long-path fallback, and close().

import test, { type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tempDir, exists } from './helpers/fixtures.js'
import { ControlServer, type ControlServerOptions, type ControlContext } from '../agent/control-server.js'
import { ControlClient, RemoteError, locateSocket, type ControlClientOptions } from '../agent/control-client.js'
import {
  LineSplitter, encodeLine, decodeRequest, decodeServerMessage, wireError, fallbackSocketName,
  CONTROL_PATH_FILE, MAX_SOCKET_PATH_BYTES, MAX_LINE_BYTES
} from '../agent/control-protocol.js'
import { AgentError, AgentCodes } from '../agent/errors.js'

const WAIT_MS = 10_000

interface Served { server: ControlServer, dir: string, path: string, warnings: string[] }

async function serve (t: TestContext, opts: Partial<ControlServerOptions> = {}): Promise<Served> {
  const dir = opts.stateDir ?? await tempDir(t, 'dustbox-ctl-ü-')
  const warnings: string[] = []
  const server = new ControlServer({ onWarning: m => { warnings.push(m) }, ...opts, stateDir: dir })
  t.after(async () => { await server.close() })
  const path = await server.listen()
  return { server, dir, path, warnings }
}

async function connect (t: TestContext, dir: string, opts?: ControlClientOptions): Promise<ControlClient> {
  const c = await ControlClient.connect(dir, opts)
  t.after(async () => { await c.close() })
  return c
}

async function rejectsCode (p: Promise<unknown>, code: string, cls?: new (...a: any[]) => Error): Promise<Error> {
  try {
    await p
  } catch (err) {
    assert.equal((err as { code?: string }).code, code, (err as Error).message)
    assert.ok((err as Error).message.startsWith(code + ': '), (err as Error).message)
    if (cls !== undefined) assert.ok(err instanceof cls, `${(err as Error).name} is not a ${cls.name}`)
    return err as Error
  }
  assert.fail(`expected ${code}`)
}

async function until (cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** A hand-written client: raw lines in and out, to speak the protocol badly on purpose. */
class Raw {
  readonly lines: any[] = []
  ended = false
  private buf = ''
  private wake: (() => void) | null = null

  private constructor (readonly socket: net.Socket) {
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      this.buf += d
      for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, i)
        if (line.trim() !== '') this.lines.push(JSON.parse(line)) // blank lines: keepalive probes
        this.buf = this.buf.slice(i + 1)
      }
      this.wake?.()
    })
    socket.on('close', () => { this.ended = true; this.wake?.() })
    socket.on('error', () => {})
  }

  static async open (t: TestContext, path: string, expectHello = true): Promise<Raw> {
    const s = net.connect(path)
    t.after(() => { s.destroy() })
    await once(s, 'connect')
    const r = new Raw(s)
    if (expectHello) assert.equal((await r.next()).event, 'hello')
    return r
  }

  send (x: unknown): void {
    this.socket.write(typeof x === 'string' || Buffer.isBuffer(x) ? x : JSON.stringify(x) + '\n')
  }

  async next (): Promise<any> {
    const deadline = Date.now() + WAIT_MS
    while (this.lines.length === 0) {
      if (this.ended) assert.fail('connection closed while waiting for a line')
      if (Date.now() > deadline) assert.fail('timed out waiting for a line')
      await new Promise<void>(resolve => { this.wake = resolve; setTimeout(resolve, 50) })
    }
    return this.lines.shift()
  }

  async closed (): Promise<void> {
    await until(() => this.ended, 'the server to close the connection')
  }
}

test('round trip: hello, ping, a handler result; params default to {}', async t => {
  const { server, dir, path } = await serve(t, { info: { version: '0.1.0' } })
  const seen: Array<[unknown, ControlContext]> = []
  server.handle('echo', async (params, ctx) => { seen.push([params, ctx]); return { params, at: 'ünïcode ✓' } })
  server.handle('nothing', () => undefined)
  assert.equal(path, join(dir, 'control.sock'))
  assert.equal(server.path, path)
  const c = await connect(t, dir)
  assert.equal(c.path, path)
  assert.equal(c.hello.protocol, 1)
  assert.equal(c.hello.pid, process.pid)
  assert.equal(c.hello.version, '0.1.0')
  assert.deepEqual(await c.call('ping'), {})
  assert.deepEqual(await c.call('echo', { a: [1, 'ß'], b: null }), { params: { a: [1, 'ß'], b: null }, at: 'ünïcode ✓' })
  assert.deepEqual(await c.call('echo'), { params: {}, at: 'ünïcode ✓' })
  assert.equal(await c.call('nothing'), null)
  assert.equal(seen[0][1].method, 'echo')
  assert.equal(typeof seen[0][1].clientId, 'number')
  assert.equal(seen[0][1].signal.aborted, false)
  await server.ready()
  assert.equal(server.stats().clients, 1)
})

test('concurrent requests are matched by id; the client queues past the in-flight limit', async t => {
  const { server, dir } = await serve(t)
  let running = 0
  let most = 0
  server.handle('slow', async params => {
    running++
    most = Math.max(most, running)
    await new Promise(resolve => setTimeout(resolve, Number(params.ms)))
    running--
    return { n: params.n }
  })
  const c = await connect(t, dir)
  const N = 100
  const results = await Promise.all(Array.from({ length: N }, async (_, n) => await c.call<{ n: number }>('slow', { n, ms: (N - n) % 7 })))
  assert.deepEqual(results.map(r => r.n), Array.from({ length: N }, (_, n) => n))
  assert.equal(most, 16, 'the client keeps exactly the announced 16 requests in flight')
  // Two clients at once, interleaved.
  const d = await connect(t, dir)
  const [x, y] = await Promise.all([c.call('slow', { n: 'c', ms: 5 }), d.call('slow', { n: 'd', ms: 1 })])
  assert.deepEqual([x, y], [{ n: 'c' }, { n: 'd' }])
})

test('the request past the in-flight limit of one connection is answered CONTROL_BUSY', async t => {
  const { server, path } = await serve(t, { maxInFlight: 4 })
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  server.handle('wait', async () => { await gate; return 'done' })
  const r = await Raw.open(t, path)
  for (let id = 1; id <= 5; id++) r.send({ v: 1, id, method: 'wait' })
  const busy = await r.next()
  assert.deepEqual(busy, { v: 1, id: 5, ok: false, error: { code: 'CONTROL_BUSY', message: 'CONTROL_BUSY: 4 requests already in flight on this connection; wait for one to finish' } })
  r.send({ v: 1, id: 6, method: 'ping' }) // built-ins are never counted
  assert.deepEqual(await r.next(), { v: 1, id: 6, ok: true, result: {} })
  r.send({ v: 1, id: 2, method: 'wait' })
  assert.equal((await r.next()).error.code, 'CONTROL_PROTOCOL', 'an id already in flight')
  release()
  const done = [await r.next(), await r.next(), await r.next(), await r.next()]
  assert.deepEqual(done.map(l => l.id).sort(), [1, 2, 3, 4])
  assert.ok(done.every(l => l.ok === true && l.result === 'done'))
})

test('handler errors: codes pass through, anything else is INTERNAL without details', async t => {
  const { server, dir, warnings } = await serve(t)
  server.handle('notWatched', async () => { throw new AgentError(AgentCodes.NOT_WATCHED, '/home/ü/x.txt is not in a watched folder') })
  server.handle('foreign', () => { throw Object.assign(new Error('STUB_CORRUPT: bad magic in a.f'), { code: 'STUB_CORRUPT' }) })
  server.handle('plain', async () => { throw new Error('secret key deadbeef at /root/.x') })
  server.handle('string', async () => { throw 'boom' as unknown as Error })
  server.handle('badCode', async () => { throw Object.assign(new Error('nope'), { code: 'ENOENT' }) })
  server.handle('bigint', async () => ({ n: 10n }))
  server.handle('huge', async () => 'x'.repeat(MAX_LINE_BYTES))
  const c = await connect(t, dir)
  const e1 = await rejectsCode(c.call('notWatched'), 'NOT_WATCHED', RemoteError)
  assert.equal(e1.message, 'NOT_WATCHED: /home/ü/x.txt is not in a watched folder')
  const e2 = await rejectsCode(c.call('foreign'), 'STUB_CORRUPT', RemoteError)
  assert.equal(e2.message, 'STUB_CORRUPT: bad magic in a.f')
  for (const m of ['plain', 'string', 'badCode']) {
    const e = await rejectsCode(c.call(m), 'INTERNAL', RemoteError)
    assert.equal(e.message, `INTERNAL: the agent failed to handle ${m}`)
    assert.ok(!e.message.includes('secret') && !e.message.includes('    at '))
  }
  assert.ok(warnings.some(w => w.includes('plain')), 'the real error is a warning on the agent side')
  await rejectsCode(c.call('bigint'), 'INTERNAL', RemoteError)
  const big = await rejectsCode(c.call('huge'), 'CONTROL_TOO_LARGE', RemoteError)
  assert.match(big.message, /result of huge is larger than 1048576 bytes/)
  assert.deepEqual(await c.call('ping'), {}, 'the connection is still usable')
})

test('unknown methods, bad params and bad envelopes are answered; the connection stays usable', async t => {
  const { dir, path } = await serve(t)
  const r = await Raw.open(t, path)
  const ask = async (x: unknown): Promise<any> => { r.send(x); return await r.next() }
  const code = (l: any): string => l.error.code
  assert.deepEqual(await ask({ v: 1, id: 1, method: 'nope' }), { v: 1, id: 1, ok: false, error: { code: 'UNKNOWN_METHOD', message: 'UNKNOWN_METHOD: no method "nope"' } })
  let l = await ask({ v: 1, id: 2, method: 'ping', params: [1] })
  assert.deepEqual([l.id, code(l)], [2, 'BAD_PARAMS'])
  l = await ask({ v: 2, id: 3, method: 'ping' })
  assert.deepEqual([l.id, code(l)], [3, 'CONTROL_PROTOCOL'])
  assert.match(l.error.message, /unsupported protocol version 2/)
  for (const bad of [{ v: 1, method: 'ping' }, { v: 1, id: -1, method: 'ping' }, { v: 1, id: 1.5, method: 'ping' }, { v: 1, id: '7', method: 'ping' }, [], 42, null, '"str"\n']) {
    l = await ask(bad)
    assert.deepEqual([l.id, code(l)], [null, 'CONTROL_PROTOCOL'], JSON.stringify(bad))
  }
  for (const method of [5, '', 'Status', '__proto__', 'a b', 'x'.repeat(65)]) {
    l = await ask({ v: 1, id: 4, method })
    assert.deepEqual([l.id, code(l)], [4, 'CONTROL_PROTOCOL'], JSON.stringify(method))
  }
  l = await ask({ v: 1, id: 5, method: 'subscribe', params: { events: 'all' } })
  assert.deepEqual([l.id, code(l)], [5, 'BAD_PARAMS'])
  l = await ask({ v: 1, id: 6, method: 'cancel', params: { id: 'x' } })
  assert.deepEqual([l.id, code(l)], [6, 'BAD_PARAMS'])
  r.send('\n  \r\n')
  assert.deepEqual(await ask({ v: 1, id: 9, method: 'ping', params: null, extra: 'ignored' }), { v: 1, id: 9, ok: true, result: {} })
  assert.equal(r.ended, false)
  const c = await connect(t, dir)
  await rejectsCode(c.call('Bad Name'), 'BAD_PARAMS', AgentError)
  await rejectsCode(c.call('ping', [] as unknown as Record<string, unknown>), 'BAD_PARAMS', AgentError)
})

test('a line over 1 MiB: CONTROL_TOO_LARGE, then the connection is closed', async t => {
  const { server, dir, path } = await serve(t)
  server.handle('echo', async params => params)
  // A line of exactly 1 MiB is accepted.
  const r = await Raw.open(t, path)
  const head = '{"v":1,"id":1,"method":"echo","params":{"s":"'
  const tail = '"}}'
  const s = 'x'.repeat(MAX_LINE_BYTES - head.length - tail.length)
  r.send(head + s + tail + '\n')
  const l = await r.next()
  assert.deepEqual([l.id, l.result.s.length], [1, s.length])
  // One byte more, sent in pieces and without a newline: refused before the line ends.
  const piece = Buffer.alloc(64 * 1024, 0x20)
  for (let i = 0; i < 16; i++) r.send(piece)
  r.send('x')
  const e = await r.next()
  assert.deepEqual([e.id, e.error.code], [null, 'CONTROL_TOO_LARGE'])
  await r.closed()
  // The client refuses to send a request over the limit, and stays connected.
  const c = await connect(t, dir)
  await rejectsCode(c.call('echo', { s: 'x'.repeat(MAX_LINE_BYTES) }), 'CONTROL_TOO_LARGE', AgentError)
  assert.deepEqual(await c.call('echo', { s: 'ok' }), { s: 'ok' })
  // ...nor one over the agent's limit when that is the smaller.
  const small = await serve(t, { maxLineBytes: 1000 })
  small.server.handle('echo', async params => params)
  const d = await connect(t, small.dir)
  await rejectsCode(d.call('echo', { s: 'x'.repeat(1000) }), 'CONTROL_TOO_LARGE', AgentError)
  assert.deepEqual(await d.call('echo', { s: 'ok' }), { s: 'ok' })
})

test('garbage (bad JSON, bad UTF-8) is answered CONTROL_PROTOCOL and closed; others are unaffected', async t => {
  const { dir, path, warnings } = await serve(t)
  const c = await connect(t, dir)
  for (const garbage of [Buffer.from('{"v":1,"id":1,\n'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]), Buffer.from('\u0000\u0001binary\n'), Buffer.from('['.repeat(200_000) + '\n')]) {
    const r = await Raw.open(t, path)
    r.send(Buffer.concat([Buffer.from('{"v":1,"id":1,"method":"ping"}\n'), garbage, Buffer.from('{"v":1,"id":2,"method":"ping"}\n')]))
    assert.equal((await r.next()).ok, true, 'the line before the garbage is answered')
    const e = await r.next()
    assert.deepEqual([e.id, e.error.code], [null, 'CONTROL_PROTOCOL'])
    await r.closed()
    assert.equal(r.lines.length, 0, 'nothing after the garbage is read')
  }
  assert.ok(warnings.some(w => w.includes('not valid UTF-8')))
  assert.deepEqual(await c.call('ping'), {})
})

test('the client bounds and checks what the agent sends', async t => {
  const dir = await tempDir(t)
  const path = join(dir, 'control.sock')
  let script: (s: net.Socket) => void = () => {}
  const fake = net.createServer(s => { s.on('error', () => {}); script(s) })
  fake.listen(path)
  await once(fake, 'listening')
  t.after(() => { fake.close() })
  const hello = '{"v":1,"event":"hello","data":{"protocol":1,"pid":1,"maxLineBytes":1048576,"maxInFlight":16}}\n'

  script = s => { s.write(hello); s.on('data', () => { s.write(Buffer.alloc(256 * 1024, 0x61)) }) }
  let c = await ControlClient.connect(dir, { maxLineBytes: 64 * 1024 })
  await rejectsCode(c.call('status'), 'CONTROL_TOO_LARGE', AgentError)
  await c.whenClosed()
  assert.equal(c.isClosed, true)
  await rejectsCode(c.call('status'), 'CONTROL_TOO_LARGE', AgentError)

  script = s => { s.write(hello); s.on('data', () => { s.write('{"v":1,"id":1,"ok":"yes"}\n') }) }
  c = await ControlClient.connect(dir)
  await rejectsCode(c.call('status'), 'CONTROL_PROTOCOL', AgentError)

  script = s => { s.write('{"v":1,"event":"hello","data":{"protocol":2}}\n') }
  await rejectsCode(ControlClient.connect(dir), 'CONTROL_PROTOCOL', AgentError)

  script = () => {} // accepts, never greets
  await rejectsCode(ControlClient.connect(dir, { timeoutMs: 100 }), 'CONTROL_TIMEOUT', AgentError)

  const ac = new AbortController()
  const p = ControlClient.connect(dir, { signal: ac.signal })
  ac.abort(new AgentError(AgentCodes.CLOSED, 'user pressed ^C'))
  await rejectsCode(p, 'CLOSED', AgentError)
})

test('connection limit: one more is refused with CONTROL_BUSY, a freed slot is reused', async t => {
  const { dir, server } = await serve(t, { maxClients: 3 })
  const cs = [await connect(t, dir), await connect(t, dir), await connect(t, dir)]
  const e = await rejectsCode(ControlClient.connect(dir), 'CONTROL_BUSY', RemoteError)
  assert.match(e.message, /too many control connections \(3\)/)
  await cs[0].close()
  await until(() => server.stats().clients === 2, 'the server to notice')
  const d = await connect(t, dir)
  assert.deepEqual(await d.call('ping'), {})
})

test('subscribers receive the events they asked for; unsubscribe stops them', async t => {
  const { server, dir } = await serve(t)
  const a = await connect(t, dir)
  const b = await connect(t, dir)
  const gotA: Array<[string, unknown]> = []
  const gotB1: string[] = []
  const gotB2: string[] = []
  assert.equal(server.publish('file.state', { path: 'x' }), 0, 'no subscribers yet')
  await a.subscribe(null, (e, d) => { gotA.push([e, d]) })
  const b1 = await b.subscribe(['file.state'], e => { gotB1.push(e) })
  const b2 = await b.subscribe(['peer.up'], e => { gotB2.push(e) })
  assert.equal(server.stats().subscribers, 2)
  assert.equal(server.publish('file.state', { path: 'ü.txt', state: 'stubbed' }), 2)
  assert.equal(server.publish('peer.up', { peer: 'P' }), 2)
  assert.equal(server.publish('other'), 1)
  await until(() => gotA.length === 3 && gotB1.length === 1 && gotB2.length === 1, 'the events')
  assert.deepEqual(gotA, [['file.state', { path: 'ü.txt', state: 'stubbed' }], ['peer.up', { peer: 'P' }], ['other', null]])
  assert.deepEqual([gotB1, gotB2], [['file.state'], ['peer.up']])
  await b1.close()
  await b1.close()
  assert.equal(server.publish('file.state', {}), 1, 'b now only wants peer.up')
  await b2.close()
  assert.equal(server.stats().subscribers, 1)
  assert.equal(server.publish('peer.up', {}), 1)
  await until(() => gotA.length === 5, 'the last events')
  assert.deepEqual([gotB1.length, gotB2.length], [1, 1])
  assert.throws(() => server.publish('dropped', {}), { code: 'BAD_PARAMS' })
  assert.throws(() => server.publish('Bad name', {}), { code: 'BAD_PARAMS' })
})

test('a slow subscriber loses events, not memory: one `dropped` {count} once it drains', async t => {
  const LIMIT = 256 * 1024
  const { server, path } = await serve(t, { maxOutgoingBytes: LIMIT, maxLineBytes: 64 * 1024 })
  const r = await Raw.open(t, path)
  r.send({ v: 1, id: 1, method: 'subscribe', params: { events: ['blob'] } })
  assert.deepEqual(await r.next(), { v: 1, id: 1, ok: true, result: { events: ['blob'] } })
  r.socket.pause()
  const N = 2000
  const pad = 'z'.repeat(8 * 1024)
  let delivered = 0
  let most = 0
  for (let seq = 0; seq < N; seq++) {
    delivered += server.publish('blob', { seq, pad })
    most = Math.max(most, server.stats().maxQueuedBytes)
    if (seq % 100 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  const st = server.stats()
  assert.ok(most <= LIMIT, `queued ${most} bytes for one connection, limit ${LIMIT}`)
  assert.ok(delivered < N / 4, `only what fits was queued (${delivered})`)
  assert.equal(st.droppedEvents, N - delivered)
  r.socket.resume()
  // Every gap in the sequence is announced, where it happened, by one `dropped` with its size.
  const accounted = (): number => r.lines.reduce((n, l) => n + (l.event === 'dropped' ? l.data.count : 1), 0)
  await until(() => accounted() === N, 'every event to be delivered or announced dropped')
  let next = 0
  let notices = 0
  for (const l of r.lines) {
    if (l.event === 'dropped') {
      assert.ok(l.data.count > 0)
      next += l.data.count
      notices++
    } else {
      assert.equal(l.data.seq, next)
      next++
    }
  }
  assert.equal(next, N)
  assert.ok(notices >= 1)
  assert.equal(r.lines.length - notices, delivered)
  // Events flow again after the notice.
  assert.equal(server.publish('blob', { seq: 'again' }), 1)
  await until(() => r.lines[r.lines.length - 1]?.data?.seq === 'again', 'the next event')
})

test('ControlClient hands `dropped` to its listeners', async t => {
  const { server, dir } = await serve(t, { maxOutgoingBytes: 128 * 1024, maxLineBytes: 64 * 1024 })
  const c = await connect(t, dir)
  const got: Array<[string, any]> = []
  await c.subscribe(['tick'], (e, d) => { got.push([e, d]) })
  const big = 'q'.repeat(32 * 1024)
  let sent = 0
  for (let i = 0; i < 200; i++) sent += server.publish('tick', { i, big })
  await until(() => got.some(([e]) => e === 'dropped'), 'dropped')
  const ticks = got.filter(([e]) => e === 'tick').length
  assert.equal(ticks, sent)
  assert.deepEqual(got[got.length - 1], ['dropped', { count: 200 - sent }])
})

test('the socket is created with mode 0600 and nothing else is left in the state dir', async t => {
  const { dir, path } = await serve(t)
  const st = await fsp.lstat(path)
  assert.ok(st.isSocket())
  assert.equal(st.mode & 0o777, 0o600)
  assert.deepEqual(await fsp.readdir(dir), ['control.sock'])
})

test('a stale socket left by a killed process is replaced', async t => {
  const dir = await tempDir(t, 'dustbox-ctl-stale-')
  const path = join(dir, 'control.sock')
  const child = spawn(process.execPath, ['-e', 'require("net").createServer().listen(process.argv[1], () => console.log("up"))', path], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => { child.kill('SIGKILL') })
  await once(child.stdout, 'data')
  child.kill('SIGKILL')
  await once(child, 'exit')
  assert.ok((await fsp.lstat(path)).isSocket(), 'the dead process left its socket')
  await rejectsCode(ControlClient.connect(dir), 'NOT_RUNNING', AgentError)
  const { warnings } = await serve(t, { stateDir: dir })
  assert.ok(warnings.some(w => w.includes('removed stale control socket')), warnings.join('\n'))
  const c = await connect(t, dir)
  assert.deepEqual(await c.call('ping'), {})
  // Not a socket: refused rather than removed.
  const other = await tempDir(t)
  await fsp.writeFile(join(other, 'control.sock'), 'precious')
  await rejectsCode(new ControlServer({ stateDir: other }).listen(), 'HOME_INVALID', AgentError)
  assert.equal(await fsp.readFile(join(other, 'control.sock'), 'utf8'), 'precious')
})

test('a second server on the same home fails with AGENT_RUNNING; the first keeps serving', async t => {
  const { dir, server } = await serve(t)
  server.handle('who', () => 'first')
  const second = new ControlServer({ stateDir: dir, onWarning: () => {} })
  const e = await rejectsCode(second.listen(), 'AGENT_RUNNING', AgentError)
  assert.match(e.message, /an agent already runs on this home/)
  await second.close()
  assert.deepEqual(await fsp.readdir(dir), ['control.sock'])
  const c = await connect(t, dir)
  assert.equal(await c.call('who'), 'first')
})

test('ctx.signal aborts on disconnect, on timeout and on abort (cancel); late answers are ignored', async t => {
  const { server, dir } = await serve(t)
  const aborted: Array<{ id: number, reason: string }> = []
  server.handle('hang', async (_params, ctx) => {
    await new Promise<void>(resolve => { ctx.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
    aborted.push({ id: ctx.requestId, reason: (ctx.signal.reason as Error).message })
    return 'late'
  })
  const c = await connect(t, dir)
  await rejectsCode(c.call('hang', {}, { timeoutMs: 50 }), 'CONTROL_TIMEOUT', AgentError)
  await until(() => aborted.length === 1, 'cancel after the timeout')
  assert.match(aborted[0].reason, /cancelled by the client/)
  const ac = new AbortController()
  const p = c.call('hang', {}, { signal: ac.signal })
  await until(() => server.stats().clients === 1, 'the call to arrive')
  ac.abort(new AgentError(AgentCodes.CLOSED, 'interrupted'))
  const e = await rejectsCode(p, 'CLOSED', AgentError)
  assert.equal(e.message, 'CLOSED: interrupted')
  await until(() => aborted.length === 2, 'cancel after the abort')
  assert.deepEqual(await c.call('ping'), {}, 'the late answers were dropped quietly')
  // A client that goes away aborts what it left running.
  const d = await connect(t, dir)
  const q = d.call('hang')
  q.catch(() => {})
  await new Promise(resolve => setTimeout(resolve, 20))
  await d.close()
  await rejectsCode(q, 'CLOSED', AgentError)
  await until(() => aborted.length === 3, 'abort on disconnect')
  assert.match(aborted[2].reason, /disconnected/)
})

test('a state dir too long for a socket falls back; control.path leads the client there', async t => {
  const base = await tempDir(t, 'dustbox-ctl-long-')
  const stateDir = join(base, 'ñ'.repeat(20), 'déjà vu', 'home-'.repeat(8))
  await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 })
  assert.ok(Buffer.byteLength(join(stateDir, 'control.sock')) > MAX_SOCKET_PATH_BYTES)

  // 1. $XDG_RUNTIME_DIR-like directory of ours, mode 0700.
  const runtimeDir = await tempDir(t, 'rt-')
  const { server, path } = await serve(t, { stateDir, runtimeDir })
  assert.equal(path, join(runtimeDir, fallbackSocketName(stateDir)))
  assert.match(path, /\/dustbox-[0-9a-f]{16}\.sock$/)
  assert.equal(await fsp.readFile(join(stateDir, CONTROL_PATH_FILE), 'utf8'), path + '\n')
  assert.equal((await fsp.lstat(path)).mode & 0o777, 0o600)
  assert.equal(await locateSocket(stateDir), path)
  const c = await connect(t, stateDir)
  assert.deepEqual(await c.call('ping'), {})
  await rejectsCode(new ControlServer({ stateDir, runtimeDir, onWarning: () => {} }).listen(), 'AGENT_RUNNING', AgentError)
  await server.close()
  assert.equal(await exists(path), false)
  assert.equal(await exists(join(stateDir, CONTROL_PATH_FILE)), false)
  await rejectsCode(ControlClient.connect(stateDir), 'NOT_RUNNING', AgentError)

  // 2. A runtime dir others can enter is not used: os.tmpdir()/dustbox-<uid>, mode 0700.
  await fsp.chmod(runtimeDir, 0o755)
  const second = await serve(t, { stateDir, runtimeDir })
  const dir = join(tmpdir(), `dustbox-${process.getuid?.() ?? 'user'}`)
  assert.equal(second.path, join(dir, fallbackSocketName(stateDir)))
  assert.equal((await fsp.lstat(dir)).mode & 0o777, 0o700)
  const d = await connect(t, stateDir)
  assert.deepEqual(await d.call('ping'), {})
  await second.server.close()
  assert.equal(await exists(second.path), false)
})

test('close() is idempotent, removes the socket, ends clients and fails their calls with CLOSED', async t => {
  const { server, dir, path } = await serve(t)
  server.handle('hang', async (_p, ctx) => { await new Promise(resolve => { ctx.signal.addEventListener('abort', resolve) }) })
  server.handle('stop', () => { setImmediate(() => { server.close().catch(() => {}) }); return { stopping: true } })
  const c = await connect(t, dir)
  const sub: string[] = []
  await c.subscribe(null, e => { sub.push(e) })
  const pending = c.call('hang')
  pending.catch(() => {})
  assert.deepEqual(await c.call('stop'), { stopping: true }, 'the answer is flushed before the close')
  await Promise.all([server.close(), server.close()])
  await server.close()
  assert.equal(await exists(path), false)
  assert.deepEqual(await fsp.readdir(dir), [])
  await rejectsCode(pending, 'CLOSED', AgentError)
  await c.whenClosed()
  await rejectsCode(c.call('ping'), 'CLOSED', AgentError)
  await rejectsCode(server.listen(), 'CLOSED', AgentError)
  await rejectsCode(ControlClient.connect(dir), 'NOT_RUNNING', AgentError)
  await c.close()
  await c.close()
  // A server closed before it listened does nothing.
  await new ControlServer({ stateDir: dir }).close()
})

test('a client that half-closes after its requests still gets the answers', async t => {
  const { server, path } = await serve(t)
  server.handle('later', async () => { await new Promise(resolve => setTimeout(resolve, 20)); return 'ok' })
  const r = await Raw.open(t, path)
  r.send('{"v":1,"id":1,"method":"later"}\n{"v":1,"id":2,"method":"ping"}\n')
  r.socket.end()
  await r.closed()
  assert.deepEqual(r.lines.map(l => [l.id, l.result]).sort(), [[1, 'ok'], [2, {}]])
})

test('protocol: golden lines, line splitting across chunks, decoding', () => {
  assert.equal(encodeLine({ v: 1, id: 7, method: 'status', params: {} }).toString(), '{"v":1,"id":7,"method":"status","params":{}}\n')
  assert.equal(encodeLine({ v: 1, id: 7, ok: false, error: { code: 'NOT_WATCHED', message: 'NOT_WATCHED: x' } }).toString(), '{"v":1,"id":7,"ok":false,"error":{"code":"NOT_WATCHED","message":"NOT_WATCHED: x"}}\n')
  assert.equal(encodeLine({ v: 1, event: 'dropped', data: { count: 3 } }).toString(), '{"v":1,"event":"dropped","data":{"count":3}}\n')
  assert.equal(encodeLine({ v: 1, event: 'x', data: 'a\nb\u2028' }).toString().split('\n').length, 2, 'newlines in strings are escaped')
  assert.throws(() => encodeLine({ v: 1, event: 'x', data: 'y'.repeat(100) }, 64), { code: 'CONTROL_TOO_LARGE' })

  const text = '{"a":"ünï 数据"}\n\n{"b":1}\n{"c":'
  const bytes = Buffer.from(text)
  for (let cut = 1; cut < bytes.length; cut++) {
    const s = new LineSplitter(64)
    const lines: string[] = []
    s.push(bytes.subarray(0, cut), l => { lines.push(l.toString()) })
    s.push(bytes.subarray(cut), l => { lines.push(l.toString()) })
    assert.deepEqual(lines, ['{"a":"ünï 数据"}', '', '{"b":1}'], `cut at ${cut}`)
    assert.equal(s.pending, 5)
  }
  const s = new LineSplitter(8)
  const seen: string[] = []
  assert.throws(() => { s.push(Buffer.from('1234\n123456789'), l => { seen.push(l.toString()) }) }, { code: 'CONTROL_TOO_LARGE' })
  assert.deepEqual(seen, ['1234'], 'lines before the oversize one are delivered')
  const stop: string[] = []
  new LineSplitter(8).push(Buffer.from('a\nb\nc\n'), l => { stop.push(l.toString()); return false })
  assert.deepEqual(stop, ['a'])

  assert.deepEqual(decodeRequest({ v: 1, id: 0, method: 'status' }), { ok: true, request: { v: 1, id: 0, method: 'status', params: {} } })
  assert.deepEqual(decodeServerMessage({ v: 1, id: 3, ok: false, error: { code: 'X_Y', message: 'no prefix' } }), { kind: 'response', response: { v: 1, id: 3, ok: false, error: { code: 'X_Y', message: 'X_Y: no prefix' } } })
  assert.throws(() => decodeServerMessage({ v: 1, id: 3, ok: false, error: { code: 'lower', message: 'x' } }), { code: 'CONTROL_PROTOCOL' })
  assert.throws(() => decodeServerMessage({ v: 1, id: null, ok: true, result: 1 }), { code: 'CONTROL_PROTOCOL' })
  assert.deepEqual(wireError(new AgentError(AgentCodes.BAD_PARAMS, 'x'), 'generic'), { code: 'BAD_PARAMS', message: 'BAD_PARAMS: x' })
  assert.deepEqual(wireError(new Error('BAD_PARAMS: x'), 'generic'), { code: 'INTERNAL', message: 'INTERNAL: generic' })
  assert.equal(wireError(new AgentError(AgentCodes.BAD_PARAMS, 'm'.repeat(10_000)), 'g').message.length, 4096)
})
