/** What every recogniser returns. Times are ms from the start of the audio given. */
export interface Transcript {
  text: string;
  segments: TranscriptSegment[];
}

export interface TranscriptSegment {
  text: string;
  startMs: number;
  endMs: number;
}

/** A speech recogniser over one piece of 16 kHz mono audio. */
export interface Recognizer {
  readonly name: string;
  recognize(audio16k: Float32Array, opts?: { signal?: AbortSignal }): Promise<Transcript>;
  /**
   * Optional: one utterance decoded as its audio arrives, so its words are ready moments after it
   * ends instead of a whole pass later. Null when this recogniser cannot stream now.
   */
  openStream?(): RecognitionStream | null;
  close(): Promise<void>;
}

/** An utterance being decoded as it is spoken. */
export interface RecognitionStream {
  /** More of the utterance, in order. */
  write(audio16k: Float32Array): void;
  /** The utterance is over: its transcript (times from the first sample written). */
  end(): Promise<Transcript>;
  /** Drops it; `end` then rejects. Idempotent. */
  abort(): void;
}

export const EMPTY_TRANSCRIPT: Transcript = Object.freeze({ text: '', segments: [] }) as Transcript;

export function joinSegments(segments: TranscriptSegment[]): string {
  return segments
    .map((s) => s.text.trim())
    .filter(Boolean)
    .join(' ');
}
