/** The run tab's feed: one line per event of `regions run --json`. */
import type { RunEvent } from '../api';
import { isRecord } from './workflowDoc';

/** Events the feed leaves out: they drive the node badges and chips instead. */
export const QUIET_EVENTS = new Set(['token', 'region_status', 'step_started', 'llm_call', 'run_exit']);

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
