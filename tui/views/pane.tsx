// A pane: a title line (inverse when focused) and exactly `height` body lines, the selected one
// highlighted. Rows arrive as finished strings (rows.ts); this only colours them.

import { Box, Text } from 'ink'
import { fit } from '../format.js'

export interface PaneProps {
  readonly title: string
  readonly focused: boolean
  readonly rows: readonly string[]
  /** Index in `rows` of the selected row, or -1. */
  readonly selected: number
  readonly height: number
  readonly width: number
  readonly empty: string
  /** Optional colour per row. */
  readonly colors?: ReadonlyArray<string | undefined>
}

export function Pane (p: PaneProps): React.JSX.Element {
  const lines: React.JSX.Element[] = []
  for (let i = 0; i < p.height; i++) {
    const text = p.rows[i]
    if (text === undefined) {
      lines.push(<Text key={i} dimColor>{fit(i === 0 && p.rows.length === 0 ? p.empty : '', p.width)}</Text>)
    } else if (i === p.selected) {
      lines.push(<Text key={i} inverse={p.focused} bold={!p.focused} color={p.colors?.[i]}>{text}</Text>)
    } else {
      lines.push(<Text key={i} color={p.colors?.[i]}>{text}</Text>)
    }
  }
  return (
    <Box flexDirection='column' width={p.width}>
      <Text inverse={p.focused} bold color={p.focused ? undefined : 'cyan'}>{fit(p.title, p.width)}</Text>
      {lines}
    </Box>
  )
}
