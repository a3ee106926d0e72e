// App: the dashboard's root. The event log goes to <Static> (printed once, above the live frame,
// so it scrolls like a log); the live frame is <Screen>, redrawn from the reducer state.

import { Box, Static, Text } from 'ink'
import { useDashboard, type DashboardHookOptions } from '../hooks.js'
import type { DashboardSource } from '../source.js'
import type { LogItem } from '../state.js'
import { cut } from '../format.js'
import { Screen } from './screen.js'

export interface AppProps extends DashboardHookOptions {
  readonly source: DashboardSource
}

export function App ({ source, ...o }: AppProps): React.JSX.Element {
  const { state, size } = useDashboard(source, o)
  return (
    <Box flexDirection='column'>
      <Static key={state.logEpoch} items={[...state.log]}>
        {(item: LogItem) => <LogLine key={item.id} item={item} width={size.columns} />}
      </Static>
      <Screen state={state} columns={size.columns} rows={size.rows} now={Date.now()} />
    </Box>
  )
}

export function LogLine ({ item, width }: { item: LogItem, width: number }): React.JSX.Element {
  const t = new Date(item.at)
  const hh = `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}:${String(t.getSeconds()).padStart(2, '0')}`
  return <Text color={item.level === 'error' ? 'red' : item.level === 'warn' ? 'yellow' : undefined}>{cut(`${hh} ${item.text}`, Math.max(10, width - 1))}</Text>
}
