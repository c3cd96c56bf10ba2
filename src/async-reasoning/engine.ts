import { RuntimeUsageError } from '../errors.ts';
import type { CausalLM } from '../llm/runtime/causal-lm.ts';
import type { CacheBlock } from '../llm/runtime/kv-cache.ts';
import type { Tokenizer } from '../llm/model/tokenizer.ts';
import type { Mode } from './events.ts';
import { promptSetFor, type PromptSet } from './prompts.ts';
import type { SpeechPace } from './speech-pace.ts';
import { StandingPrompts } from './standing-prompts.ts';
import { turnConfig, type HandBack, type LogitsHook, type ProbeReads, type StreamSampling, type TurnSettings } from './turn-config.ts';
import type { HistoryEntry, SharedAfter, TurnContext, TurnHistory } from './turn-context.ts';
import type { TurnBlocks } from './turn-blocks.ts';
import { encodePrelude } from './turn-prelude.ts';
import { Turn } from './turn.ts';

export { Turn } from './turn.ts';
export type { StreamName } from './turn-config.ts';

export interface EngineOptions {
  lm: CausalLM;
  tokenizer: Tokenizer;
  /** Default: picked from the tokenizer's chat format. */
  prompts?: PromptSet;
  /**
   * Standing instructions already encoded (shared by a server's conversations; their prompt set is
   * used). Default: the engine encodes its own and drops them on close().
   */
  standing?: StandingPrompts;
  /** Use the safety-reasoning prompt variant. */
  safety?: boolean;
  /** Ask the control question every this many thinker tokens (and at thinker paragraph ends). */
  controlEvery?: number;
  maxThinkingTokens?: number;
  maxAnswerTokens?: number;
  /** Each stream's sampling (absent: greedy). */
  sampling?: StreamSampling;
  /** Release the writer when P(yes) / (P(yes) + P(no)) reaches this (default 0.5). */
  probeThreshold?: number;
  /** Ask the control question while the writer writes too; a "no" stops it (default true). */
  probeWhileWriting?: boolean;
  /** Where the writer hands back to the thinker (default 'sentence'). */
  handBack?: HandBack;
  /** What the control question reads (default 'fresh'; see probe.ts). */
  probeReads?: ProbeReads;
  /** What the shared blocks are encoded after (see TurnContext.sharedAfter; default 'nothing'). */
  sharedAfter?: SharedAfter;
  /**
   * Sees (and may edit) each stream's logits before they are used. For tests and diagnostics:
   * it changes what the model says, never how the engine reacts to it.
   */
  logitsHook?: LogitsHook;
  /**
   * Keep finished exchanges for later turns (default true). A one-shot question has no later turn:
   * false skips encoding the exchange into the history, work that would only delay the exit.
   */
  keepHistory?: boolean;
  /**
   * Encode the next spoken turn's fixed text while idle (see turn-prelude.ts): for conversations
   * that take speech. Default false: a typed turn cannot use it and would wait for it to be made.
   */
  prelude?: boolean;
}

export interface StartTurnOptions {
  mode?: Mode;
  /** false: the user is still speaking; more words come through addUserInput, then endUserInput. */
  final?: boolean;
  signal?: AbortSignal;
  /** The voice speaking the answer: while it is far ahead of the listener, the writer holds (async mode). */
  pace?: SpeechPace;
}

/**
 * The asynchronous-reasoning engine: one conversation (its history, its context room) whose turns
 * run a thinker and a writer over one shared KV cache.
 */
export class AsyncReasoningEngine {
  readonly lm: CausalLM;
  readonly tokenizer: Tokenizer;
  readonly prompts: PromptSet;
  readonly history: HistoryEntry[] = [];
  /** Each stream's standing instructions (see standing-prompts.ts). */
  readonly systemBlocks: StandingPrompts;
  /** The finished exchanges, shared by every view. */
  /** One cache block per finished exchange, oldest first (parallel to `history`). */
  readonly historyBlocks: CacheBlock[] = [];
  private readonly ownsStanding: boolean;
  private closed = false;
  /**
   * Every change to the history runs on this chain, and a turn starts only when what is on it has
   * run: a new turn never reads a history block that is being cleared or re-encoded.
   */
  private historyChain: Promise<void>;
  private active: Turn | null = null;
  /** The next spoken turn's fixed text, encoded ahead (see turn-prelude.ts); dropped whenever the history changes. */
  private prelude: TurnBlocks | null = null;
  private readonly usePrelude: boolean;
  private settings: TurnSettings;
  private readonly context: TurnContext;

