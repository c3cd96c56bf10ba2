import { describe, expect, it } from 'vitest';
import { totalDelayMs, wordsPerMinuteDuration } from '../../src/async-reasoning/metrics.ts';

describe('total delay', () => {
  it('adds the waits before each chunk, counting the first from turn start', () => {
    // ready 1000, plays 1000–3000; ready 2500 (no wait), plays 3000–4000; ready 6000 → waits 2000.
    expect(
      totalDelayMs([
        { text: 'a', readyMs: 1000, durationMs: 2000 },
        { text: 'b', readyMs: 2500, durationMs: 1000 },
        { text: 'c', readyMs: 6000, durationMs: 500 },
      ]),
    ).toBe(1000 + 0 + 2000);
    expect(totalDelayMs([])).toBe(0);
  });

  it('words-per-minute duration', () => {
    expect(wordsPerMinuteDuration(120)('one two three four')).toBe(2000);
    expect(wordsPerMinuteDuration()('   ')).toBe(0);
  });
});
