import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { AsyncReasoningEngine, type EngineOptions, type StreamName } from '../../src/async-reasoning/engine.ts';
import { checkEndOfMessage, tokenProbability } from '../../src/async-reasoning/end-of-message.ts';
import { promptSetFor } from '../../src/async-reasoning/prompts.ts';
import type { EngineEvent } from '../../src/async-reasoning/events.ts';
import type { CausalLM } from '../../src/llm/runtime/causal-lm.ts';
import { loadCausalLM } from '../../src/llm/load.ts';
import { makeTestModel } from '../../src/llm/export/test-model.ts';
import { Tokenizer } from '../../src/llm/model/tokenizer.ts';
import { collect } from '../helpers/events.ts';
import { makeAndLoad, maxAbsDiff, scratchDir } from '../helpers/models.ts';
import { ForwardRecorder, watchCalls } from '../helpers/recorder.ts';
import { ReferenceDecoder } from '../llm/reference-forward.ts';

const TOL = 1e-4;
const root = scratchDir();
let lm: CausalLM;
let tok: Tokenizer;
let dir: string;
beforeAll(async () => {
  const m = await makeAndLoad('gqa-tied-fp32', root, 2048);
  lm = m.lm;
  dir = m.dir;
  tok = await Tokenizer.fromFolder(dir);
});
afterAll(async () => {
  await lm.close();
  rmSync(root, { recursive: true, force: true });
});

const id = (t: string) => {
  const v = tok.tokenId(t);
  if (v === undefined) throw new Error(`no token ${t}`);
  return v;
};
const PARAGRAPH = 271; // "\n\n"
const BIG = 1e4;

/** Forces a decision through the logits, the way a real model's preference would. */
function force(logits: Float32Array, ids: number[]): void {
  for (const i of ids) logits[i] = BIG;
}

function engineWith(hook: EngineOptions['logitsHook'], extra: Partial<EngineOptions> = {}) {
  return new AsyncReasoningEngine({ lm, tokenizer: tok, maxThinkingTokens: 40, maxAnswerTokens: 24, controlEvery: 8, logitsHook: hook, ...extra });
}


const yesIds = () => ['yes', 'Yes', ' yes', ' Yes'].map((w) => tok.encode(w)).filter((x) => x.length === 1).map((x) => x[0]);
const noIds = () => ['no', 'No', ' no', ' No'].map((w) => tok.encode(w)).filter((x) => x.length === 1).map((x) => x[0]);

describe('asynchronous reasoning: exactness over the shared cache', () => {
  it('thinker, writer and control logits equal an oracle that recomputes every K/V from token ids, through probes and mid-flight input', async () => {
    const recorder = new ForwardRecorder(lm);
    const checks: { gid: number; stream: StreamName; step: number; logits: Float32Array }[] = [];
    let turn!: ReturnType<AsyncReasoningEngine['startTurn']>;
    let calls = 0;
    const engine = engineWith((stream, logits, step) => {
      const b = turn.cacheBlocks;
      const target = stream === 'thinker' ? b.thinkerOutput! : stream === 'writer' ? b.writerOutput! : b.control!;
      if (stream === 'control' || calls++ % 3 === 0) checks.push({ gid: recorder.lastQueryInto(target), stream, step, logits: Float32Array.from(logits) });
      if (stream === 'control') force(logits, yesIds());
    });
    let userStep = -1;
    turn = engine.startTurn('What is seventeen times three?');
    await collect(turn.events, (e, all) => {
      if (e.type === 'answer' && all.filter((x) => x.type === 'answer').length === 5) turn.addUserInput('Actually, make it nineteen times three.');
      if (e.type === 'user-input' && e.step > 0) userStep = e.step;
    });
    await turn.settled();
    expect(userStep).toBeGreaterThan(0);
    const streams = new Set(checks.map((c) => c.stream));
    expect(streams).toEqual(new Set(['thinker', 'writer', 'control']));
    expect(checks.some((c) => c.stream === 'thinker' && c.step > userStep)).toBe(true);
    expect(checks.some((c) => c.stream === 'writer' && c.step > userStep)).toBe(true);

    const ref = new ReferenceDecoder(dir);
    const want = ref.forwardLayout(recorder.fed, new Set(checks.map((c) => c.gid)));
    const worst = Math.max(...checks.map((c) => maxAbsDiff(c.logits, want[c.gid])));
    expect(worst).toBeLessThanOrEqual(TOL);
  }, 120_000);

  it('on a one-layer model, each stream equals a from-scratch forward of its token sequence at its positions', async () => {
    process.env.ASYNCVOICE_CACHE_DIR = join(root, 'cache');
    const one = makeTestModel({ out: join(root, 'one-layer'), layers: 1, hidden: 64, heads: 4, kvHeads: 2, headDim: 32, intermediate: 128, seed: 3 });
    const { lm: lm1 } = await loadCausalLM(one.dir, { maxPositions: 2048 });
    const recorder = new ForwardRecorder(lm1);
    const checks: { seq: number[]; logits: Float32Array; stream: StreamName }[] = [];
    const seen = { thinker: 0, writer: 0 };
    let turn!: ReturnType<AsyncReasoningEngine['startTurn']>;
    const engine = new AsyncReasoningEngine({
      lm: lm1,
      tokenizer: tok,
      maxThinkingTokens: 30,
      maxAnswerTokens: 12,
      controlEvery: 6,
      logitsHook: (stream, logits) => {
        const b = turn.cacheBlocks;
        const target = stream === 'thinker' ? b.thinkerOutput! : stream === 'writer' ? b.writerOutput! : b.control!;
        // Every few calls of each stream (counted apart, so neither stream's calls can all fall between checks).
        if (stream === 'control' || seen[stream]++ % 3 === 0) checks.push({ seq: recorder.lastSequenceInto(target), logits: Float32Array.from(logits), stream });
        if (stream === 'control') force(logits, yesIds());
      },
    });
    turn = engine.startTurn('Name three primary colours.', { final: false });
    await collect(turn.events, (e, all) => {
      if (e.type === 'thinking' && all.filter((x) => x.type === 'thinking').length === 4) {
        turn.addUserInput('And explain why.');
        turn.endUserInput();
      }
    });
    expect(new Set(checks.map((c) => c.stream))).toEqual(new Set(['thinker', 'writer', 'control']));
    const ref = new ReferenceDecoder(one.dir);
    for (const c of checks) {
      const last = c.seq.length - 1;
      const layout = c.seq.map((token, t) => ({ token, position: t, sees: c.seq.slice(0, t + 1).map((_, u) => [u, u] as [number, number]) }));
      expect(maxAbsDiff(c.logits, ref.forwardLayout(layout, new Set([last]))[last])).toBeLessThanOrEqual(TOL);
    }
    await lm1.close();
  }, 120_000);
});

