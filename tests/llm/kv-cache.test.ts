import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { CausalLM } from '../../src/llm/runtime/causal-lm.ts';
import { LocalStepRunner, type StepRunner } from '../../src/llm/runtime/step-runner.ts';
import { BackendError } from '../../src/errors.ts';
import { KvCache } from '../../src/llm/runtime/kv-cache.ts';
import { RuntimeUsageError } from '../../src/errors.ts';
import { makeAndLoad, maxAbsDiff, scratchDir } from '../helpers/models.ts';

const TOL = 1e-4;
const root = scratchDir();
let lm: CausalLM;
let loaded: Awaited<ReturnType<typeof makeAndLoad>>;
beforeAll(async () => {
  loaded = await makeAndLoad('gqa-tied-fp32', root);
  lm = loaded.lm;
});
afterAll(async () => {
  await lm.close();
  rmSync(root, { recursive: true, force: true });
});

const seq = (n: number, start = 1000) => Array.from({ length: n }, (_, i) => start + ((i * 7919) % 5000));

async function lastLogits(view: Parameters<CausalLM['forward']>[0][0]['view'], tokens: number[]) {
  return (await lm.forward([{ view, tokens, persist: false }])).logits[0];
}

describe('KvCache arena', () => {
  it('reports sizes per token and in total', () => {
    const c = new KvCache(3, 2, 8, 16);
    expect(c.bytesPerToken).toBe(3 * 2 * 2 * 8 * 4);
    expect(c.totalBytes).toBe(16 * c.bytesPerToken);
    expect(c.usedSlots).toBe(0);
    c.allocate(20);
    expect(c.capacity).toBe(64); // grown in whole granules of 64 slots
    expect(c.usedSlots).toBe(20);
  });

  it('grows by a quarter, not by doubling, and shrinks to twice what is used', () => {
    // A step reads the whole capacity: an arena just past half full must not cost twice the reads.
    const c = new KvCache(1, 1, 4, 64);
    const a = c.allocate(512);
    expect(c.capacity).toBe(512);
    c.allocate(1);
    expect(c.capacity).toBe(640); // a quarter more
    const b = c.allocate(400); // more than a quarter missing: what is missing, in granules
    expect(c.capacity).toBe(960);
    c.release(a);
    expect(c.shrinkToFit()).toBe(false); // 401 used: more than a quarter
    c.release(b.slice(0, 300));
    expect(c.shrinkToFit()).toBe(true);
    expect(c.capacity).toBe(256); // 101 used: twice that, in granules
  });

  it('growing keeps every token exact (prefill past the first capacity)', async () => {
    const tokens = seq(150);
    const before = lm.cache.capacity;
    const blk = lm.cache.createBlock('long');
    await lm.forward([{ view: [blk], tokens: tokens.slice(0, 100) }]);
    for (const t of tokens.slice(100, 140)) await lm.forward([{ view: [blk], tokens: [t] }]);
    expect(lm.cache.capacity).toBeGreaterThan(before);
    const viaCache = await lastLogits([blk], tokens.slice(140));
    const fresh = lm.cache.createBlock('fresh');
    const fromScratch = await lastLogits([fresh], tokens);
    expect(maxAbsDiff(viaCache, fromScratch)).toBeLessThanOrEqual(TOL);
    blk.drop();
    fresh.drop();
  });

  it('trim frees the tail exactly: trimmed then re-appended equals never appended', async () => {
    const a = lm.cache.createBlock('a');
    await lm.forward([{ view: [a], tokens: seq(10) }]);
    const expected = await lastLogits([a], [42]);
    await lm.forward([{ view: [a], tokens: seq(5, 3000) }]);
    const used = lm.cache.usedSlots;
    a.trim(10);
    expect(a.length).toBe(10);
    expect(lm.cache.usedSlots).toBe(used - 5);
    expect(maxAbsDiff(await lastLogits([a], [42]), expected)).toBeLessThanOrEqual(TOL);
    // Freed slots are reused by the next append and hold the new tokens.
    await lm.forward([{ view: [a], tokens: seq(5, 4000) }]);
    expect(lm.cache.usedSlots).toBe(used);
    a.drop();
  });

  it('a run that fails takes no slots and changes no block; the next run is exact', async () => {
    const { config, graphPath } = loaded;
    const real = await LocalStepRunner.create({ graphPath, numLayers: config.numLayers, kvHeads: config.numKvHeads, headDim: config.headDim, backend: {} });
    let failNext = false;
    // The real runner, except that one run fails after its graph ran (as a step that errors would).
    const runner: StepRunner = {
      arena: real.arena,
      run: async (feeds, capacity, store) => {
        if (!failNext) return real.run(feeds, capacity, store);
        failNext = false;
        throw new BackendError('inference step failed: injected');
      },
      close: () => real.close(),
    };
    const own = new CausalLM(config, runner, lm.maxPositions, lm.ropeMode, lm.kv);
    try {
      const a = own.cache.createBlock('a');
      await own.forward([{ view: [a], tokens: seq(10) }]);
      const used = own.cache.usedSlots;
      const expected = (await own.forward([{ view: [a], tokens: [42], persist: false }])).logits[0];
      failNext = true;
      // More new tokens than the arena has free: the failed run also grew it.
      await expect(own.forward([{ view: [a], tokens: seq(100, 3000) }])).rejects.toThrow(/injected/);
      expect(a.length).toBe(10);
      expect(own.cache.usedSlots).toBe(used);
      expect(maxAbsDiff((await own.forward([{ view: [a], tokens: [42], persist: false }])).logits[0], expected)).toBeLessThanOrEqual(TOL);
      // The slots it had taken are handed out again and hold what is written next.
      await own.forward([{ view: [a], tokens: seq(100, 3000) }]);
      expect(own.cache.usedSlots).toBe(used + 100);
      const fresh = own.cache.createBlock('fresh');
      const direct = (await own.forward([{ view: [fresh], tokens: [...seq(10), ...seq(100, 3000), 42], persist: false }])).logits[0];
      expect(maxAbsDiff((await own.forward([{ view: [a], tokens: [42], persist: false }])).logits[0], direct)).toBeLessThanOrEqual(TOL);
    } finally {
      await own.close();
    }
  });

  it('fork copies K/V so both blocks continue independently', async () => {
    const a = lm.cache.createBlock('a');
    await lm.forward([{ view: [a], tokens: seq(8) }]);
    const b = a.fork('b');
    expect(b.tokens).toEqual(a.tokens);
    expect(maxAbsDiff(await lastLogits([b], [7]), await lastLogits([a], [7]))).toBeLessThanOrEqual(TOL);
    await lm.forward([{ view: [a], tokens: [11, 12] }]);
    a.clear();
    expect(a.length).toBe(0);
    const fresh = lm.cache.createBlock('fresh');
    expect(maxAbsDiff(await lastLogits([b], [7]), await lastLogits([fresh], [...seq(8), 7]))).toBeLessThanOrEqual(TOL);
    for (const x of [a, b, fresh]) x.drop();
  });

  it('rejects misuse with clear errors and leaves the cache untouched', async () => {
    const a = lm.cache.createBlock('a');
    await expect(lm.forward([])).rejects.toThrow(RuntimeUsageError);
    await expect(lm.forward([{ view: [a], tokens: [] }])).rejects.toThrow(/no tokens/);
    await expect(lm.forward([{ view: [a], tokens: [lm.vocabSize] }])).rejects.toThrow(/outside vocab/);
    await expect(lm.forward([{ view: [a, a], tokens: [1] }])).rejects.toThrow(/twice/);
    await expect(
      lm.forward([
        { view: [a], tokens: [1] },
        { view: [a], tokens: [2] },
      ]),
    ).rejects.toThrow(/two rows append/);
    const other = new KvCache(1, 1, 2).createBlock('foreign');
    await expect(lm.forward([{ view: [other], tokens: [1] }])).rejects.toThrow(/another cache/);
    await expect(lm.forward([{ view: [a], tokens: new Array(lm.maxPositions + 1).fill(1) }])).rejects.toThrow(/position/);
    expect(a.length).toBe(0);
    a.drop();
    expect(() => a.fork('x')).toThrow(/dropped/);
  });

  it('a long row fed in pieces computes exactly what one run computes, rows of its call included', async () => {
    const chunkWas = lm.maxChunkTokens;
    const setup = async () => {
      const x = lm.cache.createBlock('x');
      const y = lm.cache.createBlock('y');
      await lm.forward([{ view: [x], tokens: seq(5, 2000) }]);
      await lm.forward([{ view: [x, y], tokens: seq(3, 2500) }]);
      return { x, y };
    };
    // Row 0 is long and sees y; row 1 writes into y and sees x: neither may see the other's new tokens.
    const call = (x: ReturnType<typeof lm.cache.createBlock>, y: typeof x) =>
      lm.forward([
        { view: [y, x], tokens: seq(40, 100), logits: 'all' },
        { view: [x, y], tokens: seq(2, 3000) },
      ]);
    try {
      lm.maxChunkTokens = 1000;
      const whole = await setup();
      const a = await call(whole.x, whole.y);
      lm.maxChunkTokens = 7;
      const pieces = await setup();
      const b = await call(pieces.x, pieces.y);
      expect(b.logits[0].length).toBe(40 * lm.vocabSize);
      expect(maxAbsDiff(a.logits[0], b.logits[0])).toBeLessThanOrEqual(TOL);
      expect(maxAbsDiff(a.logits[1], b.logits[1])).toBeLessThanOrEqual(TOL);
      // The K/V the pieces left behind are the same too.
      expect(maxAbsDiff(await lastLogits([whole.y, whole.x], [9]), await lastLogits([pieces.y, pieces.x], [9]))).toBeLessThanOrEqual(TOL);
      // A probe row in pieces leaves no trace.
      const len = pieces.x.length;
      await lm.forward([{ view: [pieces.y, pieces.x], tokens: seq(20, 700), persist: false }]);
      expect(pieces.x.length).toBe(len);
      for (const blk of [whole.x, whole.y, pieces.x, pieces.y]) blk.drop();
    } finally {
      lm.maxChunkTokens = chunkWas;
    }
  });

  it('memory of a long input is bounded by the piece: the mask of one run never holds the whole input', async () => {
    const blk = lm.cache.createBlock('long-input');
    const chunkWas = lm.maxChunkTokens;
    lm.maxChunkTokens = 16;
    const inputs: number[] = [];
    const runner = (lm as unknown as { runner: { run: (f: Record<string, { dims: number[] }>, c: number) => unknown } }).runner;
    const run = runner.run.bind(runner);
    runner.run = (feeds, capacity) => {
      inputs.push(feeds.input_ids.dims[1]);
      return run(feeds, capacity);
    };
    try {
      await lm.forward([{ view: [blk], tokens: seq(100) }]);
      expect(blk.length).toBe(100);
      expect(Math.max(...inputs)).toBe(16);
      expect(inputs.length).toBe(7);
    } finally {
      runner.run = run;
      lm.maxChunkTokens = chunkWas;
      blk.drop();
    }
  });

  it('gives memory back: after blocks are dropped the arena shrinks, and what is left stays exact', async () => {
    const keep = lm.cache.createBlock('keep');
    await lm.forward([{ view: [keep], tokens: seq(12) }]);
    const expected = await lastLogits([keep], [5]);
    const base = lm.cache.capacity;
    const big = lm.cache.createBlock('big');
    await lm.forward([{ view: [big], tokens: seq(600, 50) }]);
    expect(lm.cache.capacity).toBeGreaterThanOrEqual(4 * base);
    big.drop();
    // The next run compacts before it reads the arena.
    expect(maxAbsDiff(await lastLogits([keep], [5]), expected)).toBeLessThanOrEqual(TOL);
    expect(lm.cache.capacity).toBeLessThanOrEqual(Math.max(base, lm.cache.initialCapacity * 2));
    keep.drop();
  });
});
