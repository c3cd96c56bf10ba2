import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { dequantizeInt4, quantizeInt4 } from '../../src/llm/quantize.ts';
import { Rng } from '../../src/llm/random.ts';
import { CONFIGS, makeAndLoad, maxAbsDiff, scratchDir } from '../helpers/models.ts';
import { loadCausalLM } from '../../src/llm/load.ts';
import { ReferenceDecoder } from './reference-forward.ts';

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const LINEAR = /(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

describe('int4 weights', () => {
  it('blockwise quantisation errs by at most half a step per block, and pads ragged blocks', () => {
    const rng = new Rng(3);
    const n = 5;
    const k = 80; // 2½ blocks of 32
    const w = Float32Array.from({ length: n * k }, () => rng.normal());
    const q = quantizeInt4(w, n, k, 32);
    expect(q.kBlocks).toBe(3);
    expect(q.packed.length).toBe(n * 3 * 16);
    const back = dequantizeInt4(q);
    for (let row = 0; row < n; row++) {
      for (let i = 0; i < k; i++) {
        const scale = q.scales[row * 3 + Math.floor(i / 32)];
        expect(Math.abs(back[row * k + i] - w[row * k + i])).toBeLessThanOrEqual(scale / 2 + 1e-7);
      }
    }
  });

  for (const name of Object.keys(CONFIGS)) {
    it(`${name}: MatMulNBits reads exactly the weights we packed, and the fast kernel stays close`, async () => {
      const fp32 = await makeAndLoad(name, root, 256);
      await fp32.lm.close();
      const ref = new ReferenceDecoder(fp32.dir, (t, data, shape) => (LINEAR.test(t) ? dequantizeInt4(quantizeInt4(data, shape[0], shape[1], 32)) : data));
      const exact = new ReferenceDecoder(fp32.dir);
      const tokens = [785, 3974, 13876, 38835, 34208, 916];
      const want = ref.forward(tokens);
      const unquantised = exact.forward(tokens);
      const run = async (int4Compute: 'fp32' | 'int8') => {
        const { lm } = await loadCausalLM(fp32.dir, { maxPositions: 256, weights: 'int4', int4Compute });
        const blk = lm.cache.createBlock('s');
        const got = (await lm.forward([{ view: [blk], tokens, logits: 'all' }])).logits[0];
        await lm.close();
        const V = lm.vocabSize;
        const diff = (rows: Float64Array[]) => Math.max(...tokens.map((_, i) => maxAbsDiff(got.subarray(i * V, (i + 1) * V), rows[i])));
        return { toDequantised: diff(want), toFloat: diff(unquantised) };
      };
      // Float arithmetic on the int4 weights: equal to the reference with the same weights.
      const f = await run('fp32');
      expect(f.toDequantised).toBeLessThanOrEqual(1e-3);
      expect(f.toFloat).toBeGreaterThan(0.1); // the quantisation is real
      // The int8 kernel adds only activation rounding: far closer to those weights than int4 is to float.
      const q = await run('int8');
      expect(q.toDequantised).toBeLessThan(f.toFloat / 4);
    }, 60_000);
  }
});