describe('asynchronous reasoning: what the control question reads', () => {
  /** Each control question's logits beside a from-scratch forward of the sequence its row saw, on the multi-layer model. */
  async function controlAgainstScratch(probeReads: 'fresh' | 'cache'): Promise<number> {
    const recorder = new ForwardRecorder(lm);
    const checks: { seq: number[]; logits: Float32Array }[] = [];
    let turn!: ReturnType<AsyncReasoningEngine['startTurn']>;
    const engine = engineWith(
      (stream, logits) => {
        if (stream !== 'control') return;
        checks.push({ seq: recorder.lastSequenceInto(turn.cacheBlocks.control!), logits: Float32Array.from(logits) });
        force(logits, yesIds());
      },
      // The shared blocks after the thinker's system block, so that the thinker's view is one sequence up to its tail.
      { probeReads, sharedAfter: 'thinker-system', maxThinkingTokens: 40, maxAnswerTokens: 24, controlEvery: 4 },
    );
    turn = engine.startTurn('What is seventeen times three?');
    await collect(turn.events);
    await turn.settled();
    // Probes after the writer has written: those are the ones the two readings can differ on.
    expect(checks.length).toBeGreaterThan(2);
    const ref = new ReferenceDecoder(dir);
    let worst = 0;
    for (const c of checks) {
      const last = c.seq.length - 1;
      const layout = c.seq.map((token, t) => ({ token, position: t, sees: c.seq.slice(0, t + 1).map((_, u) => [u, u] as [number, number]) }));
      worst = Math.max(worst, maxAbsDiff(c.logits, ref.forwardLayout(layout, new Set([last]))[last]));
    }
    return worst;
  }

  it('fresh (the default): the question reads the answer, the split and the thoughts as one sequence after the thinker\'s tail, exactly as a from-scratch forward does; read from the shared cache it does not', async () => {
    expect(await controlAgainstScratch('fresh')).toBeLessThanOrEqual(TOL);
    // The cache's K/V of the answer were made in the writer's view, and of the split before any answer.
    expect(await controlAgainstScratch('cache')).toBeGreaterThan(100 * TOL);
  }, 120_000);
});

describe('asynchronous reasoning: layout', () => {
  it("each stream sees the other's output at a position of its own layout, as the method lays them out", async () => {
    const engine = engineWith(() => undefined, { maxThinkingTokens: 4, maxAnswerTokens: 2 });
    const first = engine.startTurn('Hello.'); // one finished exchange: one history block in every view
    await first.settled();
    const turn = engine.startTurn('Hi.');
    let names: Record<string, string[]> | null = null;
    await collect(turn.events, (e) => {
      if (e.type === 'thinking' && !names) {
        const v = turn.views as unknown as Record<string, { name: string }[]>;
        names = Object.fromEntries(Object.entries(v).map(([k, blocks]) => [k, blocks.map((b) => b.name)]));
      }
    });
    const user = ['history', 'user_head', 'user_input'];
    expect(names).toEqual({
      user,
      writer: ['writer_system', ...user, 'writer_tail', 'thinker_output', 'writer_split', 'writer_output'],
      thinker: ['thinker_system', ...user, 'thinker_tail', 'writer_output', 'thinker_split', 'thinker_output'],
      control: ['thinker_system', ...user, 'thinker_tail', 'writer_output', 'thinker_split', 'thinker_output', 'control_question'],
    });
    await turn.settled();
  });
});

