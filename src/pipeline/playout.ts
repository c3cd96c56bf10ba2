import { floatToPcm16 } from '../audio/wav.ts';
import type { ServerEvents } from '../protocol.ts';
import { SpeechChunker } from '../tts/chunker.ts';
import type { TtsEngine } from '../tts/engine.ts';
import { speakable } from '../tts/speakable.ts';

/** One chunk of the answer as it went out and as the player reported it; times on the conversation's clock. */
export interface ChunkRecord {
  chunkId: number;
  text: string;
  readyMs: number;
  durationMs: number;
  audioStartMs?: number;
  audioEndMs?: number;
  /** Characters of `text` the listener heard, once known: all of it when it played to its end. */
  heardChars?: number;
}

export type PlayoutEvent = { type: 'chunk-ready' | 'audio-start' | 'audio-end'; chunk: ChunkRecord; at: number };

export interface PlayoutOptions {
  turnId: number;
  tts: TtsEngine;
  now: () => number;
  /** Chunk ids are unique across the conversation (the player's reports name them). */
  nextChunkId: () => number;
  send: (chunk: ServerEvents['speech-chunk']) => void;
  /** Ms from the clock to the turn's reference, for the readyMs the client sees. */
  refMs: () => number;
  onEvent: (e: PlayoutEvent) => void;
  onError: (e: unknown) => void;
  /** Characters of the answer heard before this playout began (earlier playouts of the same turn). */
  heardBefore?: number;
  /** How long stop() waits for the player to say how much of the cut chunk was heard. */
  reportTimeoutMs?: number;
}

/**
 * One stretch of an answer's speech, as livekit's playout handle: the answer text cut into chunks,
 * each synthesised in order on a cancellable queue and sent, the player's reports, and stop(),
 * which resolves to exactly how many of the answer's characters were heard.
 */
export class Playout {
  readonly chunks: ChunkRecord[] = [];
  private readonly chunker = new SpeechChunker();
  private readonly abort = new AbortController();
  private queue: Promise<void> = Promise.resolve();
  private flushed = false;
  private stopping: Promise<number> | null = null;
  private onReport: (() => void) | null = null;

  constructor(private readonly o: PlayoutOptions) {}

  get stopped(): boolean {
    return this.stopping !== null;
  }

  /**
   * The assistant is talking: a chunk has gone out and the answer is not over, or some chunk has not
   * finished playing. A pause between chunks (the writer waiting for the thinker) is still its turn.
   */
  get speaking(): boolean {
    if (this.stopped || !this.chunks.some((c) => c.durationMs > 0)) return false;
    return !this.flushed || this.chunks.some((c) => c.heardChars === undefined);
  }

  /**
   * Ms of synthesised speech the listener has yet to hear: the chunks sent, played back to back from
   * when each went out (or, once the player reported it, really started). Our own clock, not the
   * player's word: a player that never reports still cannot make the writer run unbounded ahead.
   * Text still being cut or synthesised is not counted, so the writer is never held on speech that
   * does not exist yet.
   */
  queuedMs(): number {
    if (this.stopped) return 0;
    let end = -Infinity;
    for (const c of this.chunks) {
      if (c.durationMs <= 0) continue;
      if (c.audioEndMs !== undefined) end = Math.max(end, c.audioEndMs);
      else end = Math.max(end, c.audioStartMs ?? c.readyMs) + c.durationMs;
    }
    return Math.max(0, end - this.o.now());
  }

  /** More answer text. */
  push(text: string): void {
    if (this.stopped) return;
    const now = this.o.now();
    for (const c of [...this.chunker.push(text, now), ...this.chunker.due(now)]) this.speak(c.raw);
    this.armFirstChunkTimer();
  }

  private firstChunkTimer: NodeJS.Timeout | null = null;

  /** The first chunk goes out by its deadline even if the writer pauses before a clause ends. */
  private armFirstChunkTimer(): void {
    const due = this.chunker.firstChunkDueAt;
    if (due === null || this.firstChunkTimer || due <= this.o.now()) return; // past due: the next text cuts it
    this.firstChunkTimer = setTimeout(() => {
      this.firstChunkTimer = null;
      if (!this.stopped) for (const c of this.chunker.due(this.o.now())) this.speak(c.raw);
    }, due - this.o.now());
  }

