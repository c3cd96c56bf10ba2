import { describe, expect, it } from 'vitest';
import { WhisperRecognizer } from '../../src/asr/whisper.ts';
import { VitsEngine } from '../../src/tts/engine.ts';
import { SpeechEngineError } from '../../src/errors.ts';

// No weights can be downloaded here: what must hold is a clear, non-retryable error offline.
describe('neural speech models without their weights', () => {
  it('Whisper offline says what is missing and what to use instead', async () => {
    const err = await WhisperRecognizer.load({ model: 'onnx-community/whisper-base.en', offline: true }).catch((e) => e);
    expect(err).toBeInstanceOf(SpeechEngineError);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/onnx-community\/whisper-base.en could not be loaded offline .* use --engine pocketsphinx/);
  });

  it('the neural voice offline says the same', async () => {
    const err = await new VitsEngine({ offline: true }).synthesize('hello').catch((e) => e);
    expect(err).toBeInstanceOf(SpeechEngineError);
    expect(err.message).toMatch(/Xenova\/mms-tts-eng could not be loaded offline .* --engine espeak-ng/);
  });
});
