// AgentError: errors of the agent and CLI (config, arguments, home). Message reads `CODE: text`.

export const AgentCodes = {
  USAGE: 'USAGE',
  HOME_INVALID: 'HOME_INVALID',
  INTERNAL: 'INTERNAL',
  CONFIG_INVALID: 'CONFIG_INVALID',
  CLOSED: 'CLOSED',
  /** Another agent already runs on this home. */
  AGENT_RUNNING: 'AGENT_RUNNING',
  /** No agent answers on this home's control socket. */
  NOT_RUNNING: 'NOT_RUNNING',
  /** A path is not inside a watched folder. */
  NOT_WATCHED: 'NOT_WATCHED',
  WATCH_FAILED: 'WATCH_FAILED',
  IGNORE_INVALID: 'IGNORE_INVALID',
  CONTROL_PROTOCOL: 'CONTROL_PROTOCOL',
  CONTROL_TOO_LARGE: 'CONTROL_TOO_LARGE',
  CONTROL_TIMEOUT: 'CONTROL_TIMEOUT',
  CONTROL_BUSY: 'CONTROL_BUSY',
  UNKNOWN_METHOD: 'UNKNOWN_METHOD',
  BAD_PARAMS: 'BAD_PARAMS',
  NOT_ENOUGH_PEERS: 'NOT_ENOUGH_PEERS',
  PLACEMENT_FAILED: 'PLACEMENT_FAILED',
  FETCH_FAILED: 'FETCH_FAILED',
  /** A block could not be brought back to full redundancy (retried later). */
  REPAIR_FAILED: 'REPAIR_FAILED',
  INDEX_FAILED: 'INDEX_FAILED',
  /** A folder index, root or pointer that does not decode, decrypt or verify (docs/index-format.md). */
  INDEX_INVALID: 'INDEX_INVALID',
  /** The newest index found is older than one already seen (a replayed root or pointer). */
  INDEX_STALE: 'INDEX_STALE',
  /** No index of this identity was found (no pointer in the DHT, no root on its peers). */
  INDEX_NOT_FOUND: 'INDEX_NOT_FOUND',
  /** An index entry that cannot be written safely (a path leaving its folder, a name too long). */
  UNSAFE_PATH: 'UNSAFE_PATH',
  OPEN_WATCH_UNAVAILABLE: 'OPEN_WATCH_UNAVAILABLE',
  /** A device sync message or record that does not decode or is not allowed (docs/sync.md). */
  SYNC_INVALID: 'SYNC_INVALID',
  /** A version that does not exist, or cannot be restored now. */
  NO_VERSION: 'NO_VERSION'
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
