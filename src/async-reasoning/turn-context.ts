import type { CausalLM } from '../llm/runtime/causal-lm.ts';
import type { CacheBlock } from '../llm/runtime/kv-cache.ts';
import type { Tokenizer } from '../llm/model/tokenizer.ts';
import type { PromptSet } from './prompts.ts';
import type { StandingPrompts } from './standing-prompts.ts';

export interface HistoryEntry {
  user: string;
  assistant: string;
}

/**
 * What a turn needs of its conversation's history: the blocks every view starts from, room for
 * its own tokens, and a place to leave its exchange. The engine implements it; a turn never
 * sees the engine itself, so the two do not import each other.
 */
export interface TurnHistory {
  /** One block per finished exchange, oldest first; the engine changes it only between turns. */
  readonly blocks: readonly CacheBlock[];
  /** Drops the oldest exchanges until `positions` more fit after the history. */
  makeRoom(positions: number): Promise<void>;
  append(entry: HistoryEntry): Promise<void>;
}

/** The conversation-wide things a turn runs on. */
export interface TurnContext {
  lm: CausalLM;
  tokenizer: Tokenizer;
  prompts: PromptSet;
  standing: StandingPrompts;
  history: TurnHistory;
  /**
   * What the shared blocks (history, the user's words) are encoded after: nothing (each stream
   * places them after its own system block), or the thinker's system block (its view is then the
   * very sequence a from-scratch encoding makes; the writer's still reads them rotated).
   */
  sharedAfter: CacheBlock[];
}

export type SharedAfter = 'nothing' | 'thinker-system';
export const SHARED_AFTER: readonly SharedAfter[] = ['nothing', 'thinker-system'];
