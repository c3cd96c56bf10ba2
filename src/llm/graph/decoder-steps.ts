import type { DecoderConfig } from '../model/config.ts';
import { GRAPH_IO, type HeadFormat, type KvFormat, type RopeMode, type WeightFormat } from './contract.ts';
import { DT, type GraphBuilder } from './onnx-builder.ts';
import { GRAPH_BLOCK, quantizeForGraph, quantizePerChannel } from './quantize.ts';
import { ropeTables } from './rope.ts';
import { matMulNBits, yieldToLoop } from './vocab-tables.ts';

/** How to build a decoder graph. */
export interface BuildOptions {
  ropeMode: RopeMode;
  /** The K/V cache; default defaultKvFormat(weights, ropeMode). */
  kv?: KvFormat;
  weights?: WeightFormat;
  /**
   * int4 only: 'int8' (default) quantises activations per block for MLAS's integer kernels, about
   * twice as fast on CPU, and two rows cost little more than one; 'fp32' computes in float on the
   * dequantised weights (exact against a reference with the same weights).
   */
  int4Compute?: 'int8' | 'fp32';
  /** Embeddings and LM head; default defaultHeadFormat(weights). Quantised heads follow int4Compute too. */
  head?: HeadFormat;
  /** Largest position any query may take (size of the RoPE tables). */
  maxPositions: number;
  onProgress?: (done: number, total: number, what: string) => void;
}

/** A checkpoint's tensors by HF name, checked against the shape the config implies. */
export interface WeightSource {
  load(name: string, shape: number[]): Float32Array;
  pieces(name: string, shape: number[]): Iterable<Float32Array>;
}

/** Weight names of one decoder layer in HF's Llama/Qwen layout. */
export function layerNames(l: number) {
  const p = `model.layers.${l}`;
  return {
    inNorm: `${p}.input_layernorm.weight`,
    q: `${p}.self_attn.q_proj`,
    k: `${p}.self_attn.k_proj`,
    v: `${p}.self_attn.v_proj`,
    o: `${p}.self_attn.o_proj`,
    qNorm: `${p}.self_attn.q_norm.weight`,
    kNorm: `${p}.self_attn.k_norm.weight`,
    postNorm: `${p}.post_attention_layernorm.weight`,
    gate: `${p}.mlp.gate_proj.weight`,
    up: `${p}.mlp.up_proj.weight`,
    down: `${p}.mlp.down_proj.weight`,
  };
}

/** [out,in] → [in,out], blocked so both sides stay in cache. */
function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const dst = new Float32Array(rows * cols);
  const T = 64;
  for (let r0 = 0; r0 < rows; r0 += T) {
    for (let c0 = 0; c0 < cols; c0 += T) {
      const rEnd = Math.min(r0 + T, rows);
      const cEnd = Math.min(c0 + T, cols);
      for (let r = r0; r < rEnd; r++) for (let c = c0; c < cEnd; c++) dst[c * rows + r] = src[r * cols + c];
    }
  }
  return dst;
}

type Options = BuildOptions & { head: HeadFormat; kv: KvFormat };

/**
 * The named steps a decoder graph is made of (decoder-graph.ts reads as the recipe): the step's
 * inputs and runtime dims, the RoPE tables, how new queries score the cache (per RoPE design and
 * K/V format), linear layers (per weight format), norms, self-attention and the MLP. Graph-wide
 * nodes are made once, in the constructor, in the order the graph lists them.
 */
export class DecoderSteps {
  readonly inputIds: string;
  readonly positionIds: string;
  readonly logitsIndex: string;
  readonly Bd: string;
  private readonly rotateQuery: boolean;
  private readonly keyIndex: string;
  private readonly mask: string;
  private readonly slotDelta: string;
  private readonly ONE: string;
  private readonly Sd: string;
  private readonly Cd: string;
  private readonly cosHalf: string;
  private readonly sinHalf: string;
  private readonly int8Kv: boolean;
  private readonly linear: 'fp32' | 'int4' | 'int8';
  private readonly c8: { zero: string; step: string; tiny: string; mid: string; full: string; one: string } | null;
  /** (q [B,NH,S,D] pre-rotation, past keys [K,D,C], their scales) → scores [K,B,G,S,C]. */
  private readonly pastScores: (q: string, pastKey: string, keyScale: string) => string;
  private readonly maskB: string;
  private readonly splitPastNew: string;
  private readonly scale: string;
  private readonly byPast: string;
  private readonly byNew: string;
  private readonly newScoresShape: string;
  private readonly attnShape: string;
  readonly accuracyLevel: number;
  private readonly eps: { float: number };

