import { ASR_SAMPLE_RATE } from '../audio/resample.ts';
import type { RecognitionStream, Recognizer, Transcript } from './recognizer.ts';
import { VadSegmenter, type SileroVad, type VadOptions } from './vad.ts';

/**
 * Times are ms of the audio stream; speech-start/-end give where the voice itself began and ended,
 * and a final carries its utterance's speech-end time (`voicedEndMs`) besides its padded bounds.
 */
export type ListenEvent =
  | { type: 'speech-start'; atMs: number }
  | { type: 'speech-end'; atMs: number }
  /** The voice has been quiet for half the turn-end silence since `atMs`: the turn may be ending. */
  | { type: 'pause'; atMs: number }
  /** The voice came back after a pause: the turn goes on. */
  | { type: 'resume'; atMs: number }
  | { type: 'partial'; text: string; startMs: number; atMs: number }
  | { type: 'final'; text: string; startMs: number; endMs: number; voicedEndMs: number; transcript: Transcript };

/** One partial recognition pass: its audio may still be refreshed while it waits. */
interface PartialPass {
  startMs: number;
  atMs: number;
  audio: Float32Array;
  /** The utterance ended with this pass hearing all of it: it runs, and its words are the final's. */
  keep: boolean;
  result: Promise<Transcript | null>;
  /** Stops it while it runs (a pass that hears more has superseded it). */
  abort: AbortController;
  /** Asked for when the voice went quiet (a possible final): never stopped for another. */
  quiet: boolean;
  /** Its utterance's final has been given: its words would come too late. */
  superseded?: boolean;
}

export interface StreamingOptions {
  vad?: VadOptions;
  /** Re-recognise the speech so far this often while the user talks (partial transcripts). */
  partialEveryMs?: number;
  /** An utterance is cut after this long even without a pause (bounded memory). */
  maxUtteranceMs?: number;
  /** Start the final's recognition when the voice goes quiet, before the turn ends (default on). */
  earlyFinal?: boolean;
}

