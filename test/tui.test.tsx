// The dashboard without an agent: the reducer (status, batches of events, keys), the event batcher
// under load, the layout at 80×24 and 200×50, a frame of every pane (pure views rendered by Ink),
// and key presses through the whole app (ink-testing-library) against a fake source.

import test from 'node:test'
import assert from 'node:assert/strict'
import { render } from 'ink-testing-library'
import { reducer, initialState, keystrokes, selectedFile, type DashState, type DashEvent } from '../tui/state.js'
import { EventBatcher } from '../tui/batcher.js'
import { layout, CHROME_ROWS } from '../tui/layout.js'
import { cut, fit, width, bar, bytes, duration } from '../tui/format.js'
import { Screen } from '../tui/views/screen.js'
import { App } from '../tui/views/app.js'
import { FakeSource, status, fileItems, renderAt, plain, tick, until, ID } from './helpers/tui-fixtures.js'

const NOW = 1_800_000_000_000
const PAGE = { folders: 3, files: 5, transfers: 2, peers: 3 }

function withStatus (s = initialState()): DashState {
  return reducer(s, { type: 'status', status: status(), at: NOW })
}

function fileEv (state: string, rel: string, extra: Record<string, unknown> = {}, at = NOW): DashEvent {
  const folder = '/home/ana/Fotos 📷'
  return { event: 'file', data: { folder, path: `${folder}/${rel}`, rel, state, ...extra }, at }
}

test('format: cut and fit count display columns (CJK, emoji, combining), never exceed the width', () => {
  assert.equal(width('文書'), 4)
  assert.equal(width('📷'), 2)
  for (const s of ['文書フォルダの写真.jpg', 'Strand 🏖🏖🏖.mov', 'e\u0301e\u0301e\u0301 café', 'a\u0007b\u001b[31m']) {
    for (const w of [1, 2, 5, 8, 13]) {
      assert.ok(width(cut(s, w)) <= w, `${s} @${w}`)
      assert.equal(width(fit(s, w)), w, `${s} fit @${w}`)
    }
  }
  assert.ok(!cut('a\u001b[31mred', 20).includes('\u001b'), 'control characters are not passed to the terminal')
  assert.equal(bar(1, 4, 8), '██░░░░░░')
  assert.equal(bytes(1536), '1.5K')
  assert.equal(duration(75), '1m15s')
})

test('status: rates from traffic deltas, transfers from the snapshot, files pane follows the first folder', () => {
  let s = withStatus()
  assert.equal(s.connected, true)
  assert.equal(s.transfers.length, 1)
  assert.equal(s.files.folder, '/home/ana/Fotos 📷')
  s = reducer(s, { type: 'status', status: status({ traffic: { bytesIn: 1000 + 2_000_000, bytesOut: 2000 + 10_000_000 } }), at: NOW + 1000 })
  assert.equal(Math.round(s.rates.up), 10_000_000)
  assert.equal(Math.round(s.rates.down), 2_000_000)
})

test('events: progress updates transfers, a burst of stubbed files is one log line, hostile data is ignored', () => {
  let s = withStatus()
  const evs: DashEvent[] = [
    fileEv('uploading', 'a.bin', { size: 1000, bytes: 0 }, NOW),
    fileEv('uploading', 'a.bin', { size: 1000, bytes: 500 }, NOW + 1000),
    { event: 'file', data: { nonsense: true }, at: NOW },
    { event: 'file', data: null, at: NOW },
    { event: 'peer', data: { id: 42 }, at: NOW },
    { event: 'warning', data: { code: 'X', message: 'disk slow' }, at: NOW },
    { event: 'warning', data: { code: 'X', message: 'disk slow again' }, at: NOW }
  ]
  s = reducer(s, { type: 'events', events: evs })
  assert.equal(s.log.length, 0, 'event lines wait for the next status')
  s = reducer(s, { type: 'status', status: status(), at: NOW + 1000 })
  const t = s.transfers.find(x => x.rel === 'a.bin')
  assert.ok(t !== undefined)
  assert.equal(t.bytes, 500)
  assert.equal(Math.round(t.rate), 500)
  assert.equal(s.log.filter(l => l.text.includes('disk slow')).length, 1, 'one warning per code per batch')
  const many = Array.from({ length: 50 }, (_, i) => fileEv('stubbed', `f${i}`, { size: 10 }))
  s = reducer(s, { type: 'events', events: [fileEv('stubbed', 'a.bin', { size: 1000 }), ...many, fileEv('failed', 'bad.bin', { error: 'PLACEMENT_FAILED: no peers' })] })
  s = reducer(s, { type: 'status', status: status({ transfers: [] }), at: NOW + 2000 })
  assert.equal(s.transfers.find(x => x.rel === 'a.bin'), undefined, 'finished transfers leave the list')
  const texts = s.log.map(l => l.text)
  assert.ok(texts.some(x => /stubbed +51 files/.test(x)), texts.join('\n'))
  assert.ok(texts.some(x => x.includes('failed    bad.bin: PLACEMENT_FAILED')))
})

