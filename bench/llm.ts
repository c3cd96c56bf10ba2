/**
 * LLM runtime benchmark: prefill tok/s and decode ms/token at several contexts, for both RoPE
 * placement designs, on a random-weight model with real Qwen3 shapes. Prints figures and ratios
 * measured in this one run. Not a test: speed goals live here.
 *
 *   npm run bench:llm -- [--preset qwen3-0.6b] [--contexts 64,512,2048] [--modes rotate-query,rotate-keys]
 *                        [--decode-steps 8] [--threads N] [--device cpu]
 */
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ProgressBar } from '../src/cli/progress.ts';
import type { CausalLM } from '../src/llm/runtime/causal-lm.ts';
import { ROPE_MODES, type RopeMode, type WeightFormat } from '../src/llm/graph/contract.ts';
import { loadCausalLM } from '../src/llm/load.ts';
import type { ExecutionProvider } from '../src/backend/providers.ts';
import { benchModel, fmt, median, tokensFor } from './shared.ts';

const { values: args } = parseArgs({
  options: {
    preset: { type: 'string', default: 'qwen3-0.6b' },
    contexts: { type: 'string', default: '64,512,2048' },
    modes: { type: 'string', default: ROPE_MODES.join(',') },
    'decode-steps': { type: 'string', default: '16' },
    threads: { type: 'string' },
    device: { type: 'string', default: 'cpu' },
    weights: { type: 'string', default: 'fp32,int4' },
  },
});
const contexts = args.contexts!.split(',').map(Number);
const modes = args.modes!.split(',') as RopeMode[];
const weightFormats = args.weights!.split(',') as WeightFormat[];
const decodeSteps = Number(args['decode-steps']);
const PREFILL_CHUNK = 512;

const modelDir = benchModel(args.preset!);

interface ContextFigures {
  context: number;
  prefillTokPerS: number;
  decodeMs: number;
  decode2RowsMs: number;
  bookkeepingShare: number;
}

async function measure(lm: CausalLM, context: number): Promise<ContextFigures> {
  const block = lm.cache.createBlock('bench');
  const prompt = tokensFor(context - decodeSteps - 1, context);
  // Prefill in chunks, as a long prompt would be fed.
  const t0 = performance.now();
  for (let i = 0; i < prompt.length; i += PREFILL_CHUNK) {
    await lm.forward([{ view: [block], tokens: prompt.slice(i, i + PREFILL_CHUNK) }]);
  }
  const prefillTokPerS = prompt.length / ((performance.now() - t0) / 1000);
  // Warm-up steps at this cache size, then timed steps that never grow the cache.
  for (let i = 0; i < 3; i++) await lm.forward([{ view: [block], tokens: [42], persist: false }]);
  const one: number[] = [];
  const bookkeeping: number[] = [];
  for (let i = 0; i < decodeSteps; i++) {
    const t = performance.now();
    await lm.forward([{ view: [block], tokens: [100 + i] }]);
    one.push(performance.now() - t);
    const s = lm.lastStep;
    bookkeeping.push((s.prepareMs + s.commitMs) / (s.prepareMs + s.runMs + s.commitMs));
  }
  // Two rows over the same cache, as thinker and writer advance together.
  const side = lm.cache.createBlock('side');
  const two: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await lm.forward([
      { view: [block], tokens: [7], persist: false },
      { view: [block, side], tokens: [8], persist: false },
    ]);
    two.push(performance.now() - t);
  }
  side.drop();
  block.drop();
  return { context, prefillTokPerS, decodeMs: median(one), decode2RowsMs: median(two.slice(1)), bookkeepingShare: median(bookkeeping) };
}

