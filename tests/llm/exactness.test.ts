import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import type { CausalLM } from '../../src/llm/runtime/causal-lm.ts';
import { makeTestModel } from '../../src/llm/export/test-model.ts';
import { loadCausalLM } from '../../src/llm/load.ts';
import { ROPE_MODES } from '../../src/llm/graph/contract.ts';
import { join } from 'node:path';
import { CONFIGS, makeAndLoad, maxAbsDiff, scratchDir } from '../helpers/models.ts';
import { ReferenceDecoder } from './reference-forward.ts';

const TOL = 1e-4;
// Real Qwen3 token ids (a short English sentence and friends), so embeddings rows are realistic.
const P = [785, 3974, 13876, 38835, 34208];
const X = [916, 279, 15678, 5562];
const Q = [40, 1366, 311, 1414, 264, 3364, 13];
const Y = [1986, 374, 264];

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Logits of `tokens` as one fresh block, nothing persisted: the from-scratch graph forward. */
async function scratch(lm: CausalLM, tokens: number[]): Promise<Float32Array> {
  const b = lm.cache.createBlock('scratch');
  try {
    return (await lm.forward([{ view: [b], tokens, logits: 'all', persist: false }])).logits[0];
  } finally {
    b.drop();
  }
}

function rowsOf(flat: Float32Array, V: number, from: number, to: number): Float32Array {
  return flat.subarray(from * V, to * V);
}

