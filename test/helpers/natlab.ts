// NatLab: a small internet in network namespaces that a test makes and removes itself
// (docs/reachability.md §6). One "internet" namespace with a bridge and public addresses 10.77.0.x,
// and per NAT a router namespace (WAN 10.77.0.(100+i), LAN 192.168.i.1, nftables masquerade:
// port-preserving for an endpoint-independent NAT, `random` for a symmetric one) and a host namespace
// (192.168.i.2) behind it. Traffic stays inside these namespaces. Where the kernel forbids namespaces,
// or nftables is missing and cannot be installed (Debian's package, as root), `lab` is null and
// `why` says so: the test skips with that message.

import { execFileSync } from 'node:child_process'

export type NatKind = 'endpoint-independent' | 'symmetric'

export interface NatLab {
  /** Namespace of the internet (public hosts live here). */
  readonly inet: string
  readonly nats: Array<{ readonly kind: NatKind, readonly router: string, readonly host: string, readonly wan: string, readonly lan: string }>
  /** Add a public address on the internet bridge (processes in `inet` can bind it). */
  addPublic: (ip: string) => void
  /** Command prefix to run a process in a namespace. */
  wrap: (ns: string) => string[]
  /**
   * Change every mapping of NAT `n` (an index into `nats`) at once, as a router that restarts or gets
   * a new address from its ISP does: its WAN link goes down, gets `opts.wan` (default: the other of
   * 10.77.0.(100+i) and 10.77.0.(110+i)) and comes back up. Masquerade drops its conntrack entries when
   * its device goes down or its address goes, so every flow leaves by a new mapping afterwards and
   * the replies to the old ones find no entry. Returns the WAN address now (also in `nats[n].wan`).
   */
  remap: (n: number, opts?: { wan?: string }) => string
}

function sh (args: string[], input?: string): string {
  return execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input, timeout: 60_000 })
}

function has (cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true } catch { return false }
}

/** `cmd` from Debian's package `pkg`, installed with apt-get when missing (root only). Null when present, else why not. */
export function ensurePackage (cmd: string, pkg: string): string | null {
  if (has(cmd)) return null
  if (process.getuid?.() !== 0) return `${pkg} (${cmd}) is not installed and the tests do not run as root to install it`
  if (process.env.DUSTBOX_NO_APT === '1') return `${pkg} (${cmd}) is not installed (DUSTBOX_NO_APT=1)`
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  // Bounded (at most about 3 minutes in all), so a test that cannot install skips within its timeout.
  for (const update of [false, true]) {
    try {
      if (update) execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', timeout: 80_000, env })
      execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { stdio: 'ignore', timeout: 50_000, env })
      if (has(cmd)) return null
    } catch { /* try with fresh package lists, then give up */ }
  }
  return `${pkg} (${cmd}) is not installed and apt-get could not install it`
}

/** nft, installed from Debian's packages when missing (root only). Null when present, else why not. */
function ensureNft (): string | null {
  return ensurePackage('nft', 'nftables')
}

/** The router's ruleset: masquerade on the WAN (`random` for a symmetric NAT), inbound only for replies. */
export function natRules (kind: NatKind): string {
  return `table ip nat {
  chain post { type nat hook postrouting priority 100; policy accept; oifname "wan" masquerade${kind === 'symmetric' ? ' random' : ''}; }
}
table ip filter {
  chain input { type filter hook input priority 0; policy accept; iifname "wan" ct state new drop; }
  chain forward { type filter hook forward priority 0; policy accept; iifname "wan" ct state new drop; }
}
`
}

/** Where natLab registers its teardown: a node:test TestContext, or a bench's own cleanup list. */
export interface CleanupRegistry { after: (fn: () => void | Promise<void>) => void }

