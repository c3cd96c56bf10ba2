import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/async-reasoning/events.ts';
import { Conversation, type Emit } from '../../src/pipeline/conversation.ts';
import type { TtsEngine } from '../../src/tts/engine.ts';
import { fakeRecognizer, scriptedEngine } from '../helpers/fakes.ts';
import type { SpeechPace } from '../../src/async-reasoning/speech-pace.ts';

const emittedChunks = (emitted: { event: string; payload: Record<string, unknown> }[]) =>
  emitted.filter((e) => e.event === 'speech-chunk').map((e) => e.payload as { chunkId: number; durationMs: number });

const S1 = 'Owls are birds of prey that hunt at night. ';
const S2 = 'They see very well in the dark. ';
const S3 = 'Their feathers make almost no sound. ';
const answer = (text: string): EngineEvent => ({ type: 'answer', text, tokenId: 0, step: 1, tMs: 0 });
const done = (): EngineEvent => ({ type: 'done', reason: 'end-of-answer', step: 2, tMs: 0, result: {} as never });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A conversation over a scripted engine: the test writes the answer, plays the audio and speaks. */
function scripted(opts: { tts?: TtsEngine; stopGraceMs?: number; now?: () => number; turnEnd?: 'words' | 'silence' } = {}) {
  const emitted: { event: string; payload: Record<string, unknown> }[] = [];
  const emit: Emit = (event, payload) => void emitted.push({ event, payload: payload as Record<string, unknown> });
  const { engine, turns } = scriptedEngine();
  let listenerSpeaking = false;
  const tts: TtsEngine = opts.tts ?? { name: 'espeak-ng', synthesize: async (text: string) => ({ pcm: new Float32Array(text.length), sampleRate: 16000, durationMs: 10 * text.length }) };
  const conv = new Conversation({ engine: engine as never, vad: {} as never, recognizer: fakeRecognizer(), tts, emit, bargeInConfirmMs: 60, stopGraceMs: opts.stopGraceMs ?? 150, playbackReportTimeoutMs: 400, now: opts.now, turnEnd: opts.turnEnd ? { mode: opts.turnEnd, incompleteSilenceMs: 1500 } : undefined });
  Object.defineProperty((conv as unknown as { transcriber: object }).transcriber, 'speaking', { get: () => listenerSpeaking });
  const until = async (what: () => boolean, ms = 2000) => {
    for (let i = 0; i < ms / 5 && !what(); i++) await sleep(5);
    expect(what()).toBe(true);
  };
  const chunks = () => emitted.filter((e) => e.event === 'speech-chunk').map((e) => e.payload as { chunkId: number; text: string; turnId: number });
  const played = (chunkId: number) => {
    conv.playback({ chunkId, event: 'start' });
    conv.playback({ chunkId, event: 'end' });
  };
  const interruptions = () => emitted.filter((e) => e.event === 'interrupted').map((e) => e.payload as { heardChars: number; cause: string });
  /** The user starts talking over the answer, long enough to count. */
  const startTalking = async (startMs: number) => {
    listenerSpeaking = true;
    conv.heardEvent({ type: 'speech-start', atMs: startMs });
    await sleep(100);
  };
  const stopTalking = (voicedEndMs: number) => {
    listenerSpeaking = false;
    conv.heardEvent({ type: 'speech-end', atMs: voicedEndMs });
  };
  const partial = (startMs: number, text: string) => conv.heardEvent({ type: 'partial', text, startMs, atMs: startMs + 500 });
  const final = (startMs: number, text: string, voicedEndMs: number) =>
    conv.heardEvent({ type: 'final', text, startMs, endMs: voicedEndMs + 100, voicedEndMs, transcript: { text, segments: [] } });
  return { conv, engine, turns, emitted, chunks, played, interruptions, startTalking, stopTalking, partial, final, until };
}

