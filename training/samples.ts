/**
 * Training sequences, laid out by the engine's own definitions: the prompt set (prompts.ts) gives
 * every fixed text, and layout.ts's asyncViews / singleView give the order of the blocks in each
 * row's view. A sample is one view at one moment of a turn, as segments of text:
 *   - `fixed`: text the engine encodes (prompts, separators, markers: control tokens meant),
 *   - `user`: the user's words (encoded as text, as the engine does); `said`: the same, learned
 *     (so the model knows a finished message from a cut-off one),
 *   - `end`: fixed text whose first token (the end of the user's message) is learned,
 *   - `context`: model output already in the cache (no loss),
 *   - `gen`: model output the model learns to produce (loss on each token),
 *   - `target`: a token the model learns to sample next that is never fed (the end of thoughts or
 *     of the answer, the probe's yes/no): a label only.
 * Each segment is tokenised on its own, as the engine encodes each block (tokens.ts).
 */
import { asyncViews, singleView } from '../src/async-reasoning/layout.ts';
import type { PromptSet } from '../src/async-reasoning/prompts.ts';
import { correction, cutOff, drawProblem, type Problem, type Rand, type Split } from './task.ts';

export type SegmentKind = 'fixed' | 'user' | 'said' | 'end' | 'context' | 'gen' | 'target';
export interface Segment {
  kind: SegmentKind;
  text: string;
}
export interface Sample {
  type: string;
  segments: Segment[];
}

const seg = (kind: SegmentKind, text: string): Segment[] => (text ? [{ kind, text }] : []);

/** Where the thoughts text may be cut (a token boundary: before a space or a newline, between digits). */
function cutPoints(text: string): number[] {
  const out: number[] = [];
  for (let i = 1; i < text.length; i++) if (text[i] === ' ' || text[i] === '\n' || /\d/.test(text[i])) out.push(i);
  out.push(text.length);
  return out;
}

/** The thoughts as the thinker writes them, and where each paragraph's text ends in it. */
function thoughtsText(paragraphs: string[]): { text: string; ends: number[] } {
  const ends: number[] = [];
  let text = '';
  paragraphs.forEach((p, i) => {
    text += p;
    ends.push(text.length);
    if (i < paragraphs.length - 1) text += '\n\n';
  });
  return { text, ends };
}

/** How many answer sentences the thoughts cut at `x` characters support. */
function supported(p: { support: number[] }, ends: number[], x: number): number {
  const done = ends.filter((e) => e <= x).length;
  return p.support.filter((s) => s <= done).length;
}

interface TurnText {
  history: string;
  user: Segment[];
  /** The user has finished their message: the token after their words is its end. */
  complete: boolean;
}

/** Marks the end of a finished message: the fixed text right after the user's last words starts with it. */
function markEnd(segments: Segment[], complete: boolean): Segment[] {
  if (!complete) return segments;
  let last = -1;
  segments.forEach((s, i) => {
    if (s.kind === 'said') last = i;
  });
  const next = segments[last + 1];
  if (last >= 0 && next?.kind === 'fixed') segments[last + 1] = { kind: 'end', text: next.text };
  return segments;
}

const STOPS = ['stop', 'okay thanks', "that's enough", 'Stop.', 'OK, got it.', 'never mind'];

/**
 * The answer as the other rows see it: the writer's last sampled token is fed only at its next
 * step, so while it waits (after a sentence it handed back, or a "no") the thinker and the control
 * question see its words without their final piece: "…47 times 8" with the "." still pending. The
 * last word (with its space) or closing punctuation mark stands for that token.
 */
export function seenByOthers(said: string): string {
  if (!said) return said;
  if (/[.,!?:;]$/.test(said)) return said.slice(0, -1);
  return said.replace(/\s*\S+$/, '');
}

/** A finished exchange or two before the question, as the history block holds them. */
function historyOf(r: Rand, P: PromptSet, split: Split): string {
  if (!r.chance(0.1)) return '';
  let h = '';
  for (let i = r.int(1, 2); i > 0; i--) {
    const q = drawProblem(r, split);
    h += P.historyTurn(q.question, q.answer.join(''));
  }
  return h;
}

export class SampleMaker {
  constructor(
    private readonly P: PromptSet,
    private readonly r: Rand,
    private readonly mix: Mix = MIXES.base,
  ) {}

