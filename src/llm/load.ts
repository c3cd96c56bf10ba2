import { join } from 'node:path';
import type { BackendOptions } from '../backend/onnx.ts';
import { LocalStepRunner, WorkerStepRunner, type RunnerSpec } from './runtime/step-runner.ts';
import { CausalLM } from './runtime/causal-lm.ts';
import { parseDecoderConfig, type DecoderConfig } from './model/config.ts';
import { ensureGraph } from './graph/graph-cache.ts';
import { defaultHeadFormat, defaultKvFormat, type HeadFormat, type KvFormat, type PrefillWeights, type RopeMode, type WeightFormat } from './graph/contract.ts';
import { readJson, resolveModelSource, type DownloadProgress } from './model/model-source.ts';
import { listModelTensors } from './model/safetensors.ts';

export type LoadProgress =
  | ({ stage: 'download' } & DownloadProgress)
  | { stage: 'build'; done: number; total: number; what: string }
  | { stage: 'session' };

export interface LoadOptions extends BackendOptions {
  offline?: boolean;
  /** Longest context (positions) the graph supports; default min(model limit, 32768). */
  maxPositions?: number;
  /** How rows see blocks at their own positions (see decoder-graph.ts); default rotate-query. */
  ropeMode?: RopeMode;
  /** fp32 (default, exact), int4 (about 3× less to read per token) or int8 linear weights (see WeightFormat). */
  weights?: WeightFormat;
  /** See BuildOptions.int4Compute. */
  int4Compute?: 'int8' | 'fp32';
  /** Embeddings and LM head (see HeadFormat); default: int4 with int4 weights, else fp32. */
  head?: HeadFormat;
  /** The K/V cache (see KvFormat); default: int8 with int4 weights and rotate-query, else fp32. */
  kv?: KvFormat;
  onProgress?: (p: LoadProgress) => void;
  /** Build a missing graph in a worker thread (see EnsureGraphOptions.inWorker). */
  buildInWorker?: boolean;
  /**
   * Where steps run: 'worker' (default) keeps this thread free while a step computes, which a
   * process that also listens needs (see step-runner.ts); 'main' runs them here.
   */
  stepThread?: 'worker' | 'main';
  /** Linux, worker steps: compute at a lower priority than the rest of the process (see step-worker-job.ts). */
  lowerPriority?: boolean;
  /**
   * int4 weights with the int8 kernels, on the CPU: calls of PREFILL_MIN_TOKENS or more new tokens
   * (prompts, history, the control question) run a second graph whose linear layers are int8 per
   * channel (see WeightFormat), same head, embeddings and cache. 'int8' (default) or 'same' (every
   * call on the int4 graph: less memory, slower prefill).
   */
  prefillWeights?: PrefillWeights;
}

/**
 * Fewest new tokens in one call (rows × tokens) that go to the prefill graph. Measured on Qwen3-0.6B
 * shapes, 2 threads (AVX-512 VNNI): at 1 token the int4 graph is ≈ 1.2× faster (it reads half the
 * bytes), at 4 they are even, at 8 the int8 one is ≈ 1.4× faster and at 500 ≈ 1.6×.
 */
export const PREFILL_MIN_TOKENS = 8;

export interface LoadedModel {
  dir: string;
  config: DecoderConfig;
  lm: CausalLM;
  graphPath: string;
  /** The prefill graph, when there is one (see LoadOptions.prefillWeights). */
  prefillGraphPath?: string;
}

/** Source (folder or hf:id) → ready-to-run CausalLM, building and caching the graph on first use. */
export async function loadCausalLM(source: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const dir = await resolveModelSource(source, {
    offline: opts.offline,
    onProgress: (p) => opts.onProgress?.({ stage: 'download', ...p }),
  });
  const config = parseDecoderConfig(readJson(join(dir, 'config.json')));
  const tensors = listModelTensors(dir);
  const limit = Math.min(config.maxPositionEmbeddings, config.slidingWindow ?? Infinity);
  const maxPositions = Math.min(opts.maxPositions ?? 32768, limit);
  const ropeMode = opts.ropeMode ?? 'rotate-query';
  const kv = opts.kv ?? defaultKvFormat(opts.weights, ropeMode);
  const graph = {
    maxPositions,
    ropeMode,
    weights: opts.weights,
    int4Compute: opts.int4Compute,
    head: opts.head ?? defaultHeadFormat(opts.weights),
    kv,
    inWorker: opts.buildInWorker,
  };
  const building = (prefix: string) => (done: number, total: number, what: string) => opts.onProgress?.({ stage: 'build', done, total, what: prefix + what });
  const { path } = await ensureGraph(dir, config, tensors, { ...graph, onProgress: building('') });
  // A CPU choice: MLAS's integer GEMM is what makes it pay; other providers run int4 throughout.
  const onCpu = (opts.executionProvider ?? 'cpu') === 'cpu';
  const withPrefill = onCpu && opts.weights === 'int4' && opts.int4Compute !== 'fp32' && (opts.prefillWeights ?? 'int8') === 'int8';
  const prefill = withPrefill
    ? await ensureGraph(dir, config, tensors, { ...graph, weights: 'int8', onProgress: building('prefill graph: ') })
    : null;
  opts.onProgress?.({ stage: 'session' });
  const spec: RunnerSpec = {
    graphPath: path,
    numLayers: config.numLayers,
    kvHeads: config.numKvHeads,
    headDim: config.headDim,
    kv,
    backend: { executionProvider: opts.executionProvider, intraOpThreads: opts.intraOpThreads, spinning: opts.spinning },
    lowerPriority: opts.lowerPriority,
    ...(prefill ? { prefill: { graphPath: prefill.path, minTokens: PREFILL_MIN_TOKENS } } : {}),
  };
  const runner = (opts.stepThread ?? 'worker') === 'worker' ? await WorkerStepRunner.create(spec) : await LocalStepRunner.create(spec);
  return { dir, config, lm: new CausalLM(config, runner, maxPositions, ropeMode, kv), graphPath: path, prefillGraphPath: prefill?.path };
}