describe('heard text after an interruption', () => {
  it('(a) Stop button: the player reports the cut chunk first, then the interrupt; exactly the heard characters are kept', async () => {
    const s = scripted();
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(S1 + S2 + S3));
    await s.until(() => s.chunks().length >= 2);
    const [c0, c1] = s.chunks();
    s.played(c0.chunkId);
    s.conv.playback({ chunkId: c1.chunkId, event: 'start' });
    // The renderer's Stop: its player stops and reports, then it sends 'interrupt'.
    s.conv.playback({ chunkId: c1.chunkId, event: 'stopped', heardChars: 5 });
    s.conv.interrupt();
    const heard = await s.turns[0].interrupt.mock.calls[0][0].heardChars;
    expect(heard).toBe(S1.length + 5);
    await s.until(() => s.interruptions().length === 1);
    expect(s.interruptions()[0]).toEqual({ turnId: 1, cause: 'stop', heardChars: S1.length + 5 });
  });

  it('(b) voice barge-in: the count waits for the player\'s report of the cut chunk, and leaves nothing over for the next barge-in', async () => {
    const s = scripted();
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(S1));
    await s.until(() => s.chunks().length === 1);
    s.played(s.chunks()[0].chunkId);
    s.turns[0].events.push(answer(S3));
    await s.until(() => s.chunks().length === 2);
    const c1 = s.chunks()[1];
    s.conv.playback({ chunkId: c1.chunkId, event: 'start' });
    await s.startTalking(5000);
    s.partial(5000, 'wait what about');
    expect(s.emitted.map((e) => e.event)).toContain('stop-audio');
    expect(s.turns[0].interrupt).toHaveBeenCalledTimes(1);
    // The renderer stops its player on stop-audio and reports what was heard of the cut chunk.
    await sleep(20);
    s.conv.playback({ chunkId: c1.chunkId, event: 'stopped', heardChars: 9 });
    expect(await s.turns[0].interrupt.mock.calls[0][0].heardChars).toBe(S1.length + 9);

    // The engine cut the answer and goes on after the user's words: a new stretch of speech.
    s.final(5000, 'wait what about bats', 6200);
    s.stopTalking(6200);
    s.turns[0].events.push({ type: 'interrupted', heardText: (S1 + S3).slice(0, S1.length + 9), keptTokens: 9, trimmedTokens: 3, step: 3, tMs: 0 });
    s.turns[0].events.push(answer('Bats are mammals. '));
    await s.until(() => s.chunks().length === 3);
    s.played(s.chunks()[2].chunkId);
    s.conv.interrupt(); // nothing is playing now: what was heard is the first stretch's part plus the whole new chunk
    expect(await s.turns[0].interrupt.mock.calls[1][0].heardChars).toBe(S1.length + 9 + 'Bats are mammals. '.length);
  });

  it('(b) when the player never reports the cut chunk, the count is estimated from how long it played, within the chunk', async () => {
    const s = scripted();
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(S1));
    await s.until(() => s.chunks().length === 1);
    const c0 = s.chunks()[0];
    s.conv.playback({ chunkId: c0.chunkId, event: 'start' });
    await sleep(150); // a 430 ms chunk (10 ms per character) has played about a third
    s.conv.interrupt();
    const heard = await s.turns[0].interrupt.mock.calls[0][0].heardChars;
    expect(heard).toBeGreaterThan(0);
    expect(heard).toBeLessThan(S1.length);
  });
});

