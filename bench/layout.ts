/**
 * How far the shared-cache layout moves the trained model's predictions: every row the engine
 * runs in async turns on held-out problems (writer, thinker, control question, the user's words)
 * is compared with the same token sequence encoded from scratch as one contiguous sequence, the
 * way the model was trained. The cache differs from that in two ways: the shared blocks (history,
 * the user's words) are encoded without a system block before them (or, with `--shared-after
 * thinker-system`, after the thinker's), and each stream reads the other's tokens with the K/V they
 * got in their own stream's view. Mean KL(engine ‖ contiguous) and top-1 agreement per row kind,
 * and the answers' accuracy, for each placement of the shared blocks.
 *
 *   npm run bench:layout -- [--model DIR] [--problems 40] [--weights fp32] [--shared-after nothing,thinker-system]
 */
import { parseArgs } from 'node:util';
import { AsyncReasoningEngine } from '../src/async-reasoning/engine.ts';
import type { ForwardRow } from '../src/llm/runtime/causal-lm.ts';
import type { WeightFormat } from '../src/llm/graph/contract.ts';
import { DEFAULT_MODEL, shippedModel } from '../src/llm/model/default-model.ts';
import { loadCausalLM } from '../src/llm/load.ts';
import { Tokenizer } from '../src/llm/model/tokenizer.ts';
import type { SharedAfter } from '../src/async-reasoning/turn-context.ts';
import { answersCorrectly, evalProblems } from '../training/task.ts';
import { fmt, klAndTop1, logSoftmax } from './shared.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    problems: { type: 'string', default: '40' },
    weights: { type: 'string', default: 'fp32' },
    'shared-after': { type: 'string', default: 'nothing,thinker-system' },
  },
});
args.model ??= shippedModel();
if (!args.model) {
  console.error(`no --model given, and no shipped model at ${DEFAULT_MODEL}: train one with training/run.sh, or name a folder`);
  process.exit(2);
}

const { lm } = await loadCausalLM(args.model!, { weights: args.weights as WeightFormat, maxPositions: 2048 });
const tok = await Tokenizer.fromFolder(args.model!);

interface Seen {
  kind: string;
  seq: number[];
  logits: Float32Array;
}
const seen: Seen[] = [];
const forward = lm.forward.bind(lm);
// Each row as the engine runs it: the tokens of its view at call time, then its own new tokens.
const patched = async (rows: ForwardRow[]) => {
  const before = rows.map((r) => ({ kind: r.view[r.view.length - 1].name, seq: [...r.view.flatMap((b) => b.tokens), ...r.tokens], last: r.logits === undefined || r.logits === 'last' }));
  const res = await forward(rows);
  before.forEach((b, i) => b.last && b.seq.length > 1 && seen.push({ kind: b.kind, seq: b.seq, logits: Float32Array.from(res.logits[i]) }));
  return res;
};

for (const sharedAfter of args['shared-after']!.split(',') as SharedAfter[]) {
  seen.length = 0;
  lm.forward = patched;
  const engine = new AsyncReasoningEngine({ lm, tokenizer: tok, keepHistory: false, maxThinkingTokens: 256, maxAnswerTokens: 64, sharedAfter });
  const problems = evalProblems(Number(args.problems));
  let right = 0;
  for (const p of problems) {
    const turn = engine.startTurn(p.question);
    for await (const _ of turn.events);
    right += answersCorrectly(p, (await turn.result).answer) ? 1 : 0;
    await turn.settled();
  }
  await engine.close();
  lm.forward = forward;
  const byKind = new Map<string, { n: number; kl: number; agree: number; maxKl: number }>();
  for (const s of seen) {
    const block = lm.cache.createBlock('contiguous');
    const ref = (await forward([{ view: [block], tokens: s.seq, persist: false }])).logits[0];
    block.drop();
    const { kl, sameTop } = klAndTop1(logSoftmax(s.logits), logSoftmax(ref));
    const k = byKind.get(s.kind) ?? { n: 0, kl: 0, agree: 0, maxKl: 0 };
    k.n++;
    k.kl += kl;
    k.maxKl = Math.max(k.maxKl, kl);
    k.agree += sameTop ? 1 : 0;
    byKind.set(s.kind, k);
  }
  console.log(`\nshared blocks after ${sharedAfter}: engine layout vs one contiguous sequence, ${problems.length} held-out problems in async mode (${args.weights}); answers right: ${right}/${problems.length}\n`);
  console.log('row (block written)      rows   mean KL (nats)   max KL   top-1 agree %');
  for (const [kind, k] of byKind) console.log(`${kind.padEnd(22)} ${String(k.n).padStart(6)}   ${(k.kl / k.n).toExponential(2).padStart(14)}   ${k.maxKl.toExponential(2).padStart(6)}   ${fmt((100 * k.agree) / k.n, 2).padStart(13)}`);
}
await lm.close();
