/**
 * Asynchronous-reasoning benchmark, on a random-weight model with real Qwen3 shapes:
 *  1. a batched thinker+writer step vs a single-stream step, over the async layout (goal ≤ 1.3×);
 *  2. the share of a step spent on cache bookkeeping (goal ≤ 5 %);
 *  3. first-answer-token time and total delay, async vs think-then-answer (and no-think), on a
 *     fixed set of questions, with ratios. All figures come from this one run.
 *
 *   npm run bench:async -- [--preset qwen3-0.6b] [--max-thinking 96] [--max-answer 32] [--steps 12] [--weights fp32|int4]
 */
import { parseArgs } from 'node:util';
import { AsyncReasoningEngine } from '../src/async-reasoning/engine.ts';
import { SpeechDelayObserver } from '../src/async-reasoning/speech-delay.ts';
import { asyncViews, encodeSeparators, viewUpTo, type AsyncBlocks } from '../src/async-reasoning/layout.ts';
import { promptSetFor } from '../src/async-reasoning/prompts.ts';
import type { CacheBlock } from '../src/llm/runtime/kv-cache.ts';
import type { Mode, TurnResult } from '../src/async-reasoning/events.ts';
import { ProgressBar } from '../src/cli/progress.ts';
import { loadCausalLM } from '../src/llm/load.ts';
import type { WeightFormat } from '../src/llm/graph/contract.ts';
import { Tokenizer } from '../src/llm/model/tokenizer.ts';
import { benchModel, fmt, median } from './shared.ts';

const { values: args } = parseArgs({
  options: {
    preset: { type: 'string', default: 'qwen3-0.6b' },
    'max-thinking': { type: 'string', default: '96' },
    'max-answer': { type: 'string', default: '32' },
    steps: { type: 'string', default: '12' },
    weights: { type: 'string', default: 'fp32' },
  },
});
const QUESTIONS = ['Why is the sky blue?', 'What is seventeen times three?', 'How do vaccines train the immune system?'];

const dir = benchModel(args.preset!);
const bar = new ProgressBar('graph');
const weights = args.weights as WeightFormat;
const { lm, config } = await loadCausalLM(dir, { maxPositions: 4096, weights, onProgress: (p) => p.stage === 'build' && bar.update(p.done, p.total, p.what) });
bar.done();
const tokenizer = await Tokenizer.fromFolder(dir);

// 1 + 2: steps over the real async layout, in the middle of a turn (prompts, 200 thoughts, 40 answer tokens).
process.stderr.write('measuring batched vs single-stream steps...\n');
// The async layout (the engine's own definition) with the real prompt set, without the engine's loop.
const p = promptSetFor((t) => tokenizer.tokenId(t) !== undefined);
const blockNames: Record<Exclude<keyof AsyncBlocks, 'history'>, string> = {
  writerSystem: 'writer_system', thinkerSystem: 'thinker_system', userHead: 'user_head', userInput: 'user_input',
  writerTail: 'writer_tail', thinkerTail: 'thinker_tail', writerSplit: 'writer_split', thinkerSplit: 'thinker_split',
  writerOutput: 'writer_output', thinkerOutput: 'thinker_output', control: 'control_question',
};
// Complete by construction: the record above names every block of the layout.
const blocks = { ...Object.fromEntries(Object.entries(blockNames).map(([k, name]) => [k, lm.cache.createBlock(name)])), history: [] } as unknown as AsyncBlocks;
const views = asyncViews(blocks);
const ids = (text: string) => (text ? tokenizer.encode(text) : []);
const feed = async (view: CacheBlock[], text: string) => {
  if (text) await lm.forward([{ view, tokens: ids(text) }]);
};
await feed([blocks.writerSystem], p.writerSystem);
await feed([blocks.thinkerSystem], p.thinkerSystem);
await feed(viewUpTo(views.user, blocks.userHead), p.userHead);
await feed(views.user, QUESTIONS[0]);
await encodeSeparators(lm, blocks, { thinkerTail: ids(p.thinkerTail), writerTail: ids(p.writerTail), thinkerSplit: ids(p.thinkerSplit), writerSplit: ids(p.writerSplit) });
await lm.forward([{ view: views.thinker, tokens: Array.from({ length: 200 }, (_, i) => 1000 + i) }]);
await lm.forward([{ view: views.writer, tokens: Array.from({ length: 40 }, (_, i) => 3000 + i) }]);
const one: number[] = [];
const two: number[] = [];
const book: number[] = [];
const steps = Number(args.steps);
for (let i = 0; i < steps + 2; i++) {
  // Interleaved, so drift on a noisy machine hits both alike.
  let t = performance.now();
  await lm.forward([{ view: views.thinker, tokens: [500 + i], persist: false }]);
  if (i >= 2) one.push(performance.now() - t);
  t = performance.now();
  await lm.forward([
    { view: views.thinker, tokens: [600 + i], persist: false },
    { view: views.writer, tokens: [700 + i], persist: false },
  ]);
  if (i >= 2) {
    two.push(performance.now() - t);
    const s = lm.lastStep;
    book.push((s.prepareMs + s.commitMs) / (s.prepareMs + s.runMs + s.commitMs));
  }
}
const ctx = views.thinker.reduce((a, b) => a + b.length, 0);
for (const b of Object.values(blocks)) b.drop();