describe('asynchronous reasoning: states and control', () => {
  it('a "no" from the probe keeps the writer waiting until thinking ends', async () => {
    const engine = engineWith((stream, logits) => stream === 'control' && force(logits, noIds()));
    const turn = engine.startTurn('Is seven a prime number?');
    const events = await collect(turn.events);
    const r = await turn.result;
    const controls = events.filter((e) => e.type === 'control');
    expect(controls.length).toBeGreaterThanOrEqual(3);
    expect(controls.every((c) => c.type === 'control' && c.decision === 'no' && c.pNo > c.pYes)).toBe(true);
    expect(events.some((e) => e.type === 'state' && e.to === 'thinker_and_writer')).toBe(false);
    expect(events.find((e) => e.type === 'state' && e.to === 'writer_only')).toMatchObject({ reason: 'thinking budget spent' });
    expect(r.metrics.thinkingTokens).toBe(40);
    expect(r.metrics.firstAnswerTokenStep).toBeGreaterThan(40);
    await turn.settled();
  });

  it('yes starts the writer; a writer paragraph end waits for the next yes; </think> hands over; EOS ends', async () => {
    let answers = 0;
    let thoughts = 0;
    let probes = 0;
    let thinkerEnded = false;
    let answersAfterEnd = 0;
    const engine = engineWith(
      (stream, logits) => {
        if (stream === 'control') force(logits, probes++ === 1 ? noIds() : yesIds());
        if (stream === 'writer' && ++answers === 3) force(logits, [PARAGRAPH]);
        if (stream === 'writer' && thinkerEnded && ++answersAfterEnd === 3) force(logits, [id('<|im_end|>')]);
        if (stream === 'thinker' && ++thoughts === 30) {
          force(logits, [id('</think>')]);
          thinkerEnded = true;
        }
      },
      { maxThinkingTokens: 200, maxAnswerTokens: 100 },
    );
    const turn = engine.startTurn('Why is the sky blue?');
    const events = await collect(turn.events);
    const states = events.flatMap((e) => (e.type === 'state' ? [`${e.to}: ${e.reason}`] : []));
    // In order (the random model may end more paragraphs of its own; each one pauses too).
    const expected = [
      'thinker_only: turn started',
      'thinker_and_writer: thinker says its thoughts are far enough ahead',
      'thinker_only: writer finished a paragraph; waiting for the thinker',
      'thinker_and_writer: thinker says its thoughts are far enough ahead',
      'writer_only: thinker ended its thoughts',
      'done: end-of-answer',
    ];
    let at = 0;
    for (const s of states) if (s === expected[at]) at++;
    expect(at, states.join('\n')).toBe(expected.length);
    // After every paragraph pause, no answer token until a yes (or the end of thinking); the
    // pause after the forced paragraph end saw a "no" first.
    const pauses = events.flatMap((e, i) => (e.type === 'state' && e.reason.startsWith('writer finished a paragraph') ? [i] : []));
    expect(pauses.length).toBeGreaterThanOrEqual(1);
    for (const p of pauses) {
      const resume = events.findIndex((e, i) => i > p && e.type === 'state' && (e.to === 'thinker_and_writer' || e.to === 'writer_only'));
      expect(resume).toBeGreaterThan(p);
      expect(events.slice(p, resume).some((e) => e.type === 'answer')).toBe(false);
    }
    const firstPauseControls = events.slice(pauses[0]).filter((e) => e.type === 'control').slice(0, 2);
    expect(firstPauseControls.map((e) => e.type === 'control' && e.decision)).toEqual(['no', 'yes']);
    const r = await turn.result;
    expect(r.reason).toBe('end-of-answer');
    expect(r.metrics.answerTokens).toBe(answers - 1); // every writer step but the last gave an answer token
    expect(r.metrics.thinkingTokens).toBe(29);
    await turn.settled();
  });

  it('forbidden tokens never appear in their stream, however strongly the model wants them', async () => {
    const thinkerBad = ['<|im_start|>', '<|im_end|>', '<think>', '<|endoftext|>'].map(id);
    const writerBad = ['<|im_start|>', '<think>', '</think>', '<|endoftext|>'].map(id);
    const engine = engineWith((stream, logits) => {
      if (stream === 'thinker') force(logits, thinkerBad);
      if (stream === 'writer') force(logits, writerBad);
      if (stream === 'control') force(logits, yesIds());
    });
    const turn = engine.startTurn('Tell me a fact about owls.');
    const events = await collect(turn.events);
    const thought = events.flatMap((e) => (e.type === 'thinking' ? [e.tokenId] : []));
    const said = events.flatMap((e) => (e.type === 'answer' ? [e.tokenId] : []));
    expect(thought.length).toBeGreaterThan(10);
    expect(said.length).toBeGreaterThan(10);
    for (const t of thinkerBad) expect(thought).not.toContain(t);
    for (const t of writerBad) expect(said).not.toContain(t);
    await turn.settled();
  });

  it("the writer cannot start to say the engine's own markers", async () => {
    const phrase = tok.encode('(Further private thoughts');
    let i = 0;
    const engine = engineWith((stream, logits) => {
      if (stream === 'control') force(logits, yesIds());
      // The model wants to recite the writer split marker, token by token.
      if (stream === 'writer') force(logits, [phrase[Math.min(i++, phrase.length - 1)]]);
    });
    const turn = engine.startTurn('Tell me a fact about owls.');
    const events = await collect(turn.events);
    const said = events.flatMap((e) => (e.type === 'answer' ? [e.tokenId] : []));
    expect(said[0]).toBe(phrase[0]); // "(" alone is ordinary text…
    const has = (seq: number[]) => said.some((_, k) => seq.every((t, j) => said[k + j] === t));
    expect(has(phrase.slice(0, 2))).toBe(false); // …but "(Further" is where the marker would begin
    expect(has(phrase)).toBe(false);
    await turn.settled();
  });

  it('abort stops within one step, from the turn or an AbortSignal', async () => {
    const engine = engineWith(() => undefined, { maxThinkingTokens: 400 });
    const turn = engine.startTurn('Count to a hundred.');
    let abortStep = -1;
    const events = await collect(turn.events, (e) => {
      if (e.type === 'thinking' && e.step === 5) {
        abortStep = e.step;
        turn.abort();
      }
    });
    const done = events.at(-1)!;
    expect(done).toMatchObject({ type: 'done', reason: 'aborted' });
    expect(done.step - abortStep).toBeLessThanOrEqual(1);
    await turn.settled();
    expect(engine.history).toHaveLength(0); // an aborted turn is not part of the conversation

    const ac = new AbortController();
    const t2 = engine.startTurn('Count to a hundred.', { signal: ac.signal });
    const ev2 = await collect(t2.events, (e) => e.type === 'thinking' && e.step === 3 && ac.abort());
    expect(ev2.at(-1)).toMatchObject({ type: 'done', reason: 'aborted' });
    expect(ev2.at(-1)!.step).toBeLessThanOrEqual(4);
    await t2.settled();
  });
});

