import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { UnsupportedModelError } from '../../errors.ts';
import type { DecoderConfig } from '../model/config.ts';
import { checkedTensor, readTensorF32, readTensorF32Pieces, type TensorInfo } from '../model/safetensors.ts';
import { DecoderSteps, layerNames, type BuildOptions, type WeightSource } from './decoder-steps.ts';
import { DT, GraphBuilder } from './onnx-builder.ts';
import { vocabTables, yieldToLoop } from './vocab-tables.ts';
import { GRAPH_FORMAT_VERSION, GRAPH_IO, defaultHeadFormat, defaultKvFormat, type HeadFormat, type KvFormat } from './contract.ts';

export type { BuildOptions };

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

/**
 * The decoder as a recipe of named steps (decoder-steps.ts): the step's inputs, the token
 * embeddings, then per layer a norm, self-attention against the new tokens and the cache, o_proj
 * with the residual and the next norm, the MLP; then the final norm and the LM head, only at the
 * positions asked for. Every layer's new keys and values leave as one output.
 */
async function emitDecoder(g: GraphBuilder, cfg: DecoderConfig, weights: WeightSource, opts: BuildOptions & { head: HeadFormat; kv: KvFormat }): Promise<void> {
  const { hiddenSize: H, numHeads: NH, numKvHeads: K, headDim: D, vocabSize: V } = cfg;
  const total = cfg.numLayers + 2;
  opts.onProgress?.(0, total, 'embeddings');
  const steps = new DecoderSteps(g, cfg, weights, opts);
  const { embed, head } = await vocabTables(g, cfg, weights.pieces, opts.head, steps.accuracyLevel);
  let x = embed(steps.inputIds); // [B,S,H]

  // The residual stream enters each layer as x plus the last layer's MLP output, both added and
  // normed by one kernel (the first layer's input is the embeddings alone).
  let pending: string | null = null;
  const newKv: string[] = []; // [B,K,S,D] each: layer 0's keys, its values, layer 1's keys, …
  for (let l = 0; l < cfg.numLayers; l++) {
    opts.onProgress?.(l + 1, total, `layer ${l}`);
    const n = layerNames(l);
    let h: string;
    if (pending) ({ sum: x, normed: h } = steps.addAndNorm(x, pending, n.inNorm, H));
    else h = steps.rmsNorm(x, n.inNorm, H);
    const attention = await steps.selfAttention(l, h);
    newKv.push(attention.newKeys, attention.newValues);
    const post = steps.addAndNorm(x, await steps.project(attention.merged, `${n.o}.weight`, H, NH * D, cfg.oBias), n.postNorm, H);
    x = post.sum;
    pending = await steps.mlp(l, post.normed);
  }
  g.bindOutput(g.o('Concat', newKv, { axis: 0 }), GRAPH_IO.newKv);
  g.output(GRAPH_IO.newKv, DT.FLOAT, ['KV_rows', K, 'S', D]);

  await yieldToLoop();
  opts.onProgress?.(total - 1, total, 'lm head');
  if (pending) x = g.o('Add', [x, pending]);
  // Logits only where asked: gather rows before the final norm and the (large) vocab projection.
  const picked = g.o('GatherND', [x, g.o('Unsqueeze', [steps.logitsIndex, g.constInt64([-1])])], { batch_dims: 1 }); // [B,R,H]
  const normed = steps.rmsNorm(picked, 'model.norm.weight', H);
  const flat = g.o('Reshape', [normed, g.constInt64([-1, H])]);
  const logits2d = head(flat);
  const logitsShape = g.o('Concat', [steps.Bd, g.constInt64([-1, V])], { axis: 0 });
  const logits = g.o('Reshape', [logits2d, logitsShape]);
  g.bindOutput(logits, GRAPH_IO.logits);
  g.output(GRAPH_IO.logits, DT.FLOAT, ['B', 'R', V]);
  opts.onProgress?.(total, total, 'done');
}
