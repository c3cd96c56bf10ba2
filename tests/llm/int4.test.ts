import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { dequantizeBlockwise, quantizeBlockwise, quantizeForGraph, type QuantBits } from '../../src/llm/graph/quantize.ts';
import { quantizeQ4_0 } from '../../src/llm/export/ggml-quant.ts';
import { readQ4_0 } from '../helpers/ggml.ts';
import type { HeadFormat } from '../../src/llm/graph/contract.ts';
import { Rng } from '../../src/llm/runtime/random.ts';
import { CONFIGS, makeAndLoad, maxAbsDiff, scratchDir } from '../helpers/models.ts';
import { loadCausalLM } from '../../src/llm/load.ts';
import { ReferenceDecoder } from './reference-forward.ts';

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const LINEAR = /(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;
const TABLES = /^(model\.embed_tokens|lm_head)\.weight$/;

describe('int4 weights', () => {
  it.each([4, 8] as const)('blockwise %i-bit quantisation errs by at most half a step per block, and pads ragged blocks', (bits) => {
    const rng = new Rng(3);
    const n = 5;
    const k = 80; // 2½ blocks of 32
    const w = Float32Array.from({ length: n * k }, () => rng.normal());
    const q = quantizeBlockwise(w, n, k, bits, 32);
    expect(q.kBlocks).toBe(3);
    expect(q.packed.length).toBe((n * 3 * 32 * bits) / 8);
    const back = dequantizeBlockwise(q);
    for (let row = 0; row < n; row++) {
      for (let i = 0; i < k; i++) {
        const scale = q.scales[row * 3 + Math.floor(i / 32)];
        expect(Math.abs(back[row * k + i] - w[row * k + i])).toBeLessThanOrEqual(scale / 2 + 1e-7);
      }
    }
  });

  it('4-bit blocks with zero points: codes round to nearest for their fit (a ragged last block fitted to its real values), and error as low as ggml q4_0 on normal and heavy-tailed weights', () => {
    const rng = new Rng(11);
    const rmsRel = (a: Float32Array, w: Float32Array) => {
      let e = 0;
      let s = 0;
      for (let i = 0; i < w.length; i++) {
        e += (a[i] - w[i]) ** 2;
        s += w[i] ** 2;
      }
      return Math.sqrt(e / s);
    };
    const n = 256;
    const k = 512;
    // Student's t with 3 degrees of freedom: the heavy tails of trained weights.
    const t3 = () => rng.normal() / Math.sqrt((rng.normal() ** 2 + rng.normal() ** 2 + rng.normal() ** 2) / 3 + 1e-9);
    for (const [what, draw] of [['normal', () => rng.normal() * 0.02 + 0.001], ['t3', () => t3() * 0.02]] as const) {
      const w = Float32Array.from({ length: n * k }, draw);
      const q = quantizeForGraph(w, n, k, 4);
      expect([q.blockSize, q.kBlocks, q.zeroPoints!.length]).toEqual([64, 8, n * 4]);
      const mine = rmsRel(dequantizeBlockwise(q), w);
      const ggml = rmsRel(readQ4_0(quantizeQ4_0(w), w.length), w);
      const symmetric32 = rmsRel(dequantizeBlockwise(quantizeBlockwise(w, n, k, 4, 32)), w);
      expect(mine, what).toBeLessThan(ggml * 1.03); // measured 1.02× (normal), 0.99× (t3)
      expect(mine, what).toBeLessThan(symmetric32 * 0.93); // measured 0.90×, 0.88×
    }
    // Each code is the nearest for its block's scale and zero point (ties either way); 160 values
    // a row are 2½ blocks.
    const w = Float32Array.from({ length: 3 * 160 }, () => t3());
    const q = quantizeBlockwise(w, 3, 160, 4, 64, { zeroPoints: true });
    expect(q.kBlocks).toBe(3);
    const back = dequantizeBlockwise(q);
    for (let row = 0; row < 3; row++) {
      for (let i = 0; i < 160; i++) {
        const b = Math.floor(i / 64);
        const scale = q.scales[row * 3 + b];
        const zp = (q.zeroPoints![row * 2 + (b >> 1)] >> (b & 1 ? 4 : 0)) & 15;
        const x = w[row * 160 + i];
        const inRange = x >= (0 - zp) * scale && x <= (15 - zp) * scale;
        if (inRange) expect(Math.abs(back[row * 160 + i] - x)).toBeLessThanOrEqual(scale / 2 + 1e-6);
        else expect(back[row * 160 + i]).toBe(Math.fround(x < 0 ? -zp * scale : (15 - zp) * scale)); // clipped to the end code
      }
    }
    // A constant and an all-zero block come back exactly.
    const flat = new Float32Array(128).fill(0.25);
    flat.fill(0, 64);
    expect(Array.from(dequantizeBlockwise(quantizeBlockwise(flat, 1, 128, 4, 64, { zeroPoints: true })))).toEqual(Array.from(flat));
  });

  for (const name of Object.keys(CONFIGS)) {
    it(`${name}: MatMulNBits and GatherBlockQuantized read exactly the weights we packed (linear layers, embeddings, LM head), and the fast kernel stays close`, async () => {
      const fp32 = await makeAndLoad(name, root, 256);
      await fp32.lm.close();
      const tokens = [785, 3974, 13876, 38835, 34208, 916];
      /** The reference forward over the weights as a graph with these formats stores them. */
      const reference = (linear: 'fp32' | 'int4', head: HeadFormat) => {
        const bits = (t: string): QuantBits | 0 => (LINEAR.test(t) ? (linear === 'int4' ? 4 : 0) : TABLES.test(t) ? ({ fp32: 0, int8: 8, int4: 4 } as const)[head] : 0);
        return new ReferenceDecoder(fp32.dir, (t, data, shape) => {
          const b = bits(t);
          return b ? dequantizeBlockwise(quantizeForGraph(data, shape[0], shape[1], b)) : data;
        }).forward(tokens);
      };
      const run = async (weights: 'fp32' | 'int4', head: HeadFormat | undefined, int4Compute: 'fp32' | 'int8') => {
        const { lm } = await loadCausalLM(fp32.dir, { maxPositions: 256, weights, head, int4Compute });
        const blk = lm.cache.createBlock('s');
        const got = (await lm.forward([{ view: [blk], tokens, logits: 'all' }])).logits[0];
        await lm.close();
        const V = lm.vocabSize;
        return (rows: Float64Array[]) => Math.max(...tokens.map((_, i) => maxAbsDiff(got.subarray(i * V, (i + 1) * V), rows[i])));
      };
      const exact = reference('fp32', 'fp32');
      const int4All = reference('int4', 'int4');
      // Float arithmetic on the packed weights equals the reference with the same weights; int4
      // weights follow --weights int4 into the embeddings and head unless asked otherwise.
      const f = await run('int4', undefined, 'fp32');
      expect(f(int4All)).toBeLessThanOrEqual(1e-3);
      const quantisationError = f(exact);
      expect(quantisationError).toBeGreaterThan(0.1); // the quantisation is real
      // The int8 kernel adds only activation rounding: far closer to those weights than int4 is to float.
      const q = await run('int4', undefined, 'int8');
      expect(q(int4All)).toBeLessThan(quantisationError / 4);
      // An int8 head is its own table (not the int4 one), and closer to float tables than int4's.
      const int4Head8 = reference('int4', 'int8');
      const h8 = await run('int4', 'int8', 'fp32');
      expect(h8(int4Head8)).toBeLessThanOrEqual(1e-3);
      const linearOnly = reference('int4', 'fp32');
      expect(h8(linearOnly)).toBeLessThan(f(linearOnly));
      // The head's format is independent of the linear layers'.
      const fp32Head8 = await run('fp32', 'int8', 'fp32');
      expect(fp32Head8(reference('fp32', 'int8'))).toBeLessThanOrEqual(1e-3);
      expect(fp32Head8(exact)).toBeGreaterThan(0);
    }, 90_000);
  }
});