describe('asynchronous reasoning: listening and barge-in', () => {
  it('thinks on a partial transcript, takes the rest as it comes, and speaks only after the user stops', async () => {
    const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()));
    const turn = engine.startTurn('What is seventeen', { final: false });
    let endStep = -1;
    const events = await collect(turn.events, (e, all) => {
      const thoughts = all.filter((x) => x.type === 'thinking').length;
      if (e.type === 'thinking' && thoughts === 6) turn.addUserInput('times three?');
      if (e.type === 'thinking' && thoughts === 20) {
        endStep = e.step;
        turn.endUserInput();
      }
    });
    const firstAnswer = events.find((e) => e.type === 'answer')!;
    expect(firstAnswer.step).toBeGreaterThan(endStep);
    expect(events.filter((e) => e.type === 'control').every((e) => e.step >= endStep)).toBe(true);
    const inputs = events.filter((e) => e.type === 'user-input');
    expect(inputs.map((e) => e.type === 'user-input' && e.text)).toEqual(['What is seventeen', 'times three?']);
    expect(engine.history[0].user).toBe('What is seventeen times three?');
    await turn.settled();
  });

  it('asks whether the writer may start as soon as the user stops, not at the next 20th thought', async () => {
    const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()), { controlEvery: 20 });
    const turn = engine.startTurn('What is seventeen', { final: false });
    let endStep = -1;
    const events = await collect(turn.events, (e, all) => {
      if (e.type === 'thinking' && all.filter((x) => x.type === 'thinking').length === 7) {
        endStep = e.step;
        turn.endUserInput();
      }
    });
    const controls = events.filter((e) => e.type === 'control');
    expect(controls[0].step).toBeLessThanOrEqual(endStep + 1);
    const firstAnswer = events.find((e) => e.type === 'answer')!;
    expect(firstAnswer.step).toBeLessThanOrEqual(endStep + 4);
    await turn.settled();
  });

  it("the user's longer words go in alone, not padded beside the streams' one-token rows, and the streams' next step sees them", async () => {
    const { calls, restore } = watchCalls(lm);
    try {
      const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()));
      const turn = engine.startTurn('What is seventeen', { final: false });
      await collect(turn.events, (e, all) => {
        if (e.type === 'thinking' && all.filter((x) => x.type === 'thinking').length === 3) {
          turn.addUserInput('times three, and explain every step of it please');
          turn.endUserInput();
        }
      });
      await turn.settled();
    } finally {
      restore();
    }
    const i = calls.findIndex((rows) => rows.some((t) => tok.decode(t).includes('explain')));
    expect(i).toBeGreaterThan(0);
    expect(calls[i]).toHaveLength(1);
    expect(calls[i][0].length).toBeGreaterThan(2);
    // The very next call steps the thinker (one new token), which now sees the words.
    expect(calls[i + 1].some((t) => t.length === 1)).toBe(true);
  });

  it('asks the control question while the last words are still being recognised; the writer speaks once they are in', async () => {
    const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()), { controlEvery: 20 });
    const turn = engine.startTurn('What is seventeen', { final: false });
    let quietStep = -1;
    let endStep = -1;
    const events = await collect(turn.events, (e, all) => {
      if (e.type !== 'thinking') return;
      const n = all.filter((x) => x.type === 'thinking').length;
      if (n === 7) {
        quietStep = e.step;
        turn.userWentQuiet(); // the listener's turn end
      }
      if (n === 12) {
        endStep = e.step;
        turn.addUserInput('times three'); // the final transcript, recognised meanwhile
        turn.endUserInput();
      }
    });
    const controls = events.filter((e) => e.type === 'control');
    expect(controls[0].step).toBeLessThanOrEqual(quietStep + 1);
    expect(controls[0].step).toBeLessThan(endStep);
    // Released, the writer still waits for the final words; once they are in it needs no second question.
    const answers = events.filter((e) => e.type === 'answer');
    expect(answers[0].step).toBeGreaterThan(endStep);
    expect(answers[0].step).toBeLessThanOrEqual(endStep + 3);
    expect(controls.filter((c) => c.step > endStep && c.step < answers[0].step)).toEqual([]);
    await turn.settled();
    expect(engine.history.at(-1)?.user).toBe('What is seventeen times three');
  });

  it('a voice that goes quiet before the first thought is asked about right after that thought', async () => {
    const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()), { controlEvery: 20 });
    const turn = engine.startTurn('What is seventeen', { final: false });
    turn.userWentQuiet();
    let endStep = -1;
    const events = await collect(turn.events, (e, all) => {
      if (e.type === 'thinking' && all.filter((x) => x.type === 'thinking').length === 6) {
        endStep = e.step;
        turn.endUserInput();
      }
    });
    const firstThought = events.find((e) => e.type === 'thinking')!;
    const controls = events.filter((e) => e.type === 'control');
    expect(controls[0].step).toBeLessThanOrEqual(firstThought.step + 1);
    expect(events.find((e) => e.type === 'answer')!.step).toBeLessThanOrEqual(endStep + 2);
    await turn.settled();
  });

  it('a "no" while the last words are recognised is asked again once they are in', async () => {
    let asked = 0;
    const engine = engineWith((stream, logits) => stream === 'control' && force(logits, asked++ === 0 ? noIds() : yesIds()), { controlEvery: 20 });
    const turn = engine.startTurn('What is seventeen', { final: false });
    let endStep = -1;
    const events = await collect(turn.events, (e, all) => {
      if (e.type !== 'thinking') return;
      const n = all.filter((x) => x.type === 'thinking').length;
      if (n === 5) turn.userWentQuiet();
      if (n === 9) {
        endStep = e.step;
        turn.addUserInput('times three');
        turn.endUserInput();
      }
    });
    const controls = events.filter((e) => e.type === 'control');
    expect(controls[0].step).toBeLessThan(endStep);
    expect(controls[1].step).toBeLessThanOrEqual(endStep + 2);
    expect(events.find((e) => e.type === 'answer')!.step).toBeGreaterThan(controls[1].step);
    await turn.settled();
  });

  it('the writer holds while its speech is far ahead of the listener: the thinker steps alone meanwhile, and the writer goes on once the voice catches up', async () => {
    const { calls, restore } = watchCalls(lm);
    let queuedMs = 0;
    let heldAt = -1;
    let releasedAt = -1;
    let heldStep = -1;
    let releasedStep = -1;
    try {
      const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()), { maxThinkingTokens: 80, maxAnswerTokens: 12 });
      const turn = engine.startTurn('Why is the sky blue?', { pace: { queuedMs: () => queuedMs, leadMs: 4000 } });
      const events = await collect(turn.events, (e, all) => {
        if (e.type === 'answer' && all.filter((x) => x.type === 'answer').length === 4) {
          queuedMs = 4001; // the first chunk's speech went out: the listener has more than the lead to hear
          heldAt = calls.length;
          heldStep = e.step;
        }
        if (e.type === 'thinking' && heldAt >= 0 && releasedAt < 0 && calls.length >= heldAt + 10) {
          queuedMs = 3999;
          releasedAt = calls.length;
          releasedStep = e.step;
        }
      });
      const answerSteps = events.filter((e) => e.type === 'answer').map((e) => e.step);
      const rowsPerCall = calls.map((rows) => rows.length);
      expect(answerSteps).toHaveLength(12);
      // Held: ten calls of the thinker alone, no answer token made in them.
      expect(rowsPerCall.slice(heldAt + 1, releasedAt)).toEqual(Array(releasedAt - heldAt - 1).fill(1));
      expect(answerSteps.filter((s) => s > heldStep && s <= releasedStep)).toEqual([]);
      // Caught up: the writer is back in the thinker's call.
      expect(rowsPerCall.slice(releasedAt, releasedAt + 3)).toContain(2);
      await turn.settled();
    } finally {
      restore();
    }
  });

  it('a held writer with its thinking over waits, making no calls, until the queued speech is down to the lead', async () => {
    const { calls, restore } = watchCalls(lm);
    let holdUntil = -1;
    try {
      const engine = engineWith((stream, logits) => {
        if (stream === 'control') force(logits, yesIds());
        if (stream === 'thinker') force(logits, [id('</think>')]);
      });
      const queuedMs = () => 1000 + Math.max(0, holdUntil - performance.now());
      const turn = engine.startTurn('Why is the sky blue?', { pace: { queuedMs, leadMs: 1000 } });
      let callsAtHold = 0;
      let callsWhileHeld = -1;
      const events = await collect(turn.events, (e, all) => {
        if (e.type === 'answer' && all.filter((x) => x.type === 'answer').length === 2) {
          holdUntil = performance.now() + 300;
          callsAtHold = calls.length;
          setTimeout(() => (callsWhileHeld = calls.length - callsAtHold), 250);
        }
      });
      const answers = events.filter((e) => e.type === 'answer');
      expect(answers).toHaveLength(24);
      expect(callsWhileHeld).toBe(0);
      // No answer token while held; the first after it no earlier than the voice came within the lead.
      const third = answers[2];
      const second = answers[1];
      expect(third.tMs - second.tMs).toBeGreaterThanOrEqual(290);
      await turn.settled();
    } finally {
      restore();
    }
  });

  it('a "yes" at a pause goes back to waiting when the user speaks on: the question is asked again at the next stop', async () => {
    const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()), { controlEvery: 20 });
    const turn = engine.startTurn('What is seventeen', { final: false });
    let resumedStep = -1;
    let quietStep = -1;
    let endStep = -1;
    const events = await collect(turn.events, (e, all) => {
      if (e.type === 'thinking') {
        const n = all.filter((x) => x.type === 'thinking').length;
        if (n === 3) turn.userWentQuiet(); // a pause
        if (n === 12) quietStep = e.step;
        if (n === 12) turn.userWentQuiet(); // the turn end
        if (n === 15) {
          endStep = e.step;
          turn.endUserInput();
        }
      }
      if (e.type === 'control' && resumedStep < 0) {
        // Released at the pause; the voice comes back with more words.
        resumedStep = e.step;
        turn.userResumed();
        turn.addUserInput('times three');
      }
    });
    const states = events.flatMap((e) => (e.type === 'state' ? [{ to: e.to, cause: e.cause, step: e.step }] : []));
    const controls = events.filter((e) => e.type === 'control');
    expect(states.find((x) => x.cause === 'probe-yes')!.step).toBe(resumedStep);
    // The words went in: back to the thinker alone, and no answer until the next stop's question.
    const back = states.find((x) => x.cause === 'user-spoke')!;
    expect(back.to).toBe('thinker_only');
    expect(back.step).toBeGreaterThan(resumedStep);
    expect(controls[1].step).toBeGreaterThanOrEqual(quietStep);
    expect(controls[1].step).toBeLessThanOrEqual(quietStep + 1);
    const firstAnswer = events.find((e) => e.type === 'answer')!;
    expect(firstAnswer.step).toBeGreaterThan(endStep);
    await turn.settled();
    expect(engine.history.at(-1)?.user).toBe('What is seventeen times three');
  });

  it('words that come after the thinker ended its thoughts reopen them; a spent budget stays spent', async () => {
    let endThoughts = true;
    const engine = engineWith((stream, logits) => {
      if (stream === 'control') force(logits, yesIds());
      if (stream === 'thinker' && endThoughts) force(logits, [id('</think>')]);
    });
    const turn = engine.startTurn('What is seventeen', { final: false });
    let addedAt = -1;
    const events = await collect(turn.events, (e, all) => {
      if (e.type === 'state' && e.reason === 'thinker ended its thoughts' && addedAt < 0) {
        endThoughts = false;
        turn.addUserInput('times three?');
        addedAt = e.step;
      }
      if (e.type === 'thinking' && all.filter((x) => x.type === 'thinking').length === 5) turn.endUserInput();
    });
    const input = events.find((e) => e.type === 'user-input' && e.text === 'times three?')!;
    expect(events.filter((e) => e.type === 'thinking' && e.step <= addedAt)).toHaveLength(0); // it ended at once
    const resumed = events.find((e) => e.type === 'state' && e.reason === 'the user said more; thinking resumes')!;
    expect(resumed).toMatchObject({ from: 'writer_only', to: 'thinker_only' });
    expect(resumed.step).toBeGreaterThan(input.step); // the step that put the words in the cache
    // The resumed thoughts come after the words are in the cache, and before any answer.
    const thoughts = events.filter((e) => e.type === 'thinking');
    expect(thoughts.length).toBeGreaterThan(0);
    expect(thoughts[0].step).toBeGreaterThan(resumed.step);
    expect(events.find((e) => e.type === 'answer')!.step).toBeGreaterThan(thoughts[0].step);
    await turn.settled();

    const spent = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()), { maxThinkingTokens: 3 });
    const t2 = spent.startTurn('What is seventeen', { final: false });
    const ev2 = await collect(t2.events, (e) => {
      if (e.type === 'state' && e.reason === 'thinking budget spent') {
        t2.addUserInput('times three?');
        t2.endUserInput();
      }
    });
    expect(ev2.filter((e) => e.type === 'thinking')).toHaveLength(3);
    expect(ev2.some((e) => e.type === 'state' && e.reason.startsWith('the user said more'))).toBe(false);
    expect(ev2.some((e) => e.type === 'answer')).toBe(true);
  });

  it('barge-in keeps exactly the heard tokens, trims the rest, marks the interruption, and the thinker keeps its thoughts', async () => {
    const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()), { maxAnswerTokens: 40, maxThinkingTokens: 120 });
    const turn = engine.startTurn('Describe the water cycle.');
    const answerIds: number[] = [];
    let snapshot: { writer: number[]; thinker: number[]; user: string } | null = null;
    let thinkerBefore: number[] = [];
    let interrupted: Extract<EngineEvent, { type: 'interrupted' }> | null = null;
    let producedAtInterrupt = 0;
    const heardTokens = 5;
    await collect(turn.events, (e) => {
      if (e.type === 'answer') answerIds.push(e.tokenId);
      if (e.type === 'answer' && answerIds.length === 12 && !interrupted) {
        thinkerBefore = [...turn.cacheBlocks.thinkerOutput!.tokens];
        turn.interrupt({ heardChars: tok.decode(answerIds.slice(0, heardTokens)).length });
        turn.addUserInput('Wait, what about snow?');
      }
      if (e.type === 'interrupted') {
        interrupted = e;
        producedAtInterrupt = answerIds.length;
      }
      if (interrupted && !snapshot && e.type === 'thinking' && e.step > interrupted.step) {
        const b = turn.cacheBlocks;
        snapshot = { writer: [...b.writerOutput!.tokens], thinker: [...b.thinkerOutput!.tokens], user: tok.decode(b.userInput!.tokens) };
        turn.endUserInput();
      }
    });
    expect(producedAtInterrupt).toBeGreaterThanOrEqual(12);
    expect(interrupted).toMatchObject({ keptTokens: heardTokens, trimmedTokens: producedAtInterrupt - heardTokens, heardText: tok.decode(answerIds.slice(0, heardTokens)) });
    const start = tok.encode('\n\n');
    const marker = tok.encode(' (interrupted by the user)\n\n');
    // In the cache: the answer's start, exactly the heard tokens, then the marker (its last token is fed with the writer's next step).
    expect(snapshot!.writer).toEqual([...start, ...answerIds.slice(0, heardTokens), ...marker.slice(0, -1)]);
    expect(snapshot!.thinker.slice(0, thinkerBefore.length)).toEqual(thinkerBefore);
    expect(snapshot!.user).toBe('Describe the water cycle.\n\n(The user interrupts the answer: Wait, what about snow?)');
    const r = await turn.result;
    expect(r.answer.startsWith(tok.decode(answerIds.slice(0, heardTokens)))).toBe(true);
    await turn.settled();
  });
});

