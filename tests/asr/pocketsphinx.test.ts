import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { speechCorpus, trigramArpa } from '../../training/speech-lm.ts';
import { numbersIn } from '../../training/task.ts';
import { toAsrInput } from '../../src/audio/resample.ts';
import { PocketsphinxRecognizer } from '../../src/asr/pocketsphinx.ts';
import { wordErrors } from '../../src/asr/word-errors.ts';
import { EspeakNgEngine } from '../../src/tts/engine.ts';
import { needTools } from '../helpers/tools.ts';
import { SPOKEN_QUESTIONS } from '../../bench/spoken-questions.ts';

describe('pocketsphinx: live decoders skip the second pass', () => {
  const live = new PocketsphinxRecognizer({ warm: true });
  const withPass = new PocketsphinxRecognizer({ warm: true, secondPass: true });
  beforeAll(() => needTools('espeak-ng', 'pocketsphinx_continuous'));
  afterAll(async () => {
    await live.close();
    await withPass.close();
  });

  it('hears the spoken questions about as well as with the second pass that would delay every final', async () => {
    const tts = new EspeakNgEngine({ voice: 'en-us+klatt', wordsPerMinute: 150 });
    const errors = { live: 0, withPass: 0 };
    let words = 0;
    for (const s of SPOKEN_QUESTIONS) {
      const speech = await tts.synthesize(s);
      const audio = toAsrInput({ sampleRate: speech.sampleRate, channels: [speech.pcm] });
      const a = wordErrors(s, (await live.recognize(audio)).text);
      const b = wordErrors(s, (await withPass.recognize(audio)).text);
      errors.live += a.errors;
      errors.withPass += b.errors;
      words += a.words;
    }
    // Whole utterances without VAD padding: both are worse than the transcribe command's 35 %.
    expect(errors.live / words).toBeLessThanOrEqual(errors.withPass / words + 0.05);
    expect(errors.live / words).toBeLessThan(0.6);
  });
});

describe('pocketsphinx: a warm decoder that dies', () => {
  const rec = new PocketsphinxRecognizer({ warm: true });
  beforeAll(() => needTools('espeak-ng', 'pocketsphinx_continuous'));
  afterAll(() => rec.close());

  /** Threads of this process waiting in the kernel to open a FIFO (Linux). */
  const fifoWaits = () =>
    process.platform !== 'linux'
      ? []
      : readdirSync('/proc/self/task').flatMap((t) => {
          try {
            const w = readFileSync(`/proc/self/task/${t}/wchan`, 'utf8');
            return /fifo/i.test(w) ? [`${t}: ${w}`] : [];
          } catch {
            return [];
          }
        });
  /** This process's pocketsphinx children (the kernel keeps 15 characters of a program's name). */
  const pids = () => {
    try {
      return execFileSync('pgrep', ['-P', String(process.pid), '-x', 'pocketsphinx_co'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    } catch {
      return []; // pgrep exits 1 when none runs
    }
  };

  it('fails only the utterance it held, whenever it dies, and never leaves a thread waiting', async () => {
    const tts = new EspeakNgEngine({ voice: 'en-us+klatt', wordsPerMinute: 150 });
    const speech = await tts.synthesize('what is the capital of france');
    const audio = toAsrInput({ sampleRate: speech.sampleRate, channels: [speech.pcm] });
    // More deaths than libuv has worker threads (4), at three stages: before any audio, after part of it, at the end.
    let failed = 0;
    for (let i = 0; i < 6; i++) {
      const stream = rec.openStream()!;
      await new Promise((r) => setTimeout(r, 50 * (i % 3)));
      if (i % 3 >= 1) stream.write(audio.subarray(0, audio.length >> 1));
      for (const pid of pids()) process.kill(Number(pid), 'SIGKILL');
      if (i % 3 === 2) stream.write(audio.subarray(audio.length >> 1));
      await stream.end().then(
        () => undefined,
        (e: Error) => {
          failed++;
          expect(e.message).toMatch(/pocketsphinx/);
        },
      );
    }
    expect(failed).toBeGreaterThanOrEqual(4);
    expect(fifoWaits()).toEqual([]);
    // The next utterances are heard on decoders started after the deaths: a streamed one (no
    // fallback there: a decoder that cannot read its input fails it), and a whole pass.
    const live = rec.openStream()!;
    live.write(audio);
    expect(wordErrors('what is the capital of france', (await live.end()).text).errors).toBeLessThanOrEqual(3);
    const t = await rec.recognize(audio);
    expect(wordErrors('what is the capital of france', t.text).errors).toBeLessThanOrEqual(3);
    // The file system still answers at once (a stuck worker pool would hold every fs call).
    const t0 = performance.now();
    await stat(tmpdir());
    expect(performance.now() - t0).toBeLessThan(2000);
  }, 120_000);
});

describe('pocketsphinx with a language model of the arithmetic task (training/speech-lm.ts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'asyncvoice-lm-'));
  const lm = join(dir, 'speech.arpa');
  let rec: PocketsphinxRecognizer;
  beforeAll(async () => {
    await needTools('espeak-ng', 'pocketsphinx_continuous');
    writeFileSync(lm, trigramArpa(speechCorpus(20000, 3)));
    rec = new PocketsphinxRecognizer({ lm });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('hears questions about numbers that its general English model mishears', async () => {
    const tts = new EspeakNgEngine({ voice: 'en-us+klatt', wordsPerMinute: 150 });
    const general = new PocketsphinxRecognizer();
    const questions = ['what is eight times six', 'what is twelve plus five', 'what is twenty one plus thirty five', 'what is three hundred and four minus seventeen'];
    let domainRight = 0;
    let generalRight = 0;
    for (const q of questions) {
      const s = await tts.synthesize(q);
      const audio = toAsrInput({ sampleRate: s.sampleRate, channels: [s.pcm] });
      const want = numbersIn(q).join(' ');
      if (numbersIn((await rec.recognize(audio)).text).join(' ') === want) domainRight++;
      if (numbersIn((await general.recognize(audio)).text).join(' ') === want) generalRight++;
    }
    expect(domainRight).toBeGreaterThanOrEqual(3);
    expect(domainRight).toBeGreaterThan(generalRight);
  }, 60_000);
});
