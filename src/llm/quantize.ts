/**
 * Blockwise symmetric weights in onnxruntime's MatMulNBits layout (which GatherBlockQuantized
 * reads too): for each output feature n (a row of the HF [out, in] weight) and each block of
 * `blockSize` inputs, one float scale and `blockSize` codes q meaning (q − zero) · scale, where
 * zero = 2^(bits−1) (onnxruntime's default when no zero points are given).
 * - 4 bits: q ∈ [0, 15], two codes per byte, low nibble first.
 * - 8 bits: q ∈ [0, 255], one code per byte.
 */
export type QuantBits = 4 | 8;

export interface BlockQuantized {
  bits: QuantBits;
  /** [N, kBlocks, blockSize * bits / 8] */
  packed: Uint8Array;
  /** [N * kBlocks] */
  scales: Float32Array;
  n: number;
  k: number;
  blockSize: number;
  kBlocks: number;
}

export function quantizeBlockwise(w: Float32Array, n: number, k: number, bits: QuantBits, blockSize = 32): BlockQuantized {
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new Error(`block size must be a power of two ≥ 16, got ${blockSize}`);
  if (bits !== 4 && bits !== 8) throw new Error(`bits must be 4 or 8, got ${bits}`);
  if (w.length !== n * k) throw new Error(`weight has ${w.length} values, [${n}, ${k}] needs ${n * k}`);
  const kBlocks = Math.ceil(k / blockSize);
  const blob = (blockSize * bits) / 8;
  const zero = 1 << (bits - 1);
  // Symmetric: −zero…zero−1 → the positive side's last code bounds the scale so ±amax both fit.
  const qMax = zero - 1;
  const codeMax = (1 << bits) - 1;
  const packed = new Uint8Array(n * kBlocks * blob);
  const scales = new Float32Array(n * kBlocks);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < kBlocks; b++) {
      const start = row * k + b * blockSize;
      const end = Math.min(row * k + k, start + blockSize);
      let amax = 0;
      for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(w[i]));
      const scale = amax / qMax || 1;
      scales[row * kBlocks + b] = scale;
      const out = (row * kBlocks + b) * blob;
      for (let j = 0; j < blockSize; j++) {
        const v = start + j < end ? w[start + j] : 0;
        const q = Math.max(0, Math.min(codeMax, Math.round(v / scale) + zero));
        if (bits === 8) packed[out + j] = q;
        else if (j & 1) packed[out + (j >> 1)] |= q << 4;
        else packed[out + (j >> 1)] = q;
      }
    }
  }
  return { bits, packed, scales, n, k, blockSize, kBlocks };
}

/** Back to float [N, K], exactly as onnxruntime reads the codes (for references and error checks). */
export function dequantizeBlockwise(q: BlockQuantized): Float32Array {
  const { n, k, blockSize, kBlocks, packed, scales, bits } = q;
  const out = new Float32Array(n * k);
  const blob = (blockSize * bits) / 8;
  const zero = 1 << (bits - 1);
  for (let row = 0; row < n; row++) {
    for (let i = 0; i < k; i++) {
      const b = Math.floor(i / blockSize);
      const j = i % blockSize;
      const at = (row * kBlocks + b) * blob;
      const code = bits === 8 ? packed[at + j] : j & 1 ? packed[at + (j >> 1)] >> 4 : packed[at + (j >> 1)] & 15;
      out[row * k + i] = (code - zero) * scales[row * kBlocks + b];
    }
  }
  return out;
}

/**
 * Symmetric int8 per output channel, laid out for MatMulInteger: codes [K, N] (the HF [N, K]
 * weight transposed), one scale per output n, code × scale ≈ w (|error| ≤ scale / 2).
 */
export interface ChannelQuantized {
  /** [K, N] */
  codes: Int8Array;
  /** [N] */
  scales: Float32Array;
}

export function quantizePerChannel(w: Float32Array, n: number, k: number): ChannelQuantized {
  if (w.length !== n * k) throw new Error(`weight has ${w.length} values, [${n}, ${k}] needs ${n * k}`);
  const codes = new Int8Array(k * n);
  const scales = new Float32Array(n);
  for (let row = 0; row < n; row++) {
    let amax = 0;
    for (let i = row * k; i < row * k + k; i++) amax = Math.max(amax, Math.abs(w[i]));
    const scale = amax / 127 || 1;
    scales[row] = scale;
    for (let i = 0; i < k; i++) codes[i * n + row] = Math.max(-127, Math.min(127, Math.round(w[row * k + i] / scale)));
  }
  return { codes, scales };
}

/** Back to float [N, K] (for references and error checks). */
export function dequantizePerChannel(q: ChannelQuantized, n: number, k: number): Float32Array {
  const out = new Float32Array(n * k);
  for (let row = 0; row < n; row++) for (let i = 0; i < k; i++) out[row * k + i] = q.codes[i * n + row] * q.scales[row];
  return out;
}
