import type { ForwardRow } from '../llm/causal-lm.ts';
import type { CacheBlock } from '../llm/kv-cache.ts';
import { Sampler } from '../llm/sampling.ts';
import type { Tokenizer } from '../llm/tokenizer.ts';
import { SpeechChunker, type TextChunk } from '../tts/chunker.ts';
import type { AsyncReasoningEngine, HistoryEntry, StartTurnOptions, StreamName } from './engine.ts';
import { asyncViews, encodeSeparators, type AsyncBlocks, type AsyncViews } from './layout.ts';
import { EventQueue, type DoneReason, type EngineEvent, type EngineState, type Mode, type SpeechChunk, type TurnResult } from './events.ts';
import { totalDelayMs, wordsPerMinuteDuration } from './metrics.ts';

/** One stream's output block and what is not in it yet. */
interface Stream {
  block: CacheBlock;
  /** Sampled or forced tokens whose K/V do not exist yet; fed at the stream's next step. */
  pending: number[];
  /** How many of `pending`, from the front, are answer/thought tokens (the rest are fixed text). */
  pendingProduced: number;
  /** Tokens this stream produced (its thoughts or its answer), in order. */
  produced: number[];
  /** Position in `block` of each produced token already fed. */
  fedAt: number[];
  /** Text already sent in events (the decoded `produced`, minus any unfinished character). */
  emitted: string;
  forbidden: Set<number>;
  /** Token sequences the stream may not complete. */
  bannedPhrases: number[][];
  /** Why the stream is over, or null while it goes on: only a thinker that ended its own thoughts may be reopened. */
  ended: 'model' | 'budget' | 'context' | null;
}

type Role = 'user' | 'thinker' | 'writer' | 'writer-fixed';
type UserMarker = 'none' | 'adds' | 'interrupts';

/**
 * One user turn. Events stream through `events`; `result` resolves when the turn ends.
 * Visibility: a token sampled in step t is fed in step t+1 (its K/V are made then) and the other
 * stream sees it from step t+2, since rows of one batched step do not see each other's new tokens.
 */
export class Turn {
  readonly events = new EventQueue<EngineEvent>();
  readonly result: Promise<TurnResult>;
  readonly mode: Mode;
  finished = false;
  /** What this turn added to the conversation's history, once it has. */
  historyEntry: HistoryEntry | null = null;
  private resolveResult!: (r: TurnResult) => void;
  private rejectResult!: (e: unknown) => void;
  private readonly t0 = performance.now();
  private readonly abortController = new AbortController();
  private readonly sampler: Sampler;
  private state: EngineState = 'listening';
  private stepNo = 0;
  private probes = 0;
  private userText: string;
  private userOpen: boolean;
  private userQueue: string[] = [];
  private nextUserMarker: UserMarker = 'none';
  private interruptRequest: { heardChars: number } | null = null;
  private wake: (() => void) | null = null;
  private firstAnswer: { ms: number; step: number } | null = null;
  /** The answer cut into speech chunks as it is written (the same chunker the voice pipeline uses). */
  private chunker = new SpeechChunker();
  private chunks: TextChunk[] = [];
  private blocks: CacheBlock[] = [];
  private loop: Promise<void> = Promise.resolve();

  private userHead!: CacheBlock;
  private userInput!: CacheBlock;
  private writerTail!: CacheBlock;
  private thinkerTail!: CacheBlock;
  private writerSplit!: CacheBlock;
  private thinkerSplit!: CacheBlock;
  private control!: CacheBlock;
  private thinker!: Stream;
  private writer!: Stream;
  private yesIds: number[] = [];
  private noIds: number[] = [];
  private stopIds = new Set<number>();
  private thinkEndId: number | undefined;

  constructor(
    private readonly engine: AsyncReasoningEngine,
    userText: string,
    opts: StartTurnOptions,
  ) {
    this.mode = opts.mode ?? 'async';
    this.userText = userText;
    this.userOpen = opts.final === false;
    if (!this.userOpen) this.nextUserMarker = 'adds';
    this.sampler = new Sampler(engine.options.sampling);
    this.result = new Promise((res, rej) => {
      this.resolveResult = res;
      this.rejectResult = rej;
    });
    this.result.catch(() => undefined);
    if (opts.signal) {
      if (opts.signal.aborted) this.abortController.abort();
      else opts.signal.addEventListener('abort', () => this.abort(), { once: true });
    }
  }

  // ───────────────────────────── controls ─────────────────────────────

