/**
 * Our runtime beside llama.cpp (node-llama-cpp's prebuilt CPU binary) on the same weights and the
 * same threads: the model folder is exported as a q4_0 GGUF, ours runs it with int4 weights (and
 * int4 head, and an int8 K/V cache unless --kv fp32; llama.cpp's cache is f16), prompts on the int8
 * prefill graph unless --prefill-weights same. Each context is measured in rounds A B B A A B B A … (ours first in
 * even rounds, llama.cpp first in odd ones) so that drift in the machine's speed, and whatever
 * the one measured first pays, fall on both. Not a test: figures and ratios from this one run.
 *
 *   npm run bench:peer -- [--preset qwen3-0.6b] [--threads 2] [--contexts 64,512,2048] [--kv int8|fp32] [--prefill-weights int8|same]
 *                         [--decode-steps 16] [--rounds 4] [--json]
 *
 * Per context: prefill tok/s (a prompt of the context's length, fed in chunks of 512), decode
 * ms/token (one token in, logits out, greedy pick), and a batched 2-row step (two streams over
 * that context in one call: our thinker+writer; llama.cpp's two sequences in one batch).
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ProgressBar } from '../src/cli/progress.ts';
import type { Token } from 'node-llama-cpp';
import { exportGguf } from '../src/llm/export/gguf.ts';
import { loadCausalLM } from '../src/llm/load.ts';
import { PREFILL_WEIGHTS, type PrefillWeights } from '../src/llm/graph/contract.ts';
import { KV_FORMATS, type KvFormat } from '../src/llm/graph/contract.ts';
import { argmax } from '../src/llm/runtime/sampling.ts';
import { benchModel, fmt, median, tokensFor } from './shared.ts';

const { values: args } = parseArgs({
  options: {
    preset: { type: 'string', default: 'qwen3-0.6b' },
    threads: { type: 'string', default: '2' },
    kv: { type: 'string', default: 'int8' },
    'prefill-weights': { type: 'string', default: 'int8' },
    contexts: { type: 'string', default: '64,512,2048' },
    'decode-steps': { type: 'string', default: '16' },
    // Four, not two: this 2-core machine's speed moves by ±20 % over seconds, and a 64-token
    // decode block lasts half a second; more, shorter alternations average that out.
    rounds: { type: 'string', default: '4' },
    json: { type: 'boolean', default: false },
  },
});
const threads = Number(args.threads);
const contexts = args.contexts!.split(',').map(Number);
const steps = Number(args['decode-steps']);
const rounds = Number(args.rounds);
const CHUNK = 512;
/** Measured 2-row steps per round, after one warm-up (3 were too few on a noisy machine). */
const TWO_ROW_STEPS = 8;
/** The flag's value if it is one of `allowed`; otherwise exits 2 naming them. */
function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T {
  if (allowed.includes(value as T)) return value as T;
  console.error(`--${flag} must be one of ${allowed.join(', ')}`);
  process.exit(2);
}
const kv = oneOf<KvFormat>('kv', args.kv, KV_FORMATS);
const prefillWeights = oneOf<PrefillWeights>('prefill-weights', args['prefill-weights'], PREFILL_WEIGHTS);
if (![threads, steps, rounds, ...contexts].every((n) => Number.isInteger(n) && n > 0) || contexts.some((c) => c <= steps + 1)) {
  console.error('--threads, --decode-steps, --rounds and --contexts must be positive integers, each context longer than the decode steps');
  process.exit(2);
}
let nlc: typeof import('node-llama-cpp');
try {
  nlc = await import('node-llama-cpp');
} catch (e) {
  console.error(`bench:peer needs node-llama-cpp (a dev dependency; npm ci installs it): ${(e as Error).message}`);
  process.exit(2);
}

const log = (s: string) => process.stderr.write(s + '\n');
const rssMiB = () => process.memoryUsage().rss / 2 ** 20;

// 1. The same weights for both: the bench model's folder, and its q4_0 GGUF (exported once).
const modelDir = benchModel(args.preset!);
const ggufDir = join(process.cwd(), '.cache', 'bench', 'gguf');
mkdirSync(ggufDir, { recursive: true });
const ggufFile = join(ggufDir, `${args.preset}-q4_0.gguf`);
if (!existsSync(ggufFile) || statSync(ggufFile).mtimeMs < statSync(join(modelDir, 'model.safetensors')).mtimeMs) {
  const bar = new ProgressBar('exporting q4_0 GGUF');
  await exportGguf(modelDir, ggufFile, { type: 'q4_0', onProgress: (d, t, w) => bar.update(d, t, w) });
  bar.done();
}

