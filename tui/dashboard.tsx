// Dashboard: the Ink dashboard as an object with a lifecycle. render() draws it on a terminal
// (or any stream Ink accepts), `done` resolves when the user quits ('quit') or asks an embedded
// agent to stop ('stop'), close() unmounts it (idempotent). Frames are capped at MAX_FPS; the
// event batcher caps state changes at 1000/FLUSH_MS per second.

import { render, type Instance } from 'ink'
import { App } from './views/app.js'
import type { DashboardSource } from './source.js'

export const MAX_FPS = 10

export interface DashboardOptions {
  readonly source: DashboardSource
  readonly mode?: 'attached' | 'embedded'
  readonly stdout?: NodeJS.WriteStream
  readonly stdin?: NodeJS.ReadStream
  readonly stderr?: NodeJS.WriteStream
  readonly maxFps?: number
  readonly pollMs?: number
  readonly flushMs?: number
}

export class Dashboard {
  readonly done: Promise<'quit' | 'stop'>
  /** Frames drawn so far (for the bench and tests). */
  renders = 0
  private finish: (how: 'quit' | 'stop') => void = () => {}
  private instance: Instance | null = null
  private readonly opts: DashboardOptions
  private closed = false

  constructor (opts: DashboardOptions) {
    this.opts = opts
    this.done = new Promise(resolve => { this.finish = resolve })
  }

  /** Draw the dashboard; it then lives until the user quits or close() is called. */
  ready (): void {
    if (this.instance !== null || this.closed) return
    const o = this.opts
    this.instance = render(
      <App source={o.source} mode={o.mode ?? 'attached'} onQuit={how => this.finish(how)} pollMs={o.pollMs} flushMs={o.flushMs} />,
      {
        stdout: o.stdout ?? process.stdout,
        stdin: o.stdin ?? process.stdin,
        stderr: o.stderr ?? process.stderr,
        exitOnCtrlC: false,
        patchConsole: false,
        maxFps: o.maxFps ?? MAX_FPS,
        onRender: () => { this.renders++ }
      }
    )
    void this.instance.waitUntilExit().then(() => this.finish('quit'), () => this.finish('quit'))
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    const i = this.instance
    this.instance = null
    if (i !== null) {
      i.unmount()
      await i.waitUntilExit().catch(() => {})
    }
    this.finish('quit')
  }
}
