import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAsrInput } from '../../src/audio/resample.ts';
import { PocketsphinxRecognizer } from '../../src/asr/pocketsphinx.ts';
import { wordErrors } from '../../src/asr/word-errors.ts';
import { EspeakNgEngine } from '../../src/tts/engine.ts';
import { needTools } from '../helpers/tools.ts';
import { SPOKEN_QUESTIONS } from '../helpers/spoken-questions.ts';

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
