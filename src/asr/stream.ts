import { ASR_SAMPLE_RATE } from '../audio/resample.ts';
import type { Recognizer, Transcript } from './recognizer.ts';
import { VadSegmenter, type SileroVad, type VadOptions } from './vad.ts';

/** Times are ms of the audio stream; speech-start/-end give where the voice itself began and ended. */
export type ListenEvent =
  | { type: 'speech-start'; atMs: number }
  | { type: 'speech-end'; atMs: number }
  | { type: 'partial'; text: string; startMs: number; atMs: number }
  | { type: 'final'; text: string; startMs: number; endMs: number; transcript: Transcript };

export interface StreamingOptions {
  vad?: VadOptions;
  /** Re-recognise the speech so far this often while the user talks (partial transcripts). */
  partialEveryMs?: number;
  /** An utterance is cut after this long even without a pause (bounded memory). */
  maxUtteranceMs?: number;
}

/**
 * Live recognition: push 16 kHz samples as they arrive; the VAD bounds utterances, partial text
 * flows while the user is still talking, and each utterance ends with a final transcript. Only the
 * current utterance (plus a short pre-roll) is kept in memory.
 *
 * The VAD keeps up with the audio whatever the recogniser does: recognition runs behind it, one
 * pass at a time and in order, so speech-start and speech-end (turn end, barge-in) are never late
 * because a partial is still being recognised. A partial whose utterance has ended before its turn
 * to run is skipped (the final says it all); one already running still delivers its words.
 */
export class StreamingTranscriber {
  private readonly seg: VadSegmenter;
  private audio = new Float32Array(0);
  private audioStart = 0; // sample index of audio[0]
  private total = 0;
  private speechStart = -1;
  private lastPartial = 0;
  private readonly partialEvery: number;
  private readonly maxUtterance: number;
  private readonly minSilenceMs: number;
  /** Recognition passes, one at a time, in the order they were asked for. */
  private recognition: Promise<void> = Promise.resolve();
  /** Bumped at each utterance's end: a queued partial of an ended utterance is not worth running. */
  private utterance = 0;
  private partialQueued = false;

  constructor(
    vad: SileroVad,
    private readonly recognizer: Recognizer,
    private readonly onEvent: (e: ListenEvent) => void,
    opts: StreamingOptions = {},
  ) {
    this.minSilenceMs = opts.vad?.minSilenceMs ?? 600;
    this.seg = new VadSegmenter(vad, { minSilenceMs: this.minSilenceMs, speechPadMs: 150, ...opts.vad });
    this.partialEvery = opts.partialEveryMs ?? 1000;
    this.maxUtterance = opts.maxUtteranceMs ?? 60_000;
  }

  private ms(samples: number): number {
    return (samples / ASR_SAMPLE_RATE) * 1000;
  }

  private slice(fromMs: number, toMs: number): Float32Array {
    const from = Math.max(0, Math.floor((fromMs / 1000) * ASR_SAMPLE_RATE) - this.audioStart);
    const to = Math.min(this.audio.length, Math.ceil((toMs / 1000) * ASR_SAMPLE_RATE) - this.audioStart);
    return this.audio.slice(from, Math.max(from, to));
  }

  async push(samples: Float32Array): Promise<void> {
    if (this.failure) {
      // A recognition pass failed since the last push: say so now, not at the end of input.
      const e = this.failure;
      this.failure = null;
      throw e;
    }
    const joined = new Float32Array(this.audio.length + samples.length);
    joined.set(this.audio);
    joined.set(samples, this.audio.length);
    this.audio = joined;
    this.total += samples.length;
    for (const e of await this.seg.push(samples)) await this.handle(e);
    const nowMs = this.ms(this.total);
    if (this.speechStart >= 0) {
      if (nowMs - this.lastPartial >= this.partialEvery && !this.partialQueued) {
        this.lastPartial = nowMs;
        this.queuePartial(this.speechStart, nowMs);
      }
      if (nowMs - this.speechStart > this.maxUtterance) this.finish(this.speechStart, nowMs);
    } else {
      // Between utterances keep only a short pre-roll.
      const keep = ASR_SAMPLE_RATE;
      if (this.audio.length > keep) {
        this.audioStart += this.audio.length - keep;
        this.audio = this.audio.slice(this.audio.length - keep);
      }
    }
  }

  private async handle(e: Awaited<ReturnType<VadSegmenter['push']>>[number]): Promise<void> {
    if (e.type === 'speech-start') {
      this.speechStart = e.atMs;
      this.lastPartial = this.ms(this.total);
      this.onEvent({ type: 'speech-start', atMs: e.voicedMs });
    } else {
      this.finish(e.segment.startMs, e.segment.endMs, e.segment.voicedEndMs);
    }
  }

  private queuePartial(startMs: number, atMs: number): void {
    const audio = this.slice(startMs, atMs);
    const utterance = this.utterance;
    this.partialQueued = true;
    this.enqueue(async () => {
      this.partialQueued = false;
      if (utterance !== this.utterance) return; // ended before its turn: the final covers it
      // Once running, its words are worth having even if the utterance ends meanwhile: they still
      // come before the final (passes run in order), and a slow final is when they help most.
      const t = await this.recognizer.recognize(audio);
      if (t.text) this.onEvent({ type: 'partial', text: t.text, startMs, atMs });
    });
  }

  private finish(startMs: number, endMs: number, voicedEndMs = endMs): void {
    this.speechStart = -1;
    this.utterance++;
    this.onEvent({ type: 'speech-end', atMs: voicedEndMs });
    const audio = this.slice(startMs, endMs);
    this.enqueue(async () => {
      const t = await this.recognizer.recognize(audio);
      const transcript: Transcript = { text: t.text, segments: t.segments.map((s) => ({ ...s, startMs: s.startMs + startMs, endMs: s.endMs + startMs })) };
      this.onEvent({ type: 'final', text: t.text, startMs, endMs, transcript });
    });
  }

  private enqueue(pass: () => Promise<void>): void {
    this.recognition = this.recognition.then(pass).catch((e) => {
      this.failure ??= e as Error;
    });
  }

  private failure: Error | null = null;

  /** End of input: the last utterance is closed and every queued recognition has run. */
  async flush(): Promise<void> {
    for (const e of this.seg.flush()) await this.handle(e);
    await this.settled();
  }

  /** Resolves when every recognition asked for so far has run; rejects with the first failure. */
  async settled(): Promise<void> {
    await this.recognition;
    const e = this.failure;
    this.failure = null;
    if (e) throw e;
  }

  get speaking(): boolean {
    return this.speechStart >= 0;
  }
}
