import { tokenProbability } from './end-of-message.ts';
import type { ForwardRow } from '../llm/runtime/causal-lm.ts';
import type { CacheBlock } from '../llm/runtime/kv-cache.ts';
import { Sampler } from '../llm/runtime/sampling.ts';
import { EventQueue, type DoneReason, type EngineEvent, type EngineState, type StateCause } from './events.ts';
import type { TokenStream } from './token-stream.ts';
import { TurnBlocks } from './turn-blocks.ts';
import type { TurnConfig } from './turn-config.ts';
import type { SpeechPace } from './speech-pace.ts';
import type { TurnContext } from './turn-context.ts';
import { UserInput } from './user-input.ts';

/**
 * What the decoders of one turn share: its frozen config, blocks, user input, streams, state and
 * the requests that arrive from outside while it runs (interrupt, end, abort). The Turn owns one;
 * the async and single-stream decoders drive it.
 */
export class TurnRuntime {
  readonly events = new EventQueue<EngineEvent>();
  blocks: TurnBlocks;
  readonly user: UserInput;
  /** Each stream samples with its own settings and its own random sequence (a seeded turn repeats exactly). */
  readonly samplers: Readonly<Record<'thinker' | 'writer', Sampler>>;
  thinker: TokenStream | null = null;
  writer: TokenStream | null = null;
  state: EngineState = 'listening';
  stepNo = 0;
  probes = 0;
  firstAnswer: { ms: number; step: number } | null = null;
  aborted = false;
  /** The turn should end at the next step, keeping what was heard (a Stop with nothing said after it). */
  endRequested = false;
  /** A barge-in waiting to be applied: how much of the answer was heard, once the player says. */
  interruptRequest: Promise<number> | null = null;
  private wake: (() => void) | null = null;
  private readonly t0 = performance.now();

  constructor(
    readonly ctx: TurnContext,
    readonly cfg: TurnConfig,
    userText: string,
    userOpen: boolean,
    /** How far the answer's speech runs ahead of the listener; absent: the writer is never held. */
    readonly pace?: SpeechPace,
  ) {
    this.blocks = new TurnBlocks(ctx);
    this.user = new UserInput(userText, userOpen);
    const seedOf = (o: { seed?: number } | undefined, k: number) => ({ ...o, seed: (o?.seed ?? 0) * 2 + k });
    this.samplers = { thinker: new Sampler(seedOf(cfg.sampling?.thinker, 0)), writer: new Sampler(seedOf(cfg.sampling?.writer, 1)) };
  }

  /** Runs on blocks encoded ahead (a prelude) instead of its own empty ones. Before the run only. */
  adoptBlocks(prepared: TurnBlocks): void {
    this.blocks.drop();
    this.blocks = prepared;
  }

  now(): number {
    return performance.now() - this.t0;
  }

  emit(e: EngineEvent): void {
    this.events.push(e);
  }

  setState(to: EngineState, cause: StateCause, reason: string): void {
    if (to === this.state) return;
    this.emit({ type: 'state', from: this.state, to, cause, reason, step: this.stepNo, tMs: this.now() });
    this.state = to;
  }

  /** Something from outside changed (words, an interrupt, an end): a waiting decoder looks again. */
  poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Resolves at the next poke, or after `timeoutMs` when given (a held writer's time is up). */
  waitForInput(timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? null : setTimeout(() => {
        if (this.wake === wake) this.wake = null;
        resolve();
      }, timeoutMs);
      const wake = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.wake = wake;
    });
  }

  /** Why the turn must stop before its next step, if it must. */
  stopReason(): DoneReason | null {
    if (this.aborted) return 'aborted';
    if (this.endRequested && !this.interruptRequest) return 'interrupted';
    return null;
  }

  fits(view: CacheBlock[], newTokens: number): boolean {
    return view.reduce((a, b) => a + b.length, 0) + newTokens <= this.ctx.lm.maxPositions;
  }

  /** The user's words that arrived since the last step, as a row for the next call. */
  takeUserRow(): ForwardRow | null {
    const u = this.user.take(this.ctx.prompts, this.blocks.userInput.length > 0);
    if (!u) return null;
    const tokens = this.ctx.tokenizer.encodeText(u.text);
    this.emit({ type: 'user-input', text: u.said, tokens: tokens.length, step: this.stepNo, tMs: this.now() });
    return { view: this.blocks.userView, tokens };
  }

  /** P(the user's message ends here), read from the logits of the row that fed their last words. */
  userEnd(logits: Float32Array): void {
    const id = this.cfg.endOfMessageId;
    if (id === null) return;
    this.emit({ type: 'user-end', pEnd: tokenProbability(logits, id), words: this.user.text, step: this.stepNo, tMs: this.now() });
  }

  private sample(name: 'thinker' | 'writer', s: TokenStream, logits: Float32Array): number {
    this.cfg.logitsHook?.(name, logits, this.stepNo);
    return this.samplers[name].sample(logits, s.produced, s.forbiddenNow());
  }

  /** Samples the thinker: a thought (emitted, and pending for the next step), or null when its thoughts end here. */
  nextThought(t: TokenStream, logits: Float32Array, tMs: number): number | null {
    const next = this.sample('thinker', t, logits);
    if (next === this.cfg.thinkEndId) {
      t.ended = 'model';
      this.setState('writer_only', 'thinker-ended', 'thinker ended its thoughts');
      return null;
    }
    if (t.produced.length >= this.cfg.maxThinkingTokens) {
      t.ended = 'budget';
      this.setState('writer_only', 'thinking-budget', 'thinking budget spent');
      return null;
    }
    const text = t.push(next);
    t.pending = [next];
    t.pendingProduced = 1;
    this.emit({ type: 'thinking', text, tokenId: next, step: this.stepNo, tMs });
    return next;
  }

  /** Samples the writer and takes the token; says why the turn ends if it does. */
  nextAnswerToken(w: TokenStream, logits: Float32Array, tMs: number): DoneReason | null {
    const next = this.sample('writer', w, logits);
    if (this.cfg.stopIds.has(next)) return 'end-of-answer';
    const text = w.push(next);
    w.pending = [next];
    w.pendingProduced = 1;
    this.firstAnswer ??= { ms: tMs, step: this.stepNo };
    this.emit({ type: 'answer', text, tokenId: next, step: this.stepNo, tMs });
    return w.produced.length >= this.cfg.maxAnswerTokens ? 'max-answer-tokens' : null;
  }

  /**
   * Applies a waiting barge-in: waits for how much was heard, keeps exactly that much of the
   * answer (the cache is cut before the first unheard token) and reports it. Returns whether one
   * was applied.
   */
  async cutAnswer(): Promise<boolean> {
    const request = this.interruptRequest;
    if (!request) return false;
    const heardChars = Math.max(0, Math.floor(await request));
    if (this.interruptRequest === request) this.interruptRequest = null;
    const w = this.writer;
    const before = w?.produced.length ?? 0;
    const keep = w ? w.tokensWithin(heardChars) : 0;
    w?.truncate(keep);
    this.emit({ type: 'interrupted', heardText: w?.text ?? '', keptTokens: keep, trimmedTokens: before - keep, step: this.stepNo, tMs: this.now() });
    return true;
  }
}
