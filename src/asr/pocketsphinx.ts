import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ASR_SAMPLE_RATE } from '../audio/resample.ts';
import { runTool } from '../audio/tools.ts';
import { encodeWav } from '../audio/wav.ts';
import { SpeechEngineError } from '../errors.ts';
import { EMPTY_TRANSCRIPT, joinSegments, type Recognizer, type Transcript, type TranscriptSegment } from './recognizer.ts';

export interface PocketsphinxOptions {
  /** Acoustic model, language model and dictionary; default: the system's en-us model. */
  hmm?: string;
  lm?: string;
  dict?: string;
}

const NOT_WORDS = /^(<s>|<\/s>|<sil>|\[NOISE\]|\+\+.*\+\+|\[.*\])$/;

/**
 * CMU PocketSphinx (the `pocketsphinx_continuous` program), offline, no download. Each call
 * decodes one piece of audio (a VAD segment): utterance-level cepstral mean normalisation
 * (`-cmn current`) suits short segments better than the live default.
 */
export class PocketsphinxRecognizer implements Recognizer {
  readonly name = 'pocketsphinx';
  constructor(private readonly opts: PocketsphinxOptions = {}) {}

  async recognize(audio16k: Float32Array, { signal }: { signal?: AbortSignal } = {}): Promise<Transcript> {
    if (audio16k.length < ASR_SAMPLE_RATE / 10) return EMPTY_TRANSCRIPT;
    const dir = await mkdtemp(join(tmpdir(), 'asyncvoice-ps-'));
    const wav = join(dir, 'segment.wav');
    try {
      await writeFile(wav, encodeWav({ sampleRate: ASR_SAMPLE_RATE, channels: [audio16k] }));
      const args = ['-infile', wav, '-time', 'yes', '-cmn', 'current', '-logfn', process.platform === 'win32' ? 'NUL' : '/dev/null'];
      if (this.opts.hmm) args.push('-hmm', this.opts.hmm);
      if (this.opts.lm) args.push('-lm', this.opts.lm);
      if (this.opts.dict) args.push('-dict', this.opts.dict);
      const { stdout } = await runTool('pocketsphinx_continuous', args, { signal, timeoutMs: 10 * 60_000 });
      return parsePocketsphinxOutput(stdout.toString('utf8'));
    } catch (e) {
      if (e instanceof SpeechEngineError) throw e;
      throw new SpeechEngineError(`pocketsphinx failed: ${(e as Error).message}`, { cause: e });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {}
}

/** `-time yes` output: per utterance, word lines "word start end prob" between <s> and </s>. */
export function parsePocketsphinxOutput(out: string): Transcript {
  const segments: TranscriptSegment[] = [];
  let words: { w: string; s: number; e: number }[] = [];
  const flush = () => {
    if (words.length) segments.push({ text: words.map((x) => x.w).join(' '), startMs: words[0].s, endMs: words[words.length - 1].e });
    words = [];
  };
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 4 || !f.slice(1).every((x) => /^-?\d+(\.\d+)?$/.test(x))) continue;
    const [raw, s, e] = f;
    if (raw === '</s>') {
      flush();
      continue;
    }
    if (NOT_WORDS.test(raw)) continue;
    words.push({ w: raw.replace(/\(\d+\)$/, ''), s: Number(s) * 1000, e: Number(e) * 1000 });
  }
  flush();
  return { text: joinSegments(segments), segments };
}
