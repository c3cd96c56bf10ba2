import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { parseWav, encodeWav, MAX_AUDIO_SECONDS } from '../../src/audio/wav.ts';
import { toAsrInput } from '../../src/audio/resample.ts';
import { PocketsphinxRecognizer } from '../../src/asr/pocketsphinx.ts';
import { transcribeAudio } from '../../src/asr/transcribe.ts';
import { SileroVad } from '../../src/asr/vad.ts';
import { AudioError } from '../../src/errors.ts';
import { scratchDir } from '../helpers/models.ts';
import { needTools } from '../helpers/tools.ts';

const root = scratchDir('asyncvoice-bad-');
let vad: SileroVad;
const rec = new PocketsphinxRecognizer();
beforeAll(async () => {
  await needTools('pocketsphinx_continuous');
  vad = await SileroVad.load();
});
afterAll(async () => {
  await vad?.close();
  rmSync(root, { recursive: true, force: true });
});

/** A float32 WAV written by hand (encodeWav writes 16-bit, which cannot hold NaN). */
function floatWav(samples: Float32Array, rate = 16000): Uint8Array {
  const buf = new Uint8Array(44 + samples.length * 4);
  const dv = new DataView(buf.buffer);
  const put = (o: number, s: string) => [...s].forEach((c, i) => (buf[o + i] = c.charCodeAt(0)));
  put(0, 'RIFF');
  dv.setUint32(4, 36 + samples.length * 4, true);
  put(8, 'WAVEfmt ');
  dv.setUint32(16, 16, true);
  dv.setUint16(20, 3, true);
  dv.setUint16(22, 1, true);
  dv.setUint32(24, rate, true);
  dv.setUint32(28, rate * 4, true);
  dv.setUint16(32, 4, true);
  dv.setUint16(34, 32, true);
  put(36, 'data');
  dv.setUint32(40, samples.length * 4, true);
  new Float32Array(buf.buffer, 44).set(samples);
  return buf;
}

async function cliTranscribe(bytes: Uint8Array, name: string) {
  const file = join(root, name);
  writeFileSync(file, bytes);
  const r = await runCli(['transcribe', file, '--json']);
  return { code: r.code, out: r.code === 0 ? JSON.parse(r.stdout) : null, err: r.code === 0 ? '' : r.stderr };
}

describe('bad audio: clear errors or empty transcripts, never a crash', () => {
  it('empty audio and all-silence give empty transcripts', async () => {
    const empty = await cliTranscribe(encodeWav({ sampleRate: 16000, channels: [new Float32Array(0)] }), 'empty.wav');
    expect(empty).toMatchObject({ code: 0, out: { text: '', segments: [] } });
    const silence = await cliTranscribe(encodeWav({ sampleRate: 44100, channels: [new Float32Array(44100 * 5), new Float32Array(44100 * 5)] }), 'silence.wav');
    expect(silence).toMatchObject({ code: 0, out: { text: '', segments: [] } });
  }, 60_000);

  it('NaN samples are refused by name', async () => {
    const x = new Float32Array(16000).map((_, i) => Math.sin(i / 10) * 0.3);
    x[1234] = NaN;
    const r = await cliTranscribe(floatWav(x), 'nan.wav');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/non-finite sample \(NaN/);
    expect(() => toAsrInput(parseWav(floatWav(x)))).toThrow(AudioError);
  }, 30_000);

  it('truncated and malformed headers say what is wrong', async () => {
    const good = encodeWav({ sampleRate: 16000, channels: [new Float32Array(1600)] });
    const cases: [Uint8Array, RegExp][] = [
      [good.subarray(0, 20), /truncated fmt chunk|no fmt chunk/],
      [good.subarray(0, 36), /no data chunk/],
      [good.subarray(0, 8), /not a WAV file/],
      [new TextEncoder().encode('this is not audio at all'), /not a WAV file/],
      [Uint8Array.from(good).fill(0, 24, 28), /sample rate 0 Hz is not supported/],
    ];
    for (const [bytes, msg] of cases) {
      expect(() => parseWav(bytes, 'x.wav')).toThrow(msg);
      const r = await cliTranscribe(bytes, 'bad.wav');
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
    }
  }, 60_000);

  it('ten minutes of audio: transcribed in bounded memory; beyond the limit, a clear refusal', async () => {
    // 10 minutes of quiet noise at 16 kHz: every window goes through the VAD.
    const n = 16000 * 600;
    const x = new Float32Array(n);
    let seed = 1;
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      x[i] = ((seed / 2 ** 32) - 0.5) * 0.002;
    }
    const rss0 = process.memoryUsage().rss;
    const t = await transcribeAudio({ sampleRate: 16000, channels: [x] }, vad, rec);
    const grew = process.memoryUsage().rss - rss0;
    expect(t.text).toBe('');
    expect(grew).toBeLessThan(400 * 2 ** 20);
    const tooLong = encodeWav({ sampleRate: 8000, channels: [new Float32Array(8000 * (MAX_AUDIO_SECONDS + 5))] });
    expect(() => parseWav(tooLong, 'long.wav')).toThrow(/minutes long; the limit is 15 minutes/);
  }, 180_000);
});
