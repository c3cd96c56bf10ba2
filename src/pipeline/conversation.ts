import type { AsyncReasoningEngine, Turn } from '../async-reasoning/engine.ts';
import type { Mode } from '../async-reasoning/events.ts';
import type { Recognizer } from '../asr/recognizer.ts';
import { StreamingTranscriber, type ListenEvent } from '../asr/stream.ts';
import type { SileroVad } from '../asr/vad.ts';
import { ASR_SAMPLE_RATE } from '../audio/resample.ts';
import { pcm16ToFloat } from '../audio/wav.ts';
import type { InterruptCause, ServerEvents } from '../protocol.ts';
import type { TtsEngine } from '../tts/engine.ts';
import { AudioIntake, type AudioIntakeOptions } from './audio-intake.ts';
import { BargeInPolicy } from './barge-in.ts';
import { Heartbeat, ListeningLag } from './listening-lag.ts';
import { Playout } from './playout.ts';
import { TurnEndPolicy, type TurnEndDecision, type TurnEndOptions } from './turn-end.ts';
import { TurnObserver } from './turn-observer.ts';
import { UtteranceTracker, type UtteranceEnd } from './utterances.ts';

/** Quiet this long after speech ends the user's turn (hands-free), where the words cannot tell. */
export const TURN_END_SILENCE_MS = 600;
/** Where the model can tell a finished message from the words: quiet this long closes a phrase, and a finished one ends the turn. */
export const PHRASE_SILENCE_MS = 250;

export type Emit = <E extends keyof ServerEvents>(event: E, payload: ServerEvents[E]) => void;

export interface ConversationOptions {
  engine: AsyncReasoningEngine;
  vad: SileroVad;
  recognizer: Recognizer;
  tts: TtsEngine;
  emit: Emit;
  mode?: Mode;
  handsFree?: boolean;
  /** One monotonic clock for every stamp. */
  now?: () => number;
  /** See BargeInOptions.confirmMs. */
  bargeInConfirmMs?: number;
  /** After an interruption with nothing said, the turn ends after this much quiet (default 2 s). */
  stopGraceMs?: number;
  /** How long a barge-in waits for the player to say how much of the cut chunk was heard. */
  playbackReportTimeoutMs?: number;
  /** How far ahead of real time a client's audio may run before it is dropped. */
  intake?: AudioIntakeOptions;
  /**
   * How the user's turn ends: 'words' where the model tells finished messages from unfinished ones
   * (checkEndOfMessage), else 'silence' (the default).
   */
  turnEnd?: TurnEndOptions & { phraseSilenceMs?: number };
}

/** The turn being answered, with its latency record and the playout now speaking it. */
interface Live {
  turn: Turn;
  observer: TurnObserver;
  playout: Playout;
}

/**
 * One client's spoken conversation, as a router: client messages and recognition events go to the
 * part that owns them (utterances, barge-in policy, the turn, its playout and observer), whose
 * events go back to the client.
 */
export class Conversation {
  private readonly now: () => number;
  private readonly transcriber: StreamingTranscriber;
  private readonly utterances = new UtteranceTracker();
  private readonly lag: ListeningLag;
  private readonly heartbeat = new Heartbeat();
  private readonly bargeIn: BargeInPolicy;
  private readonly intake: AudioIntake;
  /** Whether a closed phrase ends the user's turn; it holds the phrase's end and when its final came. */
  private readonly turnEnd: TurnEndPolicy<{ end: UtteranceEnd; finalAt: number }>;
  private mode: Mode;
  handsFree: boolean;
  private turnId = 0;
  private chunkSeq = 0;
  private live: Live | null = null;
  private audioChain: Promise<void> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> = Promise.resolve();

