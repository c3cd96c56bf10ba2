import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Player, ProcessSink } from '../audio/player.ts';
import { ASR_SAMPLE_RATE, toAsrInput } from '../audio/resample.ts';
import { MAX_AUDIO_SECONDS, parseWav, encodeWav, pcm16ToFloat } from '../audio/wav.ts';
import type { Recognizer } from '../asr/recognizer.ts';
import { PocketsphinxRecognizer } from '../asr/pocketsphinx.ts';
import { speechLmFor } from '../asr/speech-lm.ts';
import { StreamingTranscriber } from '../asr/stream.ts';
import { transcribeAudio } from '../asr/transcribe.ts';
import { SileroVad } from '../asr/vad.ts';
import { WhisperRecognizer } from '../asr/whisper.ts';
import { AudioError, SpeechEngineError } from '../errors.ts';
import { SpeechChunker } from '../tts/chunker.ts';
import { createTtsEngine, type TtsEngineName } from '../tts/engine.ts';
import { loadMathSpeech, speakable } from '../tts/speakable.ts';
import { ProgressBar, formatBytes } from './progress.ts';

type AsrEngine = 'pocketsphinx' | 'whisper';

async function makeRecognizer(engine: AsrEngine, o: { offline?: boolean; whisperModel?: string; lm?: string }): Promise<Recognizer> {
  if (engine === 'pocketsphinx') return new PocketsphinxRecognizer({ lm: speechLmFor(o.lm, undefined, '--lm') });
  const bar = new ProgressBar('downloading whisper');
  const r = await WhisperRecognizer.load({
    model: o.whisperModel,
    offline: o.offline,
    onProgress: (p) => bar.update(p.loadedBytes, p.totalBytes, `${p.file} ${formatBytes(p.loadedBytes)}`),
  });
  bar.done();
  return r;
}

