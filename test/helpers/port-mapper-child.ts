// A PortMapper in its own process (run in a NAT lab host namespace by test/port-mapping.test.ts), with
// a UDP echo socket and a TCP server on the mapped port so that the lab's internet can check what the
// mapping lets in. Options arrive as JSON in argv[2]; commands on stdin, one per line: `start`,
// `close` (the mapper only: the sockets stay open so that the test sees the router stop forwarding),
// `exit`. Reports JSON lines on stdout: listening, status (every change), warning, closed. Exits by
// itself after 120 s.

import { createSocket } from 'node:dgram'
import { createServer, type Server } from 'node:net'
import { createInterface } from 'node:readline'
import { PortMapper, type PortMapperOptions } from '../../net/index.js'

const opts = JSON.parse(process.argv[2] ?? '{}') as Omit<PortMapperOptions, 'port'> & { port?: number }
const out = (m: unknown): void => { process.stdout.write(JSON.stringify(m) + '\n') }
const lifetime = setTimeout(() => { process.exit(3) }, 120_000)

async function listen (): Promise<{ port: number, close: () => void }> {
  for (let i = 0; i < 20; i++) {
    const udp = createSocket('udp4')
    udp.on('message', (msg, r) => { udp.send(Buffer.concat([Buffer.from('echo:'), msg.subarray(0, 64)]), r.port, r.address) })
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(opts.port ?? 0, () => { resolve(udp.address().port) })
    })
    const tcp: Server = createServer(s => { s.on('error', () => {}); s.end('hello\n') })
    const ok = await new Promise<boolean>(resolve => {
      tcp.once('error', () => { resolve(false) })
      tcp.listen(port, () => { resolve(true) })
    })
    if (ok) return { port, close: () => { udp.close(); tcp.close() } }
    udp.close()
  }
  throw new Error('no port free for UDP and TCP at once')
}

const sockets = await listen()
const mapper = new PortMapper({
  ...opts,
  port: sockets.port,
  onChange: s => { out({ event: 'status', status: s }) },
  onWarning: e => { out({ event: 'warning', code: e.code, message: e.message }) }
})
out({ event: 'listening', port: sockets.port })

const rl = createInterface({ input: process.stdin })
rl.on('line', line => {
  const cmd = line.trim()
  if (cmd === 'start') mapper.start()
  else if (cmd === 'close') {
    mapper.close().then(() => { out({ event: 'closed', status: mapper.status() }) }, err => { out({ event: 'close-failed', message: String(err) }) })
  } else if (cmd === 'exit') {
    clearTimeout(lifetime)
    rl.close()
    sockets.close()
    mapper.close().finally(() => { process.exit(0) })
  }
})
