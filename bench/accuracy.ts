/**
 * The paper's table on the shipped model: held-out problems (numbers and phrasings never trained
 * on) answered through the real engine, async vs think-then-answer vs no-think, fp32 and int4.
 * Per configuration: accuracy (digits and number words apart), thinking tokens, first answer token
 * (steps and ms), total delay, the probe's yes-rate, and how often the writer said a number before
 * the thoughts had it. Then int4 against fp32 on the trained weights: mean KL of next-token
 * distributions and top-1 agreement over the think-mode sequences of held-out problems.
 *
 *   npm run bench:accuracy -- [--model DIR] [--problems 300] [--modes async,think,nothink]
 *     [--weights fp32,int4] [--probe-while-writing on,off] [--probe-reads fresh,cache] [--hand-back sentence] [--json]
 */
import { parseArgs } from 'node:util';
import { AsyncReasoningEngine } from '../src/async-reasoning/engine.ts';
import type { EngineEvent, Mode } from '../src/async-reasoning/events.ts';
import { promptSetFor } from '../src/async-reasoning/prompts.ts';
import { SpeechDelayObserver } from '../src/async-reasoning/speech-delay.ts';
import { StandingPrompts } from '../src/async-reasoning/standing-prompts.ts';
import type { HandBack, ProbeReads } from '../src/async-reasoning/turn-config.ts';
import { ProgressBar } from '../src/cli/progress.ts';
import type { WeightFormat } from '../src/llm/graph/contract.ts';
import { DEFAULT_MODEL, shippedModel } from '../src/llm/model/default-model.ts';
import { loadCausalLM, type LoadedModel } from '../src/llm/load.ts';
import { Tokenizer } from '../src/llm/model/tokenizer.ts';
import { tokenize } from '../training/generate.ts';
import { SampleMaker } from '../training/samples.ts';
import { Rand, answersCorrectly, evalProblems, type Problem } from '../training/task.ts';
import { fmt, klAndTop1, logSoftmax, median } from './shared.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    problems: { type: 'string', default: '300' },
    modes: { type: 'string', default: 'async,think,nothink' },
    weights: { type: 'string', default: 'fp32,int4' },
    'probe-while-writing': { type: 'string', default: 'on' },
    'probe-reads': { type: 'string', default: 'fresh' },
    'hand-back': { type: 'string', default: 'sentence' },
    'max-thinking': { type: 'string', default: '256' },
    'max-answer': { type: 'string', default: '64' },
    'kl-problems': { type: 'string', default: '100' },
    json: { type: 'boolean', default: false },
  },
});
args.model ??= shippedModel();
if (!args.model) {
  console.error(`no --model given, and no shipped model at ${DEFAULT_MODEL}: train one with training/run.sh, or name a folder`);
  process.exit(2);
}

export interface TurnReport {
  correct: boolean;
  spoken: boolean;
  kind: string;
  answer: string;
  thinkingTokens: number;
  firstAnswerTokenStep: number | null;
  firstAnswerTokenMs: number | null;
  totalDelayMs: number;
  probes: number;
  probeYes: number;
  /** The writer said a number the thoughts did not hold yet. */
  earlyNumber: boolean;
}

/** Whether, at any moment, the answer completed a number that the thoughts so far did not contain. */
export function saidNumberEarly(events: EngineEvent[]): boolean {
  let thinking = '';
  let answer = '';
  let checked = 0;
  for (const e of events) {
    if (e.type === 'thinking') thinking += e.text;
    if (e.type !== 'answer' && e.type !== 'done') continue;
    if (e.type === 'answer') answer += e.text;
    // Numbers that are complete: followed by something that is not a digit (or the turn ended).
    const complete = e.type === 'done' ? answer : answer.replace(/\d+$/, '');
    for (const m of complete.slice(checked).matchAll(/\d+/g)) {
      // By value: the thoughts write operands at a fixed width ("017").
      if (![...thinking.matchAll(/\d+/g)].some((t) => Number(t[0]) === Number(m[0]))) return true;
    }
    checked = complete.replace(/\d+$/, '').length;
  }
  return false;
}