  constructor(opts: EngineOptions) {
    this.lm = opts.lm;
    this.tokenizer = opts.tokenizer;
    if (opts.standing && opts.standing.lm !== opts.lm) throw new RuntimeUsageError('the standing prompts were encoded for another model');
    this.prompts = opts.standing?.prompts ?? opts.prompts ?? promptSetFor((t) => opts.tokenizer.tokenId(t) !== undefined, { safety: opts.safety });
    this.settings = {
      controlEvery: opts.controlEvery ?? 20,
      maxThinkingTokens: opts.maxThinkingTokens ?? 512,
      maxAnswerTokens: opts.maxAnswerTokens ?? 512,
      sampling: opts.sampling,
      probeThreshold: opts.probeThreshold ?? 0.5,
      probeWhileWriting: opts.probeWhileWriting ?? true,
      handBack: opts.handBack ?? 'sentence',
      probeReads: opts.probeReads ?? 'fresh',
      logitsHook: opts.logitsHook,
    };
    this.ownsStanding = !opts.standing;
    this.usePrelude = opts.prelude ?? false;
    this.systemBlocks = opts.standing ?? new StandingPrompts(this.lm, this.tokenizer, this.prompts);
    this.historyChain = this.systemBlocks.ready;
    const keep = opts.keepHistory ?? true;
    const history: TurnHistory = { blocks: this.historyBlocks, makeRoom: (n) => this.makeRoom(n), append: (e) => (keep ? this.appendHistory(e) : Promise.resolve()) };
    const sharedAfter = opts.sharedAfter === 'thinker-system' ? [this.systemBlocks.thinker] : [];
    this.context = { lm: this.lm, tokenizer: this.tokenizer, prompts: this.prompts, standing: this.systemBlocks, history, sharedAfter };
    this.schedulePrelude();
  }

  /**
   * Ends the conversation and gives back everything it holds in the shared cache: a running turn
   * is aborted (within one step), queued history changes are skipped, and its blocks are dropped.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const turn = this.active;
    turn?.abort();
    await turn?.settled().catch(() => undefined);
    await this.historyChain;
    this.dropPrelude();
    for (const b of this.historyBlocks.splice(0)) b.drop();
    if (this.ownsStanding) await this.systemBlocks.drop();
  }

  /** New token budgets. A running turn keeps the ones it started with; the next turn uses these. */
  setBudgets(b: { maxThinkingTokens?: number; maxAnswerTokens?: number }): void {
    for (const [k, v] of Object.entries(b)) {
      if (v === undefined) continue;
      if (!Number.isInteger(v) || v < 1) throw new RuntimeUsageError(`${k} must be a positive integer, got ${v}`);
      this.settings = { ...this.settings, [k]: v };
    }
  }

  /** Resolves when the conversation's standing blocks are encoded (turns wait for it anyway). */
  ready(): Promise<void> {
    return this.historyChain;
  }

  private onHistory(change: () => Promise<void>): Promise<void> {
    const done = this.historyChain.then(() => (this.closed ? undefined : change()));
    this.historyChain = done.catch(() => undefined);
    return done;
  }

  /**
   * Starts a turn from the user's words so far. One turn runs at a time: a turn that is ending
   * (interrupted in a baseline, or told to end) is waited for, history included; a running one is
   * an error.
   */
  startTurn(userText: string, opts: StartTurnOptions = {}): Turn {
    if (this.closed) throw new RuntimeUsageError('this conversation is closed');
    const prev = this.active;
    if (prev && prev.acceptsInput) throw new RuntimeUsageError('a turn is already running; interrupt or abort it first');
    const turn = new Turn(this.context, turnConfig(this.tokenizer, this.prompts, opts.mode ?? 'async', this.settings), userText, { ...opts, takePrelude: () => this.takePrelude() });
    this.active = turn;
    const ready = prev && !prev.finished ? prev.settled().catch(() => undefined).then(() => this.historyChain) : this.historyChain;
    turn.start(ready);
    // Once this turn is over, history included; ahead of the next turn's start, which waits for this one and then the chain.
    const prepareNext = () => this.schedulePrelude();
    void turn.settled().then(prepareNext, prepareNext);
    return turn;
  }

  /** Encodes the next spoken turn's fixed text once what is on the history chain has run. */
  private schedulePrelude(): void {
    if (!this.usePrelude) return;
    void this.onHistory(async () => {
      if (this.prelude) return;
      const { ids } = turnConfig(this.tokenizer, this.prompts, 'async', this.settings);
      // Best effort: a turn without a prelude encodes its own fixed text, and reports any failure itself.
      this.prelude = await encodePrelude(this.context, ids).catch(() => null);
    }).catch(() => undefined); // standing prompts that failed to encode fail the turn that waits on them, not this
  }

