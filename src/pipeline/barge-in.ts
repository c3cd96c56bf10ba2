/** Words that only acknowledge ("uh-huh", "okay", "I see"): said over the answer, they must not cut it off. */
const BACKCHANNEL = new Set(['uh', 'huh', 'uh-huh', 'mhm', 'mm', 'mmm', 'hmm', 'hm', 'yeah', 'yes', 'yep', 'okay', 'ok', 'right', 'sure', 'aha', 'ah', 'oh', 'i', 'see', 'got', 'it', 'alright', 'cool', 'nice']);

export function isBackchannel(text: string): boolean {
  const words = text.toLowerCase().replace(/[^a-z\s-]/g, ' ').split(/\s+/).filter(Boolean);
  return words.length > 0 && words.length <= 3 && words.every((w) => BACKCHANNEL.has(w));
}

export interface BargeInOptions {
  /**
   * Speech over the answer interrupts once it has gone on this long, or as soon as a transcript
   * shows real words; a backchannel ("uh-huh") never does.
   */
  confirmMs?: number;
  /** After an interruption with nothing said (a Stop, a cough), the turn ends after this much quiet. */
  graceMs?: number;
  /** Whether the user is speaking now, or has spoken and their words are still being recognised. */
  userBusy: () => boolean;
  /** Speech over the answer turned out to be an interruption. */
  onInterrupt: () => void;
  /** The grace after an interruption ran out with nothing said. */
  onGraceOver: () => void;
}

/** What to do with a transcript heard while a barge-in may be under way. */
export type BargeInVerdict = 'interrupt' | 'ignore' | 'input';

/**
 * Decides when speech over the answer is an interruption, and ends an interruption nobody
 * follows up. Owns its two timers.
 */
export class BargeInPolicy {
  private candidate: ReturnType<typeof setTimeout> | null = null;
  private grace: ReturnType<typeof setTimeout> | null = null;
  private readonly confirmMs: number;
  private readonly graceMs: number;

  constructor(private readonly o: BargeInOptions) {
    this.confirmMs = o.confirmMs ?? 350;
    this.graceMs = o.graceMs ?? 2000;
  }

  /** Speech began while the assistant talks: an interruption if it goes on (or says something). */
  speechOverAnswer(): void {
    if (this.candidate) return;
    this.candidate = setTimeout(() => {
      this.candidate = null;
      if (this.o.userBusy()) this.o.onInterrupt();
    }, this.confirmMs);
  }

  /** A transcript of speech that may be over the answer. */
  transcript(text: string, final: boolean): BargeInVerdict {
    if (!this.candidate) return 'input';
    if (isBackchannel(text) || !text.trim()) {
      // A lone "uh-huh" while the assistant talks: the answer goes on, and it is not input.
      if (final) this.clearCandidate();
      return 'ignore';
    }
    return 'interrupt';
  }

  clearCandidate(): void {
    if (this.candidate) clearTimeout(this.candidate);
    this.candidate = null;
  }

  /** An interruption happened: unless the user says something, the turn ends after the grace. */
  interrupted(): void {
    this.clearCandidate();
    this.armGrace();
  }

  /** The user said (or typed) something after the interruption: the turn goes on with it. */
  userFollowedUp(): void {
    if (this.grace) clearTimeout(this.grace);
    this.grace = null;
  }

  private armGrace(): void {
    this.userFollowedUp();
    this.grace = setTimeout(() => {
      this.grace = null;
      if (this.o.userBusy()) this.armGrace(); // still talking, or still being recognised
      else this.o.onGraceOver();
    }, this.graceMs);
  }

  close(): void {
    this.clearCandidate();
    this.userFollowedUp();
  }
}
