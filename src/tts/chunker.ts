import { mathRanges } from './speakable.ts';

/** One speakable piece of the answer, as it was written. */
export interface TextChunk {
  /** Exactly the answer text this chunk covers: all chunks joined give the answer back. */
  raw: string;
  /** When its last token arrived (ms, caller's clock). */
  readyMs: number;
  index: number;
}

export interface ChunkerOptions {
  /** The first chunk goes out at the first clause break once it has this many words (fast start). */
  firstChunkMinWords?: number;
  /** Later chunks end at sentence ends; one longer than this is cut at a clause or word break. */
  maxChars?: number;
  /**
   * The first chunk goes out at the last word break once its first text is this old, clause or
   * not: a slow writer must not keep the listener waiting for a sentence (default 500 ms: with synthesis, first audio within about 0.8 s of the first answer token).
   */
  firstChunkMaxWaitMs?: number;
}

/**
 * Cuts the answer token stream into speech chunks as it is written: a short first chunk (so speech
 * starts early), then whole sentences, each bounded in length; never inside a formula.
 */
export class SpeechChunker {
  private pending = '';
  private count = 0;
  private readonly firstMinWords: number;
  private readonly maxChars: number;
  readonly firstChunkMaxWaitMs: number;
  /** When the first chunk's first text arrived (caller's clock), while it waits. */
  private firstTextAt: number | null = null;

  constructor(opts: ChunkerOptions = {}) {
    this.firstMinWords = opts.firstChunkMinWords ?? 4;
    this.maxChars = opts.maxChars ?? 220;
    this.firstChunkMaxWaitMs = opts.firstChunkMaxWaitMs ?? 500;
  }

  /** When the first chunk must go out at the latest (caller's clock), while it is still being written. */
  get firstChunkDueAt(): number | null {
    return this.count === 0 && this.firstTextAt !== null ? this.firstTextAt + this.firstChunkMaxWaitMs : null;
  }

  /** The first chunk's time is up: it goes out at the last word break written so far (none yet: nothing). */
  due(nowMs: number): TextChunk[] {
    const at = this.firstChunkDueAt;
    if (at === null || nowMs < at) return [];
    const cut = this.findCut(true);
    if (cut <= 0) return [];
    const chunk = this.emit(this.pending.slice(0, cut), nowMs);
    this.pending = this.pending.slice(cut);
    return [chunk];
  }

  /** Adds text; returns the chunks it completed. */
  push(delta: string, readyMs: number): TextChunk[] {
    if (this.count === 0 && this.firstTextAt === null && delta.trim()) this.firstTextAt = readyMs;
    this.pending += delta;
    const out: TextChunk[] = [];
    for (let cut = this.findCut(); cut > 0; cut = this.findCut()) {
      out.push(this.emit(this.pending.slice(0, cut), readyMs));
      this.pending = this.pending.slice(cut);
    }
    return out;
  }

  /** End of the answer: whatever is left is the last chunk. */
  flush(readyMs: number): TextChunk[] {
    const rest = this.pending;
    this.pending = '';
    return rest ? [this.emit(rest, readyMs)] : [];
  }

  private emit(raw: string, readyMs: number): TextChunk {
    return { raw, readyMs, index: this.count++ };
  }

  /**
   * Index to cut at (just past a break, including its trailing spaces), or 0 for "not yet".
   * `timeUp`: the first chunk must go now, at its last clause or word break.
   */
  private findCut(timeUp = false): number {
    const text = this.pending;
    // Positions inside formulas are never break points, nor anything after one still arriving.
    const { ranges, openAt } = mathRanges(text);
    const safe = new Uint8Array(text.length + 1).fill(1);
    for (const [a, b] of ranges) safe.fill(0, a + 1, b);
    const lim = openAt >= 0 ? openAt : text.length;
    const first = this.count === 0;
    let clause = -1;
    let word = -1;
    let words = 0;
    for (let i = 0; i < lim; i++) {
      const c = text[i];
      const next = text[i + 1];
      if (next === undefined) break; // need to see what follows a mark
      const ws = /\s/.test(next);
      if (!safe[i + 1]) continue;
      if (/\s/.test(c) && !/\s/.test(next)) {
        words++;
        word = i + 1;
      }
      const sentenceEnd = ('.!?'.includes(c) && ws) || (c === '\n' && next === '\n');
      if (sentenceEnd) return skipSpaces(text, i + 1, lim);
      if (',;:'.includes(c) && ws) {
        clause = i + 1;
        if (first && words + 1 >= this.firstMinWords) return skipSpaces(text, i + 1, lim);
      }
      if (i + 1 >= this.maxChars) {
        const at = clause > 0 ? clause : word > 0 ? word : i + 1; // no break at all: a hard cut
        return skipSpaces(text, at, lim);
      }
    }
    if (timeUp && first) {
      // No space at all (Chinese, Japanese, or a model that writes none): every character edge is
      // a break, so all that is written goes.
      const at = clause > 0 ? clause : word > 0 ? word : /\s/.test(text.slice(0, lim)) ? 0 : lim;
      if (at > 0) return skipSpaces(text, at, lim);
    }
    return 0;
  }
}

function skipSpaces(text: string, i: number, lim: number): number {
  while (i < lim && /\s/.test(text[i])) i++;
  return i;
}