const cases = Object.keys(CONFIGS).flatMap((name) => ROPE_MODES.map((mode) => [name, mode] as const));
for (const [name, mode] of cases) {
  describe(`exactness on ${name}, ${mode}`, () => {
    let lm: CausalLM;
    let ref: ReferenceDecoder;
    let V: number;
    beforeAll(async () => {
      const m = await makeAndLoad(name, root, 1024, mode);
      lm = m.lm;
      V = lm.vocabSize;
      ref = new ReferenceDecoder(m.dir);
    });
    afterAll(() => lm.close());

    it('(a) decoding token by token through the cache equals one full forward', async () => {
      const seq = [...P, ...X, ...Y];
      const full = await scratch(lm, seq);
      const blk = lm.cache.createBlock('decode');
      // Prefill a prefix in one call, then one token per step.
      const pre = await lm.forward([{ view: [blk], tokens: seq.slice(0, 3), logits: 'all' }]);
      expect(maxAbsDiff(pre.logits[0], rowsOf(full, V, 0, 3))).toBeLessThanOrEqual(TOL);
      let worst = 0;
      for (let i = 3; i < seq.length; i++) {
        const r = await lm.forward([{ view: [blk], tokens: [seq[i]] }]);
        worst = Math.max(worst, maxAbsDiff(r.logits[0], rowsOf(full, V, i, i + 1)));
      }
      expect(worst).toBeLessThanOrEqual(TOL);
      expect(blk.tokens).toEqual(seq);
      blk.drop();
    });

    it('(d) the pure-TypeScript reference forward agrees with the ONNX graph', async () => {
      const seq = [...P, ...X];
      const full = await scratch(lm, seq);
      const want = ref.forward(seq);
      const got = Array.from({ length: seq.length }, (_, i) => rowsOf(full, V, i, i + 1));
      const diffs = got.map((g, i) => maxAbsDiff(g, want[i]));
      expect(Math.max(...diffs)).toBeLessThanOrEqual(TOL);
      // The check is sharp: a one-position shift moves the logits far beyond the tolerance.
      const shifted = ref.forward(seq, seq.map((_, i) => i + 1));
      expect(maxAbsDiff(got[seq.length - 1], shifted[seq.length - 1])).toBeLessThan(TOL);
      const misplaced = ref.forwardLayout(
        seq.map((token, t) => ({ token, position: t, sees: seq.slice(0, t + 1).map((_, u) => [u, u === 0 ? 3 : u] as [number, number]) })),
      );
      expect(maxAbsDiff(got[seq.length - 1], misplaced[seq.length - 1])).toBeGreaterThan(100 * TOL);
    });

    it('(b) a block placed at a new offset, never re-encoded, equals re-encoding at those positions', async () => {
      // P and X are each encoded alone (local positions 0..n-1); the row then sees them as
      // [X, P, Y]: X at 0, P at |X|, Y after. The oracle recomputes every K/V from token ids.
      const bp = lm.cache.createBlock('P');
      const bx = lm.cache.createBlock('X');
      const by = lm.cache.createBlock('Y');
      await lm.forward([{ view: [bp], tokens: P }]);
      await lm.forward([{ view: [bx], tokens: X }]);
      const got = (await lm.forward([{ view: [bx, bp, by], tokens: Y, logits: 'all' }])).logits[0];

      const layout: { token: number; position: number; sees: [number, number][] }[] = [];
      X.forEach((token, i) => layout.push({ token, position: i, sees: X.slice(0, i + 1).map((_, u) => [u, u]) }));
      P.forEach((token, i) => layout.push({ token, position: i, sees: P.slice(0, i + 1).map((_, u) => [X.length + u, u]) }));
      const before: [number, number][] = [...X.map((_, u) => [u, u] as [number, number]), ...P.map((_, u) => [X.length + u, X.length + u] as [number, number])];
      const o = X.length + P.length;
      Y.forEach((token, i) =>
        layout.push({ token, position: o + i, sees: [...before, ...Y.slice(0, i + 1).map((_, u) => [o + u, o + u] as [number, number])] }),
      );
      const want = ref.forwardLayout(layout).slice(o);
      for (let i = 0; i < Y.length; i++) expect(maxAbsDiff(rowsOf(got, V, i, i + 1), want[i])).toBeLessThanOrEqual(TOL);

      // The same blocks seen in the other order are a different computation (guards against a
      // graph that ignores the view's offsets).
      const other = (await lm.forward([{ view: [bp, bx, by.fork('Y2')], tokens: Y, logits: 'all', persist: false }])).logits[0];
      expect(maxAbsDiff(other, got)).toBeGreaterThan(100 * TOL);
      for (const b of [bp, bx, by]) b.drop();
    });

    it('(e) blocks written after others keep where they were written: seen earlier or later than that, they equal re-encoding, and blocks that sit as written share one rotated query', async () => {
      // P written alone; X after P; Q after P and X. The row then sees [X, Q, P, Y]: X and Q both
      // moved 5 back (one view slot), P moved 11 on (another), Y new (nothing in the cache yet).
      const bp = lm.cache.createBlock('P');
      const bx = lm.cache.createBlock('X');
      const bq = lm.cache.createBlock('Q');
      const by = lm.cache.createBlock('Y');
      await lm.forward([{ view: [bp], tokens: P }]);
      await lm.forward([{ view: [bp, bx], tokens: X }]);
      await lm.forward([{ view: [bp, bx, bq], tokens: Q }]);
      const got = (await lm.forward([{ view: [bx, bq, bp, by], tokens: Y, logits: 'all' }])).logits[0];
      if (mode === 'rotate-query') expect(lm.lastStep.viewSlots).toBe(2);

      const nP = P.length, nX = X.length, nQ = Q.length;
      const seen = (from: number, n: number, at: number): [number, number][] => Array.from({ length: n }, (_, u) => [from + u, at + u]);
      const layout: { token: number; position: number; sees: [number, number][] }[] = [];
      P.forEach((token, i) => layout.push({ token, position: i, sees: seen(0, i + 1, 0) }));
      X.forEach((token, i) => layout.push({ token, position: nP + i, sees: [...seen(0, nP, 0), ...seen(nP, i + 1, nP)] }));
      Q.forEach((token, i) => layout.push({ token, position: nP + nX + i, sees: [...seen(0, nP + nX, 0), ...seen(nP + nX, i + 1, nP + nX)] }));
      const o = nP + nX + nQ;
      const view = [...seen(nP, nX, 0), ...seen(nP + nX, nQ, nX), ...seen(0, nP, nX + nQ)];
      Y.forEach((token, i) => layout.push({ token, position: o + i, sees: [...view, ...seen(o, i + 1, o)] }));
      const want = ref.forwardLayout(layout).slice(o);
      for (let i = 0; i < Y.length; i++) expect(maxAbsDiff(rowsOf(got, V, i, i + 1), want[i])).toBeLessThanOrEqual(TOL);
      // Y's keys went in where it was written: its next token, seen in the same view, still agrees.
      const next = (await lm.forward([{ view: [bx, bq, bp, by], tokens: [X[0]], persist: false }])).logits[0];
      layout.push({ token: X[0], position: o + Y.length, sees: [...view, ...seen(o, Y.length + 1, o)] });
      expect(maxAbsDiff(next, ref.forwardLayout(layout)[o + Y.length])).toBeLessThanOrEqual(TOL);
      for (const b of [bp, bx, bq, by]) b.drop();
    });

    it('(c) two rows with different views in one batched call equal two separate calls', async () => {
      const bp = lm.cache.createBlock('P');
      const bq = lm.cache.createBlock('Q');
      await lm.forward([{ view: [bp], tokens: P }]);
      await lm.forward([{ view: [bq], tokens: Q }]);
      const w1 = lm.cache.createBlock('w1');
      const w2 = lm.cache.createBlock('w2');
      // Different view lengths, orders and token counts (the shorter row is padded).
      const rows = [
        { view: [bp, bq, w1], tokens: Y, logits: 'all' as const, persist: false },
        { view: [bq, w2], tokens: [X[0]], persist: false },
      ];
      const batched = await lm.forward(rows);
      const alone0 = await lm.forward([rows[0]]);
      const alone1 = await lm.forward([rows[1]]);
      expect(maxAbsDiff(batched.logits[0], alone0.logits[0])).toBeLessThanOrEqual(TOL);
      expect(maxAbsDiff(batched.logits[1], alone1.logits[0])).toBeLessThanOrEqual(TOL);
      expect(batched.logits[0].length).toBe(Y.length * V);
      expect(batched.logits[1].length).toBe(V);
      // And persisting rows append exactly their own tokens to their own blocks.
      await lm.forward(rows.map((r) => ({ ...r, persist: true })));
      expect(w1.tokens).toEqual(Y);
      expect(w2.tokens).toEqual([X[0]]);
      for (const b of [bp, bq, w1, w2]) b.drop();
    });
  });
}