  private asyncView(turn: TurnText, row: 'writer' | 'thinker' | 'control', thoughts: Segment[], answer: Segment[], tail: Segment[]): Segment[] {
    const P = this.P;
    const v = asyncViews<Segment[]>({
      writerSystem: seg('fixed', P.writerSystem),
      thinkerSystem: seg('fixed', P.thinkerSystem),
      history: turn.history ? [seg('fixed', turn.history)] : [],
      userHead: seg('fixed', P.userHead),
      userInput: turn.user,
      writerTail: seg('fixed', P.writerTail),
      thinkerTail: seg('fixed', P.thinkerTail),
      writerSplit: seg('fixed', P.writerSplit),
      thinkerSplit: seg('fixed', P.thinkerSplit),
      // The writer's block holds its fixed start from its first step on: before that (nothing said), the others see it empty.
      writerOutput: row === 'writer' || answer.length ? [...seg('fixed', P.writerOutputStart), ...answer, ...(row === 'writer' ? tail : [])] : [],
      thinkerOutput: [...seg('fixed', P.thinkerOutputPrefix), ...thoughts, ...(row === 'thinker' ? tail : [])],
      control: [...seg('fixed', P.controlQuestion), ...(row === 'control' ? tail : [])],
    });
    return markEnd(v[row].flat(), turn.complete);
  }

  private turn(p: Problem, user?: Segment[], complete = true): TurnText {
    return { history: historyOf(this.r, this.P, p.split), user: user ?? seg('said', p.question), complete };
  }

  /** Think-then-answer, one stream: thoughts, the end of thinking, the answer. */
  think(p: Problem, turn = this.turn(p)): Sample {
    const P = this.P;
    const t = thoughtsText(p.thoughts).text;
    const output = [...seg('gen', t), { kind: 'target' as const, text: P.thinkEnd }, ...seg('fixed', P.endThinking), ...seg('gen', p.answer.join('')), { kind: 'target' as const, text: P.answerEnd[0] }];
    return { type: 'think', segments: markEnd(singleView<Segment[]>({ plainSystem: seg('fixed', P.plainSystem), history: turn.history ? [seg('fixed', turn.history)] : [], userHead: seg('fixed', P.userHead), userInput: turn.user, tail: seg('fixed', P.thinkTail), output }).flat(), turn.complete) };
  }

  /** No thinking: the answer at once (the baseline; it can only guess at hard sums). */
  noThink(p: Problem, turn = this.turn(p)): Sample {
    const P = this.P;
    const output = [...seg('fixed', P.noThinkTail), ...seg('gen', p.answer.join('')), { kind: 'target' as const, text: P.answerEnd[0] }];
    return { type: 'nothink', segments: markEnd(singleView<Segment[]>({ plainSystem: seg('fixed', P.plainSystem), history: turn.history ? [seg('fixed', turn.history)] : [], userHead: seg('fixed', P.userHead), userInput: turn.user, tail: [], output }).flat(), turn.complete) };
  }

  /** A consistent spoken answer at thought cut `x`: whole sentences the thoughts support, maybe one in progress. */
  private answerAt(p: Problem, ends: number[], x: number, opts: { partial: boolean }): { said: string; complete: number; partial: boolean } {
    const s = supported(p, ends, x);
    const complete = this.r.int(0, s);
    let said = p.answer.slice(0, complete).join('');
    let partial = false;
    if (opts.partial && complete < s && this.r.chance(0.4)) {
      const next = p.answer[complete];
      const words = next.split(' ');
      const k = this.r.int(1, Math.max(1, words.length - 1));
      said += words.slice(0, k).join(' ');
      partial = true;
    }
    return { said, complete, partial };
  }

  /** The thinker's row: all its thoughts (and their end), beside an answer consistent with their start. */
  thinker(p: Problem, turn = this.turn(p), before: Segment[] = []): Sample {
    const { text, ends } = thoughtsText(p.thoughts);
    const x0 = this.r.pick(cutPoints(text));
    const a = this.answerAt(p, ends, x0, { partial: true });
    const thoughts = [...before, ...seg('gen', text)];
    return { type: 'thinker', segments: this.asyncView(turn, 'thinker', thoughts, seg('context', seenByOthers(a.said)), [{ kind: 'target', text: this.P.thinkEnd }]) };
  }

  /** The writer's row: thoughts cut somewhere, the answer so far, and what the thoughts let it say next. */
  writer(p: Problem, turn = this.turn(p), before: Segment[] = [], answerBefore = ''): Sample | null {
    const { text, ends } = thoughtsText(p.thoughts);
    const x = this.r.pick(cutPoints(text).filter((c) => supported(p, ends, c) > 0));
    const s = supported(p, ends, x);
    const complete = this.r.int(0, s - 1);
    const said = answerBefore + p.answer.slice(0, complete).join('');
    const next = p.answer.slice(complete, s).join('');
    const end = s === p.answer.length ? [{ kind: 'target' as const, text: this.P.answerEnd[0] }] : [];
    // The thoughts are learned here too: the row is encoded anyway, and the working is the same skill.
    const thoughts = [...before, ...seg('gen', text.slice(0, x))];
    return { type: 'writer', segments: this.asyncView(turn, 'writer', thoughts, seg('context', said), [...seg('gen', next), ...end]) };
  }

