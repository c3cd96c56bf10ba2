import { encodeSeparators } from './layout.ts';
import { TurnBlocks } from './turn-blocks.ts';
import type { PromptIds } from './turn-config.ts';
import type { TurnContext } from './turn-context.ts';

/**
 * The next spoken turn's fixed text, encoded while nobody waits: the user head, and the async
 * layout's tails and splits. Without it a spoken turn starts with these three calls in a row,
 * between the first words heard and the first thought.
 *
 * A spoken turn's words reach the cache after its separators anyway (they arrive while it runs),
 * so the prelude's K/V are the very ones the turn would have made: same tokens, same views, same
 * history. A typed turn has its words first and encodes its own. The prelude is only good for the
 * history it saw; whoever changes the history drops it first.
 */
export async function encodePrelude(ctx: TurnContext, ids: Pick<PromptIds, 'userHead' | 'thinkerTail' | 'writerTail' | 'thinkerSplit' | 'writerSplit'>): Promise<TurnBlocks> {
  const blocks = new TurnBlocks(ctx);
  try {
    await encodeUserHead(ctx, blocks, ids.userHead);
    await encodeSeparators(ctx.lm, blocks.makeAsync(), ids);
    return blocks;
  } catch (e) {
    blocks.drop();
    throw e;
  }
}

/** The user head, after the history: the first thing every turn encodes (unless a prelude has). */
export async function encodeUserHead(ctx: Pick<TurnContext, 'lm' | 'history' | 'sharedAfter'>, blocks: TurnBlocks, userHead: readonly number[]): Promise<void> {
  if (blocks.userHead.length > 0) return;
  await ctx.lm.forward([{ view: [...ctx.sharedAfter, ...ctx.history.blocks, blocks.userHead], tokens: [...userHead] }]);
}