  constructor(
    private readonly g: GraphBuilder,
    private readonly cfg: DecoderConfig,
    private readonly weights: WeightSource,
    opts: Options,
  ) {
    const { numHeads: NH, numKvHeads: K, headDim: D } = cfg;
    const G = NH / K;
    this.eps = { float: cfg.rmsNormEps };
    const io = GRAPH_IO;
    const rotateQuery = (this.rotateQuery = opts.ropeMode === 'rotate-query');
    this.inputIds = g.input(io.inputIds, DT.INT64, ['B', 'S']);
    this.positionIds = g.input(io.positionIds, DT.INT64, ['B', 'S']);
    this.slotDelta = rotateQuery ? g.input(io.slotDelta, DT.INT64, ['B', 'NS']) : '';
    this.keyIndex = rotateQuery ? g.input(io.keySlot, DT.INT64, ['B', 'C']) : g.input(io.keyPositions, DT.INT64, ['B', 'C']);
    this.mask = g.input(io.attentionMask, DT.FLOAT, ['B', 'S', 'C_plus_S']);
    this.logitsIndex = g.input(io.logitsIndex, DT.INT64, ['B', 'R']);

    // Runtime dims as 1-D int64 tensors, computed once and shared by every layer.
    this.ONE = g.constInt64([1]);
    this.Bd = this.dimOf(this.inputIds, 0);
    this.Sd = this.dimOf(this.inputIds, 1);
    this.Cd = this.dimOf(this.keyIndex, 1);

    // RoPE tables [P, D], gathered once per step and shared by every layer. rotate-query rotates a
    // key at its block's base plus its place in the block, and a query by up to a base more than its
    // view position: both stay below twice the position limit.
    const P = rotateQuery ? 2 * opts.maxPositions : opts.maxPositions;
    const { cos, sin } = ropeTables(cfg, P);
    // Both halves of a row repeat the same frequencies: onnxruntime's fused RotaryEmbedding (one
    // kernel instead of six elementwise ops, three times a layer) takes the first half.
    const firstHalf = (t: Float32Array) => {
      const out = new Float32Array(P * (D / 2));
      for (let p = 0; p < P; p++) out.set(t.subarray(p * D, p * D + D / 2), p * (D / 2));
      return out;
    };
    this.cosHalf = g.weight('rope.cos.half', firstHalf(cos), [P, D / 2]);
    this.sinHalf = g.weight('rope.sin.half', firstHalf(sin), [P, D / 2]);

    // Attention runs kv-head-major ([K,B,…]) so that all rows' queries meet the shared cache in one
    // matmul per kv head: a batched step reads the cache once, not once per row.
    this.int8Kv = opts.kv === 'int8';
    this.linear = opts.weights ?? 'fp32';
    // Constants of 8-bit activations: codes around 128, one scale per row, so the largest |x| is 127.
    this.c8 = this.int8Kv || this.linear === 'int8' ? { zero: g.bytes('q8.zero', DT.UINT8, Uint8Array.of(128), []), step: g.constFloat([127], []), tiny: g.constFloat([1e-12], []), mid: g.constFloat([128], []), full: g.constFloat([255], []), one: g.constFloat([1], []) } : null;
    this.pastScores = rotateQuery ? this.pastScoresRotatingQueries(K, G, NH, D) : this.pastScoresRotatingKeys(K, G, D);
    const c = (v: number[]) => g.constInt64(v);
    this.maskB = g.o('Unsqueeze', [this.mask, c([0, 2])]); // [1,B,1,S,C+S]
    this.splitPastNew = g.o('Concat', [this.Cd, this.Sd], { axis: 0 });
    this.scale = cfg.qkNorm ? '' : g.constFloat([1 / Math.sqrt(D)], []); // qk-norm models fold it into q's norm
    this.byPast = g.o('Concat', [c([K, -1]), this.Cd], { axis: 0 }); // [K,B*G*S,C]
    this.byNew = g.o('Concat', [c([K]), this.Bd, c([-1]), this.Sd], { axis: 0 }); // [K,B,G*S,S]
    this.newScoresShape = g.o('Concat', [c([K]), this.Bd, c([G]), this.Sd, this.Sd], { axis: 0 }); // [K,B,G,S,S]
    this.attnShape = g.o('Concat', [c([K]), this.Bd, c([G]), this.Sd, c([D])], { axis: 0 }); // [K,B,G,S,D]
    this.accuracyLevel = opts.int4Compute === 'fp32' ? 0 : 4;
  }

