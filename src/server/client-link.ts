import type { Socket } from 'socket.io';
import type { Recognizer } from '../asr/recognizer.ts';
import { SileroVad } from '../asr/vad.ts';
import type { Mode } from '../async-reasoning/events.ts';
import { AsyncReasoningEngine, type EngineOptions } from '../async-reasoning/engine.ts';
import type { StandingPrompts } from '../async-reasoning/standing-prompts.ts';
import type { CausalLM } from '../llm/runtime/causal-lm.ts';
import type { Tokenizer } from '../llm/model/tokenizer.ts';
import { Conversation } from '../pipeline/conversation.ts';
import { isClientEvent, validate, type ClientEvent, type ServerEvents } from '../protocol.ts';
import type { TtsEngine } from '../tts/engine.ts';

/** Messages held per client while the model loads (50 audio frames = 5 s of speech). */
const MAX_QUEUED_WHILE_LOADING = 50;

/** What a conversation needs; may still be loading when the server starts. */
export interface Components {
  lm: CausalLM;
  tokenizer: Tokenizer;
  recognizer: Recognizer;
  tts: TtsEngine;
}

export type EngineSettings = Partial<Pick<EngineOptions, 'maxThinkingTokens' | 'maxAnswerTokens' | 'controlEvery' | 'safety' | 'sampling' | 'probeThreshold' | 'probeWhileWriting' | 'handBack' | 'probeReads'>>;

/** VAD sessions kept for reuse: a page reload should not load a new ONNX session every time. */
export class VadPool {
  private idle: SileroVad[] = [];
  constructor(private readonly keep = 4) {}

  async acquire(): Promise<SileroVad> {
    const v = this.idle.pop() ?? (await SileroVad.load());
    v.reset();
    return v;
  }

  /** Returns an idle VAD; beyond `keep` idle ones it is closed instead. */
  async release(v: SileroVad): Promise<void> {
    if (this.idle.length < this.keep) this.idle.push(v);
    else await v.close();
  }

  async close(): Promise<void> {
    for (const v of this.idle.splice(0)) await v.close();
  }
}

export interface LinkContext {
  components: Promise<Components & { standing: StandingPrompts; turnEnd: 'words' | 'silence' }>;
  vads: VadPool;
  modelName: string;
  version: string;
  mode: Mode;
  engine: EngineSettings;
  /** The latest loading progress, for a page that connects while the model loads. */
  lastProgress(): ServerEvents['progress'] | null;
}

type Emit = <E extends keyof ServerEvents>(event: E, payload: ServerEvents[E]) => void;

/**
 * One connected client, from its connection to its departure: validates and dispatches what it
 * sends, keeps a few messages while the model loads, and on disconnect — whenever it comes, even
 * before the conversation exists — gives back the conversation, its cache blocks and its VAD.
 * No message can throw out of here: every failure becomes an `error` event for this client only.
 */
export class ClientLink {
  private conversation: Conversation | null = null;
  private readonly queued: [ClientEvent, unknown][] = [];
  private closed = false;
  /** Resolves when everything this client held is released. */
  readonly released: Promise<void>;
  private release!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: LinkContext,
  ) {
    this.released = new Promise((r) => (this.release = r));
    // First of all: a client that leaves during the awaits below must still be cleaned up.
    socket.on('disconnect', () => void this.close());
    socket.onAny((event: unknown, payload: unknown) => this.receive(event, payload));
    void this.open();
  }

  private emit: Emit = (event, payload) => {
    if (!this.closed) this.socket.emit(event, payload);
  };

  private receive(event: unknown, payload: unknown): void {
    const name = typeof event === 'string' ? event.slice(0, 40) : `(${typeof event})`;
    try {
      if (!isClientEvent(event)) return this.emit('error', { event: name, message: 'unknown event' });
      const v = validate(event, payload);
      if (!v.ok) return this.emit('error', { event, message: v.message });
      if (!this.conversation) {
        // The model is still loading: keep a few seconds, not an unbounded backlog.
        if (this.queued.length >= MAX_QUEUED_WHILE_LOADING) this.queued.shift();
        this.queued.push([event, v.value]);
        return;
      }
      this.dispatch(this.conversation, event, v.value);
    } catch (e) {
      this.emit('error', { event: name, message: (e as Error)?.message ?? String(e) });
    }
  }

  private dispatch(c: Conversation, event: ClientEvent, value: unknown): void {
    const v = value as never;
    switch (event) {
      case 'audio':
        void c.pushAudio(v);
        break;
      case 'text':
        c.text((value as { text: string }).text);
        break;
      case 'ptt-down':
        c.pttDown();
        break;
      case 'ptt-up':
        void c.pttUp();
        break;
      case 'interrupt':
        c.interrupt();
        break;
      case 'settings':
        c.settings(v);
        break;
      case 'playback':
        c.playback(v);
        break;
    }
  }

  private async open(): Promise<void> {
    try {
      const p = this.ctx.lastProgress();
      if (p) this.emit('progress', p);
      const c = await this.ctx.components;
      if (this.closed) return;
      const vad = await this.ctx.vads.acquire();
      if (this.closed) return void (await this.ctx.vads.release(vad));
      // A spoken conversation: each spoken turn's fixed text is encoded ahead of it.
      const engine = new AsyncReasoningEngine({ lm: c.lm, tokenizer: c.tokenizer, standing: c.standing, prelude: true, ...this.ctx.engine });
      this.vad = vad;
      this.conversation = new Conversation({ engine, vad, recognizer: c.recognizer, tts: c.tts, emit: this.emit, mode: this.ctx.mode, turnEnd: { mode: c.turnEnd } });
      this.emit('hello', { version: this.ctx.version, model: this.ctx.modelName, mode: this.ctx.mode, handsFree: true });
      for (const [e, v] of this.queued.splice(0)) this.receive(e, v);
    } catch (e) {
      this.emit('error', { event: 'connection', message: (e as Error)?.message ?? String(e) });
    }
  }

  private vad: SileroVad | null = null;

  /** Releases everything this client caused. Idempotent; safe at any point of its life. */
  async close(): Promise<void> {
    if (this.closed) return this.released;
    this.closed = true;
    this.queued.length = 0;
    try {
      await this.conversation?.close();
      if (this.vad) await this.ctx.vads.release(this.vad);
    } catch {
      /* releasing must not fail the server; nothing is left to tell the client */
    } finally {
      this.conversation = null;
      this.vad = null;
      this.release();
    }
    return this.released;
  }
}
