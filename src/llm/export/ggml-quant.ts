import { toHalf } from '../model/half.ts';

/** The weight types a GGUF export can write: float32, and llama.cpp's q8_0 and q4_0 blocks. */
export type GgufType = 'f32' | 'q8_0' | 'q4_0';
export const GGUF_TYPES: readonly GgufType[] = ['f32', 'q8_0', 'q4_0'];

/** ggml's block length for q4_0 and q8_0. */
export const QK = 32;

/**
 * ggml's block formats, as its reference quantisers write them: per 32 values an fp16 scale and
 * the codes. One loop over blocks for both; each type says how a block's scale and codes are made.
 */
function quantizeBlocks(x: Float32Array, blockBytes: number, block: (x: Float32Array, s: number, view: DataView, at: number) => number): Uint8Array {
  const nb = x.length / QK;
  const out = new Uint8Array(nb * blockBytes);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) view.setUint16(b * blockBytes, toHalf(block(x, b * QK, view, b * blockBytes + 2)), true);
  return out;
}

/** q4_0: scale d = (signed value of largest magnitude) / −8, codes round(x/d) + 8 in 4 bits; the block's first 16 values in the low nibbles. */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  return quantizeBlocks(x, 2 + QK / 2, (x, s, view, at) => {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      if (Math.abs(x[s + j]) > amax) {
        amax = Math.abs(x[s + j]);
        max = x[s + j];
      }
    }
    const d = max / -8;
    const id = d ? 1 / d : 0;
    for (let j = 0; j < QK / 2; j++) {
      const lo = Math.min(15, Math.trunc(x[s + j] * id + 8.5));
      const hi = Math.min(15, Math.trunc(x[s + QK / 2 + j] * id + 8.5));
      view.setUint8(at + j, lo | (hi << 4));
    }
    return d;
  });
}

/** q8_0: scale d = max|x| / 127, int8 codes round(x/d). */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  return quantizeBlocks(x, 2 + QK, (x, s, view, at) => {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[s + j]));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    for (let j = 0; j < QK; j++) {
      const v = x[s + j] * id;
      view.setInt8(at + j, Math.sign(v) * Math.round(Math.abs(v))); // C's roundf: halves away from zero
    }
    return d;
  });
}