async function runTurns(model: LoadedModel, tok: Tokenizer, mode: Mode, problems: Problem[], o: { probeWhileWriting: boolean; probeReads: ProbeReads; handBack: HandBack; label: string }): Promise<TurnReport[]> {
  const prompts = promptSetFor((t) => tok.tokenId(t) !== undefined);
  const standing = new StandingPrompts(model.lm, tok, prompts);
  const engine = new AsyncReasoningEngine({
    lm: model.lm,
    tokenizer: tok,
    standing,
    keepHistory: false,
    maxThinkingTokens: Number(args['max-thinking']),
    maxAnswerTokens: Number(args['max-answer']),
    probeWhileWriting: o.probeWhileWriting,
    probeReads: o.probeReads,
    handBack: o.handBack,
  });
  await engine.ready();
  const bar = new ProgressBar(o.label);
  const out: TurnReport[] = [];
  for (const [i, p] of problems.entries()) {
    const turn = engine.startTurn(p.question, { mode });
    const events: EngineEvent[] = [];
    const speech = new SpeechDelayObserver();
    for await (const e of turn.events) {
      events.push(e);
      speech.observe(e);
    }
    const r = await turn.result;
    await turn.settled();
    const controls = events.filter((e) => e.type === 'control');
    out.push({
      correct: answersCorrectly(p, r.answer),
      spoken: p.spoken,
      kind: p.kind,
      answer: r.answer,
      thinkingTokens: r.metrics.thinkingTokens,
      firstAnswerTokenStep: r.metrics.firstAnswerTokenStep,
      firstAnswerTokenMs: r.metrics.firstAnswerTokenMs,
      totalDelayMs: speech.totalDelayMs,
      probes: controls.length,
      probeYes: controls.filter((e) => e.type === 'control' && e.decision === 'yes').length,
      earlyNumber: saidNumberEarly(events),
    });
    const acc = out.filter((x) => x.correct).length / out.length;
    bar.update(i + 1, problems.length, `${(100 * acc).toFixed(1)} % right`);
  }
  bar.done();
  await engine.close();
  await standing.drop();
  return out;
}

function summary(rows: TurnReport[]) {
  const pct = (xs: TurnReport[], f: (r: TurnReport) => boolean) => (xs.length ? (100 * xs.filter(f).length) / xs.length : NaN);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const steps = rows.map((r) => r.firstAnswerTokenStep).filter((x): x is number => x !== null);
  const ms = rows.map((r) => r.firstAnswerTokenMs).filter((x): x is number => x !== null);
  const probes = rows.reduce((a, r) => a + r.probes, 0);
  return {
    accuracy: pct(rows, (r) => r.correct),
    accuracyDigits: pct(rows.filter((r) => !r.spoken), (r) => r.correct),
    accuracyWords: pct(rows.filter((r) => r.spoken), (r) => r.correct),
    byKind: Object.fromEntries(['add', 'sub', 'mul', 'story'].map((k) => [k, pct(rows.filter((r) => r.kind === k), (r) => r.correct)])),
    thinkingTokens: mean(rows.map((r) => r.thinkingTokens)),
    firstAnswerStep: median(steps),
    firstAnswerStepMean: mean(steps),
    firstAnswerMs: median(ms),
    totalDelayMs: median(rows.map((r) => r.totalDelayMs)),
    probeYesRate: probes ? (100 * rows.reduce((a, r) => a + r.probeYes, 0)) / probes : NaN,
    earlyNumberRate: pct(rows, (r) => r.earlyNumber),
  };
}

/** int4 against fp32 on the trained weights: next-token KL(fp32 ‖ int4) and top-1 agreement where the model is trained to predict. */
async function quantisationGap(fp32: LoadedModel, int4: LoadedModel, tok: Tokenizer, n: number) {
  const prompts = promptSetFor((t) => tok.tokenId(t) !== undefined);
  const maker = new SampleMaker(prompts, new Rand(77));
  let kl = 0;
  let agree = 0;
  let count = 0;
  for (const p of evalProblems(n, 99)) {
    const { ids, labels } = tokenize(tok, maker.think(p));
    const at = labels.flatMap((l, i) => (l >= 0 ? [i] : []));
    const run = async (m: LoadedModel) => {
      const b = m.lm.cache.createBlock('kl');
      try {
        return (await m.lm.forward([{ view: [b], tokens: ids, logits: at, persist: false }])).logits[0];
      } finally {
        b.drop();
      }
    };
    const a = await run(fp32);
    const q = await run(int4);
    const V = a.length / at.length;
    for (let r = 0; r < at.length; r++) {
      const d = klAndTop1(logSoftmax(a.subarray(r * V, (r + 1) * V)), logSoftmax(q.subarray(r * V, (r + 1) * V)));
      kl += d.kl;
      agree += d.sameTop ? 1 : 0;
      count++;
    }
  }
  return { positions: count, meanKl: kl / count, top1Agreement: (100 * agree) / count };
}