describe('the end of the user\'s turn', () => {
  it('the turn hears that the voice paused, came back and went quiet, before the final transcript closes its input', async () => {
    const s = scripted();
    s.conv.heardEvent({ type: 'speech-start', atMs: 1000 });
    s.partial(1000, 'what is seven');
    const turn = s.turns[0];
    expect(turn.addUserInput).toHaveBeenCalledWith('what is'); // a partial's last word may still change
    // A pause: the turn may be ending, so the turn hears it; then the voice comes back.
    s.conv.heardEvent({ type: 'pause', atMs: 1800 });
    expect(turn.userWentQuiet).toHaveBeenCalledTimes(1);
    s.conv.heardEvent({ type: 'resume', atMs: 2150 });
    expect(turn.userResumed).toHaveBeenCalledTimes(1);
    s.stopTalking(2600);
    expect(turn.userWentQuiet).toHaveBeenCalledTimes(2);
    expect(turn.endUserInput).not.toHaveBeenCalled();
    s.final(1000, 'what is seven plus five', 2600);
    expect(turn.endUserInput).toHaveBeenCalledTimes(1);
    expect(turn.addUserInput).toHaveBeenLastCalledWith('seven plus five');
    // Speech that ends after the turn stopped taking words is not its business.
    turn.finished = true;
    s.conv.heardEvent({ type: 'speech-start', atMs: 9000 });
    s.conv.heardEvent({ type: 'pause', atMs: 9500 });
    s.stopTalking(9800);
    expect(turn.userWentQuiet).toHaveBeenCalledTimes(2);
  });
});

describe('speech over the answer', () => {
  it('(c) words spoken over the answer reach the engine as they stabilise, as added words, not as a correction', async () => {
    const s = scripted();
    await s.startTalking(0);
    s.partial(0, 'tell me about');
    s.stopTalking(1400);
    s.final(0, 'tell me about owls', 1400);
    const t = s.turns[0];
    expect(t.addUserInput.mock.calls.map((c) => c[0])).toEqual(['tell me', 'about owls']);
    t.events.push(answer(S1));
    await s.until(() => s.chunks().length === 1);
    s.conv.playback({ chunkId: s.chunks()[0].chunkId, event: 'start' });

    await s.startTalking(5000);
    s.partial(5000, 'wait what about');
    expect(t.interrupt).toHaveBeenCalledTimes(1);
    expect(t.addUserInput.mock.calls.map((c) => c[0])).toEqual(['tell me', 'about owls', 'wait what']);
    s.partial(5000, 'wait what about bats and');
    s.stopTalking(6500);
    s.final(5000, 'wait what about bats and mice', 6500);
    expect(t.addUserInput.mock.calls.map((c) => c[0])).toEqual(['tell me', 'about owls', 'wait what', 'about bats', 'and mice']);
    expect(t.endUserInput).toHaveBeenCalledTimes(2);
    expect(s.engine.startTurn).toHaveBeenCalledTimes(1);
  });

  it('(d) a barge-in cancels queued synthesis, and the next turn\'s first chunk is not delayed by it', async () => {
    const SYNTH_MS = 250;
    const aborted: string[] = [];
    const tts: TtsEngine = {
      name: 'espeak-ng',
      synthesize: (text, o) =>
        new Promise((resolve, reject) => {
          let settled = false;
          const timer = setTimeout(() => {
            settled = true;
            resolve({ pcm: new Float32Array(160), sampleRate: 16000, durationMs: 2000 });
          }, SYNTH_MS);
          o?.signal?.addEventListener('abort', () => {
            if (settled) return;
            clearTimeout(timer);
            aborted.push(text);
            reject(new Error('aborted'));
          });
        }),
    };
    const s = scripted({ tts });
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(S1 + S2 + S3));
    s.turns[0].finished = true;
    s.turns[0].events.push(done());
    await s.until(() => s.chunks().length === 1);
    s.conv.playback({ chunkId: s.chunks()[0].chunkId, event: 'start' });
    // Typed over the answer: the finished answer is cut; the next two chunks were still being synthesised.
    s.conv.text('And bats?');
    expect(aborted).toHaveLength(1);
    expect(s.engine.truncateAnswer).toHaveBeenCalledTimes(1);
    expect(s.engine.startTurn).toHaveBeenCalledTimes(2);
    const t0 = performance.now();
    s.turns[1].events.push(answer('Bats hunt at night too. '));
    await s.until(() => s.chunks().some((c) => c.turnId === 2));
    const waited = performance.now() - t0;
    expect(waited).toBeLessThan(SYNTH_MS * 2); // one synthesis, not the old turn's queue first
    await sleep(SYNTH_MS * 3);
    expect(s.chunks().filter((c) => c.turnId === 1)).toHaveLength(1); // nothing of the old answer was sent after the cut
  });
});

