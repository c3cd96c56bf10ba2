import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { resample, toAsrInput } from '../../src/audio/resample.ts';
import { parseWav } from '../../src/audio/wav.ts';
import { PocketsphinxRecognizer } from '../../src/asr/pocketsphinx.ts';
import { transcribeAudio } from '../../src/asr/transcribe.ts';
import { SileroVad } from '../../src/asr/vad.ts';
import { runTool } from '../../src/system/tools.ts';
import { scratchDir } from '../helpers/models.ts';
import { needTools, sox } from '../helpers/tools.ts';

const root = scratchDir('asyncvoice-rs-');
let vad: SileroVad;
const rec = new PocketsphinxRecognizer();
beforeAll(async () => {
  await needTools('espeak-ng', 'sox', 'pocketsphinx_continuous');
  vad = await SileroVad.load();
  await runTool('espeak-ng', ['-v', 'en-us+klatt', '-s', '150', '-w', join(root, 'base.wav'), 'what is the capital of france']);
  // The same speech limited to what 8 kHz can carry, so every rate holds the same information.
  await sox(join(root, 'base.wav'), join(root, 'narrow.wav'), 'sinc', '-3600');
});
afterAll(async () => {
  await vad?.close();
  rmSync(root, { recursive: true, force: true });
});

const tone = (hz: number, rate: number, seconds = 0.5) => Float32Array.from({ length: rate * seconds }, (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / rate));
const rms = (x: Float32Array, from = 0.1, to = 0.9) => {
  const a = Math.floor(x.length * from);
  const b = Math.floor(x.length * to);
  let s = 0;
  for (let i = a; i < b; i++) s += x[i] * x[i];
  return Math.sqrt(s / (b - a));
};

describe('resampling to 16 kHz mono', () => {
  it('keeps in-band tones and removes what would alias', () => {
    const kept = resample(tone(1000, 48000), 48000, 16000);
    expect(kept.length).toBe(8000);
    expect(rms(kept)).toBeCloseTo(0.5 / Math.SQRT2, 2);
    const aliased = resample(tone(11000, 48000), 48000, 16000); // above the new 8 kHz Nyquist
    expect(rms(aliased)).toBeLessThan(0.01);
    const up = resample(tone(1000, 8000), 8000, 16000);
    expect(rms(up)).toBeCloseTo(0.5 / Math.SQRT2, 2);
  });

  it('8, 16, 22.05, 44.1 and 48 kHz, mono and stereo, of the same speech give the same 16 kHz signal and the same transcript', async () => {
    const results: { name: string; text: string; pcm: Float32Array }[] = [];
    for (const rate of [8000, 16000, 22050, 44100, 48000]) {
      for (const ch of [1, 2]) {
        const file = join(root, `v-${rate}-${ch}.wav`);
        await sox(join(root, 'narrow.wav'), '-r', String(rate), '-c', String(ch), '-b', '16', file);
        const audio = parseWav(readFileSync(file));
        expect(audio.channels).toHaveLength(ch);
        expect(audio.sampleRate).toBe(rate);
        const t = await transcribeAudio(audio, vad, rec);
        results.push({ name: `${rate}/${ch}`, text: t.text, pcm: toAsrInput(audio) });
      }
    }
    const ref = results.find((r) => r.name === '16000/1')!;
    expect(ref.text.length).toBeGreaterThan(0);
    for (const r of results) {
      expect(r.text, r.name).toBe(ref.text);
      // Signal agreement with the native-16 kHz version: better than 25 dB SNR.
      const n = Math.min(r.pcm.length, ref.pcm.length);
      let sig = 0;
      let err = 0;
      for (let i = 0; i < n; i++) {
        sig += ref.pcm[i] ** 2;
        err += (r.pcm[i] - ref.pcm[i]) ** 2;
      }
      expect(10 * Math.log10(sig / Math.max(err, 1e-12)), r.name).toBeGreaterThan(25);
    }
  }, 120_000);

  it('full-band speech at 16, 22.05, 44.1 and 48 kHz, mono and stereo, is recognised word for word', async () => {
    for (const rate of [16000, 22050, 44100, 48000]) {
      for (const ch of [1, 2]) {
        const file = join(root, `w-${rate}-${ch}.wav`);
        await sox(join(root, 'base.wav'), '-r', String(rate), '-c', String(ch), '-b', '16', file);
        const t = await transcribeAudio(parseWav(readFileSync(file)), vad, rec);
        expect(t.text, `${rate} Hz, ${ch} ch`).toBe('what is the capital of france');
      }
    }
  }, 120_000);
});