  private c(v: number[]): string {
    return this.g.constInt64(v);
  }

  private dimOf(t: string, axis: number): string {
    const g = this.g;
    return g.o('Gather', [g.o('Shape', [t]), g.constInt64([axis])], { axis: 0 });
  }

  /** x [N, heads, S, D] rotated at positions [N, S]. */
  private rotary(x: string, positions: string): string {
    return this.g.o('RotaryEmbedding', [x, positions, this.cosHalf, this.sinHalf], { interleaved: 0 }, 'com.microsoft');
  }

  /** x [..., n] → uint8 codes around 128 and one scale per row [..., 1]: x ≈ (codes − 128) · scale. */
  private rowCodes(x: string): { codes: string; scale: string } {
    const g = this.g;
    const k = this.c8!;
    const scale = g.o('Div', [g.o('Max', [g.o('ReduceMax', [g.o('Abs', [x])], { axes: [-1], keepdims: 1 }), k.tiny]), k.step]);
    return { codes: g.o('Cast', [g.o('Add', [g.o('Round', [g.o('Div', [x, scale])]), k.mid])], { to: DT.UINT8 }), scale };
  }

  /** q [K,M,D] · keys [K,D,C]: in float, or (int8 cache) each q row quantised around 128 with its own scale. */
  private scoreKeys(q: string, keys: string, keyScale: string): string {
    const g = this.g;
    const q8 = this.int8Kv ? this.c8 : null;
    if (!q8) return g.o('MatMul', [q, keys]);
    const { codes, scale } = this.rowCodes(q); // scale [K,M,1]
    const dot = g.o('Cast', [g.o('MatMulInteger', [codes, keys, q8.zero])], { to: DT.FLOAT }); // [K,M,C]
    return g.o('Mul', [g.o('Mul', [dot, scale]), keyScale]);
  }

  /**
   * probabilities [K,M,C] · values [K,C,D]: in float, or (int8 values) each probability times its
   * value's scale, quantised per row to 8 bits (all ≥ 0, so 0..255 with no offset).
   */
  private weighValues(p: string, values: string, valueScale: string): string {
    const g = this.g;
    const q8 = this.int8Kv ? this.c8 : null;
    if (!q8) return g.o('MatMul', [p, values]);
    const pv = g.o('Mul', [p, valueScale]);
    const pScale = g.o('Div', [g.o('Max', [g.o('ReduceMax', [pv], { axes: [-1], keepdims: 1 }), q8.tiny]), q8.full]); // [K,M,1]
    const pCodes = g.o('Cast', [g.o('Round', [g.o('Div', [pv, pScale])])], { to: DT.UINT8 });
    return g.o('Mul', [g.o('Cast', [g.o('MatMulInteger', [pCodes, values])], { to: DT.FLOAT }), pScale]);
  }

