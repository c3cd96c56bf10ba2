import type { CacheBlock } from '../llm/runtime/kv-cache.ts';
import { runAsync } from './async-decoder.ts';
import type { DoneReason, EngineEvent, EngineState, EventQueue, Mode, TurnResult } from './events.ts';
import type { AsyncBlocks, AsyncViews } from './layout.ts';
import { runSingle } from './single-stream.ts';
import type { SpeechPace } from './speech-pace.ts';
import type { TurnBlocks } from './turn-blocks.ts';
import { encodeUserHead } from './turn-prelude.ts';
import { positionsNeeded, type TurnConfig } from './turn-config.ts';
import type { HistoryEntry, TurnContext } from './turn-context.ts';
import { TurnRuntime } from './turn-runtime.ts';

/**
 * One user turn: its controls (more words, end of speech, barge-in, end, abort), its event stream
 * and its result. The decoding itself is the async decoder's or, for the baselines, the single
 * stream's; both run on the turn's runtime.
 */
export class Turn {
  readonly events: EventQueue<EngineEvent>;
  readonly result: Promise<TurnResult>;
  readonly mode: Mode;
  finished = false;
  /** What this turn added to the conversation's history, once it has. */
  historyEntry: HistoryEntry | null = null;
  private readonly rt: TurnRuntime;
  private resolveResult!: (r: TurnResult) => void;
  private rejectResult!: (e: unknown) => void;
  private loop: Promise<void> = Promise.resolve();
  /** The conversation's prelude for the next spoken turn, if it has one (see turn-prelude.ts). */
  private readonly takePrelude: (() => TurnBlocks | null) | null;

  constructor(
    private readonly ctx: TurnContext,
    readonly config: TurnConfig,
    userText: string,
    opts: { final?: boolean; signal?: AbortSignal; pace?: SpeechPace; takePrelude?: () => TurnBlocks | null } = {},
  ) {
    this.takePrelude = opts.takePrelude ?? null;
    this.mode = config.mode;
    // The baselines are the method's comparison as published: their single stream is never held.
    this.rt = new TurnRuntime(ctx, config, userText, opts.final === false, config.mode === 'async' ? opts.pace : undefined);
    this.events = this.rt.events;
    this.result = new Promise((res, rej) => {
      this.resolveResult = res;
      this.rejectResult = rej;
    });
    this.result.catch(() => undefined);
    if (opts.signal?.aborted) this.rt.aborted = true;
    else opts.signal?.addEventListener('abort', () => this.abort(), { once: true });
  }

  // ───────────────────────────── controls ─────────────────────────────

  /** More of the user's words: the rest of an utterance, or something said while the answer runs. */
  addUserInput(text: string): void {
    if (this.finished || !this.rt.user.add(text)) return;
    this.rt.poke();
  }

  /**
   * The user's voice went quiet (a pause, or the listener's turn end) while their last words are
   * still being recognised: the control question can be asked now, so the writer is ready to speak
   * the moment endUserInput brings those words in. Optional; endUserInput alone does the same, later.
   */
  userWentQuiet(): void {
    if (this.finished) return;
    this.rt.user.wentQuiet();
    this.rt.poke();
  }

  /** The voice came back after userWentQuiet (a pause, not the end): the user is talking again. */
  userResumed(): void {
    if (this.finished) return;
    this.rt.user.resumed();
  }

  /** The user stopped speaking: the writer may speak once the thinker agrees. */
  endUserInput(): void {
    this.rt.user.end();
    this.rt.poke();
  }

  /**
   * Barge-in: the listener heard `heardChars` characters of the answer (a promise when the player
   * has yet to say). The writer stops at once; the unheard rest is trimmed from the cache; the
   * model is told it was interrupted and the thinker keeps its thoughts and listens to what the
   * user says next (call endUserInput when they stop). The baselines end the turn instead.
   */
  interrupt(opts: { heardChars: number | Promise<number> }): void {
    if (this.finished) return;
    this.rt.interruptRequest = Promise.resolve(opts.heardChars).catch(() => 0);
    this.rt.user.interrupted();
    if (this.mode !== 'async') this.rt.endRequested = true;
    this.rt.poke();
  }

  /** Ends the turn at its next step, keeping what was heard (a Stop with nothing said after it). */
  end(): void {
    if (this.finished) return;
    this.rt.endRequested = true;
    this.rt.poke();
  }

