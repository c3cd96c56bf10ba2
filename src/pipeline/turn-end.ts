/**
 * When the user's turn is over, from their words and the silence together. Speech comes in
 * phrases: the recogniser closes one after a short silence (`phraseSilenceMs`), and for each the
 * model says how likely the message ends there, P(end) (end-of-message.ts). A phrase the model
 * judges finished ends the turn at once; an unfinished one ("what is seventeen times …") waits
 * until the silence since the voice stopped reaches `incompleteSilenceMs`, and speech before that
 * continues the same message.
 *
 * Where the model cannot tell (checkEndOfMessage found it unusable), `mode: 'silence'` ends every
 * phrase's turn as it closes: the recogniser's silence is then the whole turn-end silence.
 */
export interface TurnEndOptions {
  mode: 'words' | 'silence';
  /** P(end) at or above this ends the turn at the phrase's end (default 0.5). */
  threshold?: number;
  /** Silence after an unfinished phrase that still ends the turn (default 1500 ms). */
  incompleteSilenceMs?: number;
  /** How long to wait for P(end) of a phrase's words before deciding on the last one known (default 400 ms). */
  pEndWaitMs?: number;
  /** A turn with no reading at all (a baseline turn encodes the words only once they end): silence this long ends it (default 600 ms). */
  noReadingSilenceMs?: number;
}

export interface TurnEndDecision<T = unknown> {
  /** What the caller gave with the phrase that ended the turn. */
  context: T;
  by: 'words' | 'silence';
  /** P(end) the decision read, null where none was known. */
  pEnd: number | null;
  /** When the voice stopped (the caller's clock). */
  voiceEndAt: number;
}

type Timer = ReturnType<typeof setTimeout>;

export class TurnEndPolicy<T = unknown> {
  readonly mode: 'words' | 'silence';
  private readonly threshold: number;
  private readonly incompleteMs: number;
  private readonly waitMs: number;
  private readonly noReadingMs: number;
  private latest: { pEnd: number; words: string } | null = null;
  /** A closed phrase waiting for P(end); `tail`: the words it added, which the reading must end with. */
  private pending: { tail: string | null; voiceEndAt: number; context: T } | null = null;
  private timer: Timer | null = null;
  private waitTimer: Timer | null = null;

  constructor(
    o: TurnEndOptions,
    private readonly now: () => number,
    private readonly end: (d: TurnEndDecision<T>) => void,
  ) {
    this.mode = o.mode;
    this.threshold = o.threshold ?? 0.5;
    this.incompleteMs = o.incompleteSilenceMs ?? 1500;
    this.waitMs = o.pEndWaitMs ?? 400;
    this.noReadingMs = o.noReadingSilenceMs ?? 600;
  }

  /** The model read P(end) after these words (all the user's words of the turn so far). */
  pEnd(pEnd: number, words: string): void {
    this.latest = { pEnd, words };
    const p = this.pending;
    if (p && (p.tail === null || norm(words).endsWith(norm(p.tail)))) this.decide();
  }

  /**
   * A phrase closed: the voice stopped at `voiceEndAt`; `added` is what its final added to the
   * user's words (null: nothing new). Decides on P(end) after those words: at once if nothing was
   * added, else once the model has read them (or after a short wait, on the last reading known).
   */
  phraseEnded(added: string | null, voiceEndAt: number, context: T): void {
    this.cancel();
    if (this.mode === 'silence') return this.finish({ by: 'silence', pEnd: this.latest?.pEnd ?? null, voiceEndAt, context });
    const tail = added?.trim() ? added : null;
    this.pending = { tail, voiceEndAt, context };
    if (tail === null || (this.latest && norm(this.latest.words).endsWith(norm(tail)))) return this.decide();
    this.waitTimer = setTimeout(() => this.decide(), this.waitMs);
  }

  /** A closed phrase is waiting for the decision. */
  get deciding(): boolean {
    return this.pending !== null;
  }

  /** The user speaks again before the turn ended: the same message goes on. */
  speechStarted(): void {
    this.cancel();
  }

  /** Nothing more to decide (the turn ended another way, or the conversation closed). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.timer = this.waitTimer = null;
    this.pending = null;
  }

  /** A turn is over: the next one starts with no P(end) known. */
  reset(): void {
    this.cancel();
    this.latest = null;
  }

  private decide(): void {
    const p = this.pending;
    if (!p) return;
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = null;
    const pEnd = this.latest?.pEnd ?? null;
    if (pEnd !== null && pEnd >= this.threshold) return this.finish({ by: 'words', pEnd, voiceEndAt: p.voiceEndAt, context: p.context });
    // Unfinished (or never read): the silence alone ends it, counted from when the voice stopped (still deciding until then).
    const left = Math.max(0, p.voiceEndAt + (pEnd === null ? this.noReadingMs : this.incompleteMs) - this.now());
    if (this.timer) clearTimeout(this.timer); // a later reading of the same words decides again
    this.timer = setTimeout(() => this.finish({ by: 'silence', pEnd, voiceEndAt: p.voiceEndAt, context: p.context }), left);
  }

  private finish(d: TurnEndDecision<T>): void {
    this.cancel();
    this.end(d);
  }
}

const norm = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();
