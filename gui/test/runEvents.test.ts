import { describe, expect, it } from 'vitest';
import { describeEvent } from '../src/model/runEvents';

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
