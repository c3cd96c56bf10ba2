import type { EngineEvent } from '../async-reasoning/events.ts';
import { totalDelayMs } from '../async-reasoning/metrics.ts';
import type { ServerEvents, StampName } from '../protocol.ts';
import type { ChunkRecord, PlayoutEvent } from './playout.ts';

/**
 * One turn's latency record, on the conversation's one monotonic clock: it subscribes to the
 * user's side (speech, transcripts), the engine's events and each playout's events, and reports
 * every change as it happens.
 */
export class TurnObserver {
  private readonly stamps: Partial<Record<StampName, number>> = {};
  private readonly chunks: ChunkRecord[] = [];
  private done = false;
  private endedBy: { by: 'words' | 'silence'; pEnd: number | null } | null = null;

  constructor(
    readonly turnId: number,
    private readonly onChange: (report: ServerEvents['metrics']) => void,
  ) {}

  /** The first time something happened in this turn (later ones are not stamped again). */
  stamp(name: StampName, at: number): void {
    if (this.stamps[name] !== undefined) return;
    this.stamps[name] = at;
    this.changed();
  }

  /** The user's input ended: when their voice (or typing) ended, when the turn end was decided, and when its words were final (speech only). */
  userEnded(end: { spokeUntil: number; decidedAt: number }, finalAt?: number): void {
    this.stamp('userSpeechEnd', end.spokeUntil);
    this.stamp('turnEnd', end.decidedAt);
    if (finalAt !== undefined) this.stamp('finalTranscript', finalAt);
  }

  /** How the turn end was decided (spoken turns). */
  turnEndDecision(by: 'words' | 'silence', pEnd: number | null): void {
    this.endedBy = { by, pEnd };
    this.changed();
  }

  onEngine(e: EngineEvent, at: number): void {
    if (e.type === 'thinking') this.stamp('firstThinkingToken', at);
    else if (e.type === 'answer') this.stamp('firstAnswerToken', at);
  }

  onPlayout(e: PlayoutEvent): void {
    if (e.type === 'chunk-ready') {
      if (e.chunk.durationMs <= 0) return; // nothing to say in it (markup, a blank line)
      this.chunks.push(e.chunk);
      this.stamps.firstChunkReady ??= e.at;
    } else if (e.type === 'audio-start') this.stamps.firstAudioStart ??= e.at;
    else this.stamps.lastAudioEnd = e.at;
    this.changed();
  }

  /** The answer is over and all its speech has been sent. */
  finished(): void {
    this.done = true;
    this.changed();
  }

  private changed(): void {
    this.onChange(this.report());
  }

  /** Reference point of the turn's latencies: the end of the user's speech (or of typing). */
  get refMs(): number {
    return this.stamps.userSpeechEnd ?? this.stamps.turnEnd ?? 0;
  }

  report(): ServerEvents['metrics'] {
    const ref = this.refMs;
    const rel = (t: number | undefined) => (t === undefined ? undefined : t - ref);
    const stamps: Partial<Record<StampName, number>> = {};
    for (const [k, v] of Object.entries(this.stamps)) stamps[k as StampName] = rel(v);
    const played = this.chunks.filter((c) => c.audioStartMs !== undefined);
    return {
      turnId: this.turnId,
      stamps,
      chunks: this.chunks.map((c) => ({ chunkId: c.chunkId, readyMs: c.readyMs - ref, durationMs: c.durationMs, audioStartMs: rel(c.audioStartMs), audioEndMs: rel(c.audioEndMs) })),
      firstAnswerTokenMs: stamps.firstAnswerToken ?? null,
      voiceToVoiceMs: played.length ? played[0].audioStartMs! - ref : null,
      totalDelayMs: this.chunks.length ? totalDelayMs(this.chunks.map((c) => ({ text: c.text, readyMs: c.readyMs - ref, durationMs: c.durationMs }))) : null,
      ...(this.endedBy ? { turnEnd: this.endedBy } : {}),
      done: this.done,
    };
  }
}