/** Fails before any work when --out cannot be written: a folder, or in a folder that does not exist. */
export function checkWritable(path: string, flag = '--out'): void {
  if (existsSync(path) && statSync(path).isDirectory()) throw new AudioError(`${flag} ${path} is a folder; give a file name such as ${join(path, 'speech.wav')}`);
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) throw new AudioError(`${flag} ${path}: the folder ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new AudioError(`${flag} ${path}: ${dir} is not a folder`);
}

/**
 * Says `text` as an answer would be said (chunked, markdown and LaTeX read as speech): into a WAV
 * file when `out` is given, else through the sound device.
 */
export async function speakText(text: string, o: { engine: TtsEngineName; voice?: string; out?: string; quiet?: boolean }): Promise<void> {
  // About ten minutes of speech: beyond that a text is a mistake, and its audio would be held whole.
  if (text.length > MAX_SPEAK_CHARS) throw new AudioError(`the text is ${text.length} characters; speak says at most ${MAX_SPEAK_CHARS} at once`);
  await loadMathSpeech();
  const tts = createTtsEngine(o.engine, { voice: o.voice });
  const chunker = new SpeechChunker();
  const chunks = [...chunker.push(text, 0), ...chunker.flush(0)];
  const audio = [];
  for (const c of chunks) {
    const words = speakable(c.raw);
    if (words) audio.push({ text: c.raw, speech: await tts.synthesize(words) });
    const seconds = audio.reduce((a, x) => a + x.speech.pcm.length / x.speech.sampleRate, 0);
    if (seconds > MAX_AUDIO_SECONDS) throw new AudioError(`the speech would last over ${MAX_AUDIO_SECONDS / 60} minutes; say less at once`);
  }
  if (!audio.length) throw new SpeechEngineError(`nothing to say: ${text.trim() ? 'the text has no speakable words' : 'the text is empty'}`);
  if (o.out) {
    const rate = audio[0]?.speech.sampleRate ?? 22050;
    const all = new Float32Array(audio.reduce((a, x) => a + x.speech.pcm.length, 0));
    let p = 0;
    for (const x of audio) {
      all.set(x.speech.pcm, p);
      p += x.speech.pcm.length;
    }
    try {
      writeFileSync(o.out, encodeWav({ sampleRate: rate, channels: [all] }));
    } catch (e) {
      throw new AudioError(`cannot write ${o.out}: ${(e as Error).message}`);
    }
    if (!o.quiet) process.stdout.write(`${o.out}: ${(all.length / rate).toFixed(2)} s, ${audio.length} chunk(s)\n`);
    return;
  }
  let failed = '';
  const player = new Player(new ProcessSink(), (e) => {
    if (e.type === 'error') failed ||= e.message;
  });
  for (const x of audio) player.enqueue(x.text, x.speech);
  await player.idle();
  if (failed) throw new SpeechEngineError(`could not play the speech: ${failed} (no sound device? use --out file.wav)`);
}

export const MAX_SPEAK_CHARS = 10_000;

/** Larger than any WAV of the longest audio a file may hold at speech rates; a cap before reading. */
const MAX_WAV_BYTES = 512 * 2 ** 20;

function readWav(path: string) {
  let bytes: Buffer;
  try {
    // Only a regular file has a size to check first: a device or a FIFO could be read forever.
    const st = statSync(path);
    if (!st.isFile()) throw new AudioError(`${path} is not a regular file (a WAV file is needed)`);
    if (st.size > MAX_WAV_BYTES) throw new AudioError(`${path} is ${formatBytes(st.size)}; the limit is ${formatBytes(MAX_WAV_BYTES)} per file`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof AudioError) throw e;
    throw new AudioError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseWav(bytes, path);
}

/** Says the text, or writes it to a WAV file. */
export async function runSpeak(text: string, o: { engine: TtsEngineName; voice?: string; out?: string }): Promise<void> {
  if (o.out) checkWritable(o.out);
  await speakText(text, o);
}

/** Recognises the speech in a WAV file. */
export async function runTranscribe(file: string, o: { engine: AsrEngine; offline: boolean; json: boolean; whisperModel: string; lm?: string }): Promise<void> {
  const audio = readWav(file);
  const vad = await SileroVad.load();
  const rec = await makeRecognizer(o.engine, o);
  try {
    const t = await transcribeAudio(audio, vad, rec);
    const round = (x: number) => Math.round(x);
    if (o.json) process.stdout.write(JSON.stringify({ text: t.text, segments: t.segments.map((s) => ({ ...s, startMs: round(s.startMs), endMs: round(s.endMs) })) }) + '\n');
    else process.stdout.write(`${t.text}\n`);
  } finally {
    await rec.close();
    await vad.close();
  }
}

/** Live listening: VAD state and transcripts from the microphone or a replayed file. */
export async function runListen(o: { engine: AsrEngine; file?: string; offline: boolean; silenceMs: number }): Promise<void> {
  const vad = await SileroVad.load();
  const rec = await makeRecognizer(o.engine, o);
  const t = new StreamingTranscriber(vad, rec, (e) => {
    if (e.type === 'speech-start') process.stdout.write(`[speech ${(e.atMs / 1000).toFixed(2)} s]\n`);
    else if (e.type === 'speech-end') process.stdout.write(`[silence ${(e.atMs / 1000).toFixed(2)} s]\n`);
    else if (e.type === 'partial') process.stdout.write(`… ${e.text}\n`);
    else if (e.type === 'final') process.stdout.write(`» ${e.text}\n`);
  }, { vad: { minSilenceMs: o.silenceMs } });
  if (o.file) {
    const pcm = toAsrInput(readWav(o.file));
    const step = ASR_SAMPLE_RATE / 10;
    for (let i = 0; i < pcm.length; i += step) {
      await t.push(pcm.subarray(i, i + step));
      await new Promise((r) => setTimeout(r, 100));
    }
    await t.flush();
  } else {
    const recorder = (await import('node-record-lpcm16')).default;
    const rec16 = recorder.record({ sampleRate: ASR_SAMPLE_RATE, channels: 1, audioType: 'raw', recorder: process.platform === 'linux' ? 'arecord' : 'sox' });
    const stream = rec16.stream();
    let chain = Promise.resolve();
    stream.on('data', (d: Buffer) => {
      const f = pcm16ToFloat(d);
      chain = chain.then(() => t.push(f));
    });
    stream.on('error', (e: Error) => {
      process.stderr.write(`asyncvoice: microphone failed: ${e.message} (Linux needs arecord from alsa-utils, or sox)\n`);
      process.exit(2);
    });
    process.on('SIGINT', () => {
      rec16.stop();
      process.exit(0);
    });
    await new Promise(() => undefined);
  }
  await rec.close();
  await vad.close();
}