  constructor(private readonly o: ConversationOptions) {
    this.now = o.now ?? (() => performance.now());
    this.mode = o.mode ?? 'async';
    this.handsFree = o.handsFree ?? true;
    this.intake = new AudioIntake(o.intake);
    this.lag = new ListeningLag(
      (lagMs) => o.emit('listening', { lagMs }),
      (ms) => this.heartbeat.idleFor(ms),
    );
    const te = o.turnEnd ?? { mode: 'silence' };
    this.turnEnd = new TurnEndPolicy(te, this.now, (d) => this.userTurnEnded(d));
    const silenceMs = te.mode === 'words' ? (te.phraseSilenceMs ?? PHRASE_SILENCE_MS) : TURN_END_SILENCE_MS;
    this.transcriber = new StreamingTranscriber(o.vad, o.recognizer, (e) => this.heardEvent(e), { vad: { minSilenceMs: silenceMs }, partialEveryMs: 800 });
    this.bargeIn = new BargeInPolicy({
      confirmMs: o.bargeInConfirmMs,
      graceMs: o.stopGraceMs,
      userBusy: () => this.transcriber.speaking || this.utterances.awaitingFinal,
      onInterrupt: () => this.interruptAnswer('voice'),
      onGraceOver: () => this.live?.turn.end(),
    });
  }

  private get speaking(): boolean {
    return this.live?.playout.speaking ?? false;
  }

  /** Settings from the renderer; they apply from the next turn on. */
  settings(s: { mode?: Mode; handsFree?: boolean; maxThinkingTokens?: number; maxAnswerTokens?: number }): void {
    if (s.mode) this.mode = s.mode;
    if (s.handsFree !== undefined) this.handsFree = s.handsFree;
    this.o.engine.setBudgets({ maxThinkingTokens: s.maxThinkingTokens, maxAnswerTokens: s.maxAnswerTokens });
  }

  /** PCM16 little-endian 16 kHz mono from the client. */
  pushAudio(bytes: Uint8Array): Promise<void> {
    if (this.closed) return Promise.resolve();
    const durationMs = (bytes.byteLength / 2 / ASR_SAMPLE_RATE) * 1000;
    const at = this.now();
    // Decided before converting: a flood must cost as little as possible per dropped frame.
    const v = this.intake.offer(durationMs, at);
    if (!v.take) {
      if (v.notice) this.o.emit('error', { event: 'audio', message: v.notice });
      return Promise.resolve();
    }
    const f = pcm16ToFloat(bytes);
    const frame = this.utterances.received(durationMs, at);
    this.lag.arrived(frame.endMs, frame.arrivedAt);
    return this.onAudio(async () => {
      try {
        this.utterances.processing(frame);
        await this.transcriber.push(f);
        this.lag.processed(frame.endMs, this.now());
      } finally {
        this.intake.done(durationMs);
      }
    }, 'audio');
  }

  /** Push-to-talk released: the utterance is over now, whatever the VAD thinks. */
  pttUp(): Promise<void> {
    return this.onAudio(() => this.transcriber.flush(), 'ptt-up');
  }

  private onAudio(work: () => Promise<void>, where: string): Promise<void> {
    this.audioChain = this.audioChain.then(() => (this.closed ? undefined : work())).catch((e) => this.fail(where, e));
    return this.audioChain;
  }

  /** Push-to-talk pressed while the assistant speaks: that is a barge-in. */
  pttDown(): void {
    if (this.speaking) this.interruptAnswer('push-to-talk');
  }

  /** The Stop button. */
  interrupt(): void {
    this.interruptAnswer('stop');
  }

  /** Typed input: a whole utterance at once. Typed over the answer, it cuts it off as speech would. */
  text(text: string): void {
    const at = this.now();
    if (this.speaking) this.interruptAnswer('typed');
    const live = this.live;
    if (live?.turn.acceptsInput) {
      // Typed while the assistant still thinks (or was just cut off): it joins the turn.
      this.bargeIn.userFollowedUp();
      live.turn.addUserInput(text);
      live.turn.endUserInput();
      this.o.emit('transcript', { turnId: live.observer.turnId, text, final: true });
      return;
    }
    this.startTurn(text, { spokeUntil: at, decidedAt: at });
  }

  /** The renderer reports when a chunk really started and ended (or was cut). */
  playback(p: { chunkId: number; event: 'start' | 'end' | 'stopped'; heardChars?: number }): void {
    this.live?.playout.playback(p);
  }

