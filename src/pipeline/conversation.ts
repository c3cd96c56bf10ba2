import { AsyncReasoningEngine, type Turn } from '../async-reasoning/engine.ts';
import type { Mode } from '../async-reasoning/events.ts';
import { totalDelayMs } from '../async-reasoning/metrics.ts';
import type { Recognizer } from '../asr/recognizer.ts';
import { ASR_SAMPLE_RATE } from '../audio/resample.ts';
import { floatToPcm16, pcm16ToFloat } from '../audio/wav.ts';
import { StreamingTranscriber } from '../asr/stream.ts';
import type { SileroVad } from '../asr/vad.ts';
import type { ServerEvents, StampName } from '../protocol.ts';
import { SpeechChunker } from '../tts/chunker.ts';
import type { TtsEngine } from '../tts/engine.ts';
import { speakable } from '../tts/speakable.ts';

export type Emit = <E extends keyof ServerEvents>(event: E, payload: ServerEvents[E]) => void;

/** Words that only acknowledge ("uh-huh", "okay", "I see"): said over the answer, they must not cut it off. */
const BACKCHANNEL = new Set(['uh', 'huh', 'uh-huh', 'mhm', 'mm', 'mmm', 'hmm', 'hm', 'yeah', 'yes', 'yep', 'okay', 'ok', 'right', 'sure', 'aha', 'ah', 'oh', 'i', 'see', 'got', 'it', 'alright', 'cool', 'nice']);

export function isBackchannel(text: string): boolean {
  const words = text.toLowerCase().replace(/[^a-z\s-]/g, ' ').split(/\s+/).filter(Boolean);
  return words.length > 0 && words.length <= 3 && words.every((w) => BACKCHANNEL.has(w));
}

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
  /**
   * Speech over the answer interrupts once it has gone on this long past the VAD's own minimum,
   * or as soon as a partial transcript shows real words; a backchannel ("uh-huh") never does.
   */
  bargeInConfirmMs?: number;
}

/** When the user stopped talking, and when the VAD (or the key) said the utterance was over. */
interface UtteranceEnd {
  spokeUntil: number;
  decidedAt: number;
}

interface ChunkRecord {
  chunkId: number;
  text: string;
  readyMs: number;
  durationMs: number;
  audioStartMs?: number;
  audioEndMs?: number;
}

/** What one turn's observer has stamped; all times on the conversation's clock. */
class TurnObserver {
  readonly stamps: Partial<Record<StampName, number>> = {};
  readonly chunks: ChunkRecord[] = [];
  firstAnswerTokenMs: number | null = null;
  done = false;
  /** Everything the user said or typed in this turn, for display. */
  userText = '';
  constructor(readonly turnId: number) {}

  stamp(name: StampName, at: number): void {
    if (this.stamps[name] === undefined) this.stamps[name] = at;
  }

  /** Reference point of the turn's latencies: the end of the user's speech (or of typing). */
  get refMs(): number {
    return this.stamps.userSpeechEnd ?? this.stamps.turnEnd ?? 0;
  }

  report(): ServerEvents['metrics'] {
    const ref = this.refMs;
    const rel = (t: number | undefined) => (t === undefined ? undefined : t - ref);
    const stamps: Partial<Record<StampName, number>> = {};
    for (const [k, v] of Object.entries(this.stamps)) stamps[k as StampName] = rel(v);
    const played = this.chunks.filter((c) => c.audioStartMs !== undefined);
    return {
      turnId: this.turnId,
      stamps,
      chunks: this.chunks.map((c) => ({ chunkId: c.chunkId, readyMs: c.readyMs - ref, durationMs: c.durationMs, audioStartMs: rel(c.audioStartMs), audioEndMs: rel(c.audioEndMs) })),
      firstAnswerTokenMs: this.stamps.firstAnswerToken === undefined ? null : this.stamps.firstAnswerToken - ref,
      voiceToVoiceMs: played.length ? played[0].audioStartMs! - ref : null,
      totalDelayMs: this.chunks.length ? totalDelayMs(this.chunks.map((c) => ({ text: c.text, readyMs: c.readyMs - ref, durationMs: c.durationMs }))) : null,
      done: this.done,
    };
  }
}

/**
 * One spoken conversation: speech in → asynchronous-reasoning engine → speech out, for one client.
 * Partial transcripts feed the engine while the user still talks; answer text is chunked and
 * synthesised as it is written; barge-in (voice or key) interrupts per the engine's rules.
 */
