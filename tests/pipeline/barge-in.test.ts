import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/async-reasoning/events.ts';
import { Conversation, isBackchannel, type Emit } from '../../src/pipeline/conversation.ts';
import { fakeRecognizer, scriptedEngine, scriptedTurn } from '../helpers/fakes.ts';

/** A conversation whose assistant is mid-answer, with the engine's turn recorded. */
function speakingConversation(opts: { listenerSpeaking: boolean }) {
  const emitted: string[] = [];
  const emit: Emit = (event) => void emitted.push(event);
  const turn = scriptedTurn();
  const conv = new Conversation({
    engine: scriptedEngine().engine as never,
    vad: {} as never,
    recognizer: fakeRecognizer(),
    tts: { name: 'espeak-ng', synthesize: async () => ({ pcm: new Float32Array(10), sampleRate: 16000, durationMs: 1 }) },
    emit,
    bargeInConfirmMs: 60,
  });
  const c = conv as unknown as Record<string, unknown>;
  c.turn = turn;
  c.observer = { turnId: 1, chunks: [], stamp: () => undefined, userText: '' };
  c.speaking = true;
  Object.defineProperty(c.transcriber, 'speaking', { get: () => opts.listenerSpeaking });
  const listen = (e: object) => (c.onListen as (e: object) => Promise<void>).call(conv, e);
  return { conv, turn, emitted, listen };
}

describe('barge-in policy', () => {
  it('knows a backchannel from an interruption', () => {
    for (const t of ['uh huh', 'Mhm.', 'okay', 'yeah right', 'I see', 'oh']) expect(isBackchannel(t), t).toBe(true);
    for (const t of ['wait', 'stop please', 'no that is wrong', 'okay but why', '', 'yeah yeah yeah yeah']) expect(isBackchannel(t), t).toBe(false);
  });

  it('"uh-huh" over the answer neither stops it nor becomes input', async () => {
    const { turn, emitted, listen } = speakingConversation({ listenerSpeaking: false });
    await listen({ type: 'speech-start', atMs: 0 });
    await listen({ type: 'partial', text: 'uh', startMs: 0, atMs: 10 });
    await listen({ type: 'speech-end', atMs: 30 });
    await listen({ type: 'final', text: 'uh huh', startMs: 0, endMs: 30, transcript: { text: 'uh huh', segments: [] } });
    await new Promise((r) => setTimeout(r, 120));
    expect(turn.interrupt).not.toHaveBeenCalled();
    expect(turn.addUserInput).not.toHaveBeenCalled();
    expect(emitted).not.toContain('stop-audio');
  });

  it('real words stop the answer at once, and become the interrupting input', async () => {
    const { turn, emitted, listen } = speakingConversation({ listenerSpeaking: true });
    await listen({ type: 'speech-start', atMs: 0 });
    expect(turn.interrupt).not.toHaveBeenCalled();
    await listen({ type: 'partial', text: 'wait what about', startMs: 0, atMs: 10 });
    expect(turn.interrupt).toHaveBeenCalledWith({ heardChars: 0 });
    expect(emitted).toContain('stop-audio');
    expect(turn.addUserInput).toHaveBeenCalledWith('wait what');
  });

  it('speech that goes on past the confirmation time interrupts even before any words are recognised', async () => {
    const { turn, emitted, listen } = speakingConversation({ listenerSpeaking: true });
    await listen({ type: 'speech-start', atMs: 0 });
    await new Promise((r) => setTimeout(r, 120));
    expect(turn.interrupt).toHaveBeenCalledTimes(1);
    expect(emitted.filter((e) => e === 'stop-audio')).toHaveLength(1);
  });
});

