import { describe, expect, it } from 'vitest';
import { SimpleChunker, totalDelayMs, wordsPerMinuteDuration } from '../../src/async-reasoning/metrics.ts';
import { Rng } from '../../src/llm/random.ts';

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

describe('SimpleChunker', () => {
  it('cuts at sentence ends and paragraph breaks, stamping the time of the completing token', () => {
    const c = new SimpleChunker();
    c.push('Hello there', 10);
    c.push('. How are', 20);
    c.push(' you?\n\nFine', 30);
    c.flush(40);
    expect(c.chunks).toEqual([
      { text: 'Hello there.', readyMs: 20 },
      { text: 'How are you?', readyMs: 30 },
      { text: 'Fine', readyMs: 40 },
    ]);
  });

  it('loses and duplicates no text, whatever the token boundaries (property test)', () => {
    const rng = new Rng(1);
    const pieces = ['word', ' ', '.', '!', '?', '\n', '\n\n', ',', 'x', ' y', 'long phrase here', ';', ':'];
    for (let trial = 0; trial < 300; trial++) {
      let text = '';
      const c = new SimpleChunker(5);
      const n = 1 + Math.floor(rng.next() * 80);
      for (let i = 0; i < n; i++) {
        const p = pieces[Math.floor(rng.next() * pieces.length)];
        text += p;
        c.push(p, i);
      }
      c.flush(n);
      const squash = (s: string) => s.replace(/\s+/g, '');
      expect(squash(c.chunks.map((x) => x.text).join(''))).toBe(squash(text));
      for (const ch of c.chunks) expect(ch.text.split(/\s+/).filter(Boolean).length).toBeLessThanOrEqual(5 + 1);
    }
  });
});