describe('asynchronous reasoning: conversation', () => {
  it('a finished turn joins the history; later turns see it; old turns make room when the context is full', async () => {
    const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()), { maxThinkingTokens: 16, maxAnswerTokens: 8 });
    const t1 = engine.startTurn('My name is Ada.');
    const r1 = await t1.result;
    await t1.settled();
    expect(engine.history).toEqual([{ user: 'My name is Ada.', assistant: r1.answer.trim() }]);
    const historyText = tok.decode(engine.historyTokens);
    expect(historyText).toBe(`<|im_start|>user\nMy name is Ada.<|im_end|>\n<|im_start|>assistant\n${r1.answer.trim()}<|im_end|>\n`);
    const t2 = engine.startTurn('What is my name?');
    await collect(t2.events, (e) => {
      if (e.type === 'thinking' && e.step === 1) expect(t2.views.thinker?.[1]).toBe(engine.historyBlocks[0]);
    });
    await t2.settled();
    expect(engine.history).toHaveLength(2);
  });

  it('an answer cut after its turn ended keeps only what was heard in the history', async () => {
    const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yesIds()), { maxThinkingTokens: 8, maxAnswerTokens: 12 });
    const t = engine.startTurn('Tell me about owls.');
    const r = await t.result;
    await t.settled();
    const heard = Math.floor(r.answer.trim().length / 2);
    await engine.truncateAnswer(t, heard);
    const want = `${r.answer.trim().slice(0, heard).trimEnd()} (interrupted by the user)`;
    expect(engine.history).toEqual([{ user: 'Tell me about owls.', assistant: want }]);
    expect(tok.decode(engine.historyTokens)).toBe(`<|im_start|>user\nTell me about owls.<|im_end|>\n<|im_start|>assistant\n${want}<|im_end|>\n`);
  });

  it('a turn started right after cutting the last answer computes exactly what it would after the cut had finished', async () => {
    // Same model, same turns; one waits for the history to be re-encoded, the other starts at once.
    const run = async (waitForCut: boolean) => {
      let firstThought: Float32Array | null = null;
      let phase = 0;
      const engine = engineWith(
        (stream, logits) => {
          if (stream === 'control') force(logits, yesIds());
          if (phase === 2 && stream === 'thinker' && !firstThought) firstThought = logits.slice();
        },
        { maxThinkingTokens: 8, maxAnswerTokens: 12 },
      );
      const r0 = await engine.startTurn('My name is Ada.').result;
      const t1 = engine.startTurn('Tell me about owls.');
      const r1 = await t1.result;
      const cutting = engine.truncateAnswer(t1, Math.floor(r1.answer.trim().length / 3));
      if (waitForCut) await cutting;
      phase = 2;
      const t2 = engine.startTurn('And bats?'); // as when speech cuts the audio and goes on
      await t2.settled();
      await cutting;
      return { answers: [r0.answer, r1.answer], firstThought: firstThought!, history: [...engine.history] };
    };
    const after = await run(true);
    const atOnce = await run(false);
    expect(atOnce.answers).toEqual(after.answers);
    expect(atOnce.history).toEqual(after.history);
    expect(after.history[1].assistant).toMatch(/ \(interrupted by the user\)$/);
    expect(maxAbsDiff(atOnce.firstThought, after.firstThought)).toBeLessThanOrEqual(TOL);
  });

  /** The test model loaded again with a small context, and an engine over it whose probe always says yes. */
  async function smallContext(maxPositions: number, maxThinkingTokens: number, maxAnswerTokens: number) {
    process.env.ASYNCVOICE_CACHE_DIR = join(root, 'cache');
    const small = await loadCausalLM(join(root, 'gqa-tied-fp32'), { maxPositions });
    const engine = new AsyncReasoningEngine({ lm: small.lm, tokenizer: tok, maxThinkingTokens, maxAnswerTokens, logitsHook: (stream, logits) => stream === 'control' && force(logits, yesIds()) });
    return { small, engine };
  }

  it('once the context is full, the oldest exchanges leave as whole blocks and nothing is re-encoded: turn cost stays flat over 14 maximum-size turns', async () => {
    const { small, engine } = await smallContext(4096, 16, 8);
    const written: number[] = []; // tokens written into history blocks, per forward
    const forward = small.lm.forward.bind(small.lm);
    small.lm.forward = (rows) => {
      for (const r of rows) if (r.view.at(-1)!.name === 'history') written.push(r.tokens.length);
      return forward(rows);
    };
    const costs: { cpuMs: number; historyTokensEncoded: number; ownExchange: number; entries: number }[] = [];
    for (let i = 0; i < 14; i++) {
      const text = `Turn ${i}: ${'word '.repeat(800)}`.slice(0, 4000); // the protocol's longest typed message
      written.length = 0;
      const cpu = process.cpuUsage();
      const t = engine.startTurn(text);
      await t.result;
      await t.settled();
      const d = process.cpuUsage(cpu);
      costs.push({ cpuMs: (d.user + d.system) / 1000, historyTokensEncoded: written.reduce((a, b) => a + b, 0), ownExchange: engine.historyBlocks.at(-1)!.length, entries: engine.history.length });
    }
    const firstFull = costs.findIndex((c, i) => i > 0 && c.entries <= costs[i - 1].entries);
    console.log(`turn CPU ms: ${costs.map((c) => c.cpuMs.toFixed(0)).join(' ')}; history tokens encoded per turn: ${costs.map((c) => c.historyTokensEncoded).join(' ')}; context full from turn ${firstFull + 1}`);
    expect(firstFull).toBeGreaterThan(0);
    expect(firstFull).toBeLessThan(10);
    // Each turn encodes its own exchange into the history, never the whole history again.
    for (const c of costs) expect(c.historyTokensEncoded).toBe(c.ownExchange);
    // CPU time of single turns is noisy on a shared machine: the last three against the first three full ones, by median.
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1];
    const early = median(costs.slice(firstFull, firstFull + 3).map((c) => c.cpuMs));
    const late = median(costs.slice(-3).map((c) => c.cpuMs));
    console.log(`median turn CPU: first three full ${early.toFixed(0)} ms, last three ${late.toFixed(0)} ms`);
    expect(late).toBeLessThanOrEqual(1.5 * early);
    expect(engine.history.at(-1)!.user.startsWith('Turn 13:')).toBe(true);
    expect(engine.historyBlocks).toHaveLength(engine.history.length);
    expect(tok.decode(engine.historyBlocks.at(-1)!.tokens)).toContain('Turn 13:');
    await engine.close();
    expect(small.lm.cache.blockCount).toBe(0);
    await small.lm.close();
  }, 180_000);

  it('drops the oldest exchanges when the context would overflow, and refuses a turn that cannot fit', async () => {
    const { small, engine } = await smallContext(900, 60, 120);
    for (let i = 0; i < 5; i++) {
      const t = engine.startTurn(`Question number ${i}: tell me something long.`);
      await t.result;
      await t.settled();
    }
    expect(engine.history.length).toBeLessThan(5);
    expect(engine.history.at(-1)!.user).toBe('Question number 4: tell me something long.');
    const tooBig = new AsyncReasoningEngine({ lm: small.lm, tokenizer: tok, maxThinkingTokens: 800, maxAnswerTokens: 800 });
    await expect(tooBig.startTurn('Hello').result).rejects.toThrow(/needs \d+ positions .* more than the model's 900/);
    await small.lm.close();
  });
});

