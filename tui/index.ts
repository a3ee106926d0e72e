// tui/: the Ink dashboard. It reads the agent only through the control API (ControlSource); the
// state lives in a reducer (state.ts), views are pure (views/), events are batched (batcher.ts).

export { Dashboard, MAX_FPS, type DashboardOptions } from './dashboard.js'
export { ControlSource, type DashboardSource, type FilesQuery } from './source.js'
export { runTui } from './tui-cmd.js'
export { reducer, initialState, type DashState, type Action } from './state.js'
