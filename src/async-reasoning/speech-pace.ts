/**
 * Whoever speaks the answer tells the turn how far its speech runs ahead of the listener. A writer
 * far ahead of the voice gains the listener nothing, while its row makes every step of the thinker
 * pay for two (≈ 1.3× a one-row step with int4 weights on a 2-core CPU): so while enough speech is
 * queued the writer holds, and the thinker steps alone, thinking more per second.
 */
export interface SpeechPace {
  /** Ms of the answer synthesised and queued that the listener has yet to hear. */
  queuedMs(): number;
  /** The writer holds while more than this is queued (default DEFAULT_WRITER_LEAD_MS). */
  leadMs?: number;
}

/**
 * Enough for the writer, once it goes on, to write a whole next chunk (up to 220 characters, ≈ 50
 * tokens at ≈ 45 ms a step) and have it synthesised before the queued speech runs out.
 */
export const DEFAULT_WRITER_LEAD_MS = 4000;

/** Ms until the writer may go on: 0 when it may now (or nothing paces it). */
export function writerHoldMs(pace: SpeechPace | undefined): number {
  if (!pace) return 0;
  const queued = pace.queuedMs();
  const lead = pace.leadMs ?? DEFAULT_WRITER_LEAD_MS;
  return Number.isFinite(queued) && queued > lead ? queued - lead : 0;
}
