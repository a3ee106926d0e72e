// From the NAT lab's internet: can a new UDP flow and a new TCP connection reach host:port (the
// echo socket and server of test/helpers/port-mapper-child.ts)? Fresh sockets each time, so no old
// conntrack entry of the router answers for a mapping that is gone. Prints {"udp":bool,"tcp":bool}.
// Bounded: about WAIT_MS in all.

import { createSocket } from 'node:dgram'
import { connect } from 'node:net'

const WAIT_MS = 1200
const [host, portText] = process.argv.slice(2)
const port = Number(portText)

async function udp (): Promise<boolean> {
  return await new Promise(resolve => {
    const s = createSocket('udp4')
    const timers: NodeJS.Timeout[] = []
    const done = (v: boolean): void => { for (const t of timers) clearTimeout(t); try { s.close() } catch {} resolve(v) }
    s.on('error', () => { done(false) })
    s.on('message', m => { if (m.toString() === 'echo:ping') done(true) })
    for (const at of [0, 300, 600]) timers.push(setTimeout(() => { s.send('ping', port, host, () => {}) }, at))
    timers.push(setTimeout(() => { done(false) }, WAIT_MS))
  })
}

async function tcp (): Promise<boolean> {
  return await new Promise(resolve => {
    const s = connect({ host, port })
    let got = ''
    const t = setTimeout(() => { done(false) }, WAIT_MS)
    const done = (v: boolean): void => { clearTimeout(t); s.destroy(); resolve(v) }
    s.on('error', () => { done(false) })
    s.on('data', d => { got += d.toString(); if (got.startsWith('hello')) done(true) })
  })
}

const [u, t] = await Promise.all([udp(), tcp()])
process.stdout.write(JSON.stringify({ udp: u, tcp: t }) + '\n')