const results = new Map<string, ContextFigures[]>();
// fp32 for every RoPE design; int4 with the default design (the weights, not RoPE, are what changes).
const variants: { mode: RopeMode; weights: WeightFormat }[] = [
  ...(weightFormats.includes('fp32') ? modes.map((mode) => ({ mode, weights: 'fp32' as const })) : []),
  ...(weightFormats.includes('int4') ? [{ mode: modes[0], weights: 'int4' as const }] : []),
];
let cfgSummary = '';
const weightsBytes = new Map<string, number>();
/** K+V of one token across all layers, as each variant's cache stores it (int4 variants: int8). */
const cacheBytesPerToken = new Map<string, number>();
let attn = { layers: 0, headDim: 0, heads: 0 };
for (const { mode, weights } of variants) {
  const label = weights === 'fp32' ? mode : `${mode}+${weights}`;
  const bar = new ProgressBar(`graph (${label})`);
  const { lm, config, graphPath } = await loadCausalLM(modelDir, {
    ropeMode: mode,
    weights,
    maxPositions: Math.max(...contexts) + 64,
    executionProvider: args.device as ExecutionProvider,
    intraOpThreads: args.threads ? Number(args.threads) : undefined,
    onProgress: (p) => p.stage === 'build' && bar.update(p.done, p.total, p.what),
  });
  bar.done();
  const { hiddenSize: H, intermediateSize: I, numLayers: L, numHeads: NH, numKvHeads: K, headDim: D, vocabSize: V } = config;
  const params = V * H * (config.tieWordEmbeddings ? 1 : 2) + L * (H * NH * D * 2 + H * K * D * 2 + 3 * H * I);
  // Every weight in the graph's data file is read once a step (a tied table once, as the head; the
  // embedding rows gathered are negligible); the RoPE tables beside them are a few MB.
  weightsBytes.set(label, statSync(`${graphPath}.data`).size);
  cacheBytesPerToken.set(label, lm.cache.bytesPerToken);
  attn = { layers: L, headDim: D, heads: NH };
  cfgSummary = `${config.modelType}: ${L} layers, hidden ${H}, heads ${NH}/${K} kv, head_dim ${D}, vocab ${V}, ${(params / 1e6).toFixed(0)}M params`;
  const figs: ContextFigures[] = [];
  for (const c of contexts) {
    process.stderr.write(`measuring ${label} at context ${c}...\n`);
    figs.push(await measure(lm, c));
  }
  results.set(label, figs);
  await lm.close();
}

const { layers: L, headDim: D, heads: NH } = attn;
console.log(`\nLLM runtime benchmark — ${cfgSummary}; device ${args.device}; ${decodeSteps} decode steps per context (median)\n`);
console.log('variant            context  prefill tok/s  decode ms/tok  2-row step ms  2-row/1-row  bookkeeping');
for (const [mode, figs] of results) {
  for (const f of figs) {
    console.log(
      `${mode.padEnd(18)} ${String(f.context).padStart(7)}  ${fmt(f.prefillTokPerS).padStart(13)}  ${fmt(f.decodeMs).padStart(13)}  ${fmt(f.decode2RowsMs).padStart(13)}  ${fmt(f.decode2RowsMs / f.decodeMs, 2).padStart(11)}  ${fmt(100 * f.bookkeepingShare, 2).padStart(10)} %`,
    );
  }
}

// What decode should cost: reading every weight once, plus reading the cache once (K and V, all
// layers). A per-step copy of the cache would add at least one more cache read and write.
const attnFlops = (c: number) => 4 * L * NH * D * c;
const lo = contexts[0];
const hi = contexts[contexts.length - 1];
console.log(`\ndecode cost vs context (bandwidth model: each variant's weights and cache K+V read once a step; attention ${(attnFlops(hi) / 1e9).toFixed(2)} GFLOP/token at ${hi})`);
for (const [mode, figs] of results) {
  const w = weightsBytes.get(mode) ?? 0;
  const cacheBytes = (c: number) => (cacheBytesPerToken.get(mode) ?? 0) * c;
  const expected = (w + cacheBytes(hi)) / (w + cacheBytes(lo));
  const withCopy = (w + 3 * cacheBytes(hi)) / (w + cacheBytes(lo));
  const r = figs[figs.length - 1].decodeMs / figs[0].decodeMs;
  console.log(`  ${mode}: weights ${(w / 2 ** 20).toFixed(0)} MiB, cache ${(cacheBytes(hi) / 2 ** 20).toFixed(0)} MiB at ${hi}; ratio ${hi}/${lo} expected ${fmt(expected, 2)}× if the cache is only read, ≥ ${fmt(withCopy, 2)}× with a per-step copy; measured ${fmt(r, 2)}× (${fmt(figs[figs.length - 1].decodeMs)} / ${fmt(figs[0].decodeMs)} ms)`);
}
const ratioLine = (num: string, den: string) => {
  const a = results.get(den);
  const b = results.get(num);
  if (!a || !b) return;
  console.log(`${num} / ${den} decode ms/token, by context — ${a.map((x, i) => `${x.context}: ${fmt(b[i].decodeMs / x.decodeMs, 2)}×`).join(', ')}`);
};
console.log('');
ratioLine('rotate-keys', 'rotate-query');
ratioLine('rotate-query+int4', 'rotate-query');
