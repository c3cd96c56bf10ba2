/** When the user stopped talking, and when the VAD (or the key) said the utterance was over. */
export interface UtteranceEnd {
  spokeUntil: number;
  decidedAt: number;
}

/** What a recognition result adds to the engine's input. */
export interface HeardWords {
  /** Words that are now stable and new: they go to the engine as they are. */
  fresh: string;
  /** The final disagreed with words already given: its whole text, as a correction. */
  correction: string | null;
}

/**
 * The user's utterances as the recogniser reports them: for each (keyed by where its audio starts)
 * the words already given to the engine, so a partial adds only what has become stable and a final
 * adds the rest; where each utterance's voice ended; and the mapping from audio-stream time to the
 * conversation's clock.
 */
export class UtteranceTracker {
  /** Stream time (ms) of all the audio received so far. */
  private receivedMs = 0;
  /** The frame being recognised: when it arrived, and the stream time its end reaches. */
  private frame = { arrivedAt: 0, endMs: 0 };
  /** Words given to the engine, per utterance not yet final. */
  private committed = new Map<number, string[]>();
  /** Utterances ended and not yet transcribed, by the stream time their voice ended. */
  private ends = new Map<number, UtteranceEnd>();
  /** When the voice of the utterance that will start the next turn began, on the clock. */
  private speechStartAt: number | null = null;

  /** A frame of `durationMs` arrived at `at`; returns the frame's marker to pass to `processing` when its turn comes. */
  received(durationMs: number, at: number): { arrivedAt: number; endMs: number } {
    this.receivedMs += durationMs;
    return { arrivedAt: at, endMs: this.receivedMs };
  }

  /** The recogniser is now at this frame. */
  processing(frame: { arrivedAt: number; endMs: number }): void {
    this.frame = frame;
  }

  /**
   * When, on the clock, the user said what lies at `streamMs` of their audio. Frames are sent as
   * they are captured, so a frame's end was spoken about when it arrived, however far behind the
   * recogniser runs.
   */
  clockAt(streamMs: number): number {
    return this.frame.arrivedAt - (this.frame.endMs - streamMs);
  }

  speechStarted(streamMs: number): void {
    this.speechStartAt = this.clockAt(streamMs);
  }

  /** The start of the voice that opens the next turn (taken once). */
  takeSpeechStart(): number | null {
    const at = this.speechStartAt;
    this.speechStartAt = null;
    return at;
  }

  speechEnded(streamMs: number, decidedAt: number): void {
    this.ends.set(streamMs, { spokeUntil: this.clockAt(streamMs), decidedAt });
  }

  /** The end of the utterance whose voice ended at `voicedEndMs` (finals may come after later utterances ended). */
  takeEnd(voicedEndMs: number): UtteranceEnd | undefined {
    const e = this.ends.get(voicedEndMs);
    this.ends.delete(voicedEndMs);
    return e;
  }

  /** An utterance has ended and its final has not come yet. */
  get awaitingFinal(): boolean {
    return this.ends.size > 0;
  }

  /** The words of this utterance go to a new turn: none of them have been given to it yet. */
  restart(startMs: number): void {
    this.committed.delete(startMs);
  }

  /** A recognition of the utterance starting at `startMs`: what to give the engine now. */
  heard(startMs: number, text: string, final: boolean): HeardWords {
    const words = text.split(/\s+/).filter(Boolean);
    const given = this.committed.get(startMs) ?? [];
    let fresh: string[] = [];
    let correction: string | null = null;
    if (given.every((w, i) => words[i] === w)) {
      // A partial may still change its last word: keep one word back until the final.
      const upto = final ? words.length : Math.max(given.length, words.length - 1);
      fresh = words.slice(given.length, upto);
      this.committed.set(startMs, words.slice(0, upto));
    } else if (final) correction = text;
    if (final) this.committed.delete(startMs);
    return { fresh: fresh.join(' '), correction };
  }
}
