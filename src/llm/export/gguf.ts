/**
 * Writes a model folder (HF config, safetensors, tokenizer.json) as a GGUF file that llama.cpp
 * loads: the same weights, so our runtime and llama.cpp can be compared on equal terms, and the
 * tokenizer metadata llama.cpp needs to tokenize and to stop. Metadata is serialised by
 * @huggingface/gguf; tensor infos and data, which it does not write, are ours.
 *
 * Layout (GGUF v3): header + key/values, tensor infos, padding to `ALIGN`, then each tensor's
 * data at an `ALIGN`-aligned offset from the start of the data section.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GGMLQuantizationType, serializeGgufMetadata } from '@huggingface/gguf';
import { UnsupportedModelError } from '../../errors.ts';
import { parseDecoderConfig, type DecoderConfig } from '../model/config.ts';
import { readJson } from '../model/model-source.ts';
import { ARCH, modelMetadata } from './gguf-metadata.ts';
import { GGUF_TYPES, QK, quantizeQ4_0, quantizeQ8_0, type GgufType } from './ggml-quant.ts';
import { checkedTensor, listModelTensors, readTensorF32, readTensorF32Pieces, type TensorInfo } from '../model/safetensors.ts';

const ALIGN = 32;

/** ggml's element types and general.file_type ("mostly X") for each export type. */
const GGML: Record<GgufType, { type: GGMLQuantizationType; fileType: number; blockBytes: number }> = {
  f32: { type: GGMLQuantizationType.F32, fileType: 0, blockBytes: 4 * QK },
  q8_0: { type: GGMLQuantizationType.Q8_0, fileType: 7, blockBytes: 2 + QK },
  q4_0: { type: GGMLQuantizationType.Q4_0, fileType: 2, blockBytes: 2 + QK / 2 },
};

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
  const metadata = modelMetadata(cfg, modelDir, GGML[opts.type].fileType, ALIGN, plan.length);

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

