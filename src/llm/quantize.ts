/**
 * Blockwise symmetric int4 weights in onnxruntime's MatMulNBits layout: for each output feature
 * n (a row of the HF [out, in] weight) and each block of `blockSize` inputs, one float scale and
 * `blockSize` 4-bit codes q ∈ [0, 15] meaning (q − 8) · scale, two per byte, low nibble first.
 */
export interface Int4Weight {
  /** [N, kBlocks, blockSize / 2] */
  packed: Uint8Array;
  /** [N * kBlocks] */
  scales: Float32Array;
  n: number;
  k: number;
  blockSize: number;
  kBlocks: number;
}

export function quantizeInt4(w: Float32Array, n: number, k: number, blockSize = 32): Int4Weight {
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new Error(`block size must be a power of two ≥ 16, got ${blockSize}`);
  const kBlocks = Math.ceil(k / blockSize);
  const blob = blockSize / 2;
  const packed = new Uint8Array(n * kBlocks * blob);
  const scales = new Float32Array(n * kBlocks);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < kBlocks; b++) {
      const start = row * k + b * blockSize;
      const end = Math.min(row * k + k, start + blockSize);
      let amax = 0;
      for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(w[i]));
      // Symmetric around code 8: −8…7 → use 7 for the positive side so ±amax both fit.
      const scale = amax / 7 || 1;
      scales[row * kBlocks + b] = scale;
      const out = (row * kBlocks + b) * blob;
      for (let j = 0; j < blockSize; j++) {
        const v = start + j < end ? w[start + j] : 0;
        const q = Math.max(0, Math.min(15, Math.round(v / scale) + 8));
        if (j & 1) packed[out + (j >> 1)] |= q << 4;
        else packed[out + (j >> 1)] = q;
      }
    }
  }
  return { packed, scales, n, k, blockSize, kBlocks };
}

/** Back to float [N, K], exactly as onnxruntime reads the codes (for references and error checks). */
export function dequantizeInt4(q: Int4Weight): Float32Array {
  const { n, k, blockSize, kBlocks, packed, scales } = q;
  const out = new Float32Array(n * k);
  const blob = blockSize / 2;
  for (let row = 0; row < n; row++) {
    for (let i = 0; i < k; i++) {
      const b = Math.floor(i / blockSize);
      const j = i % blockSize;
      const byte = packed[(row * kBlocks + b) * blob + (j >> 1)];
      const code = j & 1 ? byte >> 4 : byte & 15;
      out[row * k + i] = (code - 8) * scales[row * kBlocks + b];
    }
  }
  return out;
}