  /** The control question: yes exactly when the thoughts support the sentence the answer is on or would say next. */
  control(p: Problem, turn = this.turn(p), before: Segment[] = [], answerBefore = ''): Sample {
    const { text, ends } = thoughtsText(p.thoughts);
    const points = cutPoints(text);
    // Half the probes come where the engine asks most: a paragraph just ended (its blank line not fed yet).
    const x = this.r.chance(0.5) ? Math.min(text.length, this.r.pick(ends)) : this.r.pick(points);
    const a = this.answerAt(p, ends, x, { partial: true });
    let said = a.said;
    const s = supported(p, ends, x);
    const yes = a.partial || s > a.complete;
    // The writer ran ahead (a "yes" it should not have had): it has begun a sentence the thoughts
    // do not hold yet. The answer is no, whatever it has said so far.
    if (!yes && s < p.answer.length && this.mix.overreach && this.r.chance(this.mix.overreach)) {
      const words = p.answer[s].split(' ');
      said += words.slice(0, this.r.int(1, Math.max(1, words.length - 1))).join(' ');
    }
    const thoughts = [...before, ...seg('gen', text.slice(0, x))];
    return { type: yes ? 'control-yes' : 'control-no', segments: this.asyncView(turn, 'control', thoughts, seg('context', seenByOthers(answerBefore + said)), [{ kind: 'target', text: yes ? ' yes' : ' no' }]) };
  }

  /** The user still speaking, the question cut off: nothing to think yet, the thoughts end at once. */
  partial(p: Problem): Sample | null {
    const head = this.r.chance(0.2) ? '' : cutOff(this.r, p);
    if (head === null) return null;
    return { type: 'partial', segments: this.asyncView(this.turn(p, seg('said', head), false), 'thinker', this.reopened(), seg('context', ''), [{ kind: 'target', text: this.P.thinkEnd }]) };
  }

  /**
   * A spoken turn's thinker starts before the words (it ends its thoughts at once, then each
   * arrival of words reopens it with a blank line): some blank lines before the thoughts.
   */
  private reopened(): Segment[] {
    return this.r.chance(0.5) ? [] : seg('context', '\n\n'.repeat(this.r.int(1, 6)));
  }

  /**
   * The user talks over the answer: the heard part stays with its marker, the thoughts note the
   * interruption, and the answer either stops ("Okay.") or turns to the new question.
   */
  interrupted(split: Split): Sample | null {
    const P = this.P;
    const p = drawProblem(this.r, split);
    if (p.kind === 'chat') return null;
    const { text: oldText, ends } = thoughtsText(p.thoughts);
    const k = this.r.int(1, p.thoughts.length);
    const full = p.answer.join('');
    const words = full.split(' ');
    const heard = words.slice(0, this.r.int(1, Math.max(1, words.length - 1))).join(' ');
    const stop = this.r.chance(0.5);
    const next = stop ? null : drawProblem(this.r, split);
    if (next?.kind === 'chat') return null;
    const said = stop ? this.r.pick(STOPS) : next!.question;
    const user = [...seg('said', p.question), ...seg('said', P.userInterrupts(said))];
    const turn = this.turn(p, user);
    const before = seg('context', oldText.slice(0, ends[k - 1]) + '\n\n');
    const answerBefore = heard + P.writerInterrupted;
    const follow: Problem = stop
      ? { ...p, thoughts: [`The user interrupted: ${said.replace(/[.,!]/g, '').toLowerCase()}. I stop here.`], answer: ['Okay.'], support: [1] }
      : { ...next!, thoughts: ['The user interrupted with a new question.', ...next!.thoughts], support: next!.support.map((s) => s + 1) };
    const d = this.r.next();
    const s = d < 0.4 ? this.thinkerAfter(follow, turn, before, answerBefore) : d < 0.75 ? this.writer(follow, turn, before, answerBefore) : this.control(follow, turn, before, answerBefore);
    return s && { ...s, type: `interrupted-${s.type}` };
  }

