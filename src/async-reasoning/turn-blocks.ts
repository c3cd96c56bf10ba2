import type { KvCache, CacheBlock } from '../llm/runtime/kv-cache.ts';
import { asyncViews, singleView, type AsyncBlocks, type AsyncViews } from './layout.ts';
import type { TurnContext } from './turn-context.ts';

/**
 * The cache blocks one turn creates (it drops them all when it ends) and each row's view over
 * them. The standing prompts and the history are the conversation's and are only read.
 */
export class TurnBlocks {
  private readonly own: CacheBlock[] = [];
  readonly userHead: CacheBlock;
  readonly userInput: CacheBlock;
  /** The async layout's blocks, once the async decoder has made them. */
  private async_: Pick<AsyncBlocks, 'writerTail' | 'thinkerTail' | 'writerSplit' | 'thinkerSplit' | 'writerOutput' | 'thinkerOutput' | 'control'> | null = null;
  /** The baselines' blocks: the prompt's tail and the one output stream. */
  private single_: { tail: CacheBlock; output: CacheBlock } | null = null;

  constructor(private readonly ctx: Pick<TurnContext, 'lm' | 'standing' | 'history' | 'sharedAfter'>) {
    this.userHead = this.create('user_head');
    this.userInput = this.create('user_input');
  }

  private get cache(): KvCache {
    return this.ctx.lm.cache;
  }

  private create(name: string): CacheBlock {
    const b = this.cache.createBlock(name);
    this.own.push(b);
    return b;
  }

  /** The blocks both streams share: the history and the user's words. */
  get sharedBlocks(): CacheBlock[] {
    return [...this.ctx.history.blocks, this.userHead, this.userInput];
  }

  /** The view the user's words are encoded in (and the user head before them). */
  get userView(): CacheBlock[] {
    return [...this.ctx.sharedAfter, ...this.sharedBlocks];
  }

  makeAsync(): AsyncBlocks {
    if (this.async_) return this.asyncBlocks!;
    const c = (n: string) => this.create(n);
    this.async_ = { writerTail: c('writer_tail'), thinkerTail: c('thinker_tail'), writerSplit: c('writer_split'), thinkerSplit: c('thinker_split'), control: c('control_question'), thinkerOutput: c('thinker_output'), writerOutput: c('writer_output') };
    return this.asyncBlocks!;
  }

  makeSingle(): { tail: CacheBlock; output: CacheBlock } {
    this.single_ = { tail: this.create('prompt_tail'), output: this.create('output') };
    return this.single_;
  }

  /** The async layout's tails and splits hold their tokens (a prelude encoded them, ahead of the turn). */
  get separatorsEncoded(): boolean {
    const a = this.async_;
    return a !== null && [a.thinkerTail, a.writerTail, a.thinkerSplit, a.writerSplit].some((x) => x.length > 0);
  }

  /** Every block of the async layout, or null before the async decoder made them. */
  get asyncBlocks(): AsyncBlocks | null {
    if (!this.async_) return null;
    const s = this.ctx.standing;
    return { writerSystem: s.writer, thinkerSystem: s.thinker, history: [...this.ctx.history.blocks], userHead: this.userHead, userInput: this.userInput, ...this.async_ };
  }

  /** The async layout's views (each row's, in order; the last block is the one the row writes). */
  get asyncViews(): AsyncViews {
    const b = this.asyncBlocks;
    if (!b) throw new Error('the async blocks are not made yet');
    return asyncViews(b);
  }

  /** The baselines' one view: plain prompt, history, the user's words, the prompt's tail, the output. */
  get singleView(): CacheBlock[] {
    if (!this.single_) throw new Error('the single-stream blocks are not made yet');
    return singleView({ plainSystem: this.ctx.standing.plain, history: [...this.ctx.history.blocks], userHead: this.userHead, userInput: this.userInput, ...this.single_ });
  }

  /** For inspection (tests, dashboards): every block this turn sees; those not made yet are absent. */
  get all(): Partial<AsyncBlocks> {
    const s = this.ctx.standing;
    return { writerSystem: s.writer, thinkerSystem: s.thinker, history: [...this.ctx.history.blocks], userHead: this.userHead, userInput: this.userInput, ...this.async_, ...(this.single_ ? { thinkerTail: this.single_.tail, thinkerOutput: this.single_.output, writerOutput: this.single_.output } : {}) };
  }

  drop(): void {
    for (const b of this.own) b.drop();
  }
}