/** A conversation over a scripted engine turn: the test writes the answer and plays the audio. */
function scriptedConversation() {
  const emitted: { event: string; payload: Record<string, unknown> }[] = [];
  const emit: Emit = (event, payload) => void emitted.push({ event, payload: payload as Record<string, unknown> });
  const { engine, turns } = scriptedEngine();
  let listenerSpeaking = false;
  const conv = new Conversation({
    engine: engine as never,
    vad: {} as never,
    recognizer: fakeRecognizer(),
    tts: { name: 'espeak-ng', synthesize: async (text: string) => ({ pcm: new Float32Array(text.length), sampleRate: 16000, durationMs: text.length }) },
    emit,
    bargeInConfirmMs: 60,
  });
  const c = conv as unknown as Record<string, unknown>;
  Object.defineProperty(c.transcriber, 'speaking', { get: () => listenerSpeaking });
  const listen = (e: object) => (c.onListen as (e: object) => Promise<void>).call(conv, e);
  const until = async (what: () => boolean) => {
    for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(what()).toBe(true);
  };
  const chunks = () => emitted.filter((e) => e.event === 'speech-chunk').map((e) => e.payload as { chunkId: number; text: string });
  const played = (chunkId: number) => {
    conv.playback({ chunkId, event: 'start' });
    conv.playback({ chunkId, event: 'end' });
  };
  const speak = async (text: string) => {
    listenerSpeaking = true;
    await listen({ type: 'speech-start', atMs: 0 });
    await new Promise((r) => setTimeout(r, 120)); // past the confirmation time
    await listen({ type: 'partial', text, startMs: 0, atMs: 130 });
  };
  return { conv, engine, turns, emitted, chunks, played, speak, until };
}

describe('what counts as the assistant still talking', () => {
  const sentence = 'Owls are birds of prey that hunt at night. ';
  const answer = (text: string): EngineEvent => ({ type: 'answer', text, step: 1, tMs: 0 }) as EngineEvent;

  it('a pause between chunks (the writer waiting for the thinker) is still its turn: speech there interrupts', async () => {
    const s = scriptedConversation();
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(sentence));
    await s.until(() => s.chunks().length === 1);
    s.played(s.chunks()[0].chunkId); // all that was sent has played; the answer is not done
    await s.speak('wait what about bats');
    expect(s.emitted.map((e) => e.event)).toContain('stop-audio');
    expect(s.turns[0].interrupt).toHaveBeenCalledWith({ heardChars: sentence.length });
    expect(s.turns[0].addUserInput).toHaveBeenCalledWith('wait what about'); // the last word waits for the final
    expect(s.engine.startTurn).toHaveBeenCalledTimes(1);
  });

  it('after the whole answer has played, speech starts a new turn and cuts nothing', async () => {
    const s = scriptedConversation();
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(sentence));
    s.turns[0].finished = true;
    s.turns[0].events.push({ type: 'done', reason: 'eos', step: 2, tMs: 0 } as unknown as EngineEvent);
    await s.until(() => s.emitted.some((e) => e.event === 'metrics' && e.payload.done === true));
    for (const c of s.chunks()) s.played(c.chunkId);
    await s.speak('and bats');
    expect(s.emitted.map((e) => e.event)).not.toContain('stop-audio');
    expect(s.engine.truncateAnswer).not.toHaveBeenCalled();
    expect(s.engine.startTurn).toHaveBeenCalledTimes(2);
  });

  it('typing while the finished answer still plays cuts it to what was heard, then starts the next turn', async () => {
    const s = scriptedConversation();
    s.conv.text('Tell me about owls.');
    s.turns[0].events.push(answer(`${sentence}They see well in the dark. `));
    s.turns[0].finished = true;
    s.turns[0].events.push({ type: 'done', reason: 'eos', step: 2, tMs: 0 } as unknown as EngineEvent);
    await s.until(() => s.chunks().length === 2);
    s.played(s.chunks()[0].chunkId);
    s.conv.playback({ chunkId: s.chunks()[1].chunkId, event: 'start' });
    s.conv.text('And bats?');
    expect(s.emitted.map((e) => e.event)).toContain('stop-audio');
    expect(s.engine.truncateAnswer).toHaveBeenCalledWith(s.turns[0], sentence.length);
    expect(s.engine.startTurn).toHaveBeenCalledTimes(2);
  });
});