  private takePrelude(): TurnBlocks | null {
    const p = this.prelude;
    this.prelude = null;
    return p;
  }

  private dropPrelude(): void {
    this.prelude?.drop();
    this.prelude = null;
  }

  /** Adds a finished exchange to the shared history (re-encoded once, as plain chat). */
  private appendHistory(entry: HistoryEntry): Promise<void> {
    return this.onHistory(() => this.encodeHistoryEntry(entry));
  }

  private async encodeHistoryEntry(entry: HistoryEntry): Promise<void> {
    this.dropPrelude(); // it saw the history as it was
    const block = this.lm.cache.createBlock('history');
    try {
      await this.lm.forward([{ view: [...this.context.sharedAfter, ...this.historyBlocks, block], tokens: this.historyIds(entry) }]);
    } catch (e) {
      block.drop();
      throw e;
    }
    this.history.push(entry);
    this.historyBlocks.push(block);
  }

  /** Every history token, in order (for inspection). */
  get historyTokens(): number[] {
    return this.historyBlocks.flatMap((b) => b.tokens);
  }

  private get historyLength(): number {
    return this.historyBlocks.reduce((a, b) => a + b.length, 0);
  }

  /** The template's chat markers are ours (control tokens); the two texts are data. */
  private historyIds(entry: HistoryEntry): number[] {
    const U = '\u0001USER\u0001';
    const A = '\u0001ASSISTANT\u0001';
    const [beforeU, rest] = this.prompts.historyTurn(U, A).split(U);
    const [between, afterA] = rest.split(A);
    return [
      ...this.tokenizer.encode(beforeU),
      ...this.tokenizer.encodeText(entry.user),
      ...this.tokenizer.encode(between),
      ...this.tokenizer.encodeText(entry.assistant),
      ...this.tokenizer.encode(afterA),
    ];
  }

  /**
   * The listener cut a finished turn's audio: only what was heard of its answer stays in the
   * conversation (the history is re-encoded). Queued, at the call, behind the turn's own history
   * entry and ahead of any turn started after it; `heardChars` may still be on its way from the player.
   */
  truncateAnswer(turn: Turn, heardChars: number | Promise<number>, marker = ` ${this.prompts.writerInterrupted.trim()}`): Promise<void> {
    if (!turn.finished) return Promise.reject(new RuntimeUsageError('the turn is still running; interrupt it instead'));
    if (this.active !== turn && this.active && !this.active.finished) return Promise.reject(new RuntimeUsageError('a later turn is already running'));
    const done = this.onHistory(async () => {
      await turn.settled();
      const heard = await heardChars;
      const i = turn.historyEntry ? this.history.indexOf(turn.historyEntry) : -1;
      if (i < 0) return; // it never joined the history (aborted, failed) or has been dropped for room
      const e = this.history[i];
      if (heard >= e.assistant.length) return;
      const cut = { user: e.user, assistant: `${e.assistant.slice(0, Math.max(0, heard)).trimEnd()}${marker}`.trim() };
      await this.rebuildHistory(this.history.map((x, j) => (j === i ? cut : x)));
    });
    this.schedulePrelude(); // right behind the cut, ahead of the next turn's start
    return done;
  }

  /** Re-encodes the history block from these exchanges (its K/V depend on every earlier one). */
  private async rebuildHistory(entries: HistoryEntry[]): Promise<void> {
    this.dropPrelude();
    this.history.length = 0;
    for (const b of this.historyBlocks.splice(0)) b.drop();
    for (const e of entries) await this.encodeHistoryEntry(e);
  }

  /** Drops the oldest exchanges until `needed` more positions fit after the history. */
  private async makeRoom(needed: number): Promise<void> {
    const s = this.systemBlocks;
    const room = this.lm.maxPositions - Math.max(s.writer.length, s.thinker.length, s.plain.length) - needed;
    // The oldest exchanges leave as whole blocks: the rest keep their K/V and positions, with
    // nothing re-encoded, so a turn costs the same once the context is full as before. (What the
    // rest computed while the dropped ones were there stays in them, as in any context shift.)
    if (this.historyLength > room) this.dropPrelude(); // it saw the history as it was
    while (this.historyBlocks.length && this.historyLength > room) {
      this.historyBlocks.shift()!.drop();
      this.history.shift();
    }
    if (this.historyLength > room) {
      throw new RuntimeUsageError(
        `this turn needs ${this.lm.maxPositions - room} positions beyond the history, more than the model's ${this.lm.maxPositions}; lower the token budgets or raise --max-context`,
      );
    }
  }
}
