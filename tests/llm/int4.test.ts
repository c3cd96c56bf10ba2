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
    it(`${name}: the MatMulNBits graph equals a reference with the same dequantised weights`, async () => {
      const fp32 = await makeAndLoad(name, root, 256);
      await fp32.lm.close();
      const { lm } = await loadCausalLM(fp32.dir, { maxPositions: 256, weights: 'int4' });
      const ref = new ReferenceDecoder(fp32.dir, (t, data, shape) => (LINEAR.test(t) ? dequantizeInt4(quantizeInt4(data, shape[0], shape[1], 32)) : data));
      const tokens = [785, 3974, 13876, 38835, 34208, 916];
      const blk = lm.cache.createBlock('s');
      const got = (await lm.forward([{ view: [blk], tokens, logits: 'all' }])).logits[0];
      const want = ref.forward(tokens);
      const V = lm.vocabSize;
      for (let i = 0; i < tokens.length; i++) expect(maxAbsDiff(got.subarray(i * V, (i + 1) * V), want[i])).toBeLessThanOrEqual(1e-3);
      // And it is a real quantisation: the float32 reference differs.
      const exact = new ReferenceDecoder(fp32.dir).forward(tokens.slice(0, 2));
      expect(maxAbsDiff(got.subarray(V, 2 * V), exact[1])).toBeGreaterThan(1e-3);
      await lm.close();
    }, 60_000);
  }
});