/**
 * Live recognition: push 16 kHz samples as they arrive; the VAD bounds utterances, partial text
 * flows while the user is still talking, and each utterance ends with a final transcript. Only the
 * current utterance (plus a short pre-roll) is kept in memory.
 *
 * The VAD keeps up with the audio whatever the recogniser does: recognition runs behind it, one
 * pass at a time and in order, so speech-start and speech-end (turn end, barge-in) are never late
 * because a partial is still being recognised. At most one partial waits; a newer request refreshes
 * its audio instead of queueing another. A waiting partial whose utterance has ended is skipped;
 * one already running still delivers its words.
 *
 * The final starts early: once the voice has been quiet for half the turn-end silence, a partial
 * over the whole utterance is asked for at once (stopping a regular partial still running over less
 * of it), and if the VAD then closes the utterance there (the silence reaches the turn-end
 * threshold), that pass's words are the final's, with no second pass (bench:listen measures it).
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
  /** The partial pass queued and not yet started, if any; newer requests refresh it. */
  private waiting: PartialPass | null = null;
  /**
   * The current utterance's partial passes, in the order they were asked for (a pass not here
   * belongs to an utterance that has ended).
   */
  private passes: PartialPass[] = [];
  /** The partial pass being recognised now, if any. */
  private running: PartialPass | null = null;
  /** A pass has been asked for in the current stretch of quiet (the early final). */
  private quietPassAsked = false;
  private readonly padMs: number;
  /** Quiet this long (at least the pad, so the pass hears the whole padded utterance) asks for the early final. */
  private readonly earlyFinalAfterMs: number;
  /** Quiet this long inside an utterance is a pause (half the turn-end silence: shorter gaps between phrases are not). */
  private readonly pauseAfterMs: number;
  /** A pause has been told and the voice has not come back since. */
  private paused = false;
  /** The first recognition failure not yet reported. */
  private failure: Error | null = null;
  /** Aborted by close(): nothing queued runs after it, and the pass in flight is cancelled. */
  private readonly lifetime = new AbortController();
  /** Partial passes asked for in the current utterance. */
  private partialsAsked = 0;

  /**
   * The first partial comes after `partialEvery` (it starts the turn); when the final is streamed,
   * later ones only add words mid-flight, at half the rate: each is a whole pass over the utterance
   * so far, CPU the model would otherwise think with while the user talks.
   */
  private partialInterval(): number {
    return this.stream && this.partialsAsked > 0 ? 2 * this.partialEvery : this.partialEvery;
  }

  /** The current utterance decoded as it arrives, where the recogniser can (its final needs no pass). */
  private stream: { s: RecognitionStream; startMs: number; upTo: number } | null = null;
  /** Streamed finals still being decoded. */
  private readonly streamedFinals = new Set<Promise<void>>();

  constructor(
    vad: SileroVad,
    private readonly recognizer: Recognizer,
    private readonly onEvent: (e: ListenEvent) => void,
    opts: StreamingOptions = {},
  ) {
    this.minSilenceMs = opts.vad?.minSilenceMs ?? 600;
    this.padMs = opts.vad?.speechPadMs ?? 150;
    // Half the turn-end silence: short pauses between phrases do not trigger it, and the final
    // still starts that much before the turn ends.
    this.pauseAfterMs = Math.max(this.padMs, this.minSilenceMs / 2);
    this.earlyFinalAfterMs = opts.earlyFinal === false ? Infinity : this.pauseAfterMs;
    this.seg = new VadSegmenter(vad, { minSilenceMs: this.minSilenceMs, speechPadMs: this.padMs, ...opts.vad });
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
    if (this.lifetime.signal.aborted) return;
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
      this.feedStream();
      const quietMs = this.seg.silenceMs;
      if (quietMs === 0) this.quietPassAsked = false;
      // Told as it happens, so whoever waits on the turn's end can get ready (the control question).
      if (quietMs === 0 && this.paused) {
        this.paused = false;
        this.onEvent({ type: 'resume', atMs: nowMs });
      } else if (quietMs >= this.pauseAfterMs && !this.paused) {
        this.paused = true;
        this.onEvent({ type: 'pause', atMs: this.seg.quietFromMs ?? nowMs - quietMs });
      }
      // A streamed utterance's final is ready moments after it ends: no early pass is needed.
      if (quietMs >= this.earlyFinalAfterMs && !this.quietPassAsked && !this.stream) {
        // The voice may have ended: hear the whole utterance now, in case this is the final; a
        // partial still running over less of it is not worth waiting for.
        this.quietPassAsked = true;
        this.lastPartial = nowMs;
        const r = this.running;
        if (r && !r.quiet && this.passes.includes(r)) r.abort.abort();
        this.requestPartial(this.speechStart, nowMs, true);
      } else if (nowMs - this.lastPartial >= this.partialInterval()) {
        this.lastPartial = nowMs;
        this.partialsAsked++;
        this.requestPartial(this.speechStart, nowMs);
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
      this.partialsAsked = 0;
      const s = this.recognizer.openStream?.() ?? null;
      if (s) this.stream = { s, startMs: e.atMs, upTo: Math.max(this.audioStart, Math.floor((e.atMs / 1000) * ASR_SAMPLE_RATE)) };
      this.onEvent({ type: 'speech-start', atMs: e.voicedMs });
    } else {
      this.finish(e.segment.startMs, e.segment.endMs, e.segment.voicedEndMs);
    }
  }

  private requestPartial(startMs: number, atMs: number, quiet = false): void {
    if (this.waiting && this.passes.includes(this.waiting)) {
      // One is already waiting for this utterance: let it hear the newest audio instead.
      this.waiting.audio = this.slice(startMs, atMs);
      this.waiting.atMs = atMs;
      this.waiting.quiet ||= quiet;
      return;
    }
    let settle!: (t: Transcript | null) => void;
    const pass: PartialPass = {
      startMs,
      atMs,
      audio: this.slice(startMs, atMs),
      keep: false,
      result: new Promise((r) => (settle = r)),
      abort: new AbortController(),
      quiet,
    };
    // Closing cancels the pass; the link goes once the pass is over (a conversation runs thousands).
    const cancel = () => pass.abort.abort();
    this.lifetime.signal.addEventListener('abort', cancel, { once: true });
    void pass.result.finally(() => this.lifetime.signal.removeEventListener('abort', cancel));
    this.waiting = pass;
    this.passes.push(pass);
    this.enqueue(async () => {
      if (this.waiting === pass) this.waiting = null;
      if (!this.passes.includes(pass) && !pass.keep) return settle(null); // its utterance ended: the final covers it
      // Once running, its words are worth having even if the utterance ends meanwhile: they still
      // come before the final (passes run in order), and a slow final is when they help most.
      this.running = pass;
      let t: Transcript;
      try {
        t = await this.recognizer.recognize(pass.audio, { signal: pass.abort.signal });
      } catch (e) {
        settle(null);
        if (pass.abort.signal.aborted) return; // superseded, not failed
        throw e;
      } finally {
        this.running = null;
      }
      settle(t);
      if (t.text && !this.lifetime.signal.aborted && !pass.superseded) this.onEvent({ type: 'partial', text: t.text, startMs, atMs: pass.atMs });
    });
  }

  /** Writes what the streamed utterance has not been given yet. */
  private feedStream(): void {
    const st = this.stream;
    if (!st) return;
    const end = this.audioStart + this.audio.length;
    if (end > st.upTo) st.s.write(this.audio.subarray(st.upTo - this.audioStart, end - this.audioStart));
    st.upTo = end;
  }

  private finish(startMs: number, endMs: number, voicedEndMs = endMs): void {
    this.feedStream();
    const stream = this.stream;
    this.stream = null;
    // The first pass of this utterance that already hears all of it (the early final) gives the
    // final's words, unless the utterance was streamed: then no pass of it is worth waiting for.
    const heard = stream ? null : (this.passes.find((p) => p.startMs === startMs && p.atMs >= endMs) ?? null);
    if (heard) heard.keep = true;
    const passes = this.passes;
    this.passes = [];
    this.speechStart = -1;
    this.quietPassAsked = false;
    this.paused = false;
    this.onEvent({ type: 'speech-end', atMs: voicedEndMs });
    const audio = this.slice(startMs, endMs);
    const emitFinal = (t: Transcript, offset: number) => {
      const transcript: Transcript = { text: t.text, segments: t.segments.map((s) => ({ ...s, startMs: s.startMs + offset, endMs: s.endMs + offset })) };
      this.onEvent({ type: 'final', text: t.text, startMs, endMs, voicedEndMs, transcript });
    };
    if (stream) {
      // The streamed final goes out the moment it is decoded, not behind a partial still running:
      // that partial is stopped then, and a partial of this utterance never follows its final.
      // Should the stream fail, a whole pass gives the final instead.
      const done = stream.s.end().then(
        (t) => {
          if (this.lifetime.signal.aborted) return;
          for (const p of passes) {
            p.superseded = true;
            p.abort.abort();
          }
          emitFinal(t, stream.startMs);
        },
        () => this.enqueue(async () => emitFinal(await this.recognizer.recognize(audio, { signal: this.lifetime.signal }), startMs)),
      );
      this.streamedFinals.add(done);
      void done.finally(() => this.streamedFinals.delete(done));
      return;
    }
    this.enqueue(async () => {
      const t = (heard && (await heard.result)) || (await this.recognizer.recognize(audio, { signal: this.lifetime.signal }));
      if (this.lifetime.signal.aborted) return;
      emitFinal(t, startMs);
    });
  }

  private enqueue(pass: () => Promise<void>): void {
    this.recognition = this.recognition
      .then(() => (this.lifetime.signal.aborted ? undefined : pass()))
      .catch((e) => {
        if (!this.lifetime.signal.aborted) this.failure ??= e as Error;
      });
  }

  /**
   * Stops listening for good: the recognition in flight is cancelled, nothing queued runs, and
   * no event follows. Resolves once no pass is running. Idempotent.
   */
  async close(): Promise<void> {
    this.lifetime.abort();
    this.stream?.s.abort();
    this.stream = null;
    this.waiting = null;
    this.passes = [];
    await this.recognition;
  }

  /** End of input: the last utterance is closed and every queued recognition has run. */
  async flush(): Promise<void> {
    for (const e of this.seg.flush()) await this.handle(e);
    await this.settled();
  }

  /** Resolves when every recognition asked for so far has run; rejects with the first failure. */
  async settled(): Promise<void> {
    while (this.streamedFinals.size) await Promise.all([...this.streamedFinals]);
    await this.recognition;
    const e = this.failure;
    this.failure = null;
    if (e) throw e;
  }

  get speaking(): boolean {
    return this.speechStart >= 0;
  }
}
