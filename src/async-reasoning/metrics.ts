import type { SpeechChunk } from './events.ts';

/** Speaking time of a text at a words-per-minute rate (used when no TTS engine is attached). */
export function wordsPerMinuteDuration(wpm = 165): (text: string) => number {
  return (text) => {
    const words = text.trim().split(/\s+/).filter(Boolean).length;
    return (words * 60_000) / wpm;
  };
}

/**
 * Cuts the answer, as it is written, into speech chunks at sentence ends and paragraph breaks
 * (or every `maxWords` words), each stamped with the time its last token arrived. A simple
 * stand-in: the speech pipeline brings the real chunker.
 */
export class SimpleChunker {
  private pending = '';
  readonly chunks: { text: string; readyMs: number }[] = [];
  constructor(private readonly maxWords = 30) {}

  push(delta: string, tMs: number): void {
    this.pending += delta;
    for (;;) {
      const end = sentenceEnd(this.pending);
      const cut = end >= 0 ? end : wordLimitEnd(this.pending, this.maxWords);
      if (cut < 0) break;
      this.emit(this.pending.slice(0, cut), tMs);
      this.pending = this.pending.slice(cut);
    }
  }

  flush(tMs: number): void {
    if (this.pending.trim()) this.emit(this.pending, tMs);
    this.pending = '';
  }

  private emit(text: string, tMs: number): void {
    if (text.trim()) this.chunks.push({ text: text.trim(), readyMs: tMs });
  }
}

/** Index just past the first sentence end (punctuation before whitespace) or paragraph break, or -1. */
function sentenceEnd(text: string): number {
  for (let i = 0; i < text.length - 1; i++) {
    const c = text[i];
    const next = text[i + 1];
    if ('.!?:;'.includes(c) && /\s/.test(next)) return i + 1;
    if (c === '\n' && next === '\n') return i + 2;
  }
  return -1;
}

/** Index just past the `max`-th word when more than `max` words are pending, or -1. */
function wordLimitEnd(text: string, max: number): number {
  let words = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const space = /\s/.test(text[i]);
    if (!space && !inWord) {
      words++;
      if (words > max) return i;
    }
    inWord = !space;
  }
  return -1;
}

/**
 * The paper's total delay: the listener waits max(0, ready − end of the previous chunk's audio)
 * before each chunk; the waits add up. The first chunk's wait is measured from turn start (0).
 */
export function totalDelayMs(chunks: SpeechChunk[]): number {
  let audioEnd = 0;
  let delay = 0;
  for (const c of chunks) {
    const wait = Math.max(0, c.readyMs - audioEnd);
    delay += wait;
    audioEnd = Math.max(c.readyMs, audioEnd) + c.durationMs;
  }
  return delay;
}
