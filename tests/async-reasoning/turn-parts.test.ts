import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { AsyncReasoningEngine, type EngineOptions, type StreamName } from '../../src/async-reasoning/engine.ts';
import { planAsyncStep, shouldProbe, type AsyncStepInput } from '../../src/async-reasoning/scheduler.ts';
import { DEFAULT_WRITER_LEAD_MS, writerHoldMs } from '../../src/async-reasoning/speech-pace.ts';
import { TokenStream } from '../../src/async-reasoning/token-stream.ts';
import { UserInput } from '../../src/async-reasoning/user-input.ts';
import type { CausalLM } from '../../src/llm/runtime/causal-lm.ts';
import { Tokenizer } from '../../src/llm/model/tokenizer.ts';
import { collect } from '../helpers/events.ts';
import { makeAndLoad, maxAbsDiff, scratchDir } from '../helpers/models.ts';
import { watchCalls } from '../helpers/recorder.ts';

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

const BIG = 1e4;
const yesIds = () => ['yes', 'Yes', ' yes', ' Yes'].map((w) => tok.encode(w)).filter((x) => x.length === 1).map((x) => x[0]);
const engineWith = (extra: Partial<EngineOptions> = {}) =>
  new AsyncReasoningEngine({ lm, tokenizer: tok, maxThinkingTokens: 40, maxAnswerTokens: 24, controlEvery: 8, ...extra });


describe('user input: talking and stops', () => {
  it('a voice gone quiet stops the talking while the input stays open for the final words; each stop counts once', () => {
    const u = new UserInput('what is', true);
    expect(u.talking).toBe(true);
    u.wentQuiet();
    u.wentQuiet();
    expect([u.talking, u.open, u.stops]).toEqual([false, true, 1]);
    u.end();
    expect([u.talking, u.open, u.stops]).toEqual([false, false, 2]);
    u.end(); // already closed: not a new stop
    expect(u.stops).toBe(2);
    u.interrupted(); // a barge-in: talking again, and a later quiet is a new stop
    expect(u.talking).toBe(true);
    u.wentQuiet();
    expect([u.talking, u.stops]).toEqual([false, 3]);
    expect(new UserInput('typed', false).talking).toBe(false);
  });
});

describe('token stream: incremental text', () => {
  /** A fake block: only its length matters to the stream. */
  const block = () => ({ length: 0, trim: () => undefined }) as never;

  it('gives the same text as decoding every token at once, holding back split characters, and cuts at a character count by lookup', () => {
    const text = 'Snow falls — at −5 °C, 雪が降る 🌨️ on 12 hills.\n\nThen it melts.';
    const ids = tok.encodeText(text);
    const s = new TokenStream(block(), (x) => tok.decode(x), new Set());
    const deltas = ids.map((id) => s.push(id));
    expect(deltas.join('')).toBe(text);
    expect(s.text).toBe(text);
    expect(deltas.some((d) => d.includes('\uFFFD'))).toBe(false);
    // Some token of this text splits a character (CJK and emoji are several byte-level tokens).
    expect(deltas.some((d) => d === '')).toBe(true);
    for (const chars of [0, 1, 7, 20, 23, 30, text.length - 1, text.length]) {
      const keep = s.tokensWithin(chars);
      const kept = tok.decode(ids.slice(0, keep));
      expect(kept.length, `at ${chars}`).toBeLessThanOrEqual(chars);
      expect(kept.includes('\uFFFD')).toBe(false);
      // Keeping one more token would pass the count (or leave a broken character).
      if (keep < ids.length) {
        const more = tok.decode(ids.slice(0, keep + 1));
        expect(more.length > chars || more.endsWith('\uFFFD')).toBe(true);
      }
    }
  });

  it('after a cut, goes on decoding from the kept tokens as if nothing had been cut', () => {
    const a = tok.encodeText('The water cycle has three parts. Evaporation comes first.');
    const b = tok.encodeText(' Snow is different.');
    const s = new TokenStream(block(), (x) => tok.decode(x), new Set());
    for (const id of a) s.push(id);
    const keep = s.tokensWithin(32);
    s.truncate(keep);
    expect(s.text).toBe(tok.decode(a.slice(0, keep)));
    const more = b.map((id) => s.push(id)).join('');
    expect(s.text).toBe(tok.decode([...a.slice(0, keep), ...b]));
    expect(more).toBe(s.text.slice(tok.decode(a.slice(0, keep)).length));
  });
});