test('keys: panes, rows, Enter, filter editing, help; selection picks the file o/p/e act on', () => {
  let s = withStatus()
  s = reducer(s, { type: 'files', folder: s.files.folder, filter: '', page: { total: 120, offset: 0, rows: fileItems('/home/ana/Fotos 📷', 120).slice(0, 150) } })
  const key = (k: Record<string, unknown>): void => { s = reducer(s, { type: 'key', key: { input: '', ...k }, page: PAGE }) }
  assert.equal(s.focus, 'folders')
  assert.equal(selectedFile(s), null)
  key({ downArrow: true })
  assert.equal(s.sel.folders, 1)
  assert.equal(s.files.folder, '/home/ana/文書', 'another folder: the files pane follows')
  key({ upArrow: true })
  key({ return: true })
  assert.equal(s.focus, 'files')
  s = reducer(s, { type: 'files', folder: s.files.folder, filter: '', page: { total: 120, offset: 0, rows: fileItems('/home/ana/Fotos 📷', 120) } })
  key({ downArrow: true }); key({ downArrow: true }); key({ pageDown: true })
  assert.equal(s.sel.files, 7)
  assert.deepEqual(selectedFile(s), { folder: '/home/ana/Fotos 📷', rel: 'Bild 0007 ünï.jpg', path: '/home/ana/Fotos 📷/Bild 0007 ünï.jpg' })
  key({ input: 'G' })
  assert.equal(s.sel.files, 119)
  key({ tab: true })
  assert.equal(s.focus, 'transfers')
  assert.equal(selectedFile(s)?.rel, 'urlaub/Strand 🏖.mov')
  key({ tab: true, shift: true })
  assert.equal(s.focus, 'files')
  key({ input: '/' })
  for (const c of 'Bild 00') key({ input: c })
  key({ backspace: true })
  assert.equal(s.filterDraft, 'Bild 0')
  key({ return: true })
  assert.equal(s.filterDraft, null)
  assert.equal(s.files.filter, 'Bild 0')
  assert.equal(s.sel.files, 0)
  key({ escape: true })
  assert.equal(s.files.filter, '', 'Esc clears the filter')
  key({ input: '?' })
  assert.equal(s.help, true)
  key({ input: 'j' })
  assert.equal(s.help, true, 'keys do nothing under the help')
  key({ escape: true })
  assert.equal(s.help, false)
})

test('batcher: 20,000 events in one burst become one action; progress coalesced; overflow counted', async () => {
  const batches: DashEvent[][] = []
  const b = new EventBatcher(evs => batches.push(evs), { intervalMs: 20 })
  for (let i = 0; i < 20_000; i++) {
    b.push('file', { folder: '/f', path: `/f/${i % 100}`, rel: `${i % 100}`, state: 'uploading', bytes: i, size: 20_000 })
  }
  for (let i = 0; i < 100; i++) b.push('file', { folder: '/f', path: `/f/${i}`, rel: `${i}`, state: 'stubbed', size: 1 })
  await until('a flush', () => batches.length > 0)
  assert.equal(batches.length, 1)
  assert.equal(batches[0].length, 200, 'one progress event per file, then its state change')
  const small = new EventBatcher(evs => batches.push(evs), { intervalMs: 20, max: 10 })
  for (let i = 0; i < 30; i++) small.push('peer', { id: String(i), state: 'connected' })
  await until('a second flush', () => batches.length > 1)
  const last = batches[1]
  assert.equal(last.length, 11)
  assert.deepEqual(last[10].data, { count: 20 })
  b.close(); small.close()
})