export class Conversation {
  private readonly now: () => number;
  private readonly transcriber: StreamingTranscriber;
  private mode: Mode;
  handsFree: boolean;
  private turnId = 0;
  private turn: Turn | null = null;
  private observer: TurnObserver | null = null;
  private committedWords: string[] = [];
  private chunkSeq = 0;
  /**
   * The assistant has begun saying this turn's answer and has not finished it: from the first
   * chunk sent until the turn is done and every chunk has played. A pause between chunks (the
   * writer waiting for the thinker) is still its turn, so speech then is an interruption too.
   */
  private speaking = false;
  private ttsChain: Promise<void> = Promise.resolve();
  private audioChain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly o: ConversationOptions) {
    this.now = o.now ?? (() => performance.now());
    this.mode = o.mode ?? 'async';
    this.handsFree = o.handsFree ?? true;
    this.transcriber = new StreamingTranscriber(o.vad, o.recognizer, (e) => void this.onListen(e), { vad: { minSilenceMs: 600 }, partialEveryMs: 800 });
  }

  /** Settings from the renderer; they apply from the next turn on. */
  settings(s: { mode?: Mode; handsFree?: boolean; maxThinkingTokens?: number; maxAnswerTokens?: number }): void {
    if (s.mode) this.mode = s.mode;
    if (s.handsFree !== undefined) this.handsFree = s.handsFree;
    this.o.engine.setBudgets({ maxThinkingTokens: s.maxThinkingTokens, maxAnswerTokens: s.maxAnswerTokens });
  }

  /** PCM16 little-endian 16 kHz mono from the client. */
  pushAudio(bytes: Uint8Array): Promise<void> {
    const f = pcm16ToFloat(bytes);
    const frame = { arrivedAt: this.now(), endMs: (this.receivedMs += (f.length / ASR_SAMPLE_RATE) * 1000) };
    this.audioChain = this.audioChain
      .then(() => {
        if (this.closed) return;
        this.frame = frame;
        return this.transcriber.push(f);
      })
      .catch((e) => this.fail('audio', e));
    return this.audioChain;
  }

  /** Stream time (ms) of all the audio received so far. */
  private receivedMs = 0;
  /** The frame being recognised: when it arrived, and the stream time its end reaches. */
  private frame = { arrivedAt: 0, endMs: 0 };

  /**
   * When, on the clock, the user said what lies at `streamMs` of their audio. Frames are sent as
   * they are captured, so a frame's end was spoken about when it arrived, however far behind the
   * recogniser runs.
   */
  private clockAt(streamMs: number): number {
    return this.frame.arrivedAt - (this.frame.endMs - streamMs);
  }

  /** Push-to-talk released: the utterance is over now, whatever the VAD thinks. */
  pttUp(): Promise<void> {
    this.audioChain = this.audioChain.then(() => this.transcriber.flush()).catch((e) => this.fail('ptt-up', e));
    return this.audioChain;
  }

  /** Push-to-talk pressed while the assistant speaks: that is a barge-in. */
  pttDown(): void {
    if (this.speaking) this.bargeIn();
  }

  /** Typed input: a whole utterance at once. */
  text(text: string): void {
    const at = this.now();
    // Typed over the answer (still written or only still playing) cuts it off, as speech would.
    if (this.speaking) this.bargeIn();
    if (this.turn && !this.turn.finished && this.observer) {
      // Typed while the assistant still thinks: it joins the turn, as speech would.
      this.turn.addUserInput(text);
      this.turn.endUserInput();
      this.observer.userText = `${this.observer.userText} ${text}`.trim();
      this.o.emit('transcript', { turnId: this.observer.turnId, text: this.observer.userText, final: true });
      return;
    }
    this.startTurn(text, true, at);
  }

  interrupt(): void {
    this.bargeIn();
  }

  /** The renderer reports when a chunk really started and ended (or was cut). */
  playback(p: { chunkId: number; event: 'start' | 'end' | 'stopped'; heardChars?: number }): void {
    const obs = this.observer;
    const c = obs?.chunks.find((x) => x.chunkId === p.chunkId);
    if (!obs || !c) return;
    const at = this.now();
    if (p.event === 'start') {
      c.audioStartMs ??= at;
      obs.stamp('firstAudioStart', at);
      this.speaking = true;
    } else {
      c.audioEndMs ??= at;
      if (p.event === 'stopped' && p.heardChars !== undefined) this.heardInStopped = p.heardChars;
      obs.stamps.lastAudioEnd = at;
      this.settleSpeaking(obs);
    }
    this.o.emit('metrics', obs.report());
  }

  private heardInStopped = 0;

  private settleSpeaking(obs: TurnObserver): void {
    if (obs === this.observer && obs.done && obs.chunks.every((x) => x.audioEndMs !== undefined)) this.speaking = false;
  }

  private async onListen(e: Parameters<ConstructorParameters<typeof StreamingTranscriber>[2]>[0]): Promise<void> {
    if (this.closed) return; // a recognition that finished after the client left
    const at = this.now();
    switch (e.type) {
      case 'speech-start':
        this.o.emit('vad', { speaking: true, atMs: e.atMs });
        if (this.speaking && this.handsFree) this.considerBargeIn();
        if (!this.turn || this.turn.finished) this.pendingSpeechStart = this.clockAt(e.atMs);
        break;
      case 'speech-end':
        this.o.emit('vad', { speaking: false, atMs: e.atMs });
        this.utteranceEnds.set(e.atMs, { spokeUntil: this.clockAt(e.atMs), decidedAt: at });
        break;
      case 'partial':
        if (this.bargeCandidate) {
          if (isBackchannel(e.text) || !e.text.trim()) break; // not (yet) an interruption
          this.bargeIn();
        }
        this.hear(e.text, false, at);
        break;
      case 'final': {
        // Finals come after recognition, maybe after later utterances ended: find this one's end.
        const end = this.utteranceEnds.get(e.voicedEndMs);
        this.utteranceEnds.delete(e.voicedEndMs);
        if (this.bargeCandidate) {
          // A lone "uh-huh" while the assistant talks: the answer goes on, and it is not input.
          if (isBackchannel(e.text) || !e.text.trim()) {
            this.clearBargeCandidate();
            break;
          }
          this.bargeIn();
        }
        this.hear(e.text, true, at, end);
        break;
      }
    }
  }

  private pendingSpeechStart: number | null = null;
  /** Utterances ended and not yet transcribed, by the stream time their voice ended. */
  private utteranceEnds = new Map<number, UtteranceEnd>();
  /** Speech started over the answer; not yet known to be an interruption. */
  private bargeCandidate: NodeJS.Timeout | null = null;

  private considerBargeIn(): void {
    if (this.bargeCandidate) return;
    this.bargeCandidate = setTimeout(() => {
      this.bargeCandidate = null;
      if (this.transcriber.speaking) this.bargeIn();
    }, this.o.bargeInConfirmMs ?? 350);
  }

  private clearBargeCandidate(): void {
    if (this.bargeCandidate) clearTimeout(this.bargeCandidate);
    this.bargeCandidate = null;
  }

  /** Feeds recognised words to the engine: stable new words as they come, the rest at the end. */
  private hear(text: string, final: boolean, at: number, end?: UtteranceEnd): void {
    const words = text.split(/\s+/).filter(Boolean);
    const live = this.turn && !this.turn.finished;
    if (!live) {
      if (!words.length) return;
      this.committedWords = [];
      this.startTurn('', false, at);
    }
    const turn = this.turn!;
    const obs = this.observer!;
    obs.stamp('firstPartial', at);
    this.o.emit('transcript', { turnId: obs.turnId, text, final });
    const agrees = this.committedWords.every((w, i) => words[i] === w);
    if (agrees) {
      // A partial may still change its last word: keep one word back until the final.
      const upto = final ? words.length : Math.max(this.committedWords.length, words.length - 1);
      const fresh = words.slice(this.committedWords.length, upto);
      if (fresh.length) turn.addUserInput(fresh.join(' '));
      this.committedWords = words.slice(0, upto);
    } else if (final) {
      turn.addUserInput(`(correction: ${text})`);
      this.committedWords = words;
    }
    if (final) {
      end ??= { spokeUntil: at, decidedAt: at };
      obs.stamp('userSpeechEnd', end.spokeUntil);
      obs.stamp('turnEnd', end.decidedAt);
      obs.stamp('finalTranscript', at);
      turn.endUserInput();
    }
  }

  private startTurn(text: string, final: boolean, at: number): void {
    const turnId = ++this.turnId;
    const obs = new TurnObserver(turnId);
    this.observer = obs;
    this.speaking = false;
    if (this.pendingSpeechStart !== null) obs.stamp('userSpeechStart', this.pendingSpeechStart);
    this.pendingSpeechStart = null;
    if (final) {
      obs.stamp('userSpeechEnd', at);
      obs.stamp('turnEnd', at);
      obs.userText = text;
      this.o.emit('transcript', { turnId, text, final: true });
    }
    const turn = this.o.engine.startTurn(text, { mode: this.mode, final });
    this.turn = turn;
    let chunker = new SpeechChunker();
    void (async () => {
      try {
        for await (const e of turn.events) {
          const t = this.now();
          if (e.type === 'thinking') {
            obs.stamp('firstThinkingToken', t);
            this.o.emit('thinking', { turnId, text: e.text });
          } else if (e.type === 'answer') {
            obs.stamp('firstAnswerToken', t);
            this.o.emit('answer', { turnId, text: e.text });
            for (const c of chunker.push(e.text, t)) this.speak(turnId, obs, c.raw);
          } else if (e.type === 'state') {
            this.o.emit('state', { turnId, from: e.from, to: e.to, reason: e.reason });
          } else if (e.type === 'interrupted') {
            chunker = new SpeechChunker(); // text not yet chunked was never heard
          } else if (e.type === 'done') {
            for (const c of chunker.flush(t)) this.speak(turnId, obs, c.raw);
            await this.ttsChain;
            obs.done = true;
            this.settleSpeaking(obs);
            this.o.emit('metrics', obs.report());
          }
        }
      } catch (err) {
        this.fail('turn', err);
      }
    })();
  }

  /** Synthesises a chunk (in order) and sends it; its ready time is when its audio exists. */
  private speak(turnId: number, obs: TurnObserver, raw: string): void {
    const words = speakable(raw);
    if (!words) return;
    const epoch = this.speechEpoch;
    const signal = this.ttsAbort.signal;
    const current = () => this.turnId === turnId && this.speechEpoch === epoch;
    this.ttsChain = this.ttsChain
      .then(async () => {
        if (!current()) return;
        let audio;
        try {
          audio = await this.o.tts.synthesize(words, { signal });
        } catch (e) {
          if (!current() || this.closed) return; // cancelled by a barge-in or the client leaving
          throw e;
        }
        if (!current() || this.closed) return;
        const readyMs = this.now();
        const chunkId = this.chunkSeq++;
        obs.stamp('firstChunkReady', readyMs);
        obs.chunks.push({ chunkId, text: raw, readyMs, durationMs: audio.durationMs });
        this.speaking = true;
        this.o.emit('speech-chunk', { turnId, chunkId, text: raw, sampleRate: audio.sampleRate, pcm: floatToPcm16(audio.pcm), readyMs: readyMs - obs.refMs, durationMs: audio.durationMs });
      })
      .catch((e) => this.fail('tts', e));
  }

  /** Bumped by every barge-in: chunks queued before it are never sent. */
  private speechEpoch = 0;
  /** Cancels the synthesis of chunks queued before a barge-in (or before the client left). */
  private ttsAbort = new AbortController();

  private cancelSpeech(): void {
    this.speechEpoch++;
    this.ttsAbort.abort();
    this.ttsAbort = new AbortController();
  }

  /** Stops speech at once; the engine keeps exactly what was heard. */
  private bargeIn(): void {
    this.clearBargeCandidate();
    const turn = this.turn;
    const obs = this.observer;
    if (!turn || !obs) return;
    this.o.emit('stop-audio', { turnId: obs.turnId });
    this.speaking = false;
    this.cancelSpeech();
    // Heard = every chunk that finished playing, plus what the client said it heard of the one cut.
    const heard = obs.chunks.filter((c) => c.audioEndMs !== undefined && c.audioStartMs !== undefined).reduce((a, c) => a + c.text.length, 0) + this.heardInStopped;
    this.heardInStopped = 0;
    if (!turn.finished) turn.interrupt({ heardChars: heard });
    // The answer was all written but not all said: the conversation keeps only what was heard.
    else void this.o.engine.truncateAnswer(turn, heard).catch((e) => this.fail('barge-in', e));
  }

  private fail(where: string, e: unknown): void {
    this.o.emit('error', { event: where, message: (e as Error).message ?? String(e) });
  }

  /**
   * The client left: everything this conversation holds is given back — its turn and cache
   * blocks (through the engine), the recognition and synthesis in flight, its timers. Resolves
   * once the VAD it was given is idle, so it can serve another client. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      this.clearBargeCandidate();
      this.cancelSpeech();
      await this.transcriber.close();
      await this.o.engine.close();
      await this.audioChain.catch(() => undefined);
      await this.ttsChain.catch(() => undefined);
    })();
    return this.closing;
  }

  private closing: Promise<void> = Promise.resolve();
}