  /** More of the user's words: the rest of an utterance, or something said while the answer runs. */
  addUserInput(text: string): void {
    if (this.finished || !text.trim()) return;
    this.userQueue.push(text.trim());
    this.poke();
  }

  /** The user stopped speaking: the writer may speak once the thinker agrees. */
  endUserInput(): void {
    this.userOpen = false;
    this.nextUserMarker = 'adds';
    this.poke();
  }

  /**
   * Barge-in: the listener heard `heardChars` characters of the answer. The writer stops, the
   * unheard rest is trimmed from the cache, the model is told it was interrupted, and the thinker
   * keeps its thoughts and listens to what the user says next (call endUserInput when they stop).
   */
  interrupt(opts: { heardChars: number }): void {
    if (this.finished) return;
    this.interruptRequest = { heardChars: Math.max(0, Math.floor(opts.heardChars)) };
    this.userOpen = true;
    this.poke();
  }

  abort(): void {
    this.abortController.abort();
    this.poke();
  }

  get currentState(): EngineState {
    return this.state;
  }

  /** The answer so far (what the writer has produced and not had trimmed). */
  get answer(): string {
    return this.writer ? this.engine.tokenizer.decode(this.writer.produced) : '';
  }

  /** This turn's blocks, for inspection (tests, dashboards); streams not started are absent. */
  get cacheBlocks(): Partial<AsyncBlocks> {
    const sys = this.engine.systemBlocks;
    return {
      writerSystem: sys.writer,
      thinkerSystem: sys.thinker,
      history: this.engine.historyBlock,
      userHead: this.userHead,
      userInput: this.userInput,
      writerTail: this.writerTail,
      thinkerTail: this.thinkerTail,
      writerSplit: this.writerSplit,
      thinkerSplit: this.thinkerSplit,
      writerOutput: this.writer?.block,
      thinkerOutput: this.thinker?.block,
      control: this.control,
    };
  }

  /** Each row's view, in order; the last block is the one the row writes. */
  get views(): Partial<AsyncViews> & { user: CacheBlock[]; single?: CacheBlock[] } {
    const user = [this.engine.historyBlock, this.userHead, this.userInput];
    if (this.mode !== 'async') return { user, single: [this.engine.systemBlocks.plain, ...user, this.thinkerTail, this.thinker.block] };
    return asyncViews(this.asyncBlocks());
  }

  /** Every block of the async layout; runAsync creates them all before any view is used. */
  private asyncBlocks(): AsyncBlocks {
    return this.cacheBlocks as AsyncBlocks;
  }

  /** Resolves once the turn is over, history included (result may resolve first). */
  async settled(): Promise<void> {
    await this.loop;
  }

  // ───────────────────────────── plumbing ─────────────────────────────