  /** rotate-query: one rotated query per view slot, one matmul over all rows and slots, then a per-key pick. */
  private pastScoresRotatingQueries(K: number, G: number, NH: number, D: number): (q: string, pastKey: string, keyScale: string) => string {
    const { g, ONE, Bd, Sd } = this;
    const c = (v: number[]) => this.c(v);
    const NSd = this.dimOf(this.slotDelta, 1);
    // Query position per slot: [B·NS,S] = position_ids[B,1,S] + slot_delta[B,NS,1]
    const qPos = g.o('Reshape', [g.o('Add', [g.o('Unsqueeze', [this.positionIds, ONE]), g.o('Unsqueeze', [this.slotDelta, c([2])])]), g.o('Concat', [c([-1]), Sd], { axis: 0 })]);
    const qSlotsShape = g.o('Concat', [Bd, NSd, c([NH]), Sd, c([D])], { axis: 0 }); // [B,NS,NH,S,D]
    const qEachShape = g.o('Concat', [c([-1, NH]), Sd, c([D])], { axis: 0 }); // [B·NS,NH,S,D]
    // Per cache slot, a one-hot over view slots [1,B,1,NS,1,C]: multiplying by it and summing
    // over NS picks each key's score made with its own slot's query (cheaper than an expanded
    // int64 index for GatherElements when S is large).
    const slotRange = g.o('Unsqueeze', [g.o('Range', [g.constInt64([0], []), g.o('Squeeze', [NSd]), g.constInt64([1], [])]), ONE]); // [NS,1]
    const oneHot = g.o('Cast', [g.o('Equal', [g.o('Unsqueeze', [this.keyIndex, ONE]), slotRange])], { to: DT.FLOAT }); // [B,NS,C]
    const slotPick = g.o('Unsqueeze', [oneHot, c([0, 2, 4])]); // [1,B,1,NS,1,C]
    const slotsShape = g.o('Concat', [Bd, NSd, c([K, G]), Sd, c([D])], { axis: 0 }); // [B,NS,K,G,S,D]
    const scoresShape = g.o('Concat', [c([K]), Bd, c([G]), NSd, Sd, c([-1])], { axis: 0 }); // [K,B,G,NS,S,C]
    return (q, pastKey, keyScale) => {
      const qEach = g.o('Reshape', [g.o('Expand', [g.o('Unsqueeze', [q, ONE]), qSlotsShape]), qEachShape]);
      const qSlots = this.rotary(qEach, qPos);
      const qByHead = g.o('Transpose', [g.o('Reshape', [qSlots, slotsShape])], { perm: [2, 0, 3, 1, 4, 5] }); // [K,B,G,NS,S,D]
      const sAll = g.o('Reshape', [this.scoreKeys(g.o('Reshape', [qByHead, c([K, -1, D])]), pastKey, keyScale), scoresShape]); // [K,B,G,NS,S,C]
      return g.o('ReduceSum', [g.o('Mul', [sAll, slotPick]), c([3])], { keepdims: 0 });
    };
  }

  /** rotate-keys: each row rotates the cache its own way, so every row reads it anyway. */
  private pastScoresRotatingKeys(K: number, G: number, D: number): (q: string, pastKey: string) => string {
    const { g, ONE } = this;
    const c = (v: number[]) => this.c(v);
    // cos/sin of every cache slot's position in each row's view, laid out like the keys: [B,1,D,C].
    const perm = { perm: [0, 2, 1] };
    const full = (half: string) => {
      const h = g.o('Gather', [half, this.keyIndex], { axis: 0 }); // [B,C,D/2]
      return g.o('Unsqueeze', [g.o('Transpose', [g.o('Concat', [h, h], { axis: -1 })], perm), ONE]);
    };
    const cosK = full(this.cosHalf);
    const sinK = full(this.sinHalf);
    const halfSplit = c([D / 2, D / 2]);
    const rope = (x: string, cs: string, sn: string, axis: number): string => {
      const [x1, x2] = g.op('Split', [x, halfSplit], { axis }, 2);
      const rotated = g.o('Concat', [g.o('Neg', [x2]), x1], { axis });
      return g.o('Add', [g.o('Mul', [x, cs]), g.o('Mul', [rotated, sn])]);
    };
    const byG = g.o('Concat', [c([0, K, G, -1]), this.Cd], { axis: 0 });
    return (q, pastKey) => {
      const kRot = rope(pastKey, cosK, sinK, 1); // [B,K,D,C]: the per-step pass over the cache
      const qRot = g.o('Reshape', [this.rotary(q, this.positionIds), c([0, K, -1, D])]); // [B,K,G*S,D]
      return g.o('Transpose', [g.o('Reshape', [g.o('MatMul', [qRot, kRot]), byG])], { perm: [1, 0, 2, 3, 4] }); // [K,B,G,S,C]
    };
  }

  /**
   * x [B,S,in] · int8 codes [in,out] with per-output scales: each row of x quantised to 8 bits
   * around 128 with its own scale (a row's outlier costs only that row precision), MLAS's integer
   * GEMM with the weight scales applied as it writes, then the row scales.
   */
  private rowQuantizedMatMul(x: string, codes: string, scales: string): string {
    const rows = this.rowCodes(x); // scale [B,S,1]
    return this.g.o('Mul', [this.g.o('MatMulIntegerToFloat', [rows.codes, codes, this.c8!.one, scales, this.c8!.zero], {}, 'com.microsoft'), rows.scale]);
  }

