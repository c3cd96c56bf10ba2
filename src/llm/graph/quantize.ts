/**
 * Blockwise weights in onnxruntime's MatMulNBits layout (which GatherBlockQuantized reads too):
 * for each output feature n (a row of the HF [out, in] weight) and each block of `blockSize`
 * inputs, one float scale, `blockSize` codes q and a zero point z, each weight meaning
 * (q − z) · scale.
 * - 4 bits: q ∈ [0, 15], two codes per byte, low nibble first.
 * - 8 bits: q ∈ [0, 255], one code per byte.
 * - symmetric: z = 2^(bits−1) (onnxruntime's default when no zero points are given).
 * - with zero points (4 bits only): z ∈ [0, 15] per block, fitted with the scale (see fitAsymmetric).
 */
export type QuantBits = 4 | 8;

export interface BlockQuantized {
  bits: QuantBits;
  /** [N, kBlocks, blockSize * bits / 8] */
  packed: Uint8Array;
  /** [N * kBlocks] */
  scales: Float32Array;
  /** 4 bits with zero points: [N, ceil(kBlocks / 2)], two per byte, low nibble first (MatMulNBits' layout) */
  zeroPoints?: Uint8Array;
  n: number;
  k: number;
  blockSize: number;
  kBlocks: number;
}

/**
 * Block lengths of the graph's blockwise formats. int4: 64 inputs with a fitted zero point (see
 * fitAsymmetric), as accurate as ggml's q4_0 on normal and heavy-tailed weights while MLAS's int8
 * kernels read 5 bits a weight instead of the 6 of 32-value blocks (its packed layout keeps a float
 * scale and a float block sum per block): decode reads that whole packed layout every token.
 * int8 (the head option): 32, symmetric.
 */
export const GRAPH_BLOCK = { 4: 64, 8: 32 } as const;
/** Packs a [n, k] weight in the blockwise format of `bits` (see GRAPH_BLOCK). */
export const quantizeForGraph = (w: Float32Array, n: number, k: number, bits: QuantBits): BlockQuantized => quantizeBlockwise(w, n, k, bits, GRAPH_BLOCK[bits], { zeroPoints: bits === 4 });

export function quantizeBlockwise(w: Float32Array, n: number, k: number, bits: QuantBits, blockSize = 32, opts: { zeroPoints?: boolean } = {}): BlockQuantized {
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new Error(`block size must be a power of two ≥ 16, got ${blockSize}`);
  if (bits !== 4 && bits !== 8) throw new Error(`bits must be 4 or 8, got ${bits}`);
  if (w.length !== n * k) throw new Error(`weight has ${w.length} values, [${n}, ${k}] needs ${n * k}`);
  if (opts.zeroPoints && bits !== 4) throw new Error('zero points are for 4-bit codes only');
  const kBlocks = Math.ceil(k / blockSize);
  const blob = (blockSize * bits) / 8;
  const zero = 1 << (bits - 1);
  // Symmetric: −zero…zero−1 → the positive side's last code bounds the scale so ±amax both fit.
  const qMax = zero - 1;
  const codeMax = (1 << bits) - 1;
  const packed = new Uint8Array(n * kBlocks * blob);
  const scales = new Float32Array(n * kBlocks);
  const zpBytes = Math.ceil(kBlocks / 2);
  const zeroPoints = opts.zeroPoints ? new Uint8Array(n * zpBytes) : undefined;
  const block = new Float64Array(blockSize);
  const codes = new Uint8Array(blockSize);
  const fit = { scale: 1, zero: 8 };
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < kBlocks; b++) {
      const start = row * k + b * blockSize;
      const len = Math.min(row * k + k, start + blockSize) - start;
      // A ragged last block is padded with zeros; the kernels' padded activations are zero too, so
      // the fit serves only the real values.
      for (let j = 0; j < blockSize; j++) block[j] = j < len ? w[start + j] : 0;
      let scale: number;
      let z = zero;
      if (zeroPoints) {
        fitAsymmetric(block.subarray(0, len), fit);
        scale = fit.scale;
        z = fit.zero;
        zeroPoints[row * zpBytes + (b >> 1)] |= b & 1 ? z << 4 : z;
      } else {
        let amax = 0;
        for (let j = 0; j < blockSize; j++) amax = Math.max(amax, Math.abs(block[j]));
        scale = amax / qMax || 1;
      }
      scales[row * kBlocks + b] = scale;
      encode(block, Math.fround(scale), z, codeMax, codes);
      const out = (row * kBlocks + b) * blob;
      for (let j = 0; j < blockSize; j++) {
        if (bits === 8) packed[out + j] = codes[j];
        else if (j & 1) packed[out + (j >> 1)] |= codes[j] << 4;
        else packed[out + (j >> 1)] = codes[j];
      }
    }
  }
  return { bits, packed, scales, zeroPoints, n, k, blockSize, kBlocks };
}

