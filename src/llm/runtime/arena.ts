import type { KvFormat } from '../graph/contract.ts';
import { roundEven } from '../graph/quantize.ts';

/**
 * The K/V memory of every layer, as the graph reads it with no copy:
 *   keys         [K, D, capacity]  (transposed, so Q·Kᵀ is a plain MatMul)
 *   values       [K, capacity, D]
 * float32, or (int8 cache) codes with one scale per token and kv head:
 *   keyScales    [K, capacity]     each cached key is its codes × its scale
 *   valueScales  [K, capacity]     likewise each value
 * Only the step runner that feeds the graph holds it (in a worker thread by default); the cache's
 * bookkeeping (which slot holds which block's token) lives with the engine and sends it operations.
 */
export class Arena {
  readonly keys: (Float32Array | Int8Array)[] = [];
  readonly keyScales: Float32Array[] = [];
  readonly values: (Float32Array | Int8Array)[] = [];
  readonly valueScales: Float32Array[] = [];
  private cap = 0;

  constructor(
    readonly numLayers: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly format: KvFormat = 'fp32',
  ) {
    for (let l = 0; l < numLayers; l++) {
      this.keys.push(this.newCodes(0));
      this.keyScales.push(new Float32Array(0));
      this.values.push(this.newCodes(0));
      this.valueScales.push(new Float32Array(0));
    }
  }

  private newCodes(n: number): Float32Array | Int8Array {
    return this.format === 'int8' ? new Int8Array(n) : new Float32Array(n);
  }

  get capacity(): number {
    return this.cap;
  }

  /** A new arena of `cap` slots holding the first min(old, cap) slots of the old one, strided layouts kept. */
  resize(cap: number): void {
    const old = this.cap;
    const n = Math.min(old, cap);
    const { kvHeads: K, headDim: D } = this;
    for (let l = 0; l < this.numLayers; l++) {
      const k = this.newCodes(K * D * cap);
      const ks = this.keys[l];
      for (let row = 0; row < K * D; row++) k.set(ks.subarray(row * old, row * old + n) as never, row * cap);
      this.keys[l] = k;
      const v = this.newCodes(K * cap * D);
      const vs = this.values[l];
      for (let h = 0; h < K; h++) v.set(vs.subarray(h * old * D, (h * old + n) * D) as never, h * cap * D);
      this.values[l] = v;
      if (this.format === 'int8') {
        for (const scales of [this.keyScales, this.valueScales]) {
          const sc = new Float32Array(K * cap);
          for (let h = 0; h < K; h++) sc.set(scales[l].subarray(h * old, h * old + n), h * cap);
          scales[l] = sc;
        }
      }
    }
    this.cap = cap;
  }

  /** Copies slot from[i] to slot to[i] in every layer, in order. */
  copySlots(from: ArrayLike<number>, to: ArrayLike<number>): void {
    const { kvHeads: K, headDim: D } = this;
    const cap = this.cap;
    for (let l = 0; l < this.numLayers; l++) {
      const keys = this.keys[l];
      const scales = this.keyScales[l];
      const vScales = this.valueScales[l];
      const values = this.values[l];
      for (let i = 0; i < from.length; i++) {
        const a = from[i];
        const b = to[i];
        for (let hd = 0; hd < K * D; hd++) keys[hd * cap + b] = keys[hd * cap + a];
        if (this.format === 'int8') {
          for (let h = 0; h < K; h++) {
            scales[h * cap + b] = scales[h * cap + a];
            vScales[h * cap + b] = vScales[h * cap + a];
          }
        }
        for (let h = 0; h < K; h++) values.copyWithin((h * cap + b) * D, (h * cap + a) * D, (h * cap + a + 1) * D);
      }
    }
  }