const problems = evalProblems(Number(args.problems));
const modes = args.modes!.split(',') as Mode[];
const weightsList = args.weights!.split(',') as WeightFormat[];
const pww = args['probe-while-writing']!.split(',').map((x) => x === 'on');
const reads = args['probe-reads']!.split(',') as ProbeReads[];
const handBack = args['hand-back'] as HandBack;
const results: Record<string, ReturnType<typeof summary>> = {};
const loaded: Partial<Record<WeightFormat, LoadedModel>> = {};
const tok = await Tokenizer.fromFolder(args.model!);
for (const weights of weightsList) {
  const bar = new ProgressBar(`graph (${weights})`);
  const model = await loadCausalLM(args.model!, { weights, maxPositions: 2048, onProgress: (p) => p.stage === 'build' && bar.update(p.done, p.total, p.what) });
  bar.done();
  loaded[weights] = model;
  for (const mode of modes) {
    for (const on of mode === 'async' ? pww : [true]) {
      for (const read of mode === 'async' ? reads : (['fresh'] as ProbeReads[])) {
        const key = `${mode}${mode === 'async' && pww.length > 1 ? (on ? ' (probe while writing)' : ' (probe while waiting only)') : ''}${mode === 'async' && reads.length > 1 ? ` (probe reads ${read})` : ''} ${weights}`;
        results[key] = summary(await runTurns(model, tok, mode, problems, { probeWhileWriting: on, probeReads: read, handBack, label: key }));
      }
    }
  }
}
const gap = loaded.fp32 && loaded.int4 ? await quantisationGap(loaded.fp32, loaded.int4, tok, Number(args['kl-problems'])) : null;
for (const m of Object.values(loaded)) await m?.lm.close();

if (args.json) {
  console.log(JSON.stringify({ model: args.model, problems: problems.length, results, int4VsFp32: gap }));
} else {
  console.log(`\n${problems.length} held-out problems (${args.model})\n`);
  console.log('configuration                              acc %  digits  words   add   sub   mul  story  think tok  1st ans step (mean)  1st ans ms  total delay ms  probe yes %  early number %');
  for (const [k, s] of Object.entries(results)) {
    console.log(
      `${k.padEnd(42)} ${fmt(s.accuracy).padStart(5)}  ${fmt(s.accuracyDigits).padStart(6)}  ${fmt(s.accuracyWords).padStart(5)}  ${['add', 'sub', 'mul', 'story'].map((x) => fmt(s.byKind[x]).padStart(5)).join(' ')}  ${fmt(s.thinkingTokens).padStart(9)}  ${String(s.firstAnswerStep).padStart(8)} (${fmt(s.firstAnswerStepMean)})  ${fmt(s.firstAnswerMs).padStart(10)}  ${fmt(s.totalDelayMs).padStart(14)}  ${fmt(s.probeYesRate).padStart(11)}  ${fmt(s.earlyNumberRate).padStart(14)}`,
    );
  }
  const get = (m: string, w: string) => Object.entries(results).find(([k]) => k.startsWith(m) && k.endsWith(w) && !k.includes('waiting only') && !k.includes('reads cache'))?.[1];
  for (const w of weightsList) {
    const a = get('async', w);
    const t = get('think', w);
    if (a && t) console.log(`\n${w}: async − think accuracy ${fmt(a.accuracy - t.accuracy)} points; think's first answer step / async's: ${fmt(t.firstAnswerStepMean / a.firstAnswerStepMean, 2)}× (means)`);
  }
  const a4 = get('async', 'int4');
  const a32 = get('async', 'fp32');
  if (a4 && a32) console.log(`async int4 − fp32 accuracy: ${fmt(a4.accuracy - a32.accuracy)} points`);
  if (gap) console.log(`int4 vs fp32 over ${gap.positions} trained positions of ${args['kl-problems']} held-out think sequences: mean KL ${gap.meanKl.toExponential(3)} nats, top-1 agreement ${fmt(gap.top1Agreement, 2)} %`);
}
