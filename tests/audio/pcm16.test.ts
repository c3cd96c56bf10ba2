import { describe, expect, it } from 'vitest';
import { floatToPcm16, pcm16ToFloat } from '../../src/audio/wav.ts';

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