  /**
   * y = x·Wᵀ (+ b) for HF weights `names` of shapes [outs[i], inp], as one matrix whose output is
   * split back: projections of one input (q, k, v; gate, up) are one kernel call instead of several
   * (a decode step is hundreds of small calls, each with its own overhead), and stacking rows
   * changes no row's blockwise codes.
   */
  async projectAll(input: string, names: string[], outs: number[], inp: number, bias = false): Promise<string[]> {
    const { g, linear } = this;
    const load = this.weights.load;
    await yieldToLoop(); // one matrix at a time: reading and quantising each takes tens of ms
    const out = outs.reduce((a, b) => a + b, 0);
    /** The tensors `ns` ([outs[i], cols] each, or [outs[i]] for biases) one under another; a single one as it loads. */
    const stacked = (ns: string[], cols: number | null): Float32Array => {
      const shape = (rows: number) => (cols === null ? [rows] : [rows, cols]);
      if (ns.length === 1) return load(ns[0], shape(out));
      const all = new Float32Array(out * (cols ?? 1));
      let row = 0;
      ns.forEach((n, i) => {
        all.set(load(n, shape(outs[i])), row * (cols ?? 1));
        row += outs[i];
      });
      return all;
    };
    const w = stacked(names, inp);
    const name = names.join('+');
    let y: string;
    if (linear === 'int4') {
      const q = quantizeForGraph(w, out, inp, 4);
      const b = g.bytes(`${name}.q4`, DT.UINT8, q.packed, [out, q.kBlocks, GRAPH_BLOCK[4] / 2]);
      const sc = g.weight(`${name}.q4.scales`, q.scales, [out * q.kBlocks]);
      const zp = g.bytes(`${name}.q4.zp`, DT.UINT8, q.zeroPoints!, [q.zeroPoints!.length]);
      y = matMulNBits(g, input, b, sc, zp, inp, out, 4, this.accuracyLevel);
    } else if (linear === 'int8') {
      const q = quantizePerChannel(w, out, inp);
      const codes = g.bytes(`${name}.q8c`, DT.INT8, new Uint8Array(q.codes.buffer), [inp, out]);
      y = this.rowQuantizedMatMul(input, codes, g.weight(`${name}.q8c.scales`, q.scales, [out]));
    } else {
      y = g.o('MatMul', [input, g.weight(`${name}.T`, transpose2d(w, out, inp), [inp, out])]);
    }
    if (bias) {
      const biasNames = names.map((n) => n.replace(/\.weight$/, '.bias'));
      y = g.o('Add', [y, g.weight(biasNames.join('+'), stacked(biasNames, null), [out])]);
    }
    return names.length === 1 ? [y] : g.op('Split', [y, g.constInt64(outs)], { axis: -1 }, names.length);
  }

  async project(input: string, name: string, out: number, inp: number, bias = false): Promise<string> {
    return (await this.projectAll(input, [name], [out], inp, bias))[0];
  }

  private normWeight(weightName: string, n: number, times = 1): string {
    const w = this.weights.load(weightName, [n]);
    return this.g.weight(times === 1 ? weightName : `${weightName}×${times}`, times === 1 ? w : w.map((v) => v * times), [n]);
  }

  rmsNorm(input: string, weightName: string, n: number, times = 1): string {
    return this.g.o('SimplifiedLayerNormalization', [input, this.normWeight(weightName, n, times)], { axis: -1, epsilon: this.eps });
  }

  /**
   * The residual stream x + y and its RMS norm, in one kernel: a decode step is ≈ 2 000 small
   * kernel calls, each with its own overhead, and this takes two of them a layer.
   */
  addAndNorm(x: string, y: string, weightName: string, n: number): { sum: string; normed: string } {
    const [normed, sum] = this.g.opSparse('SkipSimplifiedLayerNormalization', [y, x, this.normWeight(weightName, n)], { epsilon: this.eps }, [true, false, false, true], 'com.microsoft');
    return { sum, normed };
  }