test('layout: 80×24 and 200×50 leave room for the log, wide terminals get two columns', () => {
  const n = { folders: 2, transfers: 1, peers: 6 }
  for (const [c, r] of [[80, 24], [100, 30], [200, 50], [40, 16]]) {
    const L = layout(c, r, n)
    const frame = CHROME_ROWS - 2 + (L.wide ? 2 + L.body.folders + L.body.files : 4 + L.body.folders + L.body.files + L.body.transfers + L.body.peers)
    assert.ok(frame + L.logRows + 2 <= r, `${c}x${r}: frame ${frame} + log ${L.logRows}`)
    assert.ok(L.body.files >= 1)
  }
  assert.equal(layout(80, 24, n).wide, false)
  assert.equal(layout(200, 50, n).wide, true)
})

for (const [columns, rows] of [[80, 24], [200, 50]] as const) {
  test(`frame at ${columns}×${rows}: every pane drawn, no line wider than the terminal, frame shorter than it`, async () => {
    let s = withStatus()
    s = reducer(s, { type: 'files', folder: s.files.folder, filter: '', page: { total: 120, offset: 0, rows: fileItems('/home/ana/Fotos 📷', 120) } })
    s = reducer(s, { type: 'events', events: [fileEv('hydrating', 'Große Datei 大きい.raw', { size: 4 * 2 ** 20, bytes: 2 ** 20 })] })
    const r = renderAt(<Screen state={s} columns={columns} rows={rows} now={NOW} />, columns, rows)
    await tick()
    const frame = plain(r.lastFrame())
    const lines = frame.split('\n')
    r.instance.unmount()
    assert.ok(lines.length <= rows - 2, `${lines.length} lines`)
    for (const l of lines) assert.ok(width(l) <= columns, `too wide (${width(l)}): ${l}`)
    assert.match(frame, new RegExp(`id ${ID.slice(0, 8)}`))
    assert.match(frame, /up 1h02m/)
    assert.match(frame, /DHT 23 nodes/)
    assert.match(frame, /Folders {2}2/)
    assert.match(frame, /Fotos 📷/)
    assert.match(frame, /Files {2}120/)
    assert.match(frame, /Bild 0000 ünï\.jpg/)
    assert.match(frame, /Transfers {2}1 up, 1 down/)
    assert.match(frame, /↑ urlaub\/Strand 🏖\.mov +█+░+ +50%/)
    assert.match(frame, /Peers {2}6 online of 6/)
    assert.match(frame, /00f00dbe +127\.0\.0\.1:40000 +utp/)
    assert.match(frame, /health.*1015.*1012 (full|at full).*2 degraded.*1 at risk/)
    if (columns >= 200) assert.match(frame, /holds for me +3\.0M +I hold +0 B/)
    else assert.match(frame, /1000 stub 3 local 2 pend 1 up │ 126M here 5\.0G net/)
  })
}

