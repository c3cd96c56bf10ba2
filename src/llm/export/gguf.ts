/**
 * Writes a model folder (HF config, safetensors, tokenizer.json) as a GGUF file that llama.cpp
 * loads: the same weights, so our runtime and llama.cpp can be compared on equal terms, and the
 * tokenizer metadata llama.cpp needs to tokenize and to stop. Metadata is serialised by
 * @huggingface/gguf; tensor infos and data, which it does not write, are ours.
 *
 * Layout (GGUF v3): header + key/values, tensor infos, padding to `ALIGN`, then each tensor's
 * data at an `ALIGN`-aligned offset from the start of the data section.
 */
import { closeSync, existsSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GGMLQuantizationType, GGUFValueType, serializeGgufMetadata, type GGUFTypedMetadata } from '@huggingface/gguf';
import { UnsupportedModelError } from '../../errors.ts';
import { parseDecoderConfig, type DecoderConfig } from '../model/config.ts';
import { readJson } from '../model/model-source.ts';
import { checkedTensor, listModelTensors, readTensorF32, readTensorF32Pieces, type TensorInfo } from '../model/safetensors.ts';

export type GgufType = 'f32' | 'q8_0' | 'q4_0';
export const GGUF_TYPES: readonly GgufType[] = ['f32', 'q8_0', 'q4_0'];

const ALIGN = 32;
const QK = 32; // ggml's block length for q4_0 and q8_0

/** ggml's element types and general.file_type ("mostly X") for each export type. */
const GGML: Record<GgufType, { type: GGMLQuantizationType; fileType: number; blockBytes: number }> = {
  f32: { type: GGMLQuantizationType.F32, fileType: 0, blockBytes: 4 * QK },
  q8_0: { type: GGMLQuantizationType.Q8_0, fileType: 7, blockBytes: 2 + QK },
  q4_0: { type: GGMLQuantizationType.Q4_0, fileType: 2, blockBytes: 2 + QK / 2 },
};

/** llama.cpp's names for the architectures we run (Mistral is Llama to it, as in its converter). */
const ARCH: Record<DecoderConfig['modelType'], string> = { qwen3: 'qwen3', qwen2: 'qwen2', llama: 'llama', mistral: 'llama' };

/** Pre-tokenizer split patterns llama.cpp knows by name; it must split text as the model's tokenizer does. */
const PRE_TOKENIZERS: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'qwen2',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'llama-bpe',
};

const TOKEN_TYPE = { normal: 1, control: 3, userDefined: 4, unused: 5 } as const;

export interface GgufExportOptions {
  type: GgufType;
  onProgress?: (done: number, total: number, what: string) => void;
}

interface PlannedTensor {
  gguf: string;
  hf: string;
  /** HF shape: [out, in] for matrices, [n] for vectors. */
  shape: number[];
  type: GgufType;
  /** Llama's q/k rows are re-ordered for llama.cpp's interleaved RoPE: the head count to do it with. */
  permuteHeads?: number;
  source: TensorInfo;
  bytes: number;
  offset: number;
}