  /**
   * Layer l's self-attention on the normed input h [B,S,H]: q, k, v; the new tokens against each
   * other and against the cache, in one softmax; the values. Returns the heads merged [B,S,NH·D]
   * (before o_proj) and the layer's new keys and values [B,K,S,D] for the cache.
   */
  async selfAttention(l: number, h: string): Promise<{ merged: string; newKeys: string; newValues: string }> {
    const { g, cfg, positionIds } = this;
    const { hiddenSize: H, numHeads: NH, numKvHeads: K, headDim: D } = cfg;
    const G = NH / K;
    const c = (v: number[]) => this.c(v);
    const n = layerNames(l);
    const [q0, k0, v0s] = await this.projectAll(h, [n.q, n.k, n.v].map((m) => `${m}.weight`), [NH * D, K * D, K * D], H, cfg.qkvBias);
    let q = g.o('Reshape', [q0, c([0, 0, NH, D])]); // [B,S,NH,D]
    let k = g.o('Reshape', [k0, c([0, 0, K, D])]); // [B,S,K,D]
    const v0 = g.o('Reshape', [v0s, c([0, 0, K, D])]);
    if (cfg.qkNorm) {
      // The scores' 1/√D rides on q's norm weight: one kernel less a layer.
      q = g.o('Transpose', [this.rmsNorm(q, n.qNorm, D, 1 / Math.sqrt(D))], { perm: [0, 2, 1, 3] }); // [B,NH,S,D], pre-scaled
      k = this.rmsNorm(k, n.kNorm, D);
    } else {
      q = g.o('Mul', [g.o('Transpose', [q], { perm: [0, 2, 1, 3] }), this.scale]); // [B,NH,S,D], pre-scaled
    }
    k = g.o('Transpose', [k], { perm: [0, 2, 1, 3] }); // [B,K,S,D]
    const v = g.o('Transpose', [v0], { perm: [0, 2, 1, 3] }); // [B,K,S,D]
    const kRot = this.rotary(k, positionIds);

    // New tokens against each other (causality comes from the mask), kv-head-major: the
    // transposes are of q and k (S × D per head), never of the S × S scores.
    const qNew = g.o('Reshape', [g.o('Transpose', [g.o('Reshape', [this.rotary(q, positionIds), c([0, K, G, -1, D])])], { perm: [1, 0, 2, 3, 4] }), c([K, 0, -1, D])]); // [K,B,G*S,D]
    const kNewT = g.o('Transpose', [kRot], { perm: [1, 0, 3, 2] }); // [K,B,D,S]
    const sNew = g.o('Reshape', [g.o('MatMul', [qNew, kNewT]), this.newScoresShape]); // [K,B,G,S,S]
    // New tokens against the cache.
    const io = GRAPH_IO;
    const int8Kv = this.int8Kv;
    const pastKey = g.input(io.pastKey(l), int8Kv ? DT.INT8 : DT.FLOAT, [K, D, 'C']);
    const sPast = this.pastScores(q, pastKey, int8Kv ? g.input(io.pastKeyScale(l), DT.FLOAT, [K, 1, 'C']) : ''); // [K,B,G,S,C]

    const scores = g.o('Add', [g.o('Concat', [sPast, sNew], { axis: -1 }), this.maskB]); // [K,B,G,S,C+S]
    const probs = g.o('Softmax', [scores], { axis: -1 });
    const [pPast, pNew] = g.op('Split', [probs, this.splitPastNew], { axis: -1 }, 2);
    const pastV = g.input(io.pastValue(l), int8Kv ? DT.INT8 : DT.FLOAT, [K, 'C', D]);
    const pastVScale = int8Kv ? g.input(io.pastValueScale(l), DT.FLOAT, [K, 1, 'C']) : '';
    const attnPast = this.weighValues(g.o('Reshape', [pPast, this.byPast]), pastV, pastVScale); // [K,B*G*S,D]: every row's probabilities against the values, read once
    const vNewT = g.o('Transpose', [v], { perm: [1, 0, 2, 3] }); // [K,B,S,D]
    const attnNew = g.o('MatMul', [g.o('Reshape', [pNew, this.byNew]), vNewT]); // [K,B,G*S,D]
    const attn = g.o('Add', [g.o('Reshape', [attnPast, this.attnShape]), g.o('Reshape', [attnNew, this.attnShape])]); // [K,B,G,S,D]
    const merged = g.o('Reshape', [g.o('Transpose', [attn], { perm: [1, 3, 0, 2, 4] }), c([0, 0, NH * D])]); // [B,S,K*G*D]
    return { merged, newKeys: this.rotateQuery ? kRot : k, newValues: v };
  }

  /** Layer l's SwiGLU MLP on the normed input h: down(silu(gate(h)) · up(h)). */
  async mlp(l: number, h: string): Promise<string> {
    const g = this.g;
    const { hiddenSize: H, intermediateSize: I } = this.cfg;
    const n = layerNames(l);
    const [gate, up] = await this.projectAll(h, [n.gate, n.up], [I, I], H);
    const act = g.o('Mul', [g.o('Mul', [gate, g.o('Sigmoid', [gate])]), up]);
    return this.project(act, n.down, H, I);
  }
}
