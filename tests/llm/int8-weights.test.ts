import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { dequantizePerChannel, quantizePerChannel } from '../../src/llm/graph/quantize.ts';
import { Rng } from '../../src/llm/runtime/random.ts';
import { loadCausalLM, PREFILL_MIN_TOKENS } from '../../src/llm/load.ts';
import { makeAndLoad, maxAbsDiff, scratchDir } from '../helpers/models.ts';
import { ReferenceDecoder } from './reference-forward.ts';

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const LINEAR = /(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

/** What the graph does to a linear layer's input row: 8-bit codes around 128, scale max|x| / 127 (float32 as onnxruntime). */
function rowRounded(x: Float64Array): Float64Array {
  let max = 0;
  for (const v of x) max = Math.max(max, Math.abs(Math.fround(v)));
  const scale = Math.fround(Math.max(max, 1e-12) / 127);
  return x.map((v) => {
    const q = Math.fround(Math.fround(v) / scale);
    const r = Math.abs(q % 1) === 0.5 ? 2 * Math.round(q / 2) : Math.round(q); // onnx Round: ties to even
    return Math.min(127, Math.max(-128, r)) * scale;
  });
}

const perChannel = (t: string, data: Float32Array, shape: number[]) => (LINEAR.test(t) ? dequantizePerChannel(quantizePerChannel(data, shape[0], shape[1]), shape[0], shape[1]) : data);

describe('int8 weights (per output channel) and the prefill graph', () => {
  it('per-channel quantisation errs by at most half a step per output, lays codes out [in, out], and survives an all-zero row', () => {
    const rng = new Rng(4);
    const n = 6;
    const k = 40;
    const w = Float32Array.from({ length: n * k }, () => rng.normal());
    w.fill(0, 2 * k, 3 * k);
    const q = quantizePerChannel(w, n, k);
    expect(q.codes.length).toBe(n * k);
    expect(q.scales[2]).toBe(1);
    const back = dequantizePerChannel(q, n, k);
    for (let row = 0; row < n; row++) {
      for (let i = 0; i < k; i++) {
        expect(Math.abs(back[row * k + i] - w[row * k + i])).toBeLessThanOrEqual(q.scales[row] / 2 + 1e-7);
        expect(q.codes[i * n + row]).toBe(Math.round(w[row * k + i] / q.scales[row]) || 0);
      }
    }
  });

  for (const name of ['gqa-tied-fp32', 'mqa-untied-bf16', 'qwen2-bias']) {
    it(`${name}: the int8 graph reads exactly the codes we packed and rounds each activation row as documented`, async () => {
      const fp32 = await makeAndLoad(name, root, 256);
      await fp32.lm.close();
      const tokens = [785, 3974, 13876, 38835, 34208, 916, 279, 15678];
      const { lm } = await loadCausalLM(fp32.dir, { maxPositions: 256, weights: 'int8', head: 'fp32', kv: 'fp32' });
      const blk = lm.cache.createBlock('s');
      const got = (await lm.forward([{ view: [blk], tokens, logits: 'all' }])).logits[0];
      await lm.close();
      const V = lm.vocabSize;
      const err = (rows: Float64Array[]) => Math.max(...tokens.map((_, i) => maxAbsDiff(got.subarray(i * V, (i + 1) * V), rows[i])));
      const same = err(new ReferenceDecoder(fp32.dir, perChannel, rowRounded).forward(tokens));
      const weightsOnly = err(new ReferenceDecoder(fp32.dir, perChannel).forward(tokens));
      const exact = err(new ReferenceDecoder(fp32.dir).forward(tokens));
      // The activation rounding is real and the graph does exactly it: equal to the reference that
      // rounds the same way, not to one with the same weights and float activations
      // (measured: 3e-6 against 0.12–0.25; the float model is farther still, 0.18–0.36).
      expect(same).toBeLessThanOrEqual(1e-4);
      expect(weightsOnly).toBeGreaterThan(0.01);
      expect(exact).toBeGreaterThan(weightsOnly);
    }, 90_000);
  }

  it(`an int4 model runs calls of ${PREFILL_MIN_TOKENS}+ tokens on the int8 prefill graph, shorter ones on the int4 graph, over one cache`, async () => {
    const base = await makeAndLoad('gqa-tied-fp32', root, 256);
    await base.lm.close();
    const load = (prefillWeights: 'int8' | 'same') => loadCausalLM(base.dir, { maxPositions: 256, weights: 'int4', prefillWeights }).then((m) => m.lm);
    const [withPrefill, int4Only] = await Promise.all([load('int8'), load('same')]);
    const prompt = [785, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 40, 1366, 311];
    const short = prompt.slice(0, PREFILL_MIN_TOKENS - 1);
    /** Logits of every prompt token, then of three greedy-free decode steps on the same block. */
    const run = async (lm: typeof withPrefill, tokens: number[]) => {
      const b = lm.cache.createBlock('s');
      const out = [(await lm.forward([{ view: [b], tokens, logits: 'all' }])).logits[0]];
      for (const t of [1414, 264, 3364]) out.push((await lm.forward([{ view: [b], tokens: [t] }])).logits[0]);
      b.drop();
      return out;
    };
    const shortA = await run(withPrefill, short);
    const shortB = await run(int4Only, short);
    const longA = await run(withPrefill, prompt);
    const longB = await run(int4Only, prompt);
    await Promise.all([withPrefill.close(), int4Only.close()]);
    // Below the threshold both run the same int4 graph: the same numbers.
    shortA.forEach((l, i) => expect(maxAbsDiff(l, shortB[i])).toBe(0));
    // At it, the prompt runs other weights, int8 ones nearer the float model than int4: its logits
    // are closer to the float reference than with the int4 graph alone, and so, over the three, are
    // those of the decode steps after it (int4 graph again, over the prompt's int8-made K/V; one
    // step alone may not be). Measured: 2.5 vs 4.3 on the prompt, 10.1 vs 11.9 over the steps.
    const exact = new ReferenceDecoder(base.dir).forward([...prompt, 1414, 264, 3364]);
    const V = withPrefill.vocabSize;
    const errs = (run: Float32Array[]) => [
      Math.max(...prompt.map((_, i) => maxAbsDiff(run[0].subarray(i * V, (i + 1) * V), exact[i]))),
      ...run.slice(1).map((l, j) => maxAbsDiff(l, exact[prompt.length + j])),
    ];
    const [a, b] = [errs(longA), errs(longB)];
    expect(a[0]).toBeLessThan(b[0]);
    const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
    expect(sum(a.slice(1))).toBeLessThan(sum(b.slice(1)));
    longA.forEach((l, i) => expect(maxAbsDiff(l, longB[i])).toBeGreaterThan(0));
  }, 90_000);
});
