import { UnsupportedModelError } from '../../errors.ts';

/** RoPE frequency schedule, already resolved from the many spellings HF configs use. */
export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  | {
      type: 'yarn';
      factor: number;
      originalMaxPositionEmbeddings: number;
      betaFast: number;
      betaSlow: number;
      mscale?: number;
      mscaleAllDim?: number;
      attentionFactor?: number;
      truncate: boolean;
    };

/** Everything the graph builder and the reference forward need, in one validated shape. */
export interface DecoderConfig {
  modelType: 'qwen3' | 'qwen2' | 'llama' | 'mistral';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2 always; Llama with attention_bias). */
  qkvBias: boolean;
  /** o_proj carries a bias (Llama with attention_bias). */
  oBias: boolean;
  /** Per-head RMSNorm on q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  /** Mistral-style sliding window: we do not implement it, so contexts are capped at it. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

const SUPPORTED = ['qwen3', 'qwen2', 'llama', 'mistral'] as const;

type Json = Record<string, unknown>;

function num(cfg: Json, key: string, fallback?: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new UnsupportedModelError(`config.json lacks "${key}", which a ${String(cfg.model_type)} decoder needs`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new UnsupportedModelError(`config.json field "${key}" must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function posInt(cfg: Json, key: string, fallback?: number): number {
  const v = num(cfg, key, fallback);
  if (!Number.isInteger(v) || v <= 0) {
    throw new UnsupportedModelError(`config.json field "${key}" must be a positive integer, got ${v}`);
  }
  return v;
}

function idList(v: unknown): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.filter((x): x is number => typeof x === 'number' && Number.isInteger(x));
}

function parseRopeScaling(cfg: Json, maxPos: number): { theta: number; scaling: RopeScaling } {
  // transformers >= 4.56 moved rope settings into `rope_parameters`; older configs use
  // `rope_theta` + `rope_scaling` with either `type` or `rope_type`.
  const params = (cfg.rope_parameters ?? cfg.rope_scaling ?? null) as Json | null;
  const theta = num(params && typeof params.rope_theta === 'number' ? params : cfg, 'rope_theta', 10000);
  if (!params) return { theta, scaling: { type: 'default' } };
  const kind = String(params.rope_type ?? params.type ?? 'default');
  const factor = () => {
    const f = num(params, 'factor');
    if (f <= 0) throw new UnsupportedModelError(`rope factor must be > 0, got ${f}`);
    return f;
  };
  switch (kind) {
    case 'default':
      return { theta, scaling: { type: 'default' } };
    case 'linear':
      return { theta, scaling: { type: 'linear', factor: factor() } };
    case 'llama3':
      return {
        theta,
        scaling: {
          type: 'llama3',
          factor: factor(),
          lowFreqFactor: num(params, 'low_freq_factor'),
          highFreqFactor: num(params, 'high_freq_factor'),
          originalMaxPositionEmbeddings: num(params, 'original_max_position_embeddings'),
        },
      };
    case 'yarn': {
      const opt = (k: string) => (typeof params[k] === 'number' ? (params[k] as number) : undefined);
      return {
        theta,
        scaling: {
          type: 'yarn',
          factor: factor(),
          originalMaxPositionEmbeddings: opt('original_max_position_embeddings') ?? maxPos,
          betaFast: opt('beta_fast') ?? 32,
          betaSlow: opt('beta_slow') ?? 1,
          mscale: opt('mscale'),
          mscaleAllDim: opt('mscale_all_dim'),
          attentionFactor: opt('attention_factor'),
          truncate: params.truncate === undefined ? true : Boolean(params.truncate),
        },
      };
    }
    default:
      throw new UnsupportedModelError(
        `rope scaling "${kind}" is not supported (supported: default, linear, llama3, yarn)`,
      );
  }
}

/**
 * Reads a Hugging Face config.json object. Anything that would change the maths in a way the
 * graph builder does not implement is an error, never silently ignored.
 */
export function parseDecoderConfig(raw: unknown): DecoderConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UnsupportedModelError('config.json is not a JSON object');
  }
  const cfg = raw as Json;
  const modelType = cfg.model_type;
  if (typeof modelType !== 'string' || !(SUPPORTED as readonly string[]).includes(modelType)) {
    throw new UnsupportedModelError(
      `model_type ${JSON.stringify(modelType)} is not supported; supported Llama-family decoders: ${SUPPORTED.join(', ')}`,
    );
  }
  const mt = modelType as DecoderConfig['modelType'];
  const hiddenSize = posInt(cfg, 'hidden_size');
  const numHeads = posInt(cfg, 'num_attention_heads');
  const numKvHeads = posInt(cfg, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new UnsupportedModelError(`num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  const headDim = posInt(cfg, 'head_dim', Math.floor(hiddenSize / numHeads));
  if (headDim % 2 !== 0) throw new UnsupportedModelError(`head_dim must be even for RoPE, got ${headDim}`);
  const act = cfg.hidden_act ?? cfg.hidden_activation ?? 'silu';
  if (act !== 'silu') throw new UnsupportedModelError(`hidden_act "${String(act)}" is not supported (only silu)`);
  const partial = cfg.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1) {
    throw new UnsupportedModelError(`partial_rotary_factor ${String(partial)} is not supported (only 1.0)`);
  }
  if (cfg.mlp_bias === true) throw new UnsupportedModelError('mlp_bias=true is not supported');
  const maxPositionEmbeddings = posInt(cfg, 'max_position_embeddings', 32768);

  let slidingWindow: number | null = null;
  if (mt === 'mistral') {
    slidingWindow = typeof cfg.sliding_window === 'number' ? cfg.sliding_window : null;
  } else if (cfg.use_sliding_window === true) {
    throw new UnsupportedModelError('use_sliding_window=true is not supported; the builder implements full attention only');
  }

  const { theta, scaling } = parseRopeScaling(cfg, maxPositionEmbeddings);
  const attentionBias = cfg.attention_bias === true;
  return {
    modelType: mt,
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size'),
    numLayers: posInt(cfg, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: posInt(cfg, 'vocab_size'),
    rmsNormEps: num(cfg, 'rms_norm_eps', 1e-6),
    ropeTheta: theta,
    ropeScaling: scaling,
    maxPositionEmbeddings,
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
    qkvBias: mt === 'qwen2' ? true : attentionBias,
    oBias: mt === 'llama' || mt === 'mistral' ? attentionBias : false,
    qkNorm: mt === 'qwen3',
    slidingWindow,
    bosTokenId: typeof cfg.bos_token_id === 'number' ? cfg.bos_token_id : null,
    eosTokenIds: idList(cfg.eos_token_id),
  };
}
