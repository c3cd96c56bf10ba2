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
  close(): Promise<void>;
}

export const EMPTY_TRANSCRIPT: Transcript = Object.freeze({ text: '', segments: [] }) as Transcript;

export function joinSegments(segments: TranscriptSegment[]): string {
  return segments
    .map((s) => s.text.trim())
    .filter(Boolean)
    .join(' ');
}