describe('the end of the user\'s message, from their words', () => {
  it('each piece of the user\'s words comes with P(end of message) after them: the same number a fresh encoding of those words gives', async () => {
    const engine = engineWith(() => undefined, { maxThinkingTokens: 12, maxAnswerTokens: 4 });
    const turn = engine.startTurn('What is seventeen', { final: false });
    const seen: { pEnd: number; words: string }[] = [];
    let added = false;
    await collect(turn.events, (e) => {
      if (e.type === 'user-end') seen.push({ pEnd: e.pEnd, words: e.words });
      if (e.type === 'thinking' && !added) {
        added = true;
        turn.addUserInput('times eight');
        turn.endUserInput();
      }
    });
    await turn.settled();
    expect(seen.map((x) => x.words)).toEqual(['What is seventeen', 'What is seventeen times eight']);
    // From scratch: the user head and the words, alone in a block, as checkEndOfMessage reads them.
    const p = promptSetFor((t) => tok.tokenId(t) !== undefined);
    const block = lm.cache.createBlock('scratch');
    const { logits } = await lm.forward([{ view: [block], tokens: [...tok.encode(p.userHead), ...tok.encodeText('What is seventeen')] }]);
    block.drop();
    expect(Math.abs(seen[0].pEnd - tokenProbability(logits[0], id('<|im_end|>')))).toBeLessThan(1e-6);
    await engine.close();
  });

  it('random weights do not tell a finished question from a cut-off one: turns then end on silence alone, and the check says so', async () => {
    const r = await checkEndOfMessage(lm, tok, promptSetFor((t) => tok.tokenId(t) !== undefined));
    expect(r.usable).toBe(false);
    expect(r.complete).toHaveLength(6);
    expect(r.cut).toHaveLength(6);
    expect(r.summary).toMatch(/^end of turn from silence alone: this model does not tell/);
  });
});