  /** What the transcriber heard: voice activity, partial and final transcripts. */
  heardEvent(e: ListenEvent): void {
    if (this.closed) return; // a recognition that finished after the client left
    const at = this.now();
    switch (e.type) {
      case 'speech-start':
        this.o.emit('vad', { speaking: true, atMs: e.atMs });
        if (this.speaking && this.handsFree) this.bargeIn.speechOverAnswer();
        // Speech inside a running turn does not open the next one; startTurn takes this.
        if (!this.live?.turn.acceptsInput) this.utterances.speechStarted(e.atMs);
        else if (this.turnEnd.deciding) {
          this.turnEnd.speechStarted(); // the user goes on after a pause: the same message continues
          this.live.turn.userResumed();
        }
        break;
      case 'speech-end':
        this.o.emit('vad', { speaking: false, atMs: e.atMs });
        this.utterances.speechEnded(e.atMs, at);
        // The final transcript is a recognition pass away: the turn can ask its control question meanwhile.
        if (this.live?.turn.acceptsInput) this.live.turn.userWentQuiet();
        break;
      case 'pause':
        // The turn may be ending (half the turn-end silence): the question is asked now, not at turn end.
        if (this.live?.turn.acceptsInput) this.live.turn.userWentQuiet();
        break;
      case 'resume':
        if (this.live?.turn.acceptsInput) this.live.turn.userResumed();
        break;
      case 'partial':
      case 'final': {
        const final = e.type === 'final';
        const end = final ? this.utterances.takeEnd(e.voicedEndMs) : undefined;
        const verdict = this.bargeIn.transcript(e.text, final);
        if (verdict === 'ignore') break;
        if (verdict === 'interrupt') this.interruptAnswer('voice');
        this.hear(e.startMs, e.text, final, at, end);
        break;
      }
    }
  }

  /** Gives recognised words to the turn they belong to (starting one if none is taking words). */
  private hear(startMs: number, text: string, final: boolean, at: number, end?: UtteranceEnd): void {
    if (!this.live?.turn.acceptsInput) {
      if (!text.trim()) return;
      this.utterances.restart(startMs);
      this.startTurn('', null);
    }
    const { turn, observer } = this.live!;
    observer.stamp('firstPartial', at);
    this.o.emit('transcript', { turnId: observer.turnId, text, final });
    const words = this.utterances.heard(startMs, text, final);
    if (words.fresh) turn.addUserInput(words.fresh);
    if (words.correction) turn.addUserInput(`(correction: ${words.correction})`);
    if (words.fresh || words.correction) this.bargeIn.userFollowedUp();
    if (final) {
      // The phrase is over; whether the turn is, the policy decides (at once where it cannot tell).
      const e = end ?? { spokeUntil: at, decidedAt: at };
      const added = [words.fresh, words.correction ? `(correction: ${words.correction})` : ''].filter(Boolean).join(' ');
      this.turnEnd.phraseEnded(added || null, e.spokeUntil, { end: e, finalAt: at });
    }
  }

  /** The user's turn is over: their input closes and the turn may answer. */
  private userTurnEnded(d: TurnEndDecision<{ end: UtteranceEnd; finalAt: number }>): void {
    const { end: e, finalAt } = d.context;
    const live = this.live;
    if (!live?.turn.acceptsInput) return;
    // Silence alone: the recogniser decided when it closed the phrase; else the policy decided now.
    const decidedAt = this.turnEnd.mode === 'silence' ? e.decidedAt : this.now();
    live.observer.userEnded({ spokeUntil: e.spokeUntil, decidedAt }, finalAt);
    live.observer.turnEndDecision(d.by, d.pEnd);
    live.turn.endUserInput();
  }

