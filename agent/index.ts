// agent/: the daemon (later issues) and the dustbox CLI. For now the CLI is its entry point.

export { main, type CliIO } from './cli.js'
export { AgentError, AgentCodes, errorLine } from './errors.js'
export { resolveHome } from './home.js'