describe('async scheduler (no model)', () => {
  const base: AsyncStepInput = { state: 'thinker_only', userOpen: false, userWaiting: false, writerPending: 1, thinkerEnded: false, writerFits: true, thinkerFits: true };
  it('the writer runs only when allowed and the user is quiet; fixed text goes in regardless', () => {
    expect(planAsyncStep(base)).toMatchObject({ writer: null, thinker: true, wait: false });
    expect(planAsyncStep({ ...base, state: 'thinker_and_writer' })).toMatchObject({ writer: 'step', thinker: true });
    expect(planAsyncStep({ ...base, state: 'thinker_and_writer', userOpen: true })).toMatchObject({ writer: null, thinker: true });
    expect(planAsyncStep({ ...base, state: 'writer_only', thinkerEnded: true })).toMatchObject({ writer: 'step', thinker: false });
    expect(planAsyncStep({ ...base, writerPending: 6, userOpen: true })).toMatchObject({ writer: 'fixed' });
  });
  it('a writer whose speech is far ahead of the listener holds: the thinker steps alone, or the turn waits', () => {
    expect(planAsyncStep({ ...base, state: 'thinker_and_writer', writerHeld: true })).toMatchObject({ writer: null, thinker: true, wait: false });
    expect(planAsyncStep({ ...base, state: 'writer_only', thinkerEnded: true, writerHeld: true })).toMatchObject({ writer: null, wait: true });
    expect(planAsyncStep({ ...base, state: 'writer_only', writerPending: 3, writerHeld: true })).toMatchObject({ writer: 'fixed' });
    expect(writerHoldMs(undefined)).toBe(0);
    expect(writerHoldMs({ queuedMs: () => 5000 })).toBe(5000 - DEFAULT_WRITER_LEAD_MS);
    expect(writerHoldMs({ queuedMs: () => 900, leadMs: 1000 })).toBe(0);
    expect(writerHoldMs({ queuedMs: () => NaN })).toBe(0);
  });
  it('waits when nothing can run, ends on a full writer view, ends the thoughts on a full thinker view', () => {
    expect(planAsyncStep({ ...base, state: 'writer_only', thinkerEnded: true, userOpen: true })).toMatchObject({ wait: true });
    expect(planAsyncStep({ ...base, state: 'writer_only', thinkerEnded: true, userOpen: true, userWaiting: true })).toMatchObject({ wait: false, user: true });
    expect(planAsyncStep({ ...base, state: 'writer_only', writerFits: false }).finish).toBe('context-limit');
    expect(planAsyncStep({ ...base, thinkerFits: false })).toMatchObject({ thinker: false, thinkerOutOfRoom: true, wait: false });
  });
  it('probes every controlEvery thoughts, at a paragraph end or (while the writer waits) when the user has just stopped; while the writer writes only if asked to; never while the user talks', () => {
    const p = { state: 'thinker_only' as const, thinkerEnded: false, userTalking: false, sinceProbe: 20, controlEvery: 20, thinkerParagraph: false };
    expect(shouldProbe(p)).toBe(true);
    expect(shouldProbe({ ...p, sinceProbe: 3 })).toBe(false);
    expect(shouldProbe({ ...p, sinceProbe: 3, thinkerParagraph: true })).toBe(true);
    expect(shouldProbe({ ...p, sinceProbe: 0, thinkerParagraph: true })).toBe(false);
    expect(shouldProbe({ ...p, sinceProbe: 3, userJustDone: true })).toBe(true);
    expect(shouldProbe({ ...p, sinceProbe: 0, userJustDone: true })).toBe(false);
    expect(shouldProbe({ ...p, userTalking: true })).toBe(false);
    // Speech still going on: no probe, whatever else holds.
    expect(shouldProbe({ ...p, sinceProbe: 3, userTalking: true, userJustDone: true })).toBe(false);
    expect(shouldProbe({ ...p, state: 'thinker_and_writer' })).toBe(false);
    // While the writer writes (the method's schedule): every controlEvery thoughts and at paragraph
    // ends, never for the user's stop (the writer is speaking already) nor while they talk.
    const w = { ...p, state: 'thinker_and_writer' as const, whileWriting: true };
    expect(shouldProbe(w)).toBe(true);
    expect(shouldProbe({ ...w, sinceProbe: 3 })).toBe(false);
    expect(shouldProbe({ ...w, sinceProbe: 3, thinkerParagraph: true })).toBe(true);
    expect(shouldProbe({ ...w, sinceProbe: 3, userJustDone: true })).toBe(false);
    expect(shouldProbe({ ...w, userTalking: true })).toBe(false);
    expect(shouldProbe({ ...w, thinkerEnded: true })).toBe(false);
    expect(shouldProbe({ ...w, state: 'writer_only' })).toBe(false);
  });
});

