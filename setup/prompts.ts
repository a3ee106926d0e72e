// The wizard's questions on a terminal or on piped stdin, with node:readline (no dependency): one
// interface for the whole run (so piped answers are never lost between questions), Tab completion
// of folder paths, secret answers with echo off, yes/no questions, and a clear INPUT_ENDED when the
// answers run out or the user presses Ctrl-C.

import readline from 'node:readline'
import { Writable } from 'node:stream'
import { SetupError, SetupCodes } from './errors.js'

/** Longest answer line kept (longer lines are an error, not a memory sink). */
export const MAX_ANSWER_CHARS = 8192
/** Buffered answers not yet asked for (piped stdin). */
export const MAX_QUEUED_LINES = 1024

type Input = NodeJS.ReadableStream & { isTTY?: boolean }
type Output = NodeJS.WritableStream & { isTTY?: boolean, columns?: number }

/** Forwards to the real output unless muted (readline writes its echo through it). */
class MutableOutput extends Writable {
  muted = false
  constructor (private readonly target: Output) { super() }
  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.muted) this.target.write(chunk)
    cb()
  }

  get isTTY (): boolean { return this.target.isTTY === true }
  get columns (): number { return this.target.columns ?? 80 }
}

export interface PrompterOptions {
  readonly input: Input
  readonly output: Output
  /** Completion of folder paths (folders.ts completePath). */
  readonly completePath?: (line: string, files: boolean) => [string[], string]
}

export class Prompter {
  private readonly rl: readline.Interface
  private readonly out: MutableOutput
  private readonly target: Output
  private readonly lines: string[] = []
  private waiter: { resolve: (l: string) => void, reject: (e: Error) => void, question: string } | null = null
  private ended: SetupError | null = null
  private completing: 'dirs' | 'files' | null = null
  readonly terminal: boolean

  constructor (o: PrompterOptions) {
    this.target = o.output
    this.out = new MutableOutput(o.output)
    this.terminal = o.input.isTTY === true
    this.rl = readline.createInterface({
      input: o.input,
      output: this.out,
      terminal: this.terminal,
      historySize: 0,
      completer: (line: string): [string[], string] => this.completing !== null && o.completePath !== undefined ? o.completePath(line, this.completing === 'files') : [[], line]
    })
    this.rl.on('line', line => {
      if (this.waiter !== null) {
        const w = this.waiter
        this.waiter = null
        w.resolve(line)
      } else if (this.lines.length < MAX_QUEUED_LINES) {
        this.lines.push(line)
      }
    })
    this.rl.on('SIGINT', () => { this.end(new SetupError(SetupCodes.INPUT_ENDED, 'setup cancelled (Ctrl-C); nothing more was written')) })
    this.rl.on('close', () => { this.end(new SetupError(SetupCodes.INPUT_ENDED, 'the input ended before setup finished asking (run "dustbox setup --yes" with flags to set up without questions)')) })
  }

  private end (err: SetupError): void {
    this.ended ??= err
    if (this.waiter !== null) {
      const w = this.waiter
      this.waiter = null
      w.reject(this.endedAt(w.question))
    }
    this.rl.close()
  }

  private endedAt (question: string): SetupError {
    const e = this.ended!
    return e.message.includes('(question: ') ? e : new SetupError(e.code, `${e.message.replace(/^[A-Z_]+: /, '')} (question: ${JSON.stringify(question.trim())})`)
  }

  private async nextLine (question: string): Promise<string> {
    const queued = this.lines.shift()
    if (queued !== undefined) return queued
    if (this.ended !== null) throw this.endedAt(question)
    return await new Promise((resolve, reject) => { this.waiter = { resolve, reject, question } })
  }

  /** Print a line (above the prompt). */
  say (line: string): void {
    this.target.write(line + '\n')
  }

  /** Ask a question; an empty answer gives `def` (when given). */
  async ask (question: string, opts: { def?: string, paths?: 'dirs' | 'files' } = {}): Promise<string> {
    const q = opts.def !== undefined && opts.def !== '' ? `${question} [${opts.def}]: ` : `${question}: `
    this.completing = opts.paths ?? null
    try {
      this.rl.setPrompt(q)
      if (this.terminal) this.rl.prompt()
      else this.target.write(q)
      const line = await this.nextLine(q)
      if (line.length > MAX_ANSWER_CHARS) throw new SetupError(SetupCodes.USAGE, `the answer to ${JSON.stringify(question)} is longer than ${MAX_ANSWER_CHARS} characters`)
      if (!this.terminal) this.target.write('\n')
      const a = line.trim()
      return a === '' && opts.def !== undefined ? opts.def : a
    } finally {
      this.completing = null
    }
  }

  /** Ask for a secret: nothing typed is shown (echo off on a terminal; piped input is never echoed). */
  async askSecret (question: string): Promise<string> {
    const q = `${question}: `
    this.target.write(q)
    this.rl.setPrompt('')
    this.out.muted = true
    try {
      const line = await this.nextLine(q)
      if (line.length > MAX_ANSWER_CHARS) throw new SetupError(SetupCodes.PASSPHRASE_INVALID, 'the passphrase is too long')
      return line
    } finally {
      this.out.muted = false
      this.target.write('\n')
    }
  }

  /** A yes/no question; an empty answer gives `def`. */
  async confirm (question: string, def: boolean, maxAttempts = 5): Promise<boolean> {
    for (let i = 0; i < maxAttempts; i++) {
      const a = (await this.ask(`${question} ${def ? '[Y/n]' : '[y/N]'}`)).toLowerCase()
      if (a === '') return def
      if (a === 'y' || a === 'yes') return true
      if (a === 'n' || a === 'no') return false
      this.say('  please answer y or n')
    }
    throw new SetupError(SetupCodes.USAGE, `no valid answer to ${JSON.stringify(question)} (y or n)`)
  }

  close (): void {
    this.ended ??= new SetupError(SetupCodes.INPUT_ENDED, 'closed')
    this.rl.close()
  }
}
