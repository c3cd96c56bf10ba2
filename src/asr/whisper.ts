import { SpeechEngineError } from '../errors.ts';
import { EMPTY_TRANSCRIPT, type Recognizer, type Transcript } from './recognizer.ts';

export const DEFAULT_WHISPER_MODEL = 'onnx-community/whisper-base.en';

export interface WhisperOptions {
  model?: string;
  /** Never download: the weights must already be in the transformers.js cache. */
  offline?: boolean;
  /** Quantized weights run fastest on CPU. */
  dtype?: 'q8' | 'fp32' | 'fp16' | 'q4';
  onProgress?: (p: { file: string; loadedBytes: number; totalBytes: number | null }) => void;
}

type AsrPipeline = (audio: Float32Array, opts: Record<string, unknown>) => Promise<{ text: string; chunks?: { text: string; timestamp: [number, number | null] }[] }>;

/** Whisper through @huggingface/transformers (ONNX), downloading its weights once with progress. */
export class WhisperRecognizer implements Recognizer {
  readonly name = 'whisper';
  private constructor(private readonly pipe: AsrPipeline & { dispose?: () => Promise<void> }) {}

  static async load(opts: WhisperOptions = {}): Promise<WhisperRecognizer> {
    const model = opts.model ?? DEFAULT_WHISPER_MODEL;
    const { pipeline, env } = await import('@huggingface/transformers');
    env.allowRemoteModels = !opts.offline;
    try {
      const pipe = await pipeline('automatic-speech-recognition', model, {
        dtype: opts.dtype ?? 'q8',
        device: 'cpu',
        progress_callback: (p: { status: string; file?: string; loaded?: number; total?: number }) => {
          if (p.status === 'progress' && p.file) opts.onProgress?.({ file: p.file, loadedBytes: p.loaded ?? 0, totalBytes: p.total ?? null });
        },
      });
      return new WhisperRecognizer(pipe as unknown as AsrPipeline);
    } catch (e) {
      throw new SpeechEngineError(
        `Whisper model ${model} could not be loaded${opts.offline ? ' offline (it is not in the transformers.js cache)' : ''}: ${(e as Error).message}. ` +
          'Run once with network access to download it, or use --engine pocketsphinx (offline, no download).',
        { retryable: !opts.offline, cause: e },
      );
    }
  }

  async recognize(audio16k: Float32Array): Promise<Transcript> {
    if (audio16k.length < 1600) return EMPTY_TRANSCRIPT;
    const out = await this.pipe(audio16k, { return_timestamps: true, chunk_length_s: 30 });
    const segments = (out.chunks ?? []).map((c) => ({ text: c.text.trim(), startMs: c.timestamp[0] * 1000, endMs: (c.timestamp[1] ?? c.timestamp[0]) * 1000 }));
    return { text: out.text.trim(), segments };
  }

  async close(): Promise<void> {
    await this.pipe.dispose?.();
  }
}
