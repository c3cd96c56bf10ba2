import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { dequantizeBlockwise, quantizeBlockwise, type QuantBits } from '../../src/llm/quantize.ts';
import type { HeadFormat } from '../../src/llm/decoder-graph.ts';
import { Rng } from '../../src/llm/random.ts';
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
          return b ? dequantizeBlockwise(quantizeBlockwise(data, shape[0], shape[1], b, 32)) : data;
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
