import { describe, expect, it } from 'vitest';
import { AsyncReasoningEngine, type EngineOptions } from '../../src/async-reasoning/engine.ts';
import type { EngineEvent } from '../../src/async-reasoning/events.ts';
import { probeAnswer } from '../../src/async-reasoning/probe.ts';
import { collect } from '../helpers/events.ts';
import { tinyModelFixture } from '../helpers/models.ts';

// The control question as the method asks it: also while the writer writes, a "no" stopping it;
// the writer handing back at sentence ends; a tunable threshold; seeded per-stream sampling.

const model = tinyModelFixture();

const BIG = 1e4;
const one = (w: string) => model.tok.encode(w);
const ids = (words: string[]) => words.map(one).filter((x) => x.length === 1).map((x) => x[0]);
const yes = () => ids(['yes', 'Yes', ' yes', ' Yes']);
const no = () => ids(['no', 'No', ' no', ' No']);
const force = (logits: Float32Array, which: number[], v = BIG) => which.forEach((i) => (logits[i] = v));
/** Keeps the random writer from ending the answer or a paragraph on its own. */
const quietWriter = (logits: Float32Array) => force(logits, [...ids(['<|im_end|>', '<|endoftext|>', '\n\n', '.', '!', '?'])], -BIG);

function engineWith(hook: EngineOptions['logitsHook'], extra: Partial<EngineOptions> = {}) {
  return new AsyncReasoningEngine({ lm: model.lm, tokenizer: model.tok, maxThinkingTokens: 60, maxAnswerTokens: 40, controlEvery: 4, logitsHook: hook, handBack: 'paragraph', ...extra });
}

const stepsOf = (events: EngineEvent[], type: EngineEvent['type']) => events.filter((e) => e.type === type).map((e) => e.step);

describe('the control question while the writer writes', () => {
  it('a "no" while the writer writes stops it within one step; a later "yes" resumes it', async () => {
    let probe = 0;
    const engine = engineWith((stream, logits) => {
      if (stream === 'control') force(logits, [0, 1].includes(probe++ % 4) ? yes() : no()); // yes yes no no, …
      if (stream === 'writer') quietWriter(logits);
    });
    const turn = engine.startTurn('Why is the sky blue?');
    const events = await collect(turn.events);
    await turn.settled();
    const controls = events.filter((e): e is Extract<EngineEvent, { type: 'control' }> => e.type === 'control');
    // The first "no" given while the writer was writing.
    const writingNo = events.findIndex((e, i) => e.type === 'control' && e.decision === 'no' && events.slice(0, i).some((x) => x.type === 'answer'));
    expect(writingNo, controls.map((c) => c.decision).join(' ')).toBeGreaterThan(0);
    const noEvent = events[writingNo] as Extract<EngineEvent, { type: 'control' }>;
    expect(events[writingNo + 1]).toMatchObject({ type: 'state', to: 'thinker_only', cause: 'probe-no' });
    const resume = events.findIndex((e, i) => i > writingNo && e.type === 'control' && e.decision === 'yes');
    expect(resume).toBeGreaterThan(writingNo);
    const resumeStep = events[resume].step;
    // No answer token from the step after the "no" until the "yes"; answers again after it.
    const answers = stepsOf(events, 'answer');
    expect(answers.filter((s) => s > noEvent.step && s <= resumeStep)).toEqual([]);
    expect(answers.some((s) => s > resumeStep)).toBe(true);
  });

  it('off, a released writer is never asked again before it hands back', async () => {
    let probe = 0;
    const engine = engineWith(
      (stream, logits) => {
        if (stream === 'control') force(logits, probe++ === 0 ? yes() : no());
        if (stream === 'writer') quietWriter(logits);
      },
      { probeWhileWriting: false },
    );
    const turn = engine.startTurn('Why is the sky blue?');
    const events = await collect(turn.events);
    await turn.settled();
    const firstAnswer = events.findIndex((e) => e.type === 'answer');
    expect(firstAnswer).toBeGreaterThan(0);
    // The writer runs on (its answer budget) with no probe after it started.
    expect(events.slice(firstAnswer).some((e) => e.type === 'control')).toBe(false);
    expect((await turn.result).metrics.answerTokens).toBe(40);
  });

  it('sentence hand-back stops the writer at its first sentence end; paragraph hand-back does not', async () => {
    const run = async (handBack: 'sentence' | 'paragraph') => {
      let probe = 0;
      let written = 0;
      const engine = engineWith(
        (stream, logits) => {
          if (stream === 'control') force(logits, probe++ === 0 ? yes() : no());
          if (stream === 'writer') {
            quietWriter(logits);
            if (++written === 3) force(logits, ids(['.']));
          }
        },
        { handBack, maxThinkingTokens: 40 },
      );
      const turn = engine.startTurn('Why is the sky blue?');
      const events = await collect(turn.events);
      await turn.settled();
      return events;
    };
    const sentence = await run('sentence');
    const stop = sentence.findIndex((e) => e.type === 'state' && e.cause === 'writer-sentence');
    expect(stop).toBeGreaterThan(0);
    const answersBefore = sentence.slice(0, stop).filter((e) => e.type === 'answer');
    expect(answersBefore.map((e) => (e.type === 'answer' ? e.text : '')).join('')).toMatch(/\.$/);
    expect(answersBefore.length).toBe(3); // its 3rd sampled token was the ".", and it stopped right there
    // Every later "no" keeps it quiet until thinking ends and the writer goes on alone.
    const resumed = sentence.findIndex((e, i) => i > stop && e.type === 'state' && e.to === 'writer_only');
    expect(sentence.slice(stop, resumed).some((e) => e.type === 'answer')).toBe(false);
    const paragraph = await run('paragraph');
    expect(paragraph.some((e) => e.type === 'state' && e.cause === 'writer-sentence')).toBe(false);
  });
});