  /** Ends the turn at its next step, keeping nothing (its conversation is closing). */
  abort(): void {
    this.rt.aborted = true;
    this.rt.poke();
  }

  /** Whether words said now still belong to this turn (false once it ends or is ending). */
  get acceptsInput(): boolean {
    return !this.finished && !this.rt.endRequested && !this.rt.aborted;
  }

  get currentState(): EngineState {
    return this.rt.state;
  }

  /** The answer so far (what the writer has produced and not had trimmed). */
  get answer(): string {
    return this.rt.writer ? this.ctx.tokenizer.decode(this.rt.writer.produced) : '';
  }

  /** This turn's blocks, for inspection (tests, dashboards); streams not started are absent. */
  get cacheBlocks(): Partial<AsyncBlocks> {
    return this.rt.blocks.all;
  }

  /** Each row's view, in order; the last block is the one the row writes. */
  get views(): Partial<AsyncViews> & { user: CacheBlock[]; single?: CacheBlock[] } {
    const user = this.rt.blocks.userView;
    if (this.mode !== 'async') return { user, single: this.rt.thinker ? this.rt.blocks.singleView : undefined };
    return this.rt.blocks.asyncBlocks ? this.rt.blocks.asyncViews : { user };
  }

  /** Resolves once the turn is over, history included (result may resolve first). */
  async settled(): Promise<void> {
    await this.loop;
  }

  // ───────────────────────────── the run ─────────────────────────────

  /** @internal Runs the turn once `ready` (the conversation's pending history work) has. */
  start(ready: Promise<void>): void {
    this.loop = ready
      .then(() => this.run())
      .catch((e) => {
        this.rt.emit({ type: 'error', message: (e as Error).message, step: this.rt.stepNo, tMs: this.rt.now() });
        this.drop();
        this.rt.events.close();
        this.rejectResult(e);
      });
  }

  private async run(): Promise<void> {
    const rt = this.rt;
    if (rt.aborted) return this.finish('aborted'); // before it began (its conversation closed)
    const { lm, tokenizer } = this.ctx;
    const userIds = tokenizer.encodeText(rt.user.text);
    // Room for the prompts, both budgets and some listening; the oldest history goes first.
    await this.ctx.history.makeRoom(positionsNeeded(this.config, userIds.length));
    // Spoken, with no words in yet: its fixed text is what a prelude holds, encoded already.
    const prelude = rt.user.open && !userIds.length ? this.takePrelude?.() : null;
    if (prelude) rt.adoptBlocks(prelude);
    const b = rt.blocks;
    await encodeUserHead(this.ctx, b, this.config.ids.userHead);
    const first = userIds.length ? await lm.forward([{ view: b.userView, tokens: userIds }]) : null;
    rt.emit({ type: 'user-input', text: rt.user.text, tokens: userIds.length, step: 0, tMs: rt.now() });
    if (first && rt.user.open) rt.userEnd(first.logits[0]); // still speaking: whether they are done is worth knowing
    await this.finish(this.mode === 'async' ? await runAsync(rt) : await runSingle(rt));
  }

  private async finish(reason: DoneReason): Promise<void> {
    const rt = this.rt;
    const answer = this.answer;
    const result: TurnResult = {
      mode: this.mode,
      answer,
      thinking: rt.thinker ? this.ctx.tokenizer.decode(rt.thinker.produced) : '',
      reason,
      metrics: {
        firstAnswerTokenMs: rt.firstAnswer?.ms ?? null,
        firstAnswerTokenStep: rt.firstAnswer?.step ?? null,
        thinkingTokens: rt.thinker?.produced.length ?? 0,
        answerTokens: rt.writer?.produced.length ?? 0,
        steps: rt.stepNo,
        controlProbes: rt.probes,
      },
    };
    rt.setState('done', reason, reason);
    this.drop();
    // What was said joins the conversation; thoughts do not (as Qwen3's own template does).
    if (reason !== 'aborted') {
      const cut = reason === 'interrupted' ? ` ${this.ctx.prompts.writerInterrupted.trim()}` : '';
      this.historyEntry = { user: rt.user.text, assistant: `${answer.trim()}${cut}`.trim() };
      await this.ctx.history.append(this.historyEntry);
    }
    rt.emit({ type: 'done', reason, step: rt.stepNo, tMs: rt.now(), result });
    rt.events.close();
    this.resolveResult(result);
  }

  private drop(): void {
    this.finished = true;
    this.rt.blocks.drop();
  }
}
