import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ASR_SAMPLE_RATE } from '../audio/resample.ts';
import { constants as fsConstants, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { installHint, runTool } from '../system/tools.ts';
import { encodeWav, floatToPcm16 } from '../audio/wav.ts';
import { SpeechEngineError } from '../errors.ts';
import { EMPTY_TRANSCRIPT, joinSegments, type RecognitionStream, type Recognizer, type Transcript, type TranscriptSegment } from './recognizer.ts';

export interface PocketsphinxOptions {
  /** Acoustic model, language model and dictionary; default: the system's en-us model. */
  hmm?: string;
  lm?: string;
  dict?: string;
  /**
   * Keep one decoder started ahead, its models already loaded (about 0.5 s of the ~1 s a short
   * pass takes), waiting on a FIFO for its audio. For live listening; not on Windows.
   */
  warm?: boolean;
  /**
   * pocketsphinx's second, flat-lexicon pass (`-fwdflat`). It re-decodes the whole utterance once
   * its audio has ended, so a final waits for it: 0.4-0.7 s after a 5 s question on 2 cores, the
   * larger part of a live final's delay. On espeak-ng's speech it bought nothing (10 questions:
   * 57.9 % WER with it, 56.1 % without). Default: off for `warm` (live) decoders, on otherwise.
   */
  secondPass?: boolean;
}

/** Where a warm decoder's audio goes: the FIFO it reads. */
interface AudioInput {
  /** Resolves once the bytes are handed to the pipe; rejects if the decoder is gone. */
  write(bytes: Uint8Array): Promise<void>;
  /** The end of the utterance: the decoder reads to the end of its input and prints its words. */
  close(): Promise<void>;
  destroy(): void;
}

/** A pocketsphinx process loading (or with) its models, reading raw audio from a FIFO we write to. */
interface Spare {
  child: ChildProcess;
  input: Promise<AudioInput>;
  output: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** The decoder has exited (killed, crashed, out of memory): not to be handed an utterance. */
const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** Stops a warm decoder. */
async function discard(s: Spare): Promise<void> {
  s.child.kill('SIGKILL');
  await s.input.then((i) => i.destroy()).catch(() => undefined);
}

/**
 * Opens the FIFO's writing end once its reader (the decoder, models loaded) has opened the other.
 * Never a blocking open: a blocking open waits in the kernel for a reader, and a decoder that died
 * before opening it left a libuv worker waiting there for good (four such deaths, and every file
 * operation of the process waited behind them). A non-blocking open fails at once while there is no
 * reader; it is tried again until there is one, or the decoder is gone. The descriptor then goes to
 * libuv as a pipe: writes are queued, never block, and a dead reader is an error on the next one.
 */
async function openWhenRead(fifo: string, gone: () => boolean, output: Promise<{ stderr: string }>): Promise<Socket> {
  for (let waited = 0; ; waited += READER_POLL_MS) {
    try {
      const fd = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      return new Socket({ fd, readable: false, writable: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
    }
    if (gone()) {
      const { stderr } = await output.catch(() => ({ stderr: '' }));
      throw new SpeechEngineError(`pocketsphinx exited before reading its audio: ${stderr.trim().slice(-300)}`);
    }
    if (waited > READER_WAIT_MS) throw new SpeechEngineError(`pocketsphinx did not start reading its audio within ${READER_WAIT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, READER_POLL_MS));
  }
}

const READER_POLL_MS = 20;
const READER_WAIT_MS = 30_000;

/** Writes to the decoder's input: a dead reader is an error on the next write, not a hang. */
function pipeInput(pipe: Writable): AudioInput {
  let failure: Error | null = null;
  pipe.on('error', (e) => (failure ??= e));
  return {
    write: (bytes) =>
      new Promise((resolve, reject) => {
        if (failure || pipe.destroyed) return reject(failure ?? new Error('the decoder\'s input is closed'));
        pipe.write(bytes, (e) => (e ? reject(e) : resolve()));
      }),
    close: () => new Promise((resolve) => (pipe.destroyed || pipe.writableEnded ? resolve() : pipe.end(resolve))),
    destroy: () => pipe.destroy(),
  };
}

/** Niceness of whole passes when a streamed decoder carries the final (see recognizeWarm). */
const PASS_NICE = 5;

const NOT_WORDS = /^(<s>|<\/s>|<sil>|\[NOISE\]|\+\+.*\+\+|\[.*\])$/;

/**
 * CMU PocketSphinx (the `pocketsphinx_continuous` program), offline, no download. Each call
 * decodes one piece of audio (a VAD segment): utterance-level cepstral mean normalisation
 * (`-cmn current`) suits short segments better than the live default.
 */
export class PocketsphinxRecognizer implements Recognizer {
  readonly name = 'pocketsphinx';
  private spare: Promise<Spare> | null = null;
  private closed = false;
  constructor(private readonly opts: PocketsphinxOptions = {}) {}

  private args(infile: string): string[] {
    const args = ['-infile', infile, '-time', 'yes', '-cmn', 'current', '-logfn', process.platform === 'win32' ? 'NUL' : '/dev/null'];
    if (this.opts.hmm) args.push('-hmm', this.opts.hmm);
    if (this.opts.lm) args.push('-lm', this.opts.lm);
    if (this.opts.dict) args.push('-dict', this.opts.dict);
    const secondPass = this.opts.secondPass ?? !this.opts.warm;
    if (!secondPass) args.push('-fwdflat', 'no');
    return args;
  }

  private get useWarm(): boolean {
    return this.opts.warm === true && process.platform !== 'win32' && !this.closed;
  }

  /**
   * Starts a decoder that loads its models now and then reads raw 16 kHz PCM16 from a FIFO whose
   * writing end we hold once it reads (see openWhenRead): should this process die, the decoder
   * reads the end of its input and exits instead of waiting forever; should the decoder die, our
   * next write fails. (Not its standard input: Node gives a child a socket there, which pocketsphinx
   * cannot open as a file.)
   */
  private async startSpare(): Promise<Spare> {
    const dir = await mkdtemp(join(tmpdir(), 'asyncvoice-ps-'));
    const fifo = join(dir, 'audio.raw');
    await runTool('mkfifo', [fifo]);
    const child = spawn('pocketsphinx_continuous', this.args(fifo), { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', (e: NodeJS.ErrnoException) =>
        reject(e.code === 'ENOENT' ? new SpeechEngineError(`pocketsphinx_continuous is not installed: ${installHint('pocketsphinx_continuous')}`) : e),
      );
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    output.catch(() => undefined);
    // Both ends open, the FIFO's name is no longer needed: removed, nothing is left on disk.
    const input = openWhenRead(fifo, () => exited(child), output)
      .then((socket) => pipeInput(socket))
      .finally(() => rm(dir, { recursive: true, force: true }));
    input.catch(() => undefined);
    return { child, input, output };
  }

  private async takeSpare(): Promise<Spare> {
    // A spare that died while it waited is replaced, not handed an utterance.
    const waiting = await this.spare?.catch(() => null);
    const next = waiting && !exited(waiting.child) ? waiting : await this.startSpare();
    // The next one starts loading now, while this one decodes.
    this.spare = this.useWarm ? this.startSpare() : null;
    this.spare?.catch(() => undefined);
    return next;
  }

  /** A whole pass on a warm decoder: the utterance written at once, then its end. */
  private async recognizeWarm(audio16k: Float32Array, signal?: AbortSignal): Promise<Transcript> {
    const spare = this.takeSpare().then((s) => {
      // A whole pass (a partial) matters less than the streamed utterance and the VAD: it yields to them.
      if (s.child.pid !== undefined) {
        try {
          setPriority(s.child.pid, PASS_NICE);
        } catch {
          /* not permitted here: normal priority */
        }
      }
      return s;
    });
    const stream = this.streamOn(spare);
    const abort = () => stream.abort();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      stream.write(audio16k);
      return await stream.end();
    } catch (e) {
      // The whole audio is at hand: a decoder that died under it (killed, crashed; its exit may not
      // even be reported yet when the write fails) costs a cold pass, not the words.
      if (signal?.aborted) throw e;
      return this.recognizeCold(audio16k, signal);
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  /**
   * With `warm`: a decoder already loaded takes the utterance as it is spoken (pocketsphinx decodes
   * incrementally as its input arrives), so at the end only the last moments remain to decode.
   */
  openStream(): RecognitionStream | null {
    return this.useWarm ? this.streamOn(this.takeSpare()) : null;
  }

  /** One utterance on one warm decoder: audio goes to its input in order; closing it ends the utterance. */
  private streamOn(spare: Promise<Spare>): RecognitionStream {
    let chain: Promise<unknown> = spare.then((s) => s.input);
    let aborted = false;
    let written = 0;
    const abort = () => {
      if (aborted) return;
      aborted = true;
      void spare.then(discard).catch(() => undefined);
    };
    return {
      write: (audio) => {
        if (aborted) return;
        written += audio.length;
        const bytes = floatToPcm16(audio);
        chain = chain.then(async () => (await (await spare).input).write(bytes));
        chain.catch(() => undefined);
      },
      end: async () => {
        try {
          const s = await spare;
          await chain;
          if (written < ASR_SAMPLE_RATE / 10) {
            abort();
            return EMPTY_TRANSCRIPT;
          }
          await (await s.input).close();
          const { code, stdout, stderr } = await s.output;
          if (aborted) throw new SpeechEngineError('pocketsphinx was cancelled');
          if (code !== 0) throw new SpeechEngineError(`pocketsphinx exited with ${code}: ${stderr.trim().slice(-300)}`);
          return parsePocketsphinxOutput(stdout);
        } catch (e) {
          abort();
          throw e instanceof SpeechEngineError ? e : new SpeechEngineError(`pocketsphinx failed: ${(e as Error).message}`, { cause: e });
        }
      },
      abort,
    };
  }

  async recognize(audio16k: Float32Array, { signal }: { signal?: AbortSignal } = {}): Promise<Transcript> {
    if (audio16k.length < ASR_SAMPLE_RATE / 10) return EMPTY_TRANSCRIPT;
    if (this.useWarm) return this.recognizeWarm(audio16k, signal);
    return this.recognizeCold(audio16k, signal);
  }

  /** One pass on a decoder of its own, from a WAV file. */
  private async recognizeCold(audio16k: Float32Array, signal?: AbortSignal): Promise<Transcript> {
    const dir = await mkdtemp(join(tmpdir(), 'asyncvoice-ps-'));
    const wav = join(dir, 'segment.wav');
    try {
      await writeFile(wav, encodeWav({ sampleRate: ASR_SAMPLE_RATE, channels: [audio16k] }));
      const { stdout } = await runTool('pocketsphinx_continuous', this.args(wav), { signal, timeoutMs: 10 * 60_000 });
      return parsePocketsphinxOutput(stdout.toString('utf8'));
    } catch (e) {
      if (e instanceof SpeechEngineError) throw e;
      throw new SpeechEngineError(`pocketsphinx failed: ${(e as Error).message}`, { cause: e });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Stops the decoder kept warm, if any. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const spare = this.spare;
    this.spare = null;
    const s = await spare?.catch(() => null);
    if (s) await discard(s);
  }
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
