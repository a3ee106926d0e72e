// The `dustbox` command line: parses arguments (commander), opens the home, runs the command and
// maps every failure to one stderr line `CODE: message` and a non-zero exit code.

import { restoreCmd, type RestoreFlags } from './restore-cmd.js'
import { Command, CommanderError, Option } from 'commander'
import { StubEngine, createSecret, loadCrypto, deriveKeys, toHex, type Stub, type Outcome } from '../stubs/index.js'
import { resolveHome } from './home.js'
import { errorLine, AgentError, AgentCodes } from './errors.js'
import { humanBytes, count } from './format.js'
import { runDemo } from './demo.js'
import { runDhtNode } from './dht-node-cmd.js'
import { runStart, type StartFlags } from './start-cmd.js'
import { openCmd, pathCmd, repairCmd, statusCmd, stopCmd } from './client-cmds.js'
import { registerSetupCommands } from '../setup/commands.js'
import { registerSyncCommands } from './sync-cmds.js'
import { registerKeyCommands } from '../setup/key-commands.js'

export interface CliIO {
  out: (line: string) => void
  err: (line: string) => void
}

const defaultIO: CliIO = {
  out: line => { process.stdout.write(line + '\n') },
  err: line => { process.stderr.write(line + '\n') }
}

interface GlobalOpts { home?: string }