/** Build the lab (torn down by `t.after`), or say why it cannot be built here. */
export function natLab (t: CleanupRegistry, kinds: readonly NatKind[]): { lab: NatLab | null, why: string } {
  const tag = `d${process.pid % 100000}`
  const inet = `${tag}-inet`
  const made: string[] = []
  const cleanup = (): void => { for (const ns of made.reverse()) { try { sh(['ip', 'netns', 'del', ns]) } catch { /* already gone */ } } }
  try {
    sh(['ip', 'netns', 'add', inet])
    made.push(inet)
  } catch (err) {
    return { lab: null, why: `network namespaces are not available here (${String((err as Error).message).split('\n')[0]})` }
  }
  t.after(cleanup)
  const nftWhy = ensureNft()
  if (nftWhy !== null) { cleanup(); return { lab: null, why: nftWhy } }
  const inNs = (ns: string, ...args: string[]): string => sh(['ip', 'netns', 'exec', ns, ...args])
  try {
    inNs(inet, 'ip', 'link', 'set', 'lo', 'up')
    inNs(inet, 'ip', 'link', 'add', 'br0', 'type', 'bridge')
    inNs(inet, 'ip', 'link', 'set', 'br0', 'up')
    const nats: NatLab['nats'] = []
    kinds.forEach((kind, n) => {
      const i = n + 1
      const router = `${tag}-r${i}`
      const host = `${tag}-h${i}`
      sh(['ip', 'netns', 'add', router]); made.push(router)
      sh(['ip', 'netns', 'add', host]); made.push(host)
      const wan = `10.77.0.${100 + i}`
      const lan = `192.168.${i}.2`
      // internet ↔ router (WAN)
      sh(['ip', 'link', 'add', `${tag}w${i}`, 'type', 'veth', 'peer', 'name', `${tag}x${i}`])
      sh(['ip', 'link', 'set', `${tag}w${i}`, 'netns', inet])
      sh(['ip', 'link', 'set', `${tag}x${i}`, 'netns', router])
      inNs(inet, 'ip', 'link', 'set', `${tag}w${i}`, 'master', 'br0')
      inNs(inet, 'ip', 'link', 'set', `${tag}w${i}`, 'up')
      inNs(router, 'ip', 'link', 'set', `${tag}x${i}`, 'name', 'wan')
      inNs(router, 'ip', 'addr', 'add', `${wan}/24`, 'dev', 'wan')
      inNs(router, 'ip', 'link', 'set', 'wan', 'up')
      inNs(router, 'ip', 'link', 'set', 'lo', 'up')
      // router (LAN) ↔ host
      sh(['ip', 'link', 'add', `${tag}l${i}`, 'type', 'veth', 'peer', 'name', `${tag}y${i}`])
      sh(['ip', 'link', 'set', `${tag}l${i}`, 'netns', router])
      sh(['ip', 'link', 'set', `${tag}y${i}`, 'netns', host])
      inNs(router, 'ip', 'link', 'set', `${tag}l${i}`, 'name', 'lan')
      inNs(router, 'ip', 'addr', 'add', `192.168.${i}.1/24`, 'dev', 'lan')
      inNs(router, 'ip', 'link', 'set', 'lan', 'up')
      inNs(host, 'ip', 'link', 'set', `${tag}y${i}`, 'name', 'eth0')
      inNs(host, 'ip', 'addr', 'add', `${lan}/24`, 'dev', 'eth0')
      inNs(host, 'ip', 'link', 'set', 'eth0', 'up')
      inNs(host, 'ip', 'link', 'set', 'lo', 'up')
      inNs(host, 'ip', 'route', 'add', 'default', 'via', `192.168.${i}.1`)
      inNs(router, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
      // The NAT: masquerade what leaves by the WAN; `random` maps each new destination to another port.
      // Like a home router, it drops what arrives on the WAN unasked (before conntrack confirms an entry
      // for it, so an early punch packet does not take the port a later outgoing mapping wants).
      sh(['ip', 'netns', 'exec', router, 'nft', '-f', '-'], natRules(kind))
      const nat = { kind, router, host, wan, lan, i } // `wan` changes with remap()
      nats.push(nat)
    })
    const lab: NatLab = {
      inet,
      nats,
      addPublic: (ip: string) => { inNs(inet, 'ip', 'addr', 'add', `${ip}/24`, 'dev', 'br0') },
      wrap: (ns: string) => ['ip', 'netns', 'exec', ns],
      remap: (n: number, opts: { wan?: string } = {}) => {
        const nat = nats[n] as unknown as { wan: string, router: string, i: number } | undefined
        if (nat === undefined) throw new Error(`natlab: no NAT ${n}`)
        const first = `10.77.0.${100 + nat.i}`
        const wan = opts.wan ?? (nat.wan === first ? `10.77.0.${110 + nat.i}` : first)
        inNs(nat.router, 'ip', 'link', 'set', 'wan', 'down')
        if (wan !== nat.wan) {
          inNs(nat.router, 'ip', 'addr', 'del', `${nat.wan}/24`, 'dev', 'wan')
          inNs(nat.router, 'ip', 'addr', 'add', `${wan}/24`, 'dev', 'wan')
        }
        inNs(nat.router, 'ip', 'link', 'set', 'wan', 'up')
        nat.wan = wan
        return wan
      }
    }
    return { lab, why: '' }
  } catch (err) {
    cleanup()
    return { lab: null, why: `the namespaces could not be set up: ${String((err as Error).message).split('\n')[0]}` }
  }
}
