import { endOfMessageId } from './end-of-message.ts';
import type { SamplingOptions } from '../llm/runtime/sampling.ts';
import type { Tokenizer } from '../llm/model/tokenizer.ts';
import type { Mode } from './events.ts';
import type { PromptSet } from './prompts.ts';

export type StreamName = 'thinker' | 'writer' | 'control';
export type LogitsHook = (stream: StreamName, logits: Float32Array, step: number) => void;

/** The settings a turn starts with. Changing the engine's settings later changes the next turn, not this one. */
export interface TurnSettings {
  controlEvery: number;
  maxThinkingTokens: number;
  maxAnswerTokens: number;
  /** Each stream's sampler (absent: greedy). The baselines' one stream thinks with the thinker's and answers with the writer's. */
  sampling?: StreamSampling;
  /** The probe releases the writer when P(yes) / (P(yes) + P(no)) reaches this. */
  probeThreshold: number;
  /** The control question is also asked while the writer writes, and a "no" stops it (as the method does). */
  probeWhileWriting: boolean;
  /** Where the writer hands back to the thinker: at the end of each sentence, or of each paragraph. */
  handBack: HandBack;
  /** What the control question reads: the shared cache as it stands, or the answer and thoughts encoded afresh (see probe.ts). */
  probeReads: ProbeReads;
  logitsHook?: LogitsHook;
}

export type ProbeReads = 'cache' | 'fresh';
export const PROBE_READS: readonly ProbeReads[] = ['cache', 'fresh'];

export type HandBack = 'sentence' | 'paragraph';
export const HAND_BACKS: readonly HandBack[] = ['sentence', 'paragraph'];

export interface StreamSampling {
  thinker?: SamplingOptions;
  writer?: SamplingOptions;
}

/** Every fixed piece of text a turn feeds, as token ids, resolved once per turn. */
export interface PromptIds {
  userHead: number[];
  thinkerTail: number[];
  writerTail: number[];
  thinkerSplit: number[];
  writerSplit: number[];
  thinkerOutputPrefix: number[];
  writerOutputStart: number[];
  writerInterrupted: number[];
  controlQuestion: number[];
  thinkTail: number[];
  noThinkTail: number[];
  endThinking: number[];
  paragraph: number[];
}

export interface TurnConfig extends Readonly<TurnSettings> {
  readonly mode: Mode;
  readonly ids: Readonly<PromptIds>;
  /** Tokens that end the answer. */
  readonly stopIds: ReadonlySet<number>;
  readonly thinkEndId: number | undefined;
  /** The token that closes the user's message (see end-of-message.ts), or null. */
  readonly endOfMessageId: number | null;
  /** Single-token spellings of the probe's answers. */
  readonly yesIds: readonly number[];
  readonly noIds: readonly number[];
  readonly thinkerForbidden: ReadonlySet<number>;
  readonly writerForbidden: ReadonlySet<number>;
  /** The baselines' single stream thinks and answers, so only its own stop tokens are off limits. */
  readonly singleForbidden: ReadonlySet<number>;
  /** Token sequences (both spacings) of the first words of each marker the writer sees: it may not say them. */
  readonly writerBannedPhrases: readonly (readonly number[])[];
}

/** Resolves the prompt set and the settings into one frozen config for a turn. */
export function turnConfig(tokenizer: Tokenizer, p: PromptSet, mode: Mode, settings: TurnSettings): TurnConfig {
  const ids = (text: string) => (text ? tokenizer.encode(text) : []); // our own text: control tokens in it are meant
  const idSet = (tokens: string[]) => new Set(tokens.map((t) => tokenizer.tokenId(t)).filter((x): x is number => x !== undefined));
  const single = (w: string) => {
    const t = tokenizer.encode(w);
    return t.length === 1 ? t[0] : undefined;
  };
  const oneTokenEach = (words: string[]) => [...new Set(words.map(single).filter((x): x is number => x !== undefined))];
  const banned: number[][] = [];
  for (const text of [p.writerSplit, p.thinkerSplit, p.controlQuestion]) {
    const words = text.replace(/<\/?think>/g, '').trim().split(/\s+/).slice(0, 3).join(' ');
    for (const variant of [words, ` ${words}`]) {
      const t = tokenizer.encode(variant);
      if (t.length >= 2) banned.push(t);
    }
  }
  return Object.freeze({
    ...settings,
    mode,
    ids: Object.freeze({
      userHead: ids(p.userHead),
      thinkerTail: ids(p.thinkerTail),
      writerTail: ids(p.writerTail),
      thinkerSplit: ids(p.thinkerSplit),
      writerSplit: ids(p.writerSplit),
      thinkerOutputPrefix: ids(p.thinkerOutputPrefix),
      writerOutputStart: ids(p.writerOutputStart),
      writerInterrupted: ids(p.writerInterrupted),
      controlQuestion: ids(p.controlQuestion),
      thinkTail: ids(p.thinkTail),
      noThinkTail: ids(p.noThinkTail),
      endThinking: ids(p.endThinking),
      paragraph: ids('\n\n'),
    }),
    stopIds: idSet(p.answerEnd),
    thinkEndId: tokenizer.tokenId(p.thinkEnd),
    endOfMessageId: endOfMessageId(tokenizer, p),
    yesIds: oneTokenEach(p.yesWords),
    noIds: oneTokenEach(p.noWords),
    thinkerForbidden: idSet(p.thinkerForbidden),
    writerForbidden: idSet(p.writerForbidden),
    singleForbidden: idSet(p.thinkerForbidden.filter((t) => !p.answerEnd.includes(t))),
    writerBannedPhrases: banned,
  });
}

/** Positions a turn needs beyond the history: its fixed text, both budgets and room to listen. */
export function positionsNeeded(cfg: TurnConfig, userTokens: number): number {
  const i = cfg.ids;
  const fixed = [i.userHead, i.thinkerTail, i.thinkerSplit, i.thinkerOutputPrefix, i.writerTail, i.writerSplit, i.thinkTail].reduce((a, b) => a + b.length, 0);
  return fixed + userTokens + cfg.maxThinkingTokens + cfg.maxAnswerTokens + 64;
}