test('the app: keys reach the agent as control calls (o open, p pin/unpin, e evict), / filters, q quits', async () => {
  const source = new FakeSource()
  const quits: string[] = []
  const r = render(<App source={source} mode='attached' onQuit={how => quits.push(how)} pollMs={50} flushMs={20} />)
  try {
    await until('status drawn', () => plain(r.lastFrame() ?? '').includes('Peers'))
    await until('files loaded', () => plain(r.lastFrame() ?? '').includes('Bild 0000'))
    r.stdin.write('\t') // files pane
    await tick()
    r.stdin.write('\u001b[B') // down
    await tick()
    r.stdin.write('o')
    await until('open called', () => source.calls.length === 1)
    assert.deepEqual(source.calls[0], { method: 'open', params: { path: '/home/ana/Fotos 📷/Bild 0001 ünï.jpg' } })
    r.stdin.write('p') // Bild 0001 is pinned: p unpins
    await until('unpin called', () => source.calls.length === 2)
    assert.equal(source.calls[1].method, 'unpin')
    r.stdin.write('\u001b[B')
    await tick()
    r.stdin.write('e')
    await until('evict called', () => source.calls.length === 3)
    assert.deepEqual(source.calls[2], { method: 'evict', params: { path: '/home/ana/Fotos 📷/Bild 0002 ünï.jpg' } })
    r.stdin.write('/')
    await tick()
    for (const c of '0011') { r.stdin.write(c); await tick(10) }
    r.stdin.write('\r')
    await until('filtered query', () => source.queries.some(q => q.filter === '0011'))
    await until('filtered frame', () => /Files {2}1 matching "0011"/.test(plain(r.lastFrame() ?? '')))
    r.stdin.write('?')
    await until('help', () => plain(r.lastFrame() ?? '').includes('dashboard — keys'))
    r.stdin.write('\u001b')
    await tick(50)
    // Events show in the log and in the transfers pane.
    source.emit('file', { folder: '/home/ana/Fotos 📷', path: '/home/ana/Fotos 📷/neu.bin', rel: 'neu.bin', state: 'hydrated', size: 2048, bytes: 2048 })
    await until('log line', () => r.frames.some(f => plain(f).includes('restored  neu.bin (2.0 KiB)')))
    r.stdin.write('q')
    await until('quit', () => quits.length === 1)
    assert.deepEqual(quits, ['quit'])
  } finally {
    r.unmount()
  }
})

test('keys read in one chunk act as the same keys typed one by one: "/Grüße⏎" filters, "/" then "o" types o', async () => {
  assert.deepEqual(keystrokes({ input: '/Gü📷\r\t\u007f' }), [
    { input: '/' }, { input: 'G', shift: true }, { input: 'ü' }, { input: '📷' }, { input: '', return: true }, { input: '', tab: true }, { input: '', backspace: true }
  ])
  assert.deepEqual(keystrokes({ input: 'o' }), [{ input: 'o' }])
  const source = new FakeSource()
  const quits: string[] = []
  const r = render(<App source={source} mode='attached' onQuit={how => quits.push(how)} pollMs={50} flushMs={20} />)
  try {
    await until('files loaded', () => plain(r.lastFrame() ?? '').includes('Bild 0000'))
    r.stdin.write('/0011\r') // as tmux send-keys delivers it on a busy machine
    await until('filtered frame', () => /Files {2}1 matching "0011"/.test(plain(r.lastFrame() ?? '')))
    r.stdin.write('/') // no render between: "o" and "q" must go to the filter, not open or quit
    r.stdin.write('oq')
    r.stdin.write('\u001b')
    await tick(50)
    assert.equal(source.calls.length, 0)
    assert.deepEqual(quits, [])
    r.stdin.write('\t\u001b[Bo') // Tab, Down and o in one read: o opens the row Down selected
    await until('open called', () => source.calls.length === 1)
    assert.equal(source.calls[0].method, 'open')
  } finally {
    r.unmount()
  }
})

test('the app in embedded mode: q asks the agent to stop; a lost agent is shown, not fatal', async () => {
  const source = new FakeSource()
  const quits: string[] = []
  const r = render(<App source={source} mode='embedded' onQuit={how => quits.push(how)} pollMs={50} flushMs={20} />)
  try {
    await until('status drawn', () => plain(r.lastFrame() ?? '').includes('Peers'))
    source.status = async () => { throw Object.assign(new Error('NOT_RUNNING: gone'), { code: 'NOT_RUNNING' }) }
    await until('lost shown', () => plain(r.lastFrame() ?? '').includes('[agent not reachable]'))
    r.stdin.write('q')
    await until('stop', () => quits.length === 1)
    assert.deepEqual(quits, ['stop'])
    await until('stopping shown', () => plain(r.lastFrame() ?? '').includes('stopping the agent'))
  } finally {
    r.unmount()
  }
})
