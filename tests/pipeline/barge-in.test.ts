import { describe, expect, it, vi } from 'vitest';
import { Conversation, isBackchannel, type Emit } from '../../src/pipeline/conversation.ts';

/** A conversation whose assistant is mid-answer, with the engine's turn recorded. */
function speakingConversation(opts: { listenerSpeaking: boolean }) {
  const emitted: string[] = [];
  const emit: Emit = (event) => void emitted.push(event);
  const turn = { finished: false, interrupt: vi.fn(), addUserInput: vi.fn(), endUserInput: vi.fn(), settled: async () => undefined };
  const conv = new Conversation({
    engine: { startTurn: vi.fn(() => turn) } as never,
    vad: {} as never,
    recognizer: { name: 'fake', recognize: async () => ({ text: '', segments: [] }), close: async () => undefined },
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
