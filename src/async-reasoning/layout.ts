import type { CausalLM, ForwardRow } from '../llm/runtime/causal-lm.ts';
import type { CacheBlock } from '../llm/runtime/kv-cache.ts';

/**
 * The blocks of one asynchronous turn, as the method names them: cache blocks in the engine, their
 * text in the training-data generator (which lays out the same views from the same definition).
 */
export interface AsyncBlocks<B = CacheBlock> {
  writerSystem: B;
  thinkerSystem: B;
  /** The finished exchanges, oldest first (one block each in the engine, so the oldest can leave without touching the rest). */
  history: B[];
  userHead: B;
  userInput: B;
  writerTail: B;
  thinkerTail: B;
  writerSplit: B;
  thinkerSplit: B;
  writerOutput: B;
  thinkerOutput: B;
  control: B;
}

/** Each row's view, in order; the last block is the one the row writes. */
export interface AsyncViews<B = CacheBlock> {
  user: B[];
  writer: B[];
  thinker: B[];
  control: B[];
}

/**
 * The one definition of the asynchronous layout: each stream sees the other's output between its
 * own prompt and its own output. Blocks both streams share (history, the user's words) are encoded
 * without either system block, so both can place them after their own.
 */
export function asyncViews<B>(b: AsyncBlocks<B>): AsyncViews<B> {
  const user = [...b.history, b.userHead, b.userInput];
  const thinker = [b.thinkerSystem, ...user, b.thinkerTail, b.writerOutput, b.thinkerSplit, b.thinkerOutput];
  return {
    user,
    writer: [b.writerSystem, ...user, b.writerTail, b.thinkerOutput, b.writerSplit, b.writerOutput],
    thinker,
    control: [...thinker, b.control],
  };
}

/** The baselines' one view: plain prompt, history, the user's words, the prompt's tail, the output. */
export function singleView<B>(b: { plainSystem: B; history: B[]; userHead: B; userInput: B; tail: B; output: B }): B[] {
  return [b.plainSystem, ...b.history, b.userHead, b.userInput, b.tail, b.output];
}

/** A view up to and including `block`: the context in which that block's own tokens are encoded. */
export function viewUpTo(view: CacheBlock[], block: CacheBlock): CacheBlock[] {
  const i = view.indexOf(block);
  if (i < 0) throw new Error(`block ${block.name} is not in this view`);
  return view.slice(0, i + 1);
}

/**
 * Encodes a turn's fixed separators in dependency order (tails, then splits, which follow the
 * other stream's output); the two streams' independent ones share a call.
 */
export async function encodeSeparators(
  lm: CausalLM,
  b: AsyncBlocks,
  ids: { readonly thinkerTail: readonly number[]; readonly writerTail: readonly number[]; readonly thinkerSplit: readonly number[]; readonly writerSplit: readonly number[] },
): Promise<void> {
  const v = asyncViews(b);
  const rows = (list: ForwardRow[]) => list.filter((r) => r.tokens.length);
  const tails = rows([
    { view: viewUpTo(v.thinker, b.thinkerTail), tokens: [...ids.thinkerTail] },
    { view: viewUpTo(v.writer, b.writerTail), tokens: [...ids.writerTail] },
  ]);
  if (tails.length) await lm.forward(tails);
  const splits = rows([
    { view: viewUpTo(v.thinker, b.thinkerSplit), tokens: [...ids.thinkerSplit] },
    { view: viewUpTo(v.writer, b.writerSplit), tokens: [...ids.writerSplit] },
  ]);
  if (splits.length) await lm.forward(splits);
}