describe('exactness of re-positioning on a one-layer model, graph against graph', () => {
  // With one layer a token's K/V depend only on its id and position, so a block encoded alone
  // and placed at a new offset must give exactly what one from-scratch block gives.
  it('view [P, X, Y] with X encoded alone equals a single-block forward of P+X+Y', async () => {
    process.env.ASYNCVOICE_CACHE_DIR = join(root, 'cache');
    const { dir } = makeTestModel({ out: join(root, 'one-layer'), layers: 1, hidden: 64, heads: 4, kvHeads: 2, headDim: 32, intermediate: 128, seed: 7 });
    const { lm } = await loadCausalLM(dir, { maxPositions: 256 });
    const V = lm.vocabSize;
    const bp = lm.cache.createBlock('P');
    const bx = lm.cache.createBlock('X');
    const by = lm.cache.createBlock('Y');
    await lm.forward([{ view: [bp], tokens: P }]);
    await lm.forward([{ view: [bx], tokens: X }]);
    const got = (await lm.forward([{ view: [bp, bx, by], tokens: Y, logits: 'all' }])).logits[0];
    const full = await scratch(lm, [...P, ...X, ...Y]);
    const o = P.length + X.length;
    expect(maxAbsDiff(got, rowsOf(full, V, o, o + Y.length))).toBeLessThanOrEqual(TOL);
    await lm.close();
  });
});