describe('turn controls', () => {
  it('budgets changed mid-turn apply from the next turn, not the running one', async () => {
    const engine = engineWith({ maxThinkingTokens: 30, maxAnswerTokens: 4, controlEvery: 1000 });
    const t1 = engine.startTurn('Count the stars.');
    let changed = false;
    const ev1 = await collect(t1.events, (e) => {
      if (e.type === 'thinking' && !changed) {
        changed = true;
        engine.setBudgets({ maxThinkingTokens: 5 });
      }
    });
    const r1 = await t1.result;
    await t1.settled();
    expect(changed).toBe(true);
    // The tiny model never closes its thoughts: the running turn spends the budget it started with.
    expect(r1.metrics.thinkingTokens).toBe(30);
    expect(ev1.some((e) => e.type === 'state' && e.reason === 'thinking budget spent')).toBe(true);
    const t2 = engine.startTurn('And the moons?');
    await collect(t2.events);
    expect((await t2.result).metrics.thinkingTokens).toBe(5);
    await engine.close();
  });

  for (const mode of ['think', 'nothink'] as const) {
    it(`${mode}: an interrupt stops the answer within one step, keeps only the heard text, and the next words start a turn that sees it`, async () => {
      const engine = engineWith({ maxThinkingTokens: 6, maxAnswerTokens: 60 });
      const t1 = engine.startTurn('Tell me about owls.', { mode });
      const answerIds: number[] = [];
      let afterInterrupt = -1;
      let heard = '';
      const ev = await collect(t1.events, (e) => {
        if (e.type !== 'answer') return;
        answerIds.push(e.tokenId);
        if (afterInterrupt >= 0) afterInterrupt++;
        if (answerIds.length === 10) {
          heard = tok.decode(answerIds.slice(0, 4));
          t1.interrupt({ heardChars: heard.length });
          afterInterrupt = 0;
          t1.addUserInput('wait'); // words said at once go to the next turn, not this one
          expect(t1.acceptsInput).toBe(false);
        }
      });
      const r1 = await t1.result;
      expect(afterInterrupt).toBeLessThanOrEqual(1);
      expect(r1.reason).toBe('interrupted');
      expect(r1.answer).toBe(heard);
      expect(ev.find((e) => e.type === 'interrupted')).toMatchObject({ keptTokens: 4, heardText: heard });
      // The next turn may start while this one is still ending: it waits, then sees the cut answer.
      const t2 = engine.startTurn('wait, what about bats?', { mode });
      await collect(t2.events);
      await t2.settled();
      expect(engine.history[0]).toEqual({ user: 'Tell me about owls.', assistant: `${heard.trim()} (interrupted by the user)` });
      expect(engine.history[1].user).toBe('wait, what about bats?');
      await engine.close();
    });
  }

  it('async: end() after an interruption with nothing said closes the turn with what was heard', async () => {
    const engine = engineWith({ maxThinkingTokens: 200, maxAnswerTokens: 60, logitsHook: (s, l) => void (s === 'control' && yesIds().forEach((i) => (l[i] = BIG))) });
    const t = engine.startTurn('Describe rain.');
    const answerIds: number[] = [];
    let heard = '';
    const ev = await collect(t.events, (e) => {
      if (e.type === 'answer') answerIds.push(e.tokenId);
      if (e.type === 'answer' && answerIds.length === 6) {
        heard = tok.decode(answerIds.slice(0, 3));
        t.interrupt({ heardChars: Promise.resolve(heard.length) });
      }
      if (e.type === 'interrupted') setTimeout(() => t.end(), 20);
    });
    const r = await t.result;
    await t.settled();
    expect(r.reason).toBe('interrupted');
    expect(r.answer).toBe(heard);
    expect(ev.at(-1)).toMatchObject({ type: 'done', reason: 'interrupted' });
    expect(engine.history).toEqual([{ user: 'Describe rain.', assistant: `${heard.trim()} (interrupted by the user)` }]);
    await engine.close();
  });
});

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
    const withPrelude = await spokenExchange({ prelude: true });
    const without = await spokenExchange({});
    expect(withPrelude.history).toEqual(without.history);
    expect(withPrelude.logits.map((l) => `${l.stream}@${l.step}`)).toEqual(without.logits.map((l) => `${l.stream}@${l.step}`));
    const worst = Math.max(...withPrelude.logits.map((l, i) => maxAbsDiff(l.row, without.logits[i].row)));
    expect(worst).toBeLessThanOrEqual(1e-5);
  }, 60_000);

  it("a spoken turn's first thought is one call after its words, not four; a typed turn encodes its own", async () => {
    const firstThoughtCalls = async (opts: Partial<EngineOptions>, final: boolean) => {
      const engine = new AsyncReasoningEngine({ lm, tokenizer: tok, maxThinkingTokens: 4, maxAnswerTokens: 2, ...opts });
      await engine.ready();
      const c = watchCalls(lm);
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
    expect(await firstThoughtCalls({ prelude: true }, false)).toBe(2);
    // Without: user head, tails, splits before them.
    expect(await firstThoughtCalls({}, false)).toBe(5);
    // Typed: head, words, tails, splits, step, as before.
    expect(await firstThoughtCalls({ prelude: true }, true)).toBe(5);
  }, 60_000);

  it('one stands after each turn and after a cut, never more; close gives every block back', async () => {
    const before = lm.cache.blockCount;
    const engine = new AsyncReasoningEngine({ lm, tokenizer: tok, maxThinkingTokens: 4, maxAnswerTokens: 4, prelude: true });
    await engine.ready();
    const withPrelude = lm.cache.blockCount;
    expect(withPrelude).toBeGreaterThan(before); // the prelude's blocks (no history yet)
    const turn = engine.startTurn('Hello there.');
    await collect(turn.events);
    await turn.settled();
    await engine.ready();
    // The typed turn changed the history (one block more): the old prelude went with it, a new one stands.
    expect(engine.historyBlocks).toHaveLength(1);
    expect(lm.cache.blockCount).toBe(withPrelude + 1);
    await engine.truncateAnswer(turn, 0);
    await engine.ready();
    expect(lm.cache.blockCount).toBe(withPrelude + 1);
    await engine.close();
    expect(lm.cache.blockCount).toBe(before);
  }, 60_000);
});