  /**
   * Stores new tokens' K/V from a step's outputs, laid out [B, K, S, D] per layer: `writes` holds
   * (row b, token s, slot) triples. int8 cache: each key and value (one token, one kv head) gets the
   * scale that maps its largest |component| to 127, and codes rounded to nearest.
   */
  writeTokens(newKeys: Float32Array[], newValues: Float32Array[], writes: ArrayLike<number>, S: number): void {
    const { kvHeads: K, headDim: D } = this;
    const cap = this.cap;
    for (let l = 0; l < this.numLayers; l++) {
      const k = newKeys[l];
      const v = newValues[l];
      for (let w = 0; w < writes.length; w += 3) {
        const b = writes[w];
        const s = writes[w + 1];
        const slot = writes[w + 2];
        const base = (b * K * S + s) * D;
        if (this.format === 'int8') writeInt8(k, v, base, S * D, this.keys[l] as Int8Array, this.keyScales[l], this.values[l] as Int8Array, this.valueScales[l], K, D, cap, slot);
        else writeFloat(k, v, base, S * D, this.keys[l] as Float32Array, this.values[l] as Float32Array, K, D, cap, slot);
      }
    }
  }

  /** Applies operations in the order the cache's bookkeeping made them. */
  apply(ops: readonly ArenaOp[]): void {
    for (const op of ops) {
      if (op.op === 'resize') this.resize(op.cap);
      else this.copySlots(op.from, op.to);
    }
  }
}

/** Bytes a cached K or V component takes in this format, with its share of its vector's scale. */
export const componentBytes = (format: KvFormat, headDim: number): number => (format === 'int8' ? 1 + 4 / headDim : 4);

/** One token's K and V (source rows from, from + headStride, …) into float slot `slot` of one layer. */
function writeFloat(k: Float32Array, v: Float32Array, from: number, headStride: number, keys: Float32Array, values: Float32Array, K: number, D: number, cap: number, slot: number): void {
  for (let h = 0; h < K; h++) {
    const src = from + h * headStride;
    const kRow = h * D * cap + slot;
    for (let d = 0; d < D; d++) keys[kRow + d * cap] = k[src + d];
    values.set(v.subarray(src, src + D), (h * cap + slot) * D);
  }
}

/** The same into the int8 arena: codes and a scale for each (kv head, key or value). */
function writeInt8(k: Float32Array, v: Float32Array, from: number, headStride: number, keys: Int8Array, keyScales: Float32Array, values: Int8Array, valueScales: Float32Array, K: number, D: number, cap: number, slot: number): void {
  for (let h = 0; h < K; h++) {
    const src = from + h * headStride;
    keyScales[h * cap + slot] = quantizeInto(k, src, D, keys, h * D * cap + slot, cap);
    valueScales[h * cap + slot] = quantizeInto(v, src, D, values, (h * cap + slot) * D, 1);
  }
}

/**
 * Writes x[from .. from+n) as int8 codes to out[at + i·stride], scaled so the largest |x| is 127;
 * returns the scale. Every decode step runs this for each layer and kv head (57 344 values a token
 * on Qwen3-0.6B shapes), so it is small and monomorphic, multiplies by the inverse scale and rounds
 * with roundEven (quantize.ts): 0.17 ms a token in a loop of its own, where the arena's earlier general
 * loop (format checks and destructuring per write, Math.round) took 0.92.
 */
function quantizeInto(x: Float32Array, from: number, n: number, out: Int8Array, at: number, stride: number): number {
  let max = 0;
  for (let i = from; i < from + n; i++) {
    const a = Math.abs(x[i]);
    if (a > max) max = a;
  }
  if (max === 0) {
    for (let i = 0, o = at; i < n; i++, o += stride) out[o] = 0;
    return 0;
  }
  const inv = 127 / max;
  for (let i = from, o = at; i < from + n; i++, o += stride) out[o] = roundEven(x[i] * inv);
  return max / 127;
}

/** What the cache's bookkeeping asks of the arena, between graph runs. */
export type ArenaOp = { op: 'resize'; cap: number } | { op: 'copy'; from: number[]; to: number[] };

/** Where the cache sends its arena operations: an Arena applies them at once, a worker's runner queues them. */
export interface ArenaSink {
  resize(cap: number): void;
  copySlots(from: number[], to: number[]): void;
}