  /** A new turn; `typed` gives its whole (typed) input and when it was sent, null while the user speaks. */
  private startTurn(text: string, typed: UtteranceEnd | null): void {
    const turnId = ++this.turnId;
    const observer = new TurnObserver(turnId, (m) => this.o.emit('metrics', m));
    const speechStart = this.utterances.takeSpeechStart();
    if (speechStart !== null && !typed) observer.stamp('userSpeechStart', speechStart);
    this.bargeIn.userFollowedUp(); // whatever was interrupted, the user has moved on
    if (typed) {
      observer.userEnded(typed);
      this.o.emit('transcript', { turnId, text, final: true });
    }
    this.turnEnd.reset();
    // The writer keeps a few seconds ahead of this turn's voice, no more (see speech-pace.ts). Read
    // only once the turn runs, by when `live` exists; its playout is replaced after a barge-in.
    const pace = { queuedMs: () => live.playout.queuedMs() };
    const turn = this.o.engine.startTurn(text, { mode: this.mode, final: typed !== null, pace });
    const live: Live = { turn, observer, playout: this.newPlayout(turnId, observer, 0) };
    this.live = live;
    void this.pump(live).catch((err) => this.fail('turn', err));
  }

  private newPlayout(turnId: number, observer: TurnObserver, heardBefore: number): Playout {
    return new Playout({
      turnId,
      tts: this.o.tts,
      now: this.now,
      nextChunkId: () => this.chunkSeq++,
      send: (c) => this.o.emit('speech-chunk', c),
      refMs: () => observer.refMs,
      onEvent: (e) => observer.onPlayout(e),
      onError: (e) => this.fail('tts', e),
      heardBefore,
      reportTimeoutMs: this.o.playbackReportTimeoutMs,
    });
  }

  /** The turn's events, in order, to the client, the observer and the playout. */
  private async pump(live: Live): Promise<void> {
    const { turnId } = live.observer;
    for await (const e of live.turn.events) {
      live.observer.onEngine(e, this.now());
      if (e.type === 'user-end') this.turnEnd.pEnd(e.pEnd, e.words);
      else if (e.type === 'thinking') this.o.emit('thinking', { turnId, text: e.text });
      else if (e.type === 'answer') {
        this.o.emit('answer', { turnId, text: e.text });
        live.playout.push(e.text);
      } else if (e.type === 'state') this.o.emit('state', { turnId, from: e.from, to: e.to, cause: e.cause, reason: e.reason });
      else if (e.type === 'interrupted') {
        // The answer goes on after the user's words: its speech is a new playout, counted from what was heard.
        live.playout = this.newPlayout(turnId, live.observer, e.heardText.length);
      } else if (e.type === 'done') {
        await live.playout.finish();
        live.observer.finished();
      }
    }
  }

  /** Stops the answer's speech at once; the engine keeps exactly what was heard. */
  private interruptAnswer(cause: InterruptCause): void {
    const live = this.live;
    if (!live || live.playout.stopped) return;
    this.bargeIn.interrupted();
    const { turn, playout, observer } = live;
    this.o.emit('stop-audio', { turnId: observer.turnId, cause });
    const heard = playout.stop();
    void heard.then((heardChars) => this.o.emit('interrupted', { turnId: observer.turnId, cause, heardChars }));
    if (!turn.finished) turn.interrupt({ heardChars: heard });
    // The answer was all written but not all said: the conversation keeps only what was heard.
    else this.o.engine.truncateAnswer(turn, heard).catch((e) => this.fail('barge-in', e));
  }

  private fail(where: string, e: unknown): void {
    this.o.emit('error', { event: where, message: (e as Error).message ?? String(e) });
  }

  /**
   * The client left: everything this conversation holds is given back — its turn and cache
   * blocks (through the engine), the recognition and synthesis in flight, its timers. Resolves
   * once the VAD it was given is idle, so it can serve another client. Idempotent.
   */
  close(): Promise<void> {
    if (this.closed) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      this.heartbeat.stop();
      this.bargeIn.close();
      this.turnEnd.cancel();
      void this.live?.playout.stop();
      await this.transcriber.close();
      await this.o.engine.close();
      await this.audioChain.catch(() => undefined);
    })();
    return this.closing;
  }
}