describe('the probe threshold', () => {
  it('releases at P(yes) / (P(yes) + P(no)) >= threshold', () => {
    const logits = new Float32Array(8);
    logits[1] = Math.log(3); // yes: 3 parts, no: 2 parts → share 0.6
    logits[2] = Math.log(2);
    expect(probeAnswer(logits, [1], [2]).decision).toBe('yes');
    expect(probeAnswer(logits, [1], [2], 0.6).decision).toBe('yes');
    expect(probeAnswer(logits, [1], [2], 0.61).decision).toBe('no');
    expect(probeAnswer(logits, [2], [1], 0.5).decision).toBe('no');
    const a = probeAnswer(logits, [1], [2]);
    expect(a.pYes / (a.pYes + a.pNo)).toBeCloseTo(0.6, 6);
  });

  it('the engine decides by its threshold', async () => {
    const decisions = async (probeThreshold: number) => {
      const engine = engineWith(
        (stream, logits) => {
          // yes twice as likely as no, both far above everything else
          if (stream === 'control') {
            force(logits, yes(), 20 + Math.log(2) - Math.log(yes().length));
            force(logits, no(), 20 - Math.log(no().length));
          }
          if (stream === 'writer') quietWriter(logits);
        },
        { probeThreshold, maxThinkingTokens: 12, maxAnswerTokens: 4 },
      );
      const turn = engine.startTurn('Why is the sky blue?');
      const events = await collect(turn.events);
      await turn.settled();
      return events.flatMap((e) => (e.type === 'control' ? [e.decision] : []));
    };
    const low = await decisions(0.6);
    const high = await decisions(0.7);
    expect(low.length).toBeGreaterThan(0);
    expect(low[0]).toBe('yes');
    expect(high.length).toBeGreaterThan(1);
    expect(new Set(high)).toEqual(new Set(['no']));
  });
});

describe('sampling per stream', () => {
  it('a seeded sampled turn repeats token for token; another seed goes another way', async () => {
    const run = async (seed: number) => {
      const engine = engineWith((stream, logits) => stream === 'control' && force(logits, yes()), {
        sampling: { thinker: { temperature: 1, topK: 50, seed }, writer: { temperature: 0.8, topP: 0.9, seed } },
        maxThinkingTokens: 24,
        maxAnswerTokens: 16,
      });
      const turn = engine.startTurn('Why is the sky blue?');
      const events = await collect(turn.events);
      await turn.settled();
      return { thinking: events.flatMap((e) => (e.type === 'thinking' ? [e.tokenId] : [])), answer: events.flatMap((e) => (e.type === 'answer' ? [e.tokenId] : [])) };
    };
    const a = await run(7);
    const b = await run(7);
    const c = await run(8);
    expect(a.thinking.length).toBeGreaterThan(5);
    expect(a.answer.length).toBeGreaterThan(3);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });
});
