import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { AsyncReasoningEngine, type EngineOptions, type StreamName } from '../../src/async-reasoning/engine.ts';
import type { CausalLM } from '../../src/llm/causal-lm.ts';
import { Tokenizer } from '../../src/llm/tokenizer.ts';
import { collect } from '../helpers/events.ts';
import { makeAndLoad, maxAbsDiff, scratchDir } from '../helpers/models.ts';

const root = scratchDir();
let lm: CausalLM;
let tok: Tokenizer;
beforeAll(async () => {
  const m = await makeAndLoad('gqa-tied-fp32', root, 2048);
  lm = m.lm;
  tok = await Tokenizer.fromFolder(m.dir);
});
afterAll(async () => {
  await lm.close();
  rmSync(root, { recursive: true, force: true });
});

const yesIds = () => ['yes', 'Yes', ' yes', ' Yes'].map((w) => tok.encode(w)).filter((x) => x.length === 1).map((x) => x[0]);

/** Counts the model's calls (and their rows' new tokens) from now on. */
function countCalls(): { calls: number[][]; restore: () => void } {
  const calls: number[][] = [];
  const forward = lm.forward.bind(lm);
  lm.forward = (rows) => {
    calls.push(rows.map((r) => r.tokens.length));
    return forward(rows);
  };
  return { calls, restore: () => (lm.forward = forward) };
}

/** A typed turn, then two spoken ones whose words arrive while they run, each cut by the listener. Every logit row, in order. */
async function spokenExchange(extra: Partial<EngineOptions>) {
  const logits: { stream: StreamName; step: number; row: Float32Array }[] = [];
  const engine = new AsyncReasoningEngine({
    lm,
    tokenizer: tok,
    maxThinkingTokens: 12,
    maxAnswerTokens: 6,
    controlEvery: 4,
    logitsHook: (stream, l, step) => {
      logits.push({ stream, step, row: Float32Array.from(l) });
      if (stream === 'control') for (const i of yesIds()) l[i] = 1e4;
    },
    ...extra,
  });
  // A typed turn (which encodes its own fixed text) changes the history under a standing prelude.
  const typed = engine.startTurn('Hello.');
  await collect(typed.events);
  for (const words of [['What is', 'seventeen times three'], ['And', 'times four?']]) {
    const turn = engine.startTurn('', { final: false });
    turn.addUserInput(words[0]);
    await collect(turn.events, (e, all) => {
      if (e.type === 'thinking' && all.filter((x) => x.type === 'thinking').length === 3) {
        turn.addUserInput(words[1]);
        turn.endUserInput();
      }
    });
    // The listener heard little of it: the history is re-encoded under the prelude made since.
    await engine.truncateAnswer(turn, 3);
  }
  await engine.close();
  return { logits, history: engine.history };
}

describe('turn prelude: the next spoken turn\'s fixed text, encoded ahead', () => {
  it('a spoken turn on a prelude computes exactly what it computes encoding its own fixed text, after typed turns and cuts changed the history', async () => {
    const withPrelude = await spokenExchange({});
    const without = await spokenExchange({ prelude: false });
    expect(withPrelude.history).toEqual(without.history);
    expect(withPrelude.logits.map((l) => `${l.stream}@${l.step}`)).toEqual(without.logits.map((l) => `${l.stream}@${l.step}`));
    const worst = Math.max(...withPrelude.logits.map((l, i) => maxAbsDiff(l.row, without.logits[i].row)));
    expect(worst).toBeLessThanOrEqual(1e-5);
  }, 60_000);

  it("a spoken turn's first thought is one call after its words, not four; a typed turn encodes its own", async () => {
    const firstThoughtCalls = async (opts: Partial<EngineOptions>, final: boolean) => {
      const engine = new AsyncReasoningEngine({ lm, tokenizer: tok, maxThinkingTokens: 4, maxAnswerTokens: 2, ...opts });
      await engine.ready();
      const c = countCalls();
      try {
        const turn = engine.startTurn(final ? 'What is seventeen times three?' : '', { final });
        if (!final) turn.addUserInput('What is seventeen times three?');
        let n = -1;
        await collect(turn.events, (e) => {
          if (e.type !== 'thinking' || n >= 0) return;
          n = c.calls.length;
          turn.end();
        });
        await turn.settled();
        return n;
      } finally {
        c.restore();
        await engine.close();
      }
    };
    // The words (more than two tokens go in alone), then the first step.
    expect(await firstThoughtCalls({}, false)).toBe(2);
    // Without: user head, tails, splits before them.
    expect(await firstThoughtCalls({ prelude: false }, false)).toBe(5);
    // Typed: head, words, tails, splits, step, as before.
    expect(await firstThoughtCalls({}, true)).toBe(5);
  }, 60_000);

  it('one stands after each turn and after a cut, never more; close gives every block back', async () => {
    const before = lm.cache.blockCount;
    const engine = new AsyncReasoningEngine({ lm, tokenizer: tok, maxThinkingTokens: 4, maxAnswerTokens: 4 });
    await engine.ready();
    const withPrelude = lm.cache.blockCount;
    const turn = engine.startTurn('Hello there.');
    await collect(turn.events);
    await turn.settled();
    await engine.ready();
    // The typed turn changed the history: the old prelude went with it, a new one stands (same count).
    expect(lm.cache.blockCount).toBe(withPrelude);
    await engine.truncateAnswer(turn, 0);
    await engine.ready();
    expect(lm.cache.blockCount).toBe(withPrelude);
    await engine.close();
    expect(lm.cache.blockCount).toBe(before);
  }, 60_000);
});
