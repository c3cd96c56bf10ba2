/**
 * The GGUF key/values llama.cpp reads: the architecture's hyperparameters and the tokenizer (its
 * vocabulary, merges, token types, special tokens and pre-tokenizer), serialised by @huggingface/gguf.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GGUFValueType, type GGUFTypedMetadata } from '@huggingface/gguf';
import { UnsupportedModelError } from '../../errors.ts';
import type { DecoderConfig } from '../model/config.ts';
import { readJson } from '../model/model-source.ts';

/** llama.cpp's names for the architectures we run (Mistral is Llama to it, as in its converter). */
export const ARCH: Record<DecoderConfig['modelType'], string> = { qwen3: 'qwen3', qwen2: 'qwen2', llama: 'llama', mistral: 'llama' };

/** Pre-tokenizer split patterns llama.cpp knows by name; it must split text as the model's tokenizer does. */
const PRE_TOKENIZERS: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'qwen2',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'llama-bpe',
};

const TOKEN_TYPE = { normal: 1, control: 3, userDefined: 4, unused: 5 } as const;

type Meta = GGUFTypedMetadata;
const str = (value: string) => ({ value, type: GGUFValueType.STRING });
const u32v = (value: number) => ({ value, type: GGUFValueType.UINT32 });
const f32v = (value: number) => ({ value, type: GGUFValueType.FLOAT32 });

export function modelMetadata(cfg: DecoderConfig, modelDir: string, fileType: number, alignment: number, tensorCount: number): Meta {
  const a = ARCH[cfg.modelType];
  const meta: Record<string, { value: unknown; type: GGUFValueType; subType?: GGUFValueType }> = {
    version: { value: 3, type: GGUFValueType.UINT32 },
    tensor_count: { value: BigInt(tensorCount), type: GGUFValueType.UINT64 },
    kv_count: { value: 0n, type: GGUFValueType.UINT64 }, // counted by the serialiser
    'general.architecture': str(a),
    'general.name': str(modelDir.split(/[\\/]/).filter(Boolean).pop() ?? 'model'),
    'general.alignment': u32v(alignment),
    'general.file_type': u32v(fileType),
    [`${a}.context_length`]: u32v(cfg.maxPositionEmbeddings),
    [`${a}.embedding_length`]: u32v(cfg.hiddenSize),
    [`${a}.block_count`]: u32v(cfg.numLayers),
    [`${a}.feed_forward_length`]: u32v(cfg.intermediateSize),
    [`${a}.attention.head_count`]: u32v(cfg.numHeads),
    [`${a}.attention.head_count_kv`]: u32v(cfg.numKvHeads),
    [`${a}.attention.key_length`]: u32v(cfg.headDim),
    [`${a}.attention.value_length`]: u32v(cfg.headDim),
    [`${a}.rope.dimension_count`]: u32v(cfg.headDim),
    [`${a}.rope.freq_base`]: f32v(cfg.ropeTheta),
    [`${a}.attention.layer_norm_rms_epsilon`]: f32v(cfg.rmsNormEps),
    [`${a}.vocab_size`]: u32v(cfg.vocabSize),
    ...tokenizerMetadata(cfg, modelDir),
  };
  return meta as unknown as Meta;
}

/** llama.cpp's "gpt2" (byte-level BPE) tokenizer from the folder's tokenizer.json, padded to the model's vocabulary. */
function tokenizerMetadata(cfg: DecoderConfig, modelDir: string): Record<string, { value: unknown; type: GGUFValueType; subType?: GGUFValueType }> {
  const json = readJson(join(modelDir, 'tokenizer.json')) as {
    model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
    pre_tokenizer?: unknown;
    added_tokens?: { id: number; content: string; special?: boolean }[];
  };
  const config = (existsSync(join(modelDir, 'tokenizer_config.json')) ? readJson(join(modelDir, 'tokenizer_config.json')) : {}) as Record<string, unknown>;
  const model = json.model;
  if (model?.type !== 'BPE' || !model.vocab || !model.merges) throw new UnsupportedModelError('GGUF export needs a byte-level BPE tokenizer.json (model.type "BPE" with vocab and merges)');
  const pattern = JSON.stringify(json.pre_tokenizer ?? {}).match(/"Regex":"((?:[^"\\]|\\.)*)"/)?.[1];
  const pre = pattern !== undefined ? PRE_TOKENIZERS[JSON.parse(`"${pattern}"`) as string] : undefined;
  if (!pre) throw new UnsupportedModelError("GGUF export: the tokenizer's pre-tokenizer split is not one llama.cpp knows by name (qwen2, llama-bpe)");

  const tokens: string[] = new Array(cfg.vocabSize);
  const types: number[] = new Array(cfg.vocabSize).fill(TOKEN_TYPE.normal);
  for (const [text, id] of Object.entries(model.vocab)) if (id < cfg.vocabSize) tokens[id] = text;
  const byText = new Map<string, number>();
  for (const t of json.added_tokens ?? []) {
    if (t.id >= cfg.vocabSize) continue;
    tokens[t.id] = t.content;
    types[t.id] = t.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
    byText.set(t.content, t.id);
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TOKEN_TYPE.unused;
    }
  }
  const merges = model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const idOf = (key: string): number | undefined => {
    const v = config[key];
    const text = typeof v === 'string' ? v : (v as { content?: string } | null)?.content;
    return text !== undefined ? byText.get(text) : undefined;
  };
  const eos = idOf('eos_token') ?? cfg.eosTokenIds[0];
  const padId = idOf('pad_token');
  const bos = idOf('bos_token') ?? cfg.bosTokenId ?? undefined;
  const meta: Record<string, { value: unknown; type: GGUFValueType; subType?: GGUFValueType }> = {
    'tokenizer.ggml.model': str('gpt2'),
    'tokenizer.ggml.pre': str(pre),
    'tokenizer.ggml.tokens': { value: tokens, type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING },
    'tokenizer.ggml.token_type': { value: types, type: GGUFValueType.ARRAY, subType: GGUFValueType.INT32 },
    'tokenizer.ggml.merges': { value: merges, type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING },
    'tokenizer.ggml.add_bos_token': { value: config.add_bos_token === true, type: GGUFValueType.BOOL },
  };
  if (eos !== undefined) meta['tokenizer.ggml.eos_token_id'] = u32v(eos);
  if (padId !== undefined) meta['tokenizer.ggml.padding_token_id'] = u32v(padId);
  if (bos !== undefined) meta['tokenizer.ggml.bos_token_id'] = u32v(bos);
  if (typeof config.chat_template === 'string') meta['tokenizer.chat_template'] = str(config.chat_template);
  return meta;
}
