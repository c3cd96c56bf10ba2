import type { CacheBlock } from '../llm/runtime/kv-cache.ts';

/** A UTF-8 character is at most 4 bytes: more tokens than this without a whole character are broken bytes, shown as they are. */
const MAX_HELD_TOKENS = 4;

/**
 * One stream's output (the thinker's thoughts or the writer's answer): its cache block, the
 * tokens it produced, what is not in the cache yet, and its text, decoded incrementally with the
 * character offset each token ends at, so cutting at N heard characters is a lookup, not a decode
 * per prefix.
 */
export class TokenStream {
  /** Tokens this stream produced, in order. */
  readonly produced: number[] = [];
  /** Sampled or forced tokens whose K/V do not exist yet; fed at the stream's next step. */
  pending: number[] = [];
  /** How many of `pending`, from the front, are produced tokens (the rest are fixed text). */
  pendingProduced = 0;
  /** Position in `block` of each produced token already fed. */
  readonly fedAt: number[] = [];
  /** Why the stream is over, or null while it goes on: only a thinker that ended its own thoughts may be reopened. */
  ended: 'model' | 'budget' | 'context' | null = null;

  private text_ = '';
  /** Per produced token: the text's length once it was taken, and how many tokens that text covers. */
  private readonly charEnd: number[] = [];
  private readonly coveredEnd: number[] = [];
  private readonly windowStart: number[] = [];
  /** Decoding window: tokens [prefix, read) are decoded already and give the following ones their context (a leading space). */
  private prefix = 0;
  private read = 0;

  constructor(
    readonly block: CacheBlock,
    private readonly decode: (ids: number[]) => string,
    readonly forbidden: ReadonlySet<number>,
    private readonly bannedPhrases: readonly (readonly number[])[] = [],
  ) {}

  /** The text of the produced tokens (a character still incomplete is held back). */
  get text(): string {
    return this.text_;
  }

  /** Takes a produced token; returns the text it completes (empty while a character is split across tokens). */
  push(id: number): string {
    this.produced.push(id);
    const n = this.produced.length;
    const before = this.decode(this.produced.slice(this.prefix, this.read));
    const now = this.decode(this.produced.slice(this.prefix));
    let delta = '';
    const held = n - this.read;
    if (now.length > before.length && (!now.endsWith('\uFFFD') || held > MAX_HELD_TOKENS)) {
      delta = now.slice(before.length);
      this.text_ += delta;
      this.prefix = this.read;
      this.read = n;
    }
    this.charEnd.push(this.text_.length);
    this.coveredEnd.push(this.read);
    this.windowStart.push(this.prefix);
    return delta;
  }

  /** How many produced tokens, from the start, make whole text of at most `chars` characters. */
  tokensWithin(chars: number): number {
    // charEnd is non-decreasing: find the last token whose text still fits.
    let lo = 0;
    let hi = this.charEnd.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.charEnd[mid] <= chars) lo = mid + 1;
      else hi = mid;
    }
    // Tokens after the last whole character would leave broken bytes: they go too.
    return lo === 0 ? 0 : this.coveredEnd[lo - 1];
  }

  /** Keeps the first `keep` produced tokens (fed or not); the block is cut before the first one dropped. */
  truncate(keep: number): void {
    if (keep >= this.produced.length) return;
    const fed = this.fedAt.length;
    if (keep < fed) {
      this.block.trim(this.fedAt[keep]); // markers fed after it go too
      this.fedAt.length = keep;
    }
    const unfedKept = this.produced.slice(Math.min(keep, fed), keep);
    this.produced.length = keep;
    this.pending = unfedKept;
    this.pendingProduced = unfedKept.length;
    this.charEnd.length = this.coveredEnd.length = this.windowStart.length = keep;
    this.text_ = this.text_.slice(0, keep ? this.charEnd[keep - 1] : 0);
    this.read = keep ? this.coveredEnd[keep - 1] : 0;
    this.prefix = keep ? this.windowStart[keep - 1] : 0;
  }

  /** Records where produced tokens landed once `count` pending tokens were fed into the block (called after the step committed them). */
  noteFed(count: number): void {
    const base = this.block.length - count;
    for (let i = 0; i < Math.min(count, this.pendingProduced); i++) this.fedAt.push(base + i);
    this.pendingProduced = Math.max(0, this.pendingProduced - count);
    this.pending = this.pending.slice(count);
  }

  /** Whether the stream's text ends a sentence (or a paragraph): the writer's last token closed it. */
  endsSentence(): boolean {
    return this.produced.length > 0 && /([.!?]["')\]]?|\n\n)\s*$/.test(this.decode(this.produced.slice(-2))) && /[.!?\n]["')\]]?\s*$/.test(this.decode(this.produced.slice(-1)));
  }

  /** Whether the stream's text ends a paragraph. */
  endsParagraph(): boolean {
    return this.produced.length > 0 && this.decode(this.produced.slice(-2)).endsWith('\n\n');
  }

  /** The forbidden tokens, plus the next token of any banned phrase the output is in the middle of. */
  forbiddenNow(): ReadonlySet<number> {
    let out: Set<number> | null = null;
    for (const phrase of this.bannedPhrases) {
      for (let k = 1; k < phrase.length; k++) {
        if (k > this.produced.length) break;
        let match = true;
        for (let i = 0; i < k && match; i++) match = this.produced[this.produced.length - k + i] === phrase[i];
        if (match) {
          out ??= new Set(this.forbidden);
          out.add(phrase[k]);
        }
      }
    }
    return out ?? this.forbidden;
  }
}
