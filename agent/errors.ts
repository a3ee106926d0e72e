// AgentError: errors of the agent and CLI (config, arguments, home). Message reads `CODE: text`.

export const AgentCodes = {
  USAGE: 'USAGE',
  HOME_INVALID: 'HOME_INVALID',
  INTERNAL: 'INTERNAL'
} as const

export type AgentCode = (typeof AgentCodes)[keyof typeof AgentCodes]

export class AgentError extends Error {
  readonly code: AgentCode
  constructor (code: AgentCode, text: string, options?: { cause?: unknown }) {
    super(`${code}: ${text}`, options)
    this.name = 'AgentError'
    this.code = code
  }
}

/** One line for stderr: `CODE: text` for our errors, `INTERNAL: text` for anything else. */
export function errorLine (err: unknown): string {
  const e = err as { code?: unknown, message?: string }
  if (typeof e?.message === 'string' && typeof e.code === 'string' && e.message.startsWith(e.code + ': ')) return firstLine(e.message)
  return `${AgentCodes.INTERNAL}: ${firstLine(e?.message ?? String(err))}`
}

function firstLine (s: string): string {
  const i = s.indexOf('\n')
  return i < 0 ? s : s.slice(0, i)
}
