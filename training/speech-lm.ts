/**
 * A word trigram language model (ARPA) of what people say to the shipped model, for pocketsphinx:
 * its general English model hears "twelve plus five" as "well last time" (espeak-ng's voice, 9 of
 * 10 arithmetic questions wrong); one that expects questions about numbers hears them. Built from
 * the task's spoken phrasings (number words, corrections, word problems, small talk) and the
 * spoken answers, so the same recogniser also checks what the assistant said.
 *
 *   node --import tsx training/speech-lm.ts OUT.arpa [--sentences 40000] [--seed 3]
 */
import { writeFileSync } from 'node:fs';
import { Rand, correction, drawArithmetic, drawChat, drawStory, numberWords } from './task.ts';

/** Spoken form: lower case, numbers as words, no punctuation (what a recogniser writes). */
export function spokenWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/-(\d)/g, 'minus $1')
    .replace(/\d+/g, (d) => (Number(d) <= 999 ? numberWords(Number(d), { and: false }) : d))
    .replace(/[×x*](?=\s)/g, 'times')
    .replace(/\+/g, 'plus')
    .replace(/[^a-z' ]+/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/** The sentences the model is spoken to with, and speaks. */
export function speechCorpus(n: number, seed: number): string[][] {
  const r = new Rand(seed);
  const out: string[][] = [];
  for (let i = 0; i < n; i++) {
    const d = r.next();
    // Spoken numbers in both styles ("three hundred and four", "three hundred four").
    const p = d < 0.1 ? drawChat(r, 'train') : d < 0.3 ? drawStory(r, 'train', true) : drawArithmetic(r, 'train', true);
    const q = d > 0.9 ? (() => {
      const c = correction(r, 'train');
      return `${c.first.question} ${c.said}`;
    })() : p.question;
    out.push(spokenWords(q));
    for (const s of p.answer) out.push(spokenWords(s));
  }
  return out.filter((s) => s.length);
}

/**
 * Interpolated absolute discounting (D = 0.5 at every order), written as a backoff model: each
 * seen n-gram keeps its discounted share plus the interpolated lower order, and each context's
 * backoff weight hands its reserved mass to the lower order, normalised over what it did not see.
 */
export function trigramArpa(sentences: string[][], discount = 0.5): string {
  const counts: Map<string, number>[] = [new Map(), new Map(), new Map()];
  for (const s of sentences) {
    const w = ['<s>', ...s, '</s>'];
    for (let i = 0; i < w.length; i++) {
      for (let n = 1; n <= 3; n++) {
        if (i - n + 1 < 0) continue;
        const g = w.slice(i - n + 1, i + 1);
        if (n === 1 && g[0] === '<s>') continue;
        const k = g.join(' ');
        counts[n - 1].set(k, (counts[n - 1].get(k) ?? 0) + 1);
      }
    }
  }
  const vocab = [...counts[0].keys()];
  const total = [...counts[0].values()].reduce((a, b) => a + b, 0);
  // P1: unigram with a little mass spread evenly, so no word is impossible.
  const p1 = new Map<string, number>();
  for (const w of vocab) p1.set(w, (counts[0].get(w)! - discount) / total + (discount * vocab.length) / total / vocab.length);
  // Context totals and the number of distinct followers per context.
  const ctx = [new Map<string, { n: number; types: number }>(), new Map<string, { n: number; types: number }>()];
  for (const order of [2, 3]) {
    for (const [k, c] of counts[order - 1]) {
      const h = k.split(' ').slice(0, -1).join(' ');
      const e = ctx[order - 2].get(h) ?? { n: 0, types: 0 };
      e.n += c;
      e.types++;
      ctx[order - 2].set(h, e);
    }
  }
  const probs: Map<string, number>[] = [p1, new Map(), new Map()];
  const lower = (g: string[]): number => {
    if (g.length === 1) return p1.get(g[0]) ?? 0;
    return probs[g.length - 1].get(g.join(' ')) ?? backoff(g.slice(0, -1)) * lower(g.slice(1));
  };
  const bow = [new Map<string, number>(), new Map<string, number>()];
  const backoff = (h: string[]): number => bow[h.length - 1].get(h.join(' ')) ?? 1;
  for (const order of [2, 3]) {
    for (const [k, c] of counts[order - 1]) {
      const g = k.split(' ');
      const h = g.slice(0, -1).join(' ');
      const e = ctx[order - 2].get(h)!;
      probs[order - 1].set(k, (c - discount) / e.n + ((discount * e.types) / e.n) * lower(g.slice(1)));
    }
    // Backoff weights of this order's contexts: what is left, over the lower order's mass for the unseen.
    const seenMass = new Map<string, { p: number; lower: number }>();
    for (const [k, p] of probs[order - 1]) {
      const g = k.split(' ');
      const h = g.slice(0, -1).join(' ');
      const m = seenMass.get(h) ?? { p: 0, lower: 0 };
      m.p += p;
      m.lower += lower(g.slice(1));
      seenMass.set(h, m);
    }
    for (const [h, m] of seenMass) bow[order - 2].set(h, Math.max(1e-12, 1 - m.p) / Math.max(1e-12, 1 - m.lower));
  }
  const log = (x: number) => Math.log10(Math.max(x, 1e-99)).toFixed(6);
  const lines = ['\\data\\', `ngram 1=${vocab.length + 1}`, `ngram 2=${probs[1].size}`, `ngram 3=${probs[2].size}`, '', '\\1-grams:'];
  lines.push(`-99.000000 <s> ${log(bow[0].get('<s>') ?? 1)}`);
  for (const w of vocab) lines.push(`${log(p1.get(w)!)} ${w}${bow[0].has(w) ? ` ${log(bow[0].get(w)!)}` : ''}`);
  lines.push('', '\\2-grams:');
  for (const [k, p] of probs[1]) lines.push(`${log(p)} ${k}${bow[1].has(k) ? ` ${log(bow[1].get(k)!)}` : ''}`);
  lines.push('', '\\3-grams:');
  for (const [k, p] of probs[2]) lines.push(`${log(p)} ${k}`);
  lines.push('', '\\end\\', '');
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2];
  if (!out) throw new Error('usage: speech-lm.ts OUT.arpa [--sentences N] [--seed S]');
  const arg = (k: string, d: number) => (process.argv.includes(k) ? Number(process.argv[process.argv.indexOf(k) + 1]) : d);
  const sentences = speechCorpus(arg('--sentences', 40000), arg('--seed', 3));
  writeFileSync(out, trigramArpa(sentences));
  console.log(`${out}: ${sentences.length} sentences`);
}
