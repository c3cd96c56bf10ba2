import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { exportGguf, permuteRoPEHalves } from '../../src/llm/export/gguf.ts';
import { quantizeQ4_0, quantizeQ8_0 } from '../../src/llm/export/ggml-quant.ts';
import { toHalf } from '../../src/llm/model/half.ts';
import { Rng } from '../../src/llm/runtime/random.ts';
import { argmax } from '../../src/llm/runtime/sampling.ts';
import { CONFIGS, VARIANTS, makeAndLoad, scratchDir } from '../helpers/models.ts';
import type { LoadedModel } from '../../src/llm/load.ts';
import { halfToFloat } from '../helpers/ggml.ts';

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));

type NodeLlamaCpp = typeof import('node-llama-cpp');
type Token = import('node-llama-cpp').Token;
let nlc: NodeLlamaCpp;
let llama: Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;
beforeAll(async () => {
  try {
    nlc = await import('node-llama-cpp');
  } catch (e) {
    throw new Error(`node-llama-cpp is not installed (a dev dependency: npm ci installs it): ${(e as Error).message}`);
  }
  // The prebuilt CPU binary from npm; never a build from source. One thread per context: these
  // models are tiny, and test files beside this one (the browser's live audio) need the other core.
  llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error });
}, 60_000);
afterAll(async () => llama?.dispose());

