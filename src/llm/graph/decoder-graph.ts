import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { UnsupportedModelError } from '../../errors.ts';
import type { DecoderConfig } from '../model/config.ts';
import { DT, GraphBuilder } from './onnx-builder.ts';
import { ropeTables } from './rope.ts';
import { GRAPH_BLOCK, quantizeForGraph, quantizePerChannel, type QuantBits } from './quantize.ts';
import { checkedTensor, readTensorF32, readTensorF32Pieces, type TensorInfo } from '../model/safetensors.ts';
import { GRAPH_FORMAT_VERSION, GRAPH_IO, defaultHeadFormat, defaultKvFormat, type HeadFormat, type KvFormat, type RopeMode, type WeightFormat } from './contract.ts';

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

/** Weight names of one decoder layer in HF's Llama/Qwen layout. */
function layerNames(l: number) {
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

/**
 * Builds the decoder as ONNX (fp32) into `outDir/model.onnx` (+ `.data`). Writes to a temporary
 * folder first and renames, so an interrupted build never leaves a half graph in the cache.
 */
export async function buildDecoderGraph(
  cfg: DecoderConfig,
  tensors: Map<string, TensorInfo>,
  outDir: string,
  opts: BuildOptions,
): Promise<void> {
  const checked = (name: string, shape: number[]): TensorInfo => checkedTensor(tensors, name, shape, cfg.modelType);
  const weights: WeightSource = {
    load: (name, shape) => readTensorF32(checked(name, shape)),
    pieces: (name, shape) => readTensorF32Pieces(checked(name, shape)),
  };
  if (tensors.has('lm_head.weight') === false && !cfg.tieWordEmbeddings) {
    throw new UnsupportedModelError('checkpoint has no lm_head.weight and tie_word_embeddings is false');
  }

  const head = opts.head ?? defaultHeadFormat(opts.weights);
  const kv = opts.kv ?? defaultKvFormat(opts.weights, opts.ropeMode);
  if (kv === 'int8' && opts.ropeMode !== 'rotate-query') throw new UnsupportedModelError('an int8 K/V cache needs the rotate-query RoPE design (rotate-keys rotates the stored keys in float every step)');
  const tmp = `${outDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const g = new GraphBuilder(join(tmp, 'model.onnx'));
  try {
    await emitDecoder(g, cfg, weights, { ...opts, head, kv });
    g.finish(`${cfg.modelType}_decoder`, {
      'asyncvoice.format': String(GRAPH_FORMAT_VERSION),
      'asyncvoice.model_type': cfg.modelType,
      'asyncvoice.rope_mode': opts.ropeMode,
      'asyncvoice.weights': opts.weights ?? 'fp32',
      'asyncvoice.head': head,
      'asyncvoice.kv': kv,
    });
  } catch (e) {
    g.abort();
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  rmSync(outDir, { recursive: true, force: true });
  renameSync(tmp, outDir);
}

/** A checkpoint's tensors by HF name, checked against the shape the config implies. */
interface WeightSource {
  load(name: string, shape: number[]): Float32Array;
  pieces(name: string, shape: number[]): Iterable<Float32Array>;
}

/** Lets timers and sockets run between layers: a server stays responsive while its graph builds. */
const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

async function emitDecoder(
  g: GraphBuilder,
  cfg: DecoderConfig,
  { load, pieces }: WeightSource,
  opts: BuildOptions & { head: HeadFormat; kv: KvFormat },
): Promise<void> {
  const { hiddenSize: H, numHeads: NH, numKvHeads: K, headDim: D, intermediateSize: I, vocabSize: V } = cfg;
  const G = NH / K;
  const eps = { float: cfg.rmsNormEps };
  const total = cfg.numLayers + 2;
  opts.onProgress?.(0, total, 'embeddings');

  const io = GRAPH_IO;
  const rotateQuery = opts.ropeMode === 'rotate-query';
  const inputIds = g.input(io.inputIds, DT.INT64, ['B', 'S']);
  const positionIds = g.input(io.positionIds, DT.INT64, ['B', 'S']);
  const slotDelta = rotateQuery ? g.input(io.slotDelta, DT.INT64, ['B', 'NS']) : '';
  const keyIndex = rotateQuery ? g.input(io.keySlot, DT.INT64, ['B', 'C']) : g.input(io.keyPositions, DT.INT64, ['B', 'C']);
  const mask = g.input(io.attentionMask, DT.FLOAT, ['B', 'S', 'C_plus_S']);
  const logitsIndex = g.input(io.logitsIndex, DT.INT64, ['B', 'R']);

  // Runtime dims as 1-D int64 tensors, computed once and shared by every layer.
  const ONE = g.constInt64([1]);
  const dimOf = (t: string, axis: number) => g.o('Gather', [g.o('Shape', [t]), g.constInt64([axis])], { axis: 0 });
  const Bd = dimOf(inputIds, 0);
  const Sd = dimOf(inputIds, 1);
  const Cd = dimOf(keyIndex, 1);
  const c = (v: number[]) => g.constInt64(v);

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
  const cosHalf = g.weight('rope.cos.half', firstHalf(cos), [P, D / 2]);
  const sinHalf = g.weight('rope.sin.half', firstHalf(sin), [P, D / 2]);
  /** x [N, heads, S, D] rotated at positions [N, S]. */
  const rotary = (x: string, positions: string): string => g.o('RotaryEmbedding', [x, positions, cosHalf, sinHalf], { interleaved: 0 }, 'com.microsoft');

  // How each layer scores its new tokens' queries against the cache: (q [B,NH,S,D] pre-rotation,
  // past keys [K,D,C]) → scores [K,B,G,S,C]. Attention runs kv-head-major ([K,B,…]) so that all
  // rows' queries meet the shared cache in one matmul per kv head: a batched step reads the cache
  // once, not once per row.
  let pastScores: (q: string, pastKey: string, keyScale: string) => string;
  /** q [K,M,D] · keys [K,D,C]: in float, or (int8 cache) each q row quantised around 128 with its own scale. */
  const int8Kv = opts.kv === 'int8';
  const linear = opts.weights ?? 'fp32';
  // Constants of 8-bit activations: codes around 128, one scale per row, so the largest |x| is 127.
  const c8 = int8Kv || linear === 'int8' ? { zero: g.bytes('q8.zero', DT.UINT8, Uint8Array.of(128), []), step: g.constFloat([127], []), tiny: g.constFloat([1e-12], []), mid: g.constFloat([128], []), full: g.constFloat([255], []), one: g.constFloat([1], []) } : null;
  /** x [..., n] → uint8 codes around 128 and one scale per row [..., 1]: x ≈ (codes − 128) · scale. */
  const rowCodes = (x: string): { codes: string; scale: string } => {
    const k = c8!;
    const scale = g.o('Div', [g.o('Max', [g.o('ReduceMax', [g.o('Abs', [x])], { axes: [-1], keepdims: 1 }), k.tiny]), k.step]);
    return { codes: g.o('Cast', [g.o('Add', [g.o('Round', [g.o('Div', [x, scale])]), k.mid])], { to: DT.UINT8 }), scale };
  };
  const q8 = int8Kv ? c8 : null;
  const scoreKeys = (q: string, keys: string, keyScale: string): string => {
    if (!q8) return g.o('MatMul', [q, keys]);
    const { codes, scale } = rowCodes(q); // scale [K,M,1]
    const dot = g.o('Cast', [g.o('MatMulInteger', [codes, keys, q8.zero])], { to: DT.FLOAT }); // [K,M,C]
    return g.o('Mul', [g.o('Mul', [dot, scale]), keyScale]);
  };
  /**
   * probabilities [K,M,C] · values [K,C,D]: in float, or (int8 values) each probability times its
   * value's scale, quantised per row to 8 bits (all ≥ 0, so 0..255 with no offset).
   */
  const weighValues = (p: string, values: string, valueScale: string): string => {
    if (!q8) return g.o('MatMul', [p, values]);
    const pv = g.o('Mul', [p, valueScale]);
    const pScale = g.o('Div', [g.o('Max', [g.o('ReduceMax', [pv], { axes: [-1], keepdims: 1 }), q8.tiny]), q8.full]); // [K,M,1]
    const pCodes = g.o('Cast', [g.o('Round', [g.o('Div', [pv, pScale])])], { to: DT.UINT8 });
    return g.o('Mul', [g.o('Cast', [g.o('MatMulInteger', [pCodes, values])], { to: DT.FLOAT }), pScale]);
  };
  if (rotateQuery) {
    const NSd = dimOf(slotDelta, 1);
    // Query position per slot: [B·NS,S] = position_ids[B,1,S] + slot_delta[B,NS,1]
    const qPos = g.o('Reshape', [g.o('Add', [g.o('Unsqueeze', [positionIds, ONE]), g.o('Unsqueeze', [slotDelta, c([2])])]), g.o('Concat', [c([-1]), Sd], { axis: 0 })]);
    const qSlotsShape = g.o('Concat', [Bd, NSd, c([NH]), Sd, c([D])], { axis: 0 }); // [B,NS,NH,S,D]
    const qEachShape = g.o('Concat', [c([-1, NH]), Sd, c([D])], { axis: 0 }); // [B·NS,NH,S,D]
    // Per cache slot, a one-hot over view slots [1,B,1,NS,1,C]: multiplying by it and summing
    // over NS picks each key's score made with its own slot's query (cheaper than an expanded
    // int64 index for GatherElements when S is large).
    const slotRange = g.o('Unsqueeze', [g.o('Range', [g.constInt64([0], []), g.o('Squeeze', [NSd]), g.constInt64([1], [])]), ONE]); // [NS,1]
    const oneHot = g.o('Cast', [g.o('Equal', [g.o('Unsqueeze', [keyIndex, ONE]), slotRange])], { to: DT.FLOAT }); // [B,NS,C]
    const slotPick = g.o('Unsqueeze', [oneHot, c([0, 2, 4])]); // [1,B,1,NS,1,C]
    const slotsShape = g.o('Concat', [Bd, NSd, c([K, G]), Sd, c([D])], { axis: 0 }); // [B,NS,K,G,S,D]
    const scoresShape = g.o('Concat', [c([K]), Bd, c([G]), NSd, Sd, c([-1])], { axis: 0 }); // [K,B,G,NS,S,C]
    pastScores = (q, pastKey, keyScale) => {
      // One rotated query per view slot, one matmul over all rows and slots, then a per-key pick.
      const qEach = g.o('Reshape', [g.o('Expand', [g.o('Unsqueeze', [q, ONE]), qSlotsShape]), qEachShape]);
      const qSlots = rotary(qEach, qPos);
      const qByHead = g.o('Transpose', [g.o('Reshape', [qSlots, slotsShape])], { perm: [2, 0, 3, 1, 4, 5] }); // [K,B,G,NS,S,D]
      const sAll = g.o('Reshape', [scoreKeys(g.o('Reshape', [qByHead, c([K, -1, D])]), pastKey, keyScale), scoresShape]); // [K,B,G,NS,S,C]
      return g.o('ReduceSum', [g.o('Mul', [sAll, slotPick]), c([3])], { keepdims: 0 });
    };
  } else {
    // cos/sin of every cache slot's position in each row's view, laid out like the keys: [B,1,D,C].
    const perm = { perm: [0, 2, 1] };
    const full = (half: string) => {
      const h = g.o('Gather', [half, keyIndex], { axis: 0 }); // [B,C,D/2]
      return g.o('Unsqueeze', [g.o('Transpose', [g.o('Concat', [h, h], { axis: -1 })], perm), ONE]);
    };
    const cosK = full(cosHalf);
    const sinK = full(sinHalf);
    const halfSplit = c([D / 2, D / 2]);
    const rope = (x: string, cs: string, sn: string, axis: number): string => {
      const [x1, x2] = g.op('Split', [x, halfSplit], { axis }, 2);
      const rotated = g.o('Concat', [g.o('Neg', [x2]), x1], { axis });
      return g.o('Add', [g.o('Mul', [x, cs]), g.o('Mul', [rotated, sn])]);
    };
    const byG = g.o('Concat', [c([0, K, G, -1]), Cd], { axis: 0 });
    pastScores = (q, pastKey) => {
      // Each row rotates the cache its own way, so here every row reads it anyway.
      const kRot = rope(pastKey, cosK, sinK, 1); // [B,K,D,C]: the per-step pass over the cache
      const qRot = g.o('Reshape', [rotary(q, positionIds), c([0, K, -1, D])]); // [B,K,G*S,D]
      return g.o('Transpose', [g.o('Reshape', [g.o('MatMul', [qRot, kRot]), byG])], { perm: [1, 0, 2, 3, 4] }); // [K,B,G,S,C]
    };
  }
  const maskB = g.o('Unsqueeze', [mask, c([0, 2])]); // [1,B,1,S,C+S]
  const splitPastNew = g.o('Concat', [Cd, Sd], { axis: 0 });
  const scale = cfg.qkNorm ? '' : g.constFloat([1 / Math.sqrt(D)], []); // qk-norm models fold it into q's norm
  const byPast = g.o('Concat', [c([K, -1]), Cd], { axis: 0 }); // [K,B*G*S,C]
  const byNew = g.o('Concat', [c([K]), Bd, c([-1]), Sd], { axis: 0 }); // [K,B,G*S,S]
  const newScoresShape = g.o('Concat', [c([K]), Bd, c([G]), Sd, Sd], { axis: 0 }); // [K,B,G,S,S]
  const attnShape = g.o('Concat', [c([K]), Bd, c([G]), Sd, c([D])], { axis: 0 }); // [K,B,G,S,D]

  const accuracyLevel = opts.int4Compute === 'fp32' ? 0 : 4;
  const { embed, head } = await vocabTables(g, cfg, pieces, opts.head, accuracyLevel);
  let x = embed(inputIds); // [B,S,H]
  /**
   * x [B,S,in] · int8 codes [in,out] with per-output scales: each row of x quantised to 8 bits
   * around 128 with its own scale (a row's outlier costs only that row precision), MLAS's integer
   * GEMM with the weight scales applied as it writes, then the row scales.
   */
  const rowQuantizedMatMul = (x: string, codes: string, scales: string): string => {
    const rows = rowCodes(x); // scale [B,S,1]
    return g.o('Mul', [g.o('MatMulIntegerToFloat', [rows.codes, codes, c8!.one, scales, c8!.zero], {}, 'com.microsoft'), rows.scale]);
  };
  /**
   * y = x·Wᵀ (+ b) for HF weights `names` of shapes [outs[i], inp], as one matrix whose output is
   * split back: projections of one input (q, k, v; gate, up) are one kernel call instead of several
   * (a decode step is hundreds of small calls, each with its own overhead), and stacking rows
   * changes no row's blockwise codes.
   */
  const projectAll = async (input: string, names: string[], outs: number[], inp: number, bias = false): Promise<string[]> => {
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
      y = matMulNBits(g, input, b, sc, zp, inp, out, 4, accuracyLevel);
    } else if (linear === 'int8') {
      const q = quantizePerChannel(w, out, inp);
      const codes = g.bytes(`${name}.q8c`, DT.INT8, new Uint8Array(q.codes.buffer), [inp, out]);
      y = rowQuantizedMatMul(input, codes, g.weight(`${name}.q8c.scales`, q.scales, [out]));
    } else {
      y = g.o('MatMul', [input, g.weight(`${name}.T`, transpose2d(w, out, inp), [inp, out])]);
    }
    if (bias) {
      const biasNames = names.map((n) => n.replace(/\.weight$/, '.bias'));
      y = g.o('Add', [y, g.weight(biasNames.join('+'), stacked(biasNames, null), [out])]);
    }
    return names.length === 1 ? [y] : g.op('Split', [y, g.constInt64(outs)], { axis: -1 }, names.length);
  };
  const project = async (input: string, name: string, out: number, inp: number, bias = false): Promise<string> => (await projectAll(input, [name], [out], inp, bias))[0];
  const normWeight = (weightName: string, n: number, times = 1): string => {
    const w = load(weightName, [n]);
    return g.weight(times === 1 ? weightName : `${weightName}×${times}`, times === 1 ? w : w.map((v) => v * times), [n]);
  };
  const rmsNorm = (input: string, weightName: string, n: number, times = 1): string =>
    g.o('SimplifiedLayerNormalization', [input, normWeight(weightName, n, times)], { axis: -1, epsilon: eps });
  /**
   * The residual stream x + y and its RMS norm, in one kernel: a decode step is ≈ 2 000 small
   * kernel calls, each with its own overhead, and this takes two of them a layer.
   */
  const addAndNorm = (x: string, y: string, weightName: string, n: number): { sum: string; normed: string } => {
    const [normed, sum] = g.opSparse('SkipSimplifiedLayerNormalization', [y, x, normWeight(weightName, n)], { epsilon: eps }, [true, false, false, true], 'com.microsoft');
    return { sum, normed };
  };

  // The residual stream enters each layer as x plus the last layer's MLP output, both added and
  // normed by one kernel (the first layer's input is the embeddings alone).
  let pending: string | null = null;
  const newKv: string[] = []; // [B,K,S,D] each: layer 0's keys, its values, layer 1's keys, …
  for (let l = 0; l < cfg.numLayers; l++) {
    opts.onProgress?.(l + 1, total, `layer ${l}`);
    const n = layerNames(l);
    let h: string;
    if (pending) ({ sum: x, normed: h } = addAndNorm(x, pending, n.inNorm, H));
    else h = rmsNorm(x, n.inNorm, H);
    const [q0, k0, v0s] = await projectAll(h, [n.q, n.k, n.v].map((m) => `${m}.weight`), [NH * D, K * D, K * D], H, cfg.qkvBias);
    let q = g.o('Reshape', [q0, c([0, 0, NH, D])]); // [B,S,NH,D]
    let k = g.o('Reshape', [k0, c([0, 0, K, D])]); // [B,S,K,D]
    const v0 = g.o('Reshape', [v0s, c([0, 0, K, D])]);
    if (cfg.qkNorm) {
      // The scores' 1/√D rides on q's norm weight: one kernel less a layer.
      q = g.o('Transpose', [rmsNorm(q, n.qNorm, D, 1 / Math.sqrt(D))], { perm: [0, 2, 1, 3] }); // [B,NH,S,D], pre-scaled
      k = rmsNorm(k, n.kNorm, D);
    } else {
      q = g.o('Mul', [g.o('Transpose', [q], { perm: [0, 2, 1, 3] }), scale]); // [B,NH,S,D], pre-scaled
    }
    k = g.o('Transpose', [k], { perm: [0, 2, 1, 3] }); // [B,K,S,D]
    const v = g.o('Transpose', [v0], { perm: [0, 2, 1, 3] }); // [B,K,S,D]
    const kRot = rotary(k, positionIds);
    newKv.push(rotateQuery ? kRot : k, v);

    // New tokens against each other (causality comes from the mask), kv-head-major: the
    // transposes are of q and k (S × D per head), never of the S × S scores.
    const qNew = g.o('Reshape', [g.o('Transpose', [g.o('Reshape', [rotary(q, positionIds), c([0, K, G, -1, D])])], { perm: [1, 0, 2, 3, 4] }), c([K, 0, -1, D])]); // [K,B,G*S,D]
    const kNewT = g.o('Transpose', [kRot], { perm: [1, 0, 3, 2] }); // [K,B,D,S]
    const sNew = g.o('Reshape', [g.o('MatMul', [qNew, kNewT]), newScoresShape]); // [K,B,G,S,S]
    // New tokens against the cache.
    const pastKey = g.input(io.pastKey(l), int8Kv ? DT.INT8 : DT.FLOAT, [K, D, 'C']);
    const sPast = pastScores(q, pastKey, int8Kv ? g.input(io.pastKeyScale(l), DT.FLOAT, [K, 1, 'C']) : ''); // [K,B,G,S,C]

    const scores = g.o('Add', [g.o('Concat', [sPast, sNew], { axis: -1 }), maskB]); // [K,B,G,S,C+S]
    const probs = g.o('Softmax', [scores], { axis: -1 });
    const [pPast, pNew] = g.op('Split', [probs, splitPastNew], { axis: -1 }, 2);
    const pastV = g.input(io.pastValue(l), int8Kv ? DT.INT8 : DT.FLOAT, [K, 'C', D]);
    const pastVScale = int8Kv ? g.input(io.pastValueScale(l), DT.FLOAT, [K, 1, 'C']) : '';
    const attnPast = weighValues(g.o('Reshape', [pPast, byPast]), pastV, pastVScale); // [K,B*G*S,D]: every row's probabilities against the values, read once
    const vNewT = g.o('Transpose', [v], { perm: [1, 0, 2, 3] }); // [K,B,S,D]
    const attnNew = g.o('MatMul', [g.o('Reshape', [pNew, byNew]), vNewT]); // [K,B,G*S,D]
    const attn = g.o('Add', [g.o('Reshape', [attnPast, attnShape]), g.o('Reshape', [attnNew, attnShape])]); // [K,B,G,S,D]
    const merged = g.o('Reshape', [g.o('Transpose', [attn], { perm: [1, 3, 0, 2, 4] }), c([0, 0, NH * D])]); // [B,S,K*G*D]
    const post = addAndNorm(x, await project(merged, `${n.o}.weight`, H, NH * D, cfg.oBias), n.postNorm, H);
    x = post.sum;
    const [gate, up] = await projectAll(post.normed, [n.gate, n.up], [I, I], H);
    const act = g.o('Mul', [g.o('Mul', [gate, g.o('Sigmoid', [gate])]), up]);
    pending = await project(act, n.down, H, I);
  }
  g.bindOutput(g.o('Concat', newKv, { axis: 0 }), io.newKv);
  g.output(io.newKv, DT.FLOAT, ['KV_rows', K, 'S', D]);

  await yieldToLoop();
  opts.onProgress?.(total - 1, total, 'lm head');
  if (pending) x = g.o('Add', [x, pending]);
  // Logits only where asked: gather rows before the final norm and the (large) vocab projection.
  const picked = g.o('GatherND', [x, g.o('Unsqueeze', [logitsIndex, c([-1])])], { batch_dims: 1 }); // [B,R,H]
  const normed = rmsNorm(picked, 'model.norm.weight', H);
  const flat = g.o('Reshape', [normed, c([-1, H])]);
  const logits2d = head(flat);
  const logitsShape = g.o('Concat', [Bd, c([-1, V])], { axis: 0 });
  const logits = g.o('Reshape', [logits2d, logitsShape]);
  g.bindOutput(logits, io.logits);
  g.output(io.logits, DT.FLOAT, ['B', 'R', V]);
  opts.onProgress?.(total, total, 'done');
}

/** y = x·Wᵀ for W [n, k] stored as blockwise codes and scales (see quantize.ts). */
function matMulNBits(g: GraphBuilder, x: string, codes: string, scales: string, zeroPoints: string | null, k: number, n: number, bits: QuantBits, accuracyLevel: number): string {
  const inputs = zeroPoints ? [x, codes, scales, zeroPoints] : [x, codes, scales];
  return g.o('MatMulNBits', inputs, { K: k, N: n, bits, block_size: GRAPH_BLOCK[bits], accuracy_level: accuracyLevel }, 'com.microsoft');
}

/**
 * The token embeddings and the LM head: the two largest tensors by far, streamed in row pieces
 * (a 600 MB table never sits whole in memory). Quantised, each piece is packed as it is read.
 */
async function vocabTables(
  g: GraphBuilder,
  cfg: DecoderConfig,
  pieces: WeightSource['pieces'],
  format: HeadFormat,
  accuracyLevel: number,
): Promise<{ embed: (ids: string) => string; head: (flat: string) => string }> {
  const { hiddenSize: H, vocabSize: V } = cfg;
  const EMBED = 'model.embed_tokens.weight';
  const HEAD = cfg.tieWordEmbeddings ? EMBED : 'lm_head.weight';
  if (format === 'fp32') {
    const embedT = await g.streamWeight(EMBED, [V, H], pieces(EMBED, [V, H]), yieldToLoop);
    const headT = cfg.tieWordEmbeddings ? embedT : await g.streamWeight(HEAD, [V, H], pieces(HEAD, [V, H]), yieldToLoop);
    return {
      embed: (ids) => g.o('Gather', [embedT, ids], { axis: 0 }),
      head: (flat) => g.o('Gemm', [flat, headT], { transB: 1 }),
    };
  }
  const bits: QuantBits = format === 'int8' ? 8 : 4;
  const block = GRAPH_BLOCK[bits];
  const kBlocks = Math.ceil(H / block);
  const blob = (block * bits) / 8;
  const zpBytes = Math.ceil(kBlocks / 2);
  /** Packs one table: codes [V, kBlocks, blob] streamed, scales [V, kBlocks] (and int4's zero points [V, zpBytes]) after them. */
  const table = async (name: string): Promise<{ codes: string; scales: string; zeroPoints: string | null }> => {
    const scaleParts: Float32Array[] = [];
    const zpParts: Uint8Array[] = [];
    const packedPieces = function* () {
      for (const rows of pieces(name, [V, H])) {
        const q = quantizeForGraph(rows, rows.length / H, H, bits);
        scaleParts.push(q.scales);
        if (q.zeroPoints) zpParts.push(q.zeroPoints);
        yield q.packed;
      }
    };
    const codes = await g.streamBytes(`${name}.q${bits}`, DT.UINT8, 1, [V, kBlocks, blob], packedPieces(), yieldToLoop);
    const concat = <T extends Float32Array | Uint8Array>(parts: T[], all: T): T => {
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      return all;
    };
    const scales = g.weight(`${name}.q${bits}.scales`, concat(scaleParts, new Float32Array(V * kBlocks)), [V, kBlocks]);
    const zeroPoints = zpParts.length ? g.bytes(`${name}.q${bits}.zp`, DT.UINT8, concat(zpParts, new Uint8Array(V * zpBytes)), [V, zpBytes]) : null;
    return { codes, scales, zeroPoints };
  };
  const embedT = await table(EMBED);
  const headT = cfg.tieWordEmbeddings ? embedT : await table(HEAD);
  // GatherBlockQuantized reads the codes as [V, kBlocks · blob] bytes with blocks along that last
  // axis; MatMulNBits reads the same bytes as [V, kBlocks, blob] and the zero points flat.
  const gatherCodes = g.alias(`${EMBED}.q${bits}.2d`, embedT.codes, [V, kBlocks * blob]);
  const gatherInputs = embedT.zeroPoints ? [gatherCodes, '', embedT.scales, embedT.zeroPoints] : [gatherCodes, '', embedT.scales];
  const headZp = headT.zeroPoints && g.alias(`${headT.zeroPoints}.flat`, headT.zeroPoints, [V * zpBytes]);
  const padded = kBlocks * block;
  return {
    embed: (ids) => {
      const inputs = [...gatherInputs];
      inputs[1] = ids;
      const rows = g.o('GatherBlockQuantized', inputs, { gather_axis: 0, quantize_axis: 1, block_size: block, bits }, 'com.microsoft'); // [B,S,padded]
      return padded === H ? rows : g.o('Slice', [rows, g.constInt64([0]), g.constInt64([H]), g.constInt64([-1])]);
    },
    head: (flat) => matMulNBits(g, flat, headT.codes, headT.scales, headZp, H, V, bits, accuracyLevel),
  };
}
