import { beforeAll, describe, expect, it } from 'vitest';
import { SpeechChunker } from '../../src/tts/chunker.ts';
import { loadMathSpeech, speakable, speakPlain, splitMath } from '../../src/tts/speakable.ts';
import { Rng } from '../../src/llm/runtime/random.ts';

const FORMULAS = ['$x^2 + y^2 = r^2$', '$\\frac{a}{b}$', '$$\\sqrt{2}, \\pi. e$$', '\\(a. b, c\\)', '$3.5$'];
const WORDS = ['The', ' answer', ' is', ' simple', '.', ' ', 'First', ',', ' we', ' note', ':', ' it', '!', ' Then', '?', '\n\n', ' 3.5 km', ' e.g.', ' longwordwithoutspaces', ';'];

/** Random answer text, with the character ranges of the formulas in it. */
function randomText(rng: Rng, n: number): { parts: string[]; formulas: [number, number][] } {
  const parts: string[] = [];
  const formulas: [number, number][] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    let p: string;
    if (rng.next() < 0.15) {
      const f = FORMULAS[Math.floor(rng.next() * FORMULAS.length)];
      formulas.push([at + 1, at + 1 + f.length]);
      p = ` ${f} `;
    } else p = WORDS[Math.floor(rng.next() * WORDS.length)];
    parts.push(p);
    at += p.length;
  }
  return { parts, formulas };
}

/** Splits a token into 1–3 pieces at random places, as a tokenizer might. */
function tokens(rng: Rng, parts: string[]): string[] {
  return parts.flatMap((p) => {
    if (p.length < 2 || rng.next() < 0.5) return [p];
    const cut = 1 + Math.floor(rng.next() * (p.length - 1));
    return [p.slice(0, cut), p.slice(cut)];
  });
}

describe('SpeechChunker (property tests)', () => {
  it('loses and duplicates no text, never cuts inside a formula, keeps chunks bounded', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 400; trial++) {
      const { parts, formulas } = randomText(rng, 1 + Math.floor(rng.next() * 120));
      const text = tokens(rng, parts);
      const c = new SpeechChunker({ maxChars: 120 });
      const chunks = text.flatMap((t, i) => c.push(t, i)).concat(c.flush(text.length));
      // Nothing lost, nothing repeated, in order.
      expect(chunks.map((x) => x.raw).join('')).toBe(text.join(''));
      chunks.forEach((ch, i) => expect(ch.index).toBe(i));
      // No cut falls strictly inside a formula.
      let at = 0;
      for (const ch of chunks.slice(0, -1)) {
        at += ch.raw.length;
        for (const [a, b] of formulas) expect(at > a && at < b, `cut at ${at} inside formula ${a}-${b}`).toBe(false);
      }
      // Bounded: outside formulas, a chunk is at most maxChars plus its trailing spaces and one word.
      for (const ch of chunks) {
        const plain = splitMath(ch.raw).filter((p) => !p.math).map((p) => p.text).join('');
        expect(plain.trim().length).toBeLessThanOrEqual(120 + 25);
      }
    }
  });

  it('starts with a short first chunk, then whole sentences, stamped with their ready time', () => {
    const c = new SpeechChunker({ firstChunkMinWords: 3 });
    const out = [
      ...c.push('Well, the sky is blue', 10),
      ...c.push(' because, as you know, air scatters blue light', 20),
      ...c.push(' most. And that is all.', 30),
      ...c.flush(40),
    ];
    expect(out.map((x) => [x.raw, x.readyMs])).toEqual([
      ['Well, the sky is blue because, ', 20],
      ['as you know, air scatters blue light most. ', 30],
      ['And that is all.', 40],
    ]);
  });
});

describe('speakable text', () => {
  beforeAll(() => loadMathSpeech());
  it('drops markdown and reads units and symbols', () => {
    expect(speakPlain('## Result\n- **Fast**: 3.5 km in 10 min, 20% of `x`. See [docs](http://x).')).toBe(
      'Result Fast: 3.5 kilometres in 10 minutes, 20 percent of x. See docs.',
    );
  });
  it('reads LaTeX aloud with ClearSpeak and never leaves TeX in the speech', () => {
    const s = speakable('So $\\frac{a+b}{2} = x^2$ holds.');
    expect(s).toBe('So the fraction with numerator a plus b and denominator 2 equals x squared holds.');
    expect(speakable('\\(\\sqrt{16}\\) is four')).toMatch(/square root of 16 is four/);
    expect(speakable('bad $\\frac{$ tex')).not.toMatch(/\\/);
  });
});

describe('the first chunk is bounded in time', () => {
  it('a slow writer with no clause break: the first chunk goes out at its deadline, at the last whole word', () => {
    const c = new SpeechChunker({ firstChunkMaxWaitMs: 1200 });
    const got: string[] = [];
    // About three tokens a second and no punctuation: no clause ever completes.
    ['The', ' sky', ' looks', ' blue', ' because', ' air', ' scat'].forEach((t, i) => got.push(...c.push(t, 1000 + i * 300).map((x) => x.raw)));
    expect(got).toEqual([]);
    expect(c.firstChunkDueAt).toBe(2200);
    expect(c.due(2199)).toEqual([]);
    const first = c.due(2200);
    expect(first.map((x) => x.raw)).toEqual(['The sky looks blue because air ']);
    expect(first[0].readyMs).toBe(2200);
    // Later chunks wait for sentences as before; the unfinished word is kept.
    expect(c.firstChunkDueAt).toBeNull();
    expect(c.push('ters light.', 2500).map((x) => x.raw)).toEqual([]);
    expect(c.push(' Then', 2600).map((x) => x.raw)).toEqual(['scatters light. ']);
  });

  it('never cuts inside a formula, even when time is up', () => {
    const c = new SpeechChunker({ firstChunkMaxWaitMs: 1000 });
    c.push('So we get $x^2 + ', 0);
    expect(c.due(1000).map((x) => x.raw)).toEqual(['So we get ']);
    const d = new SpeechChunker({ firstChunkMaxWaitMs: 1000 });
    d.push('$x^2 + y', 0);
    expect(d.due(5000)).toEqual([]); // nothing before the formula: it waits for the formula to close
  });

  it('text without spaces (Chinese, or a model that writes none) goes out whole at the deadline', () => {
    const c = new SpeechChunker({ firstChunkMaxWaitMs: 500 });
    c.push('天空是蓝色的因为', 0);
    expect(c.due(500).map((x) => x.raw)).toEqual(['天空是蓝色的因为']);
  });

  it('a clause break after a few words still cuts at once, before the deadline', () => {
    const c = new SpeechChunker({ firstChunkMaxWaitMs: 1200 });
    expect(c.push('Well, the sky is blue, ', 0).map((x) => x.raw)).toEqual(['Well, the sky is blue, ']);
  });
});