const maxContext = Math.max(...contexts);
let rss = rssMiB();
const bar = new ProgressBar(`our graphs (int4, ${kv} K/V cache, ${prefillWeights} prefill weights)`);
const ours = await loadCausalLM(modelDir, {
  weights: 'int4',
  kv,
  prefillWeights,
  maxPositions: maxContext + 64,
  intraOpThreads: threads,
  onProgress: (p) => p.stage === 'build' && bar.update(p.done, p.total, p.what),
});
bar.done();
const lm = ours.lm;
// One warm-up step: first runs pre-pack weights and size arenas.
{
  const b = lm.cache.createBlock('warm');
  await lm.forward([{ view: [b], tokens: [1, 2, 3] }]);
  b.drop();
}
const oursRss = rssMiB() - rss;

rss = rssMiB();
const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: ggufFile });
const ctx = await model.createContext({ contextSize: maxContext + 64, sequences: 2, threads, batchSize: CHUNK });
const [seqA, seqB] = [ctx.getSequence(), ctx.getSequence()];
const llamaRss = rssMiB() - rss;

interface Figures {
  prefillTokPerS: number[];
  decodeMs: number[];
  twoRowMs: number[];
}
const blank = (): Figures => ({ prefillTokPerS: [], decodeMs: [], twoRowMs: [] });

async function measureOurs(context: number, into: Figures): Promise<void> {
  const block = lm.cache.createBlock('bench');
  const prompt = tokensFor(context - steps, context);
  let t = performance.now();
  for (let i = 0; i < prompt.length; i += CHUNK) await lm.forward([{ view: [block], tokens: prompt.slice(i, i + CHUNK) }]);
  into.prefillTokPerS.push(prompt.length / ((performance.now() - t) / 1000));
  let next = 42;
  for (let i = 0; i < steps; i++) {
    t = performance.now();
    next = argmax((await lm.forward([{ view: [block], tokens: [next] }])).logits[0]);
    into.decodeMs.push(performance.now() - t);
  }
  // Thinker and writer: two rows over the same cache, each at its own layout.
  const side = lm.cache.createBlock('side');
  for (let i = 0; i <= TWO_ROW_STEPS; i++) {
    t = performance.now();
    await lm.forward([
      { view: [block], tokens: [7], persist: false },
      { view: [block, side], tokens: [8], persist: false },
    ]);
    if (i > 0) into.twoRowMs.push(performance.now() - t);
  }
  side.drop();
  block.drop();
}

/** One token in, one greedy token out, as llama.cpp generates. */
async function llamaStep(seq: typeof seqA, token: number): Promise<number> {
  const gen = seq.evaluate([token as Token], { temperature: 0 });
  const r = await gen.next();
  await gen.return();
  if (r.done) throw new Error('llama.cpp produced no token');
  return r.value;
}

async function measureLlama(context: number, into: Figures): Promise<void> {
  const prompt = tokensFor(context - steps, context) as Token[];
  await seqA.clearHistory();
  await seqB.clearHistory();
  let t = performance.now();
  await seqA.evaluateWithoutGeneratingNewTokens(prompt);
  into.prefillTokPerS.push(prompt.length / ((performance.now() - t) / 1000));
  let next = 42;
  for (let i = 0; i < steps; i++) {
    t = performance.now();
    next = await llamaStep(seqA, next);
    into.decodeMs.push(performance.now() - t);
  }
  // Two sequences queued together are decoded in one batch.
  await seqB.evaluateWithoutGeneratingNewTokens(prompt);
  for (let i = 0; i <= TWO_ROW_STEPS; i++) {
    t = performance.now();
    await Promise.all([llamaStep(seqA, 7), llamaStep(seqB, 8)]);
    if (i > 0) into.twoRowMs.push(performance.now() - t);
  }
}

