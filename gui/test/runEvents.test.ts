import { describe, expect, it } from 'vitest';
import { describeEvent, pathTaken, pendingWait } from '../src/model/runEvents';

const message = { source: 'Historian', destination: 'Facts', role: 'request', content: 'Who led the Zebras?' };

describe('the run feed', () => {
  it('lists a message once, and a listener\'s copy as a copy to the listener', () => {
    const delivered = describeEvent({ kind: 'message', t: 1, message, delivery: 'delivered', recipient: 'Facts' });
    const copy = describeEvent({ kind: 'message', t: 1, message, delivery: 'cc', recipient: 'Scribe' });
    expect(delivered).toBe('✉ Historian → Facts (request): Who led the Zebras?');
    expect(copy).toBe('  ⤷ copy to Scribe');
    expect(copy).not.toContain('Who led the Zebras?');
  });
});

describe('a machine in the run tab', () => {
  const waiting = [
    { kind: 'run_started', t: 1 },
    { kind: 'state_entered', t: 2, state: 'draft', visit: 1 },
    { kind: 'transition', t: 3, state: 'draft', visit: 1, to: 'review', reason: 'always' },
    { kind: 'state_entered', t: 4, state: 'review', visit: 1 },
    { kind: 'wait', t: 5, region: 'Writer', prompt: 'Go on?', layer: 2 },
    { kind: 'run_finished', t: 6, status: 'waiting', exit_code: 5 },
  ];

  it('shows the wait the run stopped at, until the run resumes', () => {
    expect(pendingWait(waiting)).toEqual({ region: 'Writer', prompt: 'Go on?', at: 5 });
    const resumed = [...waiting, { kind: 'run_started', t: 7 }, { kind: 'state_entered', t: 8, state: 'review', visit: 1 }];
    expect(pendingWait(resumed)).toBeUndefined(); // answered: the run goes on
    expect(pendingWait([...resumed, { kind: 'run_finished', t: 9, status: 'ok', exit_code: 0 }])).toBeUndefined();
    // Waiting again at a later wait: that one is shown.
    const again = [...resumed, { kind: 'wait', t: 9, region: 'Critic', prompt: '' }, { kind: 'run_finished', t: 10, status: 'waiting', exit_code: 5 }];
    expect(pendingWait(again)).toEqual({ region: 'Critic', prompt: '', at: 9 });
    expect(pendingWait(waiting.slice(0, 5))).toBeUndefined(); // not finished yet
    expect(describeEvent(waiting[4])).toBe('‖ waiting for an answer to Writer: Go on?');
  });

  it('gives the path taken, a resumed visit not counted twice', () => {
    const events = [
      ...waiting,
      { kind: 'run_started', t: 7 },
      { kind: 'state_entered', t: 8, state: 'review', visit: 1 },
      { kind: 'transition', t: 9, state: 'review', visit: 1, to: 'review', reason: 'again' },
      { kind: 'transition', t: 10, state: 'review', visit: 2, to: 'end', reason: 'Critic says /OK/' },
    ];
    expect(pathTaken(events)).toEqual(['draft', 'review', 'review', 'end']);
    expect(describeEvent(events[8])).toBe('↪ review → review: again');
  });
});
