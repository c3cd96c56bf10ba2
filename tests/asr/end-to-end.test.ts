import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliOut } from '../helpers/cli.ts';
import { encodeWav } from '../../src/audio/wav.ts';
import { EspeakNgEngine } from '../../src/tts/engine.ts';
import { scratchDir } from '../helpers/models.ts';
import { needTools } from '../helpers/tools.ts';
import { SPOKEN_QUESTIONS } from '../../bench/spoken-questions.ts';
import { wordErrors } from '../../src/asr/word-errors.ts';

const root = scratchDir('asyncvoice-e2e-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('espeak-ng → WAV → asyncvoice transcribe --engine pocketsphinx', () => {
  beforeAll(() => needTools('espeak-ng', 'pocketsphinx_continuous'));

  it('recovers the sentences with an overall word error rate of at most 35 %', async () => {
    // espeak-ng's Klatt voice: pocketsphinx's acoustic model hears its default voice poorly.
    const tts = new EspeakNgEngine({ voice: 'en-us+klatt', wordsPerMinute: 150 });
    let errors = 0;
    let words = 0;
    const lines: string[] = [];
    for (const [i, s] of SPOKEN_QUESTIONS.entries()) {
      const speech = await tts.synthesize(s);
      const file = join(root, `q${i}.wav`);
      writeFileSync(file, encodeWav({ sampleRate: speech.sampleRate, channels: [speech.pcm] }));
      const stdout = await cliOut(['transcribe', file, '--engine', 'pocketsphinx', '--json']);
      const out = JSON.parse(stdout);
      expect(out.segments.length).toBeGreaterThan(0);
      for (const seg of out.segments) {
        expect(seg.startMs).toBeGreaterThanOrEqual(0);
        expect(seg.endMs).toBeGreaterThan(seg.startMs);
        expect(seg.endMs).toBeLessThanOrEqual(speech.durationMs + 200);
      }
      const w = wordErrors(s, out.text);
      errors += w.errors;
      words += w.words;
      lines.push(`  "${s}" → "${out.text}" (${w.errors}/${w.words})`);
    }
    const wer = errors / words;
    console.log(`pocketsphinx on espeak-ng speech: WER ${(100 * wer).toFixed(1)} % (${errors}/${words} words)\n${lines.join('\n')}`);
    expect(wer).toBeLessThanOrEqual(0.35);
  }, 180_000);
});