/** Run the CLI; resolves to the process exit code. */
export async function main (argv: string[], io: CliIO = defaultIO): Promise<number> {
  let exitCode = 0
  const program = new Command()
  program
    .name('dustbox')
    .description('Turn folders into a private, peer-to-peer, encrypted cloud: files become small .f stubs.')
    .option('--home <dir>', 'state and config directory (env DUSTBOX_HOME; default $XDG_STATE_HOME/dustbox)')
    .exitOverride()
    .configureOutput({
      writeOut: s => { io.out(s.replace(/\n$/, '')) },
      writeErr: s => { io.err(s.replace(/\n$/, '')) },
      outputError: (s, write) => { write(`USAGE: ${s.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}\n`) }
    })

  const home = (): string => resolveHome((program.opts() as GlobalOpts).home)
  const withEngine = async <T>(fn: (e: StubEngine) => Promise<T>): Promise<T> => {
    const engine = await StubEngine.open({ home: home() })
    try { return await fn(engine) } finally { await engine.close() }
  }
  const report = <T>(outcomes: Array<Outcome<T>>, json: boolean, line: (r: T) => string): void => {
    for (const o of outcomes) {
      if (o.ok) {
        if (json) io.out(JSON.stringify({ ok: true, path: o.path, ...o.result as object }))
        else io.out(line(o.result))
      } else {
        exitCode = 1
        if (json) io.out(JSON.stringify({ ok: false, path: o.path, error: errorLine(o.error) }))
        io.err(errorLine(o.error))
      }
    }
  }

  program.command('init')
    .description('create this home\'s identity: a 32-byte root secret (0600) and the keys derived from it')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }) => {
      const h = home()
      const crypto = await loadCrypto()
      const keys = deriveKeys(crypto, await createSecret(crypto, h))
      if (opts.json === true) io.out(JSON.stringify({ home: h, owner: keys.ownerId }))
      else {
        io.out(`created identity ${keys.ownerId}`)
        io.out(`secret: ${h}/secret.key (keep it private and back it up: without it your data is gone)`)
      }
    })

  program.command('stub')
    .description('store files as encrypted blocks and replace each by a FILE.f stub (the original is removed only after every block is verified)')
    .argument('<files...>', 'files to stub')
    .option('--json', 'one JSON object per file')
    .action(async (files: string[], opts: { json?: boolean }) => {
      await withEngine(async e => {
        report(await e.stubMany(files), opts.json === true, r =>
          `stubbed ${r.path} -> ${r.stubPath} (${humanBytes(r.size)}, ${count(r.blocks, 'block')}, ${r.newBlocks} new)`)
      })
    })

  program.command('hydrate')
    .description('restore files from .f stubs whose blocks are in this home\'s local store (byte-exact, with mode and mtime), then remove the stubs')
    .argument('<stubs...>', '.f stub files')
    .option('--json', 'one JSON object per file')
    .action(async (stubs: string[], opts: { json?: boolean }) => {
      await withEngine(async e => {
        report(await e.hydrateMany(stubs), opts.json === true, r => `hydrated ${r.stubPath} -> ${r.path} (${humanBytes(r.size)})`)
      })
    })

  program.command('open')
    .description('restore stubbed files (through the running agent, or directly from the peers when none runs) and open them with their default application')
    .argument('<stubs...>', '.f stub files')
    .addOption(new Option('--no-launch', 'do not open the restored file with its default application'))
    .option('--bootstrap <host:port,...>', 'DHT nodes to find peers through when no agent runs (default: the agent\'s last setting)')
    .option('--json', 'one JSON object per file')
    .action(async (stubs: string[], opts: { launch?: boolean, json?: boolean, bootstrap?: string }) => {
      exitCode = await openCmd(home(), stubs, { launch: opts.launch !== false, json: opts.json === true, bootstrap: opts.bootstrap }, io)
    })

  program.command('start')
    .description('run the agent: watch folders, place their files\' encrypted shards on peers, replace them by .f stubs; serve the donated space to others')
    .option('--folder <dir...>', 'folders to watch (none: only donate space)')
    .option('--host <address>', 'IPv4 address to bind (default 0.0.0.0)')
    .option('--port <port>', 'uTP and TCP port (default 0: any free port)')
    .option('--dht-port <port>', 'DHT UDP port (default: port+1, or any free port)')
    .option('--bootstrap <host:port,...>', 'DHT nodes to join through, or "none" (default: the public mainline routers)')
    .option('--donate <size>', 'space given to other owners, e.g. 10G (default 10 GiB)')
    .option('--redundancy <k+m>', 'Reed-Solomon data+parity shards per block (default 12+6: needs 18 peers; see docs/durability.md)')
    .option('--cache <size>', 'local cache of fetched blocks (default 256 MiB)')
    .option('--settle <seconds>', 'a file must be unchanged this long before it is ingested (default 2)')
    .option('--evict-after <seconds>', 'a restored file unchanged this long becomes a stub again unless pinned (default 86400)')
    .option('--lost-after <seconds>', 'a peer unreachable this long (counted while the agent runs) is lost and its shards are rebuilt elsewhere (default 259200, 3 days)')
    .option('--watcher <backend>', 'auto, parcel or chokidar (default auto)')
    .option('--relay <rate>', 'relay end-to-end encrypted traffic for peers that cannot reach each other, at most RATE bytes per second, e.g. 2M (default 0: off)')
    .option('--relay-on-metered', 'relay even when NetworkManager says the link is metered')
    .option('--no-tui', 'plain log lines instead of the dashboard')
    .action(async (opts: StartFlags) => {
      await runStart(home(), opts, io)
    })

  program.command('restore')
    .description('with only the key (dustbox key import), bring every folder back from the peers: its newest index is found through the DHT, each folder recreated under DIR as .f stubs')
    .requiredOption('--to <dir>', 'directory to recreate the folders in (one subdirectory per folder)')
    .option('--hydrate', 'restore the files themselves, not only their stubs')
    .option('--bootstrap <host:port,...>', 'DHT nodes to join through, or "none" (default: the public mainline routers)')
    .option('--host <address>', 'IPv4 address to bind (default 0.0.0.0)')
    .option('--port <port>', 'uTP and TCP port (default 0: any free port)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: RestoreFlags) => {
      exitCode = await restoreCmd(home(), opts, io)
    })

  program.command('tui')
    .description('the dashboard of the running agent: folders, files, transfers, peers, health (q quits; the agent keeps running)')
    .action(async () => {
      const { runTui } = await import('../tui/tui-cmd.js')
      await runTui(home())
    })

  program.command('repair')
    .description('audit every peer now, rebuild missing shards on other peers, and list any file that cannot be recovered (exit 1 then)')
    .option('--no-wait', 'start the repairs and return')
    .option('--no-audit', 'skip the audit round')
    .option('--full', 'challenge every shard copy on every peer, not only those due')
    .option('--json', 'print as JSON')
    .action(async (opts: { wait: boolean, audit: boolean, full?: boolean, json?: boolean }) => {
      exitCode = await repairCmd(home(), { wait: opts.wait, audit: opts.audit, full: opts.full === true, json: opts.json === true }, io)
    })

  program.command('status')
    .description('what the running agent is doing: peers, folders, queue, placement, cache')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => { await statusCmd(home(), opts.json === true, io) })

  for (const [name, text] of [['pin', 'keep files local (restored now if stubbed) and never stub them'], ['unpin', 'let pinned files become stubs again'], ['evict', 'replace restored files by stubs now']] as const) {
    program.command(name)
      .description(text)
      .argument('<paths...>', 'files (or their .f stubs) in watched folders')
      .option('--json', 'one JSON object per file')
      .action(async (paths: string[], opts: { json?: boolean }) => { await pathCmd(home(), name, paths, opts.json === true, io) })
  }

  program.command('stop')
    .description('stop the running agent')
    .action(async () => { await stopCmd(home(), io) })

  registerSetupCommands(program, { io, home, setExitCode: code => { exitCode = code } })
  registerKeyCommands(program, { io, home, setExitCode: code => { exitCode = code } })
  registerSyncCommands(program, { io, home, setExitCode: code => { exitCode = code } })

  program.command('verify')
    .description('check that every block of each stub is present, intact and decrypts to the recorded hashes')
    .argument('<stubs...>', '.f stub files')
    .option('--json', 'one JSON object per file')
    .action(async (stubs: string[], opts: { json?: boolean }) => {
      await withEngine(async e => {
        const outcomes: Array<Outcome<{ stubPath: string, size: number, blocks: number }>> = []
        for (const s of stubs) {
          try { outcomes.push({ ok: true, path: s, result: await e.verify(s) }) } catch (error) { outcomes.push({ ok: false, path: s, error: error as Error }) }
        }
        report(outcomes, opts.json === true, r => `ok ${r.stubPath} (${humanBytes(r.size)}, ${count(r.blocks, 'block')})`)
      })
    })

  program.command('inspect')
    .description('show what a stub holds')
    .argument('<stub>', '.f stub file')
    .option('--json', 'print as JSON')
    .action(async (stubPath: string, opts: { json?: boolean }) => {
      await withEngine(async e => {
        const { stub, authenticated } = await e.inspect(stubPath)
        const view = stubView(stub, authenticated)
        if (opts.json === true) io.out(JSON.stringify(view))
        else {
          io.out(`${stubPath}${authenticated ? '' : '  (another identity\'s stub: NOT authenticated)'}`)
          io.out(`  name   ${JSON.stringify(stub.name)}`)
          io.out(`  size   ${stub.size} (${humanBytes(stub.size)})`)
          io.out(`  mode   ${view.mode}   mtime ${new Date(Number(stub.mtimeNs / 1000000n)).toISOString()}`)
          io.out(`  owner  ${stub.owner}`)
          io.out(`  hash   ${view.hash}`)
          io.out(`  blocks ${stub.blocks.length}`)
          for (const b of view.blocks) io.out(`    ${b.id}  ${b.size} -> ${b.stored}`)
        }
      })
    })

  program.command('dht-node')
    .description('run a standalone DHT node that others bootstrap from; prints its address')
    .option('--port <port>', 'UDP port (0: any free port)', '6881')
    .option('--host <address>', 'IPv4 address to bind', '0.0.0.0')
    .option('--bootstrap <host:port,...>', 'nodes to join through, or "none" for the first node of a network (default: the public mainline routers)')
    .action(async (opts: { port?: string, host?: string, bootstrap?: string }) => {
      await runDhtNode({ home: home(), port: opts.port, host: opts.host, bootstrap: opts.bootstrap, out: io.out, err: io.err })
    })

  program.command('demo')
    .description('a local swarm on 127.0.0.1 (a DHT bootstrap node, six storage peers) and an agent watching a demo folder: files become .f stubs, one is opened back; Ctrl-C stops')
    .option('--dir <dir>', 'where to build the demo (default: a new temporary directory)')
    .option('--keep', 'keep the demo directory afterwards')
    .option('--exit', 'stop after the walk-through instead of running until Ctrl-C')
    .option('--peers <n>', 'number of storage peers (default 6)')
    .action(async (opts: { dir?: string, keep?: boolean, exit?: boolean, peers?: string }) => {
      const peers = opts.peers === undefined ? undefined : Number(opts.peers)
      if (peers !== undefined && (!Number.isInteger(peers) || peers < 1 || peers > 32)) throw new AgentError(AgentCodes.USAGE, '--peers must be 1..32')
      await runDemo({ dir: opts.dir, keep: opts.keep === true, exit: opts.exit === true, peers, out: io.out })
    })

  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed as `USAGE: ...`
      return err.exitCode === 0 ? 0 : 2
    }
    io.err(errorLine(err))
    return 1
  }
  return exitCode
}

function stubView (stub: Stub, authenticated: boolean): { name: string, size: number, mode: string, mtimeNs: string, owner: string, hash: string, authenticated: boolean, blocks: Array<{ id: string, ph: string, size: number, stored: number }> } {
  return {
    name: stub.name,
    size: stub.size,
    mode: stub.mode.toString(8).padStart(4, '0'),
    mtimeNs: stub.mtimeNs.toString(),
    owner: stub.owner,
    hash: toHex(stub.hash),
    authenticated,
    blocks: stub.blocks.map(b => ({ id: toHex(b.id), ph: toHex(b.ph), size: b.size, stored: b.stored }))
  }
}
