import { describe, expect, it } from 'vitest';
import { floatToPcm16, pcm16ToFloat, voicedSpan } from '../../src/audio/wav.ts';

describe('PCM16 bytes', () => {
  it('round-trip within one step, clip out-of-range samples, and read unaligned buffers', () => {
    const x = Float32Array.of(0, 0.5, -0.5, 1, -1, 2, -2);
    const bytes = floatToPcm16(x);
    expect(Array.from(new Int16Array(bytes.buffer))).toEqual([0, 16384, -16384, 32767, -32768, 32767, -32768]);
    // Node hands out pooled buffers at odd offsets: reading must not need alignment.
    const odd = new Uint8Array(bytes.length + 1);
    odd.set(bytes, 1);
    const back = pcm16ToFloat(odd.subarray(1));
    for (let i = 0; i < 5; i++) expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(1 / 32768);
  });
});

describe('voiced span', () => {
  it('is where the samples louder than −40 dBFS begin and end; a recording of padding alone has none', () => {
    const x = new Float32Array(100).fill(0.005); // a synthesiser's padding: quieter than any phoneme
    x[20] = -0.3;
    x[61] = 0.02;
    expect(voicedSpan(x)).toEqual({ start: 20, end: 62 });
    expect(voicedSpan(new Float32Array(100).fill(0.005))).toBeNull();
  });
});
