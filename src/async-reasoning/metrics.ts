import type { SpeechChunk } from './events.ts';

/** Speaking time of a text at a words-per-minute rate (used when no TTS engine is attached). */
export function wordsPerMinuteDuration(wpm = 165): (text: string) => number {
  return (text) => {
    const words = text.trim().split(/\s+/).filter(Boolean).length;
    return (words * 60_000) / wpm;
  };
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
