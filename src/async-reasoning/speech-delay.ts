import { SpeechChunker } from '../tts/chunker.ts';
import type { EngineEvent, SpeechChunk } from './events.ts';
import { totalDelayMs, wordsPerMinuteDuration } from './metrics.ts';

/**
 * The listener's side of a turn without a voice attached: the answer cut into speech chunks as it
 * is written (the chunker the voice pipeline uses), each taking its speaking time, and the total
 * delay those chunks would make the listener wait. Fed the turn's events in order.
 */
export class SpeechDelayObserver {
  private chunker = new SpeechChunker();
  private readonly ready: { raw: string; readyMs: number }[] = [];

  constructor(private readonly durationMs: (text: string) => number = wordsPerMinuteDuration()) {}

  observe(e: EngineEvent): void {
    if (e.type === 'answer') this.ready.push(...this.chunker.push(e.text, e.tMs));
    else if (e.type === 'interrupted') {
      // What was cut was never said: the chunks start again from the heard text.
      this.ready.length = 0;
      this.chunker = new SpeechChunker();
      this.ready.push(...this.chunker.push(e.heardText, e.tMs));
    } else if (e.type === 'done') this.ready.push(...this.chunker.flush(e.tMs));
  }

  get chunks(): SpeechChunk[] {
    return this.ready
      .map((c) => ({ text: c.raw.trim(), readyMs: c.readyMs }))
      .filter((c) => c.text)
      .map((c) => ({ ...c, durationMs: this.durationMs(c.text) }));
  }

  /** Σ max(0, ready − end of the previous chunk's audio), the first chunk's wait counted from turn start. */
  get totalDelayMs(): number {
    return totalDelayMs(this.chunks);
  }
}