  /** The user changes the question, inline or after they finished; the thoughts may be on the old one already. */
  corrected(split: Split): Sample | null {
    const P = this.P;
    const c = correction(this.r, split);
    const user = c.inline ? seg('said', `${c.first.question} ${c.said}`) : [...seg('said', c.first.question), ...seg('said', P.userAdds(c.said))];
    const turn = this.turn(c.fixed, user);
    const { text: oldText, ends: oldEnds } = thoughtsText(c.first.thoughts);
    // How far the thinker got on the old question before the change reached it (whole paragraphs).
    const k = c.inline && this.r.chance(0.4) ? 0 : this.r.int(1, c.first.thoughts.length);
    const before = k ? seg('context', oldText.slice(0, oldEnds[k - 1]) + '\n\n') : [];
    const fixed = k ? c.fixed : { ...c.fixed, thoughts: [c.fixed.thoughts[0].replace('Correction:', 'Question:'), ...c.fixed.thoughts.slice(1)] };
    // If the old opening was said already, the answer goes on from it and says the corrected result.
    const oldSaid = k >= 1 && this.r.chance(0.5) ? c.first.answer[0] : '';
    const answer = oldSaid ? { ...fixed, answer: [` With that change, ${c.restated} is ${fixed.value! < 0 ? `minus ${-fixed.value!}` : fixed.value}.`], support: [fixed.thoughts.length] } : fixed;
    const d = this.r.next();
    if (d < 0.35) return { ...this.thinkerAfter(answer, turn, before, oldSaid), type: 'correction-thinker' };
    if (d < 0.65) {
      const w = this.writer(answer, turn, before, oldSaid);
      return w && { ...w, type: 'correction-writer' };
    }
    if (d < 0.85) return { ...this.control(answer, turn, before, oldSaid), type: 'correction-control' };
    if (!c.inline) return null;
    return { ...this.think(fixed.thoughts[0].startsWith('Question') ? fixed : { ...fixed, thoughts: [fixed.thoughts[0].replace('Correction:', 'Question:'), ...fixed.thoughts.slice(1)] }, turn), type: 'correction-think' };
  }

  private thinkerAfter(p: Problem, turn: TurnText, before: Segment[], answerSaid: string): Sample {
    const { text } = thoughtsText(p.thoughts);
    return { type: 'thinker', segments: this.asyncView(turn, 'thinker', [...before, ...seg('gen', text)], seg('context', seenByOthers(answerSaid)), [{ kind: 'target', text: this.P.thinkEnd }]) };
  }

  /** One training sample of the mix (the mix: what share of the samples each kind is). */
  draw(split: Split): Sample {
    for (;;) {
      const p = drawProblem(this.r, split, this.mix.mulShare);
      const reopened = () => (p.spoken ? this.reopened() : []);
      const kinds: Record<SampleKind, () => Sample | null> = {
        think: () => this.think(p),
        noThink: () => this.noThink(p),
        thinker: () => this.thinker(p, undefined, reopened()),
        writer: () => this.writer(p, undefined, reopened()),
        control: () => this.control(p, undefined, reopened()),
        corrected: () => this.corrected(split),
        interrupted: () => this.interrupted(split),
        partial: () => this.partial(p),
      };
      let d = this.r.next();
      let kind: SampleKind = 'partial';
      for (const [k, share] of Object.entries(this.mix.shares) as [SampleKind, number][]) {
        if (d < share) {
          kind = k;
          break;
        }
        d -= share;
      }
      const s = kinds[kind]();
      if (s) return s;
    }
  }
}

type SampleKind = 'think' | 'noThink' | 'thinker' | 'writer' | 'control' | 'corrected' | 'interrupted' | 'partial';
/** A training mix: what share of the samples each kind is, and of arithmetic problems the products. */
export interface Mix {
  shares: Record<SampleKind, number>;
  mulShare?: number;
  /** Of control questions answered no, the share where the writer has run ahead into an unsupported sentence. */
  overreach?: number;
}

export const MIXES = {
  /**
   * Most of it carries whole chains of thought (think, thinker rows, corrections): the arithmetic
   * is what takes learning; the writer's sentences come quickly.
   */
  base: { shares: { think: 0.3, noThink: 0.04, thinker: 0.24, writer: 0.14, control: 0.14, corrected: 0.08, interrupted: 0.03, partial: 0.03 } },
  /**
   * The second stage, from the first's weights: the control question, whose one-token answer the
   * first stage drowned among the thoughts' hundreds (it learned only how often "yes" comes). The
   * probe's answer is also weighted in the loss (train.py), and it also sees the writer run ahead of
   * the thoughts (the answer to that is no), which stage 1 never showed; products, the weakest kind,
   * are 40 % of the problems. Tried against it on 100 held-out problems (fp32, async / think): the
   * same with whole chains at 26 %, control 30 % and stage 1's kinds, 57 / 81 % (the question said
   * yes too early in word problems); that at learning rate 3e-4, worse again; this one, 72 / 77 %.
   */
  practice: { shares: { think: 0.18, noThink: 0.02, thinker: 0.21, writer: 0.1, control: 0.35, corrected: 0.08, interrupted: 0.03, partial: 0.03 }, mulShare: 0.4, overreach: 0.35 },
} as const satisfies Record<string, Mix>;