/** The last round's decode median, for stderr: how much the machine moved within the run. */
const roundDecode = (f: Figures) => `decode ${fmt(median(f.decodeMs.slice(-steps)))} ms/token`;
const results: { context: number; ours: Figures; llama: Figures }[] = [];
for (const context of contexts) {
  const r = { context, ours: blank(), llama: blank() };
  for (let round = 0; round < rounds; round++) {
    const ours = async () => {
      await measureOurs(context, r.ours);
      log(`context ${context}, round ${round + 1}/${rounds}: ours ${roundDecode(r.ours)}`);
    };
    const theirs = async () => {
      await measureLlama(context, r.llama);
      log(`context ${context}, round ${round + 1}/${rounds}: llama.cpp ${roundDecode(r.llama)}`);
    };
    for (const measure of round % 2 === 0 ? [ours, theirs] : [theirs, ours]) await measure();
  }
  results.push(r);
}
await ctx.dispose();
await model.dispose();
await llama.dispose();
await lm.close();

const summary = results.map(({ context, ours: o, llama: l }) => {
  const fig = (f: Figures) => ({ prefillTokPerS: median(f.prefillTokPerS), decodeMs: median(f.decodeMs), twoRowMs: median(f.twoRowMs) });
  const a = fig(o);
  const b = fig(l);
  return {
    context,
    ours: { ...a, twoRowPerOneRow: a.twoRowMs / a.decodeMs },
    llamaCpp: { ...b, twoRowPerOneRow: b.twoRowMs / b.decodeMs },
    // Time ratios: ours / llama.cpp (below 1: we are faster). Prefill: our rate / theirs.
    decodeTimeRatio: a.decodeMs / b.decodeMs,
    twoRowTimeRatio: a.twoRowMs / b.twoRowMs,
    prefillRateRatio: a.prefillTokPerS / b.prefillTokPerS,
  };
});
const weights = {
  oursGraphBytes: statSync(ours.graphPath + '.data').size,
  oursPrefillGraphBytes: ours.prefillGraphPath ? statSync(ours.prefillGraphPath + '.data').size : 0,
  ggufBytes: statSync(ggufFile).size,
  oursResidentMiB: oursRss,
  llamaCppResidentMiB: llamaRss,
};

if (args.json) {
  console.log(JSON.stringify({ preset: args.preset, threads, kv, prefillWeights, decodeSteps: steps, rounds, weights, contexts: summary }));
} else {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  console.log(`\nbench:peer — ${args.preset} shapes, random weights, ${threads} threads, ${rounds} alternating rounds (A B B A …), medians`);
  console.log(`weights: ours int4 graph ${mib(weights.oursGraphBytes)}${weights.oursPrefillGraphBytes ? ` + int8 prefill graph ${mib(weights.oursPrefillGraphBytes)}` : ''}, ${kv} K/V cache (resident +${fmt(oursRss, 0)} MiB); llama.cpp q4_0 GGUF ${mib(weights.ggufBytes)} (resident +${fmt(llamaRss, 0)} MiB)\n`);
  console.log('context │ prefill tok/s: ours  llama.cpp  ratio │ decode ms/tok: ours  llama.cpp  ratio │ 2-row ms: ours (×1-row)  llama.cpp (×1-row)');
  for (const s of summary) {
    console.log(
      `${String(s.context).padStart(7)} │ ${fmt(s.ours.prefillTokPerS).padStart(19)} ${fmt(s.llamaCpp.prefillTokPerS).padStart(10)} ${fmt(s.prefillRateRatio, 2).padStart(6)} │ ${fmt(s.ours.decodeMs).padStart(19)} ${fmt(s.llamaCpp.decodeMs).padStart(10)} ${fmt(s.decodeTimeRatio, 2).padStart(6)} │ ${fmt(s.ours.twoRowMs).padStart(14)} (${fmt(s.ours.twoRowPerOneRow, 2)}) ${fmt(s.llamaCpp.twoRowMs).padStart(10)} (${fmt(s.llamaCpp.twoRowPerOneRow, 2)})`,
    );
  }
  console.log('\nratios: prefill = our tok/s ÷ llama.cpp\'s (goal ≥ 0.8); decode = our ms ÷ llama.cpp\'s (goal ≤ 1.0 at 64, ≤ 0.75 at 2048); our 2-row ÷ our 1-row (goal ≤ 1.3 at 2048)');
}