describe('the writer paced by the voice', () => {
  it("tells the turn how much synthesised speech the listener has yet to hear, by the service's clock and the player's reports", async () => {
    let clock = 0;
    const s = scripted({ now: () => clock });
    s.conv.text('Tell me about owls.');
    const opts = (s.engine.startTurn.mock.calls[0] as unknown as [string, { pace: SpeechPace }])[1];
    const queued = () => opts.pace.queuedMs();
    expect(queued()).toBe(0);
    s.turns[0].events.push(answer(S1 + S2));
    await s.until(() => s.chunks().length === 2);
    const [c0, c1] = emittedChunks(s.emitted);
    expect(c0.durationMs).toBeGreaterThan(0);
    // Both sent at 0 and played back to back: all of it is still to hear.
    expect(queued()).toBe(c0.durationMs + c1.durationMs);
    clock = 100;
    expect(queued()).toBe(c0.durationMs + c1.durationMs - 100);
    // The player started late: the rest is counted from when it really started.
    clock = 150;
    s.conv.playback({ chunkId: c0.chunkId, event: 'start' });
    expect(queued()).toBe(c0.durationMs + c1.durationMs);
    clock = 150 + c0.durationMs + 20;
    s.conv.playback({ chunkId: c0.chunkId, event: 'end' });
    expect(queued()).toBe(c1.durationMs);
    // Nothing is queued once the answer's speech is stopped.
    s.conv.interrupt();
    expect(queued()).toBe(0);
  });
});

describe('a Stop with nothing said after it', () => {
  it('(g) ends the turn after the grace, with its metrics; the next input starts a new turn', async () => {
    const s = scripted({ stopGraceMs: 150 });
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(S1));
    await s.until(() => s.chunks().length === 1);
    s.conv.playback({ chunkId: s.chunks()[0].chunkId, event: 'start' });
    s.conv.playback({ chunkId: s.chunks()[0].chunkId, event: 'stopped', heardChars: 3 });
    s.conv.interrupt();
    await sleep(100);
    expect(s.turns[0].end).not.toHaveBeenCalled();
    await s.until(() => s.turns[0].end.mock.calls.length === 1);
    // The engine ends the turn: its last metrics say so.
    s.turns[0].finished = true;
    s.turns[0].events.push(done());
    await s.until(() => s.emitted.some((e) => e.event === 'metrics' && e.payload.turnId === 1 && e.payload.done === true));
    s.conv.text('Something else.');
    expect(s.engine.startTurn).toHaveBeenCalledTimes(2);
  });

  it('speech within the grace keeps the turn: the words join it', async () => {
    const s = scripted({ stopGraceMs: 150 });
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(S1));
    await s.until(() => s.chunks().length === 1);
    s.conv.interrupt();
    await s.startTalking(3000);
    s.partial(3000, 'what about bats');
    await sleep(300);
    s.stopTalking(3900);
    s.final(3000, 'what about bats', 3900);
    await sleep(300);
    expect(s.turns[0].end).not.toHaveBeenCalled();
    expect(s.turns[0].addUserInput.mock.calls.map((c) => c[0])).toEqual(['what about', 'bats']);
  });
});

