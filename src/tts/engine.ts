import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downmix } from '../audio/resample.ts';
import { hasTool, runTool } from '../system/tools.ts';
import { durationMs, parseWav, type SpeechAudio } from '../audio/wav.ts';
import { SpeechEngineError } from '../errors.ts';

export type { SpeechAudio };

/** Text chunk in, PCM out. Text is always passed as data (stdin or an argument array), never code. */
export interface TtsEngine {
  readonly name: TtsEngineName;
  synthesize(text: string, opts?: { signal?: AbortSignal }): Promise<SpeechAudio>;
}

export type TtsEngineName = 'espeak-ng' | 'festival' | 'say' | 'vits';
export const TTS_ENGINES: readonly TtsEngineName[] = ['espeak-ng', 'festival', 'say', 'vits'];
export const DEFAULT_VITS_MODEL = 'Xenova/mms-tts-eng';

function fromWavBytes(bytes: Uint8Array, who: string): SpeechAudio {
  const audio = parseWav(bytes, `${who} output`);
  return { pcm: downmix(audio), sampleRate: audio.sampleRate, durationMs: durationMs(audio) };
}

function checkText(text: string): string {
  const t = text.replace(/\0/g, '').trim();
  if (!t) throw new SpeechEngineError('nothing to say: the text is empty');
  return t;
}

/** eSpeak NG: text on stdin, WAV on stdout. Plain text mode: no SSML, no phoneme input. */
export class EspeakNgEngine implements TtsEngine {
  readonly name = 'espeak-ng';
  constructor(private readonly opts: { voice?: string; wordsPerMinute?: number } = {}) {
    if (opts.voice && !/^[\w+-]+$/.test(opts.voice)) throw new SpeechEngineError(`invalid espeak-ng voice name "${opts.voice}"`);
  }

  async synthesize(text: string, { signal }: { signal?: AbortSignal } = {}): Promise<SpeechAudio> {
    const args = ['--stdout', '-v', this.opts.voice ?? 'en-us', '-s', String(this.opts.wordsPerMinute ?? 170)];
    const { stdout } = await runTool('espeak-ng', args, { input: checkText(text), signal, timeoutMs: 60_000 });
    return fromWavBytes(stdout, 'espeak-ng');
  }
}

/**
 * Festival through `text2wave`, which reads plain text (stdin) in text mode: the words are never
 * evaluated as Scheme, unlike `(SayText "…")`, where a quote in the text would become code.
 */
export class FestivalEngine implements TtsEngine {
  readonly name = 'festival';
  async synthesize(text: string, { signal }: { signal?: AbortSignal } = {}): Promise<SpeechAudio> {
    const dir = await mkdtemp(join(tmpdir(), 'asyncvoice-tts-'));
    try {
      const out = join(dir, 'speech.wav');
      const { stderr } = await runTool('text2wave', ['-o', out], { input: checkText(text), signal, timeoutMs: 60_000 });
      const bytes = await readFile(out).catch(() => new Uint8Array(0));
      // Festival without a voice still exits 0, leaving an empty file: that is a missing package.
      if (bytes.byteLength === 0) {
        throw new SpeechEngineError(
          `festival has no voice installed (text2wave wrote no audio${stderr.trim() ? `: ${stderr.trim().split('\n')[0].slice(0, 120)}` : ''}); ` +
            'install one: apt-get install festvox-kallpc16k',
        );
      }
      return fromWavBytes(bytes, 'text2wave');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** The system voice on macOS and Windows, through the `say` package's export (text as an argument or on stdin). */
export class SayEngine implements TtsEngine {
  readonly name = 'say';
  constructor(private readonly opts: { voice?: string; speed?: number } = {}) {
    if (process.platform !== 'darwin' && process.platform !== 'win32') {
      throw new SpeechEngineError('the `say` engine is for macOS and Windows; on Linux use espeak-ng or festival');
    }
    if (opts.voice && !/^[\w .()-]+$/.test(opts.voice)) throw new SpeechEngineError(`invalid voice name "${opts.voice}"`);
  }

  async synthesize(text: string): Promise<SpeechAudio> {
    const say = (await import('say')).default;
    const dir = await mkdtemp(join(tmpdir(), 'asyncvoice-tts-'));
    try {
      const out = join(dir, 'speech.wav');
      await new Promise<void>((resolve, reject) =>
        say.export(checkText(text), this.opts.voice ?? (undefined as unknown as string), this.opts.speed ?? 1, out, (err?: string | Error) =>
          err ? reject(new SpeechEngineError(`say failed: ${String(err)}`)) : resolve(),
        ),
      );
      return fromWavBytes(await readFile(out), 'say');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

type TtsPipeline = ((text: string) => Promise<{ audio: Float32Array; sampling_rate: number }>) & { dispose?: () => Promise<void> };

/** A neural voice (MMS/VITS) through @huggingface/transformers, when its weights are cached or can be downloaded. */
export class VitsEngine implements TtsEngine {
  readonly name = 'vits';
  private pipe: Promise<TtsPipeline> | null = null;
  constructor(private readonly opts: { model?: string; offline?: boolean } = {}) {}

  private load(): Promise<TtsPipeline> {
    this.pipe ??= (async () => {
      const model = this.opts.model ?? DEFAULT_VITS_MODEL;
      const { pipeline, env } = await import('@huggingface/transformers');
      env.allowRemoteModels = !this.opts.offline;
      try {
        return (await pipeline('text-to-speech', model, { dtype: 'fp32', device: 'cpu' })) as unknown as TtsPipeline;
      } catch (e) {
        throw new SpeechEngineError(
          `neural voice ${model} could not be loaded${this.opts.offline ? ' offline (not in the transformers.js cache)' : ''}: ${(e as Error).message}. ` +
            'Run once with network access to download it, or use --engine espeak-ng / festival.',
          { retryable: !this.opts.offline, cause: e },
        );
      }
    })();
    return this.pipe;
  }

  async synthesize(text: string): Promise<SpeechAudio> {
    const pipe = await this.load();
    const out = await pipe(checkText(text));
    return { pcm: out.audio, sampleRate: out.sampling_rate, durationMs: (out.audio.length / out.sampling_rate) * 1000 };
  }
}

export function createTtsEngine(name: TtsEngineName, opts: { voice?: string; offline?: boolean } = {}): TtsEngine {
  switch (name) {
    case 'vits':
      return new VitsEngine({ model: opts.voice, offline: opts.offline });
    case 'espeak-ng':
      return new EspeakNgEngine(opts);
    case 'festival':
      return new FestivalEngine();
    case 'say':
      return new SayEngine(opts);
  }
}

/** The engines whose programs are present on this machine. */
export async function availableTtsEngines(): Promise<TtsEngineName[]> {
  const out: TtsEngineName[] = [];
  if (await hasTool('espeak-ng')) out.push('espeak-ng');
  if (await hasTool('text2wave')) out.push('festival');
  if ((process.platform === 'darwin' && (await hasTool('say'))) || process.platform === 'win32') out.push('say');
  return out;
}

/** The platform's default: macOS/Windows system voice, else espeak-ng. */
export function defaultTtsEngine(): TtsEngineName {
  return process.platform === 'darwin' || process.platform === 'win32' ? 'say' : 'espeak-ng';
}