/** Writes `outFile` (through a temporary name, so a failed export leaves nothing half written). */
export async function exportGguf(modelDir: string, outFile: string, opts: GgufExportOptions): Promise<{ bytes: number; tensors: number }> {
  if (!GGUF_TYPES.includes(opts.type)) throw new UnsupportedModelError(`GGUF type must be one of ${GGUF_TYPES.join(', ')}, got "${opts.type}"`);
  const cfg = parseDecoderConfig(readJson(join(modelDir, 'config.json')));
  if (cfg.ropeScaling.type !== 'default') {
    throw new UnsupportedModelError(`GGUF export of rope scaling "${cfg.ropeScaling.type}" is not implemented; only unscaled RoPE`);
  }
  const tensors = listModelTensors(modelDir);
  const plan = planTensors(cfg, tensors, opts.type);
  const metadata = modelMetadata(cfg, modelDir, opts.type, plan.length);

  const infos = plan.map(tensorInfoBytes);
  const head = serializeGgufMetadata(metadata, { alignment: 1 });
  const headerBytes = head.length + infos.reduce((a, b) => a + b.length, 0);
  const dataStart = pad(headerBytes);

  const tmp = `${outFile}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let written = 0;
  const write = (bytes: Uint8Array) => {
    writeSync(fd, bytes);
    written += bytes.length;
  };
  try {
    write(head);
    for (const b of infos) write(b);
    write(new Uint8Array(dataStart - headerBytes));
    for (let i = 0; i < plan.length; i++) {
      const t = plan[i];
      opts.onProgress?.(i, plan.length, t.gguf);
      write(new Uint8Array(dataStart + t.offset - written));
      for (const bytes of encodeTensor(t)) write(bytes);
      // Yield between tensors: an export inside a process that serves keeps answering.
      await new Promise<void>((r) => setImmediate(r));
    }
    opts.onProgress?.(plan.length, plan.length, 'done');
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, outFile);
  return { bytes: written, tensors: plan.length };
}

const pad = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** Every tensor llama.cpp's loader expects for this architecture, with its GGUF name, type and offset. */
function planTensors(cfg: DecoderConfig, tensors: Map<string, TensorInfo>, type: GgufType): PlannedTensor[] {
  const { hiddenSize: H, numHeads: NH, numKvHeads: K, headDim: D, intermediateSize: I, vocabSize: V } = cfg;
  const llamaRope = ARCH[cfg.modelType] === 'llama';
  const out: Omit<PlannedTensor, 'source' | 'bytes' | 'offset'>[] = [];
  const matrix = (gguf: string, hf: string, shape: number[], permuteHeads?: number) =>
    // Rows whose length is not a whole number of ggml blocks cannot be block-quantised.
    out.push({ gguf, hf, shape, type: shape[1] % QK === 0 ? type : 'f32', permuteHeads });
  const vector = (gguf: string, hf: string, n: number, permuteHeads?: number) => out.push({ gguf, hf, shape: [n], type: 'f32', permuteHeads });

  matrix('token_embd.weight', 'model.embed_tokens.weight', [V, H]);
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const b = `blk.${l}`;
    vector(`${b}.attn_norm.weight`, `${p}.input_layernorm.weight`, H);
    matrix(`${b}.attn_q.weight`, `${p}.self_attn.q_proj.weight`, [NH * D, H], llamaRope ? NH : undefined);
    matrix(`${b}.attn_k.weight`, `${p}.self_attn.k_proj.weight`, [K * D, H], llamaRope ? K : undefined);
    matrix(`${b}.attn_v.weight`, `${p}.self_attn.v_proj.weight`, [K * D, H]);
    if (cfg.qkvBias) {
      vector(`${b}.attn_q.bias`, `${p}.self_attn.q_proj.bias`, NH * D, llamaRope ? NH : undefined);
      vector(`${b}.attn_k.bias`, `${p}.self_attn.k_proj.bias`, K * D, llamaRope ? K : undefined);
      vector(`${b}.attn_v.bias`, `${p}.self_attn.v_proj.bias`, K * D);
    }
    if (cfg.qkNorm) {
      vector(`${b}.attn_q_norm.weight`, `${p}.self_attn.q_norm.weight`, D);
      vector(`${b}.attn_k_norm.weight`, `${p}.self_attn.k_norm.weight`, D);
    }
    matrix(`${b}.attn_output.weight`, `${p}.self_attn.o_proj.weight`, [H, NH * D]);
    if (cfg.oBias) vector(`${b}.attn_output.bias`, `${p}.self_attn.o_proj.bias`, H);
    vector(`${b}.ffn_norm.weight`, `${p}.post_attention_layernorm.weight`, H);
    matrix(`${b}.ffn_gate.weight`, `${p}.mlp.gate_proj.weight`, [I, H]);
    matrix(`${b}.ffn_up.weight`, `${p}.mlp.up_proj.weight`, [I, H]);
    matrix(`${b}.ffn_down.weight`, `${p}.mlp.down_proj.weight`, [H, I]);
  }
  vector('output_norm.weight', 'model.norm.weight', H);
  // Tied: llama.cpp reads token_embd as the head when output.weight is absent.
  if (!cfg.tieWordEmbeddings) matrix('output.weight', 'lm_head.weight', [V, H]);

  let offset = 0;
  return out.map((t) => {
    const source = checkedTensor(tensors, t.hf, t.shape, cfg.modelType);
    const elements = t.shape.reduce((a, b) => a * b, 1);
    const bytes = (elements / QK) * GGML[t.type].blockBytes;
    const planned = { ...t, source, bytes, offset };
    offset = pad(offset + bytes);
    return planned;
  });
}

/** One tensor info: name, dims (innermost first, as ggml counts them), type, data offset. */
function tensorInfoBytes(t: PlannedTensor): Uint8Array {
  const name = new TextEncoder().encode(t.gguf);
  const dims = [...t.shape].reverse();
  const buf = new Uint8Array(8 + name.length + 4 + 8 * dims.length + 4 + 8);
  const v = new DataView(buf.buffer);
  let at = 0;
  v.setBigUint64(at, BigInt(name.length), true);
  buf.set(name, (at += 8));
  at += name.length;
  v.setUint32(at, dims.length, true);
  at += 4;
  for (const d of dims) {
    v.setBigUint64(at, BigInt(d), true);
    at += 8;
  }
  v.setUint32(at, GGML[t.type].type, true);
  v.setBigUint64(at + 4, BigInt(t.offset), true);
  return buf;
}

/** The tensor's data in its GGUF type, in pieces of whole rows. */
function* encodeTensor(t: PlannedTensor): Generator<Uint8Array> {
  if (t.permuteHeads) {
    const w = readTensorF32(t.source);
    yield encodeRows(permuteRoPEHalves(w, t.shape[0], t.shape[1] ?? 1, t.permuteHeads), t.type);
    return;
  }
  for (const rows of readTensorF32Pieces(t.source)) yield encodeRows(rows, t.type);
}

/**
 * HF keeps each head's RoPE pairs as (first half, second half); llama.cpp's Llama graph rotates
 * adjacent pairs. Interleaving the halves of each head's rows makes the two agree (its converter
 * does the same). `cols` is 1 for a bias.
 */
export function permuteRoPEHalves(w: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const D = rows / heads;
  const half = D / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * D + j * half + i) * cols;
        out.set(w.subarray(from, from + cols), (h * D + 2 * i + j) * cols);
      }
    }
  }
  return out;
}

function encodeRows(x: Float32Array, type: GgufType): Uint8Array {
  if (type === 'f32') return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  return type === 'q8_0' ? quantizeQ8_0(x) : quantizeQ4_0(x);
}

/** ggml's q4_0: per 32 values an fp16 scale d = (signed value of largest magnitude) / −8 and codes round(x/d) + 8 in 4 bits; the block's first 16 values in the low nibbles. */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const s = b * QK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      if (Math.abs(x[s + j]) > amax) {
        amax = Math.abs(x[s + j]);
        max = x[s + j];
      }
    }
    const d = max / -8;
    const id = d ? 1 / d : 0;
    view.setUint16(b * 18, toHalf(d), true);
    for (let j = 0; j < QK / 2; j++) {
      const lo = Math.min(15, Math.trunc(x[s + j] * id + 8.5));
      const hi = Math.min(15, Math.trunc(x[s + QK / 2 + j] * id + 8.5));
      out[b * 18 + 2 + j] = lo | (hi << 4);
    }
  }
  return out;
}

/** ggml's q8_0: per 32 values an fp16 scale d = max|x| / 127 and int8 codes round(x/d). */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const s = b * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[s + j]));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    view.setUint16(b * 34, toHalf(d), true);
    for (let j = 0; j < QK; j++) {
      const v = x[s + j] * id;
      view.setInt8(b * 34 + 2 + j, Math.sign(v) * Math.round(Math.abs(v))); // C's roundf: halves away from zero
    }
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits of `v`, rounded to nearest even (as ggml's conversion does). */
export function toHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  let shift = 13;
  let h: number;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    shift = 14 - e;
    h = mant >>> shift;
  } else {
    h = (e << 10) | (mant >>> 13);
  }
  const rem = mant & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rem > halfway || (rem === halfway && h & 1)) h++; // a carry into the exponent is still right
  return sign | h;
}

type Meta = GGUFTypedMetadata;
const str = (value: string) => ({ value, type: GGUFValueType.STRING });
const u32v = (value: number) => ({ value, type: GGUFValueType.UINT32 });
const f32v = (value: number) => ({ value, type: GGUFValueType.FLOAT32 });

function modelMetadata(cfg: DecoderConfig, modelDir: string, type: GgufType, tensorCount: number): Meta {
  const a = ARCH[cfg.modelType];
  const meta: Record<string, { value: unknown; type: GGUFValueType; subType?: GGUFValueType }> = {
    version: { value: 3, type: GGUFValueType.UINT32 },
    tensor_count: { value: BigInt(tensorCount), type: GGUFValueType.UINT64 },
    kv_count: { value: 0n, type: GGUFValueType.UINT64 }, // counted by the serialiser
    'general.architecture': str(a),
    'general.name': str(modelDir.split(/[\\/]/).filter(Boolean).pop() ?? 'model'),
    'general.alignment': u32v(ALIGN),
    'general.file_type': u32v(GGML[type].fileType),
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
