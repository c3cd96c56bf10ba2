import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { toAsrInput } from '../../src/audio/resample.ts';
import { durationMs, parseWav } from '../../src/audio/wav.ts';
import { SileroVad, VadSegmenter, detectSpeech } from '../../src/asr/vad.ts';
import { runTool } from '../../src/system/tools.ts';
import { scratchDir } from '../helpers/models.ts';
import { needTools, sox } from '../helpers/tools.ts';

const root = scratchDir('asyncvoice-vad-');
let vad: SileroVad;
const f = (n: string) => join(root, n);
let truth: { startMs: number; endMs: number }[] = [];
let pcm: Float32Array;

beforeAll(async () => {
  await needTools('espeak-ng', 'sox');
  vad = await SileroVad.load();
  // Two utterances with their own leading/trailing silence trimmed, so the true boundaries are exact.
  for (const [name, text] of [['a', 'How many legs does a spider have'], ['b', 'What is seven plus five']]) {
    await runTool('espeak-ng', ['-v', 'en-us', '-w', f(`${name}-raw.wav`), text]);
    await sox(f(`${name}-raw.wav`), '-r', '16000', '-c', '1', '-b', '16', f(`${name}.wav`), 'silence', '1', '0.01', '0.5%', 'reverse', 'silence', '1', '0.01', '0.5%', 'reverse');
  }
  await sox('-n', '-r', '16000', '-c', '1', '-b', '16', f('sil.wav'), 'trim', '0', '1.0');
  await sox('-n', '-r', '16000', '-c', '1', '-b', '16', f('click.wav'), 'synth', '0.15', 'whitenoise', 'vol', '0.6');
  // silence + speech + silence + click (150 ms) + silence + speech + silence
  await sox(f('sil.wav'), f('a.wav'), f('sil.wav'), f('click.wav'), f('sil.wav'), f('b.wav'), f('sil.wav'), f('test.wav'));
  const len = (n: string) => durationMs(parseWav(readFileSync(f(n))));
  const a = len('a.wav');
  const b = len('b.wav');
  truth = [
    { startMs: 1000, endMs: 1000 + a },
    { startMs: 1000 + a + 1000 + 150 + 1000, endMs: 1000 + a + 1000 + 150 + 1000 + b },
  ];
  pcm = toAsrInput(parseWav(readFileSync(f('test.wav'))));
});
afterAll(async () => {
  await vad?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('Silero VAD', () => {
  it('finds both utterances within 150 ms of the true boundaries, and the 150 ms click is not speech', async () => {
    const found = await detectSpeech(vad, pcm, { speechPadMs: 0 });
    expect(found).toHaveLength(2);
    const err = found.map((s, i) => `start ${(s.startMs - truth[i].startMs).toFixed(0)} ms, end ${(s.endMs - truth[i].endMs).toFixed(0)} ms`);
    console.log(`VAD boundary errors: ${err.join('; ')}`);
    found.forEach((s, i) => {
      expect(Math.abs(s.startMs - truth[i].startMs)).toBeLessThanOrEqual(150);
      expect(Math.abs(s.endMs - truth[i].endMs)).toBeLessThanOrEqual(150);
    });
  });

  it('streaming in 100 ms pieces gives the same segments, speech-start only after the minimum duration', async () => {
    vad.reset();
    const seg = new VadSegmenter(vad, { speechPadMs: 0 });
    const events = [];
    for (let i = 0; i < pcm.length; i += 1600) events.push(...(await seg.push(pcm.subarray(i, i + 1600))));
    events.push(...seg.flush());
    const ends = events.flatMap((e) => (e.type === 'speech-end' ? [e.segment] : []));
    const whole = await detectSpeech(vad, pcm, { speechPadMs: 0 });
    expect(ends).toEqual(whole);
    expect(events.filter((e) => e.type === 'speech-start')).toHaveLength(2);
  });

  it('padding widens a segment for recognition, and its voiced bounds stay where the voice was', async () => {
    vad.reset();
    const tight = await detectSpeech(vad, pcm, { speechPadMs: 0 });
    vad.reset();
    const padded = await detectSpeech(vad, pcm, { speechPadMs: 100 });
    expect(padded.map((s) => [s.voicedStartMs, s.voicedEndMs])).toEqual(tight.map((s) => [s.startMs, s.endMs]));
    expect(padded.map((s) => [s.startMs, s.endMs])).toEqual(tight.map((s) => [s.startMs - 100, s.endMs + 100]));
  });

  it('a cough-length burst (under the minimum speech duration) never starts speech', async () => {
    const burst = new Float32Array(16000 * 2);
    for (let i = 16000; i < 16000 + 2400; i++) burst[i] = 0.5 * Math.sin(i * 0.3) * Math.sin(i * 0.011); // 150 ms
    expect(await detectSpeech(vad, burst, { minSpeechMs: 250 })).toEqual([]);
  });
});