/** Codes of x at this scale and zero point: nearest, ties to even, clamped to [0, codeMax]. */
function encode(x: Float64Array, scale: number, zero: number, codeMax: number, out: Uint8Array): void {
  const inv = 1 / scale;
  for (let j = 0; j < x.length; j++) {
    const r = roundEven(x[j] * inv) + zero;
    out[j] = r < 0 ? 0 : r > codeMax ? codeMax : r;
  }
}

// Adding and taking away 1.5 · 2^52 leaves a double rounded to the nearest integer (ties to even)
// for |v| < 2^51: several times faster than Math.round in the quantisers' inner loops (here and
// the arena's int8 K/V writes).
const ROUNDER = 6755399441055744;
export const roundEven = (v: number): number => v + ROUNDER - ROUNDER;

/** Where fitAsymmetric starts: the block's whole min–max range, and 90 % of it. */
const FIT_STARTS = [1, 0.9] as const;

/**
 * Scale and integer zero point of a 4-bit block, least squared error found cheaply: from the
 * block's min–max range and from 90 % of it (clipping the two extremes often pays), each refined
 * twice by a least-squares fit of x ≈ scale · q + offset to the codes it gave. On normal and
 * heavy-tailed weights this puts 64-value blocks within ≈ 2 % of ggml's q4_0 (32-value blocks,
 * the accuracy llama.cpp users take) and ≈ 10 % under symmetric 32-value blocks, while MLAS
 * reads ≈ 17 % fewer bytes a token (tests/llm/int4.test.ts, bench:peer).
 */
function fitAsymmetric(x: Float64Array, best: { scale: number; zero: number }): void {
  const n = x.length;
  let lo = Infinity;
  let hi = -Infinity;
  let sx = 0;
  for (let j = 0; j < n; j++) {
    lo = Math.min(lo, x[j]);
    hi = Math.max(hi, x[j]);
    sx += x[j];
  }
  if (!(hi - lo > 1e-30 * Math.max(1, Math.abs(hi)))) {
    // A constant block: symmetric codes hold it exactly (all-zero blocks too).
    best.scale = Math.abs(hi) / 7 || 1;
    best.zero = 8;
    return;
  }
  let bestErr = Infinity;
  for (const ratio of FIT_STARTS) {
    const mid = (lo + hi) / 2;
    const half = ((hi - lo) / 2) * ratio;
    let scale = Math.fround((2 * half) / 15);
    let zero = Math.max(0, Math.min(15, Math.round(-(mid - half) / scale)));
    for (let it = 0; ; it++) {
      // One pass: the codes this scale and zero give (as encode rounds them), their squared
      // error, and the sums a least-squares refit needs.
      let err = 0;
      let sq = 0;
      let sqq = 0;
      let sqx = 0;
      const inv = 1 / scale;
      for (let j = 0; j < n; j++) {
        const r = roundEven(x[j] * inv) + zero;
        const q = r < 0 ? 0 : r > 15 ? 15 : r;
        const d = (q - zero) * scale - x[j];
        err += d * d;
        sq += q;
        sqq += q * q;
        sqx += q * x[j];
      }
      if (err < bestErr) {
        bestErr = err;
        best.scale = scale;
        best.zero = zero;
      }
      if (it === 2) break;
      const den = n * sqq - sq * sq;
      if (den <= 0) break;
      const s = (n * sqx - sq * sx) / den;
      if (!(s > 0)) break;
      scale = Math.fround(s);
      zero = Math.max(0, Math.min(15, Math.round(-(sx - s * sq) / n / s)));
    }
  }
}

/** Back to float [N, K], exactly as onnxruntime reads the codes (for references and error checks). */
export function dequantizeBlockwise(q: BlockQuantized): Float32Array {
  const { n, k, blockSize, kBlocks, packed, scales, bits, zeroPoints } = q;
  const out = new Float32Array(n * k);
  const blob = (blockSize * bits) / 8;
  const zpBytes = Math.ceil(kBlocks / 2);
  for (let row = 0; row < n; row++) {
    for (let i = 0; i < k; i++) {
      const b = Math.floor(i / blockSize);
      const j = i % blockSize;
      const at = (row * kBlocks + b) * blob;
      const code = bits === 8 ? packed[at + j] : j & 1 ? packed[at + (j >> 1)] >> 4 : packed[at + (j >> 1)] & 15;
      const zp = zeroPoints ? (zeroPoints[row * zpBytes + (b >> 1)] >> (b & 1 ? 4 : 0)) & 15 : 1 << (bits - 1);
      out[row * k + i] = (code - zp) * scales[row * kBlocks + b];
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
