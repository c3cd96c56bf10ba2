import type { CausalLM } from '../llm/runtime/causal-lm.ts';
import type { Tokenizer } from '../llm/model/tokenizer.ts';
import type { PromptSet } from './prompts.ts';

/**
 * Whether the user has finished their message, from their words: the probability the model gives
 * the chat format's end-of-message token right after them. The user's words are encoded anyway
 * (their block is shared by both streams), so reading it costs one softmax over the logits of a
 * row already computed.
 */

/** The token that closes a user message in this prompt set: the first of what follows the user's words. */
export function endOfMessageId(tok: Tokenizer, p: PromptSet): number | null {
  const after = p.thinkerTail || p.thinkerOutputPrefix;
  const ids = after ? tok.encode(after) : [];
  return ids.length ? ids[0] : null;
}

/** Next-token probabilities from logits, one softmax normaliser for every token asked about. */
export function tokenProbabilities(logits: Float32Array): (id: number) => number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i] - max);
  return (id) => Math.exp(logits[id] - max) / z;
}

/** P(token `id` next) from next-token logits. */
export function tokenProbability(logits: Float32Array, id: number): number {
  return tokenProbabilities(logits)(id);
}

/**
 * Finished and unfinished questions the check below reads P(end) on: spoken style (a recogniser's
 * lower case, no punctuation), the unfinished ones cut where people pause to think.
 */
export const COMPLETE_PHRASES = ['what is twelve plus five', 'how much is seven times eight', 'thank you', 'hello there', 'what is three hundred and four minus seventeen', 'goodbye'];
export const CUT_PHRASES = ['what is twelve plus', 'how much is seven times', 'what is three hundred and', 'add forty two and', 'what is the sum of', 'can you tell me'];

export interface EndOfMessageCheck {
  /** The model tells finished from unfinished messages well enough to end turns on. */
  usable: boolean;
  complete: number[];
  cut: number[];
  /** One line for people: what was measured and what follows. */
  summary: string;
}

/**
 * Reads P(end) on the built-in phrases, each encoded as the engine encodes a user's words (after
 * the user head, no system block). Usable when at least five of six finished phrases are at 0.5 or
 * above, at least five of six cut ones below, and the means are 0.3 apart: a model that does not
 * know the chat format (random weights, a base model) fails it, and turns then end on silence alone.
 */
export async function checkEndOfMessage(lm: CausalLM, tok: Tokenizer, p: PromptSet): Promise<EndOfMessageCheck> {
  const id = endOfMessageId(tok, p);
  if (id === null) return { usable: false, complete: [], cut: [], summary: 'end of turn from silence alone: this prompt set has no end-of-message token' };
  const head = tok.encode(p.userHead);
  const read = async (phrase: string): Promise<number> => {
    const block = lm.cache.createBlock('end-of-message-check');
    try {
      const { logits } = await lm.forward([{ view: [block], tokens: [...head, ...tok.encodeText(phrase)] }]);
      return tokenProbability(logits[0], id);
    } finally {
      block.drop();
    }
  };
  const complete: number[] = [];
  const cut: number[] = [];
  for (const s of COMPLETE_PHRASES) complete.push(await read(s));
  for (const s of CUT_PHRASES) cut.push(await read(s));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const usable = complete.filter((x) => x >= 0.5).length >= 5 && cut.filter((x) => x < 0.5).length >= 5 && mean(complete) - mean(cut) >= 0.3;
  const figures = `P(end) ${mean(complete).toFixed(2)} after finished questions, ${mean(cut).toFixed(2)} after cut-off ones`;
  return {
    usable,
    complete,
    cut,
    summary: usable ? `end of turn from the words (${figures})` : `end of turn from silence alone: this model does not tell a finished question from a cut-off one (${figures})`,
  };
}