describe('GGUF export', () => {
  it('converts floats to half precision, rounding to nearest even', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(1e6)).toBe(0x7c00);
    expect(toHalf(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and the next half: stays even
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway, odd below: rounds up
    const rng = new Rng(1);
    for (let i = 0; i < 1000; i++) {
      const v = rng.normal() * 10;
      expect(Math.abs(halfToFloat(toHalf(v)) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 1e-7);
    }
  });

  it("packs q4_0 and q8_0 as ggml lays them out: an fp16 scale, then the block's codes (q4_0: first half in the low nibbles)", () => {
    const rng = new Rng(2);
    const x = Float32Array.from({ length: 96 }, () => rng.normal());
    const q4 = quantizeQ4_0(x);
    const q8 = quantizeQ8_0(x);
    expect(q4.length).toBe(3 * 18);
    expect(q8.length).toBe(3 * 34);
    for (let b = 0; b < 3; b++) {
      const d4 = halfToFloat(q4[b * 18] | (q4[b * 18 + 1] << 8));
      const d8 = halfToFloat(q8[b * 34] | (q8[b * 34 + 1] << 8));
      for (let j = 0; j < 32; j++) {
        const v = x[b * 32 + j];
        const byte = q4[b * 18 + 2 + (j % 16)];
        const code = j < 16 ? byte & 15 : byte >> 4;
        expect(Math.abs((code - 8) * d4 - v)).toBeLessThanOrEqual(Math.abs(d4) * 0.5 + 1e-3);
        const c8 = (q8[b * 34 + 2 + j] << 24) >> 24;
        expect(Math.abs(c8 * d8 - v)).toBeLessThanOrEqual(d8 * 0.5 + 1e-3);
      }
    }
  });

  it("interleaves each head's RoPE halves for llama.cpp's Llama graph (and back is a permutation)", () => {
    // 2 heads × head dim 4, 1 column: rows [h0: a0 a1 b0 b1, h1: …] → [a0 b0 a1 b1, …]
    const w = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
    expect([...permuteRoPEHalves(w, 8, 1, 2)]).toEqual([0, 2, 1, 3, 10, 12, 11, 13]);
  });

  // Every builder path llama.cpp reads differently: Qwen3 qk-norm, tied and untied heads, MQA,
  // bf16 source, Qwen2 biases, Llama's interleaved RoPE.
  for (const name of [...Object.keys(CONFIGS), ...Object.keys(VARIANTS)]) {
    it(`${name}: llama.cpp greedy-decodes our f32 export to the same ids as our runtime, and tokenizes as we do`, async () => {
      const loaded: LoadedModel = await makeAndLoad(name, root, 256);
      const file = join(root, `${name}.gguf`);
      await exportGguf(loaded.dir, file, { type: 'f32' });
      const { metadata, tensorInfos } = await gguf(file, { allowLocalFile: true });
      expect(((metadata as Record<string, unknown>)['tokenizer.ggml.tokens'] as string[]).length).toBe(loaded.config.vocabSize);
      expect(tensorInfos.find((t) => t.name === 'token_embd.weight')?.shape).toEqual([BigInt(loaded.config.hiddenSize), BigInt(loaded.config.vocabSize)]);

      const prompt = [785, 3974, 13876, 38835, 34208, 916];
      const steps = 10;
      const ours: number[] = [];
      const { lm } = loaded;
      const blk = lm.cache.createBlock('s');
      let next = prompt;
      for (let i = 0; i < steps; i++) {
        const best = argmax((await lm.forward([{ view: [blk], tokens: next }])).logits[0]);
        ours.push(best);
        next = [best];
      }
      await lm.close();

      const model = await llama.loadModel({ modelPath: file });
      // f32 cache and plain attention, so the two differ only in summation order.
      const ctx = await model.createContext({ contextSize: 256, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
      const theirs: number[] = [];
      for await (const t of ctx.getSequence().evaluate(prompt as Token[], { temperature: 0 })) {
        theirs.push(t);
        if (theirs.length >= steps) break;
      }
      const text = 'Hello world, thinking <think> 12345 fast\n\n';
      const theirTokens = model.tokenize(text, true);
      await ctx.dispose();
      await model.dispose();
      expect(theirs).toEqual(ours);
      const { Tokenizer } = await import('../../src/llm/model/tokenizer.ts');
      expect(theirTokens).toEqual((await Tokenizer.fromFolder(loaded.dir)).encode(text));
    }, 120_000);
  }

  it('writes q4_0 and q8_0 files llama.cpp loads and runs: matrices in that type, norms in f32', async () => {
    const { dir, lm } = await makeAndLoad('gqa-tied-fp32', root, 256);
    await lm.close();
    const { GGMLQuantizationType: T } = await import('@huggingface/gguf');
    const want = { f32: T.F32, q8_0: T.Q8_0, q4_0: T.Q4_0 } as const;
    for (const type of ['f32', 'q8_0', 'q4_0'] as const) {
      const file = join(root, `tiny-${type}.gguf`);
      await exportGguf(dir, file, { type });
      const { tensorInfos } = await gguf(file, { allowLocalFile: true });
      const dtype = (name: string) => tensorInfos.find((t) => t.name === name)?.dtype;
      for (const m of ['token_embd.weight', 'blk.0.attn_q.weight', 'blk.1.ffn_down.weight']) expect(dtype(m)).toBe(want[type]);
      for (const v of ['blk.0.attn_norm.weight', 'blk.0.attn_q_norm.weight', 'output_norm.weight']) expect(dtype(v)).toBe(T.F32);
      const model = await llama.loadModel({ modelPath: file });
      const ctx = await model.createContext({ contextSize: 128, threads: 1 });
      const got: number[] = [];
      for await (const t of ctx.getSequence().evaluate([785, 3974, 13876] as Token[], { temperature: 0 })) {
        got.push(t);
        if (got.length >= 4) break;
      }
      await ctx.dispose();
      await model.dispose();
      expect(got).toHaveLength(4);
    }
  }, 120_000);

  it('refuses what it cannot write with one clear error, and leaves no file behind', async () => {
    const { dir, lm } = await makeAndLoad('gqa-tied-fp32', root, 256);
    await lm.close();
    const file = join(root, 'bad.gguf');
    await expect(exportGguf(dir, file, { type: 'q3_k' as never })).rejects.toThrow(/GGUF type must be one of f32, q8_0, q4_0/);
    await expect(exportGguf(join(root, 'missing'), file, { type: 'f32' })).rejects.toThrow(/config\.json does not exist/);
    const { existsSync, readdirSync } = await import('node:fs');
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(root).filter((f) => f.startsWith('bad.gguf'))).toEqual([]);
  });
});