describe('what counts as the assistant still talking', () => {
  it('a pause between chunks (the writer waiting for the thinker) is still its turn: speech there interrupts', async () => {
    const s = scripted();
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(S1));
    await s.until(() => s.chunks().length === 1);
    s.played(s.chunks()[0].chunkId); // all that was sent has played; the answer is not done
    await s.startTalking(2000);
    expect(s.emitted.map((e) => e.event)).toContain('stop-audio');
    expect(await s.turns[0].interrupt.mock.calls[0][0].heardChars).toBe(S1.length);
    expect(s.engine.startTurn).toHaveBeenCalledTimes(1);
  });

  it('after the whole answer has played, speech starts a new turn and cuts nothing', async () => {
    const s = scripted();
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(S1));
    s.turns[0].finished = true;
    s.turns[0].events.push(done());
    await s.until(() => s.emitted.some((e) => e.event === 'metrics' && e.payload.done === true));
    for (const c of s.chunks()) s.played(c.chunkId);
    await s.startTalking(2000);
    s.partial(2000, 'and bats');
    expect(s.emitted.map((e) => e.event)).not.toContain('stop-audio');
    expect(s.engine.truncateAnswer).not.toHaveBeenCalled();
    expect(s.engine.startTurn).toHaveBeenCalledTimes(2);
  });

  it('metrics reach the client as each stamp happens, before any audio', async () => {
    const s = scripted();
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push({ type: 'thinking', text: 'Owls', tokenId: 0, step: 1, tMs: 0 });
    await s.until(() => s.emitted.some((e) => e.event === 'metrics' && 'firstThinkingToken' in (e.payload.stamps as object)));
    expect(s.emitted.some((e) => e.event === 'speech-chunk')).toBe(false);
  });
});

describe('the end of a spoken turn, from the words', () => {
  const userEnd = (pEnd: number, words: string): EngineEvent => ({ type: 'user-end', pEnd, words, step: 1, tMs: 0 });
  /** "what is seventeen times" … a pause … "eight", as the recogniser reports it in two phrases. */
  async function pausedQuestion(mode: 'words' | 'silence') {
    // The clock starts with the audio (no frames arrive here, so stream time is clock time).
    const t0 = performance.now();
    const s = scripted({ turnEnd: mode, now: () => performance.now() - t0 });
    s.conv.heardEvent({ type: 'speech-start', atMs: 0 });
    s.partial(0, 'what is seventeen');
    s.stopTalking(1500);
    s.final(0, 'what is seventeen times', 1500);
    const t = s.turns[0];
    t.events.push(userEnd(0.04, 'what is seventeen times'));
    await sleep(700); // the user thinks for a moment
    const endedDuringPause = t.endUserInput.mock.calls.length;
    s.conv.heardEvent({ type: 'speech-start', atMs: 2200 });
    s.stopTalking(2700);
    s.final(2200, 'eight', 2700);
    t.events.push(userEnd(0.91, 'what is seventeen times eight'));
    await s.until(() => s.emitted.some((e) => e.event === 'metrics' && (e.payload as { turnEnd?: unknown }).turnEnd !== undefined));
    return { s, t, endedDuringPause };
  }

  it('a question paused mid-way is not cut off: one turn, the rest joins it, and it ends once the model reads a finished message', async () => {
    const { s, t, endedDuringPause } = await pausedQuestion('words');
    expect(endedDuringPause).toBe(0);
    expect(s.turns).toHaveLength(1);
    expect(t.addUserInput.mock.calls.map((c) => c[0])).toEqual(['what is', 'seventeen times', 'eight']);
    expect(t.endUserInput).toHaveBeenCalledTimes(1);
    const m = s.emitted.filter((e) => e.event === 'metrics').map((e) => e.payload as { turnEnd?: { by: string; pEnd: number } }).find((p) => p.turnEnd)!;
    expect(m.turnEnd).toEqual({ by: 'words', pEnd: 0.91 });
  });

  it('with silence alone (a model that cannot tell), the same pause ends the turn at the first phrase', async () => {
    const { t, endedDuringPause } = await pausedQuestion('silence');
    expect(endedDuringPause).toBe(1);
    expect(t.endUserInput).toHaveBeenCalled();
  });
});
