// A real UPnP-IGD / PCP / NAT-PMP router for the NAT lab (test/helpers/natlab.ts, docs/reachability.md
// §3): Debian's miniupnpd (nftables build, installed with apt-get when missing, as root; DUSTBOX_NO_APT=1
// forbids) runs in a router namespace, on its LAN side, with the nftables chains it fills in. The lab's
// WAN addresses are private (10.77.0.x) and miniupnpd refuses to forward behind a private address, so
// the router also gets a public-looking external address (EXT_PREFIX.i, routed to its WAN inside the
// lab only) and miniupnpd is told it is its address (ext_ip). Like a home router, the router then lets
// through what its port forwardings (DNAT) let in. Stopped by `t.after`.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import type { TestContext } from 'node:test'
import { ensurePackage, type NatLab } from './natlab.js'

/** External addresses of the routers: EXT_PREFIX.(100+i). Exists only inside the lab's namespaces. */
export const EXT_PREFIX = '11.77.0'
/** Log lines of miniupnpd kept (its debug output). */
const MAX_LOG_CHARS = 256 * 1024

export interface Igd {
  /** The external address miniupnpd announces (and that reaches the router from the lab's internet). */
  readonly extIp: string
  /** miniupnpd's output so far. */
  log: () => string
  /** The router's miniupnpd rules (`nft list table inet miniupnpd`). */
  rules: () => string
}

function sh (args: string[], input?: string): string {
  return execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input, timeout: 20_000 })
}

/** The chains miniupnpd adds its rules to (what its nft_init.sh makes, in a table of its own). */
const IGD_TABLE = `table inet miniupnpd {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
`

function config (extIp: string, lanNet: string, igdV1: boolean): string {
  return [
    ...(igdV1 ? ['force_igd_desc_v1=yes'] : []),
    'ext_ifname=wan',
    `ext_ip=${extIp}`,
    'listening_ip=lan',
    'http_port=0',
    'enable_upnp=yes',
    'enable_natpmp=yes',
    'secure_mode=yes',
    'system_uptime=yes',
    'notify_interval=60',
    'clean_ruleset_interval=600',
    // PCP lifetimes: the test asks for seconds, not minutes.
    'min_lifetime=1',
    'max_lifetime=86400',
    'upnp_table_name=miniupnpd',
    'upnp_nat_table_name=miniupnpd',
    'upnp_forward_chain=miniupnpd',
    'upnp_nat_chain=prerouting_miniupnpd',
    'upnp_nat_postrouting_chain=postrouting_miniupnpd',
    'uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b',
    `allow 1024-65535 ${lanNet} 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
    ''
  ].join('\n')
}

/** Run miniupnpd on router `n` of the lab (describing itself as IGD v1 with `igdV1`); `igd` null and `why` set when it cannot run here. */
export async function startIgd (t: TestContext, lab: NatLab, n: number, o: { igdV1?: boolean } = {}): Promise<{ igd: Igd | null, why: string }> {
  const why = ensurePackage('miniupnpd', 'miniupnpd-nftables')
  if (why !== null) return { igd: null, why }
  const nat = lab.nats[n]
  const i = n + 1
  const extIp = `${EXT_PREFIX}.${100 + i}`
  const inRouter = (...args: string[]): string => sh(['ip', 'netns', 'exec', nat.router, ...args])
  const dir = await fsp.mkdtemp(join(tmpdir(), 'dustbox-igd-'))
  let child: ChildProcess | null = null
  let out = ''
  t.after(async () => {
    const c = child
    if (c !== null && c.exitCode === null && c.signalCode === null) {
      const gone = new Promise<void>(resolve => { c.once('exit', () => { resolve() }) })
      c.kill('SIGTERM')
      const t2 = setTimeout(() => { c.kill('SIGKILL') }, 2000)
      await Promise.race([gone, new Promise(resolve => setTimeout(resolve, 4000))])
      clearTimeout(t2)
    }
    await fsp.rm(dir, { recursive: true, force: true })
  })
  try {
    // Port forwardings pass the router's "drop what arrives unasked" filter, as on a home router.
    inRouter('nft', 'insert', 'rule', 'ip', 'filter', 'forward', 'ct', 'status', 'dnat', 'accept')
    sh(['ip', 'netns', 'exec', nat.router, 'nft', '-f', '-'], IGD_TABLE)
    inRouter('ip', 'addr', 'add', `${extIp}/32`, 'dev', 'wan')
    sh(['ip', 'netns', 'exec', lab.inet, 'ip', 'route', 'add', `${extIp}/32`, 'via', nat.wan, 'dev', 'br0', 'onlink'])
    const conf = join(dir, 'miniupnpd.conf')
    await fsp.writeFile(conf, config(extIp, `192.168.${i}.0/24`, o.igdV1 === true))
    const c = spawn('ip', ['netns', 'exec', nat.router, 'miniupnpd', '-f', conf, '-d', '-4', '-P', join(dir, 'miniupnpd.pid')], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    const onData = (d: Buffer): void => { out = (out + d.toString('utf8')).slice(-MAX_LOG_CHARS) }
    c.stdout?.on('data', onData)
    c.stderr?.on('data', onData)
    c.on('error', err => { out += `\nspawn failed: ${err.message}` })
    const deadline = Date.now() + 10_000
    while (!out.includes('Listening for NAT-PMP/PCP traffic') || !out.includes('HTTP listening')) {
      if (c.exitCode !== null || Date.now() > deadline) return { igd: null, why: `miniupnpd did not start: ${out.split('\n').slice(-5).join(' | ')}` }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  } catch (err) {
    return { igd: null, why: `miniupnpd could not be set up: ${String((err as Error).message).split('\n')[0]}` }
  }
  return {
    igd: {
      extIp,
      log: () => out,
      rules: () => { try { return inRouter('nft', 'list', 'table', 'inet', 'miniupnpd') } catch (err) { return String((err as Error).message) } }
    },
    why: ''
  }
}