// 3: whole turns.
type Run = TurnResult & { totalDelayMs: number };
const results: Record<Mode, Run[]> = { async: [], think: [], nothink: [] };
for (const q of QUESTIONS) {
  for (const mode of ['async', 'think', 'nothink'] as Mode[]) {
    process.stderr.write(`turn: ${mode} — ${q}\n`);
    const e = new AsyncReasoningEngine({ lm, tokenizer, maxThinkingTokens: Number(args['max-thinking']), maxAnswerTokens: Number(args['max-answer']) });
    await e.ready(); // standing prompts are encoded at start-up, not in the turn
    const turn = e.startTurn(q, { mode });
    const speech = new SpeechDelayObserver();
    for await (const ev of turn.events) speech.observe(ev);
    results[mode].push({ ...(await turn.result), totalDelayMs: speech.totalDelayMs });
    await turn.settled();
  }
}

console.log(`\nAsync-reasoning benchmark — ${config.modelType} ${args.preset} shapes, random weights, ${weights} linear weights, CPU`);
console.log(`\n1. step cost over the async layout (thinker view ${ctx} tokens), median of ${steps}:`);
console.log(`   single stream ${fmt(median(one))} ms; thinker+writer batched ${fmt(median(two))} ms; ratio ${fmt(median(two) / median(one), 2)}× (goal ≤ 1.3×; two separate steps would be 2×)`);
console.log(`2. cache bookkeeping (views, masks, block updates; the K/V store is part of the run) per batched step: ${fmt(100 * median(book), 2)} % (goal ≤ 5 %)`);
console.log(`\n3. turns (max ${args['max-thinking']} thinking / ${args['max-answer']} answer tokens; speech at 165 words/min):`);
console.log('   question                                      mode     first answer ms (step)   total delay ms   thinking tok   probes');
for (let i = 0; i < QUESTIONS.length; i++) {
  for (const mode of ['async', 'think', 'nothink'] as Mode[]) {
    const r = results[mode][i];
    const m = r.metrics;
    console.log(
      `   ${QUESTIONS[i].slice(0, 44).padEnd(44)}  ${mode.padEnd(7)}  ${`${fmt(m.firstAnswerTokenMs ?? NaN, 0)} (${m.firstAnswerTokenStep})`.padStart(22)}  ${fmt(r.totalDelayMs, 0).padStart(15)}  ${String(m.thinkingTokens).padStart(13)}  ${String(m.controlProbes).padStart(7)}`,
    );
  }
}
const avg = (mode: Mode, f: (r: Run) => number) => results[mode].reduce((a, r) => a + f(r), 0) / results[mode].length;
const fat = (r: Run) => r.metrics.firstAnswerTokenMs ?? NaN;
const del = (r: Run) => r.totalDelayMs;
console.log(`\n   mean first answer token: async ${fmt(avg('async', fat), 0)} ms, think ${fmt(avg('think', fat), 0)} ms → think/async ${fmt(avg('think', fat) / avg('async', fat), 2)}×`);
console.log(`   mean total delay:        async ${fmt(avg('async', del), 0)} ms, think ${fmt(avg('think', del), 0)} ms → think/async ${fmt(avg('think', del) / avg('async', del), 2)}×`);
console.log('   (random weights: the thinker never closes its thoughts, so think mode always spends its whole budget; when async starts writing is decided by this model\'s own probe answers.)');
await lm.close();
