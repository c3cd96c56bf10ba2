import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { Arena } from '../../src/llm/runtime/arena.ts';
import { loadCausalLM } from '../../src/llm/load.ts';
import { Rng } from '../../src/llm/runtime/random.ts';
import { CONFIGS, makeAndLoad, maxAbsDiff, scratchDir } from '../helpers/models.ts';

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Key component d of (kv head h, slot) as the arena holds it, in float. */
const keyAt = (a: Arena, l: number, h: number, d: number, slot: number) => {
  const cap = a.capacity;
  return a.keys[l][(h * a.headDim + d) * cap + slot] * a.keyScales[l][h * cap + slot];
};
const valueAt = (a: Arena, l: number, h: number, d: number, slot: number) => {
  const cap = a.capacity;
  return a.values[l][(h * cap + slot) * a.headDim + d] * a.valueScales[l][h * cap + slot];
};

describe('int8 K/V cache', () => {
  it('the arena stores each key and value (token, kv head) as codes within half a step of it, and keeps codes and scales through growth and slot copies', () => {
    const L = 2, K = 2, D = 8, S = 3;
    const rng = new Rng(9);
    const newKeys = Array.from({ length: L }, () => Float32Array.from({ length: K * S * D }, () => 3 * rng.normal()));
    const newValues = Array.from({ length: L }, () => Float32Array.from({ length: K * S * D }, () => rng.normal()));
    newKeys[1].fill(0, 0, D); // an all-zero key: scale 0, codes 0, no NaN
    newValues[0].fill(0, D, 2 * D);
    const a = new Arena(L, K, D, 'int8');
    a.resize(4);
    a.writeTokens(newKeys, newValues, [0, 0, 1, 0, 1, 3, 0, 2, 0], S); // tokens 0, 1, 2 into slots 1, 3, 0
    const check = (slotOfToken: number[]) => {
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < K; h++) {
          slotOfToken.forEach((slot, s) => {
            const kStep = a.keyScales[l][h * a.capacity + slot];
            const vStep = a.valueScales[l][h * a.capacity + slot];
            for (let d = 0; d < D; d++) {
              expect(Math.abs(keyAt(a, l, h, d, slot) - newKeys[l][(h * S + s) * D + d])).toBeLessThanOrEqual(kStep / 2 + 1e-6);
              expect(Math.abs(valueAt(a, l, h, d, slot) - newValues[l][(h * S + s) * D + d])).toBeLessThanOrEqual(vStep / 2 + 1e-6);
              expect(Number.isFinite(keyAt(a, l, h, d, slot)) && Number.isFinite(valueAt(a, l, h, d, slot))).toBe(true);
            }
          });
        }
      }
    };
    check([1, 3, 0]);
    a.resize(9);
    check([1, 3, 0]);
    a.copySlots([3], [7]);
    check([1, 7, 0]);
  });

  for (const name of Object.keys(CONFIGS)) {
    it(`${name}: decoding through an int8 K/V cache stays close to a float one, and really reads the int8 cache`, async () => {
      const { dir, lm: fp32 } = await makeAndLoad(name, root, 256);
      const { lm: int8 } = await loadCausalLM(dir, { maxPositions: 256, kv: 'int8' });
      const prompt = [785, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 40, 1366, 311];
      const steps = [1414, 264, 3364, 13, 1986, 374];
      const logits = async (lm: typeof fp32) => {
        const b = lm.cache.createBlock('s');
        await lm.forward([{ view: [b], tokens: prompt }]);
        const out: Float32Array[] = [];
        for (const t of steps) out.push((await lm.forward([{ view: [b], tokens: [t] }])).logits[0]);
        return out;
      };
      const want = await logits(fp32);
      const got = await logits(int8);
      await fp32.close();
      await int8.close();
      for (let i = 0; i < steps.length; i++) {
        const spread = want[i].reduce((m, v) => Math.max(m, v), -Infinity) - want[i].reduce((m, v) => Math.min(m, v), Infinity);
        const diff = maxAbsDiff(got[i], want[i]);
        // Tolerance: 2 % of the logits' spread (measured: at most 0.7 % on these models).
        expect(diff).toBeLessThanOrEqual(0.02 * spread);
        expect(diff).toBeGreaterThan(0); // the int8 path ran, not a float fallback
      }
    });
  }

  it('rotate-keys cannot take an int8 cache, and says so in one line', async () => {
    const { dir, lm } = await makeAndLoad('gqa-tied-fp32', root, 256);
    await lm.close();
    await expect(loadCausalLM(dir, { maxPositions: 256, ropeMode: 'rotate-keys', kv: 'int8' })).rejects.toThrow(/an int8 K\/V cache needs the rotate-query/);
  });
});