  /** @internal */
  start(ready: Promise<void>): void {
    this.loop = ready
      .then(() => this.run())
      .catch((e) => {
        this.emit({ type: 'error', message: (e as Error).message, step: this.stepNo, tMs: this.now() });
        this.dropBlocks();
        this.events.close();
        this.rejectResult(e);
      });
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  private emit(e: EngineEvent): void {
    this.events.push(e);
  }

  private setState(to: EngineState, reason: string): void {
    if (to === this.state) return;
    this.emit({ type: 'state', from: this.state, to, reason, step: this.stepNo, tMs: this.now() });
    this.state = to;
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private waitForInput(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  /** Our own prompt text: control tokens in it are meant. */
  private ids(text: string): number[] {
    return text ? this.engine.tokenizer.encode(text) : [];
  }

  private idSet(tokens: string[]): Set<number> {
    const out = new Set<number>();
    for (const t of tokens) {
      const id = this.engine.tokenizer.tokenId(t);
      if (id !== undefined) out.add(id);
    }
    return out;
  }

  private newBlock(name: string): CacheBlock {
    const b = this.engine.lm.cache.createBlock(name);
    this.blocks.push(b);
    return b;
  }

  private newStream(block: CacheBlock, forbidden: string[]): Stream {
    return { block, pending: [], pendingProduced: 0, produced: [], fedAt: [], emitted: '', forbidden: this.idSet(forbidden), bannedPhrases: [], ended: null };
  }

  private fits(view: CacheBlock[], newTokens: number): boolean {
    return view.reduce((a, b) => a + b.length, 0) + newTokens <= this.engine.lm.maxPositions;
  }

  /** Records where produced tokens land when `count` pending tokens are fed into the stream's block. */
  private noteFed(s: Stream, count: number): void {
    const base = s.block.length - count; // called after the step committed them
    for (let i = 0; i < Math.min(count, s.pendingProduced); i++) s.fedAt.push(base + i);
    s.pendingProduced = Math.max(0, s.pendingProduced - count);
    s.pending = s.pending.slice(count);
  }

  // ───────────────────────────── turn ─────────────────────────────

  private async run(): Promise<void> {
    if (this.abortController.signal.aborted) return this.finish('aborted'); // before it began (its conversation closed)
    const { lm, tokenizer, prompts: p } = this.engine;
    const o = this.engine.options;
    const userIds = tokenizer.encodeText(this.userText);
    const fixed = [p.userHead, p.thinkerTail, p.thinkerSplit, p.thinkerOutputPrefix, p.writerTail, p.writerSplit, p.thinkTail]
      .map((t) => this.ids(t).length)
      .reduce((a, b) => a + b, 0);
    // Room for the prompts, both budgets and some listening; the oldest history goes first.
    await this.engine.makeRoom(fixed + userIds.length + o.maxThinkingTokens + o.maxAnswerTokens + 64);

    this.stopIds = this.idSet(p.answerEnd);
    this.thinkEndId = tokenizer.tokenId(p.thinkEnd);
    const single = (w: string) => {
      const ids = tokenizer.encode(w);
      return ids.length === 1 ? ids[0] : undefined;
    };
    this.yesIds = [...new Set(p.yesWords.map(single).filter((x): x is number => x !== undefined))];
    this.noIds = [...new Set(p.noWords.map(single).filter((x): x is number => x !== undefined))];

    const h = this.engine.historyBlock;
    this.userHead = this.newBlock('user_head');
    this.userInput = this.newBlock('user_input');
    await lm.forward([{ view: [h, this.userHead], tokens: this.ids(p.userHead) }]);
    if (userIds.length) await lm.forward([{ view: [h, this.userHead, this.userInput], tokens: userIds }]);
    this.emit({ type: 'user-input', text: this.userText, tokens: userIds.length, step: 0, tMs: this.now() });

    if (this.mode === 'async') await this.runAsync();
    else await this.runSingle();
  }

  /** User words that arrived since the last step, as a row for the next batch. */
  private takeUserRow(): ForwardRow | null {
    if (!this.userQueue.length) return null;
    const { tokenizer, prompts: p } = this.engine;
    const said = this.userQueue.splice(0).join(' ');
    let text = said;
    if (this.nextUserMarker === 'interrupts') text = p.userInterrupts(said);
    else if (this.nextUserMarker === 'adds') text = p.userAdds(said);
    else if (this.userInput.length) text = ' ' + said;
    // Further words of the same utterance continue it without a new marker.
    this.nextUserMarker = this.userOpen ? 'none' : 'adds';
    this.userText += (this.userText ? ' ' : '') + said;
    const tokens = tokenizer.encodeText(text);
    this.emit({ type: 'user-input', text: said, tokens: tokens.length, step: this.stepNo, tMs: this.now() });
    return { view: [this.engine.historyBlock, this.userHead, this.userInput], tokens };
  }

  private async runAsync(): Promise<void> {
    const { lm, prompts: p, tokenizer } = this.engine;
    const o = this.engine.options;
    this.writerTail = this.newBlock('writer_tail');
    this.thinkerTail = this.newBlock('thinker_tail');
    this.writerSplit = this.newBlock('writer_split');
    this.thinkerSplit = this.newBlock('thinker_split');
    this.control = this.newBlock('control_question');
    this.thinker = this.newStream(this.newBlock('thinker_output'), p.thinkerForbidden);
    this.writer = this.newStream(this.newBlock('writer_output'), p.writerForbidden);
    this.writer.bannedPhrases = this.markerPhrases();
    await encodeSeparators(lm, this.asyncBlocks(), { thinkerTail: this.ids(p.thinkerTail), writerTail: this.ids(p.writerTail), thinkerSplit: this.ids(p.thinkerSplit), writerSplit: this.ids(p.writerSplit) });
    this.thinker.pending = this.ids(p.thinkerOutputPrefix);
    this.writer.pending = this.ids(p.writerOutputStart);
    this.setState('thinker_only', 'turn started');

    let sinceProbe = 0;
    for (;;) {
      if (this.abortController.signal.aborted) return this.finish('aborted');
      if (this.interruptRequest) this.applyInterrupt();
      const rows: ForwardRow[] = [];
      const roles: Role[] = [];
      const userRow = this.takeUserRow();
      if (userRow) {
        rows.push(userRow);
        roles.push('user');
      }
      const v = asyncViews(this.asyncBlocks());
      const writerMayRun = (this.state === 'thinker_and_writer' || this.state === 'writer_only') && !this.userOpen;
      if (this.writer.pending.length > 1) {
        // Fixed text (the answer's start, an interruption marker): fed without sampling, all but
        // the last token, which the writer's next real step feeds and samples after.
        rows.push({ view: v.writer, tokens: this.writer.pending.slice(0, -1) });
        roles.push('writer-fixed');
      } else if (writerMayRun) {
        if (!this.fits(v.writer, 1)) return this.finish('context-limit');
        rows.push({ view: v.writer, tokens: this.writer.pending });
        roles.push('writer');
      }
      if (!this.thinker.ended && this.state !== 'writer_only') {
        if (!this.fits(v.thinker, this.thinker.pending.length)) {
          this.thinker.ended = 'context';
          this.setState('writer_only', 'context limit reached while thinking');
        } else {
          rows.push({ view: v.thinker, tokens: this.thinker.pending });
          roles.push('thinker');
        }
      }
      if (!rows.length) {
        await this.waitForInput(); // thinking is over and the user is still speaking
        continue;
      }

      const { logits } = await lm.forward(rows);
      this.stepNo++;
      const tMs = this.now();
      for (let i = 0; i < rows.length; i++) {
        const role = roles[i];
        if (role === 'writer-fixed') this.noteFed(this.writer, rows[i].tokens.length);
        if (role === 'thinker') {
          this.noteFed(this.thinker, rows[i].tokens.length);
          const next = this.nextThought(logits[i], tMs);
          if (next === null) continue;
          this.thinker.pending = [next];
          this.thinker.pendingProduced = 1;
          sinceProbe++;
        }
        if (role === 'writer') {
          this.noteFed(this.writer, rows[i].tokens.length);
          const end = this.nextAnswerToken(logits[i], tMs);
          if (end) return this.finish(end);
          if (this.state === 'thinker_and_writer' && endsParagraph(tokenizer, this.writer.produced)) {
            this.setState('thinker_only', 'writer finished a paragraph; waiting for the thinker');
          }
        }
      }

      // Words that came after the thinker had ended its thoughts: now in the cache, worth thinking about.
      if (userRow && this.reopenThinker()) this.setState('thinker_only', 'the user said more; thinking resumes');

      const thinkerParagraph = sinceProbe > 0 && endsParagraph(tokenizer, this.thinker.produced);
      if (!this.thinker.ended && this.state === 'thinker_only' && !this.userOpen && (sinceProbe >= o.controlEvery || thinkerParagraph)) {
        sinceProbe = 0;
        if (await this.probe()) this.setState('thinker_and_writer', 'thinker says its thoughts are far enough ahead');
      }
    }
  }

  /**
   * The text a stream's latest token adds. Byte-level tokens can split a character: an incomplete
   * one is held back until the token that completes it, so no event carries a broken character.
   */
  private newText(s: Stream): string {
    const full = this.engine.tokenizer.decode(s.produced).replace(/\uFFFD+$/, '');
    const delta = full.startsWith(s.emitted) ? full.slice(s.emitted.length) : '';
    if (full.length >= s.emitted.length) s.emitted = full;
    return delta;
  }

  private sample(stream: StreamName, s: Stream, logits: Float32Array): number {
    this.engine.options.logitsHook?.(stream, logits, this.stepNo);
    return this.sampler.sample(logits, s.produced, this.forbiddenNow(s));
  }

  /**
   * The stream's forbidden tokens, plus the next token of any banned phrase its output is in the
   * middle of: the writer never starts to say our markers ("(Further private thoughts…").
   */
  private forbiddenNow(s: Stream): Set<number> {
    if (!s.bannedPhrases.length) return s.forbidden;
    let out: Set<number> | null = null;
    for (const phrase of s.bannedPhrases) {
      for (let k = 1; k < phrase.length; k++) {
        const tail = s.produced.slice(-k);
        if (tail.length === k && tail.every((t, i) => t === phrase[i])) {
          out ??= new Set(s.forbidden);
          out.add(phrase[k]);
        }
      }
    }
    return out ?? s.forbidden;
  }

  /** Token sequences (both spacings) of the first words of each marker the writer sees. */
  private markerPhrases(): number[][] {
    const p = this.engine.prompts;
    const out: number[][] = [];
    for (const text of [p.writerSplit, p.thinkerSplit, p.controlQuestion]) {
      const words = text.replace(/<\/?think>/g, '').trim().split(/\s+/).slice(0, 3).join(' ');
      for (const variant of [words, ` ${words}`]) {
        const ids = this.engine.tokenizer.encode(variant);
        if (ids.length >= 2) out.push(ids);
      }
    }
    return out;
  }

  /** Samples the thinker: a thought (emitted and returned), or null when its thoughts end here. */
  private nextThought(logits: Float32Array, tMs: number): number | null {
    const next = this.sample('thinker', this.thinker, logits);
    if (next === this.thinkEndId || this.thinker.produced.length >= this.engine.options.maxThinkingTokens) {
      this.thinker.ended = next === this.thinkEndId ? 'model' : 'budget';
      this.setState('writer_only', next === this.thinkEndId ? 'thinker ended its thoughts' : 'thinking budget spent');
      return null;
    }
    this.thinker.produced.push(next);
    this.emit({ type: 'thinking', text: this.newText(this.thinker), tokenId: next, step: this.stepNo, tMs });
    return next;
  }

  /** Samples the writer and takes the token; says why the turn ends if it does. */
  private nextAnswerToken(logits: Float32Array, tMs: number): DoneReason | null {
    const next = this.sample('writer', this.writer, logits);
    if (this.stopIds.has(next)) return 'end-of-answer';
    this.acceptAnswerToken(next, tMs);
    return this.writer.produced.length >= this.engine.options.maxAnswerTokens ? 'max-answer-tokens' : null;
  }

  private acceptAnswerToken(id: number, tMs: number): void {
    this.writer.produced.push(id);
    this.writer.pending = [id];
    this.writer.pendingProduced = 1;
    const text = this.newText(this.writer);
    if (!this.firstAnswer) this.firstAnswer = { ms: tMs, step: this.stepNo };
    this.chunks.push(...this.chunker.push(text, tMs));
    this.emit({ type: 'answer', text, tokenId: id, step: this.stepNo, tMs });
  }

  /** The control question, as a probe row that leaves no trace in the cache. */
  private async probe(): Promise<boolean> {
    const v = asyncViews(this.asyncBlocks());
    const q = this.ids(this.engine.prompts.controlQuestion);
    const { logits } = await this.engine.lm.forward([{ view: v.control, tokens: q, persist: false }]);
    this.probes++;
    const l = logits[0];
    this.engine.options.logitsHook?.('control', l, this.stepNo);
    let max = -Infinity;
    for (let i = 0; i < l.length; i++) if (l[i] > max) max = l[i];
    let z = 0;
    for (let i = 0; i < l.length; i++) z += Math.exp(l[i] - max);
    const prob = (ids: number[]) => ids.reduce((a, id) => a + Math.exp(l[id] - max) / z, 0);
    const pYes = prob(this.yesIds);
    const pNo = prob(this.noIds);
    const decision = pYes > pNo ? 'yes' : 'no';
    this.emit({ type: 'control', pYes, pNo, decision, step: this.stepNo, tMs: this.now() });
    return decision === 'yes';
  }

  /** Barge-in: keep what was heard, trim the rest, tell the model, let the thinker listen. */
  private applyInterrupt(): void {
    const { heardChars } = this.interruptRequest!;
    this.interruptRequest = null;
    const { tokenizer, prompts: p } = this.engine;
    const w = this.writer;
    let keep = 0;
    while (keep < w.produced.length && tokenizer.decode(w.produced.slice(0, keep + 1)).length <= heardChars) keep++;
    const trimmed = w.produced.length - keep;
    const fed = w.fedAt.length;
    if (keep < fed) {
      // Cut the block just before the first unheard answer token (markers after it go too).
      w.block.trim(w.fedAt[keep]);
      w.fedAt.length = keep;
    }
    const unfedKept = w.produced.slice(Math.min(keep, fed), keep);
    w.produced.length = keep;
    w.pending = [...unfedKept, ...tokenizer.encode(p.writerInterrupted)];
    w.pendingProduced = unfedKept.length;
    const heardText = tokenizer.decode(w.produced);
    w.emitted = heardText.replace(/\uFFFD+$/, '');
    this.chunker = new SpeechChunker();
    this.chunks = this.chunker.push(heardText, this.now());
    this.nextUserMarker = 'interrupts';
    this.reopenThinker();
    this.setState(this.thinker.ended ? 'writer_only' : 'thinker_only', 'user interrupted');
    this.emit({ type: 'interrupted', heardText, keptTokens: keep, trimmedTokens: trimmed, step: this.stepNo, tMs: this.now() });
  }

  /** A thinker that ended its own thoughts gets more to think about (the user spoke again): it goes on. */
  private reopenThinker(): boolean {
    const t = this.thinker;
    if (t?.ended !== 'model') return false;
    t.ended = null;
    t.pending = this.ids('\n\n');
    t.pendingProduced = 0;
    return true;
  }

  /** Baselines: think-then-answer, or answer without thinking, in one stream. */
  private async runSingle(): Promise<void> {
    const { lm, prompts: p } = this.engine;
    // A conventional pipeline waits for the whole utterance before it starts.
    while (this.userOpen || this.userQueue.length) {
      if (this.abortController.signal.aborted) return this.finish('aborted');
      const row = this.takeUserRow();
      if (row) await lm.forward([row]);
      else await this.waitForInput();
    }
    this.thinkerTail = this.newBlock('prompt_tail');
    const out = this.newBlock('output');
    this.thinker = this.newStream(out, p.thinkerForbidden.filter((t) => !p.answerEnd.includes(t)));
    this.writer = this.newStream(out, p.writerForbidden);
    const tail = this.ids(this.mode === 'think' ? p.thinkTail : p.noThinkTail);
    await lm.forward([{ view: [this.engine.systemBlocks.plain, ...this.views.user, this.thinkerTail], tokens: tail.slice(0, -1) }]);
    let thinking = this.mode === 'think';
    this.setState(thinking ? 'thinker_only' : 'writer_only', 'turn started');
    let pending = tail.slice(-1);
    for (;;) {
      if (this.abortController.signal.aborted) return this.finish('aborted');
      const view = this.views.single!;
      if (!this.fits(view, pending.length)) return this.finish('context-limit');
      const { logits } = await lm.forward([{ view, tokens: pending }]);
      this.stepNo++;
      const tMs = this.now();
      if (thinking) {
        const next = this.nextThought(logits[0], tMs);
        if (next === null) {
          thinking = false;
          pending = this.ids(p.endThinking);
          continue;
        }
        pending = [next];
      } else {
        const end = this.nextAnswerToken(logits[0], tMs);
        if (end) return this.finish(end);
        pending = this.writer.pending;
      }
    }
  }

  private async finish(reason: DoneReason): Promise<void> {
    const tMs = this.now();
    this.chunks.push(...this.chunker.flush(tMs));
    const duration = this.engine.options.speechDurationMs ?? wordsPerMinuteDuration();
    const chunks: SpeechChunk[] = this.chunks
      .map((c) => ({ text: c.raw.trim(), readyMs: c.readyMs }))
      .filter((c) => c.text)
      .map((c) => ({ ...c, durationMs: duration(c.text) }));
    const answer = this.answer;
    const result: TurnResult = {
      mode: this.mode,
      answer,
      thinking: this.thinker ? this.engine.tokenizer.decode(this.thinker.produced) : '',
      reason,
      metrics: {
        firstAnswerTokenMs: this.firstAnswer?.ms ?? null,
        firstAnswerTokenStep: this.firstAnswer?.step ?? null,
        totalDelayMs: totalDelayMs(chunks),
        thinkingTokens: this.thinker?.produced.length ?? 0,
        answerTokens: this.writer?.produced.length ?? 0,
        steps: this.stepNo,
        controlProbes: this.probes,
        chunks,
      },
    };
    this.setState('done', reason);
    this.dropBlocks();
    // What was said joins the conversation; thoughts do not (as Qwen3's own template does).
    if (reason !== 'aborted') {
      this.historyEntry = { user: this.userText, assistant: answer.trim() };
      await this.engine.appendHistory(this.historyEntry);
    }
    this.emit({ type: 'done', reason, step: this.stepNo, tMs: this.now(), result });
    this.events.close();
    this.resolveResult(result);
  }

  private dropBlocks(): void {
    this.finished = true;
    for (const b of this.blocks) b.drop();
  }
}

function endsParagraph(tokenizer: Tokenizer, ids: number[]): boolean {
  return ids.length > 0 && tokenizer.decode(ids.slice(-2)).endsWith('\n\n');
}