  private clearFirstChunkTimer(): void {
    if (this.firstChunkTimer) clearTimeout(this.firstChunkTimer);
    this.firstChunkTimer = null;
  }

  /** The answer is over: the rest is the last chunk. Resolves once every chunk is synthesised and sent. */
  async finish(): Promise<void> {
    this.clearFirstChunkTimer();
    if (!this.stopped) for (const c of this.chunker.flush(this.o.now())) this.speak(c.raw);
    await this.queue;
    this.flushed = true;
  }

  private speak(raw: string): void {
    const words = speakable(raw);
    this.queue = this.queue
      .then(async () => {
        if (this.stopped) return;
        // Text with nothing to say (markup, a blank line) is "heard" as soon as its turn comes.
        const audio = words ? await this.o.tts.synthesize(words, { signal: this.abort.signal }) : null;
        if (this.stopped) return;
        const readyMs = this.o.now();
        const chunk: ChunkRecord = { chunkId: this.o.nextChunkId(), text: raw, readyMs, durationMs: audio?.durationMs ?? 0 };
        if (!audio) chunk.heardChars = raw.length;
        this.chunks.push(chunk);
        this.o.onEvent({ type: 'chunk-ready', chunk, at: readyMs });
        if (audio) {
          const { turnId } = this.o;
          this.o.send({ turnId, chunkId: chunk.chunkId, text: raw, sampleRate: audio.sampleRate, pcm: floatToPcm16(audio.pcm), readyMs: readyMs - this.o.refMs(), durationMs: audio.durationMs });
        }
      })
      .catch((e) => {
        if (!this.stopped) this.o.onError(e); // a cancelled synthesis is not a failure
      });
  }

  /** The player's report for one of this playout's chunks; false if the chunk is not ours. */
  playback(p: { chunkId: number; event: 'start' | 'end' | 'stopped'; heardChars?: number }): boolean {
    const c = this.chunks.find((x) => x.chunkId === p.chunkId);
    if (!c) return false;
    const at = this.o.now();
    if (p.event === 'start') {
      if (c.audioStartMs !== undefined) return true;
      c.audioStartMs = at;
      this.o.onEvent({ type: 'audio-start', chunk: c, at });
      return true;
    }
    if (c.audioEndMs === undefined) {
      c.audioEndMs = at;
      c.heardChars ??= p.event === 'end' ? c.text.length : Math.min(c.text.length, p.heardChars ?? 0);
      this.o.onEvent({ type: 'audio-end', chunk: c, at });
    }
    this.onReport?.();
    return true;
  }

  /** Characters of the answer heard: every chunk in order while it was heard whole, plus what was heard of the first one cut. */
  private heard(): number {
    let n = this.o.heardBefore ?? 0;
    for (const c of this.chunks) {
      if (c.heardChars === undefined) break;
      n += c.heardChars;
      if (c.heardChars < c.text.length) break;
    }
    return n;
  }

  /** The chunk the listener hears now, by the player's reports. */
  private playing(): ChunkRecord | undefined {
    return this.chunks.find((c) => c.audioStartMs !== undefined && c.heardChars === undefined);
  }

  /**
   * Stops the speech: nothing more is synthesised or sent, synthesis in flight is cancelled.
   * Resolves to the characters heard once the player has reported the chunk it cut, or, if that
   * report never comes, to an estimate from how long that chunk had played. Idempotent.
   */
  stop(): Promise<number> {
    if (this.stopping) return this.stopping;
    this.clearFirstChunkTimer();
    this.abort.abort();
    const stoppedAt = this.o.now();
    this.stopping = new Promise<number>((resolve) => {
      const settle = () => {
        if (this.playing()) return;
        clearTimeout(timer);
        this.onReport = null;
        resolve(this.heard());
      };
      const timer = setTimeout(() => {
        const c = this.playing();
        if (c) c.heardChars = Math.min(c.text.length, Math.floor(((stoppedAt - c.audioStartMs!) / Math.max(1, c.durationMs)) * c.text.length));
        settle();
      }, this.o.reportTimeoutMs ?? 500);
      this.onReport = settle;
      settle();
    });
    return this.stopping;
  }
}
