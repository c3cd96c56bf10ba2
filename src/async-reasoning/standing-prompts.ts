import type { CausalLM } from '../llm/runtime/causal-lm.ts';
import type { CacheBlock } from '../llm/runtime/kv-cache.ts';
import type { Tokenizer } from '../llm/model/tokenizer.ts';
import type { PromptSet } from './prompts.ts';

/**
 * Each stream's standing instructions as cache blocks (writer, thinker, and the baselines' plain
 * prompt). Their K/V depend only on the model and the prompt text, so one encoding can serve every
 * conversation on a server: a new page then costs nothing to set up, and the cache holds one copy.
 * Shared copies are never dropped by a conversation; an engine that made its own drops it.
 */
export class StandingPrompts {
  readonly writer: CacheBlock;
  readonly thinker: CacheBlock;
  readonly plain: CacheBlock;
  /** Resolves when all three are encoded. */
  readonly ready: Promise<void>;

  constructor(
    readonly lm: CausalLM,
    tokenizer: Tokenizer,
    readonly prompts: PromptSet,
  ) {
    const encode = (name: string, text: string) => {
      const b = lm.cache.createBlock(name);
      const ids = text ? tokenizer.encode(text) : [];
      return { b, ready: ids.length ? lm.forward([{ view: [b], tokens: ids }]) : Promise.resolve() };
    };
    const w = encode('writer_system', prompts.writerSystem);
    const t = encode('thinker_system', prompts.thinkerSystem);
    const p = encode('plain_system', prompts.plainSystem);
    this.writer = w.b;
    this.thinker = t.b;
    this.plain = p.b;
    this.ready = Promise.all([w.ready, t.ready, p.ready]).then(() => undefined);
    this.ready.catch(() => undefined);
  }

  /** Frees the three blocks (after any encoding still in flight has landed). */
  async drop(): Promise<void> {
    await this.ready.catch(() => undefined);
    for (const b of [this.writer, this.thinker, this.plain]) b.drop();
  }
}
