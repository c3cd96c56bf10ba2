/**
 * How much of a client's audio the server takes: a microphone produces audio in real time, so a
 * client may run a little ahead of it (a burst after a stall, a network hiccup) but never far. A
 * client that sends faster than that (a bug, a replayed file, an attacker) would otherwise fill the
 * server's memory with audio queued for recognition; the excess is dropped instead.
 *
 * A token bucket in milliseconds of audio: it holds at most `burstMs`, fills at `rate` × real time,
 * and each frame takes its duration from it. A frame that does not fit is dropped whole. Separately,
 * no more than `backlogMs` of accepted audio may wait to be processed (a recogniser slower than
 * real time must not let the queue grow either).
 */
export interface AudioIntakeOptions {
  /** Audio a client may send ahead of real time (default 3 s). */
  burstMs?: number;
  /** How much faster than real time audio may keep arriving (default 1.25). */
  rate?: number;
  /** Audio accepted but not yet processed, at most (default 5 s). */
  backlogMs?: number;
  /** Notices about dropped audio at most this often (default 10 s). */
  noticeEveryMs?: number;
}

export type IntakeVerdict = { take: true } | { take: false; notice: string | null };

export class AudioIntake {
  readonly burstMs: number;
  readonly rate: number;
  readonly backlogMs: number;
  private readonly noticeEveryMs: number;
  private tokensMs: number;
  private lastAt: number | null = null;
  private waitingMs = 0;
  private droppedMs = 0;
  private lastNoticeAt = -Infinity;

  constructor(o: AudioIntakeOptions = {}) {
    this.burstMs = o.burstMs ?? 3000;
    this.rate = o.rate ?? 1.25;
    this.backlogMs = o.backlogMs ?? 5000;
    this.noticeEveryMs = o.noticeEveryMs ?? 10_000;
    this.tokensMs = this.burstMs;
  }

  /** Audio dropped so far, ms. */
  get dropped(): number {
    return this.droppedMs;
  }

  /** Accepted audio not yet processed, ms. */
  get waiting(): number {
    return this.waitingMs;
  }

  /** A frame of `durationMs` arrived at `at` (ms, monotonic): take it or drop it. */
  offer(durationMs: number, at: number): IntakeVerdict {
    if (this.lastAt !== null) this.tokensMs = Math.min(this.burstMs, this.tokensMs + Math.max(0, at - this.lastAt) * this.rate);
    this.lastAt = at;
    if (durationMs <= this.tokensMs && this.waitingMs + durationMs <= this.backlogMs) {
      this.tokensMs -= durationMs;
      this.waitingMs += durationMs;
      return { take: true };
    }
    this.droppedMs += durationMs;
    if (at - this.lastNoticeAt < this.noticeEveryMs) return { take: false, notice: null };
    this.lastNoticeAt = at;
    const why = this.waitingMs + durationMs > this.backlogMs ? `listening is ${(this.waitingMs / 1000).toFixed(1)} s behind` : `audio arrives faster than real time`;
    return {
      take: false,
      notice: `${why}: ${(this.droppedMs / 1000).toFixed(1)} s of audio dropped so far (the server takes at most ${(this.burstMs / 1000).toFixed(0)} s ahead of real time)`,
    };
  }

  /** An accepted frame of `durationMs` has been processed. */
  done(durationMs: number): void {
    this.waitingMs = Math.max(0, this.waitingMs - durationMs);
  }
}
