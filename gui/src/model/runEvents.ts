/** The run tab's feed: one line per event of `regions run --json`. */
import type { RunEvent } from '../api';
import { isRecord } from './workflowDoc';

/** Events the feed leaves out: they drive the node badges and chips instead. */
export const QUIET_EVENTS = new Set(['token', 'region_status', 'step_started', 'llm_call', 'run_exit', 'layer_finished']);

export function describeEvent(e: RunEvent): string {
  const m = isRecord(e.message) ? e.message : {};
  switch (e.kind) {
    case 'message':
      if (e.delivery === 'cc') {
        // a listener's copy of a message already listed: say who got it, not the text again
        return `  ⤷ copy to ${String(e.recipient)}`;
      }
      return `✉ ${String(m.source)} → ${String(m.destination)} (${String(m.role)}): ${String(m.content).slice(0, 300)}`;
    case 'message_rejected':
      return `⛔ ${String(m.source)} → ${String(m.destination)}: ${String(e.reason)}`;
    case 'layer_started':
      return `— layer ${String(e.label)}`;
    case 'state_entered':
      return `◆ state ${String(e.state)} (visit ${String(e.visit)})`;
    case 'transition':
      return `↪ ${String(e.state)} → ${String(e.to)}: ${String(e.reason)}`;
    case 'wait':
      return `‖ waiting for an answer to ${String(e.region)}${e.prompt ? `: ${String(e.prompt)}` : ''}`;
    case 'step_finished':
      return `${e.outcome === 'ok' ? '✓' : '•'} ${String(e.region)}.${String(e.method)} ${String(e.outcome)}${e.error ? `: ${String(e.error)}` : ''}`;
    case 'run_started':
      return `▶ run ${String(e.run_id)}`;
    case 'run_finished':
      return `■ ${String(e.status)} (exit ${String(e.exit_code)})`;
    case 'notice':
      return `${String(e.level)}: ${String(e.text)}`;
    case 'error':
      return `error: ${String(e.text ?? e.message)}`;
    case 'findings':
      return `✗ the saved file does not verify: ${String(e.errors)} error(s); see the problems tab`;
    default:
      return e.kind;
  }
}

/**
 * The wait the run stopped at, if its last invocation ended waiting for a person (and no
 * invocation runs now); `at` is the index of that invocation's `run_finished`.
 */
export function pendingWait(events: readonly RunEvent[]): { region: string; prompt: string; at: number } | undefined {
  let finished = events.length - 1;
  while (finished >= 0 && events[finished].kind !== 'run_finished' && events[finished].kind !== 'run_started') finished--;
  if (finished < 0 || events[finished].kind !== 'run_finished' || events[finished].status !== 'waiting') return undefined;
  for (let i = finished - 1; i >= 0; i--) {
    const e = events[i];
    if (e.kind === 'wait') return { region: String(e.region), prompt: String(e.prompt ?? ''), at: finished };
  }
  return undefined;
}

/**
 * The states a machine's run went through: `draft → review → draft → end` (the first state
 * entered, then every transition's target; a resumed run re-enters its state, not a new one).
 */
export function pathTaken(events: readonly RunEvent[]): string[] {
  const path: string[] = [];
  for (const e of events) {
    if (e.kind === 'state_entered' && path.length === 0) path.push(String(e.state));
    else if (e.kind === 'transition') path.push(String(e.to));
  }
  return path;
}
